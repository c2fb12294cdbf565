"""A VICIdial-style adaptive pacing policy, the baseline the predictive policy must beat.

Built from the public description of VICIdial's ADAPT modes: every ``interval_s`` (15 s) it
compares the average number of ready agents with the average number of answered calls waiting
for an agent over that interval, changes the dial level (lines per active agent) by that
difference divided by the number of active agents, clamps it to [1, ``max_level``], and when
the day's drop (abandon) rate is above the cap it falls back to a level of 1.0 ("hard
limit"). Between adjustments it keeps ``level × active agents`` lines busy, where active
agents are those ready or on a call and busy lines are calls ringing, waiting or talking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dialer.pacing import PacingSnapshot

__all__ = ["VicidialAdaptivePolicy"]


@dataclass(slots=True)
class VicidialAdaptivePolicy:
    """VICIdial-style adaptive dial level with the hard abandon limit."""

    max_level: float = 3.0
    interval_s: float = 15.0
    level: float = 1.0
    _interval_start: float | None = None
    _ready_sum: float = 0.0
    _waiting_sum: float = 0.0
    _active_sum: float = 0.0
    _samples: int = 0

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """Lines to add to reach ``level × active agents``."""
        if snapshot.agents_signed_in <= 0:
            return 0
        active = snapshot.agents_ready + snapshot.agents_on_call
        if self._interval_start is None:
            self._interval_start = snapshot.now_s
        self._ready_sum += snapshot.agents_ready
        self._waiting_sum += snapshot.calls_waiting
        self._active_sum += active
        self._samples += 1
        if snapshot.now_s - self._interval_start >= self.interval_s:
            n = self._samples
            agents = max(self._active_sum / n, 1.0)
            self.level += (self._ready_sum / n - self._waiting_sum / n) / agents
            self.level = min(max(self.level, 1.0), self.max_level)
            if snapshot.window_abandon_rate > snapshot.abandon_cap:
                self.level = 1.0
            self._interval_start = snapshot.now_s
            self._ready_sum = self._waiting_sum = self._active_sum = 0.0
            self._samples = 0
        lines = math.floor(self.level * active + 1e-9)
        busy = snapshot.calls_ringing + snapshot.calls_waiting + snapshot.agents_on_call
        calls = max(0, lines - busy)
        if snapshot.leads_available is not None:
            calls = min(calls, snapshot.leads_available)
        return calls
