"""The telephony gateway seam: what the dial loop asks of a phone system, and what it hears.

A gateway originates calls, hangs them up, bridges answered calls to agents, plays messages
and sends or receives DTMF. It reports what happens as typed :class:`CallEvent` values, each
carrying the contract's call parameters (agent id, skill group, caller number, callee
number) and the campaign / lead / attempt ids given at origination, so every event can be
written against its attempt row without a lookup.

Time is explicit: every request takes ``now`` (seconds on the campaign clock) and events are
collected with :meth:`TelephonyGateway.poll`. The simulated gateway
(:mod:`dialer.simgateway`) schedules events in virtual time; a SIP gateway queues the events
it receives and returns those stamped at or before ``until``.

What real telephony needs and the Protocol therefore carries:

* :class:`Answered` has two times: ``media_answer_s``, when the network reported the answer
  (SIP 200 OK), and ``at_s``, when answer detection decided human or machine. The safe-harbour
  clock (a live answer must reach an agent or hear the message within 2 s) starts at the
  network answer, :attr:`Answered.answer_time_s`.
* Failures keep their meaning (:class:`FailureCause`): an invalid number is final and never
  retried; busy and no answer are their own events; congestion is retried later; a trunk that
  refuses or does not authorise us stops dialing on that trunk and alerts the operator.
* Each signed-in agent has a persistent leg to their phone, called once at sign-in
  (:meth:`TelephonyGateway.connect_agent_phone`); what happens to it arrives as
  :class:`AgentLegEvent` values in the same :meth:`TelephonyGateway.poll` stream (the phone
  answered, failed, was unreachable or hung up).
* The soft-phone functions on a bridged call go through the gateway too: hold with music,
  transfer to another agent (the call parameters follow the call), a three-way call, a
  transfer out to an outside number.
* A call outlives the process that placed it when that process dies: :class:`Answered`
  carries a ``handle`` (for SIP, the dialog), which the dial loop stores with the attempt, and
  the next pacer's gateway ends such calls with :meth:`TelephonyGateway.end_left_calls`.
* The caller id presented (主叫) is the campaign's, in every :class:`OriginateRequest`; a
  gateway refuses an empty one instead of sending "anonymous".
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from dialer.exceptions import GatewayError

__all__ = [
    "AgentLegEvent",
    "AgentLegState",
    "AnswerKind",
    "Answered",
    "Busy",
    "CallEvent",
    "CallParameters",
    "ConnectedToAgent",
    "DtmfReceived",
    "Failed",
    "FailureCause",
    "GatewayEvent",
    "HangupParty",
    "HungUp",
    "MessageFinished",
    "NoAnswer",
    "OriginateRequest",
    "RealTimeClock",
    "RecordingReady",
    "Ringing",
    "TelephonyGateway",
    "TransferOutFailed",
    "TransferredOut",
    "outside_number",
    "with_agent",
]


class AnswerKind(StrEnum):
    """Who picked up: a person or an answering machine (answering-machine detection)."""

    HUMAN = "human"
    MACHINE = "machine"


class HangupParty(StrEnum):
    """Which side ended the call."""

    CALLEE = "callee"
    AGENT = "agent"
    SYSTEM = "system"


class FailureCause(StrEnum):
    """Why the network could not place a call, by what the dialer must do about it.

    SIP mapping (RFC 3261 responses): 404/410/484/604 invalid number; 503/500 and a 408 from
    the trunk congestion; 403, or 401/407 after our credentials were sent, trunk refused;
    603 declined. Busy (486/600) and no answer (480/487/408 after ringing) are the
    :class:`Busy` and :class:`NoAnswer` events, not failures.
    """

    INVALID_NUMBER = "invalid_number"
    CONGESTION = "congestion"
    TRUNK_REFUSED = "trunk_refused"
    DECLINED = "declined"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        """The number can never be reached: close the lead, never retry it."""
        return self is FailureCause.INVALID_NUMBER

    @property
    def stops_trunk(self) -> bool:
        """The trunk refused us: stop dialing on it and alert the operator."""
        return self is FailureCause.TRUNK_REFUSED


class AgentLegState(StrEnum):
    """What happened to an agent's persistent phone leg."""

    CONNECTED = "connected"  # the phone answered the sign-in call; the agent can take calls
    FAILED = "failed"  # the call to the phone failed (rejected, error response)
    UNREACHABLE = "unreachable"  # no response / not registered / timed out
    HUNG_UP = "hung_up"  # the agent's phone ended an established leg


@dataclass(frozen=True, slots=True)
class CallParameters:
    """The call-parameter interface every call carries (工號, 技能組, 主叫, 被叫)."""

    caller_number: str
    callee_number: str
    agent_id: str | None = None
    skill_group: str | None = None


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """Everything a gateway needs to place one outbound call."""

    campaign_id: str
    lead_id: str
    attempt_id: str
    params: CallParameters
    timeout_s: float = 25.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be greater than 0, got {self.timeout_s}")


@dataclass(frozen=True, slots=True)
class CallEvent:
    """Base of every gateway event: which call, when, and its parameters and ids."""

    call_id: str
    at_s: float
    params: CallParameters
    campaign_id: str
    lead_id: str
    attempt_id: str

    @property
    def agent_id(self) -> str | None:
        """The agent the call is (or was) bridged to, if any."""
        return self.params.agent_id

    @property
    def skill_group(self) -> str | None:
        """The skill group serving the call, if any."""
        return self.params.skill_group

    @property
    def caller_number(self) -> str:
        """The caller id presented (主叫)."""
        return self.params.caller_number

    @property
    def callee_number(self) -> str:
        """The number dialled (被叫)."""
        return self.params.callee_number


@dataclass(frozen=True, slots=True)
class Ringing(CallEvent):
    """The far end is alerting."""


@dataclass(frozen=True, slots=True)
class Answered(CallEvent):
    """The far end picked up; ``kind`` is the answering-machine detection verdict.

    ``at_s`` is when the verdict was reached; ``media_answer_s`` when the network reported
    the answer (``None``: the same moment, as with no detection delay).
    """

    kind: AnswerKind = AnswerKind.HUMAN
    ring_time_s: float = 0.0
    media_answer_s: float | None = None
    #: what another process's gateway of the same kind needs to end this call should this
    #: process die with it up (:meth:`TelephonyGateway.end_left_calls`); opaque text, ``None``
    #: when the call dies with the process (the simulated gateway)
    handle: str | None = None

    @property
    def answer_time_s(self) -> float:
        """The network's answer time: where the 2-second safe-harbour clock starts."""
        return self.at_s if self.media_answer_s is None else self.media_answer_s


@dataclass(frozen=True, slots=True)
class Busy(CallEvent):
    """The line was busy; the call is over."""


@dataclass(frozen=True, slots=True)
class NoAnswer(CallEvent):
    """Nobody answered before the origination timeout; the call is over."""


@dataclass(frozen=True, slots=True)
class Failed(CallEvent):
    """The network could not place the call: ``cause`` says what to do about it, ``detail``
    what the network said (e.g. ``"SIP 404 Not Found"``)."""

    cause: FailureCause = FailureCause.UNKNOWN
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ConnectedToAgent(CallEvent):
    """An answered call was bridged to the agent named in ``params``."""


@dataclass(frozen=True, slots=True)
class MessageFinished(CallEvent):
    """A message started with ``play_message`` has finished playing."""

    message_id: str = ""


@dataclass(frozen=True, slots=True)
class DtmfReceived(CallEvent):
    """The far end keyed ``digits`` (after a prompt, in an IVR survey)."""

    digits: str = ""


@dataclass(frozen=True, slots=True)
class TransferredOut(CallEvent):
    """The outside number a call was transferred to answered: the callee and the outside
    party hear each other, the call's agents are free. The call goes on with no agent; its
    :class:`HungUp` comes when either of them hangs up."""

    number: str = ""


@dataclass(frozen=True, slots=True)
class TransferOutFailed(CallEvent):
    """The outside number a call was transferred to did not answer (``reason``: busy, no
    answer, or the network's refusal); the callee is still up, on hold, with no agent."""

    number: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RecordingReady(CallEvent):
    """The call's recording is complete at ``path``, after its :class:`HungUp`: a WAV of
    ``duration_s`` seconds from the answer, two channels, left what the callee said, right
    what the callee heard (agents, prompts, music, an outside party). The gateway's caller
    stores it (:func:`dialer.recordings.store_recording`) and may then delete the file."""

    path: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class HungUp(CallEvent):
    """The call ended after being answered; ``by`` says which side hung up."""

    by: HangupParty = HangupParty.CALLEE
    talk_time_s: float = 0.0


@dataclass(frozen=True, slots=True)
class AgentLegEvent:
    """Something happened to an agent's persistent phone leg (not to a lead's call).

    ``call_id`` is the lead call bridged to the agent at that moment, if any: when the leg is
    lost mid-call, that call is the loop's to finish (the callee hears the agent gone).
    """

    agent_id: str
    at_s: float
    state: AgentLegState
    cause: str = ""
    call_id: str | None = None


GatewayEvent = CallEvent | AgentLegEvent
"""Everything :meth:`TelephonyGateway.poll` returns."""


def with_agent(
    params: CallParameters, agent_id: str | None, skill_group: str | None
) -> CallParameters:
    """Call parameters once the call is bridged to an agent (``None``: to none any more, as
    after a transfer out; the skill group stays unless another is given)."""
    return replace(params, agent_id=agent_id, skill_group=skill_group or params.skill_group)


def outside_number(number: str) -> str:
    """A number to transfer a call out to, stripped; GatewayError unless it is digits (with
    a leading ``+``, ``*`` or ``#`` allowed), never a URI or anything a trunk could misread."""
    number = number.strip()
    if not number or any(c not in "+0123456789*#" for c in number):
        raise GatewayError(f"{number!r} is not a number to transfer to; give its digits")
    return number


class RealTimeClock:
    """One wall clock for a real-time dial loop and its gateway.

    The loop reads it as datetimes (its first reading is its start, its times are seconds
    since then); a real gateway stamps its events with :meth:`seconds`, the same time line.
    """

    def __init__(self) -> None:
        self._epoch: datetime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        now = datetime.now(UTC)
        with self._lock:
            if self._epoch is None:
                self._epoch = now
        return now

    def seconds(self) -> float:
        """Seconds since the loop's first reading (0 before it)."""
        with self._lock:
            epoch = self._epoch
        return 0.0 if epoch is None else (datetime.now(UTC) - epoch).total_seconds()


@runtime_checkable
class TelephonyGateway(Protocol):
    """What the dial loop needs from a phone system; see the module docstring."""

    def originate(self, request: OriginateRequest, *, now: float) -> str:
        """Place a call; returns the gateway's call id. Outcomes arrive as events."""
        ...

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        """End a call in any state (ringing or answered)."""
        ...

    def connect_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        """Bridge an answered call to an agent's phone."""
        ...

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
        """Play a recorded message; with ``expect_dtmf`` collect the callee's keyed answer.

        ``text`` is what the message says, in ``language`` (a tag such as ``zh-Hans``): a
        gateway with no recording for ``message_id`` speaks it (text-to-speech), so an IVR
        question needs no recording made in advance."""
        ...

    def send_dtmf(self, call_id: str, digits: str, *, now: float) -> None:
        """Send DTMF digits down an answered call."""
        ...

    def hold(self, call_id: str, *, now: float) -> None:
        """Put a bridged call on hold: the callee hears music, the agents hear nothing."""
        ...

    def unhold(self, call_id: str, *, now: float) -> None:
        """Take a held call off hold: the callee and its agents hear each other again."""
        ...

    def transfer_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        """Move a bridged call to another agent's connected phone leg (a blind transfer, or
        the end of an attended one): the agents who had it are free again. A
        :class:`ConnectedToAgent` with the new agent's call parameters follows (the callee
        and caller numbers stay: the call's 被叫/主叫 follow it across the transfer)."""
        ...

    def conference(self, call_id: str, *, agent_id: str, now: float) -> None:
        """Add another agent to a bridged call: the callee and every agent on it hear each
        other (a three-way call). :meth:`transfer_to_agent` leaves it with one agent."""
        ...

    def transfer_out(self, call_id: str, number: str, *, now: float) -> None:
        """Hand a bridged call to an outside number (a blind transfer out): the callee hears
        the hold music while the gateway calls ``number`` (through the trunk, with the call's
        caller id), and the call's agents are free at once. :class:`TransferredOut` follows
        when it answers (the callee and the outside party then hear each other), else
        :class:`TransferOutFailed`. The call keeps its id."""
        ...

    def detach_agents(self, call_id: str, *, now: float) -> None:
        """Take a bridged call from its agents and keep it up with none (an agent hands it
        back to the IVR, 人工轉自動): the callee hears only what is played to it from now
        on, off hold, and the agents' phone legs are free for their next calls."""
        ...

    def connect_agent_phone(self, agent_id: str, address: str, *, now: float) -> None:
        """Call the agent's phone once at sign-in and keep the leg up.

        ``address`` is where the phone is (a SIP URI, or a registered user on the proxy);
        the outcome arrives as an :class:`AgentLegEvent`. Calling it again for a connected
        agent is a no-op.
        """
        ...

    def release_agent_phone(self, agent_id: str, *, now: float) -> None:
        """Hang up the agent's persistent leg (sign-out); unknown agents are ignored."""
        ...

    def end_left_calls(self, handles: Sequence[str], *, now: float) -> list[bool]:
        """End the calls that a gateway in a process that died left up (each ``handle`` from
        that call's :class:`Answered`): a pacer taking a campaign over ends its
        predecessor's calls, which nobody would hear any more. Blocks until the far ends
        answer (all at once, a few seconds at most); for each handle True once its call is
        over (ended now, or already), False when this gateway cannot end it (a handle of
        another kind, or no answer). No event follows."""
        ...

    def next_event_time(self) -> float | None:
        """When the next event is due, if the gateway knows (``None`` if nothing pending)."""
        ...

    def poll(self, until: float) -> list[GatewayEvent]:
        """Events stamped at or before ``until``, oldest first; each is returned once."""
        ...
