"""A Redis outage at submit time: 503 with Retry-After, and nothing left half-made.

Before: ``POST /jobs/summary``, ``POST /lists`` and ``POST /feasibility-reports`` answered 500
and left their job records ``queued`` (and the list ``uploaded``) for ever, since the record was
committed before the queue refused the job. Now the record is marked failed and the caller is
told to retry. Redis here is a URL pointing at a loopback port nobody listens on.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import get_engine

from helpers import Tenant, make_tenant


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections are refused at once


@pytest.fixture
def outage_api(app_factory: Callable[..., Any], pg_url: str, pg_engine: Any) -> Any:
    return app_factory(pg_url, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")


def _unavailable(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/queue-unavailable")
    assert "retry" in body["detail"]
    return body


def _count(pg_url: str, table: str, tenant: Tenant, where: str = "TRUE") -> int:
    """Rows of ``table`` that belong to this test's client.

    Scoped to the client: the worker's database is shared with whatever other tests left
    running, and only this test's own rows say anything about this test's request.
    """
    query = sa.text(f"SELECT count(*) FROM {table} WHERE client_id = :client AND {where}")
    with get_engine(pg_url).connect() as conn:
        count: int = conn.execute(query, {"client": tenant.client_id}).scalar_one()
    return count


def _stuck(pg_url: str, tenant: Tenant) -> dict[str, int]:
    """The client's records waiting for a job that was never queued."""
    return {
        "jobs queued": _count(pg_url, "jobrecord", tenant, "status = 'queued'"),
        "lists uploaded": _count(pg_url, "leadlist", tenant, "status = 'uploaded'"),
        "reports queued": _count(pg_url, "feasibilityrun", tenant, "status = 'queued'"),
    }


def test_summary_job_is_refused_and_recorded_failed(outage_api: Any, pg_url: str) -> None:
    tenant: Tenant = make_tenant(outage_api, "alpha")
    body = _unavailable(outage_api.post("/jobs/summary", headers=tenant.headers()))
    job = outage_api.get(f"/jobs/{body['job_id']}", headers=tenant.headers()).json()
    assert job["status"] == "failed"
    assert "queue was unavailable" in job["error"]
    assert _stuck(pg_url, tenant) == {"jobs queued": 0, "lists uploaded": 0, "reports queued": 0}


def test_list_upload_is_refused_and_the_list_marked_failed(outage_api: Any, pg_url: str) -> None:
    tenant: Tenant = make_tenant(outage_api, "alpha")
    response = outage_api.post(
        "/lists",
        headers=tenant.headers(),
        files={"file": ("leads.csv", b"phone\n138 1234 5678\n", "text/csv")},
    )
    _unavailable(response)
    (lead_list,) = outage_api.get("/lists", headers=tenant.headers()).json()
    assert lead_list["status"] == "failed"
    assert "upload it again" in lead_list["error"]
    assert _stuck(pg_url, tenant) == {"jobs queued": 0, "lists uploaded": 0, "reports queued": 0}
    assert _count(pg_url, "storedfile", tenant) == 0  # the upload's bytes are not kept either


def test_feasibility_report_is_refused_and_marked_failed(outage_api: Any, pg_url: str) -> None:
    sales: Tenant = make_tenant(outage_api, "sales-desk", role="sales")
    records = {
        "attempts": [{"lead_id": "1", "attempt_no": 1, "outcome": "no_answer"}],
        "leads": [{"lead_id": "1"}],
    }
    _unavailable(outage_api.post("/feasibility-reports", headers=sales.headers(), json=records))
    (run,) = outage_api.get("/feasibility-reports", headers=sales.headers()).json()
    assert run["status"] == "failed"
    assert "queue was unavailable" in run["error"]
    _unavailable(
        outage_api.post(f"/feasibility-reports/{run['id']}/rerun", headers=sales.headers())
    )
    runs = outage_api.get("/feasibility-reports", headers=sales.headers()).json()
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert _stuck(pg_url, sales) == {"jobs queued": 0, "lists uploaded": 0, "reports queued": 0}
