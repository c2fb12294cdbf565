"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api.router import Router
from core.errors import PilotdialError
from core.migrate import check_schema_current
from core.queue import get_redis

router = Router(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The database answers with a current schema, and Redis answers if configured."""
    checks: dict[str, Any] = {}
    try:
        check_schema_current(request.app.state.engine)
        checks["database"] = "ok"
    except PilotdialError as exc:
        checks["database"] = exc.message
    settings = request.app.state.settings
    if settings.redis_url:
        try:
            get_redis(settings.redis_url).ping()
            checks["redis"] = "ok"
        except (RedisError, PilotdialError) as exc:
            checks["redis"] = f"unreachable: {exc}"
    else:
        checks["redis"] = "not configured (jobs run in process)"
    ready = all(v == "ok" or v.startswith("not configured") for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
