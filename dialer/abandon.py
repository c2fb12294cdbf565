"""Abandon-rate bookkeeping over a compliance window (pure; times are passed in).

Regulators and campaign rules cap the abandon rate (abandoned ÷ live answers) over a window:
commonly 3 % over 30 days per campaign, or per 24 hours. :class:`AbandonWindow` counts live
answers and abandons in one-minute buckets, so a 30-day window costs at most 43,200 small
tuples, and answers the counts, rate and remaining allowance at any time. The buckets can be
exported and reloaded (:meth:`AbandonWindow.buckets`, :meth:`AbandonWindow.from_buckets`) so a
pacer that takes over a campaign resumes the same window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ROLLING_24_HOURS_S",
    "ROLLING_30_DAYS_S",
    "AbandonCounts",
    "AbandonWindow",
    "abandon_rate",
    "abandons_allowed",
]

ROLLING_24_HOURS_S = 24 * 3600.0
ROLLING_30_DAYS_S = 30 * 24 * 3600.0


def abandon_rate(abandoned: int, live_answers: int) -> float:
    """Abandoned ÷ live answers; 0.0 when there were no live answers."""
    if abandoned < 0 or live_answers < 0:
        raise ValueError("counts cannot be negative")
    if abandoned > live_answers:
        raise ValueError(
            f"{abandoned} abandons exceed {live_answers} live answers; "
            "every abandon must also be counted as a live answer"
        )
    return abandoned / live_answers if live_answers else 0.0


def abandons_allowed(abandoned: int, live_answers: int, cap: float) -> int:
    """How many more abandons fit under ``cap`` with the answers counted so far (≥ 0)."""
    if not 0.0 <= cap <= 1.0:
        raise ValueError(f"cap must be a fraction in [0, 1], got {cap}")
    return max(0, math.floor(cap * live_answers + 1e-9) - abandoned)


@dataclass(frozen=True, slots=True)
class AbandonCounts:
    """Counts in the window and the rate they give."""

    live_answers: int
    abandoned: int

    @property
    def rate(self) -> float:
        """Abandoned ÷ live answers."""
        return abandon_rate(self.abandoned, self.live_answers)

    def within(self, cap: float) -> bool:
        """Whether the rate is at or under ``cap``."""
        return self.abandoned <= cap * self.live_answers + 1e-9


class AbandonWindow:
    """Rolling counts of live answers and abandons; see the module docstring."""

    def __init__(self, window_s: float = ROLLING_30_DAYS_S, *, bucket_s: float = 60.0) -> None:
        if window_s <= 0 or bucket_s <= 0:
            raise ValueError("window_s and bucket_s must be greater than 0")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self._buckets: deque[list[float]] = deque()  # [bucket start, live, abandoned]
        self._live = 0
        self._abandoned = 0

    def record_live_answer(self, at_s: float, *, abandoned: bool) -> None:
        """Count one live answer at ``at_s``, abandoned or connected."""
        start = math.floor(at_s / self.bucket_s) * self.bucket_s
        buckets = self._buckets
        if buckets and start < buckets[-1][0]:
            raise ValueError(
                f"answers must be recorded in time order ({at_s} is before the last bucket)"
            )
        if not buckets or buckets[-1][0] != start:
            buckets.append([start, 0, 0])
        bucket = buckets[-1]
        bucket[1] += 1
        self._live += 1
        if abandoned:
            bucket[2] += 1
            self._abandoned += 1

    def counts(self, now_s: float) -> AbandonCounts:
        """Live answers and abandons in the window ending at ``now_s``."""
        oldest = now_s - self.window_s
        buckets = self._buckets
        # A bucket leaves the window once all of it is older than the window's start.
        while buckets and buckets[0][0] + self.bucket_s <= oldest:
            _, live, abandoned = buckets.popleft()
            self._live -= int(live)
            self._abandoned -= int(abandoned)
        return AbandonCounts(self._live, self._abandoned)

    def allowed(self, now_s: float, cap: float) -> int:
        """Abandons that still fit under ``cap`` in the window at ``now_s``."""
        counts = self.counts(now_s)
        return abandons_allowed(counts.abandoned, counts.live_answers, cap)

    def buckets(self) -> list[tuple[float, int, int]]:
        """The window's buckets as ``(start_s, live_answers, abandoned)`` for persistence."""
        return [(b[0], int(b[1]), int(b[2])) for b in self._buckets]

    @classmethod
    def from_buckets(
        cls,
        buckets: Iterable[tuple[float, int, int]],
        window_s: float = ROLLING_30_DAYS_S,
        *,
        bucket_s: float = 60.0,
    ) -> AbandonWindow:
        """Rebuild a window from exported buckets (sorted by start)."""
        window = cls(window_s, bucket_s=bucket_s)
        for start, live, abandoned in buckets:
            if abandoned > live or live < 0 or abandoned < 0:
                raise ValueError(f"bucket at {start}: counts {live}, {abandoned} are inconsistent")
            if window._buckets and start <= window._buckets[-1][0]:
                raise ValueError("buckets must be sorted by start time with no repeats")
            window._buckets.append([float(start), live, abandoned])
            window._live += live
            window._abandoned += abandoned
        return window
