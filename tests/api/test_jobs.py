"""Background jobs: in process by default, through RQ on real Redis and PostgreSQL otherwise."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from core.queue import drain_embedded, get_queue
from core.settings import get_settings

from helpers import make_tenant


def test_embedded_job_runs_in_process_and_records_result(api: Any) -> None:
    tenant = make_tenant(api, "alpha")
    created = api.post("/jobs/summary", headers=tenant.headers())
    assert created.status_code == 202
    assert created.json()["status"] in {"queued", "running", "succeeded"}
    drain_embedded()
    job = api.get(f"/jobs/{created.json()['id']}", headers=tenant.headers()).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["counts"]["jobrecord"] == 1
    assert job["progress_done"] == job["progress_total"] > 0


def test_job_enqueued_through_api_runs_in_a_real_rq_worker(
    app_factory: Any, pg_url: str, pg_engine: Any, redis_url: str
) -> None:
    http = app_factory(pg_url, redis_url)
    tenant = make_tenant(http, "alpha")
    other = make_tenant(http, "bravo")
    other_job = http.post("/jobs/summary", headers=other.headers()).json()
    created = http.post("/jobs/summary", headers=tenant.headers()).json()
    assert created["status"] == "queued"

    connection = Redis.from_url(redis_url)
    queue = get_queue(get_settings(), connection)
    assert queue.count == 2
    worker = SimpleWorker([queue], connection=connection, serializer=JSONSerializer)
    assert worker.work(burst=True)
    assert queue.count == 0

    job = http.get(f"/jobs/{created['id']}", headers=tenant.headers()).json()
    assert job["status"] == "succeeded", job
    # the job ran scoped to its own client: it counted one job, not both clients' two
    assert job["result"]["counts"]["jobrecord"] == 1
    assert job["result"]["engine"] == "postgresql"
    assert http.get(f"/jobs/{other_job['id']}", headers=tenant.headers()).status_code == 404
