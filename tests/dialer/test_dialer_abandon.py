"""Abandon-window bookkeeping."""

from __future__ import annotations

import pytest

from dialer.abandon import (
    ROLLING_24_HOURS_S,
    AbandonWindow,
    abandon_rate,
    abandons_allowed,
)


def test_rate_and_allowance():
    assert abandon_rate(3, 100) == 0.03
    assert abandon_rate(0, 0) == 0.0
    assert abandons_allowed(1, 100, 0.03) == 2
    assert abandons_allowed(5, 100, 0.03) == 0
    with pytest.raises(ValueError, match="exceed"):
        abandon_rate(5, 4)


def test_window_drops_old_answers():
    window = AbandonWindow(ROLLING_24_HOURS_S)
    for minute in range(100):
        window.record_live_answer(minute * 60.0, abandoned=minute % 10 == 0)
    counts = window.counts(100 * 60.0)
    assert (counts.live_answers, counts.abandoned) == (100, 10)
    assert counts.rate == pytest.approx(0.10)
    assert not counts.within(0.03)
    # 24 h after minute 49 has ended, minutes 0..49 have left the window.
    later = window.counts(50 * 60.0 + ROLLING_24_HOURS_S)
    assert (later.live_answers, later.abandoned) == (50, 5)
    assert window.allowed(50 * 60.0 + ROLLING_24_HOURS_S, 0.2) == 5


def test_buckets_round_trip_and_order_checks():
    window = AbandonWindow(3600.0)
    window.record_live_answer(10.0, abandoned=False)
    window.record_live_answer(70.0, abandoned=True)
    copy = AbandonWindow.from_buckets(window.buckets(), 3600.0)
    assert copy.counts(100.0) == window.counts(100.0)
    with pytest.raises(ValueError, match="time order"):
        window.record_live_answer(5.0, abandoned=False)
    with pytest.raises(ValueError, match="inconsistent"):
        AbandonWindow.from_buckets([(0.0, 1, 2)])
