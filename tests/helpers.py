"""Test builders shared across the suite (importable because pyproject puts tests/ on the path)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

#: A `pilotdial worker`'s pacer supervisor alone, as a subprocess runs it (``python -c``).
SUPERVISOR = (
    "import logging; logging.basicConfig(level=logging.INFO); "
    "from core.migrate import import_all_models; import_all_models(); "
    "from dialer.run_control import supervise; supervise()"
)


def wait_until(predicate: Callable[[], Any], what: str, timeout_s: float = 60.0) -> float:
    """Poll ``predicate`` until it is true; the seconds it took (AssertionError naming
    ``what`` after ``timeout_s``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@dataclass
class Tenant:
    """A client with an API key, and an HTTP client that sends it."""

    client_id: uuid.UUID
    key: str
    http: Any

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_tenant(http: Any, name: str, role: str = "client", region: str = "CN") -> Tenant:
    """Create a client and a key through the admin service, bound to ``http``."""
    from core.admin import create_client, issue_key
    from core.db import system_session
    from core.models import Role

    with system_session() as sess:
        client = create_client(
            session=sess, name=name, default_region=region, slug=f"{name}-{uuid.uuid4().hex[:6]}"
        )
        _key, plain = issue_key(
            session=sess, name=f"{name} key", role=Role(role), client_refs=[str(client.id)]
        )
    return Tenant(client_id=client.id, key=plain, http=http)


def empty_database(engine: Engine) -> None:
    """Empty every table of a test database once nothing of the test still uses it.

    Background jobs run in a process-wide thread pool (embedded mode) and can outlive the
    test that queued them: a job still counting tables holds share locks on some while
    TRUNCATE holds exclusive locks on others, a cycle PostgreSQL breaks with
    ``DeadlockDetected``. So: wait for every in-process job first, then truncate; a lock
    still held by something else ends in a clear lock timeout, never a deadlock or a hang.
    """
    from sqlmodel import SQLModel

    from core.migrate import import_all_models
    from core.queue import drain_embedded

    drain_embedded()
    import_all_models()
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
        conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class FakeClock:
    """A clock for the live dial loop that moves only when the loop sleeps; each sleep lets
    the desks (agents' hands, probes) act at the new time."""

    def __init__(self) -> None:
        # agents are created "now"; the loop's time starts later, so every action is later
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        self.desks: list[Callable[[datetime], None]] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        for desk in self.desks:
            desk(self.now)
