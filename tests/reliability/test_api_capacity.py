"""The API under more concurrent requests than it has threads and connections.

Before: every sync route and dependency ran on a 40-thread pool, a request held its
connection until the response was serialized (on that same pool), and the engine allowed 30
connections: with ~70 requests at once, 30 held connections waiting for a thread while 40
threads waited for a connection, until the 30 s pool timeout turned them into 500s and
``/healthz`` queued behind them. Now at most ``api_max_in_flight`` requests are admitted,
each holds one connection (auth and route share the session), the pool is checked to be
large enough, and a connection not found in time answers 503 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from core.db import get_engine

from helpers import live_server, make_tenant


def _app(configure: Callable[..., None], pg_url: str, **settings: str) -> Any:
    from api.main import create_app

    configure(database_url=pg_url, **settings)
    return create_app()


async def _burst(base: str, headers: dict[str, str], paths: list[str]) -> list[int | str]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=limits) as c:

        async def one(path: str) -> int | str:
            try:
                return (await c.get(path)).status_code
            except httpx.HTTPError as exc:
                return type(exc).__name__

        return list(await asyncio.gather(*(one(p) for p in paths)))


def test_200_concurrent_requests_all_succeed(
    configure: Callable[..., None], pg_url: str, pg_engine: sa.Engine
) -> None:
    app = _app(configure, pg_url, api_queue_timeout_s="120")
    tenant = make_tenant(None, "alpha")
    with live_server(app) as base:
        first = httpx.post(f"{base}/jobs/summary", headers=tenant.headers(), timeout=60)
        assert first.status_code == 202
        job = first.json()["id"]
        paths = [("/jobs" if i % 2 else f"/jobs/{job}") for i in range(200)]
        statuses = asyncio.run(_burst(base, tenant.headers(), paths))
        assert statuses.count(200) == 200, sorted(set(map(str, statuses)))
        assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}


def test_no_free_connection_answers_503_with_retry_after(
    configure: Callable[..., None], pg_url: str, pg_engine: sa.Engine
) -> None:
    app = _app(
        configure,
        pg_url,
        api_max_in_flight="1",
        db_pool_size="4",  # the least allowed: 2 for the request, 2 for stream reads
        db_max_overflow="0",
        db_pool_timeout_s="0.2",
    )
    tenant = make_tenant(None, "alpha")
    engine = get_engine()  # the app's engine: these settings, a pool of four
    assert engine is app.state.engine
    with contextlib.ExitStack() as held, live_server(app) as base:
        for _ in range(4):
            held.enter_context(engine.connect()).execute(sa.text("SELECT 1"))
        response = httpx.get(f"{base}/jobs", headers=tenant.headers(), timeout=60)
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert response.json()["type"].endswith("/busy")
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200  # never queued
    with live_server(app) as base:  # connections back: served again
        assert httpx.get(f"{base}/jobs", headers=tenant.headers(), timeout=60).status_code == 200


def test_a_pool_too_small_for_the_admitted_requests_is_refused(
    configure: Callable[..., None], pg_url: str
) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="PILOTDIAL_API_MAX_IN_FLIGHT"):
        _app(configure, pg_url, api_max_in_flight="20", db_pool_size="5", db_max_overflow="5")


def test_a_crash_keeps_its_request_id_log_line_and_connection(
    configure: Callable[..., None], pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(configure, pg_url)

    def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/test-boom", boom)
    caplog.set_level(logging.INFO, logger="pilotdial.api")
    with live_server(app) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            reader = sock.makefile("rb")

            def ask(path: str, rid: str) -> tuple[int, dict[str, str], bytes]:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n\r\n".encode()
                )
                status = int(reader.readline().split()[1])
                headers = {}
                while (line := reader.readline().decode().strip()) != "":
                    name, _, value = line.partition(":")
                    headers[name.lower()] = value.strip()
                return status, headers, reader.read(int(headers["content-length"]))

            status, headers, body = ask("/test-boom", "crash-1")
            assert status == 500
            assert headers["x-request-id"] == "crash-1"
            assert b'"request_id":"crash-1"' in body
            # the same keep-alive connection still serves the next request
            status, headers, _ = ask("/healthz", "after-1")
            assert (status, headers["x-request-id"]) == (200, "after-1")
    assert any("/test-boom -> 500" in r.getMessage() for r in caplog.records)
    assert any(r.exc_info and "kaboom" in str(r.exc_info[1]) for r in caplog.records)
