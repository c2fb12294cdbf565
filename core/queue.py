"""Background execution: RQ on Redis in production, a thread pool in the embedded default.

Jobs are importable functions taking plain string ids and use RQ's JSON serializer (never
pickle). No global Redis connection: every call passes ``connection=`` explicitly.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from core.errors import ConfigError
from core.settings import Settings, get_settings

__all__ = [
    "PromptSimpleWorker",
    "die_with_parent",
    "drain_embedded",
    "enqueue_call",
    "get_queue",
    "get_redis",
    "ping_redis",
    "run_worker",
    "start_long_running",
]

log = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_futures: list[Future[Any]] = []
_lock = threading.Lock()


def get_redis(url: str) -> Redis[bytes]:
    """A Redis client for ``url``; a bad URL is a ConfigError naming the variable."""
    try:
        return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    except ValueError as exc:
        raise ConfigError(f"PILOTDIAL_REDIS_URL is not a valid Redis URL ({url!r}): {exc}") from exc


def ping_redis(url: str) -> Redis[bytes]:
    """A connected Redis client, or a ConfigError naming the variable."""
    connection = get_redis(url)
    try:
        connection.ping()
    except RedisError as exc:
        raise ConfigError(f"PILOTDIAL_REDIS_URL: cannot reach Redis ({exc})") from exc
    return connection


def get_queue(settings: Settings | None = None, connection: Redis[bytes] | None = None) -> Queue:
    """The RQ queue jobs go to."""
    settings = settings or get_settings()
    if connection is None:
        if not settings.redis_url:
            raise ConfigError("PILOTDIAL_REDIS_URL is not set; the queue needs Redis")
        connection = get_redis(settings.redis_url)
    return Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)


def enqueue_call(
    func_path: str,
    *args: str,
    job_id: str | None = None,
    settings: Settings | None = None,
    timeout_s: int = 3600,
) -> None:
    """Run ``func_path(*args)`` in the background: on RQ if Redis is configured, else in process."""
    settings = settings or get_settings()
    if settings.redis_url:
        get_queue(settings).enqueue(func_path, *args, job_id=job_id, job_timeout=timeout_s)
        return
    func = _resolve(func_path)
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pilotdial-job")
        _futures.append(_executor.submit(func, *args))


def start_long_running(func: Callable[..., Any], *args: Any, name: str) -> Future[Any]:
    """Run ``func(*args)`` on a thread of its own, outside the job pool (pacers, for hours).

    The embedded job pool has two threads; a dial loop there would hold one for as long as the
    campaign dials, and two would starve list cleaning and reports. :func:`drain_embedded`
    waits for these too.
    """
    future: Future[Any] = Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(func(*args))
        except BaseException as exc:
            log.exception("long-running %s failed", name)
            future.set_exception(exc)

    with _lock:
        _futures.append(future)
    threading.Thread(target=target, name=name, daemon=True).start()
    return future


def drain_embedded(timeout_s: float = 300.0) -> None:
    """Wait for every in-process job submitted so far (demo, tests)."""
    while True:
        with _lock:
            pending = [f for f in _futures if not f.done()]
            _futures[:] = pending
        if not pending:
            return
        for future in pending:
            future.result(timeout=timeout_s)


def _resolve(func_path: str) -> Callable[..., Any]:
    import importlib

    module_name, _, attr = func_path.replace(":", ".").rpartition(".")
    module = importlib.import_module(module_name)
    func: Callable[..., Any] = getattr(module, attr)
    return func


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


class _PromptShutdown:
    """Stop RQ's pubsub thread within a second at shutdown.

    rq 3.0 listens for commands on a thread sleeping up to 60 s, and stops it with redis-py's
    ``PubSubWorkerThread.stop()``, which since redis 8.2 waits for the thread to end: a worker
    told to stop (SIGTERM, or a burst run's end) could take a minute to exit, long enough for a
    container runtime's grace period to end in SIGKILL. Here the wait is bounded; the thread is
    a daemon, so one still asleep dies with the process.
    """

    pubsub: Any
    pubsub_thread: Any
    pubsub_channel_name: str
    name: str
    log: logging.Logger

    def unsubscribe(self) -> None:
        thread = getattr(self, "pubsub_thread", None)
        if not thread:
            return
        self.log.info(
            "Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name
        )
        self.pubsub.unsubscribe()
        if "timeout" in inspect.signature(thread.stop).parameters:
            thread.stop(timeout=1.0)
        else:  # redis < 8.2: stop() only clears the flag
            thread.stop()
        thread.join(timeout=1.0)
        if not thread.is_alive():
            self.pubsub.close()


class PromptSimpleWorker(_PromptShutdown, SimpleWorker):
    """RQ's SimpleWorker (jobs in this process) that stops promptly (:class:`_PromptShutdown`)."""


class _HorseDiesWithWorker(_PromptShutdown, Worker):
    """An RQ worker whose work-horse dies with it.

    RQ's work-horse lives in its own process group: when the worker is killed (kill -9, OOM) the
    horse would go on running its job, a pacer dialing for a campaign whose lease it still holds,
    with nobody left to record its end. With the parent-death signal the horse ends with its
    worker, and the pacer's lease runs out for another worker to take over.
    """

    def fork_work_horse(self, job: Any, queue: Queue) -> None:
        self._pilotdial_worker_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()  # type: ignore[no-untyped-call]
        die_with_parent(self._pilotdial_worker_pid)

    def handle_work_horse_killed(self, job: Any, retpid: int, ret_val: int, rusage: Any) -> None:
        """The horse died mid-job (kill -9, OOM): RQ marks its RQ job failed, and this marks
        the job record failed too (with the handler's clean-up), never ``running`` for ever."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[no-untyped-call]
        if job.func_name != "core.jobs.run_job" or not job.args:
            return
        from core.jobs import job_lost

        how = (
            f"killed by signal {os.WTERMSIG(ret_val)}"
            if ret_val and os.WIFSIGNALED(ret_val)
            else "ended"
        )
        try:
            job_lost(
                str(job.args[0]),
                f"the process running this job was {how} before it finished (out of memory, "
                "or stopped by an operator); nothing it did was kept: submit it again",
            )
        except Exception:  # the database may be away too: the record stays as it was
            log.exception("could not mark the lost job %s failed", job.args[0])


def run_worker(
    settings: Settings | None = None, *, burst: bool = False, simple: bool = False
) -> bool:
    """Run an RQ worker on the configured queue until stopped (or the queue empties if burst)."""
    settings = settings or get_settings()
    if not settings.redis_url:
        raise ConfigError("PILOTDIAL_REDIS_URL is not set; `pilotdial worker` needs Redis")
    connection = ping_redis(settings.redis_url)
    worker_class: type[SimpleWorker] | type[Worker] = (
        PromptSimpleWorker if simple else _HorseDiesWithWorker
    )
    worker = worker_class(
        [get_queue(settings, connection)], connection=connection, serializer=JSONSerializer
    )
    return bool(worker.work(burst=burst, with_scheduler=False))
