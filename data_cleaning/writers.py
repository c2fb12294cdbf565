"""Writers for CLEANED.csv, REJECTS.csv and REPORT.json, and CSV formula-injection defence.

CLEANED.csv keeps the original columns and adds :data:`~data_cleaning.models.ENRICHMENT_COLUMNS`;
REJECTS.csv keeps the original columns and adds ``reject_reason``, ``duplicate_of_row`` and
``row_number`` (the spreadsheet row, header = 1, which ``duplicate_of_row`` refers to). Columns
of those names already in the input (a re-cleaned file) are replaced, not repeated, so cleaning
a cleaned file gives the same file back.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from data_cleaning.cells import ALTERNATES_SEPARATOR, SplitCells
from data_cleaning.models import (
    ENRICHMENT_COLUMNS,
    ChunkResult,
    CleaningOptions,
    CleaningReport,
    ProgressCallback,
    RowStatus,
)
from data_cleaning.pipeline import ChunkColumns, CleaningRun, clean_table
from data_cleaning.suppression import Suppression
from data_cleaning.vectorised import REASON_CODES, TYPE_CODES

__all__ = [
    "REJECT_COLUMNS",
    "TIME_ZONE_SEPARATOR",
    "AtomicOutputs",
    "CleanedWriter",
    "RejectsWriter",
    "clean_to_files",
    "neutralise_cell",
    "neutralise_row",
    "write_report",
]

REJECT_COLUMNS: Final = ("reject_reason", "duplicate_of_row", "row_number")
#: Separator of several IANA time zones in one ``phone_timezone`` cell.
TIME_ZONE_SEPARATOR: Final = "|"
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
# Column-wise equivalents of neutralise_cell and of csv.writer's minimal quoting.
_QUOTED_BYTES: Final = np.isin(np.arange(256), [ord(c) for c in ',"\r\n'])
_FORMULA_BYTES: Final = np.isin(np.arange(256), [ord(c) for c in _FORMULA_STARTS])
_LINE_END: Final = "\r\n"
_REASON_NAMES: Final = pa.array([r.value if r is not None else "" for r in REASON_CODES])
_TYPE_NAMES: Final = pa.array([t.value if t is not None else "" for t in TYPE_CODES])
_NO_ALTERNATES: Final = pa.array([""], pa.string())
#: A column of cells, or ``(table, ids)``: the column ``table[ids]``.
_Cells: TypeAlias = "pa.Array | tuple[pa.Array, npt.NDArray[Any]]"


def neutralise_cell(value: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def neutralise_row(row: Iterable[str]) -> list[str]:
    """Neutralise every cell of a CSV row for download (formula injection)."""
    return [neutralise_cell(cell) for cell in row]


class _TableWriter:
    def __init__(
        self, stream: IO[str], columns: Sequence[str], added: Sequence[str], neutralise: bool
    ):
        added_set = set(added)
        self._keep = [i for i, name in enumerate(columns) if name not in added_set]
        self._all_kept = len(self._keep) == len(columns)
        self._neutralise = neutralise
        self._stream = stream
        self._writer = csv.writer(stream, lineterminator="\r\n")
        self._write([columns[i] for i in self._keep] + list(added))

    def _write(self, row: list[str]) -> None:
        self._writer.writerow(neutralise_row(row) if self._neutralise else row)

    def _write_many(self, rows: list[list[str]]) -> None:
        # Only the client's own cells are guarded: the columns added here (phone_e164, type,
        # reason, ...) are generated and never a formula, and "+8613800138000" must stay as is.
        if self._neutralise:
            width = len(self._keep)
            rows = [neutralise_row(row[:width]) + row[width:] for row in rows]
        self._writer.writerows(rows)

    def _original(self, row: list[str]) -> list[str]:
        return row if self._all_kept else [row[i] for i in self._keep]

    def _write_columns(
        self,
        stream: IO[str],
        source: ChunkColumns,
        rows: npt.NDArray[np.intp],
        added: list[_Cells],
    ) -> None:
        """Write ``rows`` of a column-wise chunk: kept original columns, then ``added``."""
        if not len(rows):
            return
        index = pa.array(rows, type=pa.int64())
        cells: list[_Cells] = [source.columns[i].take(index) for i in self._keep]
        data = _csv_lines(cells + added, self._neutralise, guarded=len(cells))
        buffer = getattr(stream, "buffer", None)
        if (
            isinstance(stream, io.TextIOWrapper)
            and buffer is not None
            and codecs.lookup(stream.encoding).name == "utf-8"
        ):
            stream.flush()
            buffer.write(data)
        else:
            stream.write(bytes(data).decode("utf-8"))


class CleanedWriter(_TableWriter):
    """Writes the kept rows of chunks as CLEANED.csv."""

    def __init__(self, stream: IO[str], columns: Sequence[str], *, neutralise: bool = False):
        super().__init__(stream, columns, ENRICHMENT_COLUMNS, neutralise)

    def write_chunk(self, chunk: ChunkResult) -> None:
        """Write the chunk's kept rows."""
        source = chunk.packed_source()
        if isinstance(source, ChunkColumns):
            kept_rows = np.flatnonzero(source.codes == 0)
            packed = source.packed
            index = pa.array(kept_rows, type=pa.int64())
            zones = [TIME_ZONE_SEPARATOR.join(z) for z in packed.zone_table]
            added: list[_Cells] = [
                packed.e164.take(index).fill_null(""),
                (_TYPE_NAMES, packed.types[kept_rows]),
                (pa.array(packed.region_table, pa.string()), packed.region_ids[kept_rows]),
                (pa.array(zones, pa.string()), packed.zone_ids[kept_rows]),
                packed.extensions.take(index),
                (pa.array(packed.carrier_table, pa.string()), packed.carrier_ids[kept_rows]),
                _alternates_cells(packed.split, len(source.codes), kept_rows),
            ]
            self._write_columns(self._stream, source, kept_rows, added)
            return
        kept = RowStatus.KEPT
        keep = self._keep
        all_kept = self._all_kept
        join = TIME_ZONE_SEPARATOR.join
        rows = [
            [
                *(row if all_kept else [row[i] for i in keep]),
                e164 or "",
                number_type or "",
                region,
                join(zones),
                extension,
                carrier,
                ALTERNATES_SEPARATOR.join(alternates),
            ]
            for status, row, e164, number_type, region, zones, extension, carrier, alternates in (
                zip(
                    chunk.statuses,
                    chunk.rows,
                    chunk.e164,
                    chunk.number_types,
                    chunk.regions,
                    chunk.time_zones,
                    chunk.extensions,
                    chunk.carriers,
                    chunk.alternate_phones,
                    strict=True,
                )
            )
            if status is kept
        ]
        self._write_many(rows)


def _alternates_cells(
    split: SplitCells | None, size: int, rows: npt.NDArray[np.intp]
) -> tuple[pa.Array, npt.NDArray[np.int32]]:
    """The ``phone_alternates`` cells of ``rows`` of a chunk of ``size`` rows, as (table, ids)."""
    if split is None or not len(split):
        return _NO_ALTERNATES, np.zeros(len(rows), dtype=np.int32)
    table = ["", *map(ALTERNATES_SEPARATOR.join, split.alternates)]
    ids = np.zeros(size, dtype=np.int32)
    ids[split.rows] = np.arange(1, len(table), dtype=np.int32)
    return pa.array(table, pa.string()), ids[rows]


class RejectsWriter(_TableWriter):
    """Writes the rejected rows of chunks as REJECTS.csv."""

    def __init__(self, stream: IO[str], columns: Sequence[str], *, neutralise: bool = False):
        super().__init__(stream, columns, REJECT_COLUMNS, neutralise)

    def write_chunk(self, chunk: ChunkResult) -> None:
        """Write the chunk's rejected rows."""
        source = chunk.packed_source()
        if isinstance(source, ChunkColumns):
            rejected = np.flatnonzero(source.codes != 0)
            duplicate_of = pa.array(source.duplicate_of[rejected])
            added: list[_Cells] = [
                (_REASON_NAMES, source.codes[rejected]),
                pc.if_else(pc.equal(duplicate_of, 0), "", pc.cast(duplicate_of, pa.string())),
                pc.cast(pa.array(source.number_array[rejected]), pa.string()),
            ]
            self._write_columns(self._stream, source, rejected, added)
            return
        kept = RowStatus.KEPT
        keep = self._keep
        all_kept = self._all_kept
        rows = [
            [
                *(row if all_kept else [row[i] for i in keep]),
                reason or "",
                str(duplicate_of) if duplicate_of is not None else "",
                str(number),
            ]
            for status, row, reason, duplicate_of, number in zip(
                chunk.statuses,
                chunk.rows,
                chunk.reject_reasons,
                chunk.duplicate_of_rows,
                chunk.row_numbers,
                strict=True,
            )
            if status is not kept
        ]
        self._write_many(rows)


def _utf8_parts(cells: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Cell offsets (from 0, one more than cells) and UTF-8 bytes of a string column."""
    size = len(cells)
    _, offsets_buffer, data_buffer = cells.buffers()
    width = np.dtype(np.int32 if cells.type == pa.string() else np.int64)
    offsets = np.frombuffer(
        offsets_buffer, dtype=width, count=size + 1, offset=cells.offset * width.itemsize
    ).astype(np.int64)
    start, stop = int(offsets[0]), int(offsets[-1])
    if data_buffer is None or stop == start:
        return offsets - start, np.zeros(0, dtype=np.uint8)
    data = np.frombuffer(data_buffer, dtype=np.uint8, count=stop - start, offset=start)
    return offsets - start, data


# The characters of both checks below are ASCII, and ASCII bytes never occur inside a
# multi-byte UTF-8 sequence, so numpy can look for them in the bytes of a whole column.


def _needs_quotes(cells: pa.Array) -> npt.NDArray[np.bool_]:
    """Which cells of a string column without nulls hold a character that needs quoting."""
    found = np.zeros(len(cells), dtype=np.bool_)
    if not len(cells):
        return found
    offsets, data = _utf8_parts(cells)
    # Cheap comparisons first (the characters are bytes 10, 13, 34 and 44), then exact ones.
    candidate = data == 44
    candidate |= data == 34
    candidate |= data < 14
    near = np.flatnonzero(candidate)
    hits = near[_QUOTED_BYTES[data[near]]]
    if len(hits):
        found[np.searchsorted(offsets, hits, side="right") - 1] = True
    return found


def _formula_like(cells: pa.Array) -> npt.NDArray[np.bool_]:
    """Which cells of a string column without nulls start like a formula (see neutralise_cell)."""
    found = np.zeros(len(cells), dtype=np.bool_)
    if not len(cells):
        return found
    offsets, data = _utf8_parts(cells)
    filled = np.flatnonzero(offsets[1:] > offsets[:-1])
    found[filled] = _FORMULA_BYTES[data[offsets[filled]]]
    return found


def _csv_cells(cells: pa.Array, neutralise: bool) -> pa.Array:
    """A string column as ``csv.writer`` writes its cells (after :func:`neutralise_cell`)."""
    if cells.type not in (pa.string(), pa.large_string()):
        cells = cells.cast(pa.string())
    if neutralise:
        risky = _formula_like(cells)
        if risky.any():
            mask = pa.array(risky)
            prefixed = pc.binary_join_element_wise("'", cells.filter(mask), "")
            cells = pc.replace_with_mask(cells, mask, prefixed)
    needs_quotes = _needs_quotes(cells)
    if needs_quotes.any():
        mask = pa.array(needs_quotes)
        escaped = pc.replace_substring(cells.filter(mask), '"', '""')
        cells = pc.replace_with_mask(
            cells, mask, pc.binary_join_element_wise('"', escaped, '"', "")
        )
    return cells


def _csv_lines(
    columns: Sequence[_Cells], neutralise: bool, *, guarded: int | None = None
) -> memoryview:
    """UTF-8 CSV lines (``\\r\\n`` ended) of string columns without nulls, as one buffer.

    With ``neutralise`` the formula guard applies to the first ``guarded`` columns (all by
    default): the columns Pilotdial generates after them are never altered.

    A column given as ``(table, ids)`` holds ``table[ids]``: its few distinct values are
    quoted once, not once per row.
    """
    cells: list[pa.Array] = []
    ended = False
    if guarded is None:
        guarded = len(columns)
    for position, column in enumerate(columns):
        guard = neutralise and position < guarded
        if not isinstance(column, tuple):
            cells.append(_csv_cells(column, guard))
            continue
        table, ids = column
        table = _csv_cells(table, guard)
        if position == len(columns) - 1:
            # The line ends are added to the few table values rather than to every line.
            table = pc.binary_join_element_wise(table, _LINE_END, "")
            ended = True
        cells.append(table.take(pa.array(ids)))
    lines = cells[0] if len(cells) == 1 else pc.binary_join_element_wise(*cells, ",")
    if not ended:
        lines = pc.binary_join_element_wise(lines, _LINE_END, "")
    if lines.type != pa.string():
        lines = lines.cast(pa.large_string())
    width = np.int32 if lines.type == pa.string() else np.int64
    offsets = np.frombuffer(lines.buffers()[1], dtype=width)
    start = int(offsets[lines.offset])
    stop = int(offsets[lines.offset + len(lines)])
    data = lines.buffers()[2]
    return memoryview(data)[start:stop] if data is not None else memoryview(b"")


def write_report(stream: IO[str], report: CleaningReport) -> None:
    """Write REPORT.json (exactly the documented top-level keys)."""
    json.dump(report.to_json_dict(), stream, ensure_ascii=False, indent=2)
    stream.write("\n")


class AtomicOutputs:
    """Text files written under temporary names and renamed into place only on success."""

    def __init__(self, *paths: str | os.PathLike[str], encoding: str = "utf-8") -> None:
        self._targets = [Path(p) for p in paths]
        self._encoding = encoding
        self.streams: list[IO[str]] = []
        self._temps: list[Path] = []

    def __enter__(self) -> list[IO[str]]:
        for target in self._targets:
            handle, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".part", dir=target.parent or Path(".")
            )
            self._temps.append(Path(name))
            self.streams.append(os.fdopen(handle, "w", encoding=self._encoding, newline=""))
        return self.streams

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for stream in self.streams:
            stream.close()
        for temp, target in zip(self._temps, self._targets, strict=True):
            if exc_type is None:
                os.replace(temp, target)
            else:
                temp.unlink(missing_ok=True)


def clean_to_files(
    source: str | os.PathLike[str],
    cleaned_path: str | os.PathLike[str],
    rejects_path: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    options: CleaningOptions | None = None,
    suppression: Suppression | Iterable[Suppression] | None = None,
    *,
    progress: ProgressCallback | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
) -> CleaningRun:
    """Clean ``source`` into CLEANED/REJECTS/REPORT files; none is written if cleaning fails."""
    run = clean_table(source, options, suppression, progress=progress)
    with run, AtomicOutputs(cleaned_path, rejects_path, report_path) as (cleaned, rejects, report):
        cleaned_writer = CleanedWriter(cleaned, run.columns)
        rejects_writer = RejectsWriter(rejects, run.columns)
        for chunk in run:
            cleaned_writer.write_chunk(chunk)
            rejects_writer.write_chunk(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
        write_report(report, run.report)
    return run
