"""Platform availability (系統穩定性): outages by hand and from health checks, and the month's
counted outage minutes.

An outage *counts* unless it was planned maintenance announced before it started, or a fault
outside the platform (carrier, handsets, the client's own side) — the seat-lease contract's
第一條二.15/16. Overlapping outages (a gateway and a pacer down at once) count once: the
minutes are those of the union of the intervals. An outage with ``client_id`` affects only that
client; without one it affects every client.

Health checks: :func:`record_health` opens an outage when a component (``pacer:<campaign>``,
``gateway:<name>``) is first seen down and closes it when the component is seen up again;
:func:`pacer_health_tick` probes the pacer lease of every running campaign in Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal

from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col, or_, select

from core.audit import Actor
from core.db import get_or_404
from core.errors import NotFound
from reports.exceptions import ReportInputError
from reports.models import Outage, OutageSource
from reports.periods import next_month

__all__ = [
    "OutageIn",
    "counted_minutes",
    "counts",
    "end_outage",
    "month_outages",
    "outage_minutes_for",
    "pacer_health_tick",
    "record_health",
    "record_outage",
    "visible_outage",
]


class OutageIn(BaseModel):
    """An outage recorded by hand."""

    started_at: datetime
    ended_at: datetime | None = None
    scope: str = Field(default="platform", min_length=1, max_length=80)
    planned: bool = False
    announced_at: datetime | None = None
    external: bool = Field(default=False, description="a fault outside the platform")
    cause: str = Field(default="", max_length=1000)
    client_id: uuid.UUID | None = Field(default=None, description="only this client affected")

    @model_validator(mode="after")
    def _check(self) -> OutageIn:
        for name in ("started_at", "ended_at", "announced_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone, e.g. 2026-11-03T02:00:00+08:00")
        if self.ended_at is not None and self.ended_at <= self.started_at:
            raise ValueError("ended_at must be after started_at")
        if self.planned and self.announced_at is None:
            raise ValueError(
                "planned maintenance needs announced_at (when it was announced); without it "
                "the outage counts"
            )
        return self


def counts(outage: Outage) -> bool:
    """Whether the outage counts against availability."""
    if outage.external:
        return False
    announced_in_advance = (
        outage.planned
        and outage.announced_at is not None
        and outage.announced_at < outage.started_at
    )
    return not announced_in_advance


def record_outage(*, session: Session, outage_in: OutageIn, actor: Actor) -> Outage:
    """Store an outage entered by an operator."""
    outage = Outage(**outage_in.model_dump(), source=OutageSource.manual, recorded_by=actor.name)
    session.add(outage)
    session.flush()
    return outage


def visible_outage(session: Session, outage_id: uuid.UUID, scope: frozenset[uuid.UUID]) -> Outage:
    """An outage the caller may see: platform-wide ones, or one of its clients'."""
    outage: Outage = get_or_404(session, Outage, outage_id, what="outage")
    if outage.client_id is not None and outage.client_id not in scope:
        raise NotFound("no outage with this id")
    return outage


def end_outage(*, session: Session, outage: Outage, ended_at: datetime) -> Outage:
    """Close an open outage."""
    if ended_at.tzinfo is None:
        raise ReportInputError("ended_at needs a time zone")
    if ended_at <= outage.started_at:
        raise ReportInputError("ended_at must be after the outage started")
    outage.ended_at = ended_at
    session.add(outage)
    session.flush()
    return outage


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The month in China Standard Time as UTC (the contract's natural month)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    start = datetime.combine(month.replace(day=1), time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(next_month(month), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def month_outages(
    session: Session, client_id: uuid.UUID | None, start: datetime, end: datetime
) -> list[Outage]:
    """Outages overlapping ``[start, end)`` that affect the client (or the whole platform)."""
    stmt = select(Outage).where(
        Outage.started_at < end,
        or_(col(Outage.ended_at).is_(None), col(Outage.ended_at) > start),
    )
    if client_id is not None:
        stmt = stmt.where(or_(col(Outage.client_id).is_(None), Outage.client_id == client_id))
    return list(session.exec(stmt.order_by(col(Outage.started_at))))


def counted_minutes(
    outages: Iterable[Outage], start: datetime, end: datetime, now: datetime
) -> Decimal:
    """Minutes of ``[start, end)`` covered by counting outages (open ones until ``now``)."""
    intervals: list[tuple[datetime, datetime]] = []
    for outage in outages:
        if not counts(outage):
            continue
        begin = max(outage.started_at, start)
        stop = min(outage.ended_at or now, end)
        if stop > begin:
            intervals.append((begin, stop))
    intervals.sort()
    total = Decimal(0)
    current: tuple[datetime, datetime] | None = None
    for begin, stop in intervals:
        if current is None or begin > current[1]:
            if current is not None:
                total += Decimal(str((current[1] - current[0]).total_seconds()))
            current = (begin, stop)
        else:
            current = (current[0], max(current[1], stop))
    if current is not None:
        total += Decimal(str((current[1] - current[0]).total_seconds()))
    return total / 60


def outage_minutes_for(
    session: Session, client_id: uuid.UUID, month: date, now: datetime
) -> tuple[Decimal, list[Outage]]:
    """The client's counted outage minutes of a month, and the outages considered."""
    start, end = month_bounds(month)
    outages = month_outages(session, client_id, start, end)
    return counted_minutes(outages, start, end, now), outages


def record_health(
    *,
    session: Session,
    component: str,
    healthy: bool,
    now: datetime,
    client_id: uuid.UUID | None = None,
    cause: str = "",
) -> Outage | None:
    """Feed one health-check result: open an outage on the first failure, close it on the
    first success after. Returns the outage opened or closed, if any."""
    open_outage = session.exec(
        select(Outage).where(
            Outage.scope == component,
            Outage.source == OutageSource.health_check,
            col(Outage.ended_at).is_(None),
        )
    ).first()
    if healthy:
        if open_outage is None:
            return None
        open_outage.ended_at = now
        session.add(open_outage)
        session.flush()
        return open_outage
    if open_outage is not None:
        return None
    outage = Outage(
        client_id=client_id,
        started_at=now,
        scope=component,
        cause=cause or f"{component} failed its health check",
        source=OutageSource.health_check,
        recorded_by="health-check",
    )
    session.add(outage)
    session.flush()
    return outage


def pacer_health_tick(
    *, session: Session, now: datetime, holders: Sequence[tuple[uuid.UUID, uuid.UUID, bool]]
) -> list[Outage]:
    """Record pacer health for running campaigns: ``(campaign_id, client_id, has_pacer)``."""
    changed = []
    for campaign_id, client_id, alive in holders:
        outage = record_health(
            session=session,
            component=f"pacer:{campaign_id}",
            healthy=alive,
            now=now,
            client_id=client_id,
            cause="no pacer held the running campaign's lease",
        )
        if outage is not None:
            changed.append(outage)
    return changed
