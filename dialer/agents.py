"""The agent soft-phone as a pure state machine.

States follow the seat-lease contract's soft-phone: signed out → signed in → ready ⇄ not
ready (with a reason) → on a call (hold / unhold, internal consult call, three-way
conference, transfer to an agent, a skill group or an outside number, hand the caller to the
IVR) → wrap-up (timed or until done) → ready; plus preview (the agent sees the lead, then
dials), manual outbound calls and callback scheduling from a call.

Phone lost: the dialer keeps a leg up to each signed-in agent's phone; when it fails, is
unreachable or hangs up, the dialer moves the agent to ``phone_lost`` (``PHONE_LOST``, with
the cause as the reason) from any signed-in state. The agent gets no calls there; it
reconnects (``RECONNECT_PHONE``: signed in again, and the dialer calls the phone again) or
signs out.

:meth:`Agent.apply` takes an :class:`AgentAction` and the time it happened (``at_s``, passed
in, never read from a clock) and returns an :class:`AgentTransition` holding the new
immutable :class:`Agent` and what changed. An action the current state does not allow raises
:class:`dialer.exceptions.IllegalTransition`, which lists the allowed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dialer.exceptions import AgentError, IllegalTransition

__all__ = [
    "CALL_STATES",
    "Agent",
    "AgentAction",
    "AgentState",
    "AgentTransition",
    "CallbackRequest",
    "TransferKind",
    "TransferTarget",
    "allowed_actions",
    "next_state",
]


class AgentState(StrEnum):
    """Where an agent's soft-phone is."""

    SIGNED_OUT = "signed_out"
    SIGNED_IN = "signed_in"
    READY = "ready"
    NOT_READY = "not_ready"
    PREVIEWING = "previewing"
    DIALING = "dialing"
    ON_CALL = "on_call"
    ON_HOLD = "on_hold"
    CONSULTING = "consulting"
    CONFERENCE = "conference"
    WRAP_UP = "wrap_up"
    PHONE_LOST = "phone_lost"


#: The live panel's bucket of each soft-phone state (dialer.live, and simulated agents).
AGENT_BUCKETS: dict[AgentState, str] = {
    AgentState.READY: "ready",
    AgentState.PREVIEWING: "talking",
    AgentState.DIALING: "talking",
    AgentState.ON_CALL: "talking",
    AgentState.ON_HOLD: "talking",
    AgentState.CONSULTING: "talking",
    AgentState.CONFERENCE: "talking",
    AgentState.WRAP_UP: "wrap_up",
    AgentState.NOT_READY: "not_ready",
    AgentState.SIGNED_IN: "not_ready",
    AgentState.SIGNED_OUT: "signed_out",
    AgentState.PHONE_LOST: "not_ready",
}
AGENT_BUCKET_NAMES = ("ready", "talking", "wrap_up", "not_ready", "signed_out")


class AgentAction(StrEnum):
    """What can happen to an agent (by the agent's hand or the dialer's)."""

    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    GO_READY = "go_ready"
    GO_NOT_READY = "go_not_ready"
    OFFER_PREVIEW = "offer_preview"
    SKIP_PREVIEW = "skip_preview"
    DIAL = "dial"
    CONNECT = "connect"
    CALL_FAILED = "call_failed"
    HOLD = "hold"
    UNHOLD = "unhold"
    INTERNAL_CALL = "internal_call"
    CANCEL_CONSULT = "cancel_consult"
    THREE_WAY = "three_way"
    TRANSFER = "transfer"
    HAND_TO_IVR = "hand_to_ivr"
    HANG_UP = "hang_up"
    FINISH_WRAP = "finish_wrap"
    SCHEDULE_CALLBACK = "schedule_callback"
    PHONE_LOST = "phone_lost"  # the dialer: the agent's phone leg is gone
    RECONNECT_PHONE = "reconnect_phone"  # the agent: call my phone again


_S = AgentState
_A = AgentAction

_TRANSITIONS: dict[AgentState, dict[AgentAction, AgentState]] = {
    _S.SIGNED_OUT: {_A.SIGN_IN: _S.SIGNED_IN},
    _S.SIGNED_IN: {
        _A.GO_READY: _S.READY,
        _A.GO_NOT_READY: _S.NOT_READY,
        _A.DIAL: _S.DIALING,
        _A.SIGN_OUT: _S.SIGNED_OUT,
    },
    _S.READY: {
        _A.GO_NOT_READY: _S.NOT_READY,
        _A.CONNECT: _S.ON_CALL,
        _A.OFFER_PREVIEW: _S.PREVIEWING,
        _A.DIAL: _S.DIALING,
        _A.INTERNAL_CALL: _S.ON_CALL,
        _A.SIGN_OUT: _S.SIGNED_OUT,
    },
    _S.NOT_READY: {
        _A.GO_READY: _S.READY,
        _A.GO_NOT_READY: _S.NOT_READY,
        _A.DIAL: _S.DIALING,
        _A.INTERNAL_CALL: _S.ON_CALL,
        _A.SIGN_OUT: _S.SIGNED_OUT,
    },
    _S.PREVIEWING: {_A.DIAL: _S.DIALING, _A.SKIP_PREVIEW: _S.READY},
    _S.DIALING: {_A.CONNECT: _S.ON_CALL, _A.CALL_FAILED: _S.WRAP_UP, _A.HANG_UP: _S.WRAP_UP},
    _S.ON_CALL: {
        _A.HOLD: _S.ON_HOLD,
        _A.INTERNAL_CALL: _S.CONSULTING,
        _A.TRANSFER: _S.WRAP_UP,
        _A.HAND_TO_IVR: _S.WRAP_UP,
        _A.SCHEDULE_CALLBACK: _S.ON_CALL,
        _A.HANG_UP: _S.WRAP_UP,
    },
    _S.ON_HOLD: {
        _A.UNHOLD: _S.ON_CALL,
        _A.INTERNAL_CALL: _S.CONSULTING,
        _A.TRANSFER: _S.WRAP_UP,
        _A.SCHEDULE_CALLBACK: _S.ON_HOLD,
        _A.HANG_UP: _S.WRAP_UP,
    },
    _S.CONSULTING: {
        _A.CANCEL_CONSULT: _S.ON_HOLD,
        _A.THREE_WAY: _S.CONFERENCE,
        _A.TRANSFER: _S.WRAP_UP,
        _A.HANG_UP: _S.WRAP_UP,
    },
    _S.CONFERENCE: {
        _A.TRANSFER: _S.WRAP_UP,
        _A.SCHEDULE_CALLBACK: _S.CONFERENCE,
        _A.HANG_UP: _S.WRAP_UP,
    },
    _S.WRAP_UP: {
        _A.FINISH_WRAP: _S.READY,
        _A.GO_NOT_READY: _S.NOT_READY,
        _A.SCHEDULE_CALLBACK: _S.WRAP_UP,
    },
    _S.PHONE_LOST: {_A.RECONNECT_PHONE: _S.SIGNED_IN, _A.SIGN_OUT: _S.SIGNED_OUT},
}
# The dialer's ``PHONE_LOST`` applies in every signed-in state (the console shows no button
# for it: its buttons are its own list).
for _state, _moves in _TRANSITIONS.items():
    if _state not in (_S.SIGNED_OUT, _S.PHONE_LOST):
        _moves[_A.PHONE_LOST] = _S.PHONE_LOST

#: States in which the agent is engaged with a call (the call id is kept).
CALL_STATES = frozenset({_S.DIALING, _S.ON_CALL, _S.ON_HOLD, _S.CONSULTING, _S.CONFERENCE})


def allowed_actions(state: AgentState) -> frozenset[AgentAction]:
    """The actions the state allows."""
    return frozenset(_TRANSITIONS[state])


def next_state(state: AgentState, action: AgentAction, *, agent_id: str = "") -> AgentState:
    """The state ``action`` leads to from ``state``; raises IllegalTransition if not allowed.

    Only the transition table, without :meth:`Agent.apply`'s other checks (timestamps,
    reasons, call ids): for callers that keep their own cheap bookkeeping, such as the
    simulator, which moves its agents through hundreds of thousands of transitions a day.
    """
    target = _TRANSITIONS[state].get(action)
    if target is None:
        raise IllegalTransition(
            agent_id, state.value, action.value, (a.value for a in _TRANSITIONS[state])
        )
    return target


class TransferKind(StrEnum):
    """Where a call is transferred."""

    AGENT = "agent"
    SKILL_GROUP = "skill_group"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """A transfer destination: an agent id, a skill group, or an outside number."""

    kind: TransferKind
    target: str


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A callback scheduled from a call: the lead to call back, when, and by whom."""

    lead_id: str
    callback_at_s: float
    agent_id: str | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class AgentTransition:
    """One applied action: the agent after it and what changed."""

    agent: Agent
    previous_state: AgentState
    action: AgentAction
    at_s: float
    reason: str | None = None
    call_id: str | None = None
    transfer: TransferTarget | None = None
    callback: CallbackRequest | None = None

    @property
    def state(self) -> AgentState:
        """The state after the action."""
        return self.agent.state


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent's soft-phone at one moment (immutable; apply actions to get the next one)."""

    agent_id: str
    skill_groups: tuple[str, ...] = ()
    state: AgentState = AgentState.SIGNED_OUT
    since_s: float = 0.0
    reason: str | None = None
    call_id: str | None = None
    lead_id: str | None = None
    wrap_limit_s: float | None = None
    wrap_deadline_s: float | None = None

    @property
    def allowed(self) -> frozenset[AgentAction]:
        """Actions allowed now."""
        return allowed_actions(self.state)

    def apply(
        self,
        action: AgentAction,
        *,
        at_s: float,
        reason: str | None = None,
        call_id: str | None = None,
        lead_id: str | None = None,
        transfer: TransferTarget | None = None,
        callback_at_s: float | None = None,
    ) -> AgentTransition:
        """Apply ``action`` at ``at_s``; raises IllegalTransition if the state forbids it."""
        target = next_state(self.state, action, agent_id=self.agent_id)
        if at_s < self.since_s:
            raise AgentError(
                f"agent {self.agent_id!r}: action {action.value!r} at {at_s} is earlier than "
                f"the agent's last change at {self.since_s}; pass non-decreasing timestamps"
            )
        if action in (_A.GO_NOT_READY, _A.PHONE_LOST) and not reason:
            raise AgentError(
                f"agent {self.agent_id!r}: going not ready needs a reason (e.g. 'break')"
            )
        if action is _A.TRANSFER and transfer is None:
            raise AgentError(f"agent {self.agent_id!r}: a transfer needs a TransferTarget")
        if action in (_A.CONNECT, _A.DIAL) and call_id is None and self.call_id is None:
            raise AgentError(f"agent {self.agent_id!r}: {action.value!r} needs the call id")
        callback: CallbackRequest | None = None
        if action is _A.SCHEDULE_CALLBACK:
            lead = lead_id or self.lead_id
            if callback_at_s is None or lead is None:
                raise AgentError(
                    f"agent {self.agent_id!r}: a callback needs callback_at_s and the lead id"
                )
            if callback_at_s <= at_s:
                raise AgentError(
                    f"agent {self.agent_id!r}: the callback time {callback_at_s} must be later "
                    f"than now ({at_s})"
                )
            callback = CallbackRequest(lead, callback_at_s, self.agent_id, reason or "")

        new_call = call_id if call_id is not None else self.call_id
        new_lead = lead_id if lead_id is not None else self.lead_id
        if target not in CALL_STATES and target is not _S.WRAP_UP:
            new_call = None
            if target is not _S.PREVIEWING:
                new_lead = None
        deadline: float | None = None
        if target is _S.WRAP_UP:
            deadline = self.wrap_deadline_s if self.state is _S.WRAP_UP else None
            if deadline is None and self.wrap_limit_s is not None:
                deadline = at_s + self.wrap_limit_s
        # Staying in a state (callback scheduling) keeps its start time.
        since = self.since_s if target is self.state and action is _A.SCHEDULE_CALLBACK else at_s
        # Not ready says why; so does a lost phone (what the network said about it).
        new_reason = reason if target in (_S.NOT_READY, _S.PHONE_LOST) else None
        agent = Agent(
            self.agent_id,
            self.skill_groups,
            target,
            since,
            new_reason,
            new_call,
            new_lead,
            self.wrap_limit_s,
            deadline,
        )
        return AgentTransition(
            agent, self.state, action, at_s, reason, new_call, transfer, callback
        )

    def expire_wrap(self, now_s: float) -> AgentTransition | None:
        """Finish a timed wrap-up whose deadline has passed (stamped at the deadline)."""
        if (
            self.state is _S.WRAP_UP
            and self.wrap_deadline_s is not None
            and now_s >= self.wrap_deadline_s
        ):
            return self.apply(_A.FINISH_WRAP, at_s=self.wrap_deadline_s, reason="wrap_timeout")
        return None

    def serves(self, skill_group: str) -> bool:
        """Whether the agent belongs to ``skill_group``."""
        return skill_group in self.skill_groups
