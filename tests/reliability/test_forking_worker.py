"""`pilotdial worker` forks a work-horse per job: each must get database connections of its own.

The worker process opens pooled PostgreSQL connections before it forks (schema check, and
here the API calls of the test itself). A work-horse that reused the parent's pooled socket
shared the server session with its siblings: the second job failed with
``DuplicatePreparedStatement: prepared statement "_pg3_0" already exists``. Only the real
forking ``rq.Worker`` shows this; ``SimpleWorker`` runs jobs in its own process.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from redis import Redis
from rq import Worker
from rq.serializers import JSONSerializer

from core.queue import get_queue
from core.settings import get_settings

from helpers import make_tenant


def test_every_job_succeeds_on_a_forking_worker(
    app_factory: Any, pg_url: str, pg_engine: sa.Engine, redis_url: str
) -> None:
    http = app_factory(pg_url, redis_url)
    tenant = make_tenant(http, "alpha")
    ids = [http.post("/jobs/summary", headers=tenant.headers()).json()["id"] for _ in range(4)]
    # The parent's pool as the worker command leaves it before forking: a few idle
    # connections (here two, so each work-horse runs its progress updates, a repeated and
    # committed statement that psycopg prepares, on one of the parent's sockets).
    pg_engine.dispose()
    with pg_engine.connect() as first, pg_engine.connect() as second:
        for conn in (first, second):
            conn.execute(sa.text("SELECT 1"))

    connection = Redis.from_url(redis_url)
    queue = get_queue(get_settings(), connection)
    worker = Worker([queue], connection=connection, serializer=JSONSerializer)
    assert worker.work(burst=True)

    jobs = [http.get(f"/jobs/{i}", headers=tenant.headers()).json() for i in ids]
    assert [(j["status"], j["error"]) for j in jobs] == [("succeeded", None)] * 4
    # the parent's own pooled connections still work after its children came and went
    with pg_engine.connect() as conn:
        workers = conn.execute(sa.text("SELECT DISTINCT worker FROM jobrecord")).scalars().all()
    assert len(workers) == 4  # four work-horses, four processes
