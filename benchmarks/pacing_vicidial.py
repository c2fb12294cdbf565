"""VICIdial's ADAPT_TAPERED pacing, as AST_VDadapt.pl and AST_VDauto_dial.pl do it.

The baseline the predictive policy is measured against, written from reading VICIdial's
source (``bin/AST_VDadapt.pl`` 2.4 and ``bin/AST_VDauto_dial.pl``; AGPLv2, not copied):

- every second it samples the ready agents (READY), the answered calls waiting for an agent
  (LIVE) and the agents logged in; the differential is the average ready agents minus the
  average waiting calls over the last 15 samples (``count_agents_lines``);
- every 15 seconds (``calculate_dial_level``) it *multiplies* the dial level by
  ``1 + (differential + dl_diff_target) ÷ average agents`` (with the intensity setting
  scaling the change: ``× (1 + intensity/100)`` up, ``× |intensity/100 - 1|`` down), rounds
  it to 3 decimals, clamps it to [1, ``maximum_level``];
- last minute's drops over half of its calls halve it (when over 20 calls);
- when today's calls exceed 50 and today's drops ÷ answers exceed the drop percentage, the
  TAPERED rule multiplies the level by ``hours left ÷ 1000`` (``HHMM`` of the latest target
  time less ``HHMM`` now, 1 when more than ten hours are left; 1.0 after that time); drop
  statistics are recounted once a minute;
- a level under 1 is raised to 1;
- ``AST_VDauto_dial.pl`` then keeps ``round(level × non-paused agents)`` lines (Perl's
  ``sprintf("%.0f")``: halves to even), where non-paused agents are those ready or on a call
  (an agent in wrap-up is in DISPO/PAUSED) and lines are calls ringing, waiting or connected.

The simulator does not log dials per minute, so today's and last minute's *calls* are
estimated from the live answers and the observed answer rate; today's drops and answers are
the window's exact counts. The simulated day starts at ``day_start_hhmm`` and the latest
target time defaults to the end of the day, so the taper works across the day as it would
between the morning and ``adaptive_latest_server_time``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from dialer.pacing import PacingSnapshot

__all__ = ["VicidialAdaptivePolicy"]


@dataclass(slots=True)
class VicidialAdaptivePolicy:
    """ADAPT_TAPERED (see the module docstring)."""

    maximum_level: float = 3.0
    # adaptive_dropped_percentage as a fraction; None: the scenario's cap.
    dropped_percentage: float | None = None
    intensity: float = 0.0
    dl_diff_target: float = 0.0
    level: float = 1.0
    day_start_hhmm: int = 900
    latest_hhmm: int = 1700
    _samples: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=15))
    _next_sample_s: float = 0.0
    _last_level_s: float | None = None
    _last_drops_s: float = -60.0
    _drops_pct_today: float = 0.0
    _calls_today: float = 0.0
    _minute_marks: deque[tuple[float, int, int]] = field(default_factory=deque)
    _drops_one_pct: float = 0.0
    _calls_one: float = 0.0

    def _hhmm(self, now_s: float) -> int:
        start = (self.day_start_hhmm // 100) * 60 + self.day_start_hhmm % 100
        minutes = start + int(now_s // 60)
        return (minutes // 60) * 100 + minutes % 60

    def _calculate_drops(self, snapshot: PacingSnapshot) -> None:
        """Today's and last minute's figures (``calculate_drops``, once a minute)."""
        live, drops = snapshot.live_answers_in_window, snapshot.abandoned_in_window
        p = max(snapshot.stats.human_answer_rate, 0.01)
        self._calls_today = live / p
        answers = max(live, 1)
        self._drops_pct_today = round(100.0 * drops / answers, 2) if drops else 0.0
        marks = self._minute_marks
        marks.append((snapshot.now_s, live, drops))
        while marks and marks[0][0] < snapshot.now_s - 60.0:
            marks.popleft()
        _, live_then, drops_then = marks[0]
        self._calls_one = (live - live_then) / p
        dropped = drops - drops_then
        self._drops_one_pct = round(100.0 * dropped / self._calls_one, 2) if dropped else 0.0

    def _calculate_dial_level(self, snapshot: PacingSnapshot) -> None:
        samples = self._samples
        n = len(samples)
        ready = sum(s[0] for s in samples) / n
        waiting = sum(s[1] for s in samples) / n
        agents = sum(s[2] for s in samples) / n
        target = (ready - waiting) + self.dl_diff_target
        mul = target / agents if target != 0 and agents != 0 else 0.0
        pct_raw = mul * 100.0
        intensity = self.intensity / 100.0
        diff = pct_raw * abs(intensity - 1.0) if pct_raw < 0 else pct_raw * (intensity + 1.0)
        level = round(self.level * (diff / 100.0 + 1.0), 3)
        level = min(level, self.maximum_level)
        level = max(level, 1.0)
        if self._calls_one > 20 and self._drops_one_pct > 50:
            level /= 2.0
        cap = self.dropped_percentage
        cap_pct = 100.0 * (snapshot.abandon_cap if cap is None else cap)
        if self._calls_today > 50 and self._drops_pct_today > cap_pct:
            hours_left = self.latest_hhmm - self._hhmm(snapshot.now_s)
            if hours_left < 0:
                level = 1.0
            else:
                level *= 1.0 if hours_left > 1000 else hours_left / 1000.0
        self.level = max(level, 1.0)

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """Lines to add to reach ``round(level × non-paused agents)``."""
        if snapshot.agents_signed_in <= 0:
            return 0
        now = snapshot.now_s
        if now >= self._next_sample_s:
            self._samples.append(
                (snapshot.agents_ready, snapshot.calls_waiting, snapshot.agents_signed_in)
            )
            self._next_sample_s = now + 1.0
        if now - self._last_drops_s >= 60.0:
            self._calculate_drops(snapshot)
            self._last_drops_s = now
        if self._last_level_s is None:
            self._last_level_s = now
        elif now - self._last_level_s >= 15.0:
            self._calculate_dial_level(snapshot)
            self._last_level_s = now
        agents = snapshot.agents_ready + snapshot.agents_on_call
        goal = round(self.level * agents)  # Perl's sprintf("%.0f"): halves to even, as round()
        active = snapshot.calls_ringing + snapshot.calls_waiting + snapshot.agents_on_call
        calls = max(0, goal - active)
        if snapshot.leads_available is not None:
            calls = min(calls, snapshot.leads_available)
        return calls
