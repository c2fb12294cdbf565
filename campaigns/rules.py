"""Calling windows, holidays and retry rules as pure functions: no database, no clock reads.

Everything here takes the time it reasons about as an argument (aware UTC ``datetime``), so
the hopper, the property tests and any report share exactly one definition of "may this number
be called now" and "when may it be called again".

Time zones: a number with exactly one known IANA zone is judged in that zone. A number with
several zones, or none, is judged in the campaign's fallback zone *and* every zone it may be
in, and is callable only when all of them are inside the window and none is on a holiday: the
strictest reading, because calling someone at 7 a.m. is worse than calling them an hour late.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_CALLING_WINDOWS",
    "OFCOM_REDIAL_GAP",
    "WEEKDAYS",
    "DispositionRule",
    "RetryDecision",
    "WeeklyWindows",
    "candidate_zones",
    "decide_after_attempt",
    "is_callable_at",
    "local_times",
    "parse_holidays",
    "parse_windows",
    "valid_zone",
    "zones_key",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONE_SEPARATOR = "|"
#: Ofcom (UK): a number whose call was abandoned is not called again within 72 hours.
OFCOM_REDIAL_GAP = timedelta(hours=72)

#: Weekday → list of (start, end) local times, end exclusive; weekday 0 is Monday.
WeeklyWindows = Mapping[int, Sequence[tuple[time, time]]]

DEFAULT_CALLING_WINDOWS: dict[str, list[list[str]]] = {
    "mon": [["09:00", "20:00"]],
    "tue": [["09:00", "20:00"]],
    "wed": [["09:00", "20:00"]],
    "thu": [["09:00", "20:00"]],
    "fri": [["09:00", "20:00"]],
    "sat": [["10:00", "18:00"]],
    "sun": [],
}

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def _parse_hhmm(value: str, where: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"{where}: {value!r} is not a time; write HH:MM, e.g. 09:00 or 24:00")
    if value == "24:00":
        return time.max
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_windows(raw: Mapping[str, Sequence[Sequence[str]]]) -> dict[int, list[tuple[time, time]]]:
    """Validate ``{"mon": [["09:00", "20:00"]], ...}``; raises ValueError saying what is wrong."""
    unknown = set(raw) - set(WEEKDAYS)
    if unknown:
        raise ValueError(
            f"calling_windows: unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}"
        )
    out: dict[int, list[tuple[time, time]]] = {}
    for index, day in enumerate(WEEKDAYS):
        spans: list[tuple[time, time]] = []
        for span in raw.get(day, []):
            where = f"calling_windows.{day}"
            if len(span) != 2:
                raise ValueError(f"{where}: each window is [start, end], got {list(span)!r}")
            start, end = _parse_hhmm(span[0], where), _parse_hhmm(span[1], where)
            if start >= end:
                raise ValueError(f"{where}: window {span[0]}–{span[1]} ends before it starts")
            spans.append((start, end))
        spans.sort()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            if s2 < e1:
                raise ValueError(f"calling_windows.{day}: windows overlap; merge them")
        out[index] = spans
    return out


def parse_holidays(raw: Iterable[str]) -> frozenset[date]:
    """Validate a list of ISO dates (``2025-10-01``); raises ValueError naming the bad one."""
    days: set[date] = set()
    for value in raw:
        try:
            days.add(date.fromisoformat(value))
        except (TypeError, ValueError):
            raise ValueError(f"holidays: {value!r} is not a date; write YYYY-MM-DD") from None
    return frozenset(days)


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def valid_zone(name: str) -> bool:
    """True for an IANA zone name this machine knows."""
    return bool(name) and _zone(name) is not None


def zones_key(timezones: Iterable[str] | None) -> str:
    """The stored form of a number's known zones: sorted valid names joined by ``|``."""
    names = sorted({z for z in (timezones or []) if isinstance(z, str) and valid_zone(z)})
    return ZONE_SEPARATOR.join(names)


def candidate_zones(key: str, fallback: str) -> tuple[str, ...]:
    """The zones a number is judged in: its one zone, or its zones plus the fallback."""
    names = [z for z in key.split(ZONE_SEPARATOR) if z and valid_zone(z)]
    if len(names) == 1:
        return (names[0],)
    return tuple(sorted({*names, fallback}))


def local_times(now: datetime, zones: Sequence[str]) -> list[datetime]:
    """``now`` (aware) as wall-clock time in each zone."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    out = []
    for name in zones:
        zone = _zone(name)
        if zone is None:
            raise ValueError(f"unknown time zone {name!r}")
        out.append(now.astimezone(zone))
    return out


def _inside(local: datetime, windows: WeeklyWindows) -> bool:
    wall = local.time().replace(tzinfo=None)
    for start, end in windows.get(local.weekday(), ()):
        if start <= wall and (wall < end or end == time.max):
            return True
    return False


def is_callable_at(
    now: datetime,
    zones: Sequence[str],
    windows: WeeklyWindows,
    holidays: frozenset[date] | set[date] = frozenset(),
) -> bool:
    """True if ``now`` is inside the window and off the holidays in every zone given."""
    if not zones:
        return False
    for local in local_times(now, zones):
        if local.date() in holidays or not _inside(local, windows):
            return False
    return True


@dataclass(frozen=True)
class DispositionRule:
    """What a disposition means for scheduling (the subset of a Disposition row rules need)."""

    code: str
    final: bool = False
    dnc: bool = False
    callback: bool = False
    abandoned: bool = False
    retry_delay_minutes: int | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class RetryDecision:
    """The consequence of an attempt: final (with why), or the earliest next attempt."""

    final: bool
    next_attempt_at: datetime | None
    reason: str


def decide_after_attempt(
    *,
    rule: DispositionRule,
    ended_at: datetime,
    attempts_made: int,
    max_attempts: int,
    same_disposition_count: int,
    abandoned: bool,
    ofcom: bool,
    callback_at: datetime | None = None,
    default_callback_delay: timedelta = timedelta(hours=24),
) -> RetryDecision:
    """Apply a disposition's rules after an attempt (counts include this attempt)."""
    if ended_at.tzinfo is None:
        raise ValueError("ended_at must be timezone-aware")
    if rule.dnc:
        return RetryDecision(True, None, "do-not-call request")
    if rule.final:
        return RetryDecision(True, None, f"final disposition {rule.code}")
    if attempts_made >= max_attempts:
        return RetryDecision(True, None, f"reached the campaign's {max_attempts} attempts")
    if rule.max_attempts is not None and same_disposition_count >= rule.max_attempts:
        return RetryDecision(
            True, None, f"{rule.code} {same_disposition_count} times (limit {rule.max_attempts})"
        )
    if rule.callback:
        due = callback_at if callback_at is not None else ended_at + default_callback_delay
        earliest = max(due, ended_at)
    else:
        earliest = ended_at + timedelta(minutes=rule.retry_delay_minutes or 0)
    if (abandoned or rule.abandoned) and ofcom:
        earliest = max(earliest, ended_at + OFCOM_REDIAL_GAP)
    return RetryDecision(False, earliest, "retry")
