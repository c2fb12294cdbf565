"""Pacing benchmark: progressive, power, VICIdial, simulation search and the predictive policy.

1. The round-1 table (strict guard): progressive, VICIdial ADAPT_TAPERED (faithful, see
   ``pacing_vicidial.py``) and predictive on three scenarios (50 agents; 10 agents; 50 agents
   with the answer rate falling from 0.35 to 0.15 at hour 4), with its targets.
2. The goals table (issue 17): predictive with the statistical abandon guard on five
   scenarios (public 50 agents; answer rate 7 %; 7 agents; answer rate 3 % with 20 agents;
   600-second talks), mean of ``--seeds`` seeds, abandon ≤ 3 % in every seed, beside
   progressive, power 2.0, VICIdial with the strict clamp and without any clamp (its own
   drop rule only), the simulation-search baseline (``pacing_simsearch.py``) and predictive
   with the strict clamp, all in the same run (baselines over ``--baseline-seeds`` seeds).
3. ``--guard-days N``: N seeded short windows with a policy that asks for everything, under
   each guard: the share of windows whose abandon rate ends above the cap and the largest
   excess (the statistical guard's stated share and margin are in ``dialer.guard``).
4. The simulator's speed: an 8-hour, 100-agent predictive day, with progressive timed alongside.

    .venv/bin/python benchmarks/pacing.py [--seed N] [--quick] [--hours H] [--seeds S]
        [--baseline-seeds B] [--guard-days N] [--jobs J] [--skip-legacy] [--skip-goals]
        [--skip-speed]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pacing_simsearch import SimulationSearchPolicy
from pacing_vicidial import VicidialAdaptivePolicy

from dialer.guard import STATED_MARGIN, STATED_SHARE
from dialer.pacing import PacingPolicy, PowerPolicy, PredictivePolicy, ProgressivePolicy
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

LOGNORMAL_600 = {"dist": "lognormal", "mean": 600, "sd": 400}
# The goals: (scenario, overrides, occupancy goal) for predictive + statistical guard.
GOALS: list[tuple[str, dict[str, Any], float]] = [
    ("public 50 agents", {}, 0.93),
    ("answer rate 7 %", {"answer_probability": 0.07}, 0.68),
    ("7 agents", {"agents": 7}, 0.84),
    ("answer 3 %, 20 agents", {"answer_probability": 0.03, "agents": 20}, 0.55),
    ("600 s talks", {"talk_time_s": LOGNORMAL_600}, 0.93),
]
STATISTICAL = {"abandon_guard": "statistical"}
# No clamp at all: the cap is lifted for the guard; VICIdial keeps its own 3 % drop rule.
UNCLAMPED = {"abandon_target": 1.0}
# label: (policy factory, scenario overrides for the guard)
GOAL_POLICIES: dict[str, tuple[Any, dict[str, Any]]] = {
    "predictive+stat": (lambda: PredictivePolicy(guard="statistical"), STATISTICAL),
    "predictive strict": (PredictivePolicy, {}),
    "progressive": (ProgressivePolicy, {}),
    "power 2.0": (lambda: PowerPolicy(2.0), {}),
    "vicidial clamped": (VicidialAdaptivePolicy, {}),
    "vicidial no clamp": (lambda: VicidialAdaptivePolicy(dropped_percentage=0.03), UNCLAMPED),
    "sim-search": (SimulationSearchPolicy, {}),
}


def goal_run(task: tuple[str, str, int, float]) -> tuple[str, str, int, float, float, float]:
    """One goals-table day: (scenario, policy, seed, abandon, occupancy, seconds)."""
    name, label, seed, hours = task
    overrides = dict(next(o for n, o, _ in GOALS if n == name))
    factory, guard = GOAL_POLICIES[label]
    result, seconds = run({**overrides, **guard, "duration_s": hours * 3600}, factory(), seed)
    return name, label, seed, result.abandon_rate, result.occupancy, seconds


class AskForEverything:
    """Asks for 10,000 calls every tick: only the guard holds it."""

    def calls_to_launch(self, snapshot: Any) -> int:
        return 10_000


def guard_window(task: tuple[str, int]) -> tuple[str, int, float, float]:
    """One short window under a guard with the greedy policy: (guard, seed, rate, cap)."""
    guard, seed = task
    agents = (3, 7, 12, 20)[seed % 4]
    answer = (0.05, 0.15, 0.3)[seed % 3]
    talk = ({"dist": "lognormal", "mean": 90, "sd": 60}, LOGNORMAL_600)[seed % 5 == 0]
    raw = {
        "seed": seed,
        "duration_s": 1800,
        "agents": agents,
        "answer_probability": answer,
        "talk_time_s": talk,
        "abandon_guard": guard,
    }
    result = Simulation(parse_scenario({**BASE, **raw}), AskForEverything()).run()
    return guard, seed, result.abandon_rate, 0.03


def pool_map(function: Any, tasks: list[Any], jobs: int) -> list[Any]:
    if jobs <= 1:
        return [function(task) for task in tasks]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return pool.map(function, tasks, chunksize=1)


def goals_table(args: argparse.Namespace, failures: list[str]) -> None:
    hours = 1.0 if args.quick else args.hours
    tasks = [
        (name, label, args.seed + i, hours)
        for name, _, _ in GOALS
        for label in GOAL_POLICIES
        for i in range(args.seeds if label == "predictive+stat" else args.baseline_seeds)
    ]
    started = time.perf_counter()
    results = pool_map(goal_run, tasks, args.jobs)
    print(
        f"goals table: {hours:g}-hour days, predictive+stat over {args.seeds} seeds, "
        f"baselines over {args.baseline_seeds} ({time.perf_counter() - started:.0f} s wall)"
    )
    header = f"{'scenario':<24} {'goal':>5} " + " ".join(f"{label:>17}" for label in GOAL_POLICIES)
    print(header)
    print("-" * len(header))
    for name, _, goal in GOALS:
        cells = []
        for label in GOAL_POLICIES:
            rows = [r for r in results if r[0] == name and r[1] == label]
            occupancy = sum(r[4] for r in rows) / len(rows)
            worst = max(r[3] for r in rows)
            cells.append(f"{100 * occupancy:6.1f}% ab≤{100 * worst:4.2f}%")
            if label == "predictive+stat":
                if worst > 0.03:
                    failures.append(f"{name}: predictive+stat abandon {100 * worst:.2f} % > 3 %")
                if occupancy < goal:
                    failures.append(
                        f"{name}: predictive+stat occupancy {100 * occupancy:.1f} % "
                        f"< goal {100 * goal:.0f} %"
                    )
        print(f"{name:<24} {100 * goal:>4.0f}% " + " ".join(f"{c:>17}" for c in cells))
    print("(each cell: mean occupancy, worst seed's abandon rate over the run)")
    print()


def guard_days(args: argparse.Namespace, failures: list[str]) -> None:
    tasks = [(g, args.seed + i) for g in ("strict", "statistical") for i in range(args.guard_days)]
    results = pool_map(guard_window, tasks, args.jobs)
    for guard in ("strict", "statistical"):
        rates = [r[2] for r in results if r[0] == guard]
        over = [rate - 0.03 for rate in rates if rate > 0.03 + 1e-12]
        share = len(over) / len(rates)
        worst = max(over, default=0.0)
        print(
            f"guard {guard:<11}: {len(rates)} windows of 30 min (3-20 agents, answer 5-30 %), "
            f"greedy policy: {len(over)} above the cap ({100 * share:.1f} %), largest excess "
            f"{100 * worst:.2f} points, mean rate {100 * sum(rates) / len(rates):.2f} %"
        )
        if guard == "strict" and over:
            failures.append(f"strict guard exceeded the cap in {len(over)} windows")
        if guard == "statistical" and (share > STATED_SHARE or worst > STATED_MARGIN):
            failures.append(
                f"statistical guard: {100 * share:.1f} % of windows above the cap "
                f"(stated ≤ {100 * STATED_SHARE:.0f} %), excess {100 * worst:.2f} points "
                f"(stated ≤ {100 * STATED_MARGIN:.1f})"
            )
    print()


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
    parser.add_argument("--hours", type=float, default=8.0, help="goals table day length")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for predictive+stat")
    parser.add_argument("--baseline-seeds", type=int, default=3, help="seeds for baselines")
    parser.add_argument("--guard-days", type=int, default=0, help="windows per guard")
    parser.add_argument("--jobs", type=int, default=2, help="processes")
    parser.add_argument("--skip-legacy", action="store_true", help="no round-1 table")
    parser.add_argument("--skip-goals", action="store_true", help="no goals table")
    parser.add_argument("--skip-speed", action="store_true", help="no speed run")
    args = parser.parse_args()
    quick = {"duration_s": 3600} if args.quick else {}
    failures: list[str] = []
    if not args.skip_goals:
        goals_table(args, failures)
    if args.guard_days:
        guard_days(args, failures)

    header = (
        f"{'scenario':<36} {'policy':<15} {'dials':>7} {'live':>6} {'aband':>6} "
        f"{'abandon%':>8} {'occup%':>7} {'idle s':>7} {'cont/ah':>7} {'sim s':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, overrides in {} if args.skip_legacy else SCENARIOS.items():
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

    if args.skip_speed:
        return report(failures)
    day = {"agents": 100, **quick}
    _, statistical_s, _ = timed({**day, **STATISTICAL}, PredictivePolicy(guard="statistical"), 1)
    load_before = load_average()
    _, progressive_s, progressive_cpu = timed(day, ProgressivePolicy(), args.seed)
    _, predictive_s, predictive_cpu = timed(day, PredictivePolicy(), args.seed)
    hours = (quick or {"duration_s": 8 * 3600})["duration_s"] / 3600
    print(
        f"simulator speed, {hours:g} h x 100 agents: predictive {predictive_s:.2f} s "
        f"({predictive_cpu:.2f} s CPU), progressive {progressive_s:.2f} s "
        f"({progressive_cpu:.2f} s CPU) (ratio {predictive_s / progressive_s:.2f}); "
        f"target ≤ 5 s; load average {load_before} before, {load_average()} after; "
        f"with the statistical guard {statistical_s:.2f} s"
    )
    if predictive_s > 5.0 and not args.quick:
        failures.append(f"simulator speed {predictive_s:.2f} s > 5 s")
    return report(failures)


def report(failures: list[str]) -> int:
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
