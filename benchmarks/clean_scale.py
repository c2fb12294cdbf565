"""Benchmark: ``pilotdial clean`` on 1M, 5M and 10M generated rows: time and peak memory growth.

Generates each list with ``clean_1m.py``'s generator (messy formats, ~10 % duplicates, ~5 %
invalid) and a do-not-call list of ``--dnc-numbers`` numbers of it (50,000 by default, for every
size, as the issue's 967,429-row list had: the list's length is what varies), runs
``pilotdial clean`` end to end in a fresh interpreter, and samples the memory of its process
tree every 20 ms:

* **RSS**: the sum of the processes' resident sets; it counts the pages a forked worker shares
  with its parent (the phone metadata, ~190 MiB) twice;
* **PSS**: the proportional set size, each shared page split between its sharers: what the
  tree really holds.

Printed per size: wall and CPU seconds, rows/s, peak RSS and PSS; then the growth per extra
million rows from the smallest size (flat memory: about the dedupe set, 16 bytes per kept
number, ~13 MiB per million). Issue 19 target: 10M rows <= 30 s and <= 1 GB peak.
Run: ``python benchmarks/clean_scale.py`` (``--sizes 1000000,5000000,10000000``; minutes of
CPU). Smoke run: ``--sizes 20000,60000``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def _tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of ``pid`` and its descendants."""
    rss = pss = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
        stack.extend(_children(current))
    return rss, pss


def _clean(work: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "core.cli", "clean", str(work / "leads.csv")]
    command += ["--dnc", str(work / "dnc.txt"), "--out", str(work / "CLEANED.csv")]
    command += ["--rejects", str(work / "REJECTS.csv"), "--report", str(work / "REPORT.json")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0
    while process.poll() is None:
        rss, pss = _tree_memory(process.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.02)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert process.stderr is not None
    if process.returncode:
        sys.exit(f"pilotdial clean failed: {process.stderr.read()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall": wall, "cpu": cpu, "rss": float(peak_rss), "pss": float(peak_pss)}


def main() -> None:
    """Generate, clean, print per size and the growth."""
    from clean_1m import generate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,5000000,10000000")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--dir", default=None, help="where to write the lists (default /tmp)")
    parser.add_argument(
        "--dnc-numbers",
        type=int,
        default=50_000,
        help="do-not-call numbers for every size (0: the generator's 5 %% of the rows)",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]
    results: list[tuple[int, dict[str, float]]] = []
    mib = 2**20
    for rows in sizes:
        with tempfile.TemporaryDirectory(dir=args.dir) as temp:
            work = Path(temp)
            started = time.perf_counter()
            generate(work / "leads.csv", work / "dnc.txt", rows, args.seed)
            if args.dnc_numbers:
                lines = (work / "dnc.txt").read_text(encoding="utf-8").splitlines(keepends=True)
                (work / "dnc.txt").write_text("".join(lines[: args.dnc_numbers]), "utf-8")
            made = time.perf_counter() - started
            size = (work / "leads.csv").stat().st_size
            result = _clean(work)
            report = json.loads((work / "REPORT.json").read_text())
        results.append((rows, result))
        print(
            f"{rows:>11,} rows ({size / mib:,.0f} MiB, made in {made:.0f} s): "
            f"{result['wall']:6.2f} s wall, {result['cpu']:6.2f} s cpu, "
            f"{rows / result['wall']:,.0f} rows/s, peak RSS {result['rss'] / mib:,.0f} MiB, "
            f"peak PSS {result['pss'] / mib:,.0f} MiB, kept {report['rows_out']:,}",
            flush=True,
        )
    first_rows, first = results[0]
    for rows, result in results[1:]:
        extra = (rows - first_rows) / 1e6
        print(
            f"growth {first_rows:,} -> {rows:,}: RSS "
            f"{(result['rss'] - first['rss']) / mib / extra:+.1f} MiB, PSS "
            f"{(result['pss'] - first['pss']) / mib / extra:+.1f} MiB per extra million rows; "
            f"time x{result['wall'] / first['wall']:.2f} for x{rows / first_rows:.0f} rows"
        )
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
