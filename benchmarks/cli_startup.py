"""Benchmark: how fast ``pilotdial`` answers ``--help``, per page, against two baselines.

Each page runs in a fresh interpreter ``--repeat`` times; the best wall and CPU times are
printed next to those of an empty interpreter (``python -c pass``: the floor) and of the eager
registration the CLI used to do (import every domain's command module, then ``--help``).
Target: every page under 0.3 s on an idle machine. Run: ``python benchmarks/cli_startup.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ["--help"],
    ["clean", "--help"],
    ["db", "--help"],
    ["admin", "create-key", "--help"],
    ["serve", "--help"],
    ["worker", "--help"],
    ["demo", "--help"],
    ["campaign", "--help"],
    ["attempts", "--help"],
    ["dnc", "--help"],
    ["simulate", "--help"],
    ["feasibility", "--help"],
    ["survey", "--help"],
]
_EAGER = (
    "import importlib, sys\n"
    "from core.cli import DOMAIN_CLI_MODULES, main\n"
    "for name in DOMAIN_CLI_MODULES: importlib.import_module(name)\n"
    "sys.argv = ['pilotdial', '--help']\n"
    "main()\n"
)


def _best(command: list[str], repeat: int) -> tuple[float, float]:
    """Best wall and CPU seconds of ``command`` over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(walls), min(cpus)


def main() -> None:
    """Time every help page and the baselines, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    floor = _best([python, "-c", "pass"], args.repeat)
    eager = _best([python, "-c", _EAGER], args.repeat)
    print(f"{'command':<32} {'wall s':>7} {'cpu s':>7}")
    print(f"{'python -c pass (floor)':<32} {floor[0]:7.3f} {floor[1]:7.3f}")
    print(f"{'eager registration --help':<32} {eager[0]:7.3f} {eager[1]:7.3f}")
    worst = 0.0
    for page in PAGES:
        wall, cpu = _best([python, "-m", "core.cli", *page], args.repeat)
        worst = max(worst, wall)
        label = "pilotdial " + " ".join(page)
        print(f"{label:<32} {wall:7.3f} {cpu:7.3f}   {eager[0] / wall:5.1f}x faster than eager")
    print(f"slowest page {worst:.3f} s; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
