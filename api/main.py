"""The FastAPI application: routers, error mapping, request ids; nothing else."""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy.engine import Engine

from api.errors import install_error_handlers
from core.db import get_engine
from core.logging import request_id_var
from core.migrate import check_schema_current, import_all_models
from core.settings import Settings, get_settings

__all__ = ["ROUTER_MODULES", "create_app"]

log = logging.getLogger("pilotdial.api")

# Each module exposes ``router``; a domain adds its module here when it gains routes.
ROUTER_MODULES = (
    "api.routes.health",
    "api.routes.clients",
    "api.routes.jobs",
    "api.routes.lists",
    "api.routes.suppression",
    "api.routes.campaigns",
    "api.routes.surveys",
    "api.routes.feasibility",
    "api.routes.pacer",
    "api.routes.agents",
    "api.routes.reports",
)


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, check_schema: bool = True
) -> FastAPI:
    """Build the app; refuses to start on a database whose schema is behind."""
    settings = settings or get_settings()
    import_all_models()
    engine = engine or get_engine(settings.sqlalchemy_url())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if check_schema:
            check_schema_current(engine)
        yield

    app = FastAPI(
        title="Pilotdial",
        version="0.1.0",
        summary="Outbound campaigns, pilot-call feasibility and quotes, surveys",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    install_error_handlers(app)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(rid[:80])
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = rid[:80]
        log.info(
            "%s %s -> %s in %.1f ms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            extra={"request_id": rid[:80]},
        )
        return response

    for module_name in ROUTER_MODULES:
        module = importlib.import_module(module_name)
        app.include_router(module.router)
    return app
