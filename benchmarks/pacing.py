"""Pacing benchmark: progressive vs a VICIdial-style baseline vs the predictive policy.

Runs the three policies in the simulator on the issue's three scenarios (50 agents; 10
agents; 50 agents with the answer rate falling from 0.35 to 0.15 at hour 4), prints one table
and checks the targets (predictive ≤ cap everywhere, ≥ 85 % occupancy with 50 agents, and
higher occupancy than the baseline at equal or lower abandon). Then times an 8-hour,
100-agent predictive day, with the same day under progressive pacing timed alongside as the
in-run baseline.

    .venv/bin/python benchmarks/pacing.py [--seed N] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pacing_vicidial import VicidialAdaptivePolicy

from dialer.pacing import PacingPolicy, PredictivePolicy, ProgressivePolicy
from dialer.scenario import parse_scenario
from dialer.simulator import Simulation, SimulationResult

BASE: dict[str, Any] = {
    "duration_s": 8 * 3600,
    "agents": 50,
    "mode": "predictive",
    "abandon_target": 0.03,
    "answer_probability": 0.25,
    "machine_probability": 0.10,
    "ring_time_s": {"dist": "lognormal", "mean": 12, "sd": 6},
    "no_answer_timeout_s": 25,
    "talk_time_s": {"dist": "lognormal", "mean": 120, "sd": 80},
    "wrap_time_s": {"dist": "fixed", "value": 10},
}

SCENARIOS: dict[str, dict[str, Any]] = {
    "50 agents": {},
    "10 agents": {"agents": 10},
    "50 agents, answer 0.35→0.15 at 4 h": {
        "answer_probability": [{"from_s": 0, "p": 0.35}, {"from_s": 4 * 3600, "p": 0.15}]
    },
}

POLICIES = {
    "progressive": ProgressivePolicy,
    "vicidial-style": VicidialAdaptivePolicy,
    "predictive": PredictivePolicy,
}


def run(
    overrides: dict[str, Any], policy: PacingPolicy, seed: int
) -> tuple[SimulationResult, float]:
    result, seconds, _ = timed(overrides, policy, seed)
    return result, seconds


def timed(
    overrides: dict[str, Any], policy: PacingPolicy, seed: int
) -> tuple[SimulationResult, float, float]:
    """The result, the wall-clock seconds and the CPU seconds of one simulated day."""
    scenario = parse_scenario({**BASE, **overrides, "seed": seed})
    started, cpu = time.perf_counter(), time.process_time()
    result = Simulation(scenario, policy).run()
    return result, time.perf_counter() - started, time.process_time() - cpu


def load_average() -> str:
    """The machine's 1, 5 and 15-minute load averages (the machine may be shared)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1-hour days (smoke run)")
    args = parser.parse_args()
    quick = {"duration_s": 3600} if args.quick else {}

    header = (
        f"{'scenario':<36} {'policy':<15} {'dials':>7} {'live':>6} {'aband':>6} "
        f"{'abandon%':>8} {'occup%':>7} {'idle s':>7} {'cont/ah':>7} {'sim s':>6}"
    )
    print(header)
    print("-" * len(header))
    failures: list[str] = []
    for name, overrides in SCENARIOS.items():
        results: dict[str, SimulationResult] = {}
        for label, factory in POLICIES.items():
            result, seconds = run({**overrides, **quick}, factory(), args.seed)
            results[label] = result
            print(
                f"{name:<36} {label:<15} {result.dials:>7} {result.live_answers:>6} "
                f"{result.abandoned:>6} {100 * result.abandon_rate:>8.2f} "
                f"{100 * result.occupancy:>7.1f} {result.agent_idle_mean_s:>7.1f} "
                f"{result.contacts_per_agent_hour:>7.2f} {seconds:>6.1f}",
                flush=True,
            )
        ours, baseline = results["predictive"], results["vicidial-style"]
        if ours.abandon_rate > 0.03:
            failures.append(f"{name}: predictive abandon {100 * ours.abandon_rate:.2f} % > 3 %")
        if name == "50 agents" and ours.occupancy < 0.85:
            failures.append(f"{name}: predictive occupancy {100 * ours.occupancy:.1f} % < 85 %")
        if not (ours.occupancy > baseline.occupancy and ours.abandon_rate <= baseline.abandon_rate):
            failures.append(
                f"{name}: predictive ({100 * ours.occupancy:.1f} % occupancy, "
                f"{100 * ours.abandon_rate:.2f} % abandon) does not beat the baseline "
                f"({100 * baseline.occupancy:.1f} %, {100 * baseline.abandon_rate:.2f} %)"
            )
        print()

    day = {"agents": 100, **quick}
    load_before = load_average()
    _, progressive_s, progressive_cpu = timed(day, ProgressivePolicy(), args.seed)
    _, predictive_s, predictive_cpu = timed(day, PredictivePolicy(), args.seed)
    hours = (quick or {"duration_s": 8 * 3600})["duration_s"] / 3600
    print(
        f"simulator speed, {hours:g} h x 100 agents: predictive {predictive_s:.2f} s "
        f"({predictive_cpu:.2f} s CPU), progressive {progressive_s:.2f} s "
        f"({progressive_cpu:.2f} s CPU) (ratio {predictive_s / progressive_s:.2f}); "
        f"target ≤ 5 s; load average {load_before} before, {load_average()} after"
    )
    if predictive_s > 5.0 and not args.quick:
        failures.append(f"simulator speed {predictive_s:.2f} s > 5 s")
    print()
    if failures:
        print("TARGETS MISSED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
