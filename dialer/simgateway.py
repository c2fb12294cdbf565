"""A simulated telephony gateway: seeded, deterministic, in virtual time.

:class:`SimulatedGateway` implements :class:`dialer.gateway.TelephonyGateway`. When a call is
originated it draws the outcome from a :class:`GatewayProfile` (failure, busy, human answer,
answering machine or no answer, with the answer probability allowed to change over the day),
a ring time, and, once the call is bridged to an agent, a talk time after which the callee
hangs up. Messages take a sampled time to play; when a prompt expects DTMF, a pluggable
*respondent* callback decides what the simulated person keys or whether they hang up, which
is how agentless IVR surveys are simulated.

The same seed and the same sequence of requests always give the same events.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from dialer.distributions import Fixed, LogNormal, TimeDistribution
from dialer.exceptions import GatewayError, UnknownCall
from dialer.gateway import (
    Answered,
    AnswerKind,
    Busy,
    CallEvent,
    CallParameters,
    ConnectedToAgent,
    DtmfReceived,
    Failed,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    Ringing,
    with_agent,
)

__all__ = [
    "GatewayProfile",
    "ProbabilitySchedule",
    "RandomRespondent",
    "Respondent",
    "RespondentPrompt",
    "RespondentReply",
    "SimulatedGateway",
]


@dataclass(frozen=True, slots=True)
class ProbabilitySchedule:
    """A probability that steps over time: ``steps`` are ``(from_s, p)`` sorted by time."""

    steps: tuple[tuple[float, float], ...]
    times: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a probability schedule needs at least one step")
        times = [t for t, _ in self.steps]
        if times != sorted(times):
            raise ValueError("probability schedule steps must be sorted by from_s")
        for _, p in self.steps:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"probability {p} is outside [0, 1]")
        object.__setattr__(self, "times", tuple(times))

    @classmethod
    def constant(cls, p: float) -> ProbabilitySchedule:
        """The same probability all day."""
        return cls(((0.0, p),))

    def at(self, t: float) -> float:
        """The probability in force at time ``t`` (the first step applies before its time)."""
        if len(self.steps) == 1:
            return self.steps[0][1]
        index = bisect.bisect_right(self.times, t) - 1
        return self.steps[max(index, 0)][1]

    @property
    def maximum(self) -> float:
        """The largest probability of any step."""
        return max(p for _, p in self.steps)


@dataclass(frozen=True, slots=True)
class RespondentPrompt:
    """What a simulated respondent is asked: the call, the prompt and a seeded generator."""

    call_id: str
    lead_id: str
    params: CallParameters
    message_id: str
    prompt_index: int
    rng: random.Random


@dataclass(frozen=True, slots=True)
class RespondentReply:
    """A respondent's reaction: key ``digits`` after ``delay_s``, or hang up (``digits=None``)."""

    digits: str | None
    delay_s: float = 0.0


Respondent = Callable[[RespondentPrompt], RespondentReply]
"""A simulated person answering IVR prompts (agentless surveys)."""


@dataclass(frozen=True, slots=True)
class RandomRespondent:
    """Keys one of ``choices`` after a sampled delay; breaks off with a fixed probability."""

    choices: Sequence[str] = ("1", "2", "3", "4", "5")
    break_off_probability: float = 0.03
    reply_delay: TimeDistribution = field(default_factory=lambda: LogNormal(3.0, 1.5))

    def __call__(self, prompt: RespondentPrompt) -> RespondentReply:
        """Answer one prompt."""
        delay = self.reply_delay.sample(prompt.rng)
        if prompt.rng.random() < self.break_off_probability:
            return RespondentReply(None, delay)
        return RespondentReply(prompt.rng.choice(list(self.choices)), delay)


@dataclass(frozen=True, slots=True)
class GatewayProfile:
    """How simulated callees behave; probabilities are per dial and must sum to ≤ 1.

    ``answer_probability`` is the chance a person would pick up if the line rang long enough,
    ``machine_probability`` the chance an answering machine picks up; a sampled ring time
    beyond the origination timeout turns either into a no-answer. What is left after
    failures, busy, human and machine answers rings out as a no-answer.
    """

    answer_probability: ProbabilitySchedule = field(
        default_factory=lambda: ProbabilitySchedule.constant(0.25)
    )
    machine_probability: float = 0.10
    busy_probability: float = 0.05
    failure_probability: float = 0.01
    ring_time: TimeDistribution = field(default_factory=lambda: LogNormal(12.0, 6.0))
    talk_time: TimeDistribution = field(default_factory=lambda: LogNormal(120.0, 80.0))
    message_time: TimeDistribution = field(default_factory=lambda: Fixed(8.0))
    busy_time_s: float = 3.0
    failure_time_s: float = 1.0
    failure_cause: str = "network_out_of_order"
    emit_ringing: bool = True
    respondent: Respondent = field(default_factory=RandomRespondent)

    def __post_init__(self) -> None:
        worst = (
            self.answer_probability.maximum
            + self.machine_probability
            + self.busy_probability
            + self.failure_probability
        )
        if worst > 1.0 + 1e-9:
            raise ValueError(
                f"answer + machine + busy + failure probabilities add up to {worst:.3f}; "
                "lower them so they sum to at most 1"
            )


class _State(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    CONNECTED = "connected"
    ENDED = "ended"


# Scheduled-action codes (kept as small ints: the heap holds hundreds of thousands of them).
_RING, _OUTCOME, _CALLEE_HANGUP, _MESSAGE_END, _DTMF, _RESPONDENT_HANGUP = range(6)


class _Call:
    __slots__ = (
        "answered_at",
        "epoch",
        "outcome",
        "params",
        "prompts",
        "request",
        "ring_time",
        "started",
        "state",
    )

    def __init__(self, request: OriginateRequest, started: float) -> None:
        self.request = request
        self.params = request.params
        self.started = started
        self.state = _State.RINGING
        self.outcome = ""
        self.ring_time = 0.0
        self.answered_at = 0.0
        self.prompts = 0
        # Bumped whenever the call changes phase, so stale scheduled actions are skipped.
        self.epoch = 0


class SimulatedGateway:
    """The seeded simulated gateway; see the module docstring."""

    def __init__(self, profile: GatewayProfile | None = None, *, seed: int = 0) -> None:
        self.profile = profile or GatewayProfile()
        self._rng = random.Random(seed)
        self._respondent_rng = random.Random(seed * 7919 + 17)
        self._calls: dict[str, _Call] = {}
        self._heap: list[tuple[float, int, str, int, int, str]] = []
        self._seq = 0
        self._ready: list[CallEvent] = []

    # -- requests -----------------------------------------------------------------------

    def originate(self, request: OriginateRequest, *, now: float) -> str:
        """Place a simulated call and schedule its outcome."""
        self._seq += 1
        call_id = f"sim-{self._seq}"
        call = _Call(request, now)
        self._calls[call_id] = call
        profile = self.profile
        rng = self._rng
        u = rng.random()
        failure = profile.failure_probability
        busy = failure + profile.busy_probability
        human = busy + profile.answer_probability.at(now)
        machine = human + profile.machine_probability
        if u < failure:
            self._schedule(now + profile.failure_time_s, call_id, _OUTCOME, 0, "failed")
            return call_id
        if profile.emit_ringing:
            self._schedule(now + min(0.5, profile.busy_time_s / 2), call_id, _RING, 0, "")
        if u < busy:
            self._schedule(now + profile.busy_time_s, call_id, _OUTCOME, 0, "busy")
        elif u < machine:
            ring = profile.ring_time.sample(rng)
            if ring >= request.timeout_s:
                self._schedule(now + request.timeout_s, call_id, _OUTCOME, 0, "no_answer")
            else:
                call.ring_time = ring
                kind = "human" if u < human else "machine"
                self._schedule(now + ring, call_id, _OUTCOME, 0, kind)
        else:
            self._schedule(now + request.timeout_s, call_id, _OUTCOME, 0, "no_answer")
        return call_id

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        """End a call in any state; an answered call reports :class:`HungUp`."""
        call = self._live(call_id)
        was_answered = call.state in (_State.ANSWERED, _State.CONNECTED)
        self._end(call_id, call)
        if was_answered:
            talk = now - call.answered_at
            self._ready.append(self._hung_up(call_id, call, now, by, talk))

    def connect_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        """Bridge an answered call to an agent; the callee hangs up after a sampled talk time."""
        call = self._live(call_id)
        if call.state is not _State.ANSWERED:
            raise GatewayError(
                f"call {call_id} is {call.state.value}, not answered; "
                "only an answered call that is not yet bridged can be connected to an agent"
            )
        call.state = _State.CONNECTED
        call.epoch += 1
        call.params = with_agent(call.params, agent_id, skill_group)
        self._ready.append(self._event(ConnectedToAgent, call_id, call, now))
        talk = self.profile.talk_time.sample(self._rng)
        self._schedule(now + talk, call_id, _CALLEE_HANGUP, call.epoch, "")

    def play_message(
        self, call_id: str, message_id: str, *, now: float, expect_dtmf: bool = False
    ) -> None:
        """Play a message; with ``expect_dtmf`` the respondent callback answers it."""
        call = self._live(call_id)
        if call.state is _State.RINGING:
            raise GatewayError(f"call {call_id} is still ringing; play messages once answered")
        duration = self.profile.message_time.sample(self._rng)
        end = now + duration
        self._schedule(end, call_id, _MESSAGE_END, call.epoch, message_id)
        if expect_dtmf:
            call.prompts += 1
            reply = self.profile.respondent(
                RespondentPrompt(
                    call_id,
                    call.request.lead_id,
                    call.params,
                    message_id,
                    call.prompts,
                    self._respondent_rng,
                )
            )
            if reply.digits is None:
                self._schedule(end + reply.delay_s, call_id, _RESPONDENT_HANGUP, call.epoch, "")
            else:
                self._schedule(end + reply.delay_s, call_id, _DTMF, call.epoch, reply.digits)

    def send_dtmf(self, call_id: str, digits: str, *, now: float) -> None:
        """Send DTMF down an answered call (validated; the simulated far end ignores it)."""
        call = self._live(call_id)
        if call.state is _State.RINGING:
            raise GatewayError(f"call {call_id} is still ringing; send DTMF once answered")
        if not digits or any(d not in "0123456789*#ABCD" for d in digits):
            raise GatewayError(f"DTMF digits must be 0-9, *, # or A-D, got {digits!r}")

    # -- events -------------------------------------------------------------------------

    def next_event_time(self) -> float | None:
        """When the next scheduled action is due (it may turn out stale and yield nothing)."""
        if self._ready:
            return self._ready[0].at_s
        return self._heap[0][0] if self._heap else None

    def poll(self, until: float) -> list[CallEvent]:
        """Events due at or before ``until``, oldest first."""
        events = self._ready
        self._ready = []
        heap = self._heap
        calls = self._calls
        while heap and heap[0][0] <= until:
            at, _, call_id, action, epoch, data = heapq.heappop(heap)
            call = calls.get(call_id)
            if call is None or call.epoch != epoch:
                continue
            event = self._fire(call_id, call, at, action, data)
            if event is not None:
                events.append(event)
        return events

    @property
    def calls_in_progress(self) -> int:
        """Calls placed and not yet ended."""
        return len(self._calls)

    # -- internals ----------------------------------------------------------------------

    def _fire(
        self, call_id: str, call: _Call, at: float, action: int, data: str
    ) -> CallEvent | None:
        if action == _RING:
            return self._event(Ringing, call_id, call, at)
        if action == _OUTCOME:
            if data in ("human", "machine"):
                call.state = _State.ANSWERED
                call.answered_at = at
                call.epoch += 1
                kind = AnswerKind.HUMAN if data == "human" else AnswerKind.MACHINE
                r = call.request
                return Answered(
                    call_id, at, call.params, r.campaign_id, r.lead_id, r.attempt_id,
                    kind, call.ring_time,
                )  # fmt: skip
            self._end(call_id, call)
            if data == "busy":
                return self._event(Busy, call_id, call, at)
            if data == "no_answer":
                return self._event(NoAnswer, call_id, call, at)
            r = call.request
            return Failed(
                call_id, at, call.params, r.campaign_id, r.lead_id, r.attempt_id,
                self.profile.failure_cause,
            )  # fmt: skip
        if action == _MESSAGE_END:
            r = call.request
            return MessageFinished(
                call_id, at, call.params, r.campaign_id, r.lead_id, r.attempt_id, data
            )
        if action == _DTMF:
            r = call.request
            return DtmfReceived(
                call_id, at, call.params, r.campaign_id, r.lead_id, r.attempt_id, data
            )
        # _CALLEE_HANGUP or _RESPONDENT_HANGUP
        self._end(call_id, call)
        return self._hung_up(call_id, call, at, HangupParty.CALLEE, at - call.answered_at)

    def _schedule(self, at: float, call_id: str, action: int, epoch: int, data: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, call_id, action, epoch, data))

    def _live(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(
                f"no call {call_id!r} in progress; it has ended or was never placed here"
            )
        return call

    def _end(self, call_id: str, call: _Call) -> None:
        call.state = _State.ENDED
        call.epoch += 1
        del self._calls[call_id]

    @staticmethod
    def _event(cls: type[CallEvent], call_id: str, call: _Call, at: float) -> CallEvent:
        r = call.request
        return cls(call_id, at, call.params, r.campaign_id, r.lead_id, r.attempt_id)

    @staticmethod
    def _hung_up(call_id: str, call: _Call, at: float, by: HangupParty, talk: float) -> HungUp:
        r = call.request
        return HungUp(call_id, at, call.params, r.campaign_id, r.lead_id, r.attempt_id, by, talk)
