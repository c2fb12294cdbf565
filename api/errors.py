"""RFC 9457 problem+json for every error, with a stable ``type`` per error kind."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PilotdialError,
    QueueUnavailable,
    SchemaOutOfDate,
    Unavailable,
)
from core.logging import request_id_var
from core.validation import describe_validation_error

__all__ = ["PROBLEM_BASE", "install_error_handlers", "problem"]

PROBLEM_BASE = "https://pilotdial.dev/problems/"
log = logging.getLogger(__name__)
RETRY_AFTER_S = 2

STATUS_BY_ERROR: list[tuple[type[PilotdialError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (PayloadTooLarge, 413),
    (PermissionDenied, 403),
    (SchemaOutOfDate, 503),
    (QueueUnavailable, 503),
    (Unavailable, 503),
    (ConfigError, 500),
]


CONSOLE_PREFIX = "/console/"
#: The members of a problem document that an error's own ``extra`` fields never replace.
_PROBLEM_MEMBERS = frozenset(
    ("type", "title", "status", "detail", "instance", "request_id", "code")
)


def problem(
    request: Request, *, status: int, code: str, title: str, detail: str, **extra: Any
) -> Response:
    """A problem+json response (an error page for the browser console's pages)."""
    if request.url.path.startswith(CONSOLE_PREFIX) and not request.url.path.startswith(
        CONSOLE_PREFIX + "static/"
    ):
        from api.console.web import error_page

        return error_page(request, status=status, title=title, detail=detail, code=code)
    body = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_var.get(),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def install_error_handlers(app: FastAPI) -> None:
    """Map domain exceptions, validation errors and HTTP errors to problem+json."""

    @app.exception_handler(PilotdialError)
    async def _domain(request: Request, exc: PilotdialError) -> Response:
        status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 400)
        response = problem(
            request,
            status=status,
            code=exc.code,
            title=exc.title,
            detail=_readable(exc),
            **{k: v for k, v in exc.extra.items() if k not in _PROBLEM_MEMBERS},
        )
        if status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem(
            request,
            status=422,
            code="invalid-input",
            title="Invalid input",
            detail=detail,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {
            401: "unauthorized",
            404: "not-found",
            405: "method-not-allowed",
            429: "too-many-attempts",
        }
        response = problem(
            request,
            status=exc.status_code,
            code=codes.get(exc.status_code, f"http-{exc.status_code}"),
            title=str(exc.detail) if exc.status_code != 404 else "Not found",
            detail=str(exc.detail),
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(sa_exc.TimeoutError)
    async def _pool_timeout(request: Request, exc: sa_exc.TimeoutError) -> Response:
        log.warning("no database connection free in time on %s", request.url.path)
        return _unavailable(request, "busy", "every database connection is in use; retry")

    @app.exception_handler(sa_exc.OperationalError)
    async def _db_down(request: Request, exc: sa_exc.OperationalError) -> Response:
        log.error("database unavailable on %s: %s", request.url.path, _first_line(exc))
        return _unavailable(request, "database-unavailable", "the database is unavailable")

    @app.exception_handler(RedisError)
    async def _queue_down(request: Request, exc: RedisError) -> Response:
        log.error("queue unavailable on %s: %s", request.url.path, exc)
        return _unavailable(
            request, "queue-unavailable", "the job queue is unavailable; nothing was queued"
        )

    @app.exception_handler(sa_exc.DataError)
    async def _data(request: Request, exc: sa_exc.DataError) -> Response:
        # the database refused a value no field bound caught: too long, out of range, NUL
        return problem(
            request,
            status=422,
            code="invalid-input",
            title="Invalid input",
            detail=f"a value cannot be stored: {_first_line(exc)}",
        )

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError) -> Response:
        return problem(
            request,
            status=422,
            code="invalid-input",
            title="Invalid input",
            detail="text must be valid Unicode (a lone surrogate or undecodable byte was sent)",
        )


_PYDANTIC_NOISE = re.compile(
    r"\s*\[type=[^\]]*\]|\s*For further information visit https?://errors\.pydantic\.dev\S*"
)


def _readable(exc: PilotdialError) -> str:
    """The message, with a wrapped pydantic ValidationError said as ``field: problem``.

    Domain code that embeds ``{exc}`` of a ValidationError would otherwise send pydantic's
    multi-line dump (model names, ``[type=…, input_value=…]``, errors.pydantic.dev links).
    """
    message = exc.message
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        message = message.replace(str(cause), describe_validation_error(cause))
    return _PYDANTIC_NOISE.sub("", message)


def _first_line(exc: sa_exc.DBAPIError) -> str:
    return str(exc.orig or exc).strip().splitlines()[0][:200]


def _unavailable(request: Request, code: str, detail: str) -> Response:
    response = problem(request, status=503, code=code, title="Service unavailable", detail=detail)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response
