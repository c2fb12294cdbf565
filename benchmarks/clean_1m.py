"""Benchmark: clean a generated 1,000,000-row messy lead list end to end, against a naive baseline.

Generates a CSV (mixed formats: +86, 0086, 86-, tel: URIs, full-width digits, spaces, dashes,
brackets, Chinese extension markers; ~10 % duplicates, ~5 % invalid) and a 50,000-number
do-not-call list, then:

1. runs the full pipeline (read, normalise, dedupe, suppress, enrich, write CLEANED/REJECTS/
   REPORT) in a child process, sampling the resident memory of that process and its workers;
2. runs the normalise-only baseline in this process: a per-row ``phonenumbers.parse`` /
   ``is_valid_number`` / ``format_number`` loop over the same cells (no reading, dedupe,
   enrichment or writing: a floor for any per-row cleaner);
3. runs ``pilotdial clean`` end to end (a fresh interpreter: imports, do-not-call file, read,
   clean, write) and checks it writes the same CLEANED.csv, REJECTS.csv and counts as 1.;
4. checks the pipeline and the baseline agree on validity and E.164 for every row, and prints
   rows/s, CPU, peak memory and the speed ratios (all from this one run);
5. with ``--sizes 5000000,10000000``: generates and cleans bigger lists with ``pilotdial clean``
   and prints how time and peak memory grow with the list (optional: minutes of CPU);
6. runs the naive per-row *cleaner* (:func:`naive_clean`: the whole job, one row at a time,
   as the issue measured it) and checks it keeps exactly the numbers the CLI kept.

Targets on the 2-core reference machine: the CLI end to end <= 3 s for 1M rows and >= 12x the
naive cleaner; 10M rows <= 30 s and <= 1 GB peak; zero mismatches. Smoke run:
``python benchmarks/clean_1m.py --rows 20000``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_cleaning.models import ChunkResult, CleaningOptions
from data_cleaning.normalise import split_extension

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
_CITIES = ["北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安", "南京", "重庆"]
_MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "170",
    "171",
    "172",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "195",
    "198",
    "199",
]
_AREA_CODES = [
    "10",
    "20",
    "21",
    "22",
    "23",
    "24",
    "25",
    "27",
    "28",
    "29",
    "311",
    "351",
    "371",
    "431",
    "451",
    "531",
    "571",
    "591",
    "731",
    "755",
    "871",
    "898",
]
_DNC_NUMBERS = 50_000
_FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


def _national(rng: random.Random) -> str:
    if rng.random() < 0.85:
        return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    area = rng.choice(_AREA_CODES)
    digits = 8
    return area + str(rng.randrange(2, 9)) + f"{rng.randrange(10 ** (digits - 1)):0{digits - 1}d}"


def _format(national: str, rng: random.Random) -> str:
    mobile = national[0] == "1" and len(national) == 11
    shape = rng.randrange(11)
    if shape == 0:
        return national if mobile else "0" + national
    if shape == 1:
        return f"+86 {national[:3]} {national[3:7]} {national[7:]}"
    if shape == 2:
        return "0086" + national
    if shape == 3:
        return "86-" + national
    if shape == 4:
        return f"tel:+86-{national}"
    if shape == 5:
        return (national if mobile else "0" + national).translate(_FULL_WIDTH)
    if shape == 6:
        text = national if mobile else "0" + national
        return f"{text[:3]}-{text[3:7]}-{text[7:]}"
    if shape == 7:
        return f"({national[:3]}) {national[3:7]} {national[7:]}" if not mobile else national
    if shape == 8:
        return f"{national} {rng.choice(['转', '轉', '分机', '分機'])} {rng.randrange(10, 9999)}"
    if shape == 9:
        return f"+86{national} ext {rng.randrange(10, 999)}"
    return f" {national[:3]} {national[3:]} "


def _invalid(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            " ",
            "n/a",
            "无",
            "unknown",
            "12345",
            "1380013800",
            "138001380001234",
            f"99{rng.randrange(10**9):09d}",
            "+999 123 4567",
            f"1{rng.randrange(10**6)}",
            "tel:",
            "0000000000",
            f"{rng.randrange(10**13):013d}",
        ]
    )


def generate(path: Path, dnc_path: Path, rows: int, seed: int) -> None:
    """Write the messy list and the do-not-call list."""
    rng = random.Random(seed)
    numbers: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["姓名", "手机", "城市", "备注"])
        for i in range(rows):
            draw = rng.random()
            if draw < 0.05:
                phone = _invalid(rng)
            elif draw < 0.15 and numbers:
                phone = _format(rng.choice(numbers), rng)
            else:
                national = _national(rng)
                numbers.append(national)
                phone = _format(national, rng)
            name = (
                rng.choice(_SURNAMES) + rng.choice(_GIVEN) + (rng.choice(_GIVEN) if i % 2 else "")
            )
            note = "" if i % 7 else 'VIP, "回访"\n下周'
            writer.writerow([name, phone, rng.choice(_CITIES), note])
    # 50,000 distinct valid numbers of the list for the full 1M rows (scaled for smoke runs);
    # some generated fixed-line numbers are not valid, so draw until there are enough.
    distinct = sorted(set(numbers))
    dnc_size = min(len(distinct), max(1, round(_DNC_NUMBERS * rows / 1_000_000)))
    chosen: list[str] = []
    for national in rng.sample(distinct, len(distinct)):
        if len(chosen) >= dnc_size:
            break
        if phonenumbers.is_valid_number(phonenumbers.parse("+86" + national)):
            chosen.append(national)
    with dnc_path.open("w", encoding="utf-8", newline="") as handle:
        for national in chosen:
            handle.write(_format(national, rng).replace(" ext ", ";ext=") + "\n")


def _tree_rss_bytes(pid: int) -> int:
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pipeline's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_pipeline(args: argparse.Namespace) -> None:
    """Child process: the full pipeline; writes timings and per-row E.164 numbers."""
    import secrets

    from data_cleaning.pipeline import ChunkColumns
    from data_cleaning.suppression import load_dnc_file
    from data_cleaning.writers import clean_to_files

    work = Path(args.work)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_bytes(os.getpid()))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    e164 = np.zeros(args.rows + 2, dtype=np.int64)
    dnc = load_dnc_file(work / "dnc.txt", secrets.token_bytes(32))

    def collect(chunk: ChunkResult) -> None:
        # Every row with an E.164 number (kept, duplicate or on a do-not-call list), column-wise:
        # a Python step per row here would be timed as if it were the pipeline's.
        source = chunk.packed_source()
        if isinstance(source, ChunkColumns):
            values = source.packed.e164
        else:
            values = pa.array(chunk.e164, pa.string())
        digits = pc.utf8_slice_codeunits(values, 1)
        numbers = pc.cast(digits, pa.int64()).fill_null(0).to_numpy()
        e164[np.asarray(chunk.row_numbers, dtype=np.int64)] = numbers

    options = CleaningOptions(workers=args.workers)
    run = clean_to_files(
        work / "leads.csv",
        work / "CLEANED.csv",
        work / "REJECTS.csv",
        work / "REPORT.json",
        options,
        dnc.suppression,
        on_chunk=collect,
    )
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    stop.set()
    sampler.join()
    np.save(work / "pipeline_e164.npy", e164)
    (work / "pipeline.json").write_text(
        json.dumps(
            {
                "elapsed_s": elapsed,
                "cpu_s": cpu,
                "peak_rss_bytes": peak,
                "report": run.report.to_json_dict(),
                "dnc_loaded": dnc.accepted,
            }
        )
    )


def run_cli(work: Path, leads: Path, dnc: Path, tag: str) -> dict[str, float]:
    """``pilotdial clean`` in a fresh interpreter: wall and CPU seconds, peak RSS of its tree."""
    command = [sys.executable, "-m", "core.cli", "clean", str(leads), "--dnc", str(dnc)]
    command += ["--out", str(work / f"{tag}_CLEANED.csv"), "--rejects"]
    command += [str(work / f"{tag}_REJECTS.csv"), "--report", str(work / f"{tag}_REPORT.json")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parent.parent, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss_bytes(process.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert process.stderr is not None
    if process.returncode:
        sys.exit(f"pilotdial clean failed: {process.stderr.read()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": float(peak)}


def naive_clean(work: Path) -> dict[str, Any]:
    """The naive per-row cleaner: the job ``pilotdial clean`` does, one row at a time.

    Reads the list with the :mod:`csv` module; per row one ``phonenumbers`` call chain
    (parse, validate, E.164), a dict for duplicates and a set of the do-not-call numbers
    (parsed the same way), then for each kept number its type, region, time zones and carrier
    from ``phonenumbers``' own geocoder, timezone and carrier modules; writes CLEANED and
    REJECTS with the :mod:`csv` module. This is the program a careful engineer writes first,
    and what the issue's "naive per-row phonenumbers cleaner" (~50 s for ~1M rows) measured.
    """
    from phonenumbers import carrier, geocoder, timezone

    e164_format = phonenumbers.PhoneNumberFormat.E164

    def normalise(cell: str) -> tuple[Any, str | None, str]:
        text, extension = split_extension(cell)
        try:
            parsed = phonenumbers.parse(text, "CN")
        except phonenumbers.NumberParseException:
            return None, None, extension
        if not phonenumbers.is_valid_number(parsed):
            return None, None, extension
        return parsed, phonenumbers.format_number(parsed, e164_format), extension

    started = time.perf_counter()
    cpu_started = time.process_time()
    blocked: set[str] = set()
    with (work / "dnc.txt").open(encoding="utf-8") as handle:
        for line in handle:
            _, e164, _ = normalise(line.strip())
            if e164 is not None:
                blocked.add(e164)
    seen: dict[str, int] = {}
    counts = {"kept": 0, "invalid": 0, "duplicates": 0, "dnc": 0}
    kept: list[int] = []
    with (
        (work / "leads.csv").open(encoding="utf-8", newline="") as source,
        (work / "naive_CLEANED.csv").open("w", encoding="utf-8", newline="") as cleaned,
        (work / "naive_REJECTS.csv").open("w", encoding="utf-8", newline="") as rejects,
    ):
        reader = csv.reader(source)
        kept_writer, reject_writer = csv.writer(cleaned), csv.writer(rejects)
        header = next(reader)
        kept_writer.writerow([*header, "phone_e164", "phone_type", "phone_region"])
        reject_writer.writerow([*header, "reject_reason", "duplicate_of_row", "source_row"])
        for number, row in enumerate(reader, start=2):
            parsed, e164, extension = normalise(row[1])
            if e164 is None:
                counts["invalid"] += 1
                reject_writer.writerow([*row, "invalid", "", number])
                continue
            first = seen.get(e164)
            if first is not None:
                counts["duplicates"] += 1
                reject_writer.writerow([*row, "duplicate", first, number])
                continue
            seen[e164] = number
            if e164 in blocked:
                counts["dnc"] += 1
                reject_writer.writerow([*row, "dnc", "", number])
                continue
            counts["kept"] += 1
            kept.append(int(e164[1:]))
            kept_writer.writerow(
                [
                    *row,
                    e164,
                    phonenumbers.number_type(parsed),
                    geocoder.description_for_number(parsed, "en"),
                    "|".join(timezone.time_zones_for_number(parsed)),
                    extension,
                    carrier.name_for_number(parsed, "en"),
                ]
            )
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu_started,
        "counts": counts,
        "kept": np.sort(np.array(kept, dtype=np.int64)),
    }


def _kept_numbers(cleaned: Path) -> npt.NDArray[np.int64]:
    """The sorted E.164 digits of a CLEANED.csv's ``phone_e164`` column."""
    with cleaned.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        column = next(reader).index("phone_e164")
        return np.sort(np.array([int(row[column][1:]) for row in reader], dtype=np.int64))


def _same_file(a: Path, b: Path) -> bool:
    with a.open("rb") as left, b.open("rb") as right:
        while True:
            x, y = left.read(1 << 20), right.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def scale(sizes: list[int], seed: int, base: Path) -> None:
    """Clean bigger generated lists with the CLI; print time and memory growth."""
    first: dict[str, float] | None = None
    for rows in sizes:
        with tempfile.TemporaryDirectory(dir=base) as temp:
            work = Path(temp)
            t0 = time.perf_counter()
            generate(work / "leads.csv", work / "dnc.txt", rows, seed)
            made = time.perf_counter() - t0
            result = run_cli(work, work / "leads.csv", work / "dnc.txt", "cli")
            report = json.loads((work / "cli_REPORT.json").read_text())
        first = first or {**result, "rows": float(rows)}
        growth = result["peak_rss_bytes"] / first["peak_rss_bytes"]
        print(
            f"scale    : {rows:>11,} rows (made in {made:.0f} s) cli {result['wall_s']:6.2f} s "
            f"wall, {result['cpu_s']:6.2f} s cpu, peak {result['peak_rss_bytes'] / 2**20:,.0f} MiB "
            f"(x{growth:.2f} for x{rows / first['rows']:.0f} rows), kept {report['rows_out']:,}"
        )


def main() -> None:
    """Generate, run both, compare, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--work", help="keep the files in this directory")
    parser.add_argument(
        "--sizes",
        default="",
        help="comma-separated bigger row counts to clean with the CLI after the main run "
        "(e.g. 5000000,10000000: minutes of CPU; the machine may be shared)",
    )
    parser.add_argument("--pipeline-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline_child:
        run_pipeline(args)
        return
    with tempfile.TemporaryDirectory() as temp:
        work = Path(args.work or temp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate(work / "leads.csv", work / "dnc.txt", args.rows, args.seed)
        print(
            f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s "
            f"({(work / 'leads.csv').stat().st_size / 2**20:.1f} MiB)"
        )
        loads_before = os.getloadavg()
        command = [
            sys.executable,
            __file__,
            "--pipeline-child",
            "--rows",
            str(args.rows),
            "--work",
            str(work),
        ]
        if args.workers is not None:
            command += ["--workers", str(args.workers)]
        subprocess.run(command, check=True)
        result = json.loads((work / "pipeline.json").read_text())
        pipeline_e164 = np.load(work / "pipeline_e164.npy")
        cli = run_cli(work, work / "leads.csv", work / "dnc.txt", "cli")
        cli_report = json.loads((work / "cli_REPORT.json").read_text())
        same_outputs = _same_file(work / "CLEANED.csv", work / "cli_CLEANED.csv") and _same_file(
            work / "REJECTS.csv", work / "cli_REJECTS.csv"
        )
        same_counts = {k: v for k, v in cli_report.items() if k != "elapsed_s"} == {
            k: v for k, v in result["report"].items() if k != "elapsed_s"
        }

        # Naive baseline: one phonenumbers call chain per row, same cells, same region.
        baseline_started = time.perf_counter()
        baseline_cpu_started = time.process_time()
        mismatches = 0
        examples: list[str] = []
        with (work / "leads.csv").open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for number, row in enumerate(reader, start=2):
                text, _ = split_extension(row[1])
                try:
                    parsed = phonenumbers.parse(text, "CN")
                    valid = phonenumbers.is_valid_number(parsed)
                    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                except phonenumbers.NumberParseException:
                    valid, e164 = False, ""
                expected = int(e164[1:]) if valid else 0
                if expected != int(pipeline_e164[number]):
                    mismatches += 1
                    if len(examples) < 5:
                        examples.append(
                            f"row {number}: {row[1]!r} baseline={e164 if valid else '-'}"
                            f" pipeline={pipeline_e164[number]}"
                        )
        baseline = time.perf_counter() - baseline_started
        baseline_cpu = time.process_time() - baseline_cpu_started
        naive = naive_clean(work)
        same_kept = bool(np.array_equal(naive["kept"], _kept_numbers(work / "cli_CLEANED.csv")))
        loads_after = os.getloadavg()

    elapsed = result["elapsed_s"]
    report = result["report"]
    rows = args.rows
    print(
        f"pipeline : {elapsed:6.2f} s  {rows / elapsed:12,.0f} rows/s  "
        f"peak RSS (process tree) {result['peak_rss_bytes'] / 2**20:,.0f} MiB"
    )
    print(
        f"baseline : {baseline:6.2f} s  {rows / baseline:12,.0f} rows/s  (normalise only, 1 core)"
    )
    print(
        f"cli      : {cli['wall_s']:6.2f} s  {rows / cli['wall_s']:12,.0f} rows/s  "
        f"peak RSS (process tree) {cli['peak_rss_bytes'] / 2**20:,.0f} MiB, "
        f"{cli['cpu_s']:.2f} s cpu (pilotdial clean end to end, fresh interpreter)"
    )
    print(f"ratio    : {baseline / elapsed:6.2f}x   mismatches: {mismatches}")
    print(
        f"cli ratio: {baseline / cli['wall_s']:6.2f}x baseline, cpu ratio "
        f"{baseline_cpu / cli['cpu_s']:.2f}x; same CLEANED/REJECTS as the pipeline: "
        f"{same_outputs}; same counts: {same_counts}"
    )
    counts = naive["counts"]
    print(
        f"naive    : {naive['wall_s']:6.2f} s  {rows / naive['wall_s']:12,.0f} rows/s  (the whole "
        f"job one row at a time: read, normalise, dedupe, suppress, enrich, write; 1 core)"
    )
    same_counts_naive = (counts["kept"], counts["duplicates"], counts["dnc"]) == (
        cli_report["rows_out"],
        cli_report["duplicates"],
        cli_report["dnc_suppressed"],
    )
    print(
        f"cli ratio: {naive['wall_s'] / cli['wall_s']:6.2f}x the naive cleaner (target >= 12x), "
        f"cpu ratio {naive['cpu_s'] / cli['cpu_s']:.2f}x; same kept numbers: {same_kept}; "
        f"same kept/duplicate/do-not-call counts: {same_counts_naive}"
    )
    pipeline_cpu = result["cpu_s"]
    print(
        f"cpu      : pipeline {pipeline_cpu / rows * 1e6:.1f} us/row (all processes), "
        f"baseline {baseline_cpu / rows * 1e6:.1f} us/row, cpu ratio "
        f"{baseline_cpu / pipeline_cpu:.2f}x"
    )
    for example in examples:
        print("  mismatch", example)
    print(
        f"report   : rows_in={report['rows_in']:,} rows_out={report['rows_out']:,} "
        f"invalid={report['invalid']:,} duplicates={report['duplicates']:,} "
        f"dnc_suppressed={report['dnc_suppressed']:,} (dnc list {result['dnc_loaded']:,})"
    )
    print(
        f"machine  : {os.cpu_count()} cores, load average before {loads_before[0]:.2f}, "
        f"after {loads_after[0]:.2f}"
    )
    if args.sizes:
        scale([int(n) for n in args.sizes.split(",") if n], args.seed, Path(args.work or "/tmp"))
    if mismatches or not same_outputs or not same_counts or not same_kept or not same_counts_naive:
        sys.exit(1)


if __name__ == "__main__":
    main()
