"""Agent seats, their soft-phone events and their state log, so any API process serves them.

- :class:`AgentSeat`: one agent (工號, skill groups, the clients whose calls the agent may
  take) and the JSON snapshot of the pure :class:`dialer.agents.Agent`; the state columns
  mirror the snapshot so the pacer can query them. Not tenant-scoped: agents are the
  outsourcer's staff. ``last_seq`` numbers everything that reaches the agent's event stream.
- :class:`AgentEvent`: a pop or call event for one client (lead data, call parameters,
  script), tenant-scoped so a key only ever sees its own clients' pops.
- :class:`AgentStateLog`: every transition (from, to, action, reason, time), for the agent
  time-period reports; also streamed to the soft-phone as ``state_changed``.
- :class:`AgentDisposition`: what the agent said about a dialer call (disposition code,
  callback time), written by the API process and applied to the call attempt by the dial
  loop (:mod:`dialer.attended`) once the call is over; one row per attempt, tenant-scoped.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel

from core.db import TenantScoped, UTCDateTime, str_enum, utcnow
from dialer.agents import AgentAction, AgentState, TransferKind

__all__ = [
    "AgentActionRequest",
    "AgentActionResult",
    "AgentCreate",
    "AgentDisposition",
    "AgentDispositionPublic",
    "AgentEvent",
    "AgentEventKind",
    "AgentEventPublic",
    "AgentPublic",
    "AgentSeat",
    "AgentStateLog",
    "AgentStateLogPublic",
    "AgentUpdate",
    "CallbackPublic",
    "DispositionRequest",
    "TransferTargetIn",
]

_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
# A URI with a scheme (sip:, sips:, tel:, sim:) and no spaces.
_PHONE_URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$"
_GROUP_PATTERN = r"^[^\s,][^,]{0,79}$"


class AgentEventKind(StrEnum):
    """What an entry of the soft-phone stream announces."""

    CALL_OFFERED = "call_offered"
    CALL_CONNECTED = "call_connected"
    CALL_ENDED = "call_ended"
    STATE_CHANGED = "state_changed"
    PREVIEW_OFFERED = "preview_offered"
    CALLBACK_DUE = "callback_due"


class AgentSeat(SQLModel, table=True):
    """An agent and the persisted snapshot of its soft-phone state machine."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    agent_code: str = Field(index=True, unique=True, max_length=40)
    name: str = Field(max_length=200)
    skill_groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    client_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: AgentState = Field(
        default=AgentState.SIGNED_OUT, sa_type=str_enum(AgentState), index=True
    )
    state_reason: str | None = Field(default=None, max_length=200)
    state_since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    wrap_limit_s: float | None = None
    wrap_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # Where the dialer calls the agent's phone at sign-in (a SIP URI); None: the gateway's
    # default for the agent (the simulated gateway's ``sim:<agent code>``).
    phone_uri: str | None = Field(default=None, max_length=200)
    # The client whose call the agent is on (or wrapping up); None between calls.
    current_client_id: uuid.UUID | None = Field(default=None)
    last_seq: int = 0
    # A deactivated agent is signed out and cannot sign in again until reactivated; kept (not
    # deleted) so its state log and the reports that read it stay whole.
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgentEvent(SQLModel, TenantScoped, table=True):
    """One client's pop or call event on an agent's stream (carries that client's lead data)."""

    __table_args__ = (UniqueConstraint("agent_seat_id", "seq"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    agent_seat_id: uuid.UUID = Field(foreign_key="agentseat.id", ondelete="CASCADE")
    seq: int
    kind: AgentEventKind = Field(sa_type=str_enum(AgentEventKind))
    call_id: str | None = Field(default=None, max_length=80)
    attempt_id: uuid.UUID | None = Field(default=None, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgentStateLog(SQLModel, table=True):
    """One applied transition of an agent, for reports and the soft-phone stream."""

    __table_args__ = (
        UniqueConstraint("agent_seat_id", "seq"),
        Index("ix_agentstatelog_agent_at", "agent_seat_id", "at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    agent_seat_id: uuid.UUID = Field(foreign_key="agentseat.id", ondelete="CASCADE")
    seq: int
    from_state: AgentState = Field(sa_type=str_enum(AgentState))
    to_state: AgentState = Field(sa_type=str_enum(AgentState))
    action: AgentAction = Field(sa_type=str_enum(AgentAction))
    reason: str | None = Field(default=None, max_length=200)
    # The client whose call the transition concerns; its call details are shown only to keys
    # granted that client.
    client_id: uuid.UUID | None = Field(
        default=None, foreign_key="client.id", index=True, ondelete="SET NULL"
    )
    call_id: str | None = Field(default=None, max_length=80)
    lead_id: str | None = Field(default=None, max_length=80)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class AgentDisposition(SQLModel, TenantScoped, table=True):
    """An agent's disposition and callback for one dialer call, until the loop applies it.

    ``applied_at`` is set when the dial loop completed the call attempt with it; from then on
    the attempt is immutable and a new disposition is refused.
    """

    __table_args__ = (UniqueConstraint("attempt_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    attempt_id: uuid.UUID = Field(foreign_key="callattempt.id", ondelete="CASCADE")
    agent_seat_id: uuid.UUID | None = Field(
        default=None, foreign_key="agentseat.id", index=True, ondelete="SET NULL"
    )
    agent_code: str = Field(max_length=40)
    call_id: str = Field(max_length=80)
    disposition: str | None = Field(default=None, max_length=40)
    callback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # a callback for the agent's skill group (any agent of it), not pinned to this agent
    callback_to_group: bool = False
    note: str | None = Field(default=None, max_length=500)
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --------------------------------------------------------------------------- API shapes


class AgentCreate(SQLModel):
    """A new agent: 工號, name, skill groups, and the clients whose calls it may take."""

    agent_code: str = Field(max_length=40, schema_extra={"pattern": _CODE_PATTERN})
    name: str = Field(min_length=1, max_length=200)
    skill_groups: list[str] = Field(default_factory=list, max_length=50)
    client_ids: list[uuid.UUID] = Field(default_factory=list, max_length=200)
    wrap_limit_s: float | None = Field(default=None, gt=0, le=3600)
    phone_uri: str | None = Field(
        default=None,
        max_length=200,
        schema_extra={"pattern": _PHONE_URI_PATTERN},
        description="where the dialer calls the agent's phone, e.g. sip:1001@pbx.example.com",
    )

    @field_validator("skill_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return _check_groups(value)


class AgentUpdate(SQLModel):
    """Changes to an agent's configuration (its state changes only through actions)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    skill_groups: list[str] | None = Field(default=None, max_length=50)
    client_ids: list[uuid.UUID] | None = Field(default=None, max_length=200)
    wrap_limit_s: float | None = Field(default=None, gt=0, le=3600)
    clear_wrap_limit: bool = False
    phone_uri: str | None = Field(
        default=None, max_length=200, schema_extra={"pattern": _PHONE_URI_PATTERN}
    )

    @field_validator("skill_groups")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_groups(value)


def _check_groups(value: list[str]) -> list[str]:
    cleaned: list[str] = []
    for group in value:
        group = group.strip()
        if not re.match(_GROUP_PATTERN, group):
            raise ValueError(
                f"skill group {group!r} must be 1-80 characters without commas or leading spaces"
            )
        if group not in cleaned:
            cleaned.append(group)
    return cleaned


class AgentPublic(SQLModel):
    """An agent as the API shows it."""

    id: uuid.UUID
    agent_code: str
    name: str
    skill_groups: list[str]
    client_ids: list[uuid.UUID]
    state: AgentState
    state_reason: str | None
    state_since: datetime
    allowed_actions: list[AgentAction]
    call_id: str | None
    wrap_limit_s: float | None
    wrap_deadline: datetime | None
    last_seq: int
    active: bool = True
    created_at: datetime
    phone_uri: str | None = None


class TransferTargetIn(SQLModel):
    """Where to transfer (or consult): an agent's 工號, a skill group, or an outside number."""

    kind: TransferKind
    target: str = Field(min_length=1, max_length=80)


class AgentActionRequest(SQLModel):
    """One soft-phone action and the details it needs."""

    action: AgentAction
    reason: str | None = Field(
        default=None, max_length=200, description="required for go_not_ready (e.g. 'break')"
    )
    call_id: str | None = Field(default=None, max_length=80)
    lead_id: str | None = Field(default=None, max_length=80)
    client_id: uuid.UUID | None = Field(
        default=None, description="dial: the client the manual call is made for"
    )
    number: str | None = Field(
        default=None, max_length=32, description="dial: the number to call (manual outbound)"
    )
    transfer: TransferTargetIn | None = Field(
        default=None, description="transfer / internal_call: the destination"
    )
    callback_at: datetime | None = Field(
        default=None, description="schedule_callback: when, with a timezone"
    )
    callback_to: Literal["me", "group"] = Field(
        default="me",
        description="schedule_callback: for this agent (me) or any agent of the skill group",
    )
    disposition: str | None = Field(
        default=None,
        max_length=40,
        description=(
            "hang_up, finish_wrap, go_not_ready or schedule_callback on a dialer call: the "
            "call's disposition code, one of the campaign's dispositions"
        ),
    )


class DispositionRequest(SQLModel):
    """An agent's disposition of the dialer call it is on or wrapping up."""

    disposition: str = Field(
        min_length=1, max_length=40, description="one of the campaign's disposition codes"
    )
    callback_at: datetime | None = Field(
        default=None,
        description="with a callback disposition (e.g. callback_requested): when, with a timezone",
    )
    callback_to: Literal["me", "group"] = Field(
        default="me",
        description="the callback is for this agent (me) or any agent of the skill group",
    )
    note: str | None = Field(default=None, max_length=500)


class AgentDispositionPublic(SQLModel):
    """A disposition as stored; ``applied`` once the dial loop completed the attempt with it."""

    attempt_id: uuid.UUID
    call_id: str
    agent_code: str
    disposition: str | None
    callback_at: datetime | None
    callback_to_group: bool
    note: str | None
    submitted_at: datetime
    applied: bool


class AgentStateLogPublic(SQLModel):
    """One transition; call details are hidden unless the caller may see the call's client."""

    seq: int
    from_state: AgentState
    to_state: AgentState
    action: AgentAction
    reason: str | None
    client_id: uuid.UUID | None
    call_id: str | None
    lead_id: str | None
    details: dict[str, Any]
    at: datetime


class CallbackPublic(SQLModel):
    """A callback scheduled from a call (to be written to the campaign's callbacks)."""

    lead_id: str
    callback_at: datetime
    agent_code: str | None
    note: str
    client_id: uuid.UUID | None


class ScheduledCallbackPublic(SQLModel):
    """One open callback scheduled to an agent, and whether the agent can dial it now."""

    campaign_lead_id: uuid.UUID
    campaign_id: uuid.UUID
    campaign: str
    client_id: uuid.UUID
    lead_id: uuid.UUID
    phone: str
    attributes: dict[str, Any]
    callback_at: datetime
    #: the number's time zones (the calling window applies in each)
    zones: list[str]
    attempts: int
    due: bool
    callable_now: bool
    #: the campaign's dial loop calls it itself at its time and puts it through to the agent
    dialer_calls_it: bool
    #: a pacer dials the campaign for real agents now, so the agent's own call can be placed
    pacer_live: bool
    #: POST .../dial would be accepted now (due, window open, pacer live); the agent must
    #: also be in a state that allows ``dial``
    dialable: bool


class AgentActionResult(SQLModel):
    """The agent after an action, the logged transition and any callback it scheduled."""

    agent: AgentPublic
    transition: AgentStateLogPublic
    callback: CallbackPublic | None = None
    disposition: AgentDispositionPublic | None = None


class AgentEventPublic(SQLModel):
    """One entry of an agent's stream."""

    seq: int
    kind: AgentEventKind
    client_id: uuid.UUID | None
    payload: dict[str, Any]
    at: datetime


# --------------------------------------------------------------------------- wake-ups


def _register_wakeups() -> None:
    """Tell the live streams (campaign metrics, soft-phones) what a commit changed."""
    from campaigns.models import CallAttempt, Campaign, CampaignLead
    from core.wakeups import channel, watch

    watch(CallAttempt, lambda row: [channel("campaign", row.campaign_id)])
    watch(CampaignLead, lambda row: [channel("campaign", row.campaign_id)])
    watch(Campaign, lambda row: [channel("campaign", row.id)])
    # An agent's change concerns its soft-phone and the campaigns of every client it serves.
    watch(
        AgentSeat,
        lambda row: [channel("agent", row.id)] + [channel("client", c) for c in row.client_ids],
    )
    watch(AgentEvent, lambda row: [channel("agent", row.agent_seat_id)])
    watch(AgentStateLog, lambda row: [channel("agent", row.agent_seat_id)])


_register_wakeups()
