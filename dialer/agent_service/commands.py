"""One command type per soft-phone action, carrying only the details that action uses.

:func:`~dialer.agent_service.apply_agent_action` takes one of these. Every command carries a
``reason`` (logged with any action; required by ``go_not_ready``, the note of a callback).
:func:`command_for` builds a command from an API request's fields and refuses a detail the
action does not take, naming the actions that do.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

from dialer.agents import AgentAction, TransferTarget
from dialer.exceptions import AgentError

_A = AgentAction


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentCommand:
    """A soft-phone action and its details (a subclass per :class:`AgentAction`)."""

    action: ClassVar[AgentAction]
    reason: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DispositionCommand(AgentCommand):
    """An action that may carry the disposition of the dialer call the agent is on or wrapping
    up, one of the campaign's codes (as ``submit_disposition`` gives it)."""

    disposition: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SignIn(AgentCommand):
    action: ClassVar[AgentAction] = _A.SIGN_IN


@dataclass(frozen=True, kw_only=True, slots=True)
class SignOut(AgentCommand):
    action: ClassVar[AgentAction] = _A.SIGN_OUT


@dataclass(frozen=True, kw_only=True, slots=True)
class GoReady(AgentCommand):
    action: ClassVar[AgentAction] = _A.GO_READY


@dataclass(frozen=True, kw_only=True, slots=True)
class GoNotReady(DispositionCommand):
    """Not ready; ``reason`` (e.g. ``break``) is required."""

    action: ClassVar[AgentAction] = _A.GO_NOT_READY


@dataclass(frozen=True, kw_only=True, slots=True)
class OfferPreview(AgentCommand):
    action: ClassVar[AgentAction] = _A.OFFER_PREVIEW
    call_id: str | None = None
    lead_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SkipPreview(AgentCommand):
    action: ClassVar[AgentAction] = _A.SKIP_PREVIEW


@dataclass(frozen=True, kw_only=True, slots=True)
class Dial(AgentCommand):
    """A manual call (``number`` and ``client_id``, checked as every dial is), or the call of
    the previewed lead (neither needed: the preview's client; a number given is only logged)."""

    action: ClassVar[AgentAction] = _A.DIAL
    number: str | None = None
    client_id: uuid.UUID | None = None
    lead_id: str | None = None
    call_id: str | None = None
    #: the campaign lead dialed (a callback): the campaign's pacer places the call, by the
    #: hopper's rules, and writes its attempt (set by :func:`dial_callback`, not the API)
    campaign_lead: tuple[uuid.UUID, uuid.UUID] | None = None  # (campaign id, campaign lead id)


@dataclass(frozen=True, kw_only=True, slots=True)
class Connect(AgentCommand):
    action: ClassVar[AgentAction] = _A.CONNECT
    call_id: str | None = None
    lead_id: str | None = None
    client_id: uuid.UUID | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CallFailed(AgentCommand):
    action: ClassVar[AgentAction] = _A.CALL_FAILED


@dataclass(frozen=True, kw_only=True, slots=True)
class Hold(AgentCommand):
    action: ClassVar[AgentAction] = _A.HOLD


@dataclass(frozen=True, kw_only=True, slots=True)
class Unhold(AgentCommand):
    action: ClassVar[AgentAction] = _A.UNHOLD


@dataclass(frozen=True, kw_only=True, slots=True)
class InternalCall(AgentCommand):
    """Consult (or, when idle, call) a colleague; ``target`` is checked and logged if given."""

    action: ClassVar[AgentAction] = _A.INTERNAL_CALL
    target: TransferTarget | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelConsult(AgentCommand):
    action: ClassVar[AgentAction] = _A.CANCEL_CONSULT


@dataclass(frozen=True, kw_only=True, slots=True)
class ThreeWay(AgentCommand):
    action: ClassVar[AgentAction] = _A.THREE_WAY


@dataclass(frozen=True, kw_only=True, slots=True)
class Transfer(AgentCommand):
    action: ClassVar[AgentAction] = _A.TRANSFER
    target: TransferTarget


@dataclass(frozen=True, kw_only=True, slots=True)
class HandToIvr(AgentCommand):
    action: ClassVar[AgentAction] = _A.HAND_TO_IVR


@dataclass(frozen=True, kw_only=True, slots=True)
class HangUp(DispositionCommand):
    action: ClassVar[AgentAction] = _A.HANG_UP


@dataclass(frozen=True, kw_only=True, slots=True)
class FinishWrap(DispositionCommand):
    action: ClassVar[AgentAction] = _A.FINISH_WRAP


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleCallback(DispositionCommand):
    """A callback of the call's lead (``lead_id`` for a call without one) at ``callback_at``,
    for this agent or, ``to_group``, any agent of the skill group; ``reason`` is its note."""

    action: ClassVar[AgentAction] = _A.SCHEDULE_CALLBACK
    callback_at: datetime | None = None
    to_group: bool = False
    lead_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PhoneLost(AgentCommand):
    """The dialer's: the agent's phone leg is gone; ``reason`` (what the network said) needed."""

    action: ClassVar[AgentAction] = _A.PHONE_LOST


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconnectPhone(AgentCommand):
    action: ClassVar[AgentAction] = _A.RECONNECT_PHONE


#: The command type of every action.
COMMANDS: Mapping[AgentAction, type[AgentCommand]] = MappingProxyType(
    {
        cls.action: cls
        for cls in (
            SignIn, SignOut, GoReady, GoNotReady, OfferPreview, SkipPreview, Dial, Connect,
            CallFailed, Hold, Unhold, InternalCall, CancelConsult, ThreeWay, Transfer, HandToIvr,
            HangUp, FinishWrap, ScheduleCallback, PhoneLost, ReconnectPhone,
        )
    }
)  # fmt: skip

#: Actions that may carry the disposition of the dialer call the agent is on or wrapping up.
DISPOSITION_ACTIONS = frozenset(
    action for action, cls in COMMANDS.items() if issubclass(cls, DispositionCommand)
)

_FIELDS: Mapping[type[AgentCommand], frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in COMMANDS.values()
}
_REQUIRED: Mapping[type[AgentCommand], frozenset[str]] = {
    cls: frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    for cls in COMMANDS.values()
}
_ALL_FIELDS = frozenset().union(*_FIELDS.values())
# A command field as the API request names it (when it differs), and how a message says it.
_REQUEST_FIELD = {"target": "transfer", "to_group": "callback_to"}
_SAID = {
    "disposition": "a disposition",
    "target": "a transfer target (transfer)",
    "to_group": "callback_to 'group'",
}
_HINT = {"disposition": " (or POST /agents/{id}/disposition)"}


def command_for(action: AgentAction, **fields: Any) -> AgentCommand:
    """The command of ``action`` with the given details (a request's fields).

    A field given as None (or ``to_group`` as False) counts as not given. A field the action
    does not take, or a missing one it needs, raises AgentError naming the field (``extra``:
    its request name) and, for the former, the actions that take it.
    """
    unknown = fields.keys() - _ALL_FIELDS
    if unknown:
        raise TypeError(f"no agent command takes {', '.join(sorted(unknown))}")
    cls = COMMANDS[action]
    given = {
        name: value for name, value in fields.items() if value is not None and value is not False
    }
    for name in given:
        if name not in _FIELDS[cls]:
            takers = ", ".join(sorted(a.value for a, c in COMMANDS.items() if name in _FIELDS[c]))
            raise AgentError(
                f"{_SAID.get(name, name)} goes with {takers}{_HINT.get(name, '')}, "
                f"not with {action.value!r}",
                extra={"field": _REQUEST_FIELD.get(name, name)},
            )
    missing = sorted(_REQUIRED[cls] - given.keys())
    if missing:
        raise AgentError(
            f"{action.value!r} needs {_SAID.get(missing[0], missing[0])}; send it with the action",
            extra={"field": _REQUEST_FIELD.get(missing[0], missing[0])},
        )
    return cls(**given)
