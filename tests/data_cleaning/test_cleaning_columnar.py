"""The column-wise paths agree with the row-wise ones: pyarrow CSV reading and CSV writing."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from data_cleaning import (
    ChunkResult,
    CleaningOptions,
    EncodingError,
    RaggedRowsError,
    RowStatus,
    clean_table,
    open_table,
)
from data_cleaning import readers as readers_module
from data_cleaning.writers import CleanedWriter, RejectsWriter

_ALPHABET = ["a", "b", ",", '"', "\n", "\r", " ", "\r\n", "1", "王"]


def _rows_python(path: Path) -> list[tuple[int, list[str]]]:
    with open_table(path) as reader:
        return list(reader.rows())


def _rows_columnar(path: Path, size: int) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    with open_table(path, columnar=True) as reader:
        done = False
        while not done:
            numbers, rows, columns, done = reader.read_block(size)
            if columns is not None:
                cells = [column.to_pylist() for column in columns]
                rows = [list(row) for row in zip(*cells, strict=True)]
            out += zip(numbers, rows or [], strict=True)
    return out


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny parse blocks so that odd rows fall after batches already handed out.
    monkeypatch.setattr(readers_module, "_ARROW_BLOCK_BYTES", 64)


@pytest.mark.usefixtures("small_blocks")
def test_columnar_reading_matches_the_csv_module(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "fuzz.csv"
    for _ in range(300):
        body = "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 120)))
        path.write_bytes(("name,phone,city\r\n" + body).encode("utf-8"))
        try:
            expected = _rows_python(path)
        except Exception as error:  # the columnar path must fail alike
            with pytest.raises(type(error)):
                _rows_columnar(path, rng.choice([1, 3, 50]))
            continue
        assert _rows_columnar(path, rng.choice([1, 3, 50])) == expected, body


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    "tail",
    [
        "\r\n\r\nx,13900139000,c\r\n",  # blank lines
        " \r\nx,13900139000,c\r\n",  # a whitespace-only line
        ",,\r\nx,13900139000,c\r\n",  # a row of empty cells
        'x,"13900139000",c\r\n"multi\nline",139,"a ""b"""\r\n',
    ],
)
def test_odd_rows_after_many_good_ones_keep_their_numbers(tmp_path: Path, tail: str) -> None:
    good = "".join(f"n{i},1380013{i:04d},city\r\n" for i in range(200))
    path = tmp_path / "odd.csv"
    path.write_bytes(("name,phone,city\r\n" + good + tail + good).encode("utf-8"))
    assert _rows_columnar(path, 37) == _rows_python(path)


@pytest.mark.usefixtures("small_blocks")
def test_errors_after_many_good_rows_are_those_of_the_csv_module(tmp_path: Path) -> None:
    # Bad bytes past the encoding-detection sample (1 MiB).
    many = "".join(f"n{i},1380013{i % 10000:04d}\r\n" for i in range(80_000)).encode()
    path = tmp_path / "bad.csv"
    path.write_bytes(b"name,phone\r\n" + many + b"x,\xff\xfe139\r\n" + many)
    with pytest.raises(EncodingError, match="not valid utf-8"):
        _rows_columnar(path, 20_000)
    good = "".join(f"n{i},1380013{i:04d}\r\n" for i in range(300)).encode()
    path.write_bytes(b"name,phone\r\n" + good + b"x,13900139000,extra\r\n" + good)
    with pytest.raises(RaggedRowsError, match="row 302 has 3 cells"):
        clean_table(path).consume()
    run = clean_table(path, CleaningOptions(allow_ragged=True))
    rows = [row for chunk in run for row in chunk]
    assert rows[300].original == {"name": "x", "phone": "13900139000", "extra_cells": "extra"}
    assert rows[0].original == {"name": "n0", "phone": "13800130000", "extra_cells": ""}
    assert run.report.ragged_rows == 1


def _row_wise(chunk: ChunkResult) -> ChunkResult:
    """The same chunk built from plain lists (written by the csv-module path)."""
    return ChunkResult(
        columns=chunk.columns,
        row_numbers=list(chunk.row_numbers),
        rows=[list(row) for row in chunk.rows],
        statuses=list(chunk.statuses),
        reject_reasons=list(chunk.reject_reasons),
        duplicate_of_rows=list(chunk.duplicate_of_rows),
        e164=list(chunk.e164),
        number_types=list(chunk.number_types),
        regions=list(chunk.regions),
        time_zones=list(chunk.time_zones),
        extensions=list(chunk.extensions),
        carriers=list(chunk.carriers),
        virtual_operator=list(chunk.virtual_operator),
        alternate_phones=list(chunk.alternate_phones),
    )


@pytest.mark.parametrize("neutralise", [False, True])
def test_column_wise_writing_matches_the_csv_writer(tmp_path: Path, neutralise: bool) -> None:
    rng = random.Random(3)
    cells = [
        "=1+2",
        "+86",
        "-x",
        "@a",
        "\tx",
        "\rx",
        "a,b",
        'say "hi"',
        "two\nlines",
        "cr\rx",
        "",
        " ",
    ]
    phones = ["13800138000", "+86 139 0013 9000", "n/a", "010-6552-9988 转 21", "", "=cmd"]
    # Cells holding several numbers: the phone_alternates column, written both ways.
    phones += ["138 0013 8000 / 139 1234 5678", "13700137000、13600136000，13500135000"]
    lines = ["name,phone_e164,phone,note,reject_reason"]
    for _ in range(400):
        row = [rng.choice(cells) + rng.choice(["", "王"]), "old", rng.choice(phones)]
        row.append(rng.choice(cells))
        row.append(rng.choice(cells))
        lines.append(",".join('"' + c.replace('"', '""') + '"' for c in row))
    path = tmp_path / "cells.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    run = clean_table(path, CleaningOptions(phone_column="phone", chunk_rows=150))
    columns = run.columns
    fast_cleaned, fast_rejects = io.StringIO(), io.StringIO()
    slow_cleaned, slow_rejects = io.StringIO(), io.StringIO()
    writers = (
        CleanedWriter(fast_cleaned, columns, neutralise=neutralise),
        RejectsWriter(fast_rejects, columns, neutralise=neutralise),
        CleanedWriter(slow_cleaned, columns, neutralise=neutralise),
        RejectsWriter(slow_rejects, columns, neutralise=neutralise),
    )
    kinds = set()
    for chunk in run:
        assert chunk.packed_source() is not None
        writers[0].write_chunk(chunk)
        writers[1].write_chunk(chunk)
        plain = _row_wise(chunk)
        assert plain.packed_source() is None
        writers[2].write_chunk(plain)
        writers[3].write_chunk(plain)
        kinds.update(chunk.statuses)
    assert kinds == {RowStatus.KEPT, RowStatus.REJECTED}
    assert fast_cleaned.getvalue() == slow_cleaned.getvalue()
    assert fast_rejects.getvalue() == slow_rejects.getvalue()
    # Through a real file (bytes written under the text layer) too.
    target = tmp_path / "out.csv"
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = RejectsWriter(handle, columns, neutralise=neutralise)
        for chunk in clean_table(path, CleaningOptions(phone_column="phone")):
            writer.write_chunk(chunk)
    assert target.read_bytes().decode("utf-8") == fast_rejects.getvalue()


def test_edited_chunks_are_written_as_edited(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("phone\r\n13800138000\r\n13900139000\r\n", encoding="utf-8")
    chunk = next(iter(clean_table(path)))
    chunk.carriers = ["X", "Y"]
    stream = io.StringIO()
    CleanedWriter(stream, chunk.columns).write_chunk(chunk)
    assert [line.split(",")[-2] for line in stream.getvalue().splitlines()[1:]] == ["X", "Y"]
