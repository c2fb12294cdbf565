"""Upload errors are said at once, about the upload's own name and in the API's own words.

Before: a zip that is no workbook gave a 500 (openpyxl refuses the extension), a misspelt
``phone_column`` was accepted (202) and failed later in the job, and a feasibility report with a
bad target came back as pydantic's dump with ``[type=…]`` and errors.pydantic.dev links.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from openpyxl import Workbook
from sqlmodel import select

from core.db import system_session
from core.files import StoredFile

from helpers import Tenant, make_tenant


def _upload(tenant: Tenant, content: bytes, filename: str, **form: str) -> Any:
    return tenant.http.post(
        "/lists",
        headers=tenant.headers(),
        files={"file": (filename, content, "application/octet-stream")},
        data=form,
    )


def _refused(response: Any, *phrases: str) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    for phrase in phrases:
        assert phrase in detail
    for leak in ("tmp", "pilotdial-upload", "--", "errors.pydantic.dev", "[type="):
        assert leak not in detail
    return detail


def _nothing_stored(tenant: Tenant) -> None:
    assert tenant.http.get("/lists", headers=tenant.headers()).json() == []
    with system_session() as session:
        assert list(session.exec(select(StoredFile))) == []


def _zip(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _workbook() -> bytes:
    workbook = Workbook()
    workbook.active.append(["name", "phone"])
    workbook.active.append(["Wang", "13800138000"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("filename", ["客戶名單.zip", "leads.xlsx", "leads.csv"])
def test_a_zip_that_is_no_workbook(api: Any, tenant_a: Tenant, filename: str) -> None:
    content = _zip(**{"leads.csv": b"phone\n13800138000\n", "readme.txt": b"hi"})
    _refused(_upload(tenant_a, content, filename), f"{filename} is a zip archive", "unzip it")
    _nothing_stored(tenant_a)


def test_a_workbook_under_another_name(api: Any, tenant_a: Tenant) -> None:
    _refused(_upload(tenant_a, _workbook(), "leads.zip"), "leads.zip is an XLSX", ".xlsx")
    _nothing_stored(tenant_a)
    accepted = _upload(tenant_a, _workbook(), "leads.xlsx")
    assert accepted.status_code == 202, accepted.text


def test_a_misspelt_phone_column_is_refused_at_upload(api: Any, tenant_a: Tenant) -> None:
    content = b"name,mobile\nalice,13800138000\n"
    detail = _refused(
        _upload(tenant_a, content, "contacts.csv", phone_column="tel"),
        "no column named 'tel'",
        "'mobile'",
        "the phone_column field",
    )
    assert "phone column" not in detail
    _nothing_stored(tenant_a)
    folded = _upload(tenant_a, content, "contacts.csv", phone_column=" Mobile ")
    assert folded.status_code == 202, folded.text  # matched as the cleaner matches it


def test_bad_feasibility_targets_are_said_plainly(api: Any) -> None:
    sales = make_tenant(api, "sales-desk", role="sales")
    records = {"attempts": [{"lead_id": "1"}], "leads": [{"lead_id": "1"}]}
    response = sales.http.post(
        "/feasibility-reports",
        headers=sales.headers(),
        json={**records, "targets": {"conversions": "lots"}, "costs": {"bogus": 1}},
    )
    detail = _refused(response, "conversions: ")
    assert "validation error for" not in detail
    assert "\n" not in detail
    assert sales.http.get("/feasibility-reports", headers=sales.headers()).json() == []
