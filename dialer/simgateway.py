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
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeVar

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
    TransferOutFailed,
    TransferredOut,
    outside_number,
    with_agent,
)
from dialer.respondents import RandomRespondent, Respondent, RespondentPrompt, RespondentReply

__all__ = [
    "FAILURE_DETAILS",
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


#: What the simulated network says for each failure cause (SIP responses, RFC 3261).
FAILURE_DETAILS: dict[FailureCause, str] = {
    FailureCause.INVALID_NUMBER: "SIP 404 Not Found",
    FailureCause.CONGESTION: "SIP 503 Service Unavailable",
    FailureCause.TRUNK_REFUSED: "SIP 403 Forbidden",
    FailureCause.DECLINED: "SIP 603 Decline",
    FailureCause.UNKNOWN: "network out of order",
}


@dataclass(frozen=True, slots=True)
class GatewayProfile:
    """How simulated callees behave; probabilities are per dial and must sum to ≤ 1.

    ``answer_probability`` is the chance a person would pick up if the line rang long enough,
    ``machine_probability`` the chance an answering machine picks up; a sampled ring time
    beyond the origination timeout turns either into a no-answer. What is left after
    failures, busy, human and machine answers rings out as a no-answer.

    A failed call has ``failure_cause`` (with ``failure_detail``), or, with
    ``failure_causes`` (``(cause, weight)`` pairs), a cause drawn by weight with its
    :data:`FAILURE_DETAILS` text (from a generator of its own, so the calls stay as they
    were). ``amd_delay_s`` is how long answer detection takes after the network answer: the
    :class:`~dialer.gateway.Answered` event comes that much later, with ``media_answer_s`` at
    the network answer. ``emit_ringing`` and ``emit_connected`` say whether
    :class:`~dialer.gateway.Ringing` and :class:`~dialer.gateway.ConnectedToAgent` are
    reported (a caller that reads neither, like the simulated day, saves their events).
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
    failure_causes: tuple[tuple[FailureCause, float], ...] = ()
    amd_delay_s: float = 0.0
    # a transfer out: the outside number rings this long, then answers with this chance
    # (else it is busy) and talks for a draw of talk_time
    transfer_ring_s: float = 4.0
    transfer_answer_probability: float = 0.9
    emit_ringing: bool = True
    emit_connected: bool = True
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
        if self.amd_delay_s < 0:
            raise ValueError(f"amd_delay_s must be 0 or more, got {self.amd_delay_s}")
        if self.failure_causes and (
            any(weight < 0 for _, weight in self.failure_causes)
            or sum(weight for _, weight in self.failure_causes) <= 0
        ):
            raise ValueError(
                "failure_causes weights must be 0 or more and add up to more than 0, "
                f"got {self.failure_causes}"
            )


_Event = TypeVar("_Event", bound=CallEvent)
_Head = tuple[CallParameters, str, str, str]
_BASE_FIELDS = ("call_id", "at_s", "params", "campaign_id", "lead_id", "attempt_id")


def _maker(cls: type[_Event], *extra: str) -> Callable[..., _Event]:
    """A constructor of ``cls`` from ``(call_id, at_s, head, *extra values)`` that fills the
    slots directly: a day's hundreds of thousands of events cost a third less this way than
    through the frozen dataclass ``__init__``. Equal to ``cls(...)`` (checked by the tests);
    a change of the event's fields stops the import here rather than build wrong events."""
    every = fields(cls)
    names = tuple(f.name for f in every)
    given = _BASE_FIELDS + extra
    # fields after the given ones keep their defaults (what a simulated call never has)
    tail = tuple((getattr(cls, f.name).__set__, f.default) for f in every[len(given) :])
    if names[: len(given)] != given or any(default is MISSING for _, default in tail):
        raise RuntimeError(f"{cls.__name__} has fields {names}; update dialer.simgateway")
    s0, s1, s2, s3, s4, s5, *rest = (getattr(cls, name).__set__ for name in given)
    if tail and len(rest) != 3:
        raise RuntimeError(f"{cls.__name__}: defaulted fields are filled by 3-field makers only")
    new = object.__new__
    # One flat function per arity (no nested call): each event is one Python call.
    if not rest:

        def zero(call_id: str, at: float, head: _Head) -> Any:
            params, campaign_id, lead_id, attempt_id = head
            event = new(cls)
            s0(event, call_id)
            s1(event, at)
            s2(event, params)
            s3(event, campaign_id)
            s4(event, lead_id)
            s5(event, attempt_id)
            return event

        return zero
    if len(rest) == 1:
        (x1,) = rest

        def one(call_id: str, at: float, head: _Head, v1: object) -> Any:
            params, campaign_id, lead_id, attempt_id = head
            event = new(cls)
            s0(event, call_id)
            s1(event, at)
            s2(event, params)
            s3(event, campaign_id)
            s4(event, lead_id)
            s5(event, attempt_id)
            x1(event, v1)
            return event

        return one
    if len(rest) == 2:
        x1, x2 = rest

        def two(call_id: str, at: float, head: _Head, v1: object, v2: object) -> Any:
            params, campaign_id, lead_id, attempt_id = head
            event = new(cls)
            s0(event, call_id)
            s1(event, at)
            s2(event, params)
            s3(event, campaign_id)
            s4(event, lead_id)
            s5(event, attempt_id)
            x1(event, v1)
            x2(event, v2)
            return event

        return two
    x1, x2, x3 = rest

    def three(call_id: str, at: float, head: _Head, v1: object, v2: object, v3: object) -> Any:
        params, campaign_id, lead_id, attempt_id = head
        event = new(cls)
        s0(event, call_id)
        s1(event, at)
        s2(event, params)
        s3(event, campaign_id)
        s4(event, lead_id)
        s5(event, attempt_id)
        x1(event, v1)
        x2(event, v2)
        x3(event, v3)
        for setter, default in tail:
            setter(event, default)
        return event

    return three


_no_answer = _maker(NoAnswer)
_busy = _maker(Busy)
_ringing = _maker(Ringing)
_connected = _maker(ConnectedToAgent)
_message_finished = _maker(MessageFinished, "message_id")
_dtmf_received = _maker(DtmfReceived, "digits")
_failed = _maker(Failed, "cause", "detail")
_hung_up = _maker(HungUp, "by", "talk_time_s")
_answered = _maker(Answered, "kind", "ring_time_s", "media_answer_s")
_transferred_out = _maker(TransferredOut, "number")
_transfer_failed = _maker(TransferOutFailed, "number", "reason")


class _State(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    CONNECTED = "connected"
    TRANSFERRING = "transferring"  # the outside number rings; the callee is on hold
    OUTSIDE = "with the outside party"  # transferred out: the callee talks to them
    ENDED = "ended"


_UP = frozenset({_State.ANSWERED, _State.CONNECTED, _State.TRANSFERRING, _State.OUTSIDE})


# The scheduled actions on the heap: what happens to a call next. A callee's or
# respondent's hang-up is ``_HUNG_UP`` with ``HangupParty.CALLEE`` as its data.
(
    _RINGING,
    _HUMAN,
    _MACHINE,
    _BUSY,
    _NO_ANSWER,
    _FAILED,
    _MESSAGE_END,
    _DTMF,
    _HUNG_UP,
    _TRANSFER_ANSWERED,
    _TRANSFER_FAILED,
) = range(11)


class _Call:
    """One simulated call; ``head`` is what every event of it carries after its id and time:
    ``(params, campaign_id, lead_id, attempt_id)``."""

    __slots__ = (
        "agent_id", "answered_at", "epoch", "head", "held", "others", "prompts", "ring_time",
        "state",
    )  # fmt: skip

    def __init__(self, head: tuple[CallParameters, str, str, str]) -> None:
        self.head = head
        self.state = _State.RINGING
        self.ring_time = 0.0
        self.answered_at = 0.0
        self.prompts = 0
        self.agent_id: str | None = None
        self.held = False
        self.others: tuple[str, ...] = ()  # further agents on a three-way call
        # Bumped whenever the call changes phase, so stale scheduled actions are skipped.
        self.epoch = 0


class SimulatedGateway:
    """The seeded simulated gateway; see the module docstring.

    It is built for days of hundreds of thousands of calls: events are made once, when they
    are due, from what each call carries (no per-event lookups), and a request object handed
    in again (a simulation's shared request for calls nobody reads the ids of) is not taken
    apart again.
    """

    def __init__(self, profile: GatewayProfile | None = None, *, seed: int = 0) -> None:
        self.profile = profile or GatewayProfile()
        self._rng = random.Random(seed)
        self._respondent_rng = random.Random(seed * 7919 + 17)
        # Transfers out are drawn apart too: a transfer changes no other call's outcome.
        self._transfer_rng = random.Random(seed * 15_485_863 + 5)
        # Failure causes are drawn apart, so drawing them changes no other call.
        self._cause_rng = random.Random(seed * 104_729 + 3)
        self._calls: dict[str, _Call] = {}
        self._heap: list[tuple[float, int, str, int, int, str]] = []
        self._seq = 0
        # Events that requests cause at once (hang-ups, bridges), before anything scheduled.
        self._ready: list[GatewayEvent] = []
        # Agents' persistent phone legs: agent id -> address, and their pending events.
        self._agent_phones: dict[str, str] = {}
        self._agent_events: list[AgentLegEvent] = []
        answer = self.profile.answer_probability
        self._constant_answer = answer.steps[0][1] if len(answer.steps) == 1 else None
        self._last_request: OriginateRequest | None = None
        self._last_head: tuple[CallParameters, str, str, str] | None = None
        causes = self.profile.failure_causes
        self._causes = [cause for cause, _ in causes]
        self._cause_weights = [weight for _, weight in causes]
        self._answer_kinds = {_HUMAN: AnswerKind.HUMAN, _MACHINE: AnswerKind.MACHINE}
        self._amd_delay_s = self.profile.amd_delay_s
        self._bridge_base: CallParameters | None = None
        self._bridge_cache: dict[tuple[str, str | None], CallParameters] = {}

    # -- requests -----------------------------------------------------------------------

    def originate(self, request: OriginateRequest, *, now: float) -> str:
        """Place a simulated call and schedule its outcome."""
        if request is self._last_request:
            head = self._last_head
            assert head is not None
        else:
            head = (request.params, request.campaign_id, request.lead_id, request.attempt_id)
            self._last_request, self._last_head = request, head
        timeout_s = request.timeout_s
        seq = self._seq + 1
        call_id = f"sim-{seq}"
        call = _Call(head)
        self._calls[call_id] = call
        profile = self.profile
        u = self._rng.random()
        failure = profile.failure_probability
        if u < failure:
            self._seq = seq
            cause = profile.failure_cause
            if self._causes:
                cause = self._cause_rng.choices(self._causes, self._cause_weights)[0]
            self._schedule(now + profile.failure_time_s, call_id, _FAILED, 0, cause)
            return call_id
        if profile.emit_ringing:
            seq += 1
            at = now + min(0.5, profile.busy_time_s / 2)
            heapq.heappush(self._heap, (at, seq, call_id, _RINGING, 0, ""))
        busy = failure + profile.busy_probability
        if u < busy:
            self._seq = seq
            self._schedule(now + profile.busy_time_s, call_id, _BUSY, 0, "")
            return call_id
        answer = self._constant_answer
        if answer is None:
            answer = profile.answer_probability.at(now)
        human = busy + answer
        # Scheduled inline: the two commonest outcomes of the hottest request.
        seq += 1
        self._seq = seq
        if u < human + profile.machine_probability:
            ring = profile.ring_time.sample(self._rng)
            if ring < timeout_s:
                call.ring_time = ring
                at = call.answered_at = now + ring
                if self._amd_delay_s:
                    at += self._amd_delay_s
                kind = _HUMAN if u < human else _MACHINE
                heapq.heappush(self._heap, (at, seq, call_id, kind, 0, ""))
                return call_id
        heapq.heappush(self._heap, (now + timeout_s, seq, call_id, _NO_ANSWER, 0, ""))
        return call_id

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        """End a call in any state; an answered call reports :class:`HungUp`."""
        call = self._live(call_id)
        was_answered = call.state in _UP
        call.state = _State.ENDED
        call.epoch += 1
        del self._calls[call_id]
        if was_answered:
            self._ready.append(_hung_up(call_id, now, call.head, by, now - call.answered_at))

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
        call.agent_id = agent_id
        params, campaign_id, lead_id, attempt_id = call.head
        call.head = (self._bridged(params, agent_id, skill_group), campaign_id, lead_id, attempt_id)
        talk = self.profile.talk_time.sample(self._rng)
        self._schedule(now + talk, call_id, _HUNG_UP, call.epoch, _CALLEE)
        if self.profile.emit_connected:
            self._ready.append(_connected(call_id, now, call.head))

    def play_message(
        self,
        call_id: str,
        message_id: str,
        *,
        now: float,
        expect_dtmf: bool = False,
        text: str | None = None,
        language: str | None = None,
    ) -> None:
        """Play a message; with ``expect_dtmf`` the respondent callback answers it. Its
        length is the profile's message time whatever ``text`` says."""
        call = self._live(call_id)
        if call.state is _State.RINGING:
            raise GatewayError(f"call {call_id} is still ringing; play messages once answered")
        duration = self.profile.message_time.sample(self._rng)
        end = now + duration
        self._schedule(end, call_id, _MESSAGE_END, call.epoch, message_id)
        if expect_dtmf:
            call.prompts += 1
            params, _, lead_id, _ = call.head
            reply = self.profile.respondent(
                RespondentPrompt(
                    call_id, lead_id, params, message_id, call.prompts, self._respondent_rng
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

    # -- soft-phone functions on a bridged call (state only: the simulated callee talks on)

    def _bridged_call(self, call_id: str, doing: str) -> _Call:
        call = self._live(call_id)
        if call.state is not _State.CONNECTED:
            raise GatewayError(
                f"call {call_id} is {call.state.value}, not connected to an agent; {doing} "
                "once an agent has it"
            )
        return call

    def _agent_free(self, agent_id: str, call_id: str) -> None:
        if self._agent_phones and agent_id not in self._agent_phones:
            raise GatewayError(f"agent {agent_id!r} has no connected phone leg")
        for other_id, other in self._calls.items():
            if (
                other_id != call_id
                and other.state is _State.CONNECTED
                and (other.agent_id == agent_id or agent_id in other.others)
            ):
                raise GatewayError(f"agent {agent_id!r} is already on call {other_id}")

    def detach_agents(self, call_id: str, *, now: float) -> None:
        """Take the call from its agents (state only: the simulated callee talks on)."""
        call = self._bridged_call(call_id, "hand it to the IVR")
        call.state = _State.ANSWERED
        call.agent_id = None
        call.others = ()
        call.held = False

    def hold(self, call_id: str, *, now: float) -> None:
        """Put a bridged call on hold."""
        self._bridged_call(call_id, "put it on hold").held = True

    def unhold(self, call_id: str, *, now: float) -> None:
        """Take a call off hold."""
        self._bridged_call(call_id, "take it off hold").held = False

    def transfer_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        """Move the call to another agent: :class:`ConnectedToAgent` with its parameters."""
        call = self._bridged_call(call_id, "transfer it")
        if agent_id == call.agent_id and not call.others:
            raise GatewayError(f"call {call_id} is already with agent {agent_id!r}")
        if agent_id not in call.others:
            self._agent_free(agent_id, call_id)
        call.agent_id = agent_id
        call.others = ()
        call.held = False
        params, campaign_id, lead_id, attempt_id = call.head
        call.head = (self._bridged(params, agent_id, skill_group), campaign_id, lead_id, attempt_id)
        self._ready.append(_connected(call_id, now, call.head))

    def transfer_out(self, call_id: str, number: str, *, now: float) -> None:
        """Transfer the call out: its agents are free at once; after the profile's
        ``transfer_ring_s`` the outside number answers (with ``transfer_answer_probability``,
        then talks for a draw of ``talk_time`` before the callee hangs up) or is busy."""
        call = self._bridged_call(call_id, "transfer it out")
        number = outside_number(number)
        call.state = _State.TRANSFERRING
        call.epoch += 1
        call.agent_id = None
        call.others = ()
        call.held = True
        params, campaign_id, lead_id, attempt_id = call.head
        call.head = (with_agent(params, None, None), campaign_id, lead_id, attempt_id)
        profile = self.profile
        answers = self._transfer_rng.random() < profile.transfer_answer_probability
        kind = _TRANSFER_ANSWERED if answers else _TRANSFER_FAILED
        self._schedule(now + profile.transfer_ring_s, call_id, kind, call.epoch, number)

    def conference(self, call_id: str, *, agent_id: str, now: float) -> None:
        """Add an agent to the call (three-way)."""
        call = self._bridged_call(call_id, "add an agent to it")
        if agent_id == call.agent_id or agent_id in call.others:
            raise GatewayError(f"agent {agent_id!r} is already on call {call_id}")
        self._agent_free(agent_id, call_id)
        call.others = (*call.others, agent_id)
        call.held = False

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
        """Test hook: the agent's phone hangs up by itself (:class:`AgentLegEvent` ``HUNG_UP``,
        naming the lead call bridged to the agent at that moment, if any)."""
        if self._agent_phones.pop(agent_id, None) is None:
            return
        bridged = next(
            (
                call_id
                for call_id, call in self._calls.items()
                if call.agent_id == agent_id and call.state is _State.CONNECTED
            ),
            None,
        )
        self._agent_events.append(
            AgentLegEvent(agent_id, now, AgentLegState.HUNG_UP, cause, bridged)
        )

    @property
    def agent_phones(self) -> dict[str, str]:
        """Agents whose phone leg is up, with the address called."""
        return dict(self._agent_phones)

    def end_left_calls(self, handles: Sequence[str], *, now: float) -> list[bool]:
        """A simulated call dies with its process: no handle of ours is ever left behind."""
        return [False] * len(handles)

    # -- events -------------------------------------------------------------------------

    def next_event_time(self) -> float | None:
        """When the next scheduled action is due (it may turn out stale and yield nothing)."""
        if self._agent_events:
            return self._agent_events[0].at_s
        if self._ready:
            return self._ready[0].at_s
        return self._heap[0][0] if self._heap else None

    def poll(self, until: float) -> list[GatewayEvent]:
        """Events due at or before ``until``, oldest first (agent-leg events first)."""
        events: list[GatewayEvent]
        if self._agent_events:
            events = [e for e in self._agent_events if e.at_s <= until]
            self._agent_events = [e for e in self._agent_events if e.at_s > until]
            events.extend(self._ready)
        else:
            events = self._ready
        self._ready = []
        heap = self._heap
        calls = self._calls
        pop = heapq.heappop
        append = events.append
        ended = _State.ENDED
        answer_kinds = self._answer_kinds
        while heap and heap[0][0] <= until:
            at, _, call_id, kind, epoch, data = pop(heap)
            call = calls.get(call_id)
            if call is None or call.epoch != epoch:
                continue
            # The commonest kinds first.
            if kind == _NO_ANSWER:
                call.state = ended
                del calls[call_id]
                append(_no_answer(call_id, at, call.head))
            elif kind == _HUNG_UP:
                call.state = ended
                call.epoch += 1
                del calls[call_id]
                append(_hung_up(call_id, at, call.head, _PARTIES[data], at - call.answered_at))
            elif kind in (_HUMAN, _MACHINE):
                call.state = _State.ANSWERED
                call.epoch += 1
                media = None if at == call.answered_at else call.answered_at
                append(_answered(call_id, at, call.head, answer_kinds[kind], call.ring_time, media))
            elif kind == _BUSY:
                call.state = ended
                del calls[call_id]
                append(_busy(call_id, at, call.head))
            elif kind == _MESSAGE_END:
                append(_message_finished(call_id, at, call.head, data))
            elif kind == _DTMF:
                append(_dtmf_received(call_id, at, call.head, data))
            elif kind == _TRANSFER_ANSWERED:
                call.state = _State.OUTSIDE
                call.held = False
                call.epoch += 1
                talk = self.profile.talk_time.sample(self._transfer_rng)
                self._schedule(at + talk, call_id, _HUNG_UP, call.epoch, _CALLEE)
                append(_transferred_out(call_id, at, call.head, data))
            elif kind == _TRANSFER_FAILED:
                call.state = _State.ANSWERED  # on hold, with no agent: the loop decides
                call.epoch += 1
                append(_transfer_failed(call_id, at, call.head, data, "busy"))
            elif kind == _FAILED:
                call.state = ended
                del calls[call_id]
                cause = FailureCause(data)
                detail = FAILURE_DETAILS[cause] if self._causes else self.profile.failure_detail
                append(_failed(call_id, at, call.head, cause, detail))
            else:  # _RINGING
                append(_ringing(call_id, at, call.head))
        return events

    @property
    def calls_in_progress(self) -> int:
        """Calls placed and not yet ended."""
        return len(self._calls)

    # -- internals ----------------------------------------------------------------------

    def _bridged(
        self, params: CallParameters, agent_id: str, skill_group: str | None
    ) -> CallParameters:
        """The parameters of a call bridged to an agent (calls sharing their parameters share
        these too)."""
        if params is not self._bridge_base:
            self._bridge_base = params
            self._bridge_cache = {}
        key = (agent_id, skill_group)
        bridged = self._bridge_cache.get(key)
        if bridged is None:
            bridged = CallParameters(
                params.caller_number,
                params.callee_number,
                agent_id,
                skill_group or params.skill_group,
            )
            self._bridge_cache[key] = bridged
        return bridged

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
_PARTIES = {party.value: party for party in HangupParty}
