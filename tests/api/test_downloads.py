"""Downloads carry any file name safely: RFC 6266 ``filename*`` plus an ASCII fallback."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest

from api.downloads import content_disposition
from core.queue import drain_embedded

from helpers import Tenant

_PARAM = re.compile(r';\s*([^=;\s]+)=("(?:[^"\\]|\\.)*"|[^;]*)')


def _parse(header: str) -> tuple[str, str, list[str]]:
    """(the exact name, the ASCII fallback, every parameter name) as RFC 6266 reads them."""
    assert header.startswith("attachment;")
    params = _PARAM.findall(header)
    assert "".join(f"; {k}={v}" for k, v in params) == header.removeprefix("attachment")
    values = dict(params)
    charset, _, encoded = values["filename*"].partition("''")
    assert charset == "UTF-8"
    return unquote(encoded, errors="strict"), values["filename"].strip('"'), [k for k, _ in params]


@pytest.mark.parametrize(
    "name",
    [
        "客戶名單 2026-cleaned.csv",
        'evil"; filename="x.exe-cleaned.csv',
        "a\r\nSet-Cookie: x=1-cleaned.csv",
        "plain-cleaned.csv",
        "naïve ünïcode.xlsx",
    ],
)
def test_header_names_the_file_once_and_exactly(name: str) -> None:
    header = content_disposition(name)
    assert "\r" not in header
    assert "\n" not in header
    header.encode("latin-1")  # what the server must be able to send
    decoded, fallback, params = _parse(header)
    assert params == ["filename", "filename*"]  # nothing injected
    assert decoded == " ".join(name.split())  # line breaks become spaces, the rest is kept
    assert fallback.isascii()
    assert '"' not in fallback
    assert ";" not in fallback
    assert fallback.endswith((".csv", ".xlsx"))


def test_a_name_without_ascii_falls_back_to_a_generic_one() -> None:
    decoded, fallback, _ = _parse(content_disposition("客戶.csv"))
    assert (decoded, fallback) == ("客戶.csv", "download.csv")


def _ready_list(tenant: Tenant, name: str) -> str:
    response = tenant.http.post(
        "/lists",
        headers=tenant.headers(),
        files={"file": ("leads.csv", b"phone\n138 1234 5678\n", "text/csv")},
        data={"name": name},
    )
    assert response.status_code == 202, response.text
    drain_embedded()
    list_id: str = response.json()["id"]
    body = tenant.http.get(f"/lists/{list_id}", headers=tenant.headers()).json()
    assert body["status"] == "ready", body
    return list_id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("客戶名單 2026", "客戶名單 2026-cleaned.csv"),
        ('evil"; filename="x.exe', 'evil"; filename="x-cleaned.csv'),
        ("two\r\nlines", "two lines-cleaned.csv"),
    ],
)
def test_list_downloads_with_hostile_names(
    api: Any, tenant_a: Tenant, name: str, expected: str
) -> None:
    list_id = _ready_list(tenant_a, name)
    for kind in ("cleaned", "rejects"):
        response = api.get(f"/lists/{list_id}/{kind}.csv", headers=tenant_a.headers())
        assert response.status_code == 200, response.text
        decoded, fallback, params = _parse(response.headers["content-disposition"])
        assert params == ["filename", "filename*"]
        assert decoded == expected.replace("cleaned", kind)
        assert fallback.isascii()
        assert fallback.endswith(f"-{kind}.csv")
    # the connection is still usable after the download
    assert api.get(f"/lists/{list_id}", headers=tenant_a.headers()).status_code == 200
