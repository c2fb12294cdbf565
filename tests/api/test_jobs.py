"""Background jobs: in process by default, through RQ on real Redis and PostgreSQL otherwise."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq.serializers import JSONSerializer

from core.queue import PromptSimpleWorker, drain_embedded, get_queue
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
    worker = PromptSimpleWorker([queue], connection=connection, serializer=JSONSerializer)
    assert worker.work(burst=True)
    assert queue.count == 0

    job = http.get(f"/jobs/{created['id']}", headers=tenant.headers()).json()
    assert job["status"] == "succeeded", job
    # the job ran scoped to its own client: it counted one job, not both clients' two
    assert job["result"]["counts"]["jobrecord"] == 1
    assert job["result"]["engine"] == "postgresql"
    assert http.get(f"/jobs/{other_job['id']}", headers=tenant.headers()).status_code == 404


def test_a_job_queued_by_an_older_version_fails_saying_what_to_do_instead(
    app_factory: Any, pg_url: str, pg_engine: Any
) -> None:
    """The RQ pacer jobs of before run control: a worker of this version, given one that an
    older version queued, fails it saying how to dial now (not an import traceback)."""
    from core.db import system_session
    from core.jobs import run_job
    from core.models import JobRecord, JobStatus

    http = app_factory(pg_url)
    tenant = make_tenant(http, "alpha")
    with system_session() as session:
        old = JobRecord(
            client_id=tenant.client_id,
            kind="pacer",
            handler="dialer.jobs:pace_campaign",
            params={"campaign_id": "00000000-0000-0000-0000-000000000001"},
        )
        gone = JobRecord(
            client_id=tenant.client_id, kind="summary", handler="core.retired_module:main"
        )
        session.add_all([old, gone])
        session.flush()
        old_id, gone_id = str(old.id), str(gone.id)
    assert run_job(old_id) is None
    assert run_job(gone_id) is None
    failed = http.get(f"/jobs/{old_id}", headers=tenant.headers()).json()
    assert failed["status"] == "failed"
    assert "no longer has" in failed["error"]
    assert "POST /campaigns/{id}/pacer" in failed["error"]
    other = http.get(f"/jobs/{gone_id}", headers=tenant.headers()).json()
    assert other["status"] == "failed"
    assert "submit it again" in other["error"]
    with system_session() as session:
        assert session.get(JobRecord, old.id).status is JobStatus.failed  # type: ignore[union-attr]
