"""The callee's side of an attended run: gateway call events, and each attempt's completion.

:class:`CallHandler` turns what the gateway reports about a call (ringing, answered, busy,
failed, hung up, message finished) into the call's phase, the recent statistics, the
compliance window and, when the call is over, the attempt's outcome written through the one
dial path (:class:`dialer.dialing.DialPath`).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from campaigns.hopper import AttemptOutcome
from campaigns.models import AmdResult, CallAttempt
from dialer.agent_service import (
    AgentNotFound,
    CallFailed,
    dialer_action,
    far_end_hung_up,
)
from dialer.agents import AgentState
from dialer.attended.config import MACHINE_MESSAGE, SURPLUS_CAUSE
from dialer.attended.state import LiveCall, Phase, RunContext
from dialer.dialing import failure_disposition, trunk_refused_reason
from dialer.exceptions import AgentError, GatewayError
from dialer.gateway import (
    Answered,
    AnswerKind,
    Busy,
    CallEvent,
    Failed,
    FailureCause,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    RecordingReady,
    Ringing,
    TransferOutFailed,
    TransferredOut,
)
from dialer.ivr import SurveyIvr
from dialer.ivr_calls import IvrCalls
from dialer.models import AgentDisposition
from dialer.pacer import DISPOSITION_FOR, disposition_of_interview
from dialer.scenario import AmdPolicy
from dialer.stats import DialOutcome

__all__ = ["CallHandler"]

log = logging.getLogger("dialer.attended")

# As the simulated loop records them: our side's agent is the caller.
_HANGUP_CAUSE = {
    HangupParty.AGENT: "caller",
    HangupParty.CALLEE: "callee",
    HangupParty.SYSTEM: "system",
}


class CallHandler:
    """Gateway events of the run's calls, and the completion of their attempts.

    In an agentless campaign (``ivr`` given) a person's answer is interviewed by the IVR
    (:class:`dialer.ivr_calls.IvrCalls`: prompts spoken, keys collected); the interview is
    stored in the survey tables and the attempt gets the disposition its end means.
    """

    def __init__(
        self, ctx: RunContext, ivr: IvrCalls | None = None, *, agentless: bool = False
    ) -> None:
        self.ctx = ctx
        #: the IVR on the campaign's questionnaire (agentless interviews, agents' hand-backs)
        self.ivr = ivr
        self.agentless = agentless and ivr is not None

    # -- gateway events -------------------------------------------------------------------

    def on_event(self, call: LiveCall, event: CallEvent, now: float) -> None:
        at = event.at_s
        if call.phase is Phase.IVR and self.ivr is not None:
            self.ivr.handle(event, now)
            if isinstance(event, HungUp):
                self._interview_over(call, event, now)
            return
        if isinstance(event, Ringing):
            if call.ringing_s is None:
                call.ringing_s = at
        elif isinstance(event, Answered):
            self._on_answer(call, event)
        elif isinstance(event, NoAnswer | Busy | Failed):
            self._on_unanswered(call, event, now)
        elif isinstance(event, HungUp):
            self._on_hung_up(call, event, now)
        elif isinstance(event, MessageFinished) and call.phase is Phase.CLOSING:
            self.close(call, at, now)

    def keep_recording(self, event: RecordingReady) -> None:
        """Store a finished call's recording with its attempt (the recordings store, its
        retention), then delete the gateway's file; on failure the file stays, logged."""
        from dialer.recordings import store_recording

        path = Path(event.path)
        try:
            with self.ctx.session() as session:
                attempt = session.get(CallAttempt, uuid.UUID(event.attempt_id))
                if attempt is None:
                    log.error("recording %s: attempt %s is not ours", path, event.attempt_id)
                    return
                store_recording(
                    session=session, attempt=attempt, path=path, duration_s=event.duration_s
                )
        except Exception:
            log.exception("the recording of call %s could not be stored; kept at %s",
                          event.call_id, path)  # fmt: skip
            return
        self.ctx.result.recordings += 1
        path.unlink(missing_ok=True)

    def on_handed_out(self, event: CallEvent, now: float) -> None:
        """An event of a call an agent transferred out (its attempt is theirs): a number
        that did not answer leaves the callee on hold with nobody, so it is hung up."""
        ctx = self.ctx
        number = ctx.handed_out.get(event.call_id, "")
        if isinstance(event, TransferredOut):
            log.info("call %s: the outside number %s answered", event.call_id, number)
        elif isinstance(event, TransferOutFailed):
            ctx.result.transfers_out_failed += 1
            log.warning(
                "call %s: the outside number %s did not answer (%s); hanging up the callee",
                event.call_id, number, event.reason,
            )  # fmt: skip
            try:
                ctx.gateway.hang_up(event.call_id, now=now, by=HangupParty.SYSTEM)
            except GatewayError as exc:
                log.warning("could not hang up call %s: %s", event.call_id, exc)
                ctx.handed_out.pop(event.call_id, None)
        elif isinstance(event, HungUp):
            ctx.handed_out.pop(event.call_id, None)

    def manual_failed(self, seat_id: uuid.UUID, soft_call_id: str, reason: str, now: float) -> None:
        """An agent's manual call did not connect (not placed, busy, no answer, failed): the
        agent, if still dialing it, leaves it (``call_failed``, with the reason) to wrap up."""
        ctx = self.ctx
        try:
            with ctx.session() as session:
                dialer_action(  # unless the agent hung up already
                    session=session,
                    agent_id=seat_id,
                    command=CallFailed(reason=reason[:200]),
                    when=lambda a: a.state is AgentState.DIALING and a.call_id == soft_call_id,
                    at=ctx.at(now),
                )
        except (AgentError, AgentNotFound) as exc:  # nothing to undo
            log.info("agent %s: manual call %s not closed: %s", seat_id, soft_call_id, exc)

    def _on_answer(self, call: LiveCall, event: Answered) -> None:
        ctx = self.ctx
        at = event.at_s
        # The network's answer: the safe-harbour clock started there, not at the AMD verdict.
        call.answered_s = event.answer_time_s
        call.answer_kind = event.kind
        if call.ringing_s is None:
            call.ringing_s = call.originated_s
        human = event.kind is AnswerKind.HUMAN
        ctx.stats.record_outcome(
            at, DialOutcome.HUMAN if human else DialOutcome.MACHINE, event.ring_time_s
        )
        policy = ctx.config.amd_policy
        if self.agentless and (human or policy is AmdPolicy.PASS_TO_AGENT):
            # agentless: the IVR interviews whoever answered, at once (no agent to wait for)
            call.connected_s = at  # the interview is the conversation
            ctx.path.answered(call.attempt_id, ctx.at(at), handle=event.handle)
            self._interview(call, at)
            return
        if human or policy is AmdPolicy.PASS_TO_AGENT or call.manual:
            if not human:
                ctx.result.machine_answers += 1
            call.phase = Phase.WAITING
            call.waiting_since_s = event.answer_time_s
            # live: waiting for an agent
            ctx.path.answered(call.attempt_id, ctx.at(at), handle=event.handle)
            return
        ctx.result.machine_answers += 1
        call.phase = Phase.CLOSING
        if policy is AmdPolicy.LEAVE_MESSAGE:
            # the machine's call stays up for its message: a pacer taking over must end it
            ctx.path.answered(call.attempt_id, ctx.at(at), handle=event.handle, live=False)
            try:
                ctx.gateway.play_message(call.call_id, MACHINE_MESSAGE, now=at)
                return
            except GatewayError as exc:
                log.warning("could not leave a message on call %s: %s", call.call_id, exc)
        self.close(call, at, at)

    def _on_unanswered(self, call: LiveCall, event: NoAnswer | Busy | Failed, now: float) -> None:
        ctx = self.ctx
        at = event.at_s
        if isinstance(event, NoAnswer):
            outcome, result = "no_answer", DialOutcome.NO_ANSWER
        elif isinstance(event, Busy):
            outcome, result = "busy", DialOutcome.BUSY
        else:
            outcome, result = "failed", DialOutcome.FAILED
        ctx.stats.record_outcome(at, result, at - call.originated_s)
        call.ended_s = at
        disposition = DISPOSITION_FOR[outcome]
        if isinstance(event, Failed):
            disposition = failure_disposition(event.cause, ctx.info.codes)
            if event.cause is FailureCause.TRUNK_REFUSED:
                ctx.halt(trunk_refused_reason(event.detail), now)
                log.error(
                    "campaign %s: the trunk refused a call (%s); dialing stops",
                    ctx.campaign_id,
                    event.detail,
                )
        self.complete(call, disposition, now)
        if call.manual and call.seat_id is not None:
            self.manual_failed(call.seat_id, call.agent_call_id, outcome.replace("_", " "), now)

    def _on_hung_up(self, call: LiveCall, event: HungUp, now: float) -> None:
        at = event.at_s
        if call.phase is Phase.CONNECTED:
            self.conversation_over(call, at, event.by)
            return
        if call.phase is Phase.WRAP:
            return  # already over
        call.ended_s = at
        call.hangup_by = event.by
        if call.phase is Phase.WAITING:
            # The callee gave up before an agent was free: counted as abandoned (the
            # conservative reading for the cap).
            if call.live:
                call.abandoned = True
                self.count_live_answer(at, abandoned=True)
            self.complete(call, "abandoned" if call.live else "answering_machine", now)
            return
        if call.phase is Phase.RINGING:
            self.complete(call, "no_answer", now)
            return
        # closing: the safe-harbour message or the machine's hang-up is over
        self.complete(call, "abandoned" if call.abandoned else "answering_machine", now)

    def _interview(self, call: LiveCall, now: float) -> None:
        assert self.ivr is not None
        call.phase = Phase.IVR
        self.ivr.start(call.call_id, str(call.lead.get("id")), str(call.attempt_id), now)

    def hand_to_ivr(self, call: LiveCall, now: float) -> bool:
        """The agent handed the callee back to the IVR (人工轉自動): the gateway takes the call
        from the agent, and the campaign's questionnaire interviews the callee; the attempt
        gets the interview's disposition. False (nothing changed) without a questionnaire."""
        if self.ivr is None:
            return False
        try:
            self.ctx.gateway.detach_agents(call.call_id, now=now)
        except GatewayError as exc:
            log.warning("could not hand call %s to the IVR: %s", call.call_id, exc)
            return False
        call.held = False
        self._interview(call, now)
        return True

    def _interview_over(self, call: LiveCall, event: HungUp, now: float) -> None:
        """The IVR call ended (the goodbye hung up, or the callee broke off)."""
        ctx = self.ctx
        assert self.ivr is not None
        call.ended_s = event.at_s
        call.hangup_by = event.by
        assert call.connected_s is not None
        ctx.stats.record_talk(event.at_s, event.at_s - call.connected_s)
        driver = self.ivr.driver
        done = driver.for_attempt(str(call.attempt_id)) if isinstance(driver, SurveyIvr) else None
        disposition = disposition_of_interview(done) or ctx.config.default_disposition
        if disposition not in ctx.info.codes:
            disposition = ctx.config.default_disposition
        self.complete(call, disposition, now)

    # -- ending calls ---------------------------------------------------------------------

    def conversation_over(self, call: LiveCall, at: float, by: HangupParty) -> None:
        """A connected call ended: the agent (moved there if the callee hung up) wraps up."""
        ctx = self.ctx
        assert call.connected_s is not None
        assert call.seat_id is not None
        call.ended_s = at
        call.hangup_by = by
        call.phase = Phase.WRAP
        ctx.stats.record_talk(at, at - call.connected_s)
        if by is not HangupParty.AGENT:
            with ctx.session() as session:
                far_end_hung_up(
                    session=session,
                    agent_id=call.seat_id,
                    call_id=call.agent_call_id,
                    at=ctx.at(at),
                )
        ctx.wrapping.setdefault(call.seat_id, (call.agent_call_id, at))

    def close(self, call: LiveCall, at: float, now: float) -> None:
        """End a machine or abandoned call; its HungUp event completes the attempt."""
        if not self.hang_up(call, at, HangupParty.SYSTEM):
            call.ended_s = at
            self.complete(call, "abandoned" if call.abandoned else "answering_machine", now)

    def hang_up(self, call: LiveCall, at: float, by: HangupParty) -> bool:
        """Ask the gateway to hang the call up; False (logged) when it cannot."""
        try:
            self.ctx.gateway.hang_up(call.call_id, now=at, by=by)
        except GatewayError as exc:
            log.warning("could not hang up call %s: %s", call.call_id, exc)
            return False
        return True

    def drop(self, call: LiveCall, at: float, now: float) -> None:
        """A connected call whose agent's phone is gone: the callee is hung up (by the
        system) and the attempt completed as a dropped contact."""
        ctx = self.ctx
        assert call.connected_s is not None
        self.hang_up(call, at, HangupParty.SYSTEM)
        call.ended_s = at
        call.hangup_by = HangupParty.SYSTEM
        ctx.stats.record_talk(at, at - call.connected_s)
        ctx.result.dropped_calls += 1
        ctx.result.default_dispositions += 1
        self.complete(call, ctx.config.default_disposition, now, wrap_s=0.0)

    def count_live_answer(self, at: float, *, abandoned: bool) -> None:
        """Count a live answer (connected or abandoned) in the compliance window."""
        ctx = self.ctx
        # The window takes answers in time order; events polled late are stamped no earlier.
        at = max(at, ctx.last_window_s)
        ctx.last_window_s = at
        ctx.window.record_live_answer(at, abandoned=abandoned)
        ctx.result.live_answers += 1
        if abandoned:
            ctx.result.abandoned += 1
        if ctx.on_live_answer is not None:
            ctx.on_live_answer(at, abandoned)

    # -- attempts -------------------------------------------------------------------------

    def complete(
        self,
        call: LiveCall,
        disposition: str,
        now: float,
        *,
        wrap_s: float | None = None,
        callback_at: datetime | None = None,
        callback_agent: str | None = None,
        applied: AgentDisposition | None = None,
    ) -> None:
        """Complete the call's attempt with ``disposition`` (and mark the agent's
        disposition row ``applied``, in the same transaction); the call leaves the run."""
        ctx = self.ctx
        ended = call.ended_s if call.ended_s is not None else now
        amd = AmdResult.not_used
        if call.answer_kind is AnswerKind.HUMAN:
            amd = AmdResult.human
        elif call.answer_kind is AnswerKind.MACHINE:
            amd = AmdResult.machine
        talk = 0.0
        if call.connected_s is not None:
            talk = max(0.0, ended - call.connected_s)
        cause = None if call.hangup_by is None else _HANGUP_CAUSE[call.hangup_by]
        outcome = AttemptOutcome(
            disposition=disposition,
            ended_at=ctx.at(ended),
            ringing_at=None if call.ringing_s is None else ctx.at(call.ringing_s),
            answered_at=None if call.answered_s is None else ctx.at(call.answered_s),
            agent_connected_at=None if call.connected_s is None else ctx.at(call.connected_s),
            talk_s=round(talk, 1),
            wrap_s=None if wrap_s is None else round(wrap_s, 1),
            abandoned=call.abandoned,
            amd_result=amd,
            hangup_cause=SURPLUS_CAUSE if call.surplus else cause,
            agent_id=call.agent_code,
            callback_at=callback_at,
            callback_agent=callback_agent,
        )
        ctx.calls.pop(call.call_id, None)

        def mark_applied(session: Session) -> None:
            if applied is not None:
                row = session.get(AgentDisposition, applied.id)
                if row is not None:
                    row.applied_at = ctx.at(now)
                    session.add(row)

        ctx.path.complete(call.attempt_id, outcome, ctx.at(now), also=mark_applied)
