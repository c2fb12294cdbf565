"""Keyed-hash suppression sets, masking, DNC files, and CSV formula neutralisation."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_cleaning import (
    SuppressionError,
    SuppressionSet,
    hash_e164,
    load_dnc_file,
    mask_e164,
    neutralise_cell,
    neutralise_row,
    suppression_entry,
)
from data_cleaning import readers as readers_module
from data_cleaning import suppression as suppression_module
from data_cleaning.models import RejectReason

KEY = b"k" * 32
WriteText = Callable[..., Path]


def test_hash_is_keyed_hmac_sha256_of_the_e164_number() -> None:
    expected = hmac.new(KEY, b"+8613800138000", hashlib.sha256).hexdigest()
    assert hash_e164("+8613800138000", KEY) == expected
    assert hash_e164("+8613800138000", b"j" * 32) != expected
    assert expected != hashlib.sha256(b"+8613800138000").hexdigest()


def test_set_from_numbers_and_from_stored_hashes_agree() -> None:
    numbers = ["+8613800138000", "+861065529988"]
    plain = SuppressionSet.from_e164(numbers, KEY)
    stored = [suppression_entry(n, KEY).e164_hash for n in numbers]
    restored = SuppressionSet.from_hashes(stored, KEY)
    probe = ["+8613800138000", "+8613900139000", "+861065529988"]
    assert plain.contains_many(probe) == restored.contains_many(probe) == [True, False, True]
    assert "+8613800138000" in restored
    assert sorted(plain.hex_hashes()) == sorted(stored)
    restored.discard("+8613800138000")
    assert "+8613800138000" not in restored
    assert len(restored) == 1
    # Hashes are useless under another key.
    assert SuppressionSet.from_hashes(stored, b"x" * 32).contains_many(probe) == [False] * 3


def test_bad_keys_hashes_and_numbers_are_refused() -> None:
    with pytest.raises(SuppressionError, match="at least 16"):
        SuppressionSet(b"short")
    with pytest.raises(SuppressionError, match="64 hex"):
        SuppressionSet.from_hashes(["abcd"], KEY)
    with pytest.raises(SuppressionError, match=r"E\.164"):
        SuppressionSet(KEY).add("138 0013 8000")
    with pytest.raises(SuppressionError, match="different keys"):
        SuppressionSet(KEY).update(SuppressionSet(b"z" * 32))


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+8613812345678", "+86138****5678"),
        ("+861065529988", "+86106***9988"),
        ("+16502530000", "+1650***0000"),
        ("+85221234567", "+85221**4567"),
    ],
)
def test_masks(e164: str, masked: str) -> None:
    assert mask_e164(e164) == masked
    assert suppression_entry(e164, KEY).masked == masked


def test_dnc_file_one_number_per_line(tmp_path: Path) -> None:
    path = tmp_path / "dnc.txt"
    path.write_text("138 0013 8000\n+86-139-0013-9000\n\nnot a number\n０１０６５５２９９８８\n")
    result = load_dnc_file(path, KEY)
    assert result.accepted == 3
    assert result.rejected == [(4, "not a number", RejectReason.NOT_A_NUMBER)]
    assert result.suppression.contains_many(
        ["+8613800138000", "+8613900139000", "+861065529988", "+8613700137000"]
    ) == [True, True, True, False]


def test_dnc_file_read_in_many_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny parse blocks and batches: batches made of several blocks, and a ragged line that
    # sends the rest of the file to the csv module.
    monkeypatch.setattr(suppression_module, "_DNC_BATCH", 4)
    monkeypatch.setattr(readers_module, "_ARROW_BLOCK_BYTES", 40)
    lines = [f"1380013{i:04d}" for i in range(30)]
    lines[11] = "not a number"
    lines[23] = "13800130023,extra"
    path = tmp_path / "dnc.txt"
    path.write_text("\n".join(lines) + "\n")
    result = load_dnc_file(path, KEY)
    assert result.accepted == 29
    assert result.rejected == [(12, "not a number", RejectReason.NOT_A_NUMBER)]
    numbers = [f"+861380013{i:04d}" for i in range(30)]
    assert result.suppression.contains_many(numbers) == [i != 11 for i in range(30)]


def test_adding_many_numbers_is_adding_each(tmp_path: Path) -> None:
    numbers = ["+8613800138000", "+14155550123", "+442071838750"]
    many = SuppressionSet(KEY)
    many.add_many(numbers)
    assert sorted(many.hex_hashes()) == sorted(SuppressionSet.from_e164(numbers, KEY).hex_hashes())
    for bad in (["+1", "138 0013 8000"], ["+1\n+2"], ["+"], ["+８６"]):
        with pytest.raises(SuppressionError, match=r"E\.164"):
            SuppressionSet(KEY).add_many(bad)


def test_dnc_file_csv_with_phone_column(write_text: WriteText) -> None:
    path = write_text(
        "dnc.csv", [["姓名", "手机", "原因"], ["王", "0086 138 0013 8000", "投诉"]], encoding="gbk"
    )
    result = load_dnc_file(path, KEY)
    assert result.accepted == 1
    assert "+8613800138000" in result.suppression


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+8613800138000", "'+8613800138000"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("王芳", "王芳"),
        ("", ""),
    ],
)
def test_formula_injection_is_neutralised(cell: str, safe: str) -> None:
    assert neutralise_cell(cell) == safe
    assert neutralise_row([cell, "ok"]) == [safe, "ok"]


def test_an_in_memory_number_set_suppresses_exactly_what_the_hashed_set_does(
    tmp_path: Path,
) -> None:
    import secrets

    from data_cleaning import clean_table
    from data_cleaning.suppression import NumberSet, load_dnc_file

    dnc = tmp_path / "dnc.txt"
    dnc.write_text("+86 138 0013 8000\n13912345678\nnot a number\n+44 20 7946 0958\n")
    leads = tmp_path / "leads.csv"
    phones = ["13800138000", "139-1234-5678", "13600001111", "020 7946 0958", "+442079460958"]
    leads.write_text("phone\n" + "\n".join(phones) + "\n")
    hashed = load_dnc_file(dnc, secrets.token_bytes(32))
    plain = load_dnc_file(dnc, None)
    assert isinstance(plain.suppression, NumberSet)
    assert (
        (plain.accepted, len(plain.rejected)) == (hashed.accepted, len(hashed.rejected)) == (3, 1)
    )
    outcomes = []
    for suppression in (hashed.suppression, plain.suppression):
        with clean_table(leads, suppression=suppression) as run:
            outcomes.append([(c.reject_reasons, c.e164) for c in run])
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0][0].count(RejectReason.DNC) == 3


@given(
    held=st.lists(st.integers(10**9, 10**13), max_size=60),
    asked=st.lists(st.integers(10**9, 10**13), max_size=60),
)
@settings(max_examples=200, deadline=None)
def test_number_set_look_ups_answer_like_a_set(held: list[int], asked: list[int]) -> None:
    """The CLI's do-not-call set (a binary search in sorted integers) against a Python set."""
    import numpy as np
    import pyarrow as pa

    from data_cleaning.suppression import NumberSet

    numbers = NumberSet()
    numbers.add_many([f"+{n}" for n in held])
    queries = asked + held[:5]
    found = numbers.contains_column(
        np.array(queries, dtype=np.int64), pa.array([f"+{n}" for n in queries])
    )
    assert found.tolist() == [n in set(held) for n in queries]
