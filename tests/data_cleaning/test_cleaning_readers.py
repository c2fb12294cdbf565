"""Reading real messy inputs: encodings, TSV, XLSX, and every kind of bad file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from data_cleaning import (
    BinaryFileError,
    CleaningOptions,
    EmptyInputError,
    EncodingError,
    FormulaCellsError,
    HeaderOnlyError,
    InputFileError,
    InputTooLargeError,
    PhoneColumnError,
    RaggedRowsError,
    SheetNotFoundError,
    clean_table,
    detect_phone_column,
    open_table,
)
from data_cleaning.readers import check_table

WriteText = Callable[..., Path]
WriteXlsx = Callable[..., Path]

ROWS = [
    ["姓名", "手机", "地址", "备注"],
    ["张伟", "138 0013 8000", "北京市朝阳区建国路88号", "老客户, 回访"],
    ["李娜", "+86-139-1234-5678", "上海市浦东新区", '说"明天再打"\n第二行'],
    ["陳小明", "(0755) 2345 6789", "深圳市福田區", ""],
]


def _read_all(path: Path, **kwargs: object) -> tuple[tuple[str, ...], list[list[str]], str | None]:
    with open_table(path, **kwargs) as reader:  # type: ignore[arg-type]
        return reader.info.columns, [row for _, row in reader.rows()], reader.info.encoding


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig"), ("gbk", False, "gb18030")],
)
def test_chinese_csv_encodings_are_detected(
    write_text: WriteText, encoding: str, bom: bool, expected: str
) -> None:
    rows = [[cell.replace("陳", "陈").replace("區", "区") for cell in row] for row in ROWS]
    path = write_text("leads.csv", rows, encoding=encoding, bom=bom)
    columns, data, detected = _read_all(path)
    assert detected == expected
    assert columns == tuple(rows[0])
    assert data == rows[1:]


def test_big5_csv_is_detected(write_text: WriteText) -> None:
    rows = [
        ["姓名", "電話", "地址"],
        ["陳大文", "0912 345 678", "臺北市信義區市府路一號"],
        ["林美麗", "02-2345-6789", "高雄市前鎮區中華五路"],
        ["黃志明", "0933 222 111", "臺中市西屯區臺灣大道三段"],
    ]
    path = write_text("taiwan.csv", rows, encoding="big5")
    columns, data, detected = _read_all(path)
    assert detected == "big5"
    assert columns == tuple(rows[0])
    assert data == rows[1:]


def test_encoding_override_wins_and_wrong_override_is_reported(write_text: WriteText) -> None:
    path = write_text("gbk.csv", [["电话"], ["13800138000"], ["备注：北京"]], encoding="gbk")
    _, data, detected = _read_all(path, encoding="GBK")
    assert detected == "gb18030"
    assert data[1] == ["备注：北京"]
    with pytest.raises(EncodingError, match="does not decode as utf-8"):
        open_table(path, encoding="utf-8")


def test_tsv_and_quoted_fields(write_text: WriteText) -> None:
    path = write_text("leads.tsv", ROWS, delimiter="\t")
    columns, data, _ = _read_all(path)
    assert columns == tuple(ROWS[0])
    assert data[1][3] == '说"明天再打"\n第二行'
    csv_path = write_text("leads.csv", ROWS)
    assert _read_all(csv_path)[1][0][3] == "老客户, 回访"


def test_utf16_export_from_excel(tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes("电话\t姓名\r\n13800138000\t王芳\r\n".encode("utf-16"))
    columns, data, detected = _read_all(path)
    assert detected == "utf-16"
    assert columns == ("电话", "姓名")
    assert data == [["13800138000", "王芳"]]


def test_xlsx_first_and_named_sheet(write_xlsx: WriteXlsx) -> None:
    path = write_xlsx(
        "leads.xlsx",
        {
            "说明": [["这是说明页"]],
            "名单": [
                ["姓名", "手机号码", "金额"],
                ["王芳", 13800138000, 12.5],
                ["李强", "139 1234 5678"],
            ],
        },
    )
    columns, data, _ = _read_all(path)
    assert columns == ("这是说明页",)
    columns, data, _ = _read_all(path, sheet="名单")
    assert columns == ("姓名", "手机号码", "金额")
    # Numbers stored as numbers come back without ".0"; short rows are padded, not ragged.
    assert data == [["王芳", "13800138000", "12.5"], ["李强", "139 1234 5678", ""]]
    with pytest.raises(SheetNotFoundError, match="'名单'"):
        open_table(path, sheet="Sheet9")


def test_xlsx_with_formulas_is_refused(write_xlsx: WriteXlsx) -> None:
    path = write_xlsx("formula.xlsx", {"Sheet1": [["phone", "n"], ["13800138000", "=1+1"]]})
    with pytest.raises(FormulaCellsError, match="B2") as caught:
        clean_table(path).consume()
    assert "paste it as values" in str(caught.value)


def test_empty_and_header_only_files(write_text: WriteText, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(EmptyInputError, match="empty"):
        clean_table(empty)
    blank = tmp_path / "blank.csv"
    blank.write_bytes(b"\r\n \r\n")
    with pytest.raises(EmptyInputError):
        clean_table(blank)
    header_only = write_text("header.csv", [["name", "phone"]])
    with pytest.raises(HeaderOnlyError, match="no data rows"):
        clean_table(header_only)


def test_binary_and_undecodable_files(tmp_path: Path) -> None:
    png = tmp_path / "photo.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(BinaryFileError, match="PNG image"):
        clean_table(png)
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(BinaryFileError, match=r"\.xls"):
        clean_table(xls)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"phone\n" + bytes([0x81, 0xFF, 0xFE, 0x80, 0xFF]) * 50)
    with pytest.raises(EncodingError, match="--encoding"):
        clean_table(garbage)
    fake_xlsx = tmp_path / "fake.xlsx"
    fake_xlsx.write_text("phone\n13800138000\n")
    with pytest.raises(BinaryFileError, match="not an XLSX"):
        clean_table(fake_xlsx)


def test_size_limit(write_text: WriteText) -> None:
    path = write_text("big.csv", [["phone"]] + [["13800138000"]] * 1000)
    with pytest.raises(InputTooLargeError, match="limit") as caught:
        clean_table(path, CleaningOptions(max_input_bytes=1024))
    assert caught.value.limit_bytes == 1024


def test_ragged_rows_fail_by_default_and_can_be_allowed(write_text: WriteText) -> None:
    rows = [
        ["name", "phone", "city"],
        ["a", "13800138000", "x"],
        ["b", "13900139000"],
        ["c", "13700137000", "y", "extra"],
        ["d", "13600136000", "z", ""],
    ]
    path = write_text("ragged.csv", rows)
    with pytest.raises(RaggedRowsError, match="row 3 has 2 cells"):
        clean_table(path).consume()
    run = clean_table(path, CleaningOptions(allow_ragged=True))
    results = [row for chunk in run for row in chunk]
    assert run.report.ragged_rows == 2
    assert run.ragged_examples == [3, 4]
    assert results[1].original == {
        "name": "b",
        "phone": "13900139000",
        "city": "",
        "extra_cells": "",
    }
    assert results[2].original["extra_cells"] == "extra"
    # A trailing empty cell is not ragged.
    assert results[3].original["city"] == "z"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["姓名", "联系电话", "备注"], "联系电话"),
        (["Name", "Mobile No.", "Note"], "Mobile No."),
        (["名字", "電話", "地址"], "電話"),
        (["name", "contact", "city"], "contact"),
    ],
)
def test_phone_column_detection(header: list[str], expected: str) -> None:
    sample = [["王芳", "13800138000", "北京"], ["李强", "+86 139 1234 5678", "上海"]]
    assert detect_phone_column(header, sample) == expected


def test_phone_column_by_content_prefers_phones_over_ids() -> None:
    header = ["id", "customer", "value"]
    sample = [["1", "王芳", "138-0013-8000"], ["2", "李强", "13912345678"]]
    assert detect_phone_column(header, sample) == "value"


def test_no_phone_column_and_unknown_explicit_column() -> None:
    with pytest.raises(PhoneColumnError, match="--phone-column"):
        detect_phone_column(["name", "city"], [["王芳", "北京"]])
    with pytest.raises(PhoneColumnError, match="'tel'"):
        detect_phone_column(["name", "phone"], [["a", "13800138000"]], "tel")
    assert detect_phone_column(["name", "Phone"], [["a", "1"]], "phone") == "Phone"


# ------------------------------------------------ bombs and non-tables, refused before reading


def _rewrite_xlsx(path: Path, member: str, replace: Callable[[bytes], bytes]) -> None:
    """Rewrite one member of a workbook (deflated, like a spreadsheet would)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        contents = {info.filename: archive.read(info) for info in archive.infolist()}
    contents[member] = replace(contents[member])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def _workbook(tmp_path: Path) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["name", "phone"])
    sheet.append(["Wang", "13800138000"])
    path = tmp_path / "leads.xlsx"
    workbook.save(path)
    return path


def test_a_decompression_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    path = _workbook(tmp_path)
    # 40 MiB of one repeated shared string compresses to a few tens of KiB.
    bomb = b"<si><t>" + b"A" * (40 << 20) + b"</t></si>"
    _rewrite_xlsx(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"</sheetData>", bomb + b"</sheetData>"),
    )
    assert path.stat().st_size < 1 << 20
    with pytest.raises(InputTooLargeError, match="decompression bomb"):
        clean_table(path)


def test_a_tiny_sheet_claiming_a_huge_range_is_refused(tmp_path: Path) -> None:
    import re

    path = _workbook(tmp_path)
    _rewrite_xlsx(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD20000"', xml),
    )
    with pytest.raises(InputFileError, match="16,384 columns"):
        clean_table(path)


def test_a_million_column_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("phone," + ",".join(f"c{i}" for i in range(1_000_000)) + "\n13800138000\n")
    with pytest.raises(InputFileError, match="first line is longer than 1 MiB"):
        clean_table(path)
    path.write_text("phone," + ",".join(f"c{i}" for i in range(5000)) + "\n13800138000\n")
    with pytest.raises(InputFileError, match=r"5,001 columns, over the 1,000-column limit"):
        clean_table(path)


@pytest.mark.parametrize(
    ("head", "what"),
    [(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"), (b"GIF89a\x01\x00", "GIF")],
)
def test_obvious_non_tables_are_named(tmp_path: Path, head: bytes, what: str) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(head + b"phone,name\n" * 20)
    with pytest.raises(BinaryFileError, match=f"leads.csv is an? {what}"):
        check_table(path)


def test_check_table_refuses_a_header_only_file_under_its_own_name(write_text: WriteText) -> None:
    path = write_text("客戶名單.csv", [["name", "phone"]])
    with pytest.raises(HeaderOnlyError, match=r"客戶名單\.csv has a header row but no data rows"):
        check_table(path)
    assert check_table(write_text("ok.csv", ROWS)).columns == tuple(ROWS[0])


def test_a_sheet_without_a_dimension_is_held_to_the_column_limit(tmp_path: Path) -> None:
    import re

    path = _workbook(tmp_path)
    wide = b"".join(b'<c t="inlineStr"><is><t>c%d</t></is></c>' % i for i in range(16_000))

    def widen(xml: bytes) -> bytes:
        xml = re.sub(rb'<dimension ref="[^"]*" ?/>', b"", xml)
        return re.sub(rb'<row r="1".*?</row>', b'<row r="1">' + wide + b"</row>", xml, flags=re.S)

    _rewrite_xlsx(path, "xl/worksheets/sheet1.xml", widen)
    assert path.stat().st_size < 100_000
    with pytest.raises(InputFileError, match=r"row 1 of sheet 'Sheet' has 16,000 columns"):
        check_table(path)


def test_a_giant_cell_is_refused_naming_the_cell(tmp_path: Path) -> None:
    from data_cleaning.readers import MAX_CELL_CHARS

    path = _workbook(tmp_path)
    giant = b"<t>" + os.urandom(MAX_CELL_CHARS // 2 + 1).hex().encode() + b"</t>"
    _rewrite_xlsx(path, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"<t>Wang</t>", giant))
    with pytest.raises(InputFileError, match=r"cell A2 of sheet 'Sheet' holds 1,048,578 char"):
        check_table(path)
    text = tmp_path / "giant.csv"
    text.write_bytes(b"phone,note\n13800138000," + b"x" * (MAX_CELL_CHARS + 10) + b"\n")
    with pytest.raises(InputFileError, match="limit"):
        check_table(text)


def test_a_shared_strings_table_over_its_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from data_cleaning import readers

    # Random text compresses about 2x, so only the size limit can stop it; the limit is
    # lowered so that the workbook stays small.
    monkeypatch.setattr(readers, "MAX_SHARED_STRINGS_BYTES", 1 << 20)
    path = _workbook(tmp_path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        text = os.urandom(600_000).hex().encode()
        archive.writestr("xl/sharedStrings.xml", b"<sst><si><t>" + text + b"</t></si></sst>")
    expected = r"shared-strings table unpacks to 1\.1 MiB, over the 1 MiB limit"
    with pytest.raises(InputTooLargeError, match=expected):
        check_table(path)
