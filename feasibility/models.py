"""Stored feasibility reports: the inputs, the seed, the report JSON and the HTML for sales.

Each run keeps exactly what it was computed from (pilot attempts and leads as CSV files, the
targets, costs, max attempts and seed), so re-running it gives the same numbers.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import TenantScoped, UTCDateTime, str_enum, utcnow

__all__ = [
    "DealQuote",
    "DealQuotePublic",
    "FeasibilityRun",
    "FeasibilityRunPublic",
    "RunStatus",
    "run_view",
]


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"
    failed = "failed"


class FeasibilityRun(SQLModel, TenantScoped, table=True):
    """One feasibility report: inputs, parameters, result."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID | None = Field(default=None, index=True)
    batch_id: uuid.UUID | None = None
    status: RunStatus = Field(default=RunStatus.queued, sa_type=str_enum(RunStatus))
    seed: int = 0
    max_attempts: int | None = None
    targets: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    costs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts_file_id: uuid.UUID | None = Field(
        default=None, foreign_key="storedfile.id", ondelete="SET NULL"
    )
    leads_file_id: uuid.UUID | None = Field(
        default=None, foreign_key="storedfile.id", ondelete="SET NULL"
    )
    html_file_id: uuid.UUID | None = Field(
        default=None, foreign_key="storedfile.id", ondelete="SET NULL"
    )
    report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    verdict: str | None = Field(default=None, max_length=40)
    error: str | None = None
    job_id: uuid.UUID | None = None
    rerun_of: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FeasibilityRunPublic(SQLModel):
    """A report as a caller may read it; for a client key ``costs`` is None and ``report`` is
    the client view (``feasibility.views.client_report``)."""

    id: uuid.UUID
    campaign_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    status: RunStatus
    seed: int
    max_attempts: int | None
    targets: dict[str, Any]
    costs: dict[str, Any] | None
    report: dict[str, Any] | None
    verdict: str | None
    error: str | None
    job_id: uuid.UUID | None
    rerun_of: uuid.UUID | None
    created_at: datetime
    finished_at: datetime | None


def run_view(run: FeasibilityRun, *, internal: bool) -> FeasibilityRunPublic:
    """The run as staff (``internal``) or a client key may read it."""
    from feasibility.views import client_report

    public = FeasibilityRunPublic.model_validate(run, from_attributes=True)
    if internal:
        return public
    return public.model_copy(update={"costs": None, "report": client_report(public.report)})


class DealQuote(SQLModel, TenantScoped, table=True):
    """A quote given to the client for a campaign, and its approval: the deal on record.

    ``prices`` are the unit prices per valid call by ramp month ("1", "2", "3" = from month 3),
    before VAT, as decimal strings. A quote on a NO GO report carries the override reason.
    """

    __table_args__ = (UniqueConstraint("client_id", "quote_number"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    run_id: uuid.UUID = Field(foreign_key="feasibilityrun.id", ondelete="RESTRICT")
    quote_number: str = Field(max_length=40)
    currency: str = Field(default="CNY", max_length=3)
    vat_rate: str = Field(max_length=10)
    prices: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    valid_until: date
    verdict: str = Field(max_length=40)
    override_reason: str | None = Field(default=None, max_length=2000)
    quoted_by: str = Field(max_length=200)
    quoted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    approved_by: str | None = Field(default=None, max_length=200)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DealQuotePublic(SQLModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    run_id: uuid.UUID
    quote_number: str
    currency: str
    vat_rate: str
    prices: dict[str, str]
    valid_until: date
    verdict: str
    override_reason: str | None
    quoted_by: str
    quoted_at: datetime
    approved_by: str | None
    approved_at: datetime | None
