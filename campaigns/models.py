"""Tables and API shapes of the campaigns domain.

Lead data (lists, leads, suppression) is the shape the list-cleaning import writes; campaigns,
batches, per-lead campaign state, dispositions and call attempts are what the dialer and the
feasibility modeler read. Every client-data table is :class:`core.db.TenantScoped`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, event, text
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Field, SQLModel

from campaigns.rules import DEFAULT_CALLING_WINDOWS, parse_holidays, parse_windows, valid_zone
from core.db import TenantScoped, UTCDateTime, str_enum, utcnow
from core.validation import FiniteFloat, check_plain_text

__all__ = [
    "IN_FLIGHT_SQL",
    "LIVE_ANSWER_SQL",
    "AbandonWindow",
    "AmdResult",
    "AttemptSource",
    "AttemptStatus",
    "Batch",
    "BatchCreate",
    "BatchKind",
    "BatchPublic",
    "CallAttempt",
    "CallAttemptPublic",
    "Campaign",
    "CampaignCreate",
    "CampaignKind",
    "CampaignLead",
    "CampaignLeadList",
    "CampaignLeadPublic",
    "CampaignPublic",
    "CampaignStatus",
    "CampaignUpdate",
    "Disposition",
    "DispositionCreate",
    "DispositionPublic",
    "DispositionUpdate",
    "GlobalSuppressionEntry",
    "Lead",
    "LeadList",
    "LeadState",
    "ListStatus",
    "OutcomeClass",
    "PacingMode",
    "SamplingMethod",
    "SuppressionEntry",
    "SuppressionSource",
]


# --------------------------------------------------------------------------- lists and leads


class ListStatus(StrEnum):
    uploaded = "uploaded"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class LeadList(SQLModel, TenantScoped, table=True):
    """An uploaded lead list and the state of its cleaning import."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    filename: str = Field(max_length=300)
    status: ListStatus = Field(default=ListStatus.uploaded, sa_type=str_enum(ListStatus))
    default_region: str = Field(default="CN", max_length=2)
    phone_column: str | None = Field(default=None, max_length=200)
    encoding: str | None = Field(default=None, max_length=40)
    sheet: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, sa_column=Column(Text))
    rows_total: int | None = None
    rows_done: int = 0
    report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    upload_file_id: uuid.UUID | None = Field(
        default=None, foreign_key="storedfile.id", ondelete="SET NULL"
    )
    cleaned_file_id: uuid.UUID | None = Field(
        default=None, foreign_key="storedfile.id", ondelete="SET NULL"
    )
    rejects_file_id: uuid.UUID | None = Field(
        default=None, foreign_key="storedfile.id", ondelete="SET NULL"
    )
    job_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Lead(SQLModel, TenantScoped, table=True):
    """One kept row of a cleaned list: the normalised number, its enrichment and the row."""

    __table_args__ = (
        UniqueConstraint("list_id", "row_number"),
        Index("ix_lead_client_phone", "client_id", "phone_e164"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    list_id: uuid.UUID = Field(foreign_key="leadlist.id", index=True, ondelete="CASCADE")
    row_number: int
    phone_e164: str = Field(max_length=32)
    phone_type: str = Field(default="unknown", max_length=40)
    phone_region: str = Field(default="", max_length=8)
    phone_region_desc: str = Field(default="", max_length=200)
    phone_timezones: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    phone_extension: str | None = Field(default=None, max_length=20)
    phone_carrier: str | None = Field(default=None, max_length=200)
    virtual_operator: bool = False
    #: The other numbers of a phone cell that held several (E.164; not deduplicated across
    #: leads, checked against the do-not-call lists at import).
    alternate_phones: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    attributes: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SuppressionSource(StrEnum):
    upload = "upload"
    api = "api"
    dnc_request = "dnc_request"
    cli = "cli"


class SuppressionEntry(SQLModel, TenantScoped, table=True):
    """A number this client must never call, held as a keyed hash and a masked form."""

    __table_args__ = (UniqueConstraint("client_id", "number_hash"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    number_hash: str = Field(max_length=64)
    masked: str = Field(max_length=40)
    source: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GlobalSuppressionEntry(SQLModel, table=True):
    """A number nobody may call (operator-wide do-not-call list); not client data."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    number_hash: str = Field(max_length=64, unique=True)
    masked: str = Field(max_length=40)
    source: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --------------------------------------------------------------------------- campaigns


class CampaignKind(StrEnum):
    sales = "sales"
    survey = "survey"


class CampaignStatus(StrEnum):
    draft = "draft"
    piloting = "piloting"
    pilot_paused = "pilot_paused"
    pilot_done = "pilot_done"
    quoted = "quoted"
    approved = "approved"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"


class PacingMode(StrEnum):
    """How the dialer paces calls (the dialer's own ``dialer.pacing.PacingMode`` values)."""

    preview = "preview"
    progressive = "progressive"
    power = "power"
    predictive = "predictive"
    agentless = "agentless"


class AbandonWindow(StrEnum):
    """How the abandon-rate cap is measured (and which redial rule applies)."""

    fcc_30d = "fcc_30d"  # 3 % of live-answered calls over 30 days (FCC/FTC)
    ofcom_24h = "ofcom_24h"  # 3 % per 24 h; abandoned numbers not redialed within 72 h (Ofcom)


MIN_RING_SECONDS = 15


def _check_windows(value: dict[str, list[list[str]]] | None) -> dict[str, list[list[str]]] | None:
    if value is not None:
        parse_windows(value)
    return value


def _check_holidays(value: list[str] | None) -> list[str] | None:
    if value is not None:
        return sorted(d.isoformat() for d in parse_holidays(value))
    return value


def _check_param_names(value: dict[str, float] | None) -> dict[str, float] | None:
    for name in value or {}:
        check_plain_text(name)
        if not 0 < len(name) <= 64:
            raise ValueError("pacing_params names must be 1 to 64 characters long")
    return value


def _check_zone(value: str | None) -> str | None:
    if value is not None and not valid_zone(value):
        raise ValueError(f"{value!r} is not an IANA time zone; use e.g. Asia/Shanghai")
    return value


class CampaignSettings(SQLModel):
    """The dialing rules every campaign carries."""

    skill_group: str | None = Field(default=None, max_length=80)
    caller_id: str | None = Field(default=None, max_length=32)
    pacing_mode: PacingMode = Field(default=PacingMode.progressive, sa_type=str_enum(PacingMode))
    pacing_params: dict[str, FiniteFloat] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    calling_windows: dict[str, list[list[str]]] = Field(
        default_factory=lambda: {
            k: [list(w) for w in v] for k, v in DEFAULT_CALLING_WINDOWS.items()
        },
        sa_column=Column(JSON, nullable=False),
    )
    fallback_timezone: str | None = Field(default=None, max_length=64)
    holidays: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    max_attempts: int = Field(default=6, ge=1, le=50)
    abandon_rate_cap: float = Field(default=0.03, gt=0, le=0.2)
    abandon_window: AbandonWindow = Field(
        default=AbandonWindow.fcc_30d, sa_type=str_enum(AbandonWindow)
    )
    max_ring_s: int = Field(default=20, ge=MIN_RING_SECONDS, le=120)
    safe_harbour_message: str | None = Field(default=None, max_length=2000)

    @field_validator("calling_windows")
    @classmethod
    def _valid_windows(
        cls, value: dict[str, list[list[str]]] | None
    ) -> dict[str, list[list[str]]] | None:
        return _check_windows(value)

    @field_validator("holidays")
    @classmethod
    def _valid_holidays(cls, value: list[str] | None) -> list[str] | None:
        return _check_holidays(value)

    @field_validator("fallback_timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @field_validator("skill_group", "caller_id", "safe_harbour_message")
    @classmethod
    def _plain_settings_text(cls, value: str | None) -> str | None:
        return None if value is None else check_plain_text(value)

    @field_validator("pacing_params")
    @classmethod
    def _pacing_param_names(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _check_param_names(value)


class Campaign(CampaignSettings, TenantScoped, table=True):
    """An outbound sales or survey campaign and all its dialing rules."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    kind: CampaignKind = Field(default=CampaignKind.sales, sa_type=str_enum(CampaignKind))
    status: CampaignStatus = Field(default=CampaignStatus.draft, sa_type=str_enum(CampaignStatus))
    # published versions are never deleted (surveys refuses), so no ondelete rule is needed
    questionnaire_version_id: uuid.UUID | None = Field(
        default=None, foreign_key="questionnaireversion.id", index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: How the dialer paces this campaign (``dialer.run_control.PacerSettings``), stored so a
    #: resumed or adopted run dials with them; None until a pacer is first started.
    pacer_settings: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class CampaignLeadList(SQLModel, TenantScoped, table=True):
    """Which lead lists a campaign dials."""

    __table_args__ = (UniqueConstraint("campaign_id", "list_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    list_id: uuid.UUID = Field(foreign_key="leadlist.id", index=True, ondelete="CASCADE")


class CampaignCreate(CampaignSettings):
    """What a caller sends to create a campaign."""

    name: str = Field(min_length=1, max_length=200)
    kind: CampaignKind = CampaignKind.sales
    questionnaire_version_id: uuid.UUID | None = None
    list_ids: list[uuid.UUID] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return check_plain_text(value)

    @model_validator(mode="after")
    def _survey_needs_questionnaire(self) -> CampaignCreate:
        if self.kind is CampaignKind.survey and self.questionnaire_version_id is None:
            raise ValueError(
                "a survey campaign must pin a published questionnaire version: "
                "set questionnaire_version_id"
            )
        return self


class CampaignUpdate(SQLModel):
    """Fields a caller may change (every one optional)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    questionnaire_version_id: uuid.UUID | None = None
    list_ids: list[uuid.UUID] | None = None
    skill_group: str | None = Field(default=None, max_length=80)
    caller_id: str | None = Field(default=None, max_length=32)
    pacing_mode: PacingMode | None = None
    pacing_params: dict[str, FiniteFloat] | None = None
    calling_windows: dict[str, list[list[str]]] | None = None
    fallback_timezone: str | None = Field(default=None, max_length=64)
    holidays: list[str] | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    abandon_rate_cap: float | None = Field(default=None, gt=0, le=0.2)
    abandon_window: AbandonWindow | None = None
    max_ring_s: int | None = Field(default=None, ge=MIN_RING_SECONDS, le=120)
    safe_harbour_message: str | None = Field(default=None, max_length=2000)

    @field_validator("calling_windows")
    @classmethod
    def _valid_windows(
        cls, value: dict[str, list[list[str]]] | None
    ) -> dict[str, list[list[str]]] | None:
        return _check_windows(value)

    @field_validator("holidays")
    @classmethod
    def _valid_holidays(cls, value: list[str] | None) -> list[str] | None:
        return _check_holidays(value)

    @field_validator("fallback_timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @field_validator("name", "skill_group", "caller_id", "safe_harbour_message")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        return None if value is None else check_plain_text(value)

    @field_validator("pacing_params")
    @classmethod
    def _pacing_param_names(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _check_param_names(value)


class CampaignPublic(SQLModel):
    """A campaign as the API shows it."""

    id: uuid.UUID
    name: str
    kind: CampaignKind
    status: CampaignStatus
    allowed_next_states: list[CampaignStatus] = Field(default_factory=list)
    questionnaire_version_id: uuid.UUID | None
    list_ids: list[uuid.UUID] = Field(default_factory=list)
    skill_group: str | None
    caller_id: str | None
    pacing_mode: PacingMode
    pacing_params: dict[str, float]
    calling_windows: dict[str, list[list[str]]]
    fallback_timezone: str | None
    holidays: list[str]
    max_attempts: int
    abandon_rate_cap: float
    abandon_window: AbandonWindow
    max_ring_s: int
    safe_harbour_message: str | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime


# --------------------------------------------------------------------------- batches


class BatchKind(StrEnum):
    pilot = "pilot"
    full = "full"


class SamplingMethod(StrEnum):
    simple = "simple"
    stratified = "stratified"
    all = "all"  # a full batch: every remaining lead


class Batch(SQLModel, TenantScoped, table=True):
    """A release of leads into a campaign: a seeded pilot sample or the full rest."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    kind: BatchKind = Field(sa_type=str_enum(BatchKind))
    sampling: SamplingMethod = Field(sa_type=str_enum(SamplingMethod))
    requested_size: int | None = None
    size: int = 0
    stratify_by: str | None = Field(default=None, max_length=200)
    seed: int | None = Field(default=None, description="recorded so the sample can be redrawn")
    population: int = 0
    strata: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BatchCreate(SQLModel):
    """A pilot (size, optional stratification and seed) or the full batch."""

    kind: BatchKind = BatchKind.pilot
    size: int | None = Field(default=None, ge=1, le=10_000_000)
    stratify_by: str | None = Field(default=None, min_length=1, max_length=200)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _pilot_needs_size(self) -> BatchCreate:
        if self.kind is BatchKind.pilot and self.size is None:
            raise ValueError("a pilot batch needs a size (how many leads to sample)")
        if self.kind is BatchKind.full and (self.size or self.stratify_by or self.seed):
            raise ValueError("a full batch takes every remaining lead: omit size/stratify_by/seed")
        return self


class BatchPublic(SQLModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    kind: BatchKind
    sampling: SamplingMethod
    requested_size: int | None
    size: int
    stratify_by: str | None
    seed: int | None
    population: int
    strata: dict[str, Any] | None
    created_at: datetime


# --------------------------------------------------------------------------- lead state


class LeadState(StrEnum):
    new = "new"
    scheduled = "scheduled"
    in_progress = "in_progress"
    final = "final"


class CampaignLead(SQLModel, TenantScoped, table=True):
    """One lead's state in one campaign: the hopper's unit of work."""

    __table_args__ = (
        UniqueConstraint("campaign_id", "lead_id"),
        Index("ix_campaignlead_hopper", "campaign_id", "state", "next_attempt_at"),
        Index("ix_campaignlead_client_phone", "client_id", "phone_e164"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", ondelete="CASCADE")
    lead_id: uuid.UUID = Field(foreign_key="lead.id", index=True, ondelete="CASCADE")
    batch_id: uuid.UUID | None = Field(
        default=None, foreign_key="batch.id", index=True, ondelete="SET NULL"
    )
    in_pilot: bool = False
    #: The number being dialed: the lead's own (``phone_index`` 0) or, after that one proved
    #: not to work, its ``phone_index``-th alternate (:func:`campaigns.hopper.apply_outcome`).
    phone_e164: str = Field(max_length=32)
    phone_index: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    zones_key: str = Field(default="", max_length=400)
    state: LeadState = Field(default=LeadState.new, sa_type=str_enum(LeadState))
    priority: int = 0
    attempts: int = 0
    disposition_counts: dict[str, int] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    last_disposition: str | None = Field(default=None, max_length=40)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    callback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    callback_agent: str | None = Field(default=None, max_length=80)
    final_disposition: str | None = Field(default=None, max_length=40)
    final_reason: str | None = Field(default=None, max_length=200)
    lease_token: uuid.UUID | None = None
    lease_owner: str | None = Field(default=None, max_length=120)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CampaignLeadPublic(SQLModel):
    lead_id: uuid.UUID
    batch_id: uuid.UUID | None
    in_pilot: bool
    state: LeadState
    priority: int
    attempts: int
    last_disposition: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    callback_at: datetime | None
    callback_agent: str | None
    final_disposition: str | None
    final_reason: str | None
    lease_expires_at: datetime | None


# --------------------------------------------------------------------------- dispositions


class OutcomeClass(StrEnum):
    """The coarse outcome the feasibility model works with."""

    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"
    invalid_number = "invalid_number"
    machine = "machine"
    abandoned = "abandoned"
    contact = "contact"


class DispositionBase(SQLModel):
    code: str = Field(min_length=1, max_length=40, schema_extra={"pattern": r"^[a-z][a-z0-9_]*$"})
    label: str = Field(min_length=1, max_length=120)
    outcome: OutcomeClass = Field(sa_type=str_enum(OutcomeClass))
    contacted: bool = False
    human_answered: bool = False
    final: bool = False
    success: bool = False
    dnc: bool = False
    callback: bool = False
    abandoned: bool = False
    retry_delay_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 60)
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    aapor_code: str | None = Field(
        default=None, max_length=8, schema_extra={"pattern": r"^[1-4]\.\d{1,3}$"}
    )


class Disposition(DispositionBase, TenantScoped, table=True):
    """One outcome code of a campaign's vocabulary, with its flags and retry rule."""

    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")


class DispositionCreate(DispositionBase):
    @field_validator("label")
    @classmethod
    def _plain_label(cls, value: str) -> str:
        return check_plain_text(value)


class DispositionUpdate(SQLModel):
    label: str | None = Field(default=None, min_length=1, max_length=120)
    outcome: OutcomeClass | None = None
    contacted: bool | None = None
    human_answered: bool | None = None
    final: bool | None = None
    success: bool | None = None
    dnc: bool | None = None
    callback: bool | None = None
    abandoned: bool | None = None
    retry_delay_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 60)
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    aapor_code: str | None = Field(
        default=None, max_length=8, schema_extra={"pattern": r"^[1-4]\.\d{1,3}$"}
    )

    @field_validator("label")
    @classmethod
    def _plain_label(cls, value: str | None) -> str | None:
        return None if value is None else check_plain_text(value)


class DispositionPublic(DispositionBase):
    id: uuid.UUID
    campaign_id: uuid.UUID


# --------------------------------------------------------------------------- call attempts


class AttemptStatus(StrEnum):
    started = "started"  # the row exists before the dial: a retry never double-dials
    finished = "finished"  # immutable from here on
    expired = "expired"  # the lease ran out before the dialer reported an end


class AttemptSource(StrEnum):
    dialer = "dialer"
    imported = "import"


class AmdResult(StrEnum):
    human = "human"
    machine = "machine"
    unknown = "unknown"
    not_used = "not_used"


#: Partial-index predicates; queries that want the indexes use these very conditions.
IN_FLIGHT_SQL = "status = 'started'"
LIVE_ANSWER_SQL = "amd_result = 'human' AND (abandoned OR agent_connected_at IS NOT NULL)"


class CallAttempt(SQLModel, TenantScoped, table=True):
    """One dial and everything that happened on it: the raw facts every report reads."""

    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key"),
        UniqueConstraint("campaign_id", "lead_id", "attempt_no"),
        Index("ix_callattempt_client_number", "client_id", "number_dialed"),
        Index("ix_callattempt_campaign_started", "campaign_id", "dialed_at"),
        # The live metrics (and a pacer taking over) read the calls in flight, and the
        # abandon window the live answers by end time: small partial indexes for both.
        Index(
            "ix_callattempt_in_flight",
            "campaign_id",
            postgresql_where=text(IN_FLIGHT_SQL),
            sqlite_where=text(IN_FLIGHT_SQL),
        ),
        Index(
            "ix_callattempt_live_answers",
            "campaign_id",
            "ended_at",
            "abandoned",
            "client_id",  # the tenancy filter: the window is counted from the index alone
            postgresql_where=text(LIVE_ANSWER_SQL),
            sqlite_where=text(LIVE_ANSWER_SQL),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", ondelete="CASCADE")
    lead_id: uuid.UUID = Field(foreign_key="lead.id", index=True, ondelete="CASCADE")
    batch_id: uuid.UUID | None = Field(
        default=None, foreign_key="batch.id", index=True, ondelete="SET NULL"
    )
    attempt_no: int
    idempotency_key: str = Field(max_length=200)
    lease_token: uuid.UUID | None = None
    status: AttemptStatus = Field(default=AttemptStatus.started, sa_type=str_enum(AttemptStatus))
    source: AttemptSource = Field(default=AttemptSource.dialer, sa_type=str_enum(AttemptSource))
    number_dialed: str = Field(max_length=32)
    caller_id: str | None = Field(default=None, max_length=32)
    agent_id: str | None = Field(default=None, max_length=80)
    skill_group: str | None = Field(default=None, max_length=80)
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dialed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ringing_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    agent_connected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disposition: str | None = Field(default=None, max_length=40)
    outcome: OutcomeClass | None = Field(default=None, sa_type=str_enum(OutcomeClass))
    talk_s: float | None = None
    wrap_s: float | None = None
    abandoned: bool = False
    converted: bool = False
    amd_result: AmdResult | None = Field(default=None, sa_type=str_enum(AmdResult))
    recording_ref: str | None = Field(default=None, max_length=500)
    hangup_cause: str | None = Field(default=None, max_length=80)
    #: the gateway's handle on the answered call while it is up (for SIP, its dialog), so a
    #: pacer taking over ends what a dead one left (``TelephonyGateway.end_left_calls``)
    gateway_handle: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CallAttemptPublic(SQLModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    lead_id: uuid.UUID
    batch_id: uuid.UUID | None
    attempt_no: int
    status: AttemptStatus
    source: AttemptSource
    number_dialed: str
    caller_id: str | None
    agent_id: str | None
    skill_group: str | None
    queued_at: datetime | None
    dialed_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    agent_connected_at: datetime | None
    ended_at: datetime | None
    disposition: str | None
    outcome: OutcomeClass | None
    talk_s: float | None
    wrap_s: float | None
    abandoned: bool
    converted: bool
    amd_result: AmdResult | None
    recording_ref: str | None
    hangup_cause: str | None


@event.listens_for(CallAttempt, "before_update")
def _finished_attempts_are_immutable(_mapper: Any, _connection: Any, target: CallAttempt) -> None:
    from campaigns.exceptions import AttemptFinished

    state = sa_inspect(target)
    status_history = state.attrs.status.history
    previous = status_history.deleted[0] if status_history.deleted else target.status
    if previous != AttemptStatus.finished:
        return
    changed = [a.key for a in state.attrs if a.history.has_changes()]
    if changed:
        raise AttemptFinished(
            f"call attempt {target.id} is finished and immutable (tried to change "
            f"{', '.join(sorted(changed))})"
        )
