"""A worker told to stop stops within seconds, on the installed rq and redis-py.

rq 3.0 stops its pubsub thread (which sleeps up to 60 s between commands) with redis-py's
``PubSubWorkerThread.stop()``, which since redis 8.2 waits for the thread: a SIGTERM'd
``pilotdial worker`` or a burst run at its end took up to a minute to exit (it hung the
two-worker list test's clean-up in CI). ``core.queue``'s workers bound that wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from rq.serializers import JSONSerializer

WORKER = (
    "from core.queue import run_worker; from core.settings import get_settings; "
    "run_worker(get_settings())"
)


def test_a_worker_stops_within_seconds_of_sigterm(redis_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PILOTDIAL_REDIS_URL": redis_url,
        "PILOTDIAL_DATA_DIR": str(tmp_path / "var"),
        "PILOTDIAL_LOG_LEVEL": "INFO",
    }
    from core.queue import get_queue
    from core.settings import get_settings

    queue = get_queue(get_settings(), Redis.from_url(redis_url))
    took = []
    for attempt in range(4):
        log_path = tmp_path / f"worker-{attempt}.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-c", WORKER], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 60
            while "Listening on" not in log_path.read_text(errors="replace"):
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            # jobs that use Redis themselves, in forked work-horses: after them the old stop
            # waited for the sleeping pubsub thread (the hang needed this)
            for _ in range(3):
                queue.enqueue("core.queue.ping_redis", redis_url)
            while log_path.read_text(errors="replace").count("ping_redis") < 6:
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            time.sleep(0.5)  # its pubsub thread is asleep waiting for a command
            began = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            took.append(time.monotonic() - began)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    print(f"\n[worker shutdown] SIGTERM to exit: {', '.join(f'{t:.2f} s' for t in took)}")
    assert max(took) < 5.0, took


def test_a_burst_worker_returns_within_seconds_of_its_queue_emptying(redis_url: str) -> None:
    from core.queue import PromptSimpleWorker, get_queue
    from core.settings import get_settings

    connection = Redis.from_url(redis_url)
    took = []
    for _ in range(4):
        began = time.monotonic()
        worker = PromptSimpleWorker(
            [get_queue(get_settings(), connection)], connection=connection,
            serializer=JSONSerializer,
        )  # fmt: skip
        worker.work(burst=True)
        took.append(time.monotonic() - began)
    assert max(took) < 5.0, took
