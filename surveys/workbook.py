"""Read the sheets of an XLSForm workbook (``.xlsx`` with openpyxl, ``.xls`` with xlrd) safely.

An uploaded workbook is untrusted: a ``.xlsx`` is a zip whose members can inflate a thousand
times (a shared-string bomb), and a sheet can claim ``A1:XFD20000`` so that a reader pads
every row to 16,384 cells. Before anything is parsed, the zip directory is checked
(inflated size and ratio, per member and in total, and the shared-strings table that is
read whole); a sheet's declared dimension is never
trusted (it is reset, so rows hold only the cells the file really has), only the sheets an
XLSForm uses are read, and their rows, columns and cells are counted and checked for length
as they are read. Limits give
:class:`~surveys.exceptions.XLSFormTooLargeError` (HTTP 413) for sizes and
:class:`~surveys.exceptions.XLSFormError` (422) for shapes, naming the sheet.

Sheets are returned by lower-cased name with their rows as lists of cell values (1-based row
numbers), so the importer is format-agnostic.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from surveys.exceptions import XLSFormError, XLSFormTooLargeError

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_INFLATED_BYTES",
    "MAX_INFLATE_RATIO",
    "MAX_ROWS",
    "MAX_SHARED_STRINGS_BYTES",
    "Sheet",
    "read_workbook",
]

MAX_INFLATED_BYTES: Final = 64 * 1024 * 1024
"""Total uncompressed size of a ``.xlsx``'s members."""
MAX_SHARED_STRINGS_BYTES: Final = 16 * 1024 * 1024
"""Uncompressed size of the shared-strings table, which openpyxl holds in memory whole (about
6x its size for short strings); a 1,000-question form in five languages needs about 2 MiB."""
MAX_INFLATE_RATIO: Final = 100
"""Largest uncompressed/compressed ratio of a member bigger than 1 MiB (text XML: 5-20)."""
_RATIO_FLOOR: Final = 1024 * 1024
MAX_ROWS: Final = 50_000
MAX_COLUMNS: Final = 256
MAX_CELLS: Final = 2_000_000
MAX_CELL_CHARS: Final = 10_000
"""Longest cell read (a consent text of a few pages); Excel's own limit is 32,767."""

SHEETS: Final = frozenset(
    {"survey", "choices", "settings", "quotas", "attributes", "external_choices"}
)
"""The sheets an XLSForm import reads (by lower-cased name); others are not even parsed."""


@dataclass
class Sheet:
    """One worksheet: its name as written and its non-empty rows (1-based numbers)."""

    name: str
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)
    cells: int = 0


def _check_shape(sheet: str, rows: int, columns: int) -> None:
    if rows > MAX_ROWS or columns > MAX_COLUMNS or rows * columns > MAX_CELLS:
        raise XLSFormError(
            f"sheet {sheet!r} spans {rows:,} rows x {columns:,} columns; an XLSForm may have at "
            f"most {MAX_ROWS:,} rows, {MAX_COLUMNS} columns and {MAX_CELLS:,} cells per sheet "
            "(delete the empty rows and columns after the form and save again)"
        )


def _check_zip(data: bytes) -> None:
    """Check the archive's sizes before anything is inflated."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise XLSFormError("not a readable .xlsx workbook; save it as Excel .xlsx") from None
    with archive:
        total = 0
        for info in archive.infolist():
            total += info.file_size
            if info.filename.lower().endswith("sharedstrings.xml") and (
                info.file_size > MAX_SHARED_STRINGS_BYTES
            ):
                raise XLSFormTooLargeError(
                    f"the workbook's shared-strings table inflates to {info.file_size:,} bytes; "
                    f"the limit is {MAX_SHARED_STRINGS_BYTES:,} (an XLSForm's texts need far "
                    "less: remove pasted data or unused sheets and save again)"
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR and ratio > MAX_INFLATE_RATIO:
                raise XLSFormTooLargeError(
                    f"workbook member {info.filename} inflates {ratio:,.0f} times "
                    f"(to {info.file_size:,} bytes); the limit is {MAX_INFLATE_RATIO} times"
                )
        if total > MAX_INFLATED_BYTES:
            raise XLSFormTooLargeError(
                f"the workbook inflates to {total:,} bytes; the limit is {MAX_INFLATED_BYTES:,}"
            )


def _check_cell(sheet: str, row: int, column: int, value: Any) -> None:
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        raise XLSFormError(
            f"sheet {sheet!r} row {row} column {column}: a cell of {len(value):,} characters; "
            f"the limit is {MAX_CELL_CHARS:,}"
        )


def _read_xlsx(data: bytes, wanted: frozenset[str]) -> list[Sheet]:
    from openpyxl import load_workbook

    _check_zip(data)
    try:
        with warnings.catch_warnings():  # "Unknown extension is not supported": harmless
            warnings.simplefilter("ignore", UserWarning)
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise XLSFormError(
            f"not a readable .xlsx workbook ({type(exc).__name__}); save it as Excel .xlsx"
        ) from None
    sheets = []
    try:
        for name in workbook.sheetnames:
            worksheet = workbook[name]
            if name.strip().lower() not in wanted or not hasattr(worksheet, "iter_rows"):
                continue  # another sheet, or a chart sheet
            worksheet.reset_dimensions()  # the claimed A1:XFD20000 is not believed
            sheet = Sheet(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                rows = enumerate(worksheet.iter_rows(values_only=True), start=1)
                for number, values in rows:
                    _add_row(sheet, number, list(values))
            sheets.append(sheet)
    finally:
        workbook.close()
    return sheets


def _add_row(sheet: Sheet, number: int, cells: list[Any]) -> None:
    """Keep a row that has content, after checking where its content lies."""
    while cells and (cells[-1] is None or str(cells[-1]).strip() == ""):
        cells.pop()
    if not cells:
        return
    if number > MAX_ROWS or len(cells) > MAX_COLUMNS:
        _check_shape(sheet.name, number, len(cells))
    for column, value in enumerate(cells, start=1):
        _check_cell(sheet.name, number, column, value)
    sheet.cells += len(cells)
    if sheet.cells > MAX_CELLS:
        _check_shape(sheet.name, number, MAX_CELLS // number + 1)
    sheet.rows.append((number, cells))


def _read_xls(data: bytes, wanted: frozenset[str]) -> list[Sheet]:
    import xlrd  # type: ignore[import-untyped]

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True, ragged_rows=True)
    except Exception as exc:  # xlrd raises XLRDError, struct errors, ... for a bad file
        raise XLSFormError(
            f"not a readable .xls workbook ({type(exc).__name__}); save it as Excel .xlsx"
        ) from None
    sheets = []
    try:
        for index, name in enumerate(book.sheet_names()):
            if name.strip().lower() not in wanted:
                continue
            worksheet = book.sheet_by_index(index)
            sheet = Sheet(name)
            for r in range(worksheet.nrows):
                cells: list[Any] = []
                for cell in worksheet.row(r)[: MAX_COLUMNS + 1]:
                    value = cell.value
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        value = xlrd.xldate.xldate_as_datetime(value, book.datemode)
                    elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                        value = bool(value)
                    elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
                        value = None
                    cells.append(value)
                _add_row(sheet, r + 1, cells)
            sheets.append(sheet)
            book.unload_sheet(index)
    finally:
        book.release_resources()
    return sheets


def read_workbook(
    source: str | Path | bytes, *, wanted: frozenset[str] | None = SHEETS
) -> dict[str, Sheet]:
    """The sheets of an ``.xlsx`` or ``.xls`` workbook by lower-cased, stripped name: those in
    ``wanted``, or, when the workbook has none of them, its first sheet (read as a survey)."""
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise XLSFormError(f"{source!s} does not exist; check the path") from None
    if data[:4] == b"PK\x03\x04":
        reader = _read_xlsx
    elif data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        reader = _read_xls
    else:
        raise XLSFormError("not an Excel workbook (.xlsx or .xls); save the form as Excel .xlsx")
    sheets = reader(data, wanted or frozenset())
    if not sheets:
        sheets = reader(data, frozenset({_first_sheet_name(data, reader)}))
    return {sheet.name.strip().lower(): sheet for sheet in sheets}


def _first_sheet_name(data: bytes, reader: Any) -> str:
    if reader is _read_xls:
        import xlrd

        names: list[str] = xlrd.open_workbook(file_contents=data, on_demand=True).sheet_names()
    else:
        from openpyxl import load_workbook

        names = load_workbook(io.BytesIO(data), read_only=True).sheetnames
    return names[0].strip().lower() if names else ""
