"""Readers for lead lists: CSV/TSV in UTF-8, UTF-8 with BOM, UTF-16, GBK/GB18030 and Big5, and XLSX.

:func:`open_table` sniffs the format from the file's first bytes, detects the text encoding
(or takes the one given), reads the header, and returns a :class:`TableReader` that streams
data rows as lists of strings without loading the file into memory.

For the cleaning pipeline (``columnar=True``), UTF-8 CSV/TSV files are parsed by pyarrow's
CSV reader into string columns. Its parse matches Python's :mod:`csv` module except on blank
lines, ragged rows, invalid UTF-8 and over-long fields: a batch with any of those (or with a
row whose cells are all empty, which may have been a blank line) is dropped and reading goes
on with the :mod:`csv` module from the first row not yet handed out, so the rows, row numbers
and errors are always those of the :mod:`csv` path.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from charset_normalizer import from_bytes

from data_cleaning.exceptions import (
    BinaryFileError,
    EmptyInputError,
    EncodingError,
    FormulaCellsError,
    HeaderOnlyError,
    InputFileError,
    InputTooLargeError,
    SheetNotFoundError,
)

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_INFLATED_BYTES",
    "MAX_INFLATE_RATIO",
    "MAX_SHARED_STRINGS_BYTES",
    "MAX_SHEET_CELLS",
    "TableInfo",
    "TableReader",
    "check_table",
    "detect_encoding",
    "open_table",
]

_SAMPLE_BYTES: Final = 1 << 20
_ENCODING_ALIASES: Final = {
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5",
    "cp950": "cp950",
    "big5hkscs": "big5hkscs",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
}
_FIELD_LIMIT: Final = 1 << 20
_ARROW_BLOCK_BYTES: Final = 4 << 20
_ARROW_ENCODINGS: Final = frozenset({"utf-8", "utf-8-sig"})
_ENCODING_HINT: Final = (
    "re-save the file as UTF-8 CSV, or name its encoding with --encoding (utf-8, gbk, big5)"
)

Format = Literal["csv", "tsv", "xlsx"]

#: Columns a lead list may have (a CRM export has tens; a 1M-column header is an attack).
MAX_COLUMNS: Final = 1000
#: Bytes an XLSX workbook may inflate to in all (the archive's declared member sizes, which
#: also bound what ``zipfile`` decompresses).
MAX_INFLATED_BYTES: Final = 1 << 30
#: Bytes the shared-strings table may inflate to: openpyxl holds all of it in memory at once
#: (measured: 38.6 MiB of 12-letter strings took 222 MiB, about 6x), while sheets are
#: streamed row by row. A million leads with three distinct 12-character text columns need
#: about 90 MiB.
MAX_SHARED_STRINGS_BYTES: Final = 128 << 20
#: Inflated / compressed size allowed for a workbook member over 1 MiB: real sheets compress
#: 5-30x, a shared-string bomb thousands of times.
MAX_INFLATE_RATIO: Final = 200
#: Characters in one XLSX cell (a CSV field is held to the same bound by the csv module).
MAX_CELL_CHARS: Final = _FIELD_LIMIT
#: Cells a worksheet may claim (``<dimension ref="A1:XFD20000"/>`` makes openpyxl visit each).
MAX_SHEET_CELLS: Final = 60_000_000
_RATIO_MIN_BYTES: Final = 1 << 20
# Signatures of files that are plainly not tables, with what they are.
_NOT_TABLES: Final = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript document"),
)


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What was learnt about the input while opening it."""

    format: Format
    columns: tuple[str, ...]
    encoding: str | None
    delimiter: str | None
    sheet: str | None
    size_bytes: int
    #: Data rows in the sheet when the format says so (XLSX), else ``None``.
    rows_hint: int | None


class _CountingReader(io.RawIOBase):
    """A raw binary stream that counts the bytes handed to the text decoder."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.bytes_read += size
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()


def _canonical_encoding(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key in _ENCODING_ALIASES:
        return _ENCODING_ALIASES[key]
    try:
        return codecs.lookup(key).name
    except LookupError:
        raise EncodingError(
            f"unknown encoding {name!r}: use utf-8, utf-8-sig, gbk, gb18030 or big5"
        ) from None


def _decodes(sample: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        decoder.decode(sample, final=len(sample) < _SAMPLE_BYTES)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(sample: bytes) -> str:
    """Guess the encoding of a CSV sample among UTF-8, UTF-16, GB18030 and Big5."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise BinaryFileError(
            "the file contains NUL bytes, so it is not a CSV/TSV text file or an XLSX workbook: "
            "export the list from your spreadsheet as CSV (UTF-8) or XLSX"
        )
    if _decodes(sample, "utf-8"):
        return "utf-8"
    candidates = [enc for enc in ("gb18030", "big5") if _decodes(sample, enc)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise EncodingError(
            "the file is not valid UTF-8, GBK/GB18030 or Big5 text (is it a binary file?): "
            + _ENCODING_HINT
        )
    best = from_bytes(sample, cp_isolation=candidates).best()
    if best is not None and best.encoding in ("big5", "cp950", "big5hkscs"):
        return "big5"
    return "gb18030"


def _clean_header(raw: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(raw, start=1):
        name = cell.strip().lstrip("\ufeff").strip() or f"column_{index}"
        base, suffix = name, 2
        while name in seen:
            name = f"{base}_{suffix}"
            suffix += 1
        seen.add(name)
        names.append(name)
    return tuple(names)


def _is_blank(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


class TableReader:
    """Streams the data rows of an opened table; use as a context manager."""

    def __init__(
        self,
        info: TableInfo,
        rows: Iterator[list[str]],
        closer: Any,
        counter: Any,
        arrow: _ArrowCsv | None = None,
        reopen: Callable[[int], tuple[_CsvRows, Any, Any]] | None = None,
    ):
        self.info = info
        self._rows = rows
        self._closer = closer
        self._counter = counter
        #: Spreadsheet row number of the last row returned (the header is row 1).
        self.last_row_number = 1
        #: Blank rows skipped so far.
        self.blank_rows = 0
        self._number = 1
        self._arrow = arrow
        self._reopen = reopen
        # Rows converted from pyarrow columns for :meth:`rows` and not handed out yet.
        self._converted: deque[list[str]] = deque()
        self._arrow_ended = False
        self._row_iter = self._generate()

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        # An unfinished row generator holds an open member of an XLSX archive, which keeps the
        # file itself open until garbage collection: close the generators first.
        self._row_iter.close()
        close_rows = getattr(self._rows, "close", None)
        if close_rows is not None:
            close_rows()
        if self._arrow is not None:
            self._arrow.close()
        if self._closer is not None:
            self._closer.close()
            self._closer = None

    def fraction_read(self) -> float | None:
        """Share of the file consumed so far, when it can be told."""
        if not self.info.size_bytes:
            return None
        if self._arrow is not None:
            return min(1.0, self._arrow.bytes_read() / self.info.size_bytes)
        if self._counter is None:
            return 1.0 if self._arrow_ended else None
        done: int = self._counter.bytes_read
        return min(1.0, done / self.info.size_bytes)

    def read_block(
        self, size: int
    ) -> tuple[list[int], list[list[str]] | None, list[pa.Array] | None, bool]:
        """Read up to ``size`` records: ``(row numbers, rows, columns, end reached)``.

        Rows come as string columns (``rows`` is ``None``) while the pyarrow parser reads the
        file, else as lists of cells (``columns`` is ``None``); fewer than ``size`` rows do not
        mean the end. Same rows and numbers as :meth:`rows`, with which this shares its position.
        """
        if self._converted:
            batch = [self._converted.popleft() for _ in range(min(size, len(self._converted)))]
            return self._consecutive(len(batch)), batch, None, False
        arrow = self._arrow
        if arrow is not None:
            columns = arrow.take(size)
            if columns is not None and len(columns[0]):
                count = len(columns[0])
                return self._consecutive(count), None, columns, False
            self._leave_arrow()
        numbers, rows, done = self._read_python(size)
        return numbers, rows, None, done

    def _consecutive(self, count: int) -> list[int]:
        start = self._number + 1
        self._number += count
        if count:
            self.last_row_number = self._number
        return list(range(start, start + count))

    def _leave_arrow(self) -> None:
        """Go on with the csv module after the rows pyarrow handed out (it gave up or ended)."""
        arrow = self._arrow
        assert arrow is not None
        self._arrow = None
        arrow.close()
        if arrow.failed:
            assert self._reopen is not None
            self._rows, self._closer, self._counter = self._reopen(arrow.accepted)
        else:
            self._rows = iter(())
            self._arrow_ended = True

    def _arrow_rows(self) -> Iterator[list[str]]:
        """Records for :meth:`rows` while pyarrow reads: converted a few hundred at a time."""
        while True:
            if self._converted:
                yield self._converted.popleft()
                continue
            arrow = self._arrow
            if arrow is None:
                break
            columns = arrow.take(256)
            if columns is None or not len(columns[0]):
                self._leave_arrow()
                break
            self._converted.extend(
                list(cells) for cells in zip(*(c.to_pylist() for c in columns), strict=True)
            )
        yield from self._rows

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """The one iterator of ``(row_number, cells)`` over the non-blank data rows."""
        return self._row_iter

    def read_batch(self, size: int) -> tuple[list[int], list[list[str]], bool]:
        """Read up to ``size`` records at once: ``(row numbers, rows, end reached)``.

        The same rows, numbers and blank-row skipping as :meth:`rows` (the two share their
        position), without a Python step per row.
        """
        if self._arrow is None and not self._converted:
            return self._read_python(size)
        numbers: list[int] = []
        batch: list[list[str]] = []
        done = False
        while not done and len(batch) < size:
            more_numbers, rows, columns, done = self.read_block(size - len(batch))
            if columns is not None:
                rows = [
                    list(cells) for cells in zip(*(c.to_pylist() for c in columns), strict=True)
                ]
            numbers += more_numbers
            batch += rows or []
        return numbers, batch, done

    def _read_python(self, size: int) -> tuple[list[int], list[list[str]], bool]:
        source = self._rows
        if isinstance(source, _CsvRows):
            batch = source.batch(size)
        else:
            batch = list(itertools.islice(source, size))
        done = len(batch) < size
        start = self._number + 1
        self._number += len(batch)
        blank = [
            k for k, row in enumerate(batch) if len(row) < 2 and (not row or not row[0].strip())
        ]
        if not blank:
            numbers = list(range(start, start + len(batch)))
        else:
            skip = set(blank)
            self.blank_rows += len(blank)
            numbers = [start + k for k in range(len(batch)) if k not in skip]
            batch = [row for k, row in enumerate(batch) if k not in skip]
        if numbers:
            self.last_row_number = numbers[-1]
        return numbers, batch, done

    def _generate(self) -> Generator[tuple[int, list[str]], None, None]:
        rows = self._arrow_rows() if self._arrow is not None else self._rows
        for row in rows:
            self._number += 1
            # Only rows with no cells (blank lines) are skipped; ",," rows count as empty leads.
            if not row or (len(row) == 1 and not row[0].strip()):
                self.blank_rows += 1
                continue
            self.last_row_number = self._number
            yield self._number, row


class _CsvRows:
    """The records of a CSV/TSV stream, one at a time or in batches, with readable errors."""

    def __init__(self, stream: io.TextIOWrapper, delimiter: str, path: Path, encoding: str):
        self._reader = csv.reader(stream, delimiter=delimiter, strict=False)
        self._path = path
        self._encoding = encoding
        self._records = 0

    @property
    def records(self) -> int:
        """Records read so far."""
        return self._records

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        try:
            row = next(self._reader)
        except (UnicodeDecodeError, csv.Error) as error:
            raise self._error(error, self._records) from error
        self._records += 1
        return row

    def batch(self, size: int) -> list[list[str]]:
        """The next ``size`` records (fewer at the end)."""
        try:
            rows = list(itertools.islice(self._reader, size))
        except (UnicodeDecodeError, csv.Error) as error:
            # The partial batch is lost with the error; the line number is the best hint.
            raise self._error(error, max(self._records, self._reader.line_num - 1)) from error
        self._records += len(rows)
        return rows

    def _error(self, error: Exception, record: int) -> Exception:
        name = self._path.name
        if isinstance(error, UnicodeDecodeError):
            return EncodingError(
                f"{name}: bytes near row {record + 1} are not valid {self._encoding}: "
                f"{_ENCODING_HINT}"
            )
        if "NUL" in str(error) or "null" in str(error).lower():
            return BinaryFileError(
                f"{name}: NUL byte near row {record + 1}; the file is not plain text: "
                "export the list as CSV (UTF-8) or XLSX"
            )
        return InputFileError(
            f"{name}: cannot read row {record + 1} ({error}); a quote is probably left "
            "open: close it or remove the stray quote character"
        )


class _ArrowCsv:
    """The data records of a UTF-8 CSV/TSV parsed by pyarrow, as string columns.

    Batches that pyarrow might read differently from the :mod:`csv` module are refused: then
    ``failed`` is set, no more batches are read, and the caller goes on with the :mod:`csv`
    module after the ``accepted`` records.
    """

    def __init__(self, path: Path, offset: int, width: int, delimiter: str) -> None:
        self._file = pa.OSFile(str(path))
        self._file.seek(offset)
        self._offset = offset
        self._width = width
        self._refused = False
        names = [f"c{i}" for i in range(width)]
        self._reader: Any = pa_csv.open_csv(
            self._file,
            read_options=pa_csv.ReadOptions(
                column_names=names, block_size=_ARROW_BLOCK_BYTES, use_threads=False
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=self._invalid_row,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        self._pending: deque[pa.RecordBatch] = deque()
        self.pending_rows = 0
        #: Records accepted so far (handed out or pending).
        self.accepted = 0
        self.failed = False
        self.finished = False

    def _invalid_row(self, row: Any) -> str:
        # A ragged row or blank line: the csv module decides what it means.
        self._refused = True
        return "skip"

    def bytes_read(self) -> int:
        """Bytes of the file parsed so far (read ahead a little)."""
        try:
            return int(self._file.tell())
        except (OSError, ValueError):
            return self._offset

    def close(self) -> None:
        self.finished = True
        self._pending.clear()
        self.pending_rows = 0
        if not self._file.closed:
            self._file.close()

    def _acceptable(self, batch: pa.RecordBatch) -> bool:
        if self._refused or batch.num_columns != self._width:
            return False
        total: Any = None
        for column in batch.columns:
            if column.null_count:
                return False
            lengths = pc.binary_length(column)
            longest = pc.max(lengths).as_py()
            if longest is not None and longest > _FIELD_LIMIT:
                return False
            total = lengths if total is None else pc.add(total, lengths)
        # A row of empty cells may have been a blank line, which the csv module skips.
        return total is None or not pc.any(pc.equal(total, 0)).as_py()

    def _fill(self, size: int) -> None:
        while self.pending_rows < size and not self.finished:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                if self._refused:
                    self._refuse()
                self.finished = True
                break
            except (pa.ArrowInvalid, UnicodeDecodeError, OSError):
                self._refuse()
                break
            if not self._acceptable(batch):
                self._refuse()
                break
            if batch.num_rows:
                self._pending.append(batch)
                self.pending_rows += batch.num_rows
                self.accepted += batch.num_rows

    def _refuse(self) -> None:
        self.failed = True
        self.finished = True
        if not self._file.closed:
            self._file.close()

    def take(self, size: int) -> list[pa.Array] | None:
        """Up to ``size`` rows as string columns; ``None`` when nothing is left here."""
        self._fill(size)
        if not self.pending_rows:
            return None
        parts: list[pa.RecordBatch] = []
        wanted = size
        while wanted and self._pending:
            batch = self._pending[0]
            if batch.num_rows <= wanted:
                parts.append(self._pending.popleft())
                wanted -= batch.num_rows
            else:
                parts.append(batch.slice(0, wanted))
                self._pending[0] = batch.slice(wanted)
                wanted = 0
        taken = size - wanted
        self.pending_rows -= taken
        if len(parts) == 1:
            return list(parts[0].columns)
        return [pa.concat_arrays([part.column(i) for part in parts]) for i in range(self._width)]


def _arrow_offset(sample: bytes, header: list[str], delimiter: str) -> int | None:
    """Byte offset of the first data record when the header is the file's plain first line."""
    end = sample.find(b"\n")
    if end < 0:
        return None
    line = sample[:end]
    if b'"' in line or b"\r" in line[:-1] or not header:
        return None
    text = line.rstrip(b"\r").decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.split(delimiter) != header:
        return None
    return end + 1


def _sniff_delimiter(first_line: str, path: Path) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e17:
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _check_archive(path: Path) -> None:
    """Refuse a workbook whose members would inflate too much, before anything is inflated."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise BinaryFileError(
            f"{path.name} looks like a zip archive but is not a readable XLSX workbook "
            f"({error}): open it in your spreadsheet and save it again as .xlsx or CSV (UTF-8)"
        ) from error
    total = sum(member.file_size for member in members)
    if total > MAX_INFLATED_BYTES:
        raise InputTooLargeError(
            f"{path.name} would unpack to {total / 2**20:,.0f} MiB, over the "
            f"{MAX_INFLATED_BYTES / 2**20:,.0f} MiB limit for a workbook: split the list or "
            "save it as CSV (UTF-8)",
            MAX_INFLATED_BYTES,
            total,
        )
    for member in members:
        if member.filename.lower().endswith("sharedstrings.xml") and (
            member.file_size > MAX_SHARED_STRINGS_BYTES
        ):
            raise InputTooLargeError(
                f"{path.name}: its shared-strings table unpacks to "
                f"{member.file_size / 2**20:,.1f} MiB, over the "
                f"{MAX_SHARED_STRINGS_BYTES / 2**20:,.0f} MiB limit (a workbook keeps it in "
                "memory whole): save the list as CSV (UTF-8) or split it",
                MAX_SHARED_STRINGS_BYTES,
                member.file_size,
            )
        packed = max(member.compress_size, 1)
        if member.file_size > _RATIO_MIN_BYTES and member.file_size / packed > MAX_INFLATE_RATIO:
            raise InputTooLargeError(
                f"{path.name}: {member.filename} inflates {member.file_size / packed:,.0f} times "
                f"(at most {MAX_INFLATE_RATIO} for a real sheet), so the workbook is refused as "
                "a decompression bomb: save the list again as .xlsx or CSV (UTF-8)",
                MAX_INFLATED_BYTES,
                member.file_size,
            )


def _check_width(name: str, columns: int, what: str) -> None:
    if columns > MAX_COLUMNS:
        raise InputFileError(
            f"{name}: {what} has {columns:,} columns, over the {MAX_COLUMNS:,}-column limit for a "
            "lead list: delete the empty or unused columns and upload again"
        )


def _open_xlsx(path: Path, sheet: str | None, size: int) -> TableReader:
    import zipfile

    from openpyxl import load_workbook

    _check_archive(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise BinaryFileError(
            f"{path.name} looks like a zip archive but is not a readable XLSX workbook "
            f"({error}): open it in your spreadsheet and save it again as .xlsx or CSV (UTF-8)"
        ) from error
    if sheet is None:
        worksheet = workbook.worksheets[0]
    elif sheet in workbook.sheetnames:
        worksheet = workbook[sheet]
    else:
        workbook.close()
        raise SheetNotFoundError(
            f"{path.name} has no sheet named {sheet!r}; its sheets are "
            f"{', '.join(repr(name) for name in workbook.sheetnames)}: pass one of them"
        )

    # The sheet's declared dimension decides how many cells openpyxl visits per row.
    claimed_rows, claimed_columns = worksheet.max_row, worksheet.max_column
    if isinstance(claimed_columns, int):
        if claimed_columns > MAX_COLUMNS:
            workbook.close()
        _check_width(path.name, claimed_columns, f"sheet {worksheet.title!r}")
        if isinstance(claimed_rows, int) and claimed_rows * claimed_columns > MAX_SHEET_CELLS:
            workbook.close()
            raise InputTooLargeError(
                f"{path.name}: sheet {worksheet.title!r} claims {claimed_rows:,} rows by "
                f"{claimed_columns:,} columns, over the {MAX_SHEET_CELLS:,}-cell limit: split "
                "the list or save it as CSV (UTF-8)",
                MAX_SHEET_CELLS,
                claimed_rows * claimed_columns,
            )
    width = 0

    def cells() -> Iterator[list[str]]:
        for number, row in enumerate(worksheet.iter_rows(), start=1):
            # A sheet need not declare its dimension; then only its real cells bound a row.
            _check_width(path.name, len(row), f"row {number} of sheet {worksheet.title!r}")
            values: list[str] = []
            for cell in row:
                if cell.data_type == "f":
                    coordinate = getattr(cell, "coordinate", "?")
                    raise FormulaCellsError(
                        f"{path.name}: cell {coordinate} of sheet {worksheet.title!r} holds a "
                        f"formula ({cell.value}); formulas are not evaluated here: copy the "
                        "sheet and paste it as values only, then upload again",
                        [coordinate],
                    )
                text = _cell_text(cell.value)
                if len(text) > MAX_CELL_CHARS:
                    coordinate = getattr(cell, "coordinate", "?")
                    raise InputFileError(
                        f"{path.name}: cell {coordinate} of sheet {worksheet.title!r} holds "
                        f"{len(text):,} characters, over the {MAX_CELL_CHARS:,}-character limit "
                        "for a lead-list cell: shorten or delete it and upload again"
                    )
                values.append(text)
            while values and values[-1] == "":
                values.pop()
            # Spreadsheets do not store trailing empty cells: a short row is not ragged.
            if 0 < len(values) < width:
                values.extend([""] * (width - len(values)))
            yield values

    iterator = cells()
    header: list[str] | None = None
    for values in iterator:
        if values:
            header = values
            break
    if header is not None:
        width = len(header)
    if header is None:
        workbook.close()
        raise EmptyInputError(
            f"{path.name}: sheet {worksheet.title!r} is empty: put a header row and the leads "
            "on the first sheet, or name the right sheet"
        )
    max_row = worksheet.max_row
    info = TableInfo(
        format="xlsx",
        columns=_clean_header(header),
        encoding=None,
        delimiter=None,
        sheet=worksheet.title,
        size_bytes=size,
        rows_hint=(max_row - 1) if isinstance(max_row, int) and max_row > 1 else None,
    )
    return TableReader(info, iterator, workbook, None)


def open_table(
    source: str | os.PathLike[str],
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    delimiter: str | None = None,
    max_bytes: int | None = None,
    columnar: bool = False,
) -> TableReader:
    """Open a CSV, TSV or XLSX lead list, read its header and return a streaming reader.

    ``columnar`` lets UTF-8 text be parsed by pyarrow for :meth:`TableReader.read_block`.
    """
    path = Path(source)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputFileError(f"cannot open {path}: {error.strerror}; check the path") from error
    if max_bytes is not None and size > max_bytes:
        raise InputTooLargeError(
            f"{path.name} is {size / 2**20:,.1f} MiB, over the {max_bytes / 2**20:,.0f} MiB "
            "limit: split the list into smaller files",
            max_bytes,
            size,
        )
    with path.open("rb") as probe:
        sample = probe.read(_SAMPLE_BYTES)
    if not sample.strip():
        raise EmptyInputError(f"{path.name} is empty: upload a file with a header row and leads")
    for signature, what in _NOT_TABLES:
        if sample.startswith(signature):
            raise BinaryFileError(
                f"{path.name} is {what}, not a lead list: export the list from your spreadsheet "
                "as CSV (UTF-8) or XLSX and upload that"
            )
    if sample.startswith(b"PK\x03\x04"):
        return _open_xlsx(path, sheet, size)
    if sample.startswith(b"\xd0\xcf\x11\xe0"):
        raise BinaryFileError(
            f"{path.name} is an old binary Excel (.xls) or Office file: save it as .xlsx or as "
            "CSV (UTF-8) and upload that"
        )
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raise BinaryFileError(
            f"{path.name} is named .xlsx but is not an XLSX workbook: save it again from your "
            "spreadsheet as .xlsx or CSV (UTF-8)"
        )
    chosen = _canonical_encoding(encoding) if encoding else detect_encoding(sample)
    if encoding and not _decodes(sample, chosen if chosen != "utf-16" else "utf-16"):
        raise EncodingError(
            f"{path.name} does not decode as {encoding}: {_ENCODING_HINT.split(', or ')[0]}, "
            "or leave the encoding out to detect it"
        )
    counter = _CountingReader(path.open("rb"))
    stream = io.TextIOWrapper(
        io.BufferedReader(counter, buffer_size=1 << 16),
        encoding=chosen,
        errors="strict",
        newline="",
    )
    csv.field_size_limit(_FIELD_LIMIT)
    if delimiter is None:
        first_line = sample.decode(chosen, errors="ignore").lstrip("\ufeff").split("\n", 1)[0]
        delimiter = _sniff_delimiter(first_line, path)
    first = sample.lstrip(codecs.BOM_UTF8).split(b"\n", 1)
    if len(first) == 1 and len(sample) >= _SAMPLE_BYTES:
        stream.close()
        raise InputFileError(
            f"{path.name}: the first line is longer than {_SAMPLE_BYTES // 2**20} MiB, so it is "
            "not a header row: put the column names on the first line"
        )
    if first[0].count(delimiter.encode(chosen, errors="ignore") or b",") + 1 > MAX_COLUMNS:
        # A rough count (quoted delimiters count too); the parsed header decides below.
        header_cells = next(
            csv.reader([first[0].decode(chosen, errors="replace")], delimiter=delimiter)
        )
        if len(header_cells) > MAX_COLUMNS:
            stream.close()
            _check_width(path.name, len(header_cells), "the header row")
    rows = _CsvRows(stream, delimiter, path, chosen)
    header: list[str] | None = None
    try:
        for row in rows:
            if row and not _is_blank(row):
                header = row
                break
    except InputFileError:
        stream.close()
        raise
    if header is None:
        stream.close()
        raise EmptyInputError(f"{path.name} has no header row: put column names on the first line")
    if len(header) > MAX_COLUMNS:
        stream.close()
        _check_width(path.name, len(header), "the header row")
    arrow: _ArrowCsv | None = None
    header_records = rows.records
    if columnar and chosen in _ARROW_ENCODINGS and len(delimiter) == 1 and header_records == 1:
        offset = _arrow_offset(sample, header, delimiter)
        if offset is not None and offset < size:
            try:
                arrow = _ArrowCsv(path, offset, len(header), delimiter)
            except (pa.ArrowInvalid, UnicodeDecodeError, OSError):
                arrow = None  # e.g. bad bytes in the first block: the csv module says where
    info = TableInfo(
        format="tsv" if delimiter == "\t" else "csv",
        columns=_clean_header(header),
        encoding=chosen,
        delimiter=delimiter,
        sheet=None,
        size_bytes=size,
        rows_hint=None,
    )
    if arrow is None:
        return TableReader(info, rows, stream, counter)
    stream.close()

    def reopen(accepted: int) -> tuple[_CsvRows, Any, Any]:
        """The csv-module records after the header and the ``accepted`` records."""
        counter = _CountingReader(path.open("rb"))
        stream = io.TextIOWrapper(
            io.BufferedReader(counter, buffer_size=1 << 16),
            encoding=chosen,
            errors="strict",
            newline="",
        )
        again = _CsvRows(stream, delimiter, path, chosen)
        try:
            for _ in itertools.islice(again, header_records + accepted):
                pass
        except BaseException:
            stream.close()
            raise
        return again, stream, counter

    return TableReader(info, iter(()), None, None, arrow, reopen)


def check_table(
    source: str | os.PathLike[str], *, encoding: str | None = None, sheet: str | None = None
) -> TableInfo:
    """Check at once that a file is a table with a header and a data row (limits included).

    What an upload is refused for before it is stored: not a table, too wide, a workbook that
    would inflate too much, no header, no data rows. Reads the header and one row only.
    """
    with open_table(source, encoding=encoding, sheet=sheet) as reader:
        if next(reader.rows(), None) is None:
            raise header_only_error(source)
        return reader.info


def header_only_error(path: str | os.PathLike[str]) -> HeaderOnlyError:
    """The error for a table with a header and no data rows."""
    return HeaderOnlyError(
        f"{Path(path).name} has a header row but no data rows: add the leads below the header"
    )
