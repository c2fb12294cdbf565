"""The FastAPI application: routers, error mapping, request ids; nothing else."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.console import install_console
from api.deps import AuthThrottle
from api.docs import install_docs
from api.errors import install_error_handlers
from api.middleware import RequestGuard
from api.openapi import install_openapi_security
from core.db import get_engine
from core.migrate import check_schema_current, import_all_models
from core.settings import Settings, get_settings

__all__ = ["ROUTER_MODULES", "create_app", "serve_app"]

# Each module exposes ``router``; a domain adds its module here when it gains routes.
ROUTER_MODULES = (
    "api.routes.health",
    "api.routes.clients",
    "api.routes.jobs",
    "api.routes.lists",
    "api.routes.suppression",
    "api.routes.campaigns",
    "api.routes.live",
    "api.routes.surveys",
    "api.routes.feasibility",
    "api.routes.pacer",
    "api.routes.agents",
    "api.routes.reports",
    "api.routes.recordings",
)


def serve_app() -> FastAPI:
    """The app of one of ``pilotdial serve --workers N``'s processes (settings from the
    environment; production, so no process runs embedded pacers)."""
    from core.logging import configure_logging

    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    return create_app(settings, own_pacers=True)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    check_schema: bool = True,
    own_pacers: bool = False,
) -> FastAPI:
    """Build the app; refuses to start on a database whose schema is behind.

    ``own_pacers`` (``pilotdial serve``): on the embedded default this process runs the
    pacers, so at start it resumes the campaigns that were dialing and at shutdown it drains
    them (calls in progress finish) for up to ``pacer_drain_s``.
    """
    settings = settings or get_settings()
    settings.check_capacity()
    import_all_models()
    engine = engine or get_engine(settings.sqlalchemy_url())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if check_schema:
            check_schema_current(engine)
        # Sync routes and dependencies run on this pool; admitted requests use one thread at
        # a time each, plus the never-queued health checks.
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, settings.api_max_in_flight + 8)
        embedded_pacers = own_pacers and not settings.redis_url
        if embedded_pacers:
            from dialer.run_control import resume_embedded_pacers

            await anyio.to_thread.run_sync(resume_embedded_pacers)
        yield
        if embedded_pacers:
            from dialer.run_control import drain_pacers

            await anyio.to_thread.run_sync(drain_pacers, settings.pacer_drain_s)

    app = FastAPI(
        title="Pilotdial",
        version="0.1.0",
        summary="Outbound campaigns, pilot-call feasibility and quotes, surveys",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from local files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.auth_throttle = AuthThrottle(settings)
    install_error_handlers(app)

    app.add_middleware(
        RequestGuard,
        max_in_flight=settings.api_max_in_flight,
        queue_timeout_s=settings.api_queue_timeout_s,
    )

    for module_name in ROUTER_MODULES:
        module = importlib.import_module(module_name)
        app.include_router(module.router)
    install_openapi_security(app)
    install_docs(app)
    install_console(app)
    return app
