"""Builders for lead-list files used by the data_cleaning tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from openpyxl import Workbook

WriteText = Callable[..., Path]
WriteXlsx = Callable[..., Path]


@pytest.fixture
def write_text(tmp_path: Path) -> WriteText:
    """Write rows as a delimited text file in the given encoding and return its path."""

    def write(
        name: str,
        rows: Sequence[Sequence[str]],
        encoding: str = "utf-8",
        delimiter: str = ",",
        bom: bool = False,
    ) -> Path:
        lines = []
        for row in rows:
            cells = []
            for cell in row:
                if any(ch in cell for ch in (delimiter, '"', "\n")):
                    cell = '"' + cell.replace('"', '""') + '"'
                cells.append(cell)
            lines.append(delimiter.join(cells))
        data = ("\r\n".join(lines) + "\r\n").encode(encoding)
        if bom:
            data = b"\xef\xbb\xbf" + data
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def write_xlsx(tmp_path: Path) -> WriteXlsx:
    """Write sheets (name -> rows) to an XLSX workbook and return its path."""

    def write(name: str, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
        workbook = Workbook()
        first = True
        for title, rows in sheets.items():
            sheet = workbook.active if first else workbook.create_sheet()
            assert sheet is not None
            sheet.title = title
            first = False
            for row in rows:
                sheet.append(list(row))
        path = tmp_path / name
        workbook.save(path)
        return path

    return write
