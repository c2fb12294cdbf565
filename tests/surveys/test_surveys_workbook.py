"""Uploaded workbooks are untrusted: zip bombs, claimed dimensions and giant cells are refused
before the workbook is parsed, with a message naming the limit (413 for size, 422 for shape)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from openpyxl import Workbook

from surveys.exceptions import XLSFormError, XLSFormTooLargeError
from surveys.workbook import MAX_CELL_CHARS, read_workbook
from surveys.xlsform import import_xlsform


def _form(rows: list[list[object]] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "survey"
    for row in rows or [["type", "name", "label"], ["integer", "age", "Age"]]:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _rewrite(data: bytes, member: str, change: object) -> bytes:
    """The workbook with one zip member replaced by change(old_bytes)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == member:
                content = change(content)  # type: ignore[operator]
            target.writestr(info.filename, content)
    return out.getvalue()


def test_a_shared_string_bomb_is_refused_before_parsing() -> None:
    """8 MiB of shared strings deflate to a few KB (ratio ~1000): the zip directory says so."""
    filler = b"<si><t>" + b"A" * 8 * 1024 * 1024 + b"</t></si>"
    source = zipfile.ZipFile(io.BytesIO(_form()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        target.writestr("xl/sharedStrings.xml", b"<sst>" + filler + b"</sst>")
    assert len(out.getvalue()) < 100_000
    with pytest.raises(XLSFormTooLargeError, match="inflates"):
        import_xlsform(out.getvalue())


def test_a_shared_strings_table_over_its_limit_is_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Random text compresses about 2x, so only the size limit stops it (lowered here so the
    workbook stays small)."""
    import os

    from surveys import workbook

    monkeypatch.setattr(workbook, "MAX_SHARED_STRINGS_BYTES", 1024 * 1024)
    source = zipfile.ZipFile(io.BytesIO(_form()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        text = os.urandom(600_000).hex().encode()
        target.writestr("xl/sharedStrings.xml", b"<sst><si><t>" + text + b"</t></si></sst>")
    with pytest.raises(XLSFormTooLargeError, match=r"shared-strings table inflates to 1,200,"):
        import_xlsform(out.getvalue())


def test_a_claimed_dimension_is_not_believed() -> None:
    """A1:XFD20000 made openpyxl pad every row to 16,384 cells (327 million cells, 8.5 s of CPU
    for a 1.9 KB file): the claim is reset, rows hold only the cells the file has."""
    claimed = _rewrite(
        _form(),
        "xl/worksheets/sheet1.xml",
        lambda content: re.sub(
            rb'<dimension ref="[^"]+"', b'<dimension ref="A1:XFD20000"', content
        ),
    )
    assert b"XFD20000" in zipfile.ZipFile(io.BytesIO(claimed)).read("xl/worksheets/sheet1.xml")
    rows = read_workbook(claimed)["survey"].rows
    assert [len(cells) for _, cells in rows] == [3, 3]


def test_content_beyond_the_column_limit_is_refused() -> None:
    wide = _form([["type", "name", "label"], ["text", "q", "Q", *([None] * 300), "far away"]])
    with pytest.raises(XLSFormError, match="sheet 'survey' spans 2 rows x 304 columns"):
        read_workbook(wide)


def test_a_giant_cell_names_its_sheet_row_and_column() -> None:
    giant = _form([["type", "name", "label"], ["text", "q", "x" * (MAX_CELL_CHARS + 1)]])
    with pytest.raises(XLSFormError, match="sheet 'survey' row 2 column 3"):
        import_xlsform(giant)


def test_normal_forms_pass_the_checks() -> None:
    sheets = read_workbook(_form())
    assert [cells for _, cells in sheets["survey"].rows][1] == ["integer", "age", "Age"]
