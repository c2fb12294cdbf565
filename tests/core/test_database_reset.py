"""The per-test database reset cannot deadlock with a background job the test left running."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.queue import drain_embedded, enqueue_call

from helpers import empty_database

STATE: dict[str, object] = {}


def lock_two_tables_in_turn() -> None:
    """A job that reads one table, dawdles, then reads one TRUNCATE locks first."""
    engine: Engine = STATE["engine"]  # type: ignore[assignment]
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT count(*) FROM jobrecord"))
            started: threading.Event = STATE["started"]  # type: ignore[assignment]
            started.set()
            time.sleep(1.5)
            conn.execute(sa.text("SELECT count(*) FROM client"))
        STATE["outcome"] = "ok"
    except Exception as exc:
        STATE["outcome"] = type(getattr(exc, "orig", None) or exc).__name__


def test_reset_waits_for_in_process_jobs_instead_of_deadlocking(
    pg_url: str, pg_engine: Engine, configure: object
) -> None:
    configure(database_url=pg_url)  # type: ignore[operator]
    STATE.update(engine=pg_engine, started=threading.Event(), outcome=None)
    enqueue_call(f"{__name__}.lock_two_tables_in_turn")
    assert STATE["started"].wait(30)  # type: ignore[attr-defined]
    empty_database(pg_engine)  # before the fix: TRUNCATE and the job wait for each other
    drain_embedded()
    assert STATE["outcome"] == "ok"
