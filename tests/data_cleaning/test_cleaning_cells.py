"""Phone cells holding several numbers: the split rule, the lead's number, alternates, report."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_cleaning import (
    CleaningOptions,
    PhoneNormaliser,
    RejectReason,
    RowResult,
    RowStatus,
    SuppressionSet,
    clean_table,
)
from data_cleaning.cells import MIN_PART_DIGITS, SEPARATORS, split_cell
from data_cleaning.writers import clean_to_files

KEY = secrets.token_bytes(32)
_PREFIXES = ("138", "139", "137", "135", "150", "186", "188")
_FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


def _write(tmp_path: Path, cells: Sequence[str], name: str = "leads.csv") -> Path:
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone"])
        writer.writerows([f"n{i}", cell] for i, cell in enumerate(cells))
    return path


def _clean(
    path: Path, suppression: SuppressionSet | None = None, **options: object
) -> tuple[list[RowResult], object]:
    run = clean_table(path, CleaningOptions(phone_column="phone", **options), suppression)  # type: ignore[arg-type]
    return [row for chunk in run for row in chunk], run.report


# -- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", list(SEPARATORS))
def test_every_separator_splits(separator: str) -> None:
    assert split_cell(f"138 0013 8000 {separator} 139 1234 5678") == [
        "138 0013 8000",
        "139 1234 5678",
    ]


@pytest.mark.parametrize(
    "cell",
    [
        "138 0013 8000",
        "138,0013,8000",  # parts of 3 and 4 digits: pieces of one number
        "138/0013/8000",
        "+86/13800138000",
        "13800138000 ;ext=12",
        "010-6552-9988, 转 21",
        "13800138000/",
        "n/a",
        "",
    ],
)
def test_one_number_is_kept_whole(cell: str) -> None:
    assert split_cell(cell) is None


def test_parts_without_digits_are_notes() -> None:
    assert split_cell("13800138000 / 无 / 13912345678") == ["13800138000", "13912345678"]
    assert split_cell("13800138000 / 无") is None


_mobile = st.tuples(st.sampled_from(_PREFIXES), st.integers(0, 10**8 - 1)).map(
    lambda t: f"{t[0]}{t[1]:08d}"
)


def _shape(national: str, shape: int) -> str:
    return [
        national,
        f"+86 {national[:3]} {national[3:7]} {national[7:]}",
        "0086" + national,
        "86-" + national,
        f"{national[:3]}-{national[3:7]}-{national[7:]}",
        national.translate(_FULL_WIDTH),
        f"(+86) {national}",
        f"tel:+86-{national}",
    ][shape]


_formatted = st.tuples(_mobile, st.integers(0, 7)).map(lambda t: (t[0], _shape(*t)))
_separator = st.tuples(
    st.sampled_from(list(SEPARATORS)), st.sampled_from(["", " ", "  "]), st.sampled_from(["", " "])
).map(lambda t: f"{t[2]}{t[0]}{t[1]}")


@given(
    number=_formatted,
    cuts=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(list(SEPARATORS))), max_size=3),
)
@settings(max_examples=300, deadline=None)
def test_no_cut_of_one_number_leaves_two_parts_long_enough(
    number: tuple[str, str], cuts: list[tuple[int, str]]
) -> None:
    """Separators inside one 11-digit number never give two parts of 7+ digits."""
    text = number[1]
    for at, separator in cuts:
        at = min(at, len(text))
        text = text[:at] + separator + text[at:]
    parts = split_cell(text)
    if parts is not None:
        # Only the country code may make a second part long enough ("0086138/00138000"); the
        # pipeline then keeps the cell whole because the whole is a valid number.
        assert sum(ch.isdigit() for ch in text) >= 2 * MIN_PART_DIGITS


# -- through the pipeline -------------------------------------------------------------------


@given(
    cells=st.lists(
        st.tuples(
            _formatted,
            st.lists(st.tuples(st.integers(0, 30), st.sampled_from(list(SEPARATORS))), max_size=2),
        ),
        min_size=1,
        max_size=12,
    )
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_valid_cell_is_never_split(
    tmp_path: Path, cells: list[tuple[tuple[str, str], list[tuple[int, str]]]]
) -> None:
    """Whatever separators a cell holds, a cell that is one valid number stays that number."""
    normaliser = PhoneNormaliser("CN")
    texts = []
    for (_, text), cuts in cells:
        for at, separator in cuts:
            at = min(at, len(text))
            text = text[:at] + separator + text[at:]
        texts.append(text)
    results, _ = _clean(_write(tmp_path, texts))
    seen: set[str] = set()
    for text, row in zip(texts, results, strict=True):
        whole = normaliser.normalise(text)
        if whole.reject_reason is None and whole.e164 is not None and len(whole.extension) < 7:
            assert row.e164 == whole.e164, text
            assert row.alternate_phones == (), text
            assert row.status is (RowStatus.REJECTED if whole.e164 in seen else RowStatus.KEPT)
            seen.add(whole.e164)


@given(
    rows=st.lists(
        st.tuples(
            st.lists(_formatted, min_size=2, max_size=4, unique_by=lambda n: n[0]), _separator
        ),
        min_size=1,
        max_size=10,
    ),
    dnc_picks=st.sets(st.integers(0, 40), max_size=4),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_several_numbers_give_the_lead_and_alternates(
    tmp_path: Path, rows: list[tuple[list[tuple[str, str]], str]], dnc_picks: set[int]
) -> None:
    """First number is the lead's; the others are its alternates unless on a do-not-call list."""
    texts = [separator.join(text for _, text in numbers) for numbers, separator in rows]
    flat = [f"+86{national}" for numbers, _ in rows for national, _ in numbers]
    dnc = {flat[k] for k in dnc_picks if k < len(flat)}
    results, report = _clean(_write(tmp_path, texts), SuppressionSet.from_e164(dnc, KEY))
    leads: dict[str, int] = {}
    kept_alternates = dropped_dnc = row_rejected = 0
    for (numbers, _), row in zip(rows, results, strict=True):
        e164s = [f"+86{national}" for national, _ in numbers]
        assert row.e164 == e164s[0]
        expected = tuple(n for n in e164s[1:] if n not in dnc)
        assert row.alternate_phones == expected
        dropped_dnc += len(e164s) - 1 - len(expected)
        if e164s[0] in leads:
            assert (row.reject_reason, row.duplicate_of_row) == (
                RejectReason.DUPLICATE,
                leads[e164s[0]],
            )
            row_rejected += len(expected)
        elif e164s[0] in dnc:
            assert row.reject_reason is RejectReason.DNC
            row_rejected += len(expected)
        else:
            assert row.status is RowStatus.KEPT
            kept_alternates += len(expected)
        leads.setdefault(e164s[0], row.row_number)
    summary = report.to_json_dict()["multi_number_cells"]  # type: ignore[attr-defined]
    assert summary["cells_split"] == len(rows)
    assert summary["alternates_kept"] == kept_alternates
    assert summary["alternates_dropped"].get("dnc", 0) == dropped_dnc
    assert summary["alternates_dropped"].get("row_rejected", 0) == row_rejected
    assert report.accounting_holds()  # type: ignore[attr-defined]


def test_invalid_parts_and_repeats_are_dropped_with_their_reason(tmp_path: Path) -> None:
    cells = [
        "1380013 / 13912345678 / 13912345678 / 13800138000",  # invalid first, then a repeat
        "13700137000、13700137000",  # the same number twice
        "12345678901 或 99999999999",  # no valid part: kept whole, rejected as today
    ]
    results, report = _clean(_write(tmp_path, cells))
    assert [(r.e164, r.alternate_phones) for r in results] == [
        ("+8613912345678", ("+8613800138000",)),
        ("+8613700137000", ()),
        (None, ()),
    ]
    assert results[2].reject_reason is RejectReason.NOT_A_NUMBER
    assert report.to_json_dict()["multi_number_cells"] == {  # type: ignore[attr-defined]
        "cells_split": 2,
        "alternates_kept": 1,
        "alternates_dropped": {"duplicate": 2, "invalid_for_region": 1},
    }


def test_cleaned_csv_has_the_alternates_column(tmp_path: Path) -> None:
    source = _write(tmp_path, ["138 0013 8000 / 139 1234 5678 ／ 137 0013 7000", "13600136000"])
    outputs = [tmp_path / name for name in ("c.csv", "r.csv", "report.json")]
    clean_to_files(source, *outputs, CleaningOptions(phone_column="phone"))
    rows = list(csv.DictReader(io.StringIO(outputs[0].read_text(encoding="utf-8"))))
    assert [(r["phone_e164"], r["phone_alternates"]) for r in rows] == [
        ("+8613800138000", "+8613912345678|+8613700137000"),
        ("+8613600136000", ""),
    ]


def test_workers_and_chunks_do_not_change_the_result(tmp_path: Path) -> None:
    cells = [
        f"1{38 + i % 3}{i:08d} / 1{50 + i % 5}{i:08d}" if i % 3 else f"1{86}{i:08d}"
        for i in range(3000)
    ]
    path = _write(tmp_path, cells)
    inline, inline_report = _clean(path, workers=0, chunk_rows=7000)
    parallel, parallel_report = _clean(path, workers=1, chunk_rows=333)
    assert inline == parallel
    assert inline_report.to_json_dict() | {"elapsed_s": 0} == (  # type: ignore[attr-defined]
        parallel_report.to_json_dict() | {"elapsed_s": 0}  # type: ignore[attr-defined]
    )
    assert inline_report.cells_split > 1000  # type: ignore[attr-defined]
