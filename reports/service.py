"""Report operations on the database: the client's profile, generating a report into the
client's download area, listing, downloading (audited) and the weekly schedule.

The caller's session owns the transaction (routes: the request session; CLI and jobs: a
system or tenant session); these functions flush, never commit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, col, select

from campaigns.models import Campaign
from core.audit import Actor, record_audit
from core.db import get_or_404, utcnow
from core.files import save_file
from core.models import Client
from reports.build import (
    REPORT_KINDS,
    SECTION_KEYS,
    ReportOptions,
    build_document,
    periodic_interval,
)
from reports.data import Selection, load_calls, load_spans
from reports.document import Document
from reports.exceptions import ReportInputError
from reports.holiday_calendar import working_days
from reports.i18n import LANGUAGES, check_language
from reports.models import MaskMode, ReportDocument, ReportProfile, ServiceContract
from reports.periods import Interval, Period, PeriodKind, period_for, previous_period, zone
from reports.render import FORMATS, render

__all__ = [
    "ProfileUpdate",
    "ReportRequest",
    "due_schedules",
    "generate_report",
    "get_profile",
    "list_reports",
    "open_report",
    "run_schedules",
    "update_profile",
]

MAX_LOGO_BYTES = 300_000


class ProfileUpdate(BaseModel):
    """A client's report settings and template (every field optional)."""

    display_name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    language: str | None = None
    number_mask: MaskMode | None = None
    valid_call_s: int | None = Field(default=None, ge=1, le=600)
    target_per_hour: float | None = Field(default=None, gt=0, le=200)
    abandon_target: float | None = Field(default=None, gt=0, le=1)
    sections: list[str] | None = None
    columns: dict[str, list[str]] | None = None
    logo_data_uri: str | None = Field(default=None, max_length=MAX_LOGO_BYTES)
    schedule_weekly: bool | None = None
    schedule_weekday: int | None = Field(default=None, ge=0, le=6)
    schedule_hour: int | None = Field(default=None, ge=0, le=23)
    schedule_formats: list[str] | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None else check_language(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @field_validator("sections")
    @classmethod
    def _sections(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = [s for s in value if s not in SECTION_KEYS]
            if unknown:
                raise ValueError(f"unknown sections {unknown}; choose from {list(SECTION_KEYS)}")
        return value

    @field_validator("schedule_formats")
    @classmethod
    def _formats(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            bad = [f for f in value if f not in FORMATS]
            if bad or not value:
                raise ValueError(f"formats must be some of {list(FORMATS)}")
        return value

    @field_validator("logo_data_uri")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is not None and not re.match(
            r"^data:image/(png|jpeg|gif|svg\+xml);base64,", value
        ):
            raise ValueError("the logo must be a data URI: data:image/png;base64,…")
        return value


def get_profile(session: Session, client_id: uuid.UUID) -> ReportProfile:
    """The client's report profile (created with the defaults the first time)."""
    profile = session.exec(
        select(ReportProfile).where(ReportProfile.client_id == client_id)
    ).first()
    if profile is None:
        get_or_404(session, Client, client_id, what="client")
        profile = ReportProfile(client_id=client_id)
        session.add(profile)
        session.flush()
    return profile


#: The profile settings that may be cleared with null; every other one always has a value.
_CLEARABLE = frozenset({"display_name", "logo_data_uri"})


def update_profile(
    *, session: Session, client_id: uuid.UUID, update: ProfileUpdate
) -> ReportProfile:
    """Change the client's settings and template."""
    profile = get_profile(session, client_id)
    changes = update.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key not in _CLEARABLE:
            raise ReportInputError(f"{key} cannot be null; leave it out to keep it")
    for key, value in changes.items():
        setattr(profile, key, value)
    profile.updated_at = utcnow()
    session.add(profile)
    session.flush()
    return profile


class ReportRequest(BaseModel):
    """Which report, over which period, for which campaign or skill group, in which format."""

    kind: str = "service_level"
    period: PeriodKind = PeriodKind.month
    start: str = Field(description="a date inside the period (YYYY-MM-DD); custom: its first day")
    end: str | None = Field(default=None, description="custom periods: the last day, inclusive")
    interval: Interval = Interval.hour
    campaign_id: uuid.UUID | None = None
    skill_group: str | None = Field(default=None, max_length=80)
    fmt: str = Field(default="xlsx", description="xlsx, html or csv")
    language: str | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in REPORT_KINDS:
            raise ValueError(f"kind must be one of {list(REPORT_KINDS)}")
        return value

    @field_validator("fmt")
    @classmethod
    def _fmt(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"fmt must be one of {list(FORMATS)}")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and value not in LANGUAGES:
            raise ValueError(f"language must be one of {list(LANGUAGES)}")
        return value


def _parse_day(raw: str, what: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ReportInputError(f"{what} must be a date YYYY-MM-DD, not {raw!r}") from None


def _target_valid_calls(
    session: Session, campaign_id: uuid.UUID | None, period: Period, country: str
) -> int | None:
    """Agents × 18 × 8 per working day of the period, when the campaign has a contract."""
    if campaign_id is None:
        return None
    contract = session.exec(
        select(ServiceContract).where(ServiceContract.campaign_id == campaign_id)
    ).first()
    if contract is None:
        return None
    days = len(working_days(country, period.first_day, period.last_day))
    return contract.agents * 144 * days


@dataclass(frozen=True)
class Built:
    document: Document
    period: Period
    options: ReportOptions


def build_report(
    *, session: Session, client_id: uuid.UUID, request: ReportRequest, now: datetime
) -> Built:
    """Compute the report document (nothing stored)."""
    profile = get_profile(session, client_id)
    client: Client = get_or_404(session, Client, client_id, what="client")
    anchor = _parse_day(request.start, "start")
    last = _parse_day(request.end, "end") if request.end else None
    period = period_for(request.period, anchor, profile.timezone, last_day=last)
    campaign_label = None
    if request.campaign_id is not None:
        campaign: Campaign = get_or_404(session, Campaign, request.campaign_id, what="campaign")
        campaign_label = campaign.name
    elif request.skill_group:
        campaign_label = request.skill_group
    selection = Selection(
        client_id=client_id,
        start=period.start,
        end=period.end,
        campaign_id=request.campaign_id,
        skill_group=request.skill_group,
    )
    calls = load_calls(session, selection)
    spans = load_spans(session, selection, now=now)
    options = ReportOptions(
        language=request.language or profile.language,
        timezone=profile.timezone,
        number_mask=profile.number_mask.value,
        valid_call_s=profile.valid_call_s,
        target_per_hour=profile.target_per_hour,
        abandon_target=profile.abandon_target,
        client_name=profile.display_name or client.name,
        logo_data_uri=profile.logo_data_uri,
        sections=tuple(profile.sections),
        columns=dict(profile.columns),
        campaign_label=campaign_label,
        target_valid_calls=_target_valid_calls(
            session, request.campaign_id, period, profile.holiday_country
        ),
    )
    interval = periodic_interval(period.kind) if request.kind == "periodic" else request.interval
    document = build_document(
        kind=request.kind,
        period=period,
        interval=interval,
        calls=calls,
        spans=spans,
        options=options,
        generated_at=now,
    )
    return Built(document=document, period=period, options=options)


def generate_report(
    *,
    session: Session,
    client_id: uuid.UUID,
    request: ReportRequest,
    actor: Actor,
    now: datetime | None = None,
    scheduled: bool = False,
) -> ReportDocument:
    """Build the report and store it in the client's download area."""
    now = now or utcnow()
    built = build_report(session=session, client_id=client_id, request=request, now=now)
    payload = render(built.document, request.fmt)
    scope = "all" if request.campaign_id is None else str(request.campaign_id)[:8]
    filename = (
        f"{request.kind}_{built.period.first_day:%Y%m%d}-{built.period.last_day:%Y%m%d}_"
        f"{scope}.{request.fmt}"
    )
    stored = save_file(
        session,
        client_id=client_id,
        filename=filename,
        chunks=[payload],
        content_type=FORMATS[request.fmt],
    )
    summary: dict[str, Any] = {
        "sections": {s.key: len(s.rows) for s in built.document.sections},
        "kpis": [
            {"label": k.label, "actual": k.actual, "target": k.target, "met": k.met}
            for k in built.document.kpis
        ],
    }
    document = ReportDocument(
        client_id=client_id,
        kind=request.kind,
        period_kind=built.period.kind.value,
        period_start=built.period.start,
        period_end=built.period.end,
        interval=request.interval.value,
        campaign_id=request.campaign_id,
        skill_group=request.skill_group,
        language=built.options.language,
        fmt=request.fmt,
        file_id=stored.id,
        filename=filename,
        scheduled=scheduled,
        created_by=actor.name,
        summary=summary,
        created_at=now,
    )
    session.add(document)
    session.flush()
    record_audit(
        session,
        client_id=client_id,
        actor=actor,
        action="report.generate",
        object_type="report",
        object_id=document.id,
        detail={"kind": request.kind, "period": built.period.label, "fmt": request.fmt},
    )
    return document


def list_reports(
    session: Session, *, campaign_id: uuid.UUID | None = None, limit: int = 50
) -> list[ReportDocument]:
    """The caller's reports, newest first (the session's tenancy scope applies)."""
    stmt = select(ReportDocument).order_by(col(ReportDocument.created_at).desc()).limit(limit)
    if campaign_id is not None:
        stmt = stmt.where(ReportDocument.campaign_id == campaign_id)
    return list(session.exec(stmt))


def open_report(session: Session, report_id: uuid.UUID, *, actor: Actor) -> ReportDocument:
    """A report to download; the download is written to the audit log."""
    document: ReportDocument = get_or_404(session, ReportDocument, report_id, what="report")
    record_audit(
        session,
        client_id=document.client_id,
        actor=actor,
        action="report.download",
        object_type="report",
        object_id=document.id,
        detail={"filename": document.filename},
    )
    return document


def due_schedules(session: Session, now: datetime) -> Iterable[tuple[ReportProfile, Period]]:
    """Profiles whose weekly report is due: past the weekday and hour in the client's zone and
    not yet delivered for last week."""
    profiles = session.exec(select(ReportProfile).where(col(ReportProfile.schedule_weekly))).all()
    for profile in profiles:
        local = now.astimezone(zone(profile.timezone))
        week_start = local.date() - timedelta(days=local.weekday())
        due_at = week_start + timedelta(days=profile.schedule_weekday)
        if local.date() < due_at or (local.date() == due_at and local.hour < profile.schedule_hour):
            continue
        period = previous_period(PeriodKind.week, local.date(), profile.timezone)
        if (
            profile.last_scheduled_period is not None
            and profile.last_scheduled_period >= period.first_day
        ):
            continue
        yield profile, period


def run_schedules(session: Session, now: datetime | None = None) -> list[ReportDocument]:
    """Deliver every due weekly report (periodic roll-up, in the profile's formats)."""
    now = now or utcnow()
    made = []
    for profile, period in list(due_schedules(session, now)):
        for fmt in profile.schedule_formats:
            request = ReportRequest(
                kind="periodic",
                period=PeriodKind.week,
                start=period.first_day.isoformat(),
                fmt=fmt if fmt != "csv" else "xlsx",
            )
            made.append(
                generate_report(
                    session=session,
                    client_id=profile.client_id,
                    request=request,
                    actor=Actor(name="scheduler"),
                    now=now,
                    scheduled=True,
                )
            )
        profile.last_scheduled_period = period.first_day
        session.add(profile)
        session.flush()
    return made
