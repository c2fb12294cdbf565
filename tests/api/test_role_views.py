"""Client keys and staff keys see different views of records holding internal data.

Before: a client key read the exception text of internal failures (hosts, paths, SQL) on its
jobs and lists, the settings of staff-run pacer jobs, and which staff key recorded an outage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from campaigns.models import LeadList, ListStatus
from core.admin import issue_key
from core.db import system_session
from core.models import JobRecord, JobStatus, Role

from helpers import Tenant

INTERNAL = "internal error: OperationalError: connection to db-7.internal:5432 (/var/lib/pg) lost"


def _operator(tenant: Tenant) -> Tenant:
    with system_session() as session:
        _key, plain = issue_key(
            session=session,
            name="ops-desk",
            role=Role.operator,
            client_refs=[str(tenant.client_id)],
        )
    return Tenant(client_id=tenant.client_id, key=plain, http=tenant.http)


def _job(tenant: Tenant, **fields: Any) -> str:
    with system_session() as session:
        job = JobRecord(client_id=tenant.client_id, handler="core.jobs:client_summary", **fields)
        session.add(job)
    return str(job.id)


def test_internal_job_failures_are_private_to_staff(api: Any, tenant_a: Tenant) -> None:
    operator = _operator(tenant_a)
    crashed = _job(tenant_a, kind="client_summary", status=JobStatus.failed, error=INTERNAL)
    refused = _job(tenant_a, kind="client_summary", status=JobStatus.failed, error="no rows")
    seen = api.get(f"/jobs/{crashed}", headers=tenant_a.headers()).json()
    assert seen["error"] == f"internal error on our side; quote job {crashed} to support"
    listed = {j["id"]: j for j in api.get("/jobs", headers=tenant_a.headers()).json()}
    assert "db-7" not in str(listed)
    assert listed[refused]["error"] == "no rows"  # the caller's own mistakes stay readable
    assert api.get(f"/jobs/{crashed}", headers=operator.headers()).json()["error"] == INTERNAL


def test_pacer_job_settings_are_private_to_staff(api: Any, tenant_a: Tenant) -> None:
    operator = _operator(tenant_a)
    params = {"campaign_id": "c", "config": {"answer_probability": 0.31, "seed": 7}}
    pacer = _job(tenant_a, kind="pacer", params=params)
    assert api.get(f"/jobs/{pacer}", headers=tenant_a.headers()).json()["params"] == {}
    assert api.get(f"/jobs/{pacer}", headers=operator.headers()).json()["params"] == params


def test_internal_list_failures_are_private_to_staff(api: Any, tenant_a: Tenant) -> None:
    operator = _operator(tenant_a)
    with system_session() as session:
        lead_list = LeadList(
            client_id=tenant_a.client_id,
            name="l",
            filename="l.csv",
            status=ListStatus.failed,
            error="internal error while cleaning: MemoryError in /srv/pilotdial/worker-3",
        )
        session.add(lead_list)
    path = f"/lists/{lead_list.id}"
    seen = api.get(path, headers=tenant_a.headers()).json()
    assert seen["error"] == f"internal error on our side; quote list {lead_list.id} to support"
    assert "/srv" not in api.get("/lists", headers=tenant_a.headers()).text
    assert "worker-3" in api.get(path, headers=operator.headers()).json()["error"]


def test_who_recorded_an_outage_is_private_to_staff(api: Any, tenant_a: Tenant) -> None:
    operator = _operator(tenant_a)
    started = datetime.now(UTC) - timedelta(hours=2)
    body = {
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=30)).isoformat(),
        "cause": "carrier trunk down",
        "client_id": str(tenant_a.client_id),
    }
    created = api.post("/outages", headers=operator.headers(), json=body)
    assert created.status_code == 201, created.text
    (seen,) = api.get("/outages", headers=tenant_a.headers()).json()
    assert "recorded_by" not in seen
    assert seen["cause"] == "carrier trunk down"
    (staff,) = api.get("/outages", headers=operator.headers()).json()
    assert staff["recorded_by"] == created.json()["recorded_by"] != ""
