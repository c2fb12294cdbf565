"""Consulting a colleague on a live call, the three-way call, and handing the call over.

An agent on a call who makes an internal call to a colleague (``internal_call`` with an agent
target, by 工號) puts the callee on hold and consults: the colleague, if ready and reachable
by this loop, is reserved for the call (a pop on their soft-phone with the call's lead and
parameters). ``three_way`` joins them to the call (the gateway's ``conference``: each of the
three hears the other two). The first agent leaving — hanging up, or transferring — during
the consultation or the three-way call hands the call to the colleague (an attended
transfer: the gateway's bridge moved, the attempt follows them). Cancelling the consultation,
or the colleague leaving, releases the colleague (the gateway drops them from the call).

The gateway Protocol has no agent-to-agent bridge: while consulting, the two agents are not
connected to each other by the gateway (on a desk phone, they speak on their own line).
"""

from __future__ import annotations

import logging
import uuid

from sqlmodel import Session, select

from dialer.agent_service import (
    AgentNotFound,
    HangUp,
    agent_from_seat,
    dialer_action,
    last_logged,
    pop_call,
)
from dialer.agents import Agent, AgentAction, AgentState, TransferKind
from dialer.attended.phones import AgentPhones
from dialer.attended.state import LiveCall, RunContext
from dialer.exceptions import AgentError, GatewayError
from dialer.gateway import CallParameters
from dialer.models import AgentSeat

__all__ = ["Consults"]

log = logging.getLogger("dialer.attended")

#: States of the first agent in which a consulted colleague stays on the call.
_CONSULTING = frozenset({AgentState.CONSULTING, AgentState.CONFERENCE})


class Consults:
    """The colleagues consulted on the run's calls (see the module docstring)."""

    def __init__(self, ctx: RunContext, phones: AgentPhones) -> None:
        self.ctx = ctx
        self.phones = phones
        # agent call ids whose consultation found nobody to reserve (not asked again)
        self._nobody: set[str] = set()

    def seat_ids(self, calls: list[LiveCall]) -> set[uuid.UUID]:
        """The consulted colleagues' seats, to be read with the calls' agents."""
        return {c.consult_seat_id for c in calls if c.consult_seat_id is not None}

    def follow(
        self, call: LiveCall, agent: Agent, seats: dict[uuid.UUID, AgentSeat], now: float
    ) -> None:
        """Follow the first agent, still on the call, and the colleague."""
        colleague = None if call.consult_seat_id is None else seats.get(call.consult_seat_id)
        if call.consult_seat_id is not None and not self._still_on(call, colleague):
            log.info("call %s: the consulted agent %s left", call.call_id, call.consult_code)
            self._drop_colleague(call, now, release=False)
            return
        if agent.state is AgentState.CONSULTING and call.consult_seat_id is None:
            if call.agent_call_id not in self._nobody:
                self._reserve(call, now)
        elif agent.state is AgentState.CONFERENCE and call.consult_seat_id is not None:
            if not call.conferenced:
                self._conference(call, now)
        elif agent.state not in _CONSULTING:
            self._nobody.discard(call.agent_call_id)  # a later consultation asks again
            if call.consult_seat_id is not None:
                self._drop_colleague(call, now, release=True)  # the consultation was cancelled

    def hand_over(self, call: LiveCall, seats: dict[uuid.UUID, AgentSeat], now: float) -> bool:
        """The first agent left: the call goes to the colleague still on it (True), if any."""
        seat_id, code = call.consult_seat_id, call.consult_code
        if seat_id is None or code is None or not self._still_on(call, seats.get(seat_id)):
            return False
        try:
            self.ctx.gateway.transfer_to_agent(
                call.call_id, agent_id=code, skill_group=self.ctx.info.skill_group, now=now
            )
        except GatewayError as exc:
            log.warning("could not hand call %s to agent %s: %s", call.call_id, code, exc)
            return False
        call.seat_id, call.agent_code = seat_id, code
        call.consult_seat_id = call.consult_code = None
        call.conferenced = call.held = False
        self.ctx.result.transfers += 1
        return True

    def release(self, call: LiveCall, now: float) -> None:
        """The call is over: a colleague still on it leaves it too (hung up, reason
        ``callee_hung_up``)."""
        if call.consult_seat_id is not None:
            self._hang_up_colleague(call, now, reason="callee_hung_up")
            call.consult_seat_id = call.consult_code = None
            call.conferenced = False

    # -- internals ------------------------------------------------------------------------

    def _still_on(self, call: LiveCall, seat: AgentSeat | None) -> bool:
        return seat is not None and self._on(call, agent_from_seat(seat))

    @staticmethod
    def _on(call: LiveCall, agent: Agent) -> bool:
        """Whether the colleague is still on the call."""
        return agent.call_id == call.agent_call_id and agent.state in (
            AgentState.ON_CALL,
            AgentState.ON_HOLD,
            AgentState.CONSULTING,
            AgentState.CONFERENCE,
        )

    def _consult_target(self, session: Session, call: LiveCall) -> str | None:
        """The 工號 the first agent's last internal call on this call went to."""
        assert call.seat_id is not None
        entry = last_logged(
            session=session,
            agent_id=call.seat_id,
            call_id=call.agent_call_id,
            action=AgentAction.INTERNAL_CALL,
        )
        target = {} if entry is None else entry.details.get("target") or {}
        code = target.get("target")
        if target.get("kind") != TransferKind.AGENT.value or not isinstance(code, str):
            return None
        return code

    def _reserve(self, call: LiveCall, now: float) -> None:
        """Reserve the consulted colleague: the call popped on their soft-phone."""
        ctx = self.ctx
        with ctx.session() as session:
            code = self._consult_target(session, call)
            seat = (
                None
                if code is None
                else session.exec(select(AgentSeat).where(AgentSeat.agent_code == code)).first()
            )
        if code is None or seat is None or seat.state is not AgentState.READY:
            log.info("call %s: the consulted agent %s is not ready", call.call_id, code)
            self._nobody.add(call.agent_call_id)
            return
        if not self.phones.routable(code):
            self._nobody.add(call.agent_call_id)
            return
        params = CallParameters(ctx.info.caller, call.phone, code, ctx.info.skill_group)
        try:
            with ctx.session() as session:
                pop_call(
                    session=session,
                    agent_id=seat.id,
                    client_id=ctx.client_id,
                    attempt_id=call.attempt_id,
                    lead=call.lead,
                    params=params,
                    script=ctx.info.script,
                    at=max(ctx.at(now), seat.state_since),
                    call_id=call.agent_call_id,
                )
        except AgentError as exc:
            log.info("call %s: agent %s cannot be consulted: %s", call.call_id, code, exc)
            self._nobody.add(call.agent_call_id)
            return
        call.consult_seat_id, call.consult_code = seat.id, code

    def _conference(self, call: LiveCall, now: float) -> None:
        assert call.consult_code is not None
        try:
            if call.held:  # off hold first: the callee joins the two agents
                self.ctx.gateway.unhold(call.call_id, now=now)
                call.held = False
            self.ctx.gateway.conference(call.call_id, agent_id=call.consult_code, now=now)
        except GatewayError as exc:
            log.warning(
                "could not add agent %s to call %s: %s", call.consult_code, call.call_id, exc
            )
            return
        call.conferenced = True
        call.held = False  # the three of them hear each other

    def _drop_colleague(self, call: LiveCall, now: float, *, release: bool) -> None:
        """The colleague leaves the call: off the gateway's mix, and (``release``) their
        soft-phone hung up (reason ``consult ended``)."""
        if call.conferenced and call.agent_code is not None:
            try:  # back to the first agent alone
                self.ctx.gateway.transfer_to_agent(
                    call.call_id,
                    agent_id=call.agent_code,
                    skill_group=self.ctx.info.skill_group,
                    now=now,
                )
            except GatewayError as exc:
                log.warning("could not drop the colleague from call %s: %s", call.call_id, exc)
        if release:
            self._hang_up_colleague(call, now, reason="consult ended")
        call.consult_seat_id = call.consult_code = None
        call.conferenced = False

    def _hang_up_colleague(self, call: LiveCall, now: float, *, reason: str) -> None:
        ctx = self.ctx
        seat_id = call.consult_seat_id
        if seat_id is None:
            return
        try:
            with ctx.session() as session:
                dialer_action(
                    session=session,
                    agent_id=seat_id,
                    command=HangUp(reason=reason),
                    when=lambda agent: self._on(call, agent),
                    at=ctx.at(now),
                )
        except (AgentError, AgentNotFound) as exc:
            log.info("call %s: the consulted agent kept it: %s", call.call_id, exc)
