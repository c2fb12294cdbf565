"""A simulation-search pacing baseline: replay recent history, simulate ahead, pick a ratio.

The design of Impact Dialing's published pacing, rebuilt for the benchmark: every
``every_s`` seconds it takes the recent statistics (answer rates, ring, talk and wrap-up
times of the last ten minutes, as the dial loop observes them), starts from the present state
(the calls ringing with how long they have rung, the agents talking with how long they have
talked, the agents in wrap-up), simulates the next ``horizon_s`` seconds once for each dial
ratio of a grid (with the same random numbers for every ratio, so ratios are compared on the
same luck), and keeps the highest ratio whose simulated abandon rate stays within
``target_fraction`` of the cap. Between searches it keeps ``ratio × (agents ready or on a
call)`` lines busy, like a dial level. It is a baseline, so it is plain Python with a coarse
one-second clock; its calls still go through the simulator's abandon guard.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from dialer.distributions import lognormal_log_params
from dialer.pacing import PacingSnapshot, PacingStats

__all__ = ["SimulationSearchPolicy"]

_GRID = tuple(1.0 + 0.25 * i for i in range(13))  # 1.0 … 4.0


def _lognormal(rng: random.Random, mean: float, sd: float) -> float:
    if mean <= 0:
        return 0.0
    mu, sigma = lognormal_log_params(mean, sd)
    return rng.lognormvariate(mu, sigma) if sigma > 1e-9 else mean


def _remaining(rng: random.Random, mean: float, sd: float, elapsed: float) -> float:
    """A duration's remaining part given it has lasted ``elapsed`` (by rejection, bounded)."""
    for _ in range(20):
        value = _lognormal(rng, mean, sd)
        if value > elapsed:
            return value - elapsed
    return max(mean * 0.25, 1.0)


def _simulate(
    snapshot: PacingSnapshot, stats: PacingStats, ratio: float, horizon: float, seed: int
) -> tuple[int, int]:
    """Live answers and abandons of ``horizon`` seconds at ``ratio`` from the snapshot."""
    rng = random.Random(seed)
    grace = 2.0
    wrap = max(stats.wrap_time_mean_s, 0.0)
    free_at: list[float] = [0.0] * snapshot.agents_ready
    free_at += [
        _remaining(rng, stats.talk_time_mean_s, stats.talk_time_sd_s, e) + wrap
        for e in snapshot.talk_elapsed_s
    ]
    free_at += [max(wrap - e, 0.0) for e in snapshot.wrap_elapsed_s]
    p_human = stats.human_answer_rate
    p_machine = stats.machine_answer_rate
    p_quick = stats.quick_fail_rate
    timeout = stats.no_answer_timeout_s
    # Calls in flight: (time they resolve, live answer?).
    calls: list[tuple[float, bool]] = []

    def launch(now: float, rung: float) -> None:
        draw = rng.random()
        if draw < p_human + p_machine:
            ring = _lognormal(rng, stats.ring_time_mean_s, stats.ring_time_sd_s)
            if ring >= timeout or ring < rung:
                calls.append((now + max(timeout - rung, 0.0), False))
            else:
                calls.append((now + ring - rung, draw < p_human))
        elif draw < p_human + p_machine + p_quick:
            calls.append((now + max(stats.quick_fail_time_s - rung, 0.0), False))
        else:
            calls.append((now + max(timeout - rung, 0.0), False))

    for rung in snapshot.ringing_elapsed_s:
        launch(0.0, rung)
    live = abandoned = 0
    waiting = snapshot.calls_waiting
    now = 0.0
    while now < horizon:
        # Waiting callers and this second's live answers take the agents free by then.
        due = [c for c in calls if c[0] <= now]
        calls = [c for c in calls if c[0] > now]
        answers = waiting + sum(1 for c in due if c[1])
        waiting = 0
        for _ in range(answers):
            live += 1
            index = min(range(len(free_at)), key=free_at.__getitem__) if free_at else -1
            if index < 0 or free_at[index] > now + grace:
                abandoned += 1
                continue
            start = max(free_at[index], now)
            talk = _lognormal(rng, stats.talk_time_mean_s, stats.talk_time_sd_s)
            free_at[index] = start + talk + wrap
        busy = sum(1 for t in free_at if t > now)
        ready = len(free_at) - busy
        lines = math.floor(ratio * (ready + busy) + 0.5)
        for _ in range(max(0, lines - len(calls) - busy)):
            launch(now, 0.0)
        now += 1.0
    return live, abandoned


@dataclass(slots=True)
class SimulationSearchPolicy:
    """Grid-search the dial ratio by simulating ahead (see the module docstring)."""

    every_s: float = 300.0
    horizon_s: float = 600.0
    target_fraction: float = 0.8
    ratio: float = 1.0
    seed: int = 1
    _next_search_s: float = field(default=0.0)

    def _search(self, snapshot: PacingSnapshot) -> None:
        stats = snapshot.stats
        cap = snapshot.abandon_cap
        best = _GRID[0]
        self.seed += 1
        for ratio in _GRID:
            live, abandoned = _simulate(snapshot, stats, ratio, self.horizon_s, self.seed)
            # The window as it would stand after the simulated stretch.
            total_live = snapshot.live_answers_in_window + live
            total_abandoned = snapshot.abandoned_in_window + abandoned
            if total_abandoned > self.target_fraction * cap * max(total_live, 1):
                break
            best = ratio
        self.ratio = best

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """Lines to add to reach ``ratio × (agents ready or on a call)``."""
        if snapshot.agents_signed_in <= 0:
            return 0
        if snapshot.now_s >= self._next_search_s:
            self._search(snapshot)
            self._next_search_s = snapshot.now_s + self.every_s
        agents = snapshot.agents_ready + snapshot.agents_on_call
        lines = math.floor(self.ratio * agents + 0.5)
        active = snapshot.calls_ringing + snapshot.calls_waiting + snapshot.agents_on_call
        calls = max(0, lines - active)
        if snapshot.leads_available is not None:
            calls = min(calls, snapshot.leads_available)
        return calls
