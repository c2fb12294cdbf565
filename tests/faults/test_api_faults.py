"""The API while PostgreSQL or Redis goes away under it, through a loopback proxy.

During the cut every request answers promptly (503 problem+json with Retry-After, never a 500
or a hang); right after, the API is healthy again; afterwards nothing is half-stored: every
list either exists with its cleaning job or is marked failed, no list is stuck ``uploaded``,
no job is stuck ``queued`` without being on the queue, no uploaded file is left without its
list. The test's own checks talk to the services directly.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from faults.harness import MARKS, via, wait_for
from faults.proxy import TcpProxy
from redis import Redis
from rq.serializers import JSONSerializer

from core.queue import PromptSimpleWorker

from helpers import Tenant, live_server, make_tenant

pytestmark = MARKS

#: An answer slower than this during an outage is a hang (the pool timeout is 5 s).
PATIENCE_S = 15.0
CSV = b"phone\n138 1234 5678\n139 1234 5678\n"


@pytest.fixture
def served(
    configure: Callable[..., None], pg_url: str, pg_engine: Any
) -> Iterator[Callable[..., str]]:
    """serve(database_url=..., redis_url=...): the app on a live loopback server; its URL."""
    from contextlib import ExitStack

    from api.main import create_app

    stack = ExitStack()

    def _serve(*, database_url: str, redis_url: str) -> str:
        configure(database_url=database_url, redis_url=redis_url)
        return stack.enter_context(live_server(create_app()))

    yield _serve
    stack.close()


def _problem_503(response: httpx.Response) -> str:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == 503
    return str(body["type"].rsplit("/", 1)[-1])


def _upload(http: httpx.Client, tenant: Tenant, n: int) -> httpx.Response:
    return http.post(
        "/lists",
        headers=tenant.headers(),
        data={"name": f"list {n}"},
        files={"file": (f"leads-{n}.csv", CSV, "text/csv")},
    )


class Traffic:
    """Threads sending GET /campaigns and POST /lists in a loop; every answer kept."""

    def __init__(self, base: str, tenant: Tenant, threads: int = 3) -> None:
        self.stop = threading.Event()
        self.answers: list[tuple[float, str, int | str, str]] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(base, tenant, i), daemon=True)
            for i in range(threads)
        ]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=PATIENCE_S * 2)

    def _run(self, base: str, tenant: Tenant, index: int) -> None:
        n = 0
        with httpx.Client(base_url=base, timeout=PATIENCE_S) as http:
            while not self.stop.is_set():
                n += 1
                began = time.monotonic()
                route = "upload" if n % 2 else "campaigns"
                try:
                    if route == "upload":
                        response = _upload(http, tenant, index * 10_000 + n)
                    else:
                        response = http.get("/campaigns", headers=tenant.headers())
                    outcome: int | str = response.status_code
                    kind = (
                        _problem_503(response)
                        if response.status_code == 503
                        else response.headers.get("content-type", "")
                    )
                except httpx.HTTPError as exc:  # a hang past PATIENCE_S, or a dropped reply
                    outcome, kind = type(exc).__name__, str(exc)
                with self.lock:
                    self.answers.append((time.monotonic() - began, route, outcome, kind))
                time.sleep(0.05)

    def outcomes(self) -> Counter[tuple[str, int | str]]:
        with self.lock:
            return Counter((route, outcome) for _, route, outcome, _ in self.answers)


def _leftovers(pg_url: str, redis: Redis[bytes], client_id: Any) -> dict[str, Any]:
    """What a cut could have left half-made, among this test's client's rows (the database
    is shared with the other tests of the worker)."""
    from core.db import get_engine
    from core.queue import get_queue
    from core.settings import get_settings

    queued_on_redis = set(get_queue(get_settings(), redis).job_ids)
    client = {"client": str(client_id)}
    with get_engine(pg_url).connect() as conn:
        lists = dict(
            conn.execute(
                sa.text(
                    "SELECT status, count(*) FROM leadlist WHERE client_id = :client "
                    "GROUP BY status"
                ),
                client,
            ).all()
        )
        queued_jobs = {
            str(row[0])
            for row in conn.execute(
                # pacer runs wait queued by design: the supervisors pick them up from here
                sa.text(
                    "SELECT id FROM jobrecord WHERE status = 'queued' AND kind <> 'pacer' "
                    "AND client_id = :client"
                ),
                client,
            )
        }
        lists_without_job = conn.execute(
            sa.text(
                "SELECT count(*) FROM leadlist WHERE job_id IS NULL AND status <> 'failed' "
                "AND client_id = :client"
            ),
            client,
        ).scalar_one()
        files_without_list = conn.execute(
            sa.text(
                "SELECT count(*) FROM storedfile f WHERE f.client_id = :client AND NOT EXISTS "
                "(SELECT 1 FROM leadlist l WHERE f.id IN "
                "(l.upload_file_id, l.cleaned_file_id, l.rejects_file_id))"
            ),
            client,
        ).scalar_one()
    return {
        "lists": lists,
        "jobs queued but not on the queue": len(queued_jobs - queued_on_redis),
        "lists without a job": lists_without_job,
        "files without a list": files_without_list,
    }


def _work_off(redis_url: str) -> None:
    """Run every queued job (in process), so the lists reach their final state."""
    from core.queue import get_queue
    from core.settings import get_settings

    connection = Redis.from_url(redis_url)
    PromptSimpleWorker(
        [get_queue(get_settings(), connection)], connection=connection, serializer=JSONSerializer
    ).work(burst=True)


def test_a_postgres_cut_answers_503_and_leaves_nothing_half_stored(
    served: Callable[..., str], pg_url: str, redis_url: str, pg_proxy: TcpProxy
) -> None:
    base = served(database_url=via(pg_proxy, pg_url), redis_url=redis_url)
    with httpx.Client(base_url=base, timeout=PATIENCE_S) as http:
        tenant = make_tenant(http, "alpha")
        assert _upload(http, tenant, 0).status_code == 202
        with Traffic(base, tenant) as traffic:
            wait_for(lambda: len(traffic.answers) >= 6, "requests before the cut", 30)
            with pg_proxy.outage(5.0):
                cut_answers = len(traffic.answers)
                during = [
                    http.get("/campaigns", headers=tenant.headers()),
                    _upload(http, tenant, 1),
                ]
            restored = len(traffic.answers)
            wait_for(lambda: len(traffic.answers) >= restored + 6, "requests after the cut", 60)
        answers = traffic.answers
        assert {_problem_503(r) for r in during} == {"database-unavailable"}
        after = [http.get("/campaigns", headers=tenant.headers()), _upload(http, tenant, 2)]
        assert [r.status_code for r in after] == [200, 202], [r.text for r in after]
    print(f"\n[pg cut, API] {dict(traffic.outcomes())}")
    kinds = Counter(kind for _, _, outcome, kind in answers if outcome == 503)
    print(f"[pg cut, API] 503 kinds {dict(kinds)}; slowest {max(a[0] for a in answers):.2f} s")
    assert answers[cut_answers:restored], "no request was answered during the cut"
    assert all(outcome in (200, 202, 503) for _, _, outcome, _ in answers), answers
    _work_off(redis_url)
    left = _leftovers(pg_url, Redis.from_url(redis_url), tenant.client_id)
    print(f"[pg cut, API] after the jobs ran: {left}")
    assert set(left["lists"]) <= {"ready", "failed"}, left
    assert left["jobs queued but not on the queue"] == 0, left
    assert left["lists without a job"] == 0, left
    assert left["files without a list"] == 0, left


def test_a_redis_cut_answers_503_and_leaves_nothing_stuck(
    served: Callable[..., str], pg_url: str, redis_url: str, redis_proxy: TcpProxy
) -> None:
    base = served(database_url=pg_url, redis_url=via(redis_proxy, redis_url))
    with httpx.Client(base_url=base, timeout=PATIENCE_S) as http:
        tenant = make_tenant(http, "alpha")
        assert _upload(http, tenant, 0).status_code == 202
        with Traffic(base, tenant) as traffic:
            wait_for(lambda: len(traffic.answers) >= 6, "requests before the cut", 30)
            with redis_proxy.outage(5.0):
                cut_answers = len(traffic.answers)
                during = [
                    _upload(http, tenant, 1),
                    http.post("/jobs/summary", headers=tenant.headers()),
                ]
                listed = http.get("/campaigns", headers=tenant.headers())
            restored = len(traffic.answers)
            wait_for(lambda: len(traffic.answers) >= restored + 6, "requests after the cut", 60)
        answers = traffic.answers
        assert {_problem_503(r) for r in during} == {"queue-unavailable"}
        assert listed.status_code == 200  # reads need no Redis
        after = [_upload(http, tenant, 2), http.post("/jobs/summary", headers=tenant.headers())]
        assert [r.status_code for r in after] == [202, 202], [r.text for r in after]
    print(f"\n[redis cut, API] {dict(traffic.outcomes())}")
    print(f"[redis cut, API] slowest answer {max(a[0] for a in answers):.2f} s")
    assert answers[cut_answers:restored], "no request was answered during the cut"
    assert all(outcome in (200, 202, 503) for _, _, outcome, _ in answers), answers
    _work_off(redis_url)
    left = _leftovers(pg_url, Redis.from_url(redis_url), tenant.client_id)
    print(f"[redis cut, API] after the jobs ran: {left}")
    assert set(left["lists"]) <= {"ready", "failed"}, left
    assert left["jobs queued but not on the queue"] == 0, left
    assert left["lists without a job"] == 0, left
    assert left["files without a list"] == 0, left


@contextmanager
def _noting_new_lists(armed: threading.Event) -> Iterator[threading.Event]:
    """While ``armed``: an event set (and the session's ``faults_new_list`` info) when a
    session flushes a new lead list, i.e. the upload is about to commit it."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from campaigns.models import LeadList

    flushed = threading.Event()

    def note_new_list(session: Session, _ctx: Any, _instances: Any) -> None:
        if armed.is_set() and any(isinstance(obj, LeadList) for obj in session.new):
            session.info["faults_new_list"] = True
            flushed.set()

    event.listen(Session, "before_flush", note_new_list)
    try:
        yield flushed
    finally:
        event.remove(Session, "before_flush", note_new_list)


def test_a_postgres_cut_right_after_the_list_is_stored_leaves_no_list_without_its_job(
    served: Callable[..., str], pg_url: str, redis_url: str, pg_proxy: TcpProxy
) -> None:
    """The cut at the worst moment: right after the upload's first commit. Before, that
    commit held the list alone, its job not yet recorded: the list stayed ``uploaded`` for
    ever. Now the list and its job are committed together, or not at all."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    base = served(database_url=via(pg_proxy, pg_url), redis_url=redis_url)
    armed = threading.Event()

    def cut_after_commit(session: Session) -> None:
        if session.info.pop("faults_new_list", False) and armed.is_set():
            armed.clear()
            pg_proxy.cut()

    event.listen(Session, "after_commit", cut_after_commit)
    try:
        with _noting_new_lists(armed), httpx.Client(base_url=base, timeout=PATIENCE_S) as http:
            tenant = make_tenant(http, "alpha")
            armed.set()
            response = _upload(http, tenant, 1)
            assert not armed.is_set(), "the cut did not happen"
            pg_proxy.restore()
            after = _upload(http, tenant, 2)
    finally:
        event.remove(Session, "after_commit", cut_after_commit)
        pg_proxy.restore()
    print(f"\n[pg cut after the list commit] {response.status_code} {response.text[:200]}")
    # The list and its job were committed before the cut: the answer is their 202, or a 503
    # when the request still needed the database after the commit (a connection checked out
    # after a pause is pinged first, and that ping meets the cut).
    if response.status_code != 202:
        assert _problem_503(response) == "database-unavailable"
    assert after.status_code == 202, after.text
    _work_off(redis_url)
    left = _leftovers(pg_url, Redis.from_url(redis_url), tenant.client_id)
    print(f"[pg cut after the list commit] after the jobs ran: {left}")
    # the 503's list was stored with its job (and cleaned) or not at all; never left waiting
    assert set(left["lists"]) <= {"ready", "failed"}, left
    assert left["lists without a job"] == 0, left
    assert left["jobs queued but not on the queue"] == 0, left
    assert left["files without a list"] == 0, left


def test_a_commit_whose_answer_is_lost_still_gets_its_list_cleaned(
    served: Callable[..., str], pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT reached PostgreSQL and its answer was lost with the connection (what a cut
    mid-commit does; CI met it twice): the request answers 503, yet the list and its job are
    stored. Before, nothing queued that job: the list stayed ``uploaded`` for ever, its job
    ``queued`` on no queue. Now the job is queued all the same, and runs."""
    import psycopg
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    base = served(database_url=pg_url, redis_url=redis_url)
    armed = threading.Event()
    real_commit = PGDialect_psycopg.do_commit
    with _noting_new_lists(armed) as list_flushed:

        def commit_then_lose_the_answer(dialect: Any, dbapi_connection: Any) -> None:
            real_commit(dialect, dbapi_connection)
            if list_flushed.is_set() and armed.is_set():
                armed.clear()
                # what the cut leaves: a dead connection (the raw one, not the pool's proxy)
                getattr(dbapi_connection, "dbapi_connection", dbapi_connection).close()
                raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(PGDialect_psycopg, "do_commit", commit_then_lose_the_answer)
        with httpx.Client(base_url=base, timeout=PATIENCE_S) as http:
            tenant = make_tenant(http, "alpha")
            armed.set()
            response = _upload(http, tenant, 1)
            assert not armed.is_set(), "the commit's answer was not lost"
    assert _problem_503(response) == "database-unavailable"
    _work_off(redis_url)
    left = _leftovers(pg_url, Redis.from_url(redis_url), tenant.client_id)
    print(f"\n[commit answer lost] after the jobs ran: {left}")
    assert left["lists"] == {"ready": 1}, left
    assert left["jobs queued but not on the queue"] == 0, left


def test_a_job_picked_up_during_a_postgres_cut_runs_once_the_database_returns(
    served: Callable[..., str], pg_url: str, redis_url: str, pg_proxy: TcpProxy
) -> None:
    """A worker takes a job off the queue while PostgreSQL is cut (its pooled connections died
    with it). Before, the job's first read failed: RQ counted it failed, its record stayed
    ``queued`` and its list ``uploaded``. Now that read is retried through the blip."""
    base = served(database_url=via(pg_proxy, pg_url), redis_url=redis_url)
    with httpx.Client(base_url=base, timeout=PATIENCE_S) as http:
        tenant = make_tenant(http, "alpha")
        assert _upload(http, tenant, 1).status_code == 202
    pg_proxy.cut()
    restore = threading.Timer(2.0, pg_proxy.restore)
    restore.start()
    try:
        _work_off(redis_url)
    finally:
        restore.join()
    left = _leftovers(pg_url, Redis.from_url(redis_url), tenant.client_id)
    print(f"\n[job picked up during a cut] after the job ran: {left}")
    assert left["lists"] == {"ready": 1}, left
    assert left["jobs queued but not on the queue"] == 0, left


def _strand(pg_url: str, redis: Redis[bytes], job_id: str, *, age_s: float) -> None:
    """Make a queued job stranded: off the queue, unknown to RQ, recorded ``age_s`` ago."""
    from rq.job import Job

    from core.db import get_engine
    from core.queue import get_queue
    from core.settings import get_settings

    get_queue(get_settings(), redis).remove(job_id)
    if Job.exists(job_id, connection=redis):
        Job.fetch(job_id, connection=redis, serializer=JSONSerializer).delete()
    with get_engine(pg_url).begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE jobrecord SET created_at = created_at - make_interval(secs => :age) "
                "WHERE id = :id"
            ),
            {"age": age_s, "id": job_id},
        )


def test_a_job_on_no_queue_is_queued_again_by_the_reaper_then_failed_with_its_list(
    served: Callable[..., str], pg_url: str, redis_url: str
) -> None:
    """The API died between the commit and the queue (or a worker's first read met an outage):
    the reaper every worker runs queues the job again, once per stranding however many
    workers look, and after MAX_REQUEUES strandings marks it failed with its list, saying why."""
    from core.jobs import MAX_REQUEUES, requeue_stranded_jobs
    from dialer.run_control import PACER_HANDLER

    redis = Redis.from_url(redis_url)
    base = served(database_url=pg_url, redis_url=redis_url)
    with httpx.Client(base_url=base, timeout=PATIENCE_S) as http:
        tenant = make_tenant(http, "alpha")
        kept, dropped = _upload(http, tenant, 1).json(), _upload(http, tenant, 2).json()
        young = _upload(http, tenant, 3).json()
        for made in (kept, dropped, young):
            _strand(pg_url, redis, made["job_id"], age_s=0 if made is young else 3600)
        assert _leftovers(pg_url, redis, tenant.client_id)["jobs queued but not on the queue"] == 3

        # a pacer run waits queued by design (the supervisors pick it up): never queued
        pacer = _old_pacer_run(pg_url, tenant.client_id)
        skip = frozenset({PACER_HANDLER})
        # one stranding, two workers' reapers: each old job is queued again exactly once,
        # the one just submitted (its API may still be queuing it) is left alone
        assert requeue_stranded_jobs(redis, older_than_s=600, skip_handlers=skip) == (2, 0)
        assert requeue_stranded_jobs(redis, older_than_s=600, skip_handlers=skip) == (0, 0)
        assert pacer not in _queued_ids(redis)
        queued = _queued_ids(redis)
        assert queued.count(kept["job_id"]) == 1
        assert queued.count(dropped["job_id"]) == 1
        assert young["job_id"] not in queued

        # the kept job now runs; the dropped one keeps being stranded until it is given up
        _strand(pg_url, redis, dropped["job_id"], age_s=0)
        _work_off(redis_url)
        for _ in range(MAX_REQUEUES):
            redis.delete(f"pilotdial:job-requeue-claim:{dropped['job_id']}")
            _strand(pg_url, redis, dropped["job_id"], age_s=0)
            requeue_stranded_jobs(redis, older_than_s=600, skip_handlers=skip)
        # the young one, at last
        assert requeue_stranded_jobs(redis, older_than_s=0, skip_handlers=skip) == (1, 0)
        _work_off(redis_url)
        lists = {item["name"]: item for item in http.get("/lists", headers=tenant.headers()).json()}
    assert lists["list 1"]["status"] == "ready", lists["list 1"]
    assert lists["list 3"]["status"] == "ready", lists["list 3"]
    assert lists["list 2"]["status"] == "failed", lists["list 2"]
    assert f"queued {MAX_REQUEUES} times and never ran" in lists["list 2"]["error"]
    left = _leftovers(pg_url, redis, tenant.client_id)
    assert left["jobs queued but not on the queue"] == 0, left


def _old_pacer_run(pg_url: str, client_id: Any) -> str:
    """A pacer run recorded queued an hour ago (as ``dialer.run_control`` records them)."""
    import uuid

    from dialer.run_control import PACER_HANDLER

    job_id = str(uuid.uuid4())
    from core.db import get_engine

    with get_engine(pg_url).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO jobrecord (id, client_id, kind, handler, params, status, "
                "progress_done, created_at) VALUES (:id, :client, 'pacer', :handler, '{}', "
                "'queued', 0, now() - interval '1 hour')"
            ),
            {"id": job_id, "client": str(client_id), "handler": PACER_HANDLER},
        )
    return job_id


def _queued_ids(redis: Redis[bytes]) -> list[str]:
    from core.queue import get_queue
    from core.settings import get_settings

    return list(get_queue(get_settings(), redis).job_ids)
