"""Statutory holidays and working days per country and year, from the ``holidays`` package.

The one place that touches ``holidays`` internals: the mainland-China calendar lists the
statutory days (法定節假日, paid 3× when worked) together with the *substituted* rest days of
調休 (ordinary rest days swapped with a weekend, not statutory). ``holidays`` (checked with
0.109) keeps the swaps in ``special_public_holidays[year]`` as ``(month, day, from_month,
from_day)``; we read them there to tell the two apart. Working days use the library's own
``is_working_day``, which knows the weekend make-up working days.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import holidays

from reports.exceptions import ReportInputError

__all__ = ["add_working_days", "is_working_day", "statutory_holidays", "working_days"]


@lru_cache(maxsize=64)
def _calendar(country: str, year: int) -> Any:
    try:
        return holidays.country_holidays(country, years=[year], observed=False)
    except NotImplementedError:
        raise ReportInputError(
            f"no holiday calendar for country {country!r}; use an ISO code such as CN"
        ) from None


@lru_cache(maxsize=64)
def _substituted(country: str, year: int) -> frozenset[date]:
    cal = _calendar(country, year)
    special = getattr(cal, "special_public_holidays", {}) or {}
    swaps = special.get(year, ())
    days = set()
    for entry in swaps:
        if isinstance(entry, tuple) and len(entry) == 4:  # a 調休 swap: (m, d, from_m, from_d)
            days.add(date(year, entry[0], entry[1]))
    return frozenset(days)


def statutory_holidays(country: str, year: int) -> dict[date, str]:
    """The statutory public holidays of a year (swapped rest days excluded)."""
    cal = _calendar(country, year)
    swapped = _substituted(country, year)
    return {day: str(name) for day, name in sorted(cal.items()) if day not in swapped}


def is_working_day(country: str, day: date) -> bool:
    """A working day: not a weekend or holiday, or a weekend make-up working day."""
    return bool(_calendar(country, day.year).is_working_day(day))


def working_days(country: str, first: date, last: date) -> list[date]:
    """The working days from ``first`` to ``last`` inclusive."""
    out = []
    day = first
    while day <= last:
        if is_working_day(country, day):
            out.append(day)
        day += timedelta(days=1)
    return out


def add_working_days(country: str, start: date, count: int) -> date:
    """The date ``count`` working days after ``start``."""
    day = start
    remaining = count
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(country, day):
            remaining -= 1
    return day
