"""Periods and intervals in a client's time zone (pure: no database, no clock).

A period is a half-open UTC range ``[start, end)`` whose ends are local midnights of the
client's zone. Intervals (15 min, hour, day, month) are floored in *local wall time* and keyed
by their UTC start, so the repeated hour of a DST fall-back stays two separate rows, and a
23- or 25-hour day is still one day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reports.exceptions import ReportInputError

__all__ = [
    "Interval",
    "Period",
    "PeriodKind",
    "bucket_end",
    "bucket_start",
    "local_midnight",
    "month_start",
    "next_month",
    "period_for",
    "previous_period",
    "split_by_bucket",
    "zone",
]


class Interval(StrEnum):
    quarter_hour = "15min"
    hour = "hour"
    day = "day"
    month = "month"


class PeriodKind(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    half = "half"
    year = "year"
    custom = "custom"


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or a clear input error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportInputError(
            f"{name!r} is not an IANA time zone; use e.g. Asia/Shanghai"
        ) from None


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC, with the local dates it covers and how it was asked for."""

    kind: PeriodKind
    first_day: date
    last_day: date  # inclusive
    tz: str
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        if self.first_day == self.last_day:
            return self.first_day.isoformat()
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()}"

    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 local on ``day`` as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _make(kind: PeriodKind, first: date, last: date, tz_name: str) -> Period:
    if last < first:
        raise ReportInputError(f"the period ends ({last}) before it starts ({first})")
    if (last - first).days > 400:
        raise ReportInputError("a report period is at most a year (400 days)")
    tz = zone(tz_name)
    return Period(
        kind=kind,
        first_day=first,
        last_day=last,
        tz=tz_name,
        start=local_midnight(first, tz),
        end=local_midnight(last + timedelta(days=1), tz),
    )


def period_for(
    kind: PeriodKind | str, anchor: date, tz_name: str, *, last_day: date | None = None
) -> Period:
    """The day/week (Mon–Sun)/month/quarter/half-year/year containing ``anchor``, or a custom
    ``anchor``..``last_day`` range."""
    kind = PeriodKind(kind)
    if kind is PeriodKind.custom:
        return _make(kind, anchor, last_day or anchor, tz_name)
    if kind is PeriodKind.day:
        return _make(kind, anchor, anchor, tz_name)
    if kind is PeriodKind.week:
        first = anchor - timedelta(days=anchor.weekday())
        return _make(kind, first, first + timedelta(days=6), tz_name)
    months = {PeriodKind.month: 1, PeriodKind.quarter: 3, PeriodKind.half: 6, PeriodKind.year: 12}
    span = months[kind]
    first_month = (anchor.month - 1) // span * span + 1
    first = date(anchor.year, first_month, 1)
    after = first
    for _ in range(span):
        after = next_month(after)
    return _make(kind, first, after - timedelta(days=1), tz_name)


def previous_period(kind: PeriodKind | str, today: date, tz_name: str) -> Period:
    """The last complete period of ``kind`` before ``today`` (what a schedule delivers)."""
    current = period_for(kind, today, tz_name)
    return period_for(kind, current.first_day - timedelta(days=1), tz_name)


def bucket_start(at: datetime, tz: ZoneInfo, interval: Interval) -> datetime:
    """The UTC start of the local interval containing ``at``."""
    local = at.astimezone(tz)
    if interval is Interval.quarter_hour:
        floored = local.replace(minute=local.minute // 15 * 15, second=0, microsecond=0)
    elif interval is Interval.hour:
        floored = local.replace(minute=0, second=0, microsecond=0)
    elif interval is Interval.day:
        return local_midnight(local.date(), tz)
    else:
        return local_midnight(local.date().replace(day=1), tz)
    # replace() keeps ``fold``, so the second 01:00 of a fall-back night maps to its own instant
    return floored.astimezone(UTC)


def bucket_end(start: datetime, tz: ZoneInfo, interval: Interval) -> datetime:
    """The UTC end of the interval starting at ``start`` (a bucket_start value)."""
    if interval is Interval.quarter_hour:
        return bucket_start(start + timedelta(minutes=15), tz, interval)
    if interval is Interval.hour:
        return bucket_start(start + timedelta(hours=1), tz, interval)
    local_day = start.astimezone(tz).date()
    if interval is Interval.day:
        return local_midnight(local_day + timedelta(days=1), tz)
    return local_midnight(next_month(local_day), tz)


def split_by_bucket(
    start: datetime, end: datetime, tz: ZoneInfo, interval: Interval
) -> list[tuple[datetime, float]]:
    """Seconds of ``[start, end)`` falling in each interval, keyed by interval start."""
    pieces: list[tuple[datetime, float]] = []
    cursor = start
    while cursor < end:
        key = bucket_start(cursor, tz, interval)
        stop = min(end, bucket_end(key, tz, interval))
        pieces.append((key, (stop - cursor).total_seconds()))
        cursor = stop
    return pieces
