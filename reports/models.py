"""Tables of the reports domain: client report settings, generated reports, contracts,
supervisor adjustments, versioned statements and platform outages.

- :class:`ReportProfile`: one per client: time zone, language, how numbers are masked, the
  valid-call threshold and hourly target, the client's template (sections, columns, logo,
  name) and the weekly schedule.
- :class:`ReportDocument`: a generated report file in the client's download area.
- :class:`ServiceContract`: the outsourcing contract of one campaign (start month for the
  ramp, price overrides, agents for the target).
- :class:`SeatLease`: leased seats of a client by kind, with their active dates and fee.
- :class:`StatementAdjustment`: a quality-inspection bonus or penalty entered by a supervisor.
- :class:`Statement`: one version of a monthly statement (對帳單); issued versions never change.
- :class:`Outage`: a platform outage (by hand or from health checks); platform data, not a
  client's, so it is not tenant-scoped (``client_id`` set when only one client was affected).

Money is stored as integer fen and prices as decimal strings: exact on PostgreSQL and SQLite.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint, event
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Field, SQLModel

from core.db import TenantScoped, UTCDateTime, str_enum, utcnow

__all__ = [
    "AdjustmentKind",
    "ContractKind",
    "MaskMode",
    "Outage",
    "OutageSource",
    "ReportDocument",
    "ReportProfile",
    "SeatKind",
    "SeatLease",
    "ServiceContract",
    "Statement",
    "StatementAdjustment",
    "StatementStatus",
]


class MaskMode(StrEnum):
    """How callee numbers appear in client reports."""

    middle = "middle"  # +86 138****5678
    last4 = "last4"  # ********5678
    none = "none"  # in full (only when the client asked for it in writing)


class ReportProfile(SQLModel, TenantScoped, table=True):
    """A client's report settings and template."""

    __table_args__ = (UniqueConstraint("client_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    display_name: str | None = Field(default=None, max_length=200)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    language: str = Field(default="zh-Hans", max_length=10)
    number_mask: MaskMode = Field(default=MaskMode.middle, sa_type=str_enum(MaskMode))
    valid_call_s: int = 15
    target_per_hour: float = 18.0
    abandon_target: float = 0.03
    sections: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    columns: dict[str, list[str]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    logo_data_uri: str | None = Field(default=None, sa_column=Column(Text))
    schedule_weekly: bool = False
    schedule_weekday: int = 0  # Monday
    schedule_hour: int = 8
    schedule_formats: list[str] = Field(
        default_factory=lambda: ["xlsx", "html"], sa_column=Column(JSON, nullable=False)
    )
    last_scheduled_period: date | None = None
    holiday_country: str = Field(default="CN", max_length=2)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReportDocument(SQLModel, TenantScoped, table=True):
    """One generated report file, downloadable by the client."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=40)
    period_kind: str = Field(max_length=20)
    period_start: datetime = Field(sa_type=UTCDateTime)
    period_end: datetime = Field(sa_type=UTCDateTime)
    interval: str = Field(default="hour", max_length=10)
    campaign_id: uuid.UUID | None = Field(
        default=None, foreign_key="campaign.id", index=True, ondelete="SET NULL"
    )
    skill_group: str | None = Field(default=None, max_length=80)
    language: str = Field(max_length=10)
    fmt: str = Field(max_length=10)
    file_id: uuid.UUID = Field(foreign_key="storedfile.id", ondelete="CASCADE")
    filename: str = Field(max_length=300)
    scheduled: bool = False
    created_by: str = Field(max_length=200)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ServiceContract(SQLModel, TenantScoped, table=True):
    """The outsourcing contract of a campaign: its first month, prices and agents."""

    __table_args__ = (UniqueConstraint("campaign_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", ondelete="CASCADE")
    starts_on: date
    agents: int = 25
    # {"1": "1.68", "2": "1.49", "3": "1.34"}: overrides of the contract's ramp prices
    prices: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    holiday_multiplier: str = Field(default="3", max_length=10)
    vat_rate: str = Field(default="0.06", max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SeatKind(StrEnum):
    inbound = "inbound"  # 純呼入坐席
    inbound_outbound = "inbound_outbound"  # 呼入呼出雙向坐席


class SeatLease(SQLModel, TenantScoped, table=True):
    """Leased seats of one kind, active from a date (to a date, if ended)."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    seat_kind: SeatKind = Field(sa_type=str_enum(SeatKind))
    seats: int
    monthly_fee: str = Field(max_length=20)
    active_from: date
    active_to: date | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AdjustmentKind(StrEnum):
    bonus = "bonus"
    penalty = "penalty"


class StatementAdjustment(SQLModel, TenantScoped, table=True):
    """A quality-inspection bonus or penalty (質檢、規範獎罰) for one campaign-month."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    month: date
    kind: AdjustmentKind = Field(sa_type=str_enum(AdjustmentKind))
    amount: str = Field(max_length=20)
    reason: str = Field(max_length=500)
    entered_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ContractKind(StrEnum):
    service = "service"  # 呼叫中心業務外包服務協議: per valid call
    seat_lease = "seat_lease"  # 坐席租賃服務協議: per seat-month


class StatementStatus(StrEnum):
    draft = "draft"
    issued = "issued"
    confirmed = "confirmed"
    disputed = "disputed"
    paid = "paid"
    superseded = "superseded"


class Statement(SQLModel, TenantScoped, table=True):
    """One version of a monthly statement; from ``issued`` on its content is frozen."""

    __table_args__ = (UniqueConstraint("client_id", "contract", "subject", "month", "version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    contract: ContractKind = Field(sa_type=str_enum(ContractKind))
    # the campaign id for a service statement, "seats" for the seat lease
    subject: str = Field(max_length=40)
    campaign_id: uuid.UUID | None = Field(
        default=None, foreign_key="campaign.id", ondelete="SET NULL"
    )
    month: date
    version: int = 1
    status: StatementStatus = Field(
        default=StatementStatus.draft, sa_type=str_enum(StatementStatus)
    )
    supersedes_id: uuid.UUID | None = None
    currency: str = Field(default="CNY", max_length=3)
    lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    calculation: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    subtotal_fen: int = Field(default=0, sa_type=BigInteger)
    deduction_fen: int = Field(default=0, sa_type=BigInteger)
    net_fen: int = Field(default=0, sa_type=BigInteger)
    vat_fen: int = Field(default=0, sa_type=BigInteger)
    total_fen: int = Field(default=0, sa_type=BigInteger)
    issue_by: date
    due_on: date
    late_interest_per_day: str = Field(max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirm_by: date | None = None
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deemed_confirmed: bool = False
    disputed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dispute_reason: str | None = Field(default=None, max_length=1000)
    paid_on: date | None = None
    paid_fen: int | None = Field(default=None, sa_type=BigInteger)
    late_interest_fen: int | None = Field(default=None, sa_type=BigInteger)
    status_log: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )


# Columns that may still change after issue: the lifecycle, never the content.
_LIFECYCLE_COLUMNS = frozenset(
    {
        "status",
        "confirm_by",
        "confirmed_at",
        "deemed_confirmed",
        "disputed_at",
        "dispute_reason",
        "paid_on",
        "paid_fen",
        "late_interest_fen",
        "status_log",
        "issued_at",
    }
)


@event.listens_for(Statement, "before_update")
def _issued_statements_are_frozen(_mapper: Any, _connection: Any, target: Statement) -> None:
    from reports.exceptions import StatementLocked

    state = sa_inspect(target)
    history = state.attrs.status.history
    previous = history.deleted[0] if history.deleted else target.status
    if previous == StatementStatus.draft:
        return
    changed = {a.key for a in state.attrs if a.history.has_changes()} - _LIFECYCLE_COLUMNS
    if changed:
        raise StatementLocked(
            f"statement {target.id} v{target.version} is {previous}; its content never changes "
            f"(tried {', '.join(sorted(changed))}); make a correction (a new version) instead"
        )


class OutageSource(StrEnum):
    manual = "manual"
    health_check = "health_check"


class Outage(SQLModel, table=True):
    """A period the platform (or one component of it) was down."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID | None = Field(
        default=None, foreign_key="client.id", index=True, ondelete="CASCADE"
    )
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    scope: str = Field(default="platform", max_length=80)
    planned: bool = False
    announced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    external: bool = False  # a fault outside the platform (carrier, handset, the client's side)
    cause: str = Field(default="", max_length=1000)
    source: OutageSource = Field(default=OutageSource.manual, sa_type=str_enum(OutageSource))
    recorded_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
