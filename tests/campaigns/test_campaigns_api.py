"""The campaigns REST API end to end (PostgreSQL and SQLite), and tenant isolation per route."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

from campaign_builders import make_list
from fastapi.routing import APIRoute

from core.db import system_session

from helpers import Tenant, make_tenant


def _ready_list(tenant: Tenant, count: int = 6) -> tuple[str, list[str]]:
    with system_session() as s:
        lead_list, leads = make_list(
            s,
            tenant.client_id,
            count,
            phone_types=["mobile", "fixed_line"] * (count // 2),
            attributes=[{"name": f"=cmd{i}", "city": "SH"} for i in range(count)],
        )
        return str(lead_list.id), [str(lead.id) for lead in leads]


def _campaign(tenant: Tenant, list_id: str) -> dict[str, Any]:
    r = tenant.http.post(
        "/campaigns",
        headers=tenant.headers(),
        json={"name": "Spring sale", "list_ids": [list_id], "max_attempts": 4},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _record_deal(campaign_id: str) -> None:
    """Move a pilot_done campaign to approved the way the deal routes do (service level)."""
    from campaigns.models import Campaign, CampaignStatus
    from campaigns.service import transition_campaign

    with system_session() as s:
        campaign = s.get(Campaign, uuid.UUID(campaign_id))
        assert campaign is not None
        for target in (CampaignStatus.quoted, CampaignStatus.approved):
            transition_campaign(session=s, campaign=campaign, target=target)


def test_campaign_lifecycle_batches_attempts_over_http(api: Any) -> None:
    op = make_tenant(api, "ops", role="operator")
    list_id, _lead_ids = _ready_list(op)
    campaign = _campaign(op, list_id)
    cid = campaign["id"]
    assert campaign["status"] == "draft"
    assert campaign["allowed_next_states"] == ["piloting", "cancelled"]
    assert campaign["fallback_timezone"] == "Asia/Shanghai"

    # settings validation says what is wrong
    r = op.http.patch(
        f"/campaigns/{cid}", headers=op.headers(), json={"max_ring_s": 5, "holidays": ["x"]}
    )
    assert r.status_code == 422
    assert "max_ring_s" in r.text
    assert "holidays" in r.text

    # illegal transition: 409 with the allowed next states
    r = op.http.post(
        f"/campaigns/{cid}/transitions", headers=op.headers(), json={"status": "running"}
    )
    assert r.status_code == 409
    assert r.json()["allowed_next_states"] == ["piloting", "cancelled"]
    r = op.http.post(
        f"/campaigns/{cid}/transitions", headers=op.headers(), json={"status": "piloting"}
    )
    assert r.status_code == 409
    assert "pilot batch" in r.json()["detail"]

    r = op.http.post(
        f"/campaigns/{cid}/batches",
        headers=op.headers(),
        json={"kind": "pilot", "size": 4, "stratify_by": "phone_type", "seed": 42},
    )
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["seed"] == 42
    assert batch["size"] == 4
    assert batch["strata"] == {
        "fixed_line": {"population": 3, "sample": 2},
        "mobile": {"population": 3, "sample": 2},
    }
    r = op.http.post(
        f"/campaigns/{cid}/transitions", headers=op.headers(), json={"status": "piloting"}
    )
    assert r.status_code == 200
    assert r.json()["status"] == "piloting"

    leads = op.http.get(f"/campaigns/{cid}/leads", headers=op.headers()).json()
    assert leads["counts"]["new"] == 4
    pilot_leads = [row["lead_id"] for row in leads["leads"]]

    # a bad file imports nothing and names each bad line
    bad = (
        "lead_id,attempt_no,started_at,disposition,talk_s,converted\n"
        f"{pilot_leads[0]},1,2025-03-01T10:00:00+08:00,no_answer,,0\n"
        f"{pilot_leads[1]},1,2025-03-01 10:00,sale,30,1\n"
        f"{uuid.uuid4()},1,2025-03-01T10:00:00Z,nope,-1,2\n"
    )
    r = op.http.post(
        f"/campaigns/{cid}/attempts/import",
        headers=op.headers(),
        files={"file": ("a.csv", bad, "text/csv")},
    )
    assert r.status_code == 422, r.text
    lines = {e["line"] for e in r.json()["errors"]}
    assert lines == {3, 4}
    assert op.http.get(f"/campaigns/{cid}/attempts", headers=op.headers()).json() == []

    good = (
        "lead_id,attempt_no,started_at,disposition,talk_s,converted\n"
        f"{pilot_leads[0]},1,2025-03-01T10:00:00+08:00,no_answer,,0\n"
        f"{pilot_leads[0]},2,2025-03-02T10:00:00+08:00,sale,95.5,1\n"
        f"{pilot_leads[1]},1,2025-03-01T11:00:00+08:00,dnc_request,12,0\n"
    )
    r = op.http.post(
        f"/campaigns/{cid}/attempts/import",
        headers=op.headers(),
        files={"file": ("a.csv", good, "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["attempts"] == 3
    r = op.http.post(  # the same file again is refused, line by line
        f"/campaigns/{cid}/attempts/import",
        headers=op.headers(),
        files={"file": ("a.csv", good, "text/csv")},
    )
    assert r.status_code == 422
    assert len(r.json()["errors"]) == 3

    attempts = op.http.get(
        f"/campaigns/{cid}/attempts", headers=op.headers(), params={"disposition": "sale"}
    ).json()
    assert [(a["attempt_no"], a["converted"], a["talk_s"]) for a in attempts] == [(2, True, 95.5)]
    state = op.http.get(f"/campaigns/{cid}/leads/{pilot_leads[0]}", headers=op.headers()).json()
    assert state["state"] == "final"
    assert state["final_disposition"] == "sale"

    export = op.http.get(f"/campaigns/{cid}/attempts.csv", headers=op.headers())
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 3
    assert all(row["number_dialed"].startswith("'+86") for row in rows)  # formula-safe

    audit = op.http.get("/audit", headers=op.headers())
    if audit.status_code == 200:  # client-role only route; operators may be refused
        assert any(e["action"] == "campaign.attempts.export" for e in audit.json())

    # dispositions: the default set, editable
    dispositions = op.http.get(f"/campaigns/{cid}/dispositions", headers=op.headers()).json()
    codes = {d["code"]: d for d in dispositions}
    assert {"no_answer", "busy", "dnc_request", "complete", "sale"} <= set(codes)
    assert codes["dnc_request"]["dnc"]
    assert codes["complete"]["aapor_code"] == "1.1"
    r = op.http.patch(
        f"/campaigns/{cid}/dispositions/{codes['busy']['id']}",
        headers=op.headers(),
        json={"retry_delay_minutes": 10},
    )
    assert r.status_code == 200
    assert r.json()["retry_delay_minutes"] == 10
    r = op.http.delete(f"/campaigns/{cid}/dispositions/{codes['sale']['id']}", headers=op.headers())
    assert r.status_code == 409  # used by an attempt

    # on to the full batch: final pilot leads are not released again
    r = op.http.post(
        f"/campaigns/{cid}/transitions", headers=op.headers(), json={"status": "pilot_done"}
    )
    assert r.status_code == 200, r.text
    # quoted and approved record the deal: a plain transition is refused, saying how
    r = op.http.post(
        f"/campaigns/{cid}/transitions", headers=op.headers(), json={"status": "quoted"}
    )
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "POST /campaigns/{id}/quote" in r.json()["detail"]
    client = make_tenant(api, "cli", role="client")
    r = client.http.post(
        f"/campaigns/{cid}/transitions", headers=client.headers(), json={"status": "approved"}
    )
    assert r.status_code == 404  # another client's key never sees it
    _record_deal(cid)  # as POST /quote and /approve do (tests/api/test_feasibility_deal.py)
    r = op.http.post(
        f"/campaigns/{cid}/transitions", headers=op.headers(), json={"status": "approved"}
    )
    assert r.status_code == 409  # approved already; the deal is not recorded twice
    r = op.http.post(f"/campaigns/{cid}/batches", headers=op.headers(), json={"kind": "full"})
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 6 - 2  # 2 pilot leads reached a final disposition
    r = op.http.post(
        f"/campaigns/{cid}/transitions", headers=op.headers(), json={"status": "running"}
    )
    assert r.status_code == 200


def test_client_keys_cannot_create_campaigns(api: Any, tenant_a: Tenant) -> None:
    list_id, _ = _ready_list(tenant_a)
    r = tenant_a.http.post(
        "/campaigns", headers=tenant_a.headers(), json={"name": "x", "list_ids": [list_id]}
    )
    assert r.status_code == 403


def test_every_campaign_route_hides_another_clients_objects(api: Any) -> None:
    from api.routes.campaigns import router

    a = make_tenant(api, "alpha", role="operator")
    b = make_tenant(api, "bravo", role="operator")
    list_id, _ = _ready_list(b)
    campaign = _campaign(b, list_id)
    cid = campaign["id"]
    batch = b.http.post(
        f"/campaigns/{cid}/batches", headers=b.headers(), json={"kind": "pilot", "size": 2}
    ).json()
    leads = b.http.get(f"/campaigns/{cid}/leads", headers=b.headers()).json()["leads"]
    disposition = b.http.get(f"/campaigns/{cid}/dispositions", headers=b.headers()).json()[0]
    ids = {
        "campaign_id": cid,
        "batch_id": batch["id"],
        "lead_id": leads[0]["lead_id"],
        "disposition_id": disposition["id"],
    }
    routes = [r for r in router.routes if isinstance(r, APIRoute) and "{" in r.path]
    assert len(routes) >= 14
    for route in routes:
        url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], route.path)
        for method in route.methods:
            r = a.http.request(method, url, headers=a.headers(), json={})
            assert r.status_code == 404, (method, url, r.text)
            body = r.json()
            body.pop("instance")  # the request's own path, which holds the ids it asked for
            assert not any(v in str(body) for v in ids.values()), (method, url, body)
    # A's listing is empty; B still sees everything intact
    assert a.http.get("/campaigns", headers=a.headers()).json() == []
    assert b.http.get(f"/campaigns/{cid}", headers=b.headers()).json()["status"] == "draft"
