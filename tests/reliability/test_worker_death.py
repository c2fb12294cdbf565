"""A work-horse dies with its `pilotdial worker`.

RQ forks each job into a work-horse in a process group of its own. When the worker was killed
(kill -9, the OOM killer) the horse ran on: a pacer kept dialing under a lease nobody would
renew or release, and its calls were left unrecorded (a flaky takeover test showed it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis

from core.queue import get_queue
from core.settings import get_settings


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_work_horse_ends_when_its_worker_is_killed(
    configure: Any, sqlite_url: str, redis_url: str
) -> None:
    configure(database_url=sqlite_url, redis_url=redis_url)
    queue = get_queue(get_settings(), Redis.from_url(redis_url))
    queue.enqueue("time.sleep", 120, job_timeout=300)
    worker = subprocess.Popen(
        [sys.executable, "-c", "from core.queue import run_worker; run_worker()"],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    horses: list[int] = []
    try:
        assert _wait(lambda: bool(horses.extend(_children(worker.pid)) or horses), 60)
        horse = horses[0]
        assert _alive(horse)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert _wait(lambda: not _alive(horse), 10), "the work-horse outlived its worker"
    finally:
        for pid in [worker.pid, *horses]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
