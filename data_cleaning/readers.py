"""Readers for lead lists: CSV/TSV in UTF-8, UTF-8 with BOM, UTF-16, GBK/GB18030 and Big5, and XLSX.

:func:`open_table` sniffs the format from the file's first bytes, detects the text encoding
(or takes the one given), reads the header, and returns a :class:`TableReader` that streams
data rows as lists of strings without loading the file into memory.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

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
    "TableInfo",
    "TableReader",
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
_ENCODING_HINT: Final = (
    "re-save the file as UTF-8 CSV, or name its encoding with --encoding (utf-8, gbk, big5)"
)

Format = Literal["csv", "tsv", "xlsx"]


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

    def __init__(self, info: TableInfo, rows: Iterator[list[str]], closer: Any, counter: Any):
        self.info = info
        self._rows = rows
        self._closer = closer
        self._counter = counter
        #: Spreadsheet row number of the last row returned (the header is row 1).
        self.last_row_number = 1
        #: Blank rows skipped so far.
        self.blank_rows = 0
        self._number = 1
        self._row_iter = self._generate()

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        if self._closer is not None:
            self._closer.close()
            self._closer = None

    def fraction_read(self) -> float | None:
        """Share of the file consumed so far, when it can be told."""
        if self._counter is None or not self.info.size_bytes:
            return None
        done: int = self._counter.bytes_read
        return min(1.0, done / self.info.size_bytes)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """The one iterator of ``(row_number, cells)`` over the non-blank data rows."""
        return self._row_iter

    def read_batch(self, size: int) -> tuple[list[int], list[list[str]], bool]:
        """Read up to ``size`` records at once: ``(row numbers, rows, end reached)``.

        The same rows, numbers and blank-row skipping as :meth:`rows` (the two share their
        position), without a Python step per row.
        """
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

    def _generate(self) -> Iterator[tuple[int, list[str]]]:
        for row in self._rows:
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


def _open_xlsx(path: Path, sheet: str | None, size: int) -> TableReader:
    import zipfile

    from openpyxl import load_workbook

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

    width = 0

    def cells() -> Iterator[list[str]]:
        for row in worksheet.iter_rows():
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
                values.append(_cell_text(cell.value))
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
) -> TableReader:
    """Open a CSV, TSV or XLSX lead list, read its header and return a streaming reader."""
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
    info = TableInfo(
        format="tsv" if delimiter == "\t" else "csv",
        columns=_clean_header(header),
        encoding=chosen,
        delimiter=delimiter,
        sheet=None,
        size_bytes=size,
        rows_hint=None,
    )
    return TableReader(info, rows, stream, counter)


def header_only_error(path: str | os.PathLike[str]) -> HeaderOnlyError:
    """The error for a table with a header and no data rows."""
    return HeaderOnlyError(
        f"{Path(path).name} has a header row but no data rows: add the leads below the header"
    )
