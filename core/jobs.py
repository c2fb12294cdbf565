"""Background jobs with state, progress and results that clients can read through the API.

``submit_job`` writes a :class:`JobRecord` (committed) and hands its id to the queue (if the
queue refuses it, the record is marked failed and :class:`QueueUnavailable` raised); a worker
calls :func:`run_job`, which loads the record, marks it running, calls the handler with a
:class:`JobContext` and records the result or the failure. Handlers are importable functions
named by ``module:function`` inside Pilotdial's own packages.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlmodel import Session, col

from core.db import get_engine, system_session, tenant_session, utcnow
from core.errors import InvalidInput, PilotdialError, QueueUnavailable
from core.models import JobRecord, JobStatus
from core.queue import _resolve, enqueue_call

__all__ = [
    "JobContext",
    "job_lost",
    "reap_lost_jobs",
    "requeue_stranded_jobs",
    "run_job",
    "submit_job",
    "when_lost",
]

log = logging.getLogger(__name__)

#: How long the end of a job is retried while the database is unreachable.
FINISH_RETRY_S = 60.0
#: How long a job's first read (marking it running) is retried while the database is away.
START_RETRY_S = 30.0
ALLOWED_PACKAGES = ("core.", "campaigns.", "data_cleaning.", "dialer.", "feasibility.", "surveys.")


@dataclass
class JobContext:
    """What a handler gets: ids, parameters, a progress reporter and scoped sessions."""

    job_id: uuid.UUID
    client_id: uuid.UUID
    params: dict[str, Any]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session scoped to the job's client; commits on success."""
        with tenant_session([self.client_id]) as session:
            yield session

    def progress(self, done: int, total: int | None = None, *, unit: str | None = None) -> None:
        """Record progress (``unit`` says what is counted); readable at once through the API."""
        with system_session() as session:
            record = session.get(JobRecord, self.job_id)
            if record is not None:
                record.progress_done = done
                if total is not None:
                    record.progress_total = total
                if unit is not None:
                    record.progress_unit = unit[:40]
                session.add(record)


def submit_job(
    *,
    client_id: uuid.UUID,
    kind: str,
    handler: str,
    params: dict[str, Any] | None = None,
    session: Session | None = None,
    job_id: uuid.UUID | None = None,
) -> JobRecord:
    """Record a job and queue it; returns the committed record.

    With ``session`` the record is committed in the caller's transaction, together with what
    the job works on (a list and its cleaning job are stored both or neither, even if the
    database goes away between them); ``job_id`` lets the caller link to it beforehand.
    """
    if not handler.startswith(ALLOWED_PACKAGES) or ":" not in handler:
        raise InvalidInput(f"job handler {handler!r} is not a Pilotdial module:function")
    record = JobRecord(client_id=client_id, kind=kind, handler=handler, params=params or {})
    if job_id is not None:
        record.id = job_id
    if session is None:
        with system_session() as own:
            own.add(record)
    else:
        session.add(record)
        try:
            session.commit()  # the worker must find the record (and what it works on)
        except (sa_exc.OperationalError, sa_exc.InterfaceError):
            # The connection went with the COMMIT's answer: the record may well be stored
            # (the server committed, the reply was lost). Queue it all the same: a worker that
            # finds no record drops the job, and one that finds it runs it, so a list is never
            # left "uploaded" with its job "queued" on no queue.
            _queue_quietly(record.id, kind)
            raise
    try:
        _enqueue_run(record.id)
    except RedisError as exc:
        # The record is committed (a worker must find it), the queue refused the job: mark it
        # failed at once, so no job waits "queued" for a worker that will never hear of it.
        log.error("job %s (%s) could not be queued: %s", record.id, kind, exc)
        _finish(
            record.id,
            status=JobStatus.failed,
            error="the job queue was unavailable when this job was submitted; nothing ran, "
            "submit it again",
            retry_s=0.0,  # a request is waiting: no retrying here
        )
        raise QueueUnavailable(
            "the job queue is unavailable, so nothing was queued; retry in a moment",
            job_id=str(record.id),
            params=dict(record.params),
        ) from exc
    return record


def _enqueue_run(job_id: uuid.UUID) -> None:
    """Hand a recorded job to the queue (its RQ job id is the record's)."""
    enqueue_call("core.jobs.run_job", str(job_id), job_id=str(job_id))


def _queue_quietly(job_id: uuid.UUID, kind: str) -> None:
    """Queue a job whose record may or may not have been committed; a refusal is only logged
    (the caller is already failing, and :func:`requeue_stranded_jobs` is the safety net)."""
    try:
        _enqueue_run(job_id)
    except RedisError as exc:
        log.error("job %s (%s) could not be queued after a lost commit: %s", job_id, kind, exc)


#: What to do instead of a job this version no longer runs (queued by an older version).
RETIRED_HANDLERS = {
    "dialer.jobs:pace_campaign": "start the campaign's pacer with POST /campaigns/{id}/pacer",
    "dialer.jobs:pace_live": "start the campaign's pacer with POST /campaigns/{id}/pacer "
    '(agents_mode "live")',
}


def retired_handler_error(handler_path: str) -> str:
    """The failure of a job whose handler this version does not have."""
    instead = RETIRED_HANDLERS.get(handler_path, "submit it again")
    return (
        f"this job was queued for {handler_path}, which this version of Pilotdial no longer "
        f"has (it was queued by an older version); nothing ran: {instead}"
    )


def run_job(job_id: str) -> dict[str, Any] | None:
    """Worker entry point: run one recorded job and store its outcome.

    Its first read is retried through a database blip (a worker's pooled connections died
    with the cut): failing there left the record ``queued`` with the job off the queue."""
    started = _retrying(lambda: _start(job_id), what=f"start job {job_id}", retry_s=START_RETRY_S)
    if not isinstance(started, tuple):
        return started  # not in the database, or already ended: its stored result
    return _run(*started)


def _start(job_id: str) -> tuple[JobContext, str] | dict[str, Any] | None:
    """Mark the job running; its context and handler, or what to return without running."""
    with system_session() as session:
        record = session.get(JobRecord, uuid.UUID(job_id))
        if record is None:
            # its submission's commit failed (the request answered an error): nothing to run
            log.warning("job %s is not in the database (its submission failed)", job_id)
            return None
        if record.status in {JobStatus.succeeded, JobStatus.failed}:
            return record.result
        record.status = JobStatus.running
        record.started_at = utcnow()
        record.worker = f"{socket.gethostname()}:{os.getpid()}"
        params = dict(record.params)
        client_id = record.client_id
        handler_path = record.handler
        session.add(record)
    return JobContext(job_id=uuid.UUID(job_id), client_id=client_id, params=params), handler_path


def _run(ctx: JobContext, handler_path: str) -> dict[str, Any] | None:
    job_id = str(ctx.job_id)
    try:
        handler: Callable[[JobContext], dict[str, Any] | None] = _resolve(handler_path)
    except (ImportError, AttributeError) as exc:
        module_name = handler_path.partition(":")[0]
        gone = handler_path in RETIRED_HANDLERS or (
            isinstance(exc, ModuleNotFoundError) and exc.name == module_name
        )
        error = retired_handler_error(handler_path) if gone else f"internal error: {exc}"
        if not gone:
            log.exception("job %s (%s) could not load its handler", job_id, handler_path)
        _finish(ctx.job_id, status=JobStatus.failed, error=error)
        return None
    try:
        result = handler(ctx)
    except PilotdialError as exc:
        _finish(ctx.job_id, status=JobStatus.failed, error=exc.message)
        return None
    except Exception as exc:
        log.exception("job %s (%s) crashed", job_id, handler_path)
        _finish(ctx.job_id, status=JobStatus.failed, error=f"internal error: {exc}")
        return None
    _finish(ctx.job_id, status=JobStatus.succeeded, result=result or {})
    return result


#: A handler's clean-up when its job dies without a word (see :func:`when_lost`).
LostHandler = Callable[[JobContext, str], None]
_LostT = TypeVar("_LostT", bound=LostHandler)
_lost_handlers: dict[str, LostHandler] = {}


def when_lost(handler: str) -> Callable[[_LostT], _LostT]:
    """Register what undoes a half-done job of ``handler`` (``module:function``) when the
    process running it dies (kill -9, the OOM killer): its ``except`` never ran."""

    def register(cleanup: _LostT) -> _LostT:
        _lost_handlers[handler] = cleanup
        return cleanup

    return register


def job_lost(job_id: str, reason: str) -> bool:
    """A job whose process died mid-run: its handler's clean-up runs (registered with
    :func:`when_lost`) and the record is marked failed, saying why. Called by the worker that
    saw its work-horse die; False if the job had already ended."""
    with system_session() as session:
        record = session.get(JobRecord, uuid.UUID(job_id))
        if record is None or record.status not in {JobStatus.queued, JobStatus.running}:
            return False
        ctx = JobContext(job_id=record.id, client_id=record.client_id, params=dict(record.params))
        handler_path = record.handler
    try:
        if handler_path not in RETIRED_HANDLERS:
            _resolve(handler_path)  # imports the handler's module: it registers its clean-up
        cleanup = _lost_handlers.get(handler_path)
        if cleanup is not None:
            cleanup(ctx, reason)
    except Exception:
        log.exception("the clean-up of lost job %s (%s) failed", job_id, handler_path)
    log.error("job %s (%s) was lost: %s", job_id, handler_path, reason)
    _finish(ctx.job_id, status=JobStatus.failed, error=reason)
    return True


def reap_lost_jobs(connection: Redis[bytes], *, skip_handlers: frozenset[str] = frozenset()) -> int:
    """Mark failed (with their clean-up) the ``running`` jobs nobody runs any more: the RQ job
    failed or vanished, or the work-horse that ran it on this machine is gone (its worker was
    killed, taking the horse along). Run periodically by every worker; returns how many."""
    from rq.job import JobStatus as RQStatus

    here = socket.gethostname()
    with system_session() as session:
        running = [
            (job_id, worker or "", handler)
            for job_id, worker, handler in session.execute(
                select(col(JobRecord.id), col(JobRecord.worker), col(JobRecord.handler)).where(
                    col(JobRecord.status) == JobStatus.running
                )
            ).all()
        ]
    reaped = 0
    for job_id, worker, handler in running:
        if handler in skip_handlers:
            continue
        reason = None
        rq_status = _rq_status(connection, job_id)
        host, _, pid = worker.rpartition(":")
        if rq_status in (RQStatus.FAILED, RQStatus.STOPPED, RQStatus.CANCELED, None):
            reason = "the worker running this job stopped before it finished"
        elif host == here and pid.isdigit() and not _process_alive(int(pid)):
            reason = (
                "the worker running this job died before it finished (killed, or out of memory)"
            )
        if reason and job_lost(str(job_id), f"{reason}; nothing it did was kept: submit it again"):
            reaped += 1
    return reaped


#: A job still ``queued`` this long after its submission, and on no queue, was stranded.
STRANDED_AFTER_S = 60.0
#: How often a stranded job is queued again before it is marked failed.
MAX_REQUEUES = 3


def requeue_stranded_jobs(
    connection: Redis[bytes],
    *,
    older_than_s: float = STRANDED_AFTER_S,
    skip_handlers: frozenset[str] = frozenset(),
) -> tuple[int, int]:
    """Queue again the jobs recorded ``queued`` that no queue holds any more, so none waits
    for ever: the API died between the commit and the queue, or the worker's first database
    read met an outage (RQ counts the job failed, its record still says queued). A job
    stranded :data:`MAX_REQUEUES` times is marked failed with its clean-up (a list so marked
    says why). Run periodically by every worker; returns (queued again, failed).

    Safe with many workers: each requeue is claimed in Redis (``SET NX`` for the grace), so
    two reapers never queue the same job twice for one stranding. ``skip_handlers``: jobs
    that wait ``queued`` by design, picked up otherwise (pacer runs: the supervisors')."""
    from datetime import timedelta

    from rq.job import JobStatus as RQStatus

    waiting = {RQStatus.QUEUED, RQStatus.STARTED, RQStatus.DEFERRED, RQStatus.SCHEDULED}
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with system_session() as session:
        queued = [
            (job_id, kind)
            for job_id, kind, handler in session.execute(
                select(col(JobRecord.id), col(JobRecord.kind), col(JobRecord.handler)).where(
                    col(JobRecord.status) == JobStatus.queued, col(JobRecord.created_at) < cutoff
                )
            ).all()
            if handler not in skip_handlers
        ]
    requeued = failed = 0
    for job_id, kind in queued:
        rq_status = _rq_status(connection, job_id)
        if rq_status in waiting:
            continue
        # one claim per stranding, held for the grace: another worker's reaper that saw the
        # same stranding does not queue the job a second time
        claim = f"pilotdial:job-requeue-claim:{job_id}"
        if not connection.set(claim, b"1", nx=True, ex=max(1, int(older_than_s))):
            continue
        key = f"pilotdial:job-requeues:{job_id}"
        count = int(connection.incr(key))
        connection.expire(key, int(older_than_s * (MAX_REQUEUES + 2)) + 60)
        if count > MAX_REQUEUES:
            if job_lost(
                str(job_id),
                f"the job was queued {MAX_REQUEUES} times and never ran (the database or the "
                "queue kept failing); nothing it would do was done: submit it again",
            ):
                failed += 1
            continue
        log.warning(
            "job %s (%s) was queued but on no queue (%s): queuing it again",
            job_id,
            kind,
            rq_status or "unknown to RQ",
        )
        _enqueue_run(job_id)
        requeued += 1
    return requeued, failed


def _rq_status(connection: Redis[bytes], job_id: uuid.UUID) -> Any:
    """RQ's status of the job (an ``rq.job.JobStatus``), or None when RQ does not know it."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.serializers import JSONSerializer

    try:
        return Job.fetch(str(job_id), connection=connection, serializer=JSONSerializer).get_status()
    except NoSuchJobError:
        return None


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # not Linux: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _finish(
    job_id: uuid.UUID,
    *,
    status: JobStatus,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    retry_s: float = FINISH_RETRY_S,
) -> None:
    """Record how the job ended; a database blip is retried with backoff (up to
    ``retry_s``), so a job that outlived an outage does not stay ``running``."""
    _retrying(
        lambda: _store_outcome(job_id, status=status, result=result, error=error),
        what=f"record the end of job {job_id}",
        retry_s=retry_s,
    )


_T = TypeVar("_T")


def _retrying(step: Callable[[], _T], *, what: str, retry_s: float) -> _T:
    """``step()``, retried with backoff (up to ``retry_s``) while the database is unreachable."""
    deadline = time.monotonic() + retry_s
    delay = 0.25
    while True:
        try:
            return step()
        except (sa_exc.OperationalError, sa_exc.TimeoutError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "could not %s (%s); retrying in %.2f s", what, str(exc).splitlines()[0], delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def _store_outcome(
    job_id: uuid.UUID,
    *,
    status: JobStatus,
    result: dict[str, Any] | None,
    error: str | None,
) -> None:
    with system_session() as session:
        record = session.get(JobRecord, job_id)
        if record is None:
            return
        record.status = status
        record.result = result
        record.error = error
        record.finished_at = utcnow()
        if status is JobStatus.succeeded and record.progress_total is not None:
            record.progress_done = record.progress_total
        session.add(record)


def client_summary(ctx: JobContext) -> dict[str, Any]:
    """A small built-in job: count what the client owns, table by table."""
    from core.db import tenant_models

    counts: dict[str, int] = {}
    with ctx.session() as session:
        tables = tenant_models()
        for i, model in enumerate(sorted(tables, key=lambda m: m.__tablename__)):
            stmt = select(func.count()).select_from(model)
            counts[model.__tablename__] = int(session.execute(stmt).scalar_one())
            ctx.progress(i + 1, len(tables), unit="tables")
    return {"counts": counts, "engine": get_engine().dialect.name}
