"""Agentless (IVR) interviews driven by the dialer's gateway events.

:class:`dialer.simulator.Simulation` takes an optional ``ivr`` hook (an :class:`IvrDriver`):
when it is given, an agentless call that a person answers is handed to ``start``, every
:class:`~dialer.gateway.DtmfReceived` to ``respond``, and a hang-up by the callee to
``hang_up`` (a break-off). Each :class:`IvrTurn` says what to play next: a prompt that expects
DTMF, or that the interview is over (the goodbye message is played, then the call is hung up).

:class:`SurveyIvr` is the driver on the pure survey engine (:mod:`surveys.engine` and
:mod:`surveys.ivr`): one :class:`~surveys.engine.InterviewEngine` for the questionnaire, one
interview state per call, an injected quota counter. Finished interviews are kept
(:meth:`SurveyIvr.finished`) and optionally handed to ``on_finished`` so a caller can persist
them. :meth:`SurveyIvr.simulated_respondent` is an :data:`IvrRespondent` for the simulated
gateway: seeded :class:`~surveys.ivr.SimulatedRespondent` callers that answer the real prompts
(keying valid options, sometimes deliberately invalid keys that get re-prompted, sometimes
hanging up).
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from dialer.distributions import LogNormal, TimeDistribution
from dialer.gateway import TelephonyGateway
from dialer.respondents import RespondentPrompt, RespondentReply
from surveys.engine import InterviewEngine, InterviewMode, InterviewState, InterviewStatus
from surveys.exceptions import SurveyError
from surveys.ivr import IvrInput, IvrPrompt, SimulatedRespondent, ivr_prompt, ivr_respond
from surveys.quotas import QuotaCounter
from surveys.schema import SpecialKind

__all__ = [
    "IvrDriver",
    "IvrInterview",
    "IvrOutcome",
    "IvrRespondent",
    "IvrTurn",
    "SurveyIvr",
    "play_turn",
]

IvrOutcome = Literal["completed", "not_eligible", "quota_full", "broken_off", "not_started"]
"""How an IVR interview ended (``not_started``: the interview could not be started)."""

_ENDED: dict[InterviewStatus, IvrOutcome] = {
    InterviewStatus.COMPLETED: "completed",
    InterviewStatus.NOT_ELIGIBLE: "not_eligible",
    InterviewStatus.QUOTA_FULL: "quota_full",
    InterviewStatus.BROKEN_OFF: "broken_off",
}
# What surveys.ivr.SimulatedRespondent keys when it mis-keys on purpose.
_DELIBERATE_INVALID = frozenset({"9999#", "*#*#"})
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_INTERVIEW_NAMESPACE = uuid.UUID("4d1f6c1e-8f0a-4bb4-9d53-1c1a7e0c2b71")


@dataclass(frozen=True, slots=True)
class IvrTurn:
    """What the dialer plays next on an IVR call.

    ``message_id`` names the message for the gateway and ``text`` is what text-to-speech reads
    out; ``keys`` maps the DTMF keys the prompt offers to what they mean (empty when any key or
    a number is expected). With ``expect_dtmf`` the caller's keys go to
    :meth:`IvrDriver.respond`; with ``over`` the message is the goodbye and the call is hung up
    once it has played (``outcome`` says how the interview ended).
    """

    message_id: str
    text: str = ""
    language: str = ""  # of ``text``: the interview's language
    expect_dtmf: bool = False
    keys: Mapping[str, str] = field(default_factory=dict)
    # how a caller keying digit by digit ends the answer (dialer.ivr_calls collects them)
    max_digits: int = 1
    terminator: str | None = None
    over: bool = False
    outcome: IvrOutcome | None = None


def play_turn(gateway: TelephonyGateway, call_id: str, turn: IvrTurn, now: float) -> None:
    """Play what ``turn`` says on the call (the gateway speaks its text when it has no
    recording of the message)."""
    gateway.play_message(
        call_id,
        turn.message_id,
        now=now,
        expect_dtmf=turn.expect_dtmf,
        text=turn.text or None,
        language=turn.language or None,
    )


@runtime_checkable
class IvrDriver(Protocol):
    """What drives an agentless call's interview (see the module docstring)."""

    def start(self, call_id: str, lead_id: str, attempt_id: str, at_s: float) -> IvrTurn:
        """A person answered: the first prompt (or, at once, the goodbye)."""
        ...

    def respond(self, call_id: str, digits: str, at_s: float) -> IvrTurn:
        """The caller keyed ``digits``: the next prompt, a re-prompt, or the goodbye."""
        ...

    def hang_up(self, call_id: str, at_s: float) -> None:
        """The call ended; an interview still running is broken off."""
        ...


IvrRespondent = Callable[[RespondentPrompt, IvrTurn], RespondentReply]
"""A simulated caller who hears an :class:`IvrTurn` and keys a reply (or hangs up)."""


@dataclass(frozen=True, slots=True)
class IvrInterview:
    """One finished IVR interview, for persisting (``state`` is the engine's final state)."""

    call_id: str
    lead_id: str
    attempt_id: str
    state: InterviewState
    outcome: IvrOutcome
    started_s: float
    ended_s: float
    prompts: int
    invalid_inputs: int


class _Live:
    __slots__ = (
        "attempt_id",
        "invalid",
        "lead_id",
        "prompt",
        "prompts",
        "retries",
        "started_s",
        "state",
    )

    def __init__(self, lead_id: str, attempt_id: str, state: InterviewState, at_s: float) -> None:
        self.lead_id = lead_id
        self.attempt_id = attempt_id
        self.state = state
        self.started_s = at_s
        self.prompt: IvrPrompt | None = None
        self.prompts = 0
        self.retries = 0
        self.invalid = 0


class SurveyIvr:
    """An :class:`IvrDriver` on the survey engine; see the module docstring.

    ``clock`` turns simulated seconds into the interview's timestamps (default: seconds after
    2000-01-01 UTC); ``attributes_for(lead_id)`` gives the lead attributes the questionnaire
    declares (piping, quotas); ``max_retries`` invalid inputs in a row are re-prompted, one more
    ends the call as a break-off (as :func:`surveys.ivr.run_ivr_interview` does).
    """

    def __init__(
        self,
        engine: InterviewEngine,
        *,
        quota_counter: QuotaCounter | None = None,
        clock: Callable[[float], datetime] | None = None,
        attributes_for: Callable[[str], Mapping[str, str | int | float | None]] | None = None,
        language: str | None = None,
        max_retries: int = 3,
        on_finished: Callable[[IvrInterview], None] | None = None,
    ) -> None:
        self.engine = engine
        self.quota_counter = quota_counter
        self.clock = clock or (lambda at_s: _EPOCH + timedelta(seconds=at_s))
        self.attributes_for = attributes_for
        self.language = language
        self.max_retries = max_retries
        self.on_finished = on_finished
        self._live: dict[str, _Live] = {}
        self._finished: list[IvrInterview] = []
        self._by_attempt: dict[str, IvrInterview] = {}
        self.not_started = 0

    # -- the driver -----------------------------------------------------------------------

    def start(self, call_id: str, lead_id: str, attempt_id: str, at_s: float) -> IvrTurn:
        """Start the call's interview and return its first prompt."""
        attributes = dict(self.attributes_for(lead_id)) if self.attributes_for else {}
        try:
            state = self.engine.start(
                interview_id=str(uuid.uuid5(_INTERVIEW_NAMESPACE, f"{attempt_id}:{call_id}")),
                respondent_key=lead_id,
                now=self.clock(at_s),
                language=self.language,
                attributes=attributes,
                call_id=call_id,
                mode=InterviewMode.IVR,
                quota_counter=self.quota_counter,
            )
        except SurveyError:
            # e.g. the lead lacks a required attribute: nothing to ask, say goodbye.
            self.not_started += 1
            return IvrTurn(message_id="ivr-goodbye", over=True, outcome="not_started")
        live = _Live(lead_id, attempt_id, state, at_s)
        self._live[call_id] = live
        return self._next(call_id, live, at_s, intro=self.engine.intro_text(state))

    def respond(self, call_id: str, digits: str, at_s: float) -> IvrTurn:
        """Apply the keys to the current question; re-prompt on invalid keys."""
        live = self._live.get(call_id)
        if live is None:
            return IvrTurn(message_id="ivr-goodbye", over=True)
        step = ivr_respond(
            self.engine,
            live.state,
            digits,
            now=self.clock(at_s),
            quota_counter=self.quota_counter,
        )
        if not step.accepted:
            live.invalid += 1
            live.retries += 1
            if live.retries > self.max_retries:
                live.state = self.engine.break_off(live.state, now=self.clock(at_s))
                return self._finish(call_id, live, at_s)
            return self._next(call_id, live, at_s, intro=step.error, retry=True)
        live.retries = 0
        live.state = step.state
        return self._next(call_id, live, at_s)

    def hang_up(self, call_id: str, at_s: float) -> None:
        """The caller hung up: a running interview is broken off."""
        live = self._live.get(call_id)
        if live is None:
            return
        if live.state.status in (InterviewStatus.IN_PROGRESS, InterviewStatus.SUSPENDED):
            live.state = self.engine.break_off(live.state, now=self.clock(at_s))
        self._finish(call_id, live, at_s)

    # -- results --------------------------------------------------------------------------

    def finished(self) -> list[IvrInterview]:
        """The interviews finished so far, in the order they ended."""
        return list(self._finished)

    def for_attempt(self, attempt_id: str) -> IvrInterview | None:
        """The finished interview of one call attempt, if any."""
        return self._by_attempt.get(attempt_id)

    def current_prompt(self, call_id: str) -> IvrPrompt | None:
        """The prompt the call is hearing now (None once its interview is over)."""
        live = self._live.get(call_id)
        return live.prompt if live is not None else None

    @property
    def in_progress(self) -> int:
        """Interviews running now."""
        return len(self._live)

    def simulated_respondent(
        self,
        seed: int,
        *,
        hang_up_probability: float = 0.03,
        invalid_key_probability: float = 0.05,
        reply_delay: TimeDistribution | None = None,
    ) -> IvrRespondent:
        """A simulated-gateway respondent answering this driver's real prompts.

        Each call gets its own :class:`~surveys.ivr.SimulatedRespondent`, seeded from ``seed``
        and the lead id, so a run is deterministic per seed. It keys only the prompt's valid
        options, apart from deliberate invalid keys (``invalid_key_probability``) that the
        driver re-prompts; ``hang_up_probability`` per prompt is a break-off.
        """
        delay = reply_delay or LogNormal(3.0, 1.5)
        callers: dict[str, SimulatedRespondent] = {}

        def respond(prompt: RespondentPrompt, turn: IvrTurn) -> RespondentReply:
            wait = delay.sample(prompt.rng)
            shown = self.current_prompt(prompt.call_id)
            if shown is None:  # nothing to answer (cannot happen with this driver)
                return RespondentReply("1", wait)
            caller = callers.get(prompt.call_id)
            if caller is None:
                caller = SimulatedRespondent(
                    zlib.crc32(f"{seed}:{prompt.lead_id}:{prompt.call_id}".encode()),
                    hang_up_probability=hang_up_probability,
                    invalid_key_probability=invalid_key_probability,
                )
                callers[prompt.call_id] = caller
            keys = caller.respond(shown)
            if keys is None:
                callers.pop(prompt.call_id, None)
            elif shown.input is IvrInput.MULTI_KEYS and keys not in _DELIBERATE_INVALID:
                keys = self._without_conflicts(prompt.call_id, shown, keys)
            return RespondentReply(keys, wait)

        return respond

    # -- internals ------------------------------------------------------------------------

    def _without_conflicts(self, call_id: str, prompt: IvrPrompt, keys: str) -> str:
        """A sensible caller keys "don't know" / "refused" alone, never with other options."""
        live = self._live.get(call_id)
        shown = self.engine.current_question(live.state) if live is not None else None
        if shown is None or len(prompt.keys) > 9:
            return keys
        exclusive = {
            o.value
            for o in shown.options
            if o.special in (SpecialKind.DONT_KNOW, SpecialKind.REFUSED)
        }
        pressed = keys.removesuffix("#")
        alone = [k for k in pressed if prompt.keys.get(k) in exclusive]
        if alone and len(pressed) > 1:
            return alone[0] + "#"
        return keys

    def _next(
        self, call_id: str, live: _Live, at_s: float, *, intro: str = "", retry: bool = False
    ) -> IvrTurn:
        state = live.state
        if state.status is not InterviewStatus.IN_PROGRESS:
            return self._finish(call_id, live, at_s)
        prompt = ivr_prompt(self.engine, state)
        if prompt is None:
            live.state = self.engine.complete(
                state, quota_counter=self.quota_counter, now=self.clock(at_s)
            )
            return self._finish(call_id, live, at_s)
        live.prompt = prompt
        live.prompts += 1
        text = f"{intro} {prompt.text}".strip() if intro else prompt.text
        suffix = "-retry" if retry else ""
        return IvrTurn(
            message_id=f"ivr-{prompt.question}{suffix}",
            text=text,
            language=state.language,
            expect_dtmf=True,
            keys=dict(prompt.keys),
            max_digits=prompt.max_digits,
            terminator=prompt.terminator,
        )

    def _finish(self, call_id: str, live: _Live, at_s: float) -> IvrTurn:
        self._live.pop(call_id, None)
        state = live.state
        outcome = _ENDED.get(state.status, "broken_off")
        done = IvrInterview(
            call_id=call_id,
            lead_id=live.lead_id,
            attempt_id=live.attempt_id,
            state=state,
            outcome=outcome,
            started_s=live.started_s,
            ended_s=at_s,
            prompts=live.prompts,
            invalid_inputs=live.invalid,
        )
        self._finished.append(done)
        self._by_attempt[live.attempt_id] = done
        if self.on_finished is not None:
            self.on_finished(done)
        goodbye = self.engine.closing_message(state) if outcome != "broken_off" else ""
        return IvrTurn(
            message_id="ivr-goodbye",
            text=goodbye,
            language=state.language,
            over=True,
            outcome=outcome,
        )
