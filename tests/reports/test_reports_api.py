"""Reports and statements over HTTP: generate, list, download (audited), tenancy, roles, the
client's template and language; on PostgreSQL and SQLite."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaign_builders import make_campaign, make_list
from openpyxl import load_workbook
from sqlmodel import select

from campaigns.models import AttemptStatus, CallAttempt, OutcomeClass
from core.models import AuditEvent

from helpers import Tenant, make_tenant

SH = ZoneInfo("Asia/Shanghai")


def _calls(tenant: Tenant) -> uuid.UUID:
    from core.db import tenant_session

    with tenant_session([tenant.client_id]) as session:
        lead_list, leads = make_list(session, tenant.client_id, count=4)
        campaign = make_campaign(session, tenant.client_id, [lead_list.id], skill_group="g1")
        for i, lead in enumerate(leads):
            at = datetime(2026, 11, 2, 23, 58, tzinfo=SH) + timedelta(minutes=i)  # over midnight
            session.add(
                CallAttempt(
                    client_id=tenant.client_id,
                    campaign_id=campaign.id,
                    lead_id=lead.id,
                    attempt_no=1,
                    idempotency_key=f"api{i}",
                    status=AttemptStatus.finished,
                    number_dialed=lead.phone_e164,
                    agent_id="A7",
                    skill_group="g1",
                    dialed_at=at,
                    answered_at=at,
                    agent_connected_at=at + timedelta(seconds=2),
                    outcome=OutcomeClass.contact,
                    talk_s=20.0 + i,
                )
            )
        return campaign.id


def _operator(api: Any, tenant: Tenant) -> Tenant:
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role

    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="op", role=Role.operator, client_refs=[str(tenant.client_id)]
        )
    return Tenant(client_id=tenant.client_id, key=plain, http=api)


def test_generate_list_download_and_tenancy(api: Any, tenant_a: Tenant) -> None:
    campaign_id = _calls(tenant_a)
    h = tenant_a.headers()
    profile = api.patch(
        "/report-profile",
        headers=h,
        json={"language": "zh-Hant", "number_mask": "last4", "display_name": "Alpha 公司"},
    )
    assert profile.status_code == 200, profile.text
    created = api.post(
        "/reports",
        headers=h,
        json={
            "kind": "service_level",
            "period": "month",
            "start": "2026-11-01",
            "interval": "day",
            "campaign_id": str(campaign_id),
        },
    )
    assert created.status_code == 201, created.text
    report = created.json()
    assert report["summary"]["sections"] == {"service_level": 2}  # 2 Nov and 3 Nov, local
    listed = api.get("/reports", headers=h).json()
    assert [r["id"] for r in listed] == [report["id"]]
    download = api.get(report["download"], headers=h)
    assert download.status_code == 200
    book = load_workbook(io.BytesIO(download.content))
    sheet = book[book.sheetnames[1]]
    assert sheet.title.startswith("話務服務水平")
    assert [sheet.cell(row=r, column=2).value for r in (2, 3)] == [2, 2]  # dials per day

    detail = api.post(
        "/reports",
        headers=h,
        json={"kind": "detail", "period": "day", "start": "2026-11-02", "fmt": "csv"},
    ).json()
    text = api.get(detail["download"], headers=h).content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("時間,工號,技能組,主叫,被叫")
    assert "*********0000" in text  # +8613800000000 with all but the last 4 hidden

    from core.db import system_session

    with system_session() as session:
        actions = [
            e.action
            for e in session.exec(
                select(AuditEvent).where(AuditEvent.client_id == tenant_a.client_id)
            )
        ]
    assert actions.count("report.download") == 2
    assert actions.count("report.generate") == 2

    other = make_tenant(api, "other")
    assert api.get(f"/reports/{report['id']}", headers=other.headers()).status_code == 404
    assert api.get(report["download"], headers=other.headers()).status_code == 404
    assert api.get("/reports", headers=other.headers()).json() == []
    foreign = api.post(
        "/reports",
        headers=other.headers(),
        json={"kind": "detail", "start": "2026-11-02", "campaign_id": str(campaign_id)},
    )
    assert foreign.status_code == 404

    bad = api.post("/reports", headers=h, json={"kind": "nope", "start": "2026-11-02"})
    assert bad.status_code == 422
    bad_day = api.post("/reports", headers=h, json={"kind": "detail", "start": "11/02/2026"})
    assert bad_day.status_code == 422
    assert bad_day.headers["content-type"].startswith("application/problem+json")


def test_statement_flow_over_http(api: Any, tenant_a: Tenant) -> None:
    campaign_id = _calls(tenant_a)
    operator = _operator(api, tenant_a)
    contract = api.put(
        f"/campaigns/{campaign_id}/contract",
        headers=operator.headers(),
        json={"starts_on": "2026-11-01", "agents": 2},
    )
    assert contract.status_code == 200, contract.text
    # the client may read, confirm and dispute, not compute or issue
    denied = api.post(
        "/statements",
        headers=tenant_a.headers(),
        json={"month": "2026-11-01", "campaign_id": str(campaign_id)},
    )
    assert denied.status_code == 403
    made = api.post(
        "/statements",
        headers=operator.headers(),
        json={"month": "2026-11-01", "campaign_id": str(campaign_id)},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["net"] == "6.72"  # 4 valid calls × 1.68 (month 1)
    assert body["vat"] == "0.40"
    assert body["total"] == "7.12"
    sid = body["id"]
    assert api.post(f"/statements/{sid}/issue", headers=tenant_a.headers()).status_code == 403
    issued = api.post(f"/statements/{sid}/issue", headers=operator.headers()).json()
    assert issued["status"] == "issued"
    confirmed = api.post(f"/statements/{sid}/confirm", headers=tenant_a.headers())
    assert confirmed.json()["status"] == "confirmed"
    again = api.post(f"/statements/{sid}/issue", headers=operator.headers())
    assert again.status_code == 409
    assert again.json()["allowed"] == ["paid", "superseded"]
    page = api.get(f"/statements/{sid}/document?language=en", headers=tenant_a.headers())
    assert page.status_code == 200
    assert "Monthly statement 2026-11" in page.text
    other = make_tenant(api, "other")
    assert api.get(f"/statements/{sid}", headers=other.headers()).status_code == 404
    assert api.post(f"/statements/{sid}/confirm", headers=other.headers()).status_code == 404
