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
    AgentLegEvent,
    AgentLegState,
    Answered,
    AnswerKind,
    Busy,
    CallEvent,
    CallParameters,
    ConnectedToAgent,
    DtmfReceived,
    Failed,
    FailureCause,
    GatewayEvent,
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
    failure_cause: FailureCause = FailureCause.CONGESTION
    failure_detail: str = "network out of order"
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


# What happened to a call, as the simulator reads it without event objects (see
# ``SimulatedGateway._due``); the scheduled actions on the heap use the same codes. A callee's
# or respondent's hang-up is ``_HUNG_UP`` with ``HangupParty.CALLEE`` as its data.
(
    _RINGING,
    _HUMAN,
    _MACHINE,
    _BUSY,
    _NO_ANSWER,
    _FAILED,
    _CONNECTED,
    _MESSAGE_END,
    _DTMF,
    _HUNG_UP,
) = range(10)

_ANSWERS = frozenset((_HUMAN, _MACHINE))
# No answer, busy, failed, or the far end hung up: the call is over.
_ENDINGS = frozenset((_BUSY, _NO_ANSWER, _FAILED, _HUNG_UP))

_RawEvent = tuple[float, int, str, "_Call", str]
"""``(at_s, kind, call_id, call, data)``: the message id, the digits, or who hung up."""

# Calls placed through the internal ``_dial`` without a request carry these ids and numbers.
_ANONYMOUS = CallParameters("", "")


class _Call:
    __slots__ = (
        "answered_at",
        "bridged",
        "epoch",
        "params",
        "prompts",
        "request",
        "ring_time",
        "state",
    )

    def __init__(self, request: OriginateRequest | None) -> None:
        self.request = request
        self.params = _ANONYMOUS if request is None else request.params
        self.state = _State.RINGING
        self.ring_time = 0.0
        self.answered_at = 0.0
        self.prompts = 0
        # The agent and skill group of a call bridged with ``_bridge``; its parameters are
        # only updated when an event object is built.
        self.bridged: tuple[str, str | None] | None = None
        # Bumped whenever the call changes phase, so stale scheduled actions are skipped.
        self.epoch = 0


class SimulatedGateway:
    """The seeded simulated gateway; see the module docstring.

    Besides the :class:`dialer.gateway.TelephonyGateway` methods it has a small internal API
    for :class:`dialer.simulator.Simulation`, which owns its gateway and handles hundreds of
    thousands of calls a day: ``_dial`` places a call without an :class:`OriginateRequest`,
    ``_bridge`` connects one without reporting :class:`ConnectedToAgent`, and ``_due`` returns
    what ``poll`` would as plain tuples. The same requests in the same order draw the same
    random numbers either way, so both give the same calls.
    """

    def __init__(self, profile: GatewayProfile | None = None, *, seed: int = 0) -> None:
        self.profile = profile or GatewayProfile()
        self._rng = random.Random(seed)
        self._respondent_rng = random.Random(seed * 7919 + 17)
        self._calls: dict[str, _Call] = {}
        self._heap: list[tuple[float, int, str, int, int, str]] = []
        self._seq = 0
        # Events that requests cause at once (hang-ups, bridges), before anything scheduled.
        self._ready: list[_RawEvent] = []
        # Agents' persistent phone legs: agent id -> address, and their pending events.
        self._agent_phones: dict[str, str] = {}
        self._agent_events: list[AgentLegEvent] = []
        answer = self.profile.answer_probability
        self._constant_answer = answer.steps[0][1] if len(answer.steps) == 1 else None

    # -- requests -----------------------------------------------------------------------

    def originate(self, request: OriginateRequest, *, now: float) -> str:
        """Place a simulated call and schedule its outcome."""
        return self._dial(now, request.timeout_s, request)

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        """End a call in any state; an answered call reports :class:`HungUp`."""
        call = self._live(call_id)
        was_answered = call.state is _State.ANSWERED or call.state is _State.CONNECTED
        call.state = _State.ENDED
        call.epoch += 1
        del self._calls[call_id]
        if was_answered:
            self._ready.append((now, _HUNG_UP, call_id, call, by))

    def connect_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        """Bridge an answered call to an agent; the callee hangs up after a sampled talk time."""
        call = self._bridge(call_id, agent_id, skill_group, now)
        self._ready.append((now, _CONNECTED, call_id, call, ""))

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
            request = call.request
            reply = self.profile.respondent(
                RespondentPrompt(
                    call_id,
                    "" if request is None else request.lead_id,
                    self._params(call),
                    message_id,
                    call.prompts,
                    self._respondent_rng,
                )
            )
            if reply.digits is None:
                self._schedule(end + reply.delay_s, call_id, _HUNG_UP, call.epoch, _CALLEE)
            else:
                self._schedule(end + reply.delay_s, call_id, _DTMF, call.epoch, reply.digits)

    def send_dtmf(self, call_id: str, digits: str, *, now: float) -> None:
        """Send DTMF down an answered call (validated; the simulated far end ignores it)."""
        call = self._live(call_id)
        if call.state is _State.RINGING:
            raise GatewayError(f"call {call_id} is still ringing; send DTMF once answered")
        if not digits or any(d not in "0123456789*#ABCD" for d in digits):
            raise GatewayError(f"DTMF digits must be 0-9, *, # or A-D, got {digits!r}")

    def connect_agent_phone(self, agent_id: str, address: str, *, now: float) -> None:
        """The simulated phone answers at once: :class:`AgentLegEvent` ``CONNECTED``."""
        if not address:
            raise GatewayError(f"agent {agent_id!r} has no phone address to call")
        if agent_id in self._agent_phones:
            return
        self._agent_phones[agent_id] = address
        self._agent_events.append(AgentLegEvent(agent_id, now, AgentLegState.CONNECTED))

    def release_agent_phone(self, agent_id: str, *, now: float) -> None:
        """Forget the agent's leg (sign-out)."""
        self._agent_phones.pop(agent_id, None)

    def drop_agent_phone(self, agent_id: str, *, now: float, cause: str = "phone lost") -> None:
        """Test hook: the agent's phone hangs up by itself (:class:`AgentLegEvent` ``HUNG_UP``)."""
        if self._agent_phones.pop(agent_id, None) is not None:
            self._agent_events.append(AgentLegEvent(agent_id, now, AgentLegState.HUNG_UP, cause))

    @property
    def agent_phones(self) -> dict[str, str]:
        """Agents whose phone leg is up, with the address called."""
        return dict(self._agent_phones)

    # -- events -------------------------------------------------------------------------

    def next_event_time(self) -> float | None:
        """When the next scheduled action is due (it may turn out stale and yield nothing)."""
        if self._agent_events:
            return self._agent_events[0].at_s
        if self._ready:
            return self._ready[0][0]
        return self._heap[0][0] if self._heap else None

    def poll(self, until: float) -> list[GatewayEvent]:
        """Events due at or before ``until``, oldest first (agent-leg events first)."""
        events: list[GatewayEvent] = []
        if self._agent_events:
            events.extend(e for e in self._agent_events if e.at_s <= until)
            self._agent_events = [e for e in self._agent_events if e.at_s > until]
        events.extend(self._event(raw) for raw in self._due(until))
        return events

    @property
    def calls_in_progress(self) -> int:
        """Calls placed and not yet ended."""
        return len(self._calls)

    # -- the simulator's internal API ---------------------------------------------------

    def _dial(self, now: float, timeout_s: float, request: OriginateRequest | None) -> str:
        """``originate``; without a request the call's events carry empty ids and numbers."""
        self._seq += 1
        call_id = f"sim-{self._seq}"
        call = _Call(request)
        self._calls[call_id] = call
        profile = self.profile
        rng = self._rng
        u = rng.random()
        failure = profile.failure_probability
        if u < failure:
            self._schedule(now + profile.failure_time_s, call_id, _FAILED, 0, "")
            return call_id
        if profile.emit_ringing:
            self._schedule(now + min(0.5, profile.busy_time_s / 2), call_id, _RINGING, 0, "")
        busy = failure + profile.busy_probability
        if u < busy:
            self._schedule(now + profile.busy_time_s, call_id, _BUSY, 0, "")
            return call_id
        answer = self._constant_answer
        if answer is None:
            answer = profile.answer_probability.at(now)
        human = busy + answer
        if u < human + profile.machine_probability:
            ring = profile.ring_time.sample(rng)
            if ring >= timeout_s:
                self._schedule(now + timeout_s, call_id, _NO_ANSWER, 0, "")
            else:
                call.ring_time = ring
                self._schedule(now + ring, call_id, _HUMAN if u < human else _MACHINE, 0, "")
        else:
            self._schedule(now + timeout_s, call_id, _NO_ANSWER, 0, "")
        return call_id

    def _bridge(self, call_id: str, agent_id: str, skill_group: str | None, now: float) -> _Call:
        """``connect_to_agent`` without its :class:`ConnectedToAgent` event."""
        call = self._live(call_id)
        if call.state is not _State.ANSWERED:
            raise GatewayError(
                f"call {call_id} is {call.state.value}, not answered; "
                "only an answered call that is not yet bridged can be connected to an agent"
            )
        call.state = _State.CONNECTED
        call.epoch += 1
        call.bridged = (agent_id, skill_group)
        talk = self.profile.talk_time.sample(self._rng)
        self._schedule(now + talk, call_id, _HUNG_UP, call.epoch, _CALLEE)
        return call

    def _due(self, until: float) -> list[_RawEvent]:
        """What ``poll(until)`` reports, as ``(at_s, kind, call_id, call, data)`` tuples."""
        events = self._ready
        self._ready = []
        heap = self._heap
        calls = self._calls
        pop = heapq.heappop
        while heap and heap[0][0] <= until:
            at, _, call_id, kind, epoch, data = pop(heap)
            call = calls.get(call_id)
            if call is None or call.epoch != epoch:
                continue
            if kind in _ANSWERS:
                call.state = _State.ANSWERED
                call.answered_at = at
                call.epoch += 1
            elif kind in _ENDINGS:
                call.state = _State.ENDED
                call.epoch += 1
                del calls[call_id]
            events.append((at, kind, call_id, call, data))
        return events

    # -- internals ----------------------------------------------------------------------

    def _event(self, raw: _RawEvent) -> CallEvent:
        """The event object for one raw event."""
        at, kind, call_id, call, data = raw
        request = call.request
        params = self._params(call)
        if request is None:
            ids = ("", "", "")
        else:
            ids = (request.campaign_id, request.lead_id, request.attempt_id)
        if kind in _ANSWERS:
            answer = AnswerKind.HUMAN if kind == _HUMAN else AnswerKind.MACHINE
            return Answered(call_id, at, params, *ids, answer, call.ring_time)
        if kind == _HUNG_UP:
            by = HangupParty(data)
            return HungUp(call_id, at, params, *ids, by, at - call.answered_at)
        if kind == _MESSAGE_END:
            return MessageFinished(call_id, at, params, *ids, data)
        if kind == _DTMF:
            return DtmfReceived(call_id, at, params, *ids, data)
        if kind == _FAILED:
            profile = self.profile
            return Failed(call_id, at, params, *ids, profile.failure_cause, profile.failure_detail)
        return _PLAIN_EVENTS[kind](call_id, at, params, *ids)

    @staticmethod
    def _params(call: _Call) -> CallParameters:
        """The call's parameters, with its agent once bridged."""
        if call.bridged is not None:
            call.params = with_agent(call.params, *call.bridged)
            call.bridged = None
        return call.params

    def _schedule(self, at: float, call_id: str, kind: int, epoch: int, data: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, call_id, kind, epoch, data))

    def _live(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(
                f"no call {call_id!r} in progress; it has ended or was never placed here"
            )
        return call


_CALLEE = HangupParty.CALLEE.value
_PLAIN_EVENTS: dict[int, type[CallEvent]] = {
    _RINGING: Ringing,
    _BUSY: Busy,
    _NO_ANSWER: NoAnswer,
    _CONNECTED: ConnectedToAgent,
}
