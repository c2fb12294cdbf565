"""The pipeline: counting order, dedupe, suppression, prior lists, progress, workers, properties."""

from __future__ import annotations

import csv
import io
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_cleaning import (
    CleaningOptions,
    CleaningProgress,
    NumberType,
    RejectReason,
    RowResult,
    RowStatus,
    SuppressionSet,
    clean_table,
)
from data_cleaning import pipeline as pipeline_module
from data_cleaning.writers import CleanedWriter, clean_to_files

WriteText = Callable[..., Path]
KEY = secrets.token_bytes(32)


def _results(path: Path, **kwargs: object) -> tuple[list[RowResult], object]:
    run = clean_table(path, **kwargs)  # type: ignore[arg-type]
    rows = [row for chunk in run for row in chunk]
    return rows, run.report


def test_each_row_ends_in_exactly_one_place(write_text: WriteText) -> None:
    rows = [
        ["name", "phone"],
        ["a", "138 0013 8000"],  # 2 kept
        ["b", "abc"],  # 3 not_a_number
        ["c", "+86 138-0013-8000"],  # 4 duplicate of 2
        ["d", "13900139000"],  # 5 dnc
        ["e", "0086 139 0013 9000"],  # 6 duplicate of 5 (dedupe counts before dnc)
        ["f", ""],  # 7 empty
        ["g", "800 810 8888"],  # 8 unsupported_type (toll free excluded)
        ["h", "010-6552-9988 转 21"],  # 9 kept, extension
    ]
    path = write_text("leads.csv", rows)
    dnc = SuppressionSet.from_e164(["+8613900139000"], KEY)
    options = CleaningOptions(excluded_types=frozenset({NumberType.TOLL_FREE}), chunk_rows=3)
    results, report = _results(path, options=options, suppression=dnc)
    outcome = {r.row_number: (r.status, r.reject_reason, r.duplicate_of_row) for r in results}
    assert outcome == {
        2: (RowStatus.KEPT, None, None),
        3: (RowStatus.REJECTED, RejectReason.NOT_A_NUMBER, None),
        4: (RowStatus.REJECTED, RejectReason.DUPLICATE, 2),
        5: (RowStatus.REJECTED, RejectReason.DNC, None),
        6: (RowStatus.REJECTED, RejectReason.DUPLICATE, 5),
        7: (RowStatus.REJECTED, RejectReason.EMPTY, None),
        8: (RowStatus.REJECTED, RejectReason.UNSUPPORTED_TYPE, None),
        9: (RowStatus.KEPT, None, None),
    }
    assert report.to_json_dict() | {"elapsed_s": 0} == {
        "rows_in": 8,
        "rows_out": 2,
        "invalid": 3,
        "duplicates": 2,
        "dnc_suppressed": 1,
        "by_reason": {
            "dnc": 1,
            "duplicate": 2,
            "empty": 1,
            "not_a_number": 1,
            "unsupported_type": 1,
        },
        "by_type": {"fixed_line": 1, "mobile": 1},
        "by_region": {"Beijing": 2},
        "by_timezone": {"Asia/Shanghai": 2},
        "multi_number_cells": {"cells_split": 0, "alternates_kept": 0, "alternates_dropped": {}},
        "elapsed_s": 0,
    }
    kept = results[-1]
    assert kept.e164 == "+861065529988"
    assert kept.extension == "21"
    assert kept.original == {"name": "h", "phone": "010-6552-9988 转 21"}
    assert results[2].e164 == "+8613800138000"  # duplicates keep their number


def test_dedupe_against_earlier_lists(write_text: WriteText) -> None:
    path = write_text("leads.csv", [["phone"], ["13800138000"], ["13900139000"], ["138-0013-8000"]])
    results, _ = _results(path, prior_numbers={"+8613800138000"})
    assert [(r.reject_reason, r.duplicate_of_row) for r in results] == [
        (RejectReason.DUPLICATE, None),
        (None, None),
        (RejectReason.DUPLICATE, 2),
    ]
    calls: list[Sequence[str]] = []

    def lookup(numbers: Sequence[str]) -> set[str]:
        calls.append(list(numbers))
        return {n for n in numbers if n.endswith("9000") and n.startswith("+86139")}

    results, _ = _results(path, prior_numbers=lookup)
    assert [r.status for r in results] == [RowStatus.KEPT, RowStatus.REJECTED, RowStatus.REJECTED]
    assert calls == [["+8613800138000", "+8613900139000"]]


def test_progress_is_reported_per_chunk(write_text: WriteText) -> None:
    path = write_text("leads.csv", [["phone"]] + [[f"1380013{i:04d}"] for i in range(250)])
    seen: list[CleaningProgress] = []
    run = clean_table(path, CleaningOptions(chunk_rows=100), progress=seen.append)
    report = run.consume()
    assert [p.rows_done for p in seen] == [100, 200, 250]
    assert seen[-1].fraction == 1.0
    assert seen[-1].rows_total_estimate == 250
    assert report.rows_out == 250


def test_two_workers_give_the_same_results_as_inline(write_text: WriteText) -> None:
    rows = (
        [["phone", "n"]]
        + [
            [f"{['', '+86 ', '0086', 'tel:'][i % 4]}13{i % 7}{(i * 7919) % 10**8:08d}", str(i)]
            for i in range(3000)
        ]
        + [["13000000000", "dup"], ["garbage", "bad"]]
    )
    path = write_text("leads.csv", rows)
    inline, report_inline = _results(path, options=CleaningOptions(workers=0, chunk_rows=500))
    parallel, report_parallel = _results(path, options=CleaningOptions(workers=2, chunk_rows=500))
    assert inline == parallel
    assert report_inline.to_json_dict() | {"elapsed_s": 0} == (  # type: ignore[attr-defined]
        report_parallel.to_json_dict() | {"elapsed_s": 0}  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("queued", [1, 50])
def test_batches_shared_with_a_worker_give_the_inline_results(
    write_text: WriteText, monkeypatch: pytest.MonkeyPatch, queued: int
) -> None:
    # Small batches of several chunks; with 1 queued batch this process normalises many
    # batches itself, with 50 the worker gets them all and this process redoes the last ones.
    monkeypatch.setattr(pipeline_module, "_BATCH_ROWS", 700)
    monkeypatch.setattr(pipeline_module, "_QUEUED_PER_WORKER", queued)
    rows = [["phone", "n"]] + [
        [
            [f"13{i % 9}{(i * 7919) % 10**8:08d}", "+1 201 555 0123", "n/a", "+852 2123 4567"][
                i % 4 if i % 5 == 0 else 0
            ]
            + ("" if i % 7 else " ext 12"),
            str(i),
        ]
        for i in range(6000)
    ]
    rows += [[rows[1 + i * 997][0], "repeat"] for i in range(6)]
    path = write_text("leads.csv", rows)
    dnc = SuppressionSet.from_e164(["+8613500000000", "+12015550123"], KEY)
    inline, report_inline = _results(
        path, options=CleaningOptions(workers=0, chunk_rows=250), suppression=dnc
    )
    shared, report_shared = _results(
        path, options=CleaningOptions(workers=1, chunk_rows=250), suppression=dnc
    )
    assert inline == shared
    assert report_inline.to_json_dict() | {"elapsed_s": 0} == (  # type: ignore[attr-defined]
        report_shared.to_json_dict() | {"elapsed_s": 0}  # type: ignore[attr-defined]
    )
    assert report_inline.dnc_suppressed  # type: ignore[attr-defined]


def test_elapsed_comes_from_the_given_clock(write_text: WriteText) -> None:
    path = write_text("leads.csv", [["phone"], ["13800138000"]])
    ticks = iter([100.0, 102.5])
    report = clean_table(path, clock=lambda: next(ticks)).consume()
    assert report.elapsed_s == 2.5


_CELLS = st.one_of(
    st.sampled_from(
        [
            "13800138000",
            "+86 138 0013 8000",
            "0086-139-0013-9000",
            "86 137 0013 7000",
            "tel:+861065529988",
            "(010) 6552 9988 转 8",
            "１３６００１３６０００",
            "",
            "n/a",
            "12345",
            "+852 2123 4567",
            "800 810 8888",
            "17012345678",
            "=cmd|' /C calc'!A0",
        ]
    ),
    st.text(alphabet="0123456789 +-()", max_size=16),
)
_NAMES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(_NAMES, _CELLS), min_size=1, max_size=40), dnc=st.booleans())
def test_accounting_holds_and_recleaning_changes_nothing(
    tmp_path_factory: object, rows: list[tuple[str, str]], dnc: bool
) -> None:
    directory: Path = tmp_path_factory.mktemp("prop")  # type: ignore[attr-defined]
    source = directory / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone"])
        writer.writerows(rows)
    suppression = SuppressionSet.from_e164(["+8613900139000"] if dnc else [], KEY)
    first = clean_to_files(
        source,
        directory / "c1.csv",
        directory / "r1.csv",
        directory / "p1.json",
        CleaningOptions(phone_column="phone"),
        suppression=suppression,
    ).report
    assert first.rows_in == len(rows)
    assert first.accounting_holds()
    assert sum(first.by_reason.values()) == first.rows_in - first.rows_out
    if first.rows_out == 0:
        return
    second = clean_to_files(
        directory / "c1.csv",
        directory / "c2.csv",
        directory / "r2.csv",
        directory / "p2.json",
        CleaningOptions(phone_column="phone"),
        suppression=suppression,
    ).report
    assert second.accounting_holds()
    assert second.rows_in == second.rows_out == first.rows_out
    assert (directory / "c2.csv").read_bytes() == (directory / "c1.csv").read_bytes()


def test_cleaned_writer_replaces_its_own_columns() -> None:
    from data_cleaning.models import ChunkResult

    columns = ("phone", "phone_e164", "phone_type", "name")
    chunk = ChunkResult(
        columns=columns,
        row_numbers=[2],
        rows=[["13800138000", "old", "old", "王"]],
        statuses=[RowStatus.KEPT],
        reject_reasons=[None],
        duplicate_of_rows=[None],
        e164=["+8613800138000"],
        number_types=[NumberType.MOBILE],
        regions=["China"],
        time_zones=[("Asia/Shanghai",)],
        extensions=[""],
        carriers=["China Mobile"],
        virtual_operator=[False],
    )
    stream = io.StringIO()
    CleanedWriter(stream, columns).write_chunk(chunk)
    lines = stream.getvalue().splitlines()
    assert lines[0] == (
        "phone,name,phone_e164,phone_type,phone_region,phone_timezone,phone_extension,phone_carrier,"
        "phone_alternates"
    )
    assert lines[1] == "13800138000,王,+8613800138000,mobile,China,Asia/Shanghai,,China Mobile,"


def _run_script(script: str, path: Path, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (indented, dedented here) in a fresh interpreter from the project root,
    with ``path`` as its argument; a run that does not end in ``timeout`` s fails the test."""
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script), str(path)],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the interpreter did not exit in {timeout:g} s: {expired.stdout!r}")


def test_worker_pool_ends_under_a_flag_only_sigterm_handler(tmp_path: Path) -> None:
    """A host process whose SIGTERM handler only sets a flag (test runners, servers) must not
    hang the run: workers still left with work are terminated, and die, when the input ends.
    """
    script = """
        import signal, sys
        from data_cleaning import CleaningOptions, clean_table
        from data_cleaning import pipeline

        signal.signal(signal.SIGTERM, lambda *_: None)
        pipeline._BATCH_ROWS = 700
        pipeline._QUEUED_PER_WORKER = 50  # the worker gets every batch; this process redoes some
        path = sys.argv[1]
        with open(path, "w", encoding="utf-8") as out:
            out.write("phone\\n")
            for i in range(20000):
                out.write(f"13{i % 9}{(i * 7919) % 10**8:08d}\\n")
        for _ in range(3):
            report = clean_table(path, options=CleaningOptions(workers=1, chunk_rows=250)).consume()
            assert report.rows_in == 20000, report
        print("done")
    """
    completed = _run_script(script, tmp_path / "leads.csv", timeout=180)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "done"


def test_a_hung_worker_is_given_up_and_the_run_still_cleans_every_row(tmp_path: Path) -> None:
    """A worker that never answers (one forked while a thread of the parent held a lock can
    hang so) must not hang the run: after the stall limit this process cleans its batches and
    every later one, the hung worker is killed, and the result is the single-process one."""
    script = """
        import sys, time
        from data_cleaning import CleaningOptions, clean_table
        from data_cleaning import pipeline

        def hang(phones, sizes):
            time.sleep(3600)

        pipeline._work = hang
        pipeline._WORKER_STALL_S = 1.0
        pipeline._POOL_CLOSE_S = 5.0
        pipeline._BATCH_ROWS = 700
        path = sys.argv[1]
        with open(path, "w", encoding="utf-8") as out:
            out.write("phone\\n")
            for i in range(20000):
                out.write(f"13{i % 9}{(i * 7919) % 10**8:08d}\\n")
        alone = clean_table(path, options=CleaningOptions(workers=0, chunk_rows=250)).consume()
        started = time.monotonic()
        hung = clean_table(path, options=CleaningOptions(workers=1, chunk_rows=250)).consume()
        took = time.monotonic() - started
        assert hung.rows_in == alone.rows_in == 20000, hung
        hung.elapsed_s = alone.elapsed_s = 0.0
        assert hung == alone
        print(f"done {took:.1f}")
    """
    completed = _run_script(script, tmp_path / "leads.csv", timeout=120)
    assert completed.returncode == 0, completed.stderr
    word, took = completed.stdout.split()
    assert word == "done"
    assert float(took) < 30.0  # one stall limit and the pool's close, not an hour


def test_pool_refused_at_its_first_rows_on_a_job_thread_ends(tmp_path: Path) -> None:
    """A list refused at its first rows terminates the pool at once. Run from a job thread (where
    SIGTERM handlers cannot be changed) under a flag-only handler, a worker not yet initialised
    swallowed the SIGTERM and the run hung for ever (seen in the suite, after an XLSX/CSV upload).
    """
    script = """
        import signal, sys, threading
        from data_cleaning import CleaningOptions, clean_table
        import time
        from data_cleaning import pipeline
        from data_cleaning.exceptions import DataCleaningError

        signal.signal(signal.SIGTERM, lambda *_: None)
        original_init = pipeline._init_worker

        def slow_init(*args):  # widens the gap between fork and the reset of SIGTERM
            time.sleep(0.3)
            original_init(*args)

        pipeline._init_worker = slow_init
        path = sys.argv[1]
        with open(path, "w", encoding="utf-8") as out:
            out.write("phone,name\\n13800138000,a,extra\\n")
            for i in range(5000):
                out.write(f"13{i % 9}{(i * 7919) % 10**8:08d},b\\n")
        outcomes = []

        def run():
            for _ in range(5):
                try:
                    clean_table(path, options=CleaningOptions(workers=2)).consume()
                    outcomes.append("cleaned")
                except DataCleaningError:
                    outcomes.append("refused")

        job = threading.Thread(target=run)
        job.start()
        job.join()
        print(",".join(sorted(set(outcomes))), len(outcomes))
    """
    completed = _run_script(script, tmp_path / "ragged.csv", timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "refused 5"


@given(
    chunks=st.lists(
        st.lists(st.integers(1, 2**62), max_size=40).map(sorted), min_size=1, max_size=30
    ),
    size=st.integers(1, 70),
)
@settings(max_examples=200, deadline=None)
def test_seen_numbers_answer_like_a_dict(chunks: list[list[int]], size: int) -> None:
    """The dedupe set (a numpy hash table, tiny here so keys collide, wrap round and it grows)."""
    import numpy as np

    seen = pipeline_module._SeenNumbers(size)
    model: dict[int, int] = {}
    for number, chunk in enumerate(chunks, start=1):
        keys = np.unique(np.array(chunk, dtype=np.int64))
        known, origin = seen.find(keys)
        assert known.tolist() == [int(k) in model for k in keys]
        assert np.where(known, origin, 0).tolist() == [model.get(int(k), 0) for k in keys]
        new = keys[~known]
        seen.add(new, np.full(len(new), number, dtype=np.int64))
        model.update((int(k), number) for k in new)


def test_seen_numbers_keep_rows_past_int32() -> None:
    import numpy as np

    seen = pipeline_module._SeenNumbers(3)
    seen.add(np.array([5, 7], dtype=np.int64), np.array([2, 3], dtype=np.int64))
    seen.add(np.array([9], dtype=np.int64), np.array([2**40], dtype=np.int64))
    known, origin = seen.find(np.array([5, 7, 9, 11], dtype=np.int64))
    assert known.tolist() == [True, True, True, False]
    assert origin.tolist()[:3] == [2, 3, 2**40]


def test_the_dedupe_set_holds_at_most_24_bytes_per_number() -> None:
    """The 10M-row budget: 16 to 24 bytes per kept number at any size, never the 48 of a
    power-of-two table that doubles when half full."""
    import numpy as np

    seen = pipeline_module._SeenNumbers()
    rng = np.random.default_rng(7)
    added = 0
    worst = 0.0
    for _ in range(60):
        keys = np.unique(rng.integers(8613000000000, 8619999999999, 20_000))
        known, _ = seen.find(keys)
        new = keys[~known]
        seen.add(new, np.arange(added, added + len(new), dtype=np.int64))
        added += len(new)
        held = seen._keys.nbytes + seen._rows.nbytes
        if added > 100_000:  # past the first, fixed-size table
            worst = max(worst, held / added)
    assert added > 1_000_000
    assert worst < 24.01, worst
    known, _origin = seen.find(keys)
    assert known.all()


def test_a_run_left_open_does_not_hang_the_interpreter_at_exit(tmp_path: Path) -> None:
    """A run with a worker pool, left after its first chunk and never closed, is finalised at
    interpreter exit, when no thread can start: closing its pool must not wait for one (it
    used to hang for ever in Thread.start)."""
    script = """
        import sys
        from data_cleaning import CleaningOptions, clean_table

        path = sys.argv[1]
        with open(path, "w", encoding="utf-8") as out:
            out.write("name,phone\\n")
            for i in range(120_000):
                out.write(f"n{i},1380013{i % 10000:04d}\\n")
        run = clean_table(path, options=CleaningOptions(workers=1))
        for chunk in run:
            break
        print("left", len(chunk.row_numbers), flush=True)
    """
    completed = _run_script(script, tmp_path / "leads.csv", timeout=90)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("left ")


def test_the_dedupe_set_is_sized_for_the_list_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Growing rehashes every number held; a CSV's size tells about how many rows it has, so
    the set is made big enough at once, and the outcome is the one of a set that grows."""
    import random

    rng = random.Random(5)
    path = tmp_path / "leads.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("name,phone,city\n")
        for i in range(60_000):
            phone = f"13{rng.randrange(10**9):09d}" if i % 10 else "13800138000"
            out.write(f"王{i},{phone},广州\n")
    grown: list[int] = []
    original = pipeline_module._SeenNumbers._grow

    def counted(self: object, wanted: int) -> None:
        grown.append(wanted)
        original(self, wanted)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline_module._SeenNumbers, "_grow", counted)
    sized = clean_table(path, CleaningOptions(workers=0)).consume()
    assert grown == []
    monkeypatch.setattr(
        pipeline_module._SeenNumbers, "for_numbers", classmethod(lambda cls, n: cls(16))
    )
    growing = clean_table(path, CleaningOptions(workers=0)).consume()
    assert grown  # the small set had to grow
    assert sized.to_json_dict() | {"elapsed_s": 0} == growing.to_json_dict() | {"elapsed_s": 0}
    assert sized.duplicates >= 6_000
