"""Shared fixtures: real PostgreSQL and Redis, a fresh SQLite file, API clients per tenant.

PostgreSQL and Redis come from ``PILOTDIAL_TEST_DATABASE_URL`` / ``PILOTDIAL_TEST_REDIS_URL`` or
the defaults on 127.0.0.1. If they do not answer, their tests skip locally, but with
``CI=true`` the whole run fails at once: CI never silently skips them.

Each test run migrates its own PostgreSQL database (``pilotdial_t_<random>``, dropped at the
end) with Alembic, so the migrations themselves are tested. Isolation per test:
- ``session``: a PostgreSQL session inside a transaction rolled back after the test;
- ``engine`` (and everything built on it: settings, API clients, workers): committed data,
  tables truncated after the test (PostgreSQL) or a fresh migrated file (SQLite).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from core import db as core_db
from core.migrate import upgrade
from core.settings import get_settings

from helpers import Tenant, empty_database, make_tenant

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKEND_USE: collections.Counter[str] = collections.Counter()


def _pg_admin_url() -> str:
    return os.environ.get("PILOTDIAL_TEST_DATABASE_URL", PG_DEFAULT).replace(
        "postgresql://", "postgresql+psycopg://"
    )


def _redis_base_url() -> str:
    return os.environ.get("PILOTDIAL_TEST_REDIS_URL", REDIS_DEFAULT)


def _pg_reachable() -> str | None:
    try:
        eng = sa.create_engine(_pg_admin_url(), connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


def _redis_reachable() -> str | None:
    try:
        Redis.from_url(_redis_base_url(), socket_connect_timeout=3).ping()
        return None
    except Exception as exc:
        return str(exc)


PG_PROBLEM = _pg_reachable()
REDIS_PROBLEM = _redis_reachable()


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and (PG_PROBLEM or REDIS_PROBLEM):
        pytest.exit(
            f"CI=true but the test services are unreachable: PostgreSQL: {PG_PROBLEM or 'ok'}; "
            f"Redis: {REDIS_PROBLEM or 'ok'}",
            returncode=3,
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # user_properties travel from xdist workers to the controller with each report
    if report.when == "teardown":
        backends = {value for name, value in report.user_properties if name == "backend"}
        for backend in backends:
            BACKEND_USE[backend] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    uses = ", ".join(f"{k}={v}" for k, v in sorted(BACKEND_USE.items())) or "none"
    terminalreporter.write_line(f"tests run against real backends: {uses}")


def _uses(request: pytest.FixtureRequest, backend: str) -> None:
    request.node.user_properties.append(("backend", backend))


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A freshly migrated PostgreSQL database for this test run."""
    if PG_PROBLEM:
        pytest.skip(f"PostgreSQL unreachable: {PG_PROBLEM}")
    name = f"pilotdial_t_{uuid.uuid4().hex[:10]}_{_worker_suffix()}"
    admin = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    core_db.dispose_engines()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_engine(pg_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """PostgreSQL with committed data; every table is emptied after the test."""
    _uses(request, "postgres")
    engine = core_db.get_engine(pg_url)
    yield engine
    empty_database(engine)


@pytest.fixture
def session(pg_url: str, request: pytest.FixtureRequest) -> Iterator[Session]:
    """A PostgreSQL session whose work is rolled back after the test."""
    _uses(request, "postgres")
    engine = core_db.get_engine(pg_url)
    connection = engine.connect()
    trans = connection.begin()
    sess = Session(bind=connection, join_transaction_mode="create_savepoint")
    yield sess
    sess.close()
    trans.rollback()
    connection.close()


# --------------------------------------------------------------------------- SQLite


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    _uses(request, "sqlite")
    path = tmp_path / "pilotdial.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A dedicated Redis database, flushed before and after the test."""
    if REDIS_PROBLEM:
        pytest.skip(f"Redis unreachable: {REDIS_PROBLEM}")
    _uses(request, "redis")
    index = 14 - int(_worker_suffix().removeprefix("gw") or 0)
    full = re.sub(r"/\d+$", "", _redis_base_url().rstrip("/")) + f"/{index}"
    conn = Redis.from_url(full)
    conn.flushdb()
    yield full
    conn.flushdb()
    conn.close()


# --------------------------------------------------------------------------- settings, API


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test using this runs twice: on PostgreSQL and on SQLite."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        engine = core_db.get_engine(url)
        _uses(request, "postgres")
        yield url
        empty_database(engine)
    else:
        yield request.getfixturevalue("sqlite_url")


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Point the process settings at test services: configure(database_url=..., redis_url=...)."""

    def _configure(*, database_url: str, redis_url: str | None = None, **extra: str) -> None:
        monkeypatch.setenv("PILOTDIAL_DATABASE_URL", database_url)
        monkeypatch.setenv("PILOTDIAL_DATA_DIR", str(tmp_path / "var"))
        monkeypatch.setenv("PILOTDIAL_SECRET_KEY", "t" * 48)
        if redis_url:
            monkeypatch.setenv("PILOTDIAL_REDIS_URL", redis_url)
        else:
            monkeypatch.delenv("PILOTDIAL_REDIS_URL", raising=False)
        for key, value in extra.items():
            monkeypatch.setenv(f"PILOTDIAL_{key.upper()}", value)
        get_settings.cache_clear()

    monkeypatch.delenv("PILOTDIAL_ENVIRONMENT", raising=False)
    yield _configure
    get_settings.cache_clear()


@pytest.fixture
def app_factory(configure: Callable[..., None]) -> Callable[..., Any]:
    """Build the app on a given database (and optional Redis)."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    clients: list[TestClient] = []

    def _make(database_url: str, redis_url: str | None = None) -> TestClient:
        configure(database_url=database_url, redis_url=redis_url)
        client = TestClient(create_app(), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield _make
    from core.queue import drain_embedded

    drain_embedded()  # no job of this test may run on into the next one
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(app_factory: Callable[..., Any], database_url: str) -> Any:
    """The app on PostgreSQL and SQLite in turn, jobs in process."""
    return app_factory(database_url)


@pytest.fixture
def tenant_a(api: Any) -> Tenant:
    return make_tenant(api, "alpha")


@pytest.fixture
def tenant_b(api: Any) -> Tenant:
    return make_tenant(api, "bravo")
