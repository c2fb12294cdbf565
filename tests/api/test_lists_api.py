"""Lead lists over the API: upload, background cleaning, accounting, downloads, failures."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from typing import Any

from openpyxl import Workbook

from core.queue import drain_embedded

from helpers import Tenant

MESSY_ROWS = [
    ("張三", "138 1234 5678", "北京"),
    ("李四", "+86 139-8765-4321", "上海"),
    ("王五", "0086 13812345678", "北京"),  # duplicate of row 1
    ("趙六", "not a phone", "廣州"),
    ("孫七", "", "深圳"),
    ("周八", '=HYPERLINK("x")', "杭州"),
    ("吳九", "(010) 6552 9988 轉 123", "北京"),
    ("鄭十", "13600001111", "成都"),  # put on the do-not-call list below
]


def _gbk_csv(rows: list[tuple[str, str, str]] = MESSY_ROWS) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["姓名", "手機", "城市"])
    writer.writerows(rows)
    return text.getvalue().encode("gbk")


def _upload(tenant: Tenant, content: bytes, filename: str = "leads.csv", **form: Any) -> Any:
    return tenant.http.post(
        "/lists",
        headers=tenant.headers(),
        files={"file": (filename, content, "text/csv")},
        data=form,
    )


def _ready(tenant: Tenant, list_id: str) -> dict[str, Any]:
    drain_embedded()
    body: dict[str, Any] = tenant.http.get(f"/lists/{list_id}", headers=tenant.headers()).json()
    return body


def test_a_cell_with_several_numbers_gives_a_lead_with_alternates(
    api: Any, tenant_a: Tenant
) -> None:
    added = tenant_a.http.post(
        "/suppression", headers=tenant_a.headers(), json={"numbers": ["13700137000"]}
    )
    assert added.status_code == 200, added.text
    rows = [
        ("甲", "138 0013 8000 / 139 1234 5678、137 0013 7000", "北京"),  # 137… is suppressed
        ("乙", "13600136000", "上海"),
    ]
    created = _upload(tenant_a, _gbk_csv(rows)).json()
    lead_list = _ready(tenant_a, created["id"])
    assert lead_list["status"] == "ready", lead_list
    assert lead_list["report"]["multi_number_cells"] == {
        "cells_split": 1,
        "alternates_kept": 1,
        "alternates_dropped": {"dnc": 1},
    }
    leads = tenant_a.http.get(f"/lists/{created['id']}/leads", headers=tenant_a.headers()).json()
    assert [(lead["phone_e164"], lead["alternate_phones"]) for lead in leads] == [
        ("+8613800138000", ["+8613912345678"]),
        ("+8613600136000", []),
    ]
    cleaned = tenant_a.http.get(f"/lists/{created['id']}/cleaned.csv", headers=tenant_a.headers())
    kept = list(csv.DictReader(io.StringIO(cleaned.text)))
    assert [r["phone_alternates"] for r in kept] == ["+8613912345678", ""]


def test_gbk_list_is_cleaned_and_every_row_accounted_for(api: Any, tenant_a: Tenant) -> None:
    added = tenant_a.http.post(
        "/suppression", headers=tenant_a.headers(), json={"numbers": ["136-0000-1111"]}
    )
    assert added.status_code == 200, added.text
    assert added.json()["accepted"] == 1

    response = _upload(tenant_a, _gbk_csv(), name="Beijing pilot")
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] in {"uploaded", "processing", "ready"}

    lead_list = _ready(tenant_a, created["id"])
    assert lead_list["status"] == "ready", lead_list
    report = lead_list["report"]
    assert report["rows_in"] == len(MESSY_ROWS)
    assert report["rows_in"] == (
        report["rows_out"] + report["invalid"] + report["duplicates"] + report["dnc_suppressed"]
    )
    assert report["duplicates"] == 1
    assert report["dnc_suppressed"] == 1
    assert report["phone_column"] == "手機"
    assert lead_list["rows_done"] == lead_list["rows_total"] == len(MESSY_ROWS)

    leads = tenant_a.http.get(f"/lists/{created['id']}/leads", headers=tenant_a.headers()).json()
    assert len(leads) == report["rows_out"]
    by_name = {lead["attributes"]["姓名"]: lead for lead in leads}
    first = by_name["張三"]
    assert first["phone_e164"] == "+8613812345678"
    assert first["phone_type"] == "mobile"
    assert first["phone_region"] == "CN"
    assert "Asia/Shanghai" in first["phone_timezones"]
    assert by_name["吳九"]["phone_extension"] == "123"
    assert by_name["吳九"]["phone_type"] == "fixed_line"
    assert "鄭十" not in by_name  # suppressed
    assert "王五" not in by_name  # duplicate of 張三

    rejects = tenant_a.http.get(f"/lists/{created['id']}/rejects.csv", headers=tenant_a.headers())
    assert rejects.status_code == 200
    rows = list(csv.DictReader(io.StringIO(rejects.text)))
    reasons = {r["姓名"]: r["reject_reason"] for r in rows}
    assert reasons == {
        "王五": "duplicate",
        "趙六": "not_a_number",
        "孫七": "empty",
        "周八": "not_a_number",
        "鄭十": "dnc",
    }
    duplicate = next(r for r in rows if r["姓名"] == "王五")
    assert duplicate["duplicate_of_row"] == str(first["row_number"])
    # a cell that would run as a spreadsheet formula is neutralised in downloads
    formula_row = next(r for r in rows if r["姓名"] == "周八")
    assert formula_row["手機"].startswith("'=")
    assert all(not v.startswith(("=", "+", "-", "@")) for v in formula_row.values())

    cleaned = tenant_a.http.get(f"/lists/{created['id']}/cleaned.csv", headers=tenant_a.headers())
    assert not cleaned.content.startswith(b"\xef\xbb\xbf")  # no BOM unless asked for
    # the guard never alters the E.164 column Pilotdial generates (Excel reads it as text)
    kept = list(csv.DictReader(io.StringIO(cleaned.text)))
    assert kept
    assert all(r["phone_e164"].startswith("+86") for r in kept), kept
    for_excel = tenant_a.http.get(
        f"/lists/{created['id']}/cleaned.csv", headers=tenant_a.headers(), params={"bom": "true"}
    )
    assert for_excel.content == b"\xef\xbb\xbf" + cleaned.content
    header = next(csv.reader(io.StringIO(cleaned.text)))
    assert header[-7:] == [
        "phone_e164",
        "phone_type",
        "phone_region",
        "phone_timezone",
        "phone_extension",
        "phone_carrier",
        "phone_alternates",
    ]
    audit = tenant_a.http.get("/audit", headers=tenant_a.headers()).json()
    actions = {a["action"] for a in audit if a["object_id"] == created["id"]}
    assert {"read_leads", "export_rejects", "export_cleaned"} <= actions


def test_xlsx_named_sheet(api: Any, tenant_a: Tenant, tmp_path: Any) -> None:
    book = Workbook()
    book.active.title = "cover"
    sheet = book.create_sheet("leads")
    sheet.append(["name", "mobile"])
    sheet.append(["a", "13812345678"])
    sheet.append(["b", "13912345678"])
    path = tmp_path / "l.xlsx"
    book.save(path)
    response = _upload(tenant_a, path.read_bytes(), filename="l.xlsx", sheet="leads")
    assert response.status_code == 202, response.text
    lead_list = _ready(tenant_a, response.json()["id"])
    assert lead_list["status"] == "ready", lead_list
    assert lead_list["report"]["rows_out"] == 2


def test_list_without_phone_column_fails_with_reason_and_no_leads(
    api: Any, tenant_a: Tenant
) -> None:
    content = b"name,city\nalice,paris\nbob,rome\n"
    response = _upload(tenant_a, content)
    assert response.status_code == 202
    lead_list = _ready(tenant_a, response.json()["id"])
    assert lead_list["status"] == "failed"
    assert "phone" in lead_list["error"].lower()
    leads = tenant_a.http.get(f"/lists/{lead_list['id']}/leads", headers=tenant_a.headers())
    assert leads.json() == []
    report = tenant_a.http.get(f"/lists/{lead_list['id']}/report", headers=tenant_a.headers())
    assert report.status_code == 409
    job = tenant_a.http.get(f"/jobs/{lead_list['job_id']}", headers=tenant_a.headers()).json()
    assert job["status"] == "failed"


def test_empty_upload_and_oversized_upload_are_rejected(
    app_factory: Any, database_url: str
) -> None:
    from helpers import make_tenant

    http = app_factory(database_url)
    from core.settings import get_settings

    tenant = make_tenant(http, "alpha")
    empty = _upload(tenant, b"")
    assert empty.status_code == 422
    assert "empty" in empty.json()["detail"]

    limit = get_settings().max_upload_bytes
    assert limit > 0
    # shrink the limit for this app to keep the test small
    http.app.state.settings.max_upload_bytes = 1000
    get_settings().max_upload_bytes = 1000
    big = _upload(tenant, b"phone\n" + b"13812345678\n" * 200)
    assert big.status_code == 413
    body = big.json()
    assert body["limit_bytes"] == 1000
    assert "1,000" in body["detail"]
    assert tenant.http.get("/lists", headers=tenant.headers()).json() == []


def test_suppression_list_is_masked_hashed_and_scoped(
    api: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    numbers = ["13812345678", "+86 139 1234 5678", "garbage"]
    result = tenant_a.http.post(
        "/suppression", headers=tenant_a.headers(), json={"numbers": numbers}
    )
    body = result.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [{"input": "garbage", "reason": "not_a_number"}]
    again = tenant_a.http.post(
        "/suppression", headers=tenant_a.headers(), json={"numbers": ["+8613812345678"]}
    ).json()
    assert again["accepted"] == 0
    assert again["already_present"] == 1

    listed = tenant_a.http.get("/suppression", headers=tenant_a.headers()).json()
    assert sorted(e["masked"] for e in listed) == ["+86138****5678", "+86139****5678"]
    assert "13812345678" not in json.dumps(listed)
    assert tenant_b.http.get("/suppression", headers=tenant_b.headers()).json() == []

    from sqlmodel import select

    from campaigns.models import SuppressionEntry
    from core.db import system_session

    with system_session() as s:
        stored = s.exec(select(SuppressionEntry)).all()
    assert all(len(e.number_hash) == 64 and "1381234" not in e.number_hash for e in stored)

    removed = tenant_a.http.post(
        "/suppression/remove", headers=tenant_a.headers(), json={"numbers": ["138-1234-5678"]}
    ).json()
    assert removed["accepted"] == 1
    assert len(tenant_a.http.get("/suppression", headers=tenant_a.headers()).json()) == 1


def test_dnc_file_upload_reports_bad_lines(api: Any, tenant_a: Tenant) -> None:
    content = b"13812345678\n+86 139 1234 5678\nnope\n"
    result = tenant_a.http.post(
        "/suppression/upload",
        headers=tenant_a.headers(),
        files={"file": ("dnc.txt", content, "text/plain")},
    ).json()
    assert result["accepted"] == 2
    assert result["rejected"][0]["line"] == "3"


def test_house_wide_list_needs_admin(api: Any, tenant_a: Tenant) -> None:
    response = tenant_a.http.post(
        "/suppression",
        headers=tenant_a.headers(),
        json={"numbers": ["13812345678"], "house_wide": True},
    )
    assert response.status_code == 403


def _stored_files(tenant: Tenant) -> int:
    from sqlmodel import select

    from core.db import system_session
    from core.files import StoredFile

    with system_session() as session:
        return len(list(session.exec(select(StoredFile))))


def test_non_tables_and_header_only_files_are_refused_at_upload(api: Any, tenant_a: Tenant) -> None:
    pdf = _upload(tenant_a, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nphone\n13800138000\n", "leads.pdf")
    assert pdf.status_code == 422
    assert "leads.pdf is a PDF document" in pdf.json()["detail"]
    header_only = _upload(tenant_a, b"name,phone\n", "客戶名單 2026.csv")
    assert header_only.status_code == 422
    detail = header_only.json()["detail"]
    assert "客戶名單 2026.csv has a header row but no data rows" in detail
    assert "tmp" not in detail
    wide = _upload(tenant_a, ("phone," + ",".join(f"c{i}" for i in range(2000)) + "\n1\n").encode())
    assert wide.status_code == 422
    assert "over the 1,000-column limit" in wide.json()["detail"]
    # Nothing was stored or queued.
    assert tenant_a.http.get("/lists", headers=tenant_a.headers()).json() == []
    assert _stored_files(tenant_a) == 0


def test_a_workbook_bomb_is_413_and_nothing_is_stored(
    api: Any, tenant_a: Tenant, tmp_path: Any
) -> None:
    import zipfile

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["name", "phone"])
    sheet.append(["Wang", "13800138000"])
    path = tmp_path / "bomb.xlsx"
    workbook.save(path)
    with zipfile.ZipFile(path) as archive:
        contents = {info.filename: archive.read(info) for info in archive.infolist()}
    contents["xl/sharedStrings.xml"] = b"<sst><si><t>" + b"A" * (30 << 20) + b"</t></si></sst>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    response = _upload(tenant_a, path.read_bytes(), "bomb.xlsx")
    assert response.status_code == 413
    assert "decompression bomb" in response.json()["detail"]
    assert tenant_a.http.get("/lists", headers=tenant_a.headers()).json() == []
    assert _stored_files(tenant_a) == 0


def test_cleaning_errors_name_the_api_fields_not_cli_flags(api: Any, tenant_a: Tenant) -> None:
    response = _upload(tenant_a, b"name,city\nalice,paris\nbob,rome\n", "contacts.csv")
    assert response.status_code == 202
    lead_list = _ready(tenant_a, response.json()["id"])
    assert lead_list["status"] == "failed"
    assert "phone_column" in lead_list["error"]
    assert "--" not in lead_list["error"]
    ragged = _upload(tenant_a, b"name,phone\nalice,13800138000,extra\n", "ragged.csv")
    failed = _ready(tenant_a, ragged.json()["id"])
    assert "the allow_ragged field" in failed["error"]
    assert "errors.pydantic.dev" not in failed["error"]


def test_width_and_cell_bombs_in_a_workbook_are_422_and_nothing_is_stored(
    api: Any, tenant_a: Tenant, tmp_path: Any
) -> None:
    import re
    import zipfile

    def workbook_with(replace: Callable[[bytes], bytes]) -> bytes:
        workbook = Workbook()
        sheet = workbook.active
        sheet.append(["name", "phone"])
        sheet.append(["Wang", "13800138000"])
        path = tmp_path / "leads.xlsx"
        workbook.save(path)
        with zipfile.ZipFile(path) as archive:
            contents = {info.filename: archive.read(info) for info in archive.infolist()}
        member = "xl/worksheets/sheet1.xml"
        contents[member] = replace(contents[member])
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in contents.items():
                archive.writestr(name, data)
        return path.read_bytes()

    wide = b"".join(b'<c t="inlineStr"><is><t>c%d</t></is></c>' % i for i in range(16_000))
    no_dimension = workbook_with(
        lambda xml: re.sub(
            rb'<row r="1".*?</row>',
            b'<row r="1">' + wide + b"</row>",
            re.sub(rb'<dimension ref="[^"]*" ?/>', b"", xml),
            flags=re.S,
        )
    )
    claimed = workbook_with(
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD20000"', xml)
    )
    # Random text: it does not compress, so the ratio check lets it through to the cell check.
    random_text = b"<t>" + os.urandom((1 << 20) // 2 + 1).hex().encode() + b"</t>"
    giant = workbook_with(lambda xml: xml.replace(b"<t>Wang</t>", random_text))
    for content, expected in [
        (no_dimension, "row 1 of sheet 'Sheet' has 16,000 columns"),
        (claimed, "16,384 columns, over the 1,000-column limit"),
        (giant, "cell A2 of sheet 'Sheet' holds 1,048,578 characters"),
    ]:
        assert len(content) < 1 << 20
        response = _upload(tenant_a, content, "leads.xlsx")
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert expected in response.json()["detail"]
    assert tenant_a.http.get("/lists", headers=tenant_a.headers()).json() == []
    assert _stored_files(tenant_a) == 0
