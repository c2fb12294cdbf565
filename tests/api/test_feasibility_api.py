"""Feasibility reports over the API: from posted pilot results, stored, reproducible, isolated."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.queue import drain_embedded
from feasibility.synthetic import dial_leads, make_lead_list

from helpers import Tenant, make_tenant


def _pilot_records(seed: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    synthetic = make_lead_list(1500, seed=seed)
    pilot = np.random.default_rng(seed).choice(1500, size=150, replace=False)
    attempts = dial_leads(synthetic, pilot, max_attempts=4, seed=seed)
    leads = synthetic.leads.to_dict(orient="records")
    return attempts.to_dict(orient="records"), leads


def _sales(api: Any) -> Tenant:
    return make_tenant(api, "sales-desk", role="sales")


def test_report_from_records_is_stored_reproducible_and_rendered(api: Any) -> None:
    sales = _sales(api)
    attempts, leads = _pilot_records()
    for record in attempts:
        record["started_at"] = str(record["started_at"])
    created = sales.http.post(
        "/feasibility-reports",
        headers=sales.headers(),
        json={
            "attempts": attempts,
            "leads": leads,
            "targets": {"conversions": 50, "deadline_days": 10, "seats": 5},
            "seed": 11,
        },
    )
    assert created.status_code == 202, created.text
    drain_embedded()
    run = sales.http.get(f"/feasibility-reports/{created.json()['id']}", headers=sales.headers())
    body = run.json()
    assert body["status"] == "ready", body
    report = body["report"]
    assert report["verdict"] in {"go", "go_with_conditions", "no_go"}
    assert report["reasons"]
    quote = report["quote"]["per_valid_call"]
    assert (quote["steady"], quote["month_1"], quote["month_2"]) == (1.34, 1.68, 1.49)
    projection = report["projection"]["conversions"]
    assert projection["p10"] <= projection["p50"] <= projection["p90"]

    html = sales.http.get(f"/feasibility-reports/{body['id']}/report.html", headers=sales.headers())
    assert html.status_code == 200
    assert "<svg" in html.text
    assert "http://" not in html.text.replace("http://www.w3.org", "")

    again = sales.http.post(f"/feasibility-reports/{body['id']}/rerun", headers=sales.headers())
    assert again.status_code == 202
    drain_embedded()
    rerun = sales.http.get(f"/feasibility-reports/{again.json()['id']}", headers=sales.headers())
    assert rerun.json()["rerun_of"] == body["id"]
    assert rerun.json()["report"] == report  # same inputs and seed: the same numbers


def test_bad_pilot_results_fail_the_report_with_the_reason(api: Any) -> None:
    sales = _sales(api)
    created = sales.http.post(
        "/feasibility-reports",
        headers=sales.headers(),
        json={
            "attempts": [
                {
                    "lead_id": "x",
                    "attempt_no": 1,
                    "started_at": "2026-01-05T10:00:00",
                    "disposition": "teleported",
                    "talk_s": 0,
                    "converted": 0,
                }
            ],
            "leads": [{"lead_id": "x"}],
        },
    )
    assert created.status_code == 202
    drain_embedded()
    body = sales.http.get(f"/feasibility-reports/{created.json()['id']}", headers=sales.headers())
    assert body.json()["status"] == "failed"
    assert "teleported" in body.json()["error"]


def test_client_keys_cannot_build_quotes(api: Any, tenant_a: Tenant) -> None:
    response = tenant_a.http.post(
        "/feasibility-reports",
        headers=tenant_a.headers(),
        json={"attempts": [{"lead_id": "x"}], "leads": [{"lead_id": "x"}]},
    )
    assert response.status_code == 403


def test_a_client_key_reads_prices_but_never_costs_or_margin(api: Any) -> None:
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role

    sales = _sales(api)
    with system_session() as sess:
        _key, plain = issue_key(
            session=sess, name="client view", role=Role.client, client_refs=[str(sales.client_id)]
        )
    client = Tenant(client_id=sales.client_id, key=plain, http=sales.http)
    attempts, leads = _pilot_records()
    for record in attempts:
        record["started_at"] = str(record["started_at"])
    created = sales.http.post(
        "/feasibility-reports",
        headers=sales.headers(),
        json={"attempts": attempts, "leads": leads, "costs": {"agent_monthly_cost": 4500}},
    )
    assert created.status_code == 202, created.text
    drain_embedded()
    run_id = created.json()["id"]

    internal = sales.http.get(f"/feasibility-reports/{run_id}", headers=sales.headers()).json()
    assert internal["report"]["costs"]["agent_monthly_cost"] == 4500
    assert "margin" in internal["report"]["costs"]

    for response in (
        client.http.get(f"/feasibility-reports/{run_id}", headers=client.headers()),
        client.http.get("/feasibility-reports", headers=client.headers()),
    ):
        assert response.status_code == 200, response.text
        text = response.text
        for secret in ("agent_monthly_cost", "margin", "management_coefficient", "4500"):
            assert secret not in text, secret
    seen = client.http.get(f"/feasibility-reports/{run_id}", headers=client.headers()).json()
    assert seen["costs"] is None
    prices = seen["report"]["quote"]["per_valid_call"]
    assert prices["steady"] == internal["report"]["quote"]["per_valid_call"]["steady"]
    assert seen["report"]["verdict"] == internal["report"]["verdict"]

    html = client.http.get(f"/feasibility-reports/{run_id}/report.html", headers=client.headers())
    assert html.status_code == 403
    assert "4,500" not in html.text


def test_the_client_quote_in_chinese_as_html_and_pdf(api: Any, monkeypatch: Any) -> None:
    import functools
    import os
    import shutil

    import pytest

    from api.routes import feasibility as routes
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role
    from feasibility.client_quote import render_pdf

    sales = make_tenant(api, "广州示例保险", role="sales")
    with system_session() as sess:
        _key, plain = issue_key(
            session=sess, name="client quote", role=Role.client, client_refs=[str(sales.client_id)]
        )
    client = Tenant(client_id=sales.client_id, key=plain, http=sales.http)
    attempts, leads = _pilot_records()
    for record in attempts:
        record["started_at"] = str(record["started_at"])
    created = sales.http.post(
        "/feasibility-reports",
        headers=sales.headers(),
        json={"attempts": attempts, "leads": leads, "costs": {"agent_monthly_cost": 4500}},
    )
    drain_embedded()
    run_id = created.json()["id"]
    internal = sales.http.get(f"/feasibility-reports/{run_id}", headers=sales.headers()).json()
    recommended = internal["report"]["quote"]["recommended"]

    page = client.http.get(
        f"/feasibility-reports/{run_id}/quote.html?language=zh-Hans", headers=client.headers()
    )
    assert page.status_code == 200, page.text
    html = page.text
    assert "服务报价单" in html
    assert "广州示例保险" in html
    assert f"PD-{internal['finished_at'][:10].replace('-', '')}-" in html
    for price in ("month_1", "month_2", "steady"):
        assert f"{recommended[price]:.2f}" in html
    assert "有效期至" in html
    assert "签字" in html
    body = html.split("</style>", 1)[1]  # CSS says "margin" too
    for secret in ("4500", "4,500", "margin", "1.4 ×", "毛利", "成本"):
        assert secret not in body
    traditional = client.http.get(
        f"/feasibility-reports/{run_id}/quote.html?language=zh-Hant", headers=client.headers()
    )
    assert "服務報價單" in traditional.text
    english = client.http.get(
        f"/feasibility-reports/{run_id}/quote.html?language=en", headers=client.headers()
    )
    assert "Quotation" in english.text
    wrong = client.http.get(
        f"/feasibility-reports/{run_id}/quote.html?language=fr", headers=client.headers()
    )
    assert wrong.status_code == 422
    assert "zh-Hans, zh-Hant, en" in wrong.text

    # a server without Chromium says so and points at the HTML (before: a bare 500)
    with monkeypatch.context() as patch:
        patch.setattr(routes, "render_pdf", functools.partial(render_pdf, chromium="/nonexistent"))
        missing = client.http.get(
            f"/feasibility-reports/{run_id}/quote.pdf", headers=client.headers()
        )
    assert missing.status_code == 503, missing.text
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "quote.html" in missing.json()["detail"]

    in_ci = os.environ.get("CI", "").lower() == "true"  # .ci/run installs Chromium: never skip
    if not in_ci and shutil.which("chromium") is None and not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Chromium is not installed: the PDF cannot be printed here")
    pdf = client.http.get(f"/feasibility-reports/{run_id}/quote.pdf", headers=client.headers())
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert "filename*=UTF-8''PD-" in pdf.headers["content-disposition"]  # the shared RFC 6266 form
    assert b"NotoSansCJK" in pdf.content  # the CJK font travels inside the PDF
