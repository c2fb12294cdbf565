"""Launching in an attended run: the pacing decision, the abandon guard, and originating.

Every tick :class:`Launcher` builds the same :class:`dialer.pacing.PacingSnapshot` as the
simulator from the campaign's seats and the run's calls, asks the campaign's policy how many
calls to launch and passes the answer through the abandon guard; it hangs up ringing calls
no agent would be free for, and dials the rest through the one dial path (lease, attempt row
before ``originate``, suppression re-checked at dial time).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from campaigns.hopper import LeadNotCallable, Lease
from campaigns.models import Lead
from dialer.agent_service import (
    AgentNotFound,
    Dial,
    SkipPreview,
    agent_from_seat,
    dialer_action,
    last_logged,
    list_agents,
    offer_preview,
    post_event,
)
from dialer.agents import CALL_STATES, Agent, AgentAction, AgentState
from dialer.attended.calls import CallHandler
from dialer.attended.phones import AgentPhones
from dialer.attended.state import LiveCall, Phase, RunContext
from dialer.dialing import StartedAttempt
from dialer.exceptions import AgentError, GatewayError
from dialer.gateway import CallParameters, HangupParty, OriginateRequest
from dialer.guard import guard_for
from dialer.models import AgentEventKind, AgentSeat
from dialer.pacer import DISPOSITION_FOR
from dialer.pacing import PacingMode, PacingSnapshot, PacingStats, policy_for_mode

__all__ = ["Launcher"]

log = logging.getLogger("dialer.attended")


def manual_dial_target(
    session: Session, seat: AgentSeat, soft_call_id: str
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(campaign id, campaign lead id) of the lead an agent dialed by hand on
    ``soft_call_id``, as the agent API logged the dial; None for a number typed by hand."""
    entry = last_logged(
        session=session, agent_id=seat.id, call_id=soft_call_id, action=AgentAction.DIAL
    )
    details = {} if entry is None else entry.details
    try:
        return uuid.UUID(str(details["campaign_id"])), uuid.UUID(str(details["campaign_lead_id"]))
    except (KeyError, ValueError):
        return None


def lead_data(lease: Lease, lead: Lead | None) -> dict[str, Any]:
    """What a pop shows of the lead: its number, attempt, callback and the list's data."""
    data: dict[str, Any] = {
        "id": str(lease.lead_id),
        "phone": lease.phone_e164,
        "attempt_no": lease.attempt_no,
        "callback_at": None if lease.callback_at is None else lease.callback_at.isoformat(),
    }
    if lead is not None:
        data.update(
            phone_type=lead.phone_type,
            region=lead.phone_region_desc or lead.phone_region,
            carrier=lead.phone_carrier,
            attributes=dict(lead.attributes),
        )
    return data


@dataclass(frozen=True)
class _Preview:
    """A lead shown to an agent before dialing, its lease held meanwhile."""

    lease: Lease
    lead: dict[str, Any]
    offered_s: float

    def shown_to(self, agent: Agent) -> bool:
        """Whether the agent is still looking at this lead (a preview has no call id yet)."""
        return agent.state is AgentState.PREVIEWING and agent.lead_id == str(self.lease.lead_id)


class Launcher:
    """Decides each tick how many calls to launch, and launches them."""

    def __init__(
        self,
        ctx: RunContext,
        calls: CallHandler,
        phones: AgentPhones,
        *,
        check: Callable[[float], None],
        on_launch: Callable[[PacingSnapshot, int], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.calls = calls
        self.phones = phones
        self.check = check  # the loop's leadership and campaign-status check
        self.on_launch = on_launch
        info = ctx.info
        self.policy = policy_for_mode(
            info.mode,
            power_ratio=info.power_ratio,
            abandon_guard=info.guard,
            abandon_risk=info.risk,
        )
        self.guard = guard_for(info.guard, info.risk)
        self.stats_cache: tuple[float, PacingStats] | None = None
        self.quiet_until_s = -1.0
        #: soft-phone call ids of manual dials already looked at (placed or not ours)
        self.seen_dials: set[str] = set()
        #: preview mode: the lead each agent is looking at, by seat
        self.previews: dict[uuid.UUID, _Preview] = {}

    def _pacing_stats(self, now: float) -> PacingStats:
        ctx = self.ctx
        if self.stats_cache is None or now - self.stats_cache[0] >= 5.0:
            self.stats_cache = (now, ctx.stats.snapshot(now, ctx.info.max_ring_s))
        return self.stats_cache[1]

    def snapshot(self, now: float, staff: Collection[AgentSeat]) -> PacingSnapshot:
        """The pacing snapshot for the agents ``staff`` (the skill group serving the client)."""
        ctx = self.ctx
        moment = ctx.at(now)
        by_seat = {c.seat_id: c for c in ctx.in_phase(Phase.CONNECTED)}
        ready = [
            s for s in staff if s.state is AgentState.READY and self.phones.routable(s.agent_code)
        ]
        talking: list[float] = []
        wrapping: list[float] = []
        for seat in staff:
            if seat.state in CALL_STATES:
                ours = by_seat.get(seat.id)
                if ours is not None and ours.connected_s is not None:
                    talking.append(max(0.0, now - ours.connected_s))
                else:
                    talking.append(max(0.0, (moment - seat.state_since).total_seconds()))
            elif seat.state is AgentState.WRAP_UP:
                wrapping.append(max(0.0, (moment - seat.state_since).total_seconds()))
        counts = ctx.window.counts(now)
        return PacingSnapshot(
            now_s=now,
            agents_signed_in=len(ready) + len(talking) + len(wrapping),
            agents_ready=len(ready),
            talk_elapsed_s=talking,
            wrap_elapsed_s=wrapping,
            # an agent's own call needs no other agent: not part of the pacing exposure
            ringing_elapsed_s=[
                now - c.originated_s for c in ctx.in_phase(Phase.RINGING) if not c.manual
            ],
            calls_waiting=sum(1 for c in ctx.in_phase(Phase.WAITING) if not c.manual),
            stats=self._pacing_stats(now),
            live_answers_in_window=counts.live_answers,
            abandoned_in_window=counts.abandoned,
            abandon_cap=ctx.info.cap,
        )

    def launch(self, now: float) -> None:
        """One pacing decision: cancel surplus ringing calls, or launch what the guard allows
        (in preview mode: offer each ready agent a lead to look at first)."""
        ctx = self.ctx
        with ctx.session() as session:
            staff = list_agents(
                session=session, client_scope=[ctx.client_id], skill_group=ctx.info.skill_group
            )
        if ctx.info.mode is PacingMode.PREVIEW:
            self._follow_previews(now, staff)
            self._offer_previews(now, staff)
            return
        if ctx.info.mode is PacingMode.AGENTLESS:
            # the IVR takes every answer at once: keep the campaign's lines busy
            free = ctx.info.lines - len(ctx.calls)
            if free > 0 and now >= self.quiet_until_s:
                self._dial(free, now)
            return
        snapshot = self.snapshot(now, staff)
        if self._cancel_surplus(snapshot, now):
            return  # the next tick launches from the smaller exposure
        launch = self.guard(snapshot, self.policy.calls_to_launch(snapshot))
        if snapshot.agents_signed_in <= 0:
            launch = 0  # attended dialing never launches with no agent at work
        if self.on_launch is not None:
            self.on_launch(snapshot, launch)
        if launch > 0 and now >= self.quiet_until_s:
            self._dial(launch, now)

    def _cancel_surplus(self, snapshot: PacingSnapshot, now: float) -> int:
        """Hang up ringing calls beyond what the guard would launch now; returns how many.

        The guard let each call launch for the agents it counted then. When fewer will be free
        (an agent went not ready, signed out or lost their phone), the guard is asked how
        many fresh calls it would allow in flight with the agents there are now; ringing
        calls beyond that are hung up, longest ringing first, once they have rung
        ``surplus_min_ring_s``. A call already ringing is less likely to be answered than a
        fresh one, so this cancels no more than the surplus. An unanswered call hung up is a
        no-answer attempt (it counts: the person's phone rang), never an abandon.
        """
        ctx = self.ctx
        min_ring = ctx.config.surplus_min_ring_s
        ringing = [c for c in ctx.in_phase(Phase.RINGING) if not c.manual]
        if min_ring is None or not ringing:
            return 0
        room = self.guard(dataclasses.replace(snapshot, ringing_elapsed_s=()), len(ringing))
        surplus = len(ringing) - room
        if surplus <= 0:
            return 0

        def rung(call: LiveCall) -> float:
            return now - (call.ringing_s if call.ringing_s is not None else call.originated_s)

        cancelled = 0
        for call in sorted(ringing, key=rung, reverse=True)[:surplus]:
            if rung(call) < min_ring:
                break
            if not self.calls.hang_up(call, now, HangupParty.SYSTEM):
                continue
            # a ringing call hung up reports nothing (the Protocol): complete it here
            call.surplus = True
            call.ended_s = now
            call.hangup_by = HangupParty.SYSTEM
            self.calls.complete(call, DISPOSITION_FOR["no_answer"], now)
            cancelled += 1
        if cancelled:
            ctx.result.surplus_cancelled += cancelled
            log.info(
                "campaign %s: hung up %d ringing call(s) no agent would be free for",
                ctx.campaign_id,
                cancelled,
            )
        return cancelled

    def _dial(self, n: int, now: float) -> None:
        ctx = self.ctx
        moment = ctx.at(now)
        leases = ctx.path.lease(n, moment)
        if len(leases) < n:
            # the hopper is (nearly) empty right now: ask again in a while, not every tick
            self.quiet_until_s = now + ctx.config.hopper_backoff_s
        started = ctx.path.start(leases, moment)
        self._check_dialing(now)
        leads = self._leads([begun.lease for begun in started])
        for begun in started:
            call = self._originate(begun, leads.get(begun.lease.lead_id), now)
            lease = begun.lease
            if call is not None and lease.callback_agent is not None and lease.callback_at:
                self._callback_due(call, lease.callback_agent, lease.callback_at)

    def _check_dialing(self, now: float) -> None:
        if self.ctx.path.not_dialing:
            self.check(now)  # stop, saying why (paused, stopped, ...)
            self.ctx.halt("campaign no longer dialing", now)

    def _leads(self, leases: Collection[Lease]) -> dict[uuid.UUID, Lead]:
        """The leads of ``leases``, by id (one query)."""
        if not leases:
            return {}
        with self.ctx.session() as session:
            ids = [lease.lead_id for lease in leases]
            return {
                lead.id: lead for lead in session.exec(select(Lead).where(col(Lead.id).in_(ids)))
            }

    def _originate(
        self,
        begun: StartedAttempt,
        lead: Lead | None,
        now: float,
        *,
        seat_id: uuid.UUID | None = None,
        agent_code: str | None = None,
        soft_call_id: str | None = None,
    ) -> LiveCall | None:
        """Originate a started attempt (its row is written); a manual call names its agent.
        None when the gateway refused it (the attempt is then completed as failed)."""
        ctx = self.ctx
        lease, attempt_id = begun.lease, begun.attempt_id
        call = LiveCall(
            call_id="",
            attempt_id=attempt_id,
            lease_token=lease.lease_token,
            lead=lead_data(lease, lead),
            phone=lease.phone_e164,
            originated_s=now,
            callback_agent=lease.callback_agent,
            seat_id=seat_id,
            agent_code=agent_code,
            manual=seat_id is not None,
            soft_call_id=soft_call_id,
        )
        request = OriginateRequest(
            campaign_id=str(ctx.campaign_id),
            lead_id=str(lease.lead_id),
            attempt_id=str(attempt_id),
            params=CallParameters(
                ctx.info.caller, lease.phone_e164, agent_code, ctx.info.skill_group
            ),
            timeout_s=ctx.info.max_ring_s,
        )
        try:
            call.call_id = ctx.gateway.originate(request, now=now)
        except GatewayError as exc:
            log.warning("could not originate attempt %s: %s", attempt_id, exc)
            call.call_id = f"failed-{attempt_id.hex}"
            call.ended_s = now
            self.calls.complete(call, DISPOSITION_FOR["failed"], now)
            if seat_id is not None and soft_call_id is not None:
                reason = f"the call could not be placed: {exc}"
                self.calls.manual_failed(seat_id, soft_call_id, reason, now)
            return None
        ctx.calls[call.call_id] = call
        return call

    # -- preview ----------------------------------------------------------------------------

    def _offer_previews(self, now: float, staff: Collection[AgentSeat]) -> None:
        """Offer each ready agent without one a lead to preview (longest ready first): the
        leads are leased (held while they look) and popped with their data, the call
        parameters and the script; a lead whose callback is pinned to a ready agent goes to
        that agent. The agent dials it (placed as the agent's own call) or skips it (the lead
        goes back to the hopper, no attempt)."""
        ctx = self.ctx
        if now < self.quiet_until_s:
            return
        ready = sorted(
            (
                s
                for s in staff
                if s.state is AgentState.READY
                and s.id not in self.previews
                and self.phones.routable(s.agent_code)
            ),
            key=lambda s: s.state_since,
        )
        if not ready:
            return
        leases = ctx.path.lease(len(ready), ctx.at(now))
        if len(leases) < len(ready):
            self.quiet_until_s = now + ctx.config.hopper_backoff_s
        free = {s.agent_code: s for s in ready}  # longest ready first
        offers: list[tuple[AgentSeat, Lease]] = []
        others: list[Lease] = []
        for lease in leases:
            code = lease.callback_agent
            if code is not None and code in free:
                offers.append((free.pop(code), lease))
            else:
                others.append(lease)
        offers += zip(free.values(), others, strict=False)
        leads = self._leads(leases)
        for seat, lease in offers:
            self._offer(seat, lease, leads.get(lease.lead_id), now)

    def _offer(self, seat: AgentSeat, lease: Lease, found: Lead | None, now: float) -> None:
        ctx = self.ctx
        lead = lead_data(lease, found)
        params = CallParameters(
            ctx.info.caller, lease.phone_e164, seat.agent_code, ctx.info.skill_group
        )
        try:
            with ctx.session() as session:
                offer_preview(
                    session=session,
                    agent_id=seat.id,
                    client_id=ctx.client_id,
                    lead=lead,
                    params=params,
                    script=ctx.info.script,
                    at=max(ctx.at(now), seat.state_since),
                )
        except AgentError as exc:  # the agent moved since it was read
            log.info("agent %s not offered a preview: %s", seat.agent_code, exc)
            ctx.path.release(lease.lease_token, ctx.at(now))
            return
        ctx.path.hold(lease)
        self.previews[seat.id] = _Preview(lease, lead, now)

    def _follow_previews(self, now: float, staff: Collection[AgentSeat]) -> None:
        """The agents' answers to their previews: dialed (the call is placed for them), or
        skipped, signed out, gone (the lead goes back to the hopper)."""
        ctx = self.ctx
        seats = {s.id: s for s in staff}
        for seat_id, preview in list(self.previews.items()):
            seat = seats.get(seat_id)
            agent = None if seat is None else agent_from_seat(seat)
            if seat is not None and agent is not None and preview.shown_to(agent):
                limit = ctx.info.preview_dial_after_s  # still looking
                if limit is not None and now - preview.offered_s >= limit:
                    self._dial_for_agent(seat, now)
                continue
            del self.previews[seat_id]
            soft_id = None if agent is None else agent.call_id
            if (
                seat is None
                or agent is None
                or agent.state is not AgentState.DIALING
                or agent.lead_id != str(preview.lease.lead_id)
                or soft_id is None
            ):  # skipped, signed out, gone: the lead goes back
                ctx.path.release(preview.lease.lease_token, ctx.at(now))
                continue
            self.seen_dials.add(soft_id)
            self._start_manual(preview.lease, seat_id, seat.agent_code, soft_id, now)

    def _dial_for_agent(self, seat: AgentSeat, now: float) -> None:
        """The preview's time is up: dial it on the agent's behalf (placed next tick)."""
        ctx = self.ctx
        preview = self.previews[seat.id]
        try:
            with ctx.session() as session:
                dialer_action(  # unless the agent decided meanwhile
                    session=session,
                    agent_id=seat.id,
                    command=Dial(reason="preview timed out"),
                    when=preview.shown_to,
                    at=ctx.at(now),
                )
        except (AgentError, AgentNotFound) as exc:
            log.info("preview of agent %s not dialed for them: %s", seat.agent_code, exc)

    def drop_previews(self, now: float) -> None:
        """Dialing stops: the leads previewed and not dialed go back to the hopper, and their
        agents leave the preview (``skip_preview``, reason ``dialing stopped``)."""
        ctx = self.ctx
        for seat_id, preview in list(self.previews.items()):
            ctx.path.release(preview.lease.lease_token, ctx.at(now))
            try:
                with ctx.session() as session:
                    dialer_action(  # unless the agent moved meanwhile
                        session=session,
                        agent_id=seat_id,
                        command=SkipPreview(reason="dialing stopped"),
                        when=preview.shown_to,
                        at=ctx.at(now),
                    )
            except (AgentError, AgentNotFound) as exc:
                log.info("agent %s kept their preview: %s", seat_id, exc)
        self.previews.clear()

    # -- calls agents dial by hand ----------------------------------------------------------

    def manual_dials(self, now: float) -> None:
        """Place the calls agents dialed by hand to a lead of this campaign.

        An agent of the campaign's skill group who dials a lead (a callback of theirs, through
        the soft-phone) is left ``dialing`` by the agent API; the loop finds them here, leases
        that lead by the hopper's rules (:func:`campaigns.hopper.lease_lead`: calling window,
        attempt limit, do-not-call, due time), writes the attempt row and originates, with the
        agent's 工號 in the call parameters. The answer goes to that agent, whatever answered
        (:meth:`AgentDesk.route`). A lead the rules refuse is not dialed: the agent's dial
        fails with the reason (``call_failed``).
        """
        ctx = self.ctx
        known = {c.agent_call_id for c in ctx.calls.values()}
        requests: list[tuple[uuid.UUID, str, str, uuid.UUID]] = []
        with ctx.session() as session:
            seats = session.exec(
                select(AgentSeat).where(AgentSeat.state == AgentState.DIALING)
            ).all()
            for seat in seats:
                agent = agent_from_seat(seat)
                soft_id = agent.call_id
                if soft_id is None or soft_id in known or soft_id in self.seen_dials:
                    continue
                self.seen_dials.add(soft_id)
                if (
                    seat.current_client_id != ctx.client_id
                    or ctx.info.skill_group not in seat.skill_groups
                    or not self.phones.routable(seat.agent_code)
                ):
                    continue
                target = manual_dial_target(session, seat, soft_id)
                if target is None or target[0] != ctx.campaign_id:
                    continue  # a number typed by hand, or another campaign's lead
                requests.append((seat.id, seat.agent_code, soft_id, target[1]))
        for seat_id, code, soft_id, campaign_lead_id in requests:
            self._dial_for(seat_id, code, soft_id, campaign_lead_id, now)

    def _dial_for(
        self, seat_id: uuid.UUID, code: str, soft_id: str, campaign_lead_id: uuid.UUID, now: float
    ) -> None:
        try:
            lease = self.ctx.path.lease_one(campaign_lead_id, self.ctx.at(now))
        except LeadNotCallable as exc:
            log.info(
                "agent %s's manual call to lead %s not placed: %s", code, campaign_lead_id, exc
            )
            self.calls.manual_failed(seat_id, soft_id, f"not dialed: {exc}", now)
            return
        self._start_manual(lease, seat_id, code, soft_id, now)

    def _start_manual(
        self, lease: Lease, seat_id: uuid.UUID, code: str, soft_id: str, now: float
    ) -> None:
        """Write the attempt of a lead an agent dials (do-not-call re-checked) and place it."""
        started = self.ctx.path.start([lease], self.ctx.at(now))
        self._check_dialing(now)
        if not started:
            reason = "not dialed: the number went onto a do-not-call list, or dialing stopped"
            self.calls.manual_failed(seat_id, soft_id, reason, now)
            return
        self._originate(
            started[0],
            self._leads([lease]).get(lease.lead_id),
            now,
            seat_id=seat_id,
            agent_code=code,
            soft_call_id=soft_id,
        )

    def _callback_due(self, call: LiveCall, agent_code: str, callback_at: datetime) -> None:
        """Tell the agent who scheduled the callback that its lead is being called."""
        ctx = self.ctx
        try:
            with ctx.session() as session:
                seat_id = session.exec(
                    select(AgentSeat.id).where(AgentSeat.agent_code == agent_code)
                ).first()
                if seat_id is None:
                    return
                post_event(
                    session=session,
                    agent_id=seat_id,
                    client_id=ctx.client_id,
                    kind=AgentEventKind.CALLBACK_DUE,
                    call_id=call.agent_call_id,
                    attempt_id=call.attempt_id,
                    payload={
                        "call_id": call.agent_call_id,
                        "attempt_id": str(call.attempt_id),
                        "lead": call.lead,
                        "callback_at": callback_at.isoformat(),
                    },
                )
        except AgentError as exc:
            log.info(
                "callback agent %s not told about attempt %s: %s", agent_code, call.attempt_id, exc
            )
