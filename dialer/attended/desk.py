"""The agents' side of an attended run: routing answered calls, and following the seats.

:class:`AgentDesk` pops each answered call to a ready agent (the callback's own agent first,
otherwise the longest ready) or gives the callee the safe-harbour message after the grace
period; and each tick reads the seats of the run's calls from the database, which is the
only channel to the agent API: an agent who hung up, transferred, held or wrapped up is
followed at the gateway and in the attempt.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlmodel import Session, col, select

from dialer.agent_service import (
    agent_from_seat,
    dispositions_for,
    expire_wrap_ups,
    far_end_hung_up,
    last_logged,
    pop_call,
    post_event,
    ready_agents,
)
from dialer.agents import CALL_STATES, AgentAction, AgentState, TransferKind, TransferTarget
from dialer.attended.calls import CallHandler
from dialer.attended.config import SAFE_HARBOUR_MESSAGE
from dialer.attended.consult import Consults
from dialer.attended.phones import AgentPhones
from dialer.attended.state import LiveCall, Phase, RunContext
from dialer.exceptions import AgentError, GatewayError
from dialer.gateway import CallParameters, HangupParty
from dialer.models import AgentDisposition, AgentEventKind, AgentSeat, AgentStateLog
from dialer.pacer import DISPOSITION_FOR

__all__ = ["AgentDesk"]

log = logging.getLogger("dialer.attended")

#: Agent states in which the callee is on hold (hold music at the gateway).
_HELD_STATES = frozenset({AgentState.ON_HOLD, AgentState.CONSULTING})


def _transfer_target(last: AgentStateLog) -> TransferTarget | None:
    """Where the agent transferred the call, if ``last`` (their last move on it) is a transfer
    (to an agent, a skill group or an outside number)."""
    if last.action is not AgentAction.TRANSFER:
        return None
    target = last.details.get("target") or {}
    kind, name = target.get("kind"), target.get("target")
    if kind not in {k.value for k in TransferKind}:
        return None
    return TransferTarget(TransferKind(kind), name) if isinstance(name, str) else None


class AgentDesk:
    """Routes answered calls to agents and follows what the agents do with them."""

    def __init__(self, ctx: RunContext, calls: CallHandler, phones: AgentPhones) -> None:
        self.ctx = ctx
        self.calls = calls
        self.phones = phones
        self.consults = Consults(ctx, phones)

    # -- routing --------------------------------------------------------------------------

    def route(self, now: float) -> None:
        """Connect answered calls to ready agents; abandon those past the grace period."""
        ctx = self.ctx
        waiting = sorted(ctx.in_phase(Phase.WAITING), key=lambda c: c.waiting_since_s)
        for call in [c for c in waiting if c.manual]:
            waiting.remove(call)
            self._connect_manual(call, now)
        if not waiting:
            return
        with ctx.session() as session:
            ready = [
                (seat.id, seat.agent_code, seat.state_since)
                for seat in ready_agents(
                    session=session,
                    skill_group=ctx.info.skill_group,
                    client_id=ctx.client_id,
                    now=ctx.at(now),
                )
                if self.phones.routable(seat.agent_code)
            ]
        for call in waiting:
            connected = False
            while ready and not connected:
                index = next((i for i, r in enumerate(ready) if r[1] == call.callback_agent), 0)
                seat_id, code, since = ready.pop(index)
                connected = self._connect(call, seat_id, code, max(ctx.at(now), since), now)
            if not connected and now >= call.waiting_since_s + ctx.config.abandon_grace_s:
                self._abandon(call, now)

    def _pop(
        self,
        session: Session,
        call: LiveCall,
        seat_id: uuid.UUID,
        code: str,
        at: datetime,
        *,
        skill_group: str | None = None,
    ) -> None:
        """Pop the call on the agent's soft-phone (raises AgentError when they cannot take
        it), with the call parameters 工號/技能組/主叫/被叫 of this agent (技能組: the
        campaign's, or the group the call was transferred to)."""
        ctx = self.ctx
        group = skill_group or ctx.info.skill_group
        pop_call(
            session=session,
            agent_id=seat_id,
            client_id=ctx.client_id,
            attempt_id=call.attempt_id,
            lead=call.lead,
            params=CallParameters(ctx.info.caller, call.phone, code, group),
            script=ctx.info.script,
            at=at,
            call_id=call.agent_call_id,
        )

    def _connect(
        self, call: LiveCall, seat_id: uuid.UUID, code: str, moment: datetime, now: float
    ) -> bool:
        ctx = self.ctx
        try:
            with ctx.session() as session:
                post_event(
                    session=session,
                    agent_id=seat_id,
                    client_id=ctx.client_id,
                    kind=AgentEventKind.CALL_OFFERED,
                    call_id=call.agent_call_id,
                    attempt_id=call.attempt_id,
                    payload={
                        "call_id": call.agent_call_id,
                        "attempt_id": str(call.attempt_id),
                        "lead_id": call.lead.get("id"),
                        "live": call.live,
                        "at": moment.isoformat(),
                    },
                )
                self._pop(session, call, seat_id, code, moment)
        except AgentError as exc:
            # The agent changed state since it was read (another campaign took it, or it
            # went not ready): offer the call to the next one.
            log.info("agent %s could not take call %s: %s", code, call.call_id, exc)
            return False
        call.phase = Phase.CONNECTED
        call.seat_id = seat_id
        call.agent_code = code
        call.connected_s = now
        ctx.result.connected += 1
        if call.live and not call.manual:  # an agent's own call was never at risk
            self.calls.count_live_answer(now, abandoned=False)
        try:
            ctx.gateway.connect_to_agent(
                call.call_id, agent_id=code, skill_group=ctx.info.skill_group, now=now
            )
        except GatewayError as exc:
            # The callee left in the meantime: the agent wraps up the empty pop.
            log.warning("could not bridge call %s to agent %s: %s", call.call_id, code, exc)
            self.calls.conversation_over(call, now, HangupParty.CALLEE)
        return True

    def _connect_manual(self, call: LiveCall, now: float) -> None:
        """An agent's own call was answered: it goes to that agent (never abandoned), or, if
        they hung up meanwhile, is hung up and completed with the default disposition."""
        ctx = self.ctx
        assert call.seat_id is not None
        assert call.agent_code is not None
        if self._connect(call, call.seat_id, call.agent_code, ctx.at(now), now):
            return
        call.phase = Phase.CLOSING
        call.agent_left = True
        call.ended_s = now
        call.hangup_by = HangupParty.AGENT
        self.calls.hang_up(call, now, HangupParty.AGENT)
        ctx.result.default_dispositions += 1
        self.calls.complete(call, ctx.config.default_disposition, now)

    def _abandon(self, call: LiveCall, now: float) -> None:
        call.phase = Phase.CLOSING
        if not call.live:  # a machine passed to agents and nobody took it
            self.calls.close(call, now, now)
            return
        call.abandoned = True
        self.calls.count_live_answer(now, abandoned=True)
        try:
            self.ctx.gateway.play_message(call.call_id, SAFE_HARBOUR_MESSAGE, now=now)
        except GatewayError as exc:
            log.warning("could not play the safe-harbour message on %s: %s", call.call_id, exc)
            self.calls.close(call, now, now)

    # -- following the seats --------------------------------------------------------------

    def sync(self, now: float) -> None:
        """Expire wrap-ups; hang up calls their agents left; complete finished wrap-ups."""
        ctx = self.ctx
        active = [c for c in ctx.calls.values() if c.phase in (Phase.CONNECTED, Phase.WRAP)]
        dialing = [c for c in ctx.in_phase(Phase.RINGING) if c.manual]
        seat_ids = {c.seat_id for c in active + dialing if c.seat_id is not None}
        seat_ids |= set(ctx.wrapping) | self.consults.seat_ids(active)
        with ctx.session() as session:
            expire_wrap_ups(session=session, now=ctx.at(now))
            seats = (
                {
                    seat.id: seat
                    for seat in session.exec(
                        select(AgentSeat).where(col(AgentSeat.id).in_(list(seat_ids)))
                    )
                }
                if seat_ids
                else {}
            )
            given = dispositions_for(session=session, attempt_ids=[c.attempt_id for c in active])
        for seat_id, (agent_call_id, since) in list(ctx.wrapping.items()):
            seat = seats.get(seat_id)
            agent = None if seat is None else agent_from_seat(seat)
            if agent is None or agent.call_id != agent_call_id:
                del ctx.wrapping[seat_id]
                ctx.stats.record_wrap(now, now - since)
        for call in dialing:
            seat = seats.get(call.seat_id) if call.seat_id is not None else None
            agent = None if seat is None else agent_from_seat(seat)
            if agent is None or agent.state is not AgentState.DIALING:
                self._cancel_manual(call, now)
        for call in active:
            seat = seats.get(call.seat_id) if call.seat_id is not None else None
            agent = None if seat is None else agent_from_seat(seat)
            on_this_call = agent is not None and agent.call_id == call.agent_call_id
            if call.phase is Phase.CONNECTED:
                left = not (on_this_call and agent is not None and agent.state in CALL_STATES)
                if left and not call.agent_left:
                    if self.consults.hand_over(call, seats, now):
                        continue  # the consulted colleague has the call now
                    last = self._last_entry(call) if seat is not None else None
                    move = None if last is None else last.action
                    if move is AgentAction.HAND_TO_IVR and self.calls.hand_to_ivr(call, now):
                        continue  # the IVR has the callee now (人工轉自動)
                    target = None if last is None else _transfer_target(last)
                    if target is not None and self._transfer_to(call, target, now):
                        continue  # the call is the new agent's now
                    # the agent hung up (or transferred nowhere we can reach) through the API
                    call.agent_left = True
                    if not self.calls.hang_up(call, now, HangupParty.AGENT):
                        self.calls.conversation_over(call, now, HangupParty.AGENT)
                elif not left and agent is not None:
                    self.consults.follow(call, agent, seats, now)
                    held = agent.state in _HELD_STATES and not call.conferenced
                    self._sync_hold(call, held, now)
                continue
            if call.consult_seat_id is not None:  # the call is over for the colleague too
                self.consults.release(call, now)
            row = given.get(call.attempt_id)
            if row is not None and row.agent_code != call.agent_code:
                row = None  # given by the agent who transferred the call: the new one decides
            if (row is not None and row.disposition is not None) or not on_this_call:
                self._complete_wrap(call, row, now)

    def _cancel_manual(self, call: LiveCall, now: float) -> None:
        """The agent hung up their own call while it rang: the gateway cancels it, and the
        attempt is a no-answer one (the phone rang), hung up by our side."""
        if not self.calls.hang_up(call, now, HangupParty.AGENT):
            return  # it ended meanwhile: its event completes it
        # a ringing call hung up reports nothing (the Protocol): complete it here
        call.ended_s = now
        call.hangup_by = HangupParty.AGENT
        self.calls.complete(call, DISPOSITION_FOR["no_answer"], now)

    def _last_entry(self, call: LiveCall) -> AgentStateLog | None:
        """The call's agent's last logged move on this call: how they left it."""
        assert call.seat_id is not None
        with self.ctx.session() as session:
            return last_logged(session=session, agent_id=call.seat_id, call_id=call.agent_call_id)

    def _transfer_to(self, call: LiveCall, target: TransferTarget, now: float) -> bool:
        """Hand the call to the agent named, to the longest-ready agent of the skill group
        named (serving the client, their phone reachable by this loop, not the one leaving), or
        out to the number named."""
        if target.kind is TransferKind.AGENT:
            return self._transfer(call, target.target, now)
        if target.kind is TransferKind.EXTERNAL:
            return self._transfer_out(call, target.target, now)
        ctx = self.ctx
        with ctx.session() as session:
            ready = [
                seat.agent_code
                for seat in ready_agents(
                    session=session,
                    skill_group=target.target,
                    client_id=ctx.client_id,
                    now=ctx.at(now),
                )
                if seat.id != call.seat_id and self.phones.routable(seat.agent_code)
            ]
        for code in ready:
            if self._transfer(call, code, now, skill_group=target.target):
                return True
        log.info("call %s: nobody of skill group %s can take it; hanging up", call.call_id, target)
        return False

    def _transfer(
        self, call: LiveCall, code: str, now: float, *, skill_group: str | None = None
    ) -> bool:
        """Hand a connected call to agent ``code`` (ready, serving the client and the group:
        ``skill_group``, the campaign's by default): pop it to them with the call parameters
        of their group, move the gateway's bridge, and follow them from now on. False (the
        call is then hung up as before) when they cannot take it."""
        ctx = self.ctx
        group = skill_group or ctx.info.skill_group
        if not self.phones.routable(code):
            return False
        with ctx.session() as session:
            seat = session.exec(select(AgentSeat).where(AgentSeat.agent_code == code)).first()
        if seat is None or seat.state is not AgentState.READY:
            log.info("call %s: transfer target %s is not ready; hanging up", call.call_id, code)
            return False
        try:
            with ctx.session() as session:
                self._pop(session, call, seat.id, code, ctx.at(now), skill_group=group)
        except AgentError as exc:
            log.info("call %s: agent %s cannot take the transfer: %s", call.call_id, code, exc)
            return False
        try:
            ctx.gateway.transfer_to_agent(call.call_id, agent_id=code, skill_group=group, now=now)
        except GatewayError as exc:
            log.warning("could not transfer call %s to agent %s: %s", call.call_id, code, exc)
            with ctx.session() as session:  # the new agent wraps up the empty pop
                far_end_hung_up(
                    session=session, agent_id=seat.id, call_id=call.agent_call_id, at=ctx.at(now)
                )
            return False
        call.seat_id = seat.id
        call.agent_code = code
        call.held = False
        ctx.result.transfers += 1
        return True

    def _transfer_out(self, call: LiveCall, number: str, now: float) -> bool:
        """Hand a connected call out to ``number`` (a blind transfer out): the gateway calls
        it with the campaign's caller id while the callee hears the hold music. The agent's
        part of the call is over now: they wrap up, and the attempt completes with their
        disposition; the gateway call is followed until it ends (a number that does not
        answer: the callee is hung up). False (the call is hung up as before) when the
        gateway cannot."""
        ctx = self.ctx
        try:
            ctx.gateway.transfer_out(call.call_id, number, now=now)
        except GatewayError as exc:
            log.warning("could not transfer call %s out to %s: %s", call.call_id, number, exc)
            return False
        log.info("call %s: transferred out to %s by %s", call.call_id, number, call.agent_code)
        ctx.handed_out[call.call_id] = number
        ctx.result.transfers_out += 1
        call.agent_left = True
        call.held = False
        self.calls.conversation_over(call, now, HangupParty.AGENT)
        return True

    def _sync_hold(self, call: LiveCall, held: bool, now: float) -> None:
        """Put the callee on hold (music) while the agent holds or consults, and back."""
        if held == call.held:
            return
        try:
            if held:
                self.ctx.gateway.hold(call.call_id, now=now)
            else:
                self.ctx.gateway.unhold(call.call_id, now=now)
        except GatewayError as exc:  # the callee left meanwhile: its hang-up event follows
            log.warning("could not %s call %s: %s", "hold" if held else "unhold", call.call_id, exc)
            return
        call.held = held

    def _complete_wrap(self, call: LiveCall, row: AgentDisposition | None, now: float) -> None:
        ctx = self.ctx
        callback_at = None if row is None else row.callback_at
        if row is not None and row.disposition is not None:
            disposition = row.disposition
            ctx.result.agent_dispositions += 1
        elif callback_at is not None:
            disposition = "callback_requested"
            ctx.result.agent_dispositions += 1
        else:
            disposition = ctx.config.default_disposition
            ctx.result.default_dispositions += 1
        if disposition not in ctx.info.codes:  # the campaign's vocabulary changed meanwhile
            disposition = ctx.config.default_disposition
        wrap_started = call.ended_s if call.ended_s is not None else now
        self.calls.complete(
            call,
            disposition,
            now,
            wrap_s=max(0.0, now - wrap_started),
            callback_at=callback_at,
            # a callback for the group goes to whichever agent of it is free when it is due
            callback_agent=None if row is None or row.callback_to_group else row.agent_code,
            applied=row,
        )

    def close_wraps(self, now: float) -> None:
        """After the drain limit, stop waiting for agents' dispositions."""
        ctx = self.ctx
        for call in ctx.in_phase(Phase.WRAP):
            with ctx.session() as session:
                row = dispositions_for(session=session, attempt_ids=[call.attempt_id]).get(
                    call.attempt_id
                )
            self._complete_wrap(call, row, now)
