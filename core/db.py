"""Database engine, sessions, UTC timestamps and the one tenancy mechanism.

Tenancy: every table holding client data inherits :class:`TenantScoped` and has a ``client_id``.
A session opened with :func:`tenant_session` carries the caller's client ids in ``session.info``;
a ``do_orm_execute`` hook adds ``client_id IN (...)`` to every ORM SELECT, UPDATE and DELETE on
such tables (``with_loader_criteria``), and a ``before_flush`` hook refuses to write a row for a
client outside the scope. Routes and services therefore never repeat the filter, and forgetting
it is impossible. Sessions opened with :func:`system_session` (CLI admin, workers) are unscoped.
"""

from __future__ import annotations

import os
import select
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import URL, Dialect, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria
from sqlalchemy.orm import Session as _SASession
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

from core.errors import ConfigError, NotFound

__all__ = [
    "TENANT_SCOPE_KEY",
    "TenantScoped",
    "UTCDateTime",
    "dispose_engines",
    "get_engine",
    "get_or_404",
    "str_enum",
    "system_session",
    "tenant_models",
    "tenant_session",
    "utcnow",
]

TENANT_SCOPE_KEY = "pilotdial_client_ids"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only clock read in persistence code)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    PostgreSQL stores ``timestamptz``; SQLite stores the UTC wall time. Naive datetimes are
    refused on the way in, because their meaning depends on the writer's clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(enum_cls: type[StrEnum]) -> SAEnum:
    """A column type for a str enum, stored as VARCHAR so new values need no type migration."""
    return SAEnum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


class TenantScoped:
    """Marker mixin: the table holds one client's data in ``client_id``."""

    client_id: uuid.UUID


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: URL | str | None = None) -> Engine:
    """The shared engine for ``url`` (default: the settings' database)."""
    if url is None:
        from core.settings import get_settings

        url = get_settings().sqlalchemy_url()
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    pool = _pool_kwargs()
    key = f"{text} {sorted(pool.items())}"  # new pool settings, a new engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _make_engine(text, pool)
            _engines[key] = engine
    return engine


def _make_engine(url: str, pool: dict[str, Any]) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if path in {"", ":memory:"}:
            kwargs["poolclass"] = StaticPool
        else:
            kwargs.update(pool)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    try:
        engine = create_engine(url, **pool)
    except Exception as exc:  # pragma: no cover - driver import problems
        raise ConfigError(f"PILOTDIAL_DATABASE_URL cannot be used: {exc}") from exc
    _ping_idle_connections(engine)
    return engine


def _socket_has_news(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket is readable (or closed, or in error)."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # closed: the ping will say so
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


#: A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_S = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only when it may be dead.

    ``pool_pre_ping`` pings at every checkout: a round trip per API request (~1.4 ms of the
    server's ~4.5 ms CPU per request under load). Here a connection is pinged when it has been
    idle for ``IDLE_PING_S`` (it may have sat through a restart or a cut), or when its socket
    has something to read although no statement is running: the server's goodbye (a restart,
    an administrator's terminate), a reset or end of stream (a cut). Else it was working a
    moment ago and nothing has arrived since, which one non-blocking poll tells. A dead one is
    replaced (the pool retries with a new connection) before anyone uses it.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None:
            return  # just connected
        if time.monotonic() - since < IDLE_PING_S and not _socket_has_news(dbapi_connection):
            return  # in use a moment ago, and nothing has come from the server since
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: the pool discards it and connects anew
            raise DisconnectionError(f"an idle pooled connection is dead: {exc}") from exc


def _pool_kwargs() -> dict[str, Any]:
    from core.settings import get_settings

    settings = get_settings()
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        # a caller waiting longer for a connection gets sqlalchemy's TimeoutError (API: 503)
        "pool_timeout": settings.db_pool_timeout_s,
    }


def _forget_inherited_connections() -> None:
    """In a forked child: start every engine with an empty pool of its own.

    The parent's pooled connections are sockets the child shares with the parent (and with
    every earlier child): a work-horse that used one prepared statements on the parent's
    server session, and the next work-horse failed with ``DuplicatePreparedStatement``.
    ``close=False`` drops them without closing them, so the parent's stay intact. No lock is
    taken: another thread may have held it at the moment of the fork.
    """
    for engine in list(_engines.values()):
        engine.dispose(close=False)


# Every fork (RQ's work-horses, multiprocessing's fork start method), wherever it happens.
os.register_at_fork(after_in_child=_forget_inherited_connections)


def dispose_engines() -> None:
    """Close every pooled connection (tests, forked workers)."""
    engines = list(_engines.values())
    _engines.clear()
    for engine in engines:
        engine.dispose()


@contextmanager
def system_session(engine: Engine | None = None) -> Iterator[Session]:
    """An unscoped session for trusted code (CLI admin, workers); commits on success."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def tenant_session(
    client_ids: Iterable[uuid.UUID], engine: Engine | None = None
) -> Iterator[Session]:
    """A session that can see and write only the given clients' rows; commits on success."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        scope_session(session, client_ids)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def scope_session(session: Session, client_ids: Iterable[uuid.UUID]) -> None:
    """Restrict an open session to the given clients."""
    session.info[TENANT_SCOPE_KEY] = frozenset(client_ids)


def get_or_404(session: Session, model: type[Any], object_id: Any, *, what: str) -> Any:
    """Fetch by primary key through the tenancy filter; missing or foreign → NotFound."""
    obj = session.get(model, object_id)
    if obj is None:
        raise NotFound(f"no {what} with this id")
    return obj


@event.listens_for(_SASession, "do_orm_execute")
def _add_tenant_criteria(state: ORMExecuteState) -> None:
    scope = state.session.info.get(TENANT_SCOPE_KEY)
    if scope is None:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    state.statement = state.statement.options(*_tenant_options(scope))


_options_cache: dict[tuple[tuple[type[Any], ...], frozenset[uuid.UUID]], tuple[Any, ...]] = {}


def _tenant_options(scope: frozenset[uuid.UUID]) -> tuple[Any, ...]:
    """The loader criteria restricting every tenant table to ``scope``.

    Built once per scope and model set, not per query: an option is immutable, so every
    request of a client shares them.
    """
    models = tenant_models()
    cache_key = (models, scope)
    options = _options_cache.get(cache_key)
    if options is None:
        ids = tuple(scope)
        options = tuple(
            with_loader_criteria(
                model,
                lambda cls: cls.client_id.in_(ids),
                include_aliases=True,
                track_closure_variables=False,
            )
            for model in models
        )
        if len(_options_cache) >= 1024:
            _options_cache.clear()
        _options_cache[cache_key] = options
    return options


_tenant_cache: tuple[int, tuple[type[Any], ...]] = (-1, ())


def tenant_models() -> tuple[type[Any], ...]:
    """Every mapped table class that holds client data (cached until a new model appears)."""
    global _tenant_cache
    from sqlmodel import SQLModel

    registry = SQLModel._sa_registry
    for _ in range(10):
        count = len(registry._managers)
        if _tenant_cache[0] == count:
            return _tenant_cache[1]
        try:
            models = tuple(
                mapper.class_
                for mapper in registry.mappers
                if issubclass(mapper.class_, TenantScoped)
            )
        except RuntimeError:  # another thread is defining a model right now
            continue
        _tenant_cache = (count, models)
        return models
    raise RuntimeError("the model registry kept changing while reading it")


@event.listens_for(_SASession, "before_flush")
def _check_tenant_writes(session: _SASession, _ctx: Any, _instances: Any) -> None:
    scope = session.info.get(TENANT_SCOPE_KEY)
    if scope is None:
        return
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, TenantScoped) and obj.client_id not in scope:
            raise NotFound(f"{type(obj).__name__} does not exist for this client")
