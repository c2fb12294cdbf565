"""The connection pool pings only connections that may be dead (real PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import db as core_db


@pytest.fixture
def pool(
    pg_engine: Engine, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, list[float]]]:
    """A one-connection engine of its own whose dialect counts its pings."""
    engine = core_db._make_engine(pg_url, {"pool_size": 1, "max_overflow": 0, "pool_timeout": 5})
    pings: list[float] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(time.monotonic())
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    yield engine, pings
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_in_steady_use_is_not_pinged(pool: tuple[Engine, list[float]]) -> None:
    engine, pings = pool
    first = _backend_pid(engine)
    for _ in range(50):
        assert _backend_pid(engine) == first  # the same pooled connection every time
    assert pings == []


def test_a_connection_the_server_ended_is_replaced_before_use(
    pool: tuple[Engine, list[float]], pg_engine: Engine
) -> None:
    """pg_terminate_backend (what a restart or an administrator does): the server's goodbye
    is waiting on the socket, so the next checkout pings, finds it dead and reconnects: the
    caller's statement succeeds on a new backend instead of failing."""
    engine, pings = pool
    first = _backend_pid(engine)
    with pg_engine.connect() as admin:
        assert admin.execute(sa.text(f"SELECT pg_terminate_backend({first})")).scalar_one()
        admin.commit()
    time.sleep(0.2)  # the server's message reaches the socket
    assert _backend_pid(engine) != first
    assert len(pings) == 1


def test_a_connection_idle_for_a_while_is_pinged(
    pool: tuple[Engine, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, pings = pool
    monkeypatch.setattr(core_db, "IDLE_PING_S", 0.2)
    first = _backend_pid(engine)
    assert _backend_pid(engine) == first
    assert pings == []
    time.sleep(0.3)
    assert _backend_pid(engine) == first  # alive: pinged and kept
    assert len(pings) == 1
