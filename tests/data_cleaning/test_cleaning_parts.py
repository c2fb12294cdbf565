"""A list normalised in parts (by several workers) and finished once equals one run exactly."""

from __future__ import annotations

import csv
import random
import secrets
from pathlib import Path

import pytest

from data_cleaning import CleaningOptions, SuppressionSet, clean_table
from data_cleaning.packed_io import read_packed, write_packed

KEY = secrets.token_bytes(32)


def _messy(path: Path, rows: int) -> list[str]:
    rng = random.Random(7)
    numbers: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone"])
        for i in range(rows):
            draw = rng.random()
            if draw < 0.1 and numbers:
                phone = "+86 " + rng.choice(numbers)  # a duplicate
            elif draw < 0.15:
                phone = rng.choice(["", "n/a", "12345", "138001380001234"])
            else:
                number = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
                numbers.append(number)
                phone = number
                if rng.random() < 0.1:
                    phone += f" / 1{rng.choice('3589')}{rng.randrange(10**9):09d}"
            writer.writerow([f"n{i}", phone])
    return numbers


def _rows(run: object) -> list[tuple[object, ...]]:
    return [
        (
            r.row_number,
            r.status,
            r.reject_reason,
            r.duplicate_of_row,
            r.e164,
            r.region,
            r.time_zones,
            r.carrier,
            r.alternate_phones,
        )
        for chunk in run  # type: ignore[attr-defined]
        for r in chunk
    ]


@pytest.mark.parametrize("per_part", [1, 3])
def test_parts_finished_once_equal_one_run(tmp_path: Path, per_part: int) -> None:
    source = tmp_path / "leads.csv"
    numbers = _messy(source, 6000)
    dnc = SuppressionSet.from_e164([f"+86{n}" for n in numbers[::37]], KEY)
    options = CleaningOptions(chunk_rows=700)
    single = clean_table(source, options, dnc, prior_numbers={f"+86{numbers[5]}"})
    expected = _rows(single)
    files = []
    # Parts of `per_part` chunks, the last open-ended, written and read back as files.
    for part in range(9 // per_part + 1):
        last = part == 9 // per_part
        run = clean_table(source, options, dnc)
        chunks = run.normalise_chunks(part * per_part, None if last else (part + 1) * per_part)
        path = tmp_path / f"part{part}.arrow"
        write_packed(path, chunks, suppression_sets=1)
        files.append(path)
    merged = clean_table(
        source,
        options,
        dnc,
        prior_numbers={f"+86{numbers[5]}"},
        precomputed=(packed for path in files for packed in read_packed(path)),
    )
    assert _rows(merged) == expected
    assert merged.report.to_json_dict() | {"elapsed_s": 0} == (
        single.report.to_json_dict() | {"elapsed_s": 0}
    )
    assert merged.report.cells_split > 0


def test_a_missing_part_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    _messy(source, 3000)
    options = CleaningOptions(chunk_rows=700)
    path = tmp_path / "part0.arrow"
    write_packed(path, clean_table(source, options).normalise_chunks(0, 2), suppression_sets=0)
    with pytest.raises(RuntimeError, match="do not match its rows"):
        clean_table(source, options, precomputed=read_packed(path)).consume()
