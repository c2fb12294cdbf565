"""The simulator's speed and figures, against a baseline tree of the code (issue 11 / 17).

Prints a hash of the figures (every :class:`SimulationResult` and every call record of a set
of seeded scenarios), and the CPU seconds of the 8-hour, 100-agent predictive and progressive
days of ``benchmarks/pacing.py``'s speed line. With ``--baseline DIR`` (a tree of an older
commit, e.g. ``git archive 2d28611 | tar -x -C /tmp/simbase``) it runs the same in that tree
(same interpreter, ``PYTHONPATH=DIR``), says whether the figures are identical, and times
``--pairs`` alternating old/new runs of each day in fresh processes, printing each pair's
new ÷ old CPU ratio and the median.

    .venv/bin/python benchmarks/simulator_speed.py [--baseline /tmp/simbase] [--pairs 5]
        [--hours 8] [--agents 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

BASE: dict[str, Any] = {
    "duration_s": 8 * 3600,
    "agents": 100,
    "mode": "predictive",
    "abandon_target": 0.03,
    "answer_probability": 0.25,
    "machine_probability": 0.10,
    "ring_time_s": {"dist": "lognormal", "mean": 12, "sd": 6},
    "no_answer_timeout_s": 25,
    "talk_time_s": {"dist": "lognormal", "mean": 120, "sd": 80},
    "wrap_time_s": {"dist": "fixed", "value": 10},
}
SHORT = {**BASE, "duration_s": 2 * 3600}
# Days hashed by their results only (no sink: the benchmark's own path).
RESULT_DAYS: list[tuple[dict[str, Any], str]] = [
    ({**BASE, "seed": 1}, "predictive"),
    ({**BASE, "seed": 1, "mode": "progressive"}, "progressive"),
    ({**BASE, "seed": 2, "agents": 50}, "predictive"),
    ({**BASE, "seed": 3, "agents": 10}, "predictive"),
    (
        {
            **BASE,
            "seed": 4,
            "agents": 50,
            "answer_probability": [{"from_s": 0, "p": 0.35}, {"from_s": 4 * 3600, "p": 0.15}],
        },
        "predictive",
    ),
    ({**SHORT, "seed": 5, "agents": 20, "abandon_guard": "statistical"}, "statistical"),
    ({**SHORT, "seed": 6, "agents": 7, "answer_probability": 0.07}, "statistical"),
    ({**SHORT, "seed": 7, "agents": 30, "mode": "power"}, "mode"),
    ({**SHORT, "seed": 8, "agents": 20, "amd_policy": "leave_message"}, "predictive"),
    ({**SHORT, "seed": 9, "agents": 20, "amd_policy": "pass_to_agent"}, "predictive"),
    ({**SHORT, "seed": 10, "agents": 12, "mode": "preview"}, "mode"),
    ({**SHORT, "seed": 11, "agents": 1, "mode": "agentless", "agentless_lines": 8}, "mode"),
]
# Days hashed call by call (with an outcome sink: records, ringing events, full requests).
RECORD_DAYS: list[tuple[dict[str, Any], str]] = [
    ({**SHORT, "seed": 21, "agents": 30}, "predictive"),
    ({**SHORT, "seed": 22, "agents": 15, "mode": "progressive"}, "mode"),
    ({**SHORT, "seed": 23, "agents": 10, "mode": "preview"}, "mode"),
    ({**SHORT, "seed": 24, "agents": 20, "amd_policy": "leave_message"}, "predictive"),
    ({**SHORT, "seed": 25, "agents": 1, "mode": "agentless", "agentless_lines": 6}, "mode"),
    ({**SHORT, "seed": 26, "agents": 12, "abandon_guard": "statistical"}, "statistical"),
]
# The fields every version's call records have (later ones added failure causes).
RECORD_FIELDS = (
    "lead_id",
    "attempt_id",
    "phone_e164",
    "agent_id",
    "originated_s",
    "ringing_s",
    "answered_s",
    "answer_kind",
    "connected_s",
    "ended_s",
    "talk_s",
    "abandoned",
    "outcome",
    "hangup_by",
)


def _policy(kind: str) -> Any:
    from dialer.pacing import PredictivePolicy, ProgressivePolicy

    if kind == "predictive":
        return PredictivePolicy()
    if kind == "progressive":
        return ProgressivePolicy()
    if kind == "statistical":
        return PredictivePolicy(guard="statistical")
    return None  # the scenario's mode picks it


def figures_hash() -> dict[str, str]:
    """sha256 of every result (policy path aside) and of every call record."""
    from dialer.scenario import parse_scenario
    from dialer.simulator import CallRecord, Simulation

    results = hashlib.sha256()
    for raw, kind in RESULT_DAYS:
        figures = Simulation(parse_scenario(raw), _policy(kind)).run().to_dict()
        del figures["policy"]
        results.update(json.dumps(figures, sort_keys=True).encode())
    records = hashlib.sha256()
    count = 0

    class Sink:
        def call_finished(self, record: CallRecord) -> None:
            nonlocal count
            count += 1
            records.update(repr(tuple(getattr(record, f) for f in RECORD_FIELDS)).encode())

    for raw, kind in RECORD_DAYS:
        result = Simulation(parse_scenario(raw), _policy(kind), outcome_sink=Sink()).run()
        figures = result.to_dict()
        del figures["policy"]
        records.update(json.dumps(figures, sort_keys=True).encode())
    return {"results": results.hexdigest(), "records": records.hexdigest(), "calls": str(count)}


def day_cpu(kind: str, hours: float, agents: int) -> float:
    """CPU seconds of one simulated day (the simulation alone)."""
    from dialer.scenario import parse_scenario
    from dialer.simulator import Simulation

    raw = {**BASE, "seed": 1, "agents": agents, "duration_s": hours * 3600}
    scenario = parse_scenario(raw)
    policy = _policy(kind)
    started = time.process_time()
    Simulation(scenario, policy).run()
    return time.process_time() - started


def _child(tree: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(tree), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run in {tree} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="tree of the code to compare with")
    parser.add_argument("--pairs", type=int, default=5, help="alternating old/new runs")
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--skip-hash", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # one measurement in a fresh process, in the given tree
        sys.path.insert(0, str(args.child))
        import dialer

        if not Path(dialer.__file__).resolve().is_relative_to(args.child.resolve()):
            raise SystemExit(f"dialer imported from {dialer.__file__}, not {args.child}")
        if args.day:
            print(day_cpu(args.day, args.hours, args.agents))
        else:
            print(json.dumps(figures_hash()))
        return 0

    new_tree = ROOT
    trees = {"new": new_tree} if args.baseline is None else {"old": args.baseline, "new": new_tree}
    identical = True
    if not args.skip_hash:
        hashes = {name: json.loads(_child(tree)) for name, tree in trees.items()}
        for name, found in hashes.items():
            print(
                f"figures hash ({name}): results {found['results'][:16]} "
                f"records {found['records'][:16]} ({found['calls']} calls)"
            )
        if args.baseline is not None:
            identical = hashes["old"] == hashes["new"]
            print("figures identical" if identical else "FIGURES DIFFER")
    for kind in ("predictive", "progressive"):
        day = ("--day", kind, "--hours", str(args.hours), "--agents", str(args.agents))
        ratios: list[float] = []
        for pair in range(args.pairs):
            # Alternate which goes first, so a drift of the machine's load favours neither.
            order = list(trees.items()) if pair % 2 == 0 else list(trees.items())[::-1]
            cpu = {name: float(_child(tree, *day)) for name, tree in order}
            line = " ".join(f"{name} {cpu[name]:.2f} s" for name in trees)
            if "old" in cpu:
                ratios.append(cpu["new"] / cpu["old"])
                line += f" ratio {ratios[-1]:.3f}"
            print(f"{kind} {args.hours:g} h x {args.agents} agents, pair {pair + 1}: {line} CPU")
        if ratios:
            print(
                f"{kind}: new/old CPU median {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} pairs)"
            )
    print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
