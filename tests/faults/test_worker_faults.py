"""kill -9 in the middle of a list-cleaning job: of a forking `pilotdial worker`'s work-horse,
or of the worker itself (its horse and pacer supervisor die with it).

Before: the job record stayed ``running`` and the list ``processing`` for ever, part of its
leads stored. Now the worker that saw its horse die, or any other worker's reaper when the
worker died too, marks the record failed saying why, and the list failed with its partial
leads removed; the workers go on with the next job.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from faults.harness import MARKS, Worker, wait_for

from helpers import make_tenant

pytestmark = MARKS


def _big_csv(rows: int) -> bytes:
    lines = ["phone,name"] + [f"139{i:08d},Lead {i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _horse(worker: Worker) -> int | None:
    """The work-horse: the worker's forked child (the pacer supervisor is spawned)."""
    own = Path(f"/proc/{worker.proc.pid}/cmdline").read_bytes()
    for pid in worker.children():
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == own:
                return pid
        except FileNotFoundError:
            continue
    return None


def _state(pg_engine: sa.Engine, list_id: str) -> tuple[str, str | None, int]:
    with pg_engine.connect() as conn:
        status, job_status = conn.execute(
            sa.text(
                "SELECT l.status, j.status FROM leadlist l JOIN jobrecord j "
                "ON j.id = l.job_id WHERE l.id = :id"
            ),
            {"id": list_id},
        ).one()
        leads = conn.execute(
            sa.text("SELECT count(*) FROM lead WHERE list_id = :id"), {"id": list_id}
        ).scalar_one()
    return str(status), job_status, int(leads)


def _error(pg_engine: sa.Engine, job_id: str) -> str:
    with pg_engine.connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT error FROM jobrecord WHERE id = :id"), {"id": job_id}
            ).scalar_one()
        )


def test_a_killed_worker_has_its_job_reaped_by_another_worker(
    app_factory: Callable[..., Any],
    pg_url: str,
    pg_engine: sa.Engine,
    redis_url: str,
    spawn_worker: Callable[..., Worker],
) -> None:
    http = app_factory(pg_url, redis_url)
    tenant = make_tenant(http, "alpha")
    first = spawn_worker(database_url=pg_url, redis_url=redis_url, name="first")
    response = http.post(
        "/lists",
        headers=tenant.headers(),
        data={"name": "big"},
        files={"file": ("big.csv", _big_csv(60_000), "text/csv")},
    )
    assert response.status_code == 202, response.text
    lead_list = response.json()
    wait_for(
        lambda: _state(pg_engine, lead_list["id"])[1] == "running" and _horse(first),
        "the horse to clean",
        60,
    )
    time.sleep(0.5)
    horse = _horse(first)
    assert horse is not None
    os.kill(first.proc.pid, signal.SIGKILL)  # the worker: its horse dies with it
    first.proc.wait(timeout=10)
    wait_for(lambda: not Path(f"/proc/{horse}").exists(), "the horse to die with its worker", 10)
    assert _state(pg_engine, lead_list["id"])[1] == "running"  # nobody left to say otherwise
    spawn_worker(database_url=pg_url, redis_url=redis_url, name="second")
    reaped_s = wait_for(
        lambda: _state(pg_engine, lead_list["id"])[1] != "running", "the reaper", 60
    )
    state = _state(pg_engine, lead_list["id"])
    error = _error(pg_engine, lead_list["job_id"])
    print(f"\n[worker kill -9] reaped after {reaped_s:.1f} s: {state} {error!r}")
    assert state == ("failed", "failed", 0)
    assert "died before it finished" in error


def test_a_killed_work_horse_fails_its_job_and_list_and_the_worker_goes_on(
    app_factory: Callable[..., Any],
    pg_url: str,
    pg_engine: sa.Engine,
    redis_url: str,
    spawn_worker: Callable[..., Worker],
) -> None:
    http = app_factory(pg_url, redis_url)
    tenant = make_tenant(http, "alpha")
    worker = spawn_worker(database_url=pg_url, redis_url=redis_url)
    response = http.post(
        "/lists",
        headers=tenant.headers(),
        data={"name": "big"},
        files={"file": ("big.csv", _big_csv(60_000), "text/csv")},
    )
    assert response.status_code == 202, response.text
    lead_list = response.json()

    def state() -> tuple[str, str | None, int]:
        with pg_engine.connect() as conn:
            status, job_status = conn.execute(
                sa.text(
                    "SELECT l.status, j.status FROM leadlist l JOIN jobrecord j "
                    "ON j.id = l.job_id WHERE l.id = :id"
                ),
                {"id": lead_list["id"]},
            ).one()
            leads = conn.execute(
                sa.text("SELECT count(*) FROM lead WHERE list_id = :id"), {"id": lead_list["id"]}
            ).scalar_one()
        return str(status), job_status, int(leads)

    wait_for(lambda: state()[1] == "running" and _horse(worker), "the horse to clean", 60)
    time.sleep(0.5)  # into the cleaning
    horse = _horse(worker)
    assert horse is not None
    os.kill(horse, signal.SIGKILL)
    wait_for(lambda: state()[1] != "running", "the lost job to be marked", 30)
    status, job_status, leads = state()
    with pg_engine.connect() as conn:
        error = conn.execute(
            sa.text("SELECT error FROM jobrecord WHERE id = :id"), {"id": lead_list["job_id"]}
        ).scalar_one()
    print(f"\n[horse kill -9] list={status} job={job_status} leads left={leads} error={error!r}")
    assert (status, job_status, leads) == ("failed", "failed", 0)
    assert "killed by signal 9" in error
    listed = http.get(f"/lists/{lead_list['id']}", headers=tenant.headers()).json()
    assert listed["status"] == "failed"
    assert "submit it again" in listed["error"]
    # the worker lives on and cleans the next list
    again = http.post(
        "/lists",
        headers=tenant.headers(),
        files={"file": ("small.csv", _big_csv(20), "text/csv")},
    ).json()
    wait_for(
        lambda: (
            http.get(f"/lists/{again['id']}", headers=tenant.headers()).json()["status"] == "ready"
        ),
        "the next list to be cleaned",
        60,
    )
    assert worker.proc.poll() is None
