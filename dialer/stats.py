"""Recent call statistics for pacing: a sliding window over observed outcomes and durations.

:class:`RecentStats` is fed what the dial loop observes (each dial's outcome and ring time,
each talk and wrap-up duration), stamped with the caller's clock, and summarises the last
``window_s`` seconds as a :class:`dialer.pacing.PacingStats`. Until enough calls have been
seen, the summary is shrunk towards a prior, so the first minutes of a campaign pace on
sensible defaults rather than on two or three calls.

It also gives an upper credible bound of the human answer rate for the statistical abandon
guard (:mod:`dialer.guard`): the larger of the Wilson bounds over the whole window (with the
prior's pseudo-dials, so it is wide when the data are few) and over the last
``short_window_s`` seconds (so a jump in the answer rate shows within a minute or two instead
of the window's ten).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from enum import StrEnum
from functools import reduce
from operator import mul, sub

from dialer.pacing import PacingStats


def answer_rate_upper_bound(rate: float, dials: float, z: float = 2.0) -> float:
    """The Wilson upper bound (one-sided, z = 2: about 97.7 %) of a rate seen on ``dials``
    trials; 1.0 with none."""
    if dials <= 0:
        return 1.0
    p = min(max(rate, 0.0), 1.0)
    z2 = z * z
    centre = p + z2 / (2.0 * dials)
    spread = z * math.sqrt(p * (1.0 - p) / dials + z2 / (4.0 * dials * dials))
    return min(1.0, (centre + spread) / (1.0 + z2 / dials))


__all__ = ["DialOutcome", "RecentStats", "answer_rate_upper_bound"]


class DialOutcome(StrEnum):
    """How a dial ended, as far as pacing cares."""

    HUMAN = "human"
    MACHINE = "machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"


_HUMAN = DialOutcome.HUMAN


def _first_not_before(times: list[float], oldest: float, head: int) -> int:
    """The index of the first of ``times[head:]`` that is not before ``oldest``: where a scan
    that drops entries from the front while they are older stops. Found by bisection and
    checked (every entry skipped is older), so times recorded out of order are scanned."""
    end = bisect_left(times, oldest, head)
    # bisect_left leaves times[end] ≥ oldest (or the end); the skipped ones must all be older.
    if end > head and max(times[head:end]) >= oldest:
        end, n = head, len(times)
        while end < n and times[end] < oldest:
            end += 1
    return end


# A window's dropped entries are kept until they are this many and half the list.
_COMPACT_AT = 2048


class _Moments:
    """Count, sum and sum of squares of timestamped samples inside a sliding window.

    The samples are two lists (times, values) read from ``head``; pruning finds where the
    window starts by bisection and takes the leaving values off the sums one by one, in
    order, as popping them would (the same floating-point sums), without a Python step each.
    """

    __slots__ = ("count", "head", "times", "total", "total_sq", "values")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: list[float] = []
        self.head = 0
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0

    def add(self, at: float, value: float) -> None:
        self.times.append(at)
        self.values.append(value)
        self.count += 1
        self.total += value
        self.total_sq += value * value

    def prune(self, oldest: float) -> None:
        times = self.times
        head = self.head
        if head >= len(times) or not times[head] < oldest:
            return
        end = _first_not_before(times, oldest, head)
        values = self.values
        gone = values[head:end]
        self.count -= end - head
        self.total = reduce(sub, gone, self.total)
        self.total_sq = reduce(sub, map(mul, gone, gone), self.total_sq)
        if end >= _COMPACT_AT and 2 * end >= len(times):
            del times[:end]
            del values[:end]
            end = 0
        self.head = end

    def blended(self, prior_mean: float, prior_sd: float, weight: float) -> tuple[float, float]:
        """Mean and sd shrunk towards the prior with ``weight`` pseudo-samples."""
        n = self.count + weight
        mean = (self.total + weight * prior_mean) / n
        second = (self.total_sq + weight * (prior_sd**2 + prior_mean**2)) / n
        return mean, math.sqrt(max(second - mean * mean, 0.0))


class RecentStats:
    """Sliding-window call statistics; see the module docstring."""

    def __init__(
        self,
        *,
        window_s: float = 600.0,
        prior: PacingStats | None = None,
        prior_dials: float = 40.0,
        prior_durations: float = 10.0,
        short_window_s: float = 120.0,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be greater than 0, got {window_s}")
        self.window_s = window_s
        self.prior = prior or PacingStats()
        self.prior_dials = prior_dials
        self.prior_durations = prior_durations
        self.short_window_s = short_window_s
        # Every outcome's time and kind, read from ``_head`` (the window) and from
        # ``_recent_head`` (the last short_window_s seconds), with the running counts.
        self._times: list[float] = []
        self._kinds: list[DialOutcome] = []
        self._head = 0
        self._recent_head = 0
        self._recent_human = 0
        self._counts: dict[DialOutcome, int] = dict.fromkeys(DialOutcome, 0)
        self._ring = _Moments()
        self._quick = _Moments()
        self._talk = _Moments()
        self._wrap = _Moments()
        # Where each outcome's ring time goes: answers' ring times, busy and failed calls'
        # times to fail; no-answers ring for the timeout and tell nothing.
        self._ring_times: dict[DialOutcome, _Moments | None] = {
            DialOutcome.HUMAN: self._ring,
            DialOutcome.MACHINE: self._ring,
            DialOutcome.BUSY: self._quick,
            DialOutcome.FAILED: self._quick,
            DialOutcome.NO_ANSWER: None,
        }

    def record_outcome(self, at_s: float, outcome: DialOutcome, ring_time_s: float) -> None:
        """One dial ended (or was answered) at ``at_s`` after ringing ``ring_time_s``."""
        self._times.append(at_s)
        self._kinds.append(outcome)
        self._counts[outcome] += 1
        if outcome is _HUMAN:
            self._recent_human += 1
        moments = self._ring_times[outcome]
        if moments is not None:
            moments.add(at_s, ring_time_s)

    def record_talk(self, at_s: float, talk_time_s: float) -> None:
        """An agent's conversation ended at ``at_s`` after ``talk_time_s``."""
        self._talk.add(at_s, talk_time_s)

    def record_wrap(self, at_s: float, wrap_time_s: float) -> None:
        """An agent's wrap-up ended at ``at_s`` after ``wrap_time_s``."""
        self._wrap.add(at_s, wrap_time_s)

    def snapshot(self, now_s: float, no_answer_timeout_s: float) -> PacingStats:
        """The window's statistics at ``now_s``, shrunk towards the prior."""
        oldest = now_s - self.window_s
        times = self._times
        kinds = self._kinds
        head = self._head
        counts = self._counts
        if head < len(times) and times[head] < oldest:
            end = _first_not_before(times, oldest, head)
            gone = kinds[head:end]
            for kind in counts:
                counts[kind] -= gone.count(kind)
            head = end
        for moments in (self._ring, self._quick, self._talk, self._wrap):
            moments.prune(oldest)
        recent_head = self._recent_head
        recent_oldest = now_s - self.short_window_s
        if recent_head < len(times) and times[recent_head] < recent_oldest:
            end = _first_not_before(times, recent_oldest, recent_head)
            self._recent_human -= kinds[recent_head:end].count(_HUMAN)
            recent_head = end
        cut = min(head, recent_head)  # what neither window reads any more
        if cut >= _COMPACT_AT and 2 * cut >= len(times):
            del times[:cut]
            del kinds[:cut]
            head -= cut
            recent_head -= cut
        self._head = head
        self._recent_head = recent_head
        recent = len(times) - recent_head
        prior = self.prior
        dials = len(times) - head
        weight = self.prior_dials
        total = dials + weight

        ring_mean, ring_sd = self._ring.blended(
            prior.ring_time_mean_s, prior.ring_time_sd_s, self.prior_durations
        )
        quick_mean, _ = self._quick.blended(prior.quick_fail_time_s, 0.0, self.prior_durations)
        talk_mean, talk_sd = self._talk.blended(
            prior.talk_time_mean_s, prior.talk_time_sd_s, self.prior_durations
        )
        wrap_mean, wrap_sd = self._wrap.blended(
            prior.wrap_time_mean_s, prior.wrap_time_sd_s, self.prior_durations
        )
        human_rate = (counts[DialOutcome.HUMAN] + weight * prior.human_answer_rate) / total
        upper = answer_rate_upper_bound(human_rate, total)
        if recent:
            short = answer_rate_upper_bound(self._recent_human / recent, recent)
            upper = max(upper, short)
        return PacingStats(
            human_answer_rate=human_rate,
            machine_answer_rate=(counts[DialOutcome.MACHINE] + weight * prior.machine_answer_rate)
            / total,
            quick_fail_rate=(
                counts[DialOutcome.BUSY]
                + counts[DialOutcome.FAILED]
                + weight * prior.quick_fail_rate
            )
            / total,
            ring_time_mean_s=ring_mean,
            ring_time_sd_s=ring_sd,
            quick_fail_time_s=quick_mean,
            no_answer_timeout_s=no_answer_timeout_s,
            talk_time_mean_s=talk_mean,
            talk_time_sd_s=talk_sd,
            wrap_time_mean_s=wrap_mean,
            wrap_time_sd_s=wrap_sd,
            samples=dials,
            human_answer_upper=upper,
        )
