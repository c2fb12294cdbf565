"""The one ASGI middleware around every request: id, admission, headers, crash, access log.

- **Request id**: the caller's ``X-Request-ID`` if it is a plain token, else a new one; it is
  in every log record of the request, in the response header and in every problem body,
  a 500 included.
- **Admission**: at most ``api_max_in_flight`` requests are worked on at once; the others
  wait in the event loop (holding no thread and no connection) and get 503 with
  ``Retry-After`` after ``api_queue_timeout_s``. Admitted requests therefore always find a
  thread and a connection (``Settings.check_capacity``); ``/healthz`` is never queued. An
  event stream gives its slot back once its response starts (see :mod:`api.streams`).
- **Headers**: ``X-Content-Type-Options: nosniff`` on everything, HSTS on every answer over
  TLS (RFC 6797: not over plain HTTP); ``Cache-Control: no-store`` on every answer to an
  authenticated request (lead exports, keys' data).
- **Crash**: an unhandled exception becomes a problem+json 500 *here*, so the connection
  stays usable and the access log has its line (Starlette's outermost handler re-raises to
  the server, which then drops the keep-alive connection).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from core.logging import request_id_var

__all__ = ["RequestGuard"]

log = logging.getLogger("pilotdial.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
NEVER_QUEUED = frozenset({"/healthz"})
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff")]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class RequestGuard:
    """Pure ASGI middleware (no BaseHTTPMiddleware: streaming bodies pass straight through)."""

    def __init__(self, app: ASGIApp, *, max_in_flight: int, queue_timeout_s: float) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.queue_timeout_s = queue_timeout_s
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:  # a new loop (tests) gets new slots
            self._slots, self._loop = asyncio.Semaphore(self.max_in_flight), loop
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        authenticated = b"authorization" in headers or b"x-api-key" in headers
        tls = scope.get("scheme") == "https"  # behind a proxy: uvicorn --proxy-headers
        token = request_id_var.set(rid)
        started = time.perf_counter()
        state: dict[str, Any] = {"status": None}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                raw = list(message.get("headers", []))
                names = {name.lower() for name, _ in raw}
                content_type = next((v for k, v in raw if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/event-stream"):
                    # A stream may stay open for hours: its slot goes back to short requests
                    # now; its later reads are bounded by api.streams instead.
                    release = state.pop("release", None)
                    if release is not None:
                        release()
                raw.append((b"x-request-id", rid.encode()))
                raw.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                if tls and HSTS[0] not in names:  # browsers ignore HSTS sent over plain HTTP
                    raw.append(HSTS)
                if authenticated and b"cache-control" not in names:
                    raw.append((b"cache-control", b"no-store"))
                message = {**message, "headers": raw}
            await send(message)

        try:
            if scope["path"] in NEVER_QUEUED:
                await self._run(scope, receive, send_with_headers, state)
            else:
                slots = self._semaphore()
                try:
                    await asyncio.wait_for(slots.acquire(), self.queue_timeout_s)
                except TimeoutError:
                    await self._busy(scope, receive, send_with_headers)
                else:
                    state["release"] = slots.release
                    try:
                        await self._run(scope, receive, send_with_headers, state)
                    finally:
                        release = state.pop("release", None)
                        if release is not None:
                            release()
        finally:
            log.info(
                "%s %s -> %s in %.1f ms",
                scope["method"],
                scope["path"],
                state["status"],
                (time.perf_counter() - started) * 1000,
            )
            request_id_var.reset(token)

    async def _run(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if state["status"] is not None:
                raise  # the response has started: only the server can end it now
            response = problem(
                Request(scope),
                status=500,
                code="internal",
                title="Internal error",
                detail="something went wrong on our side; quote the request_id to support",
            )
            await response(scope, receive, send)

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            Request(scope),
            status=503,
            code="busy",
            title="Service busy",
            detail=f"the API is at capacity; retry in a moment (queued {self.queue_timeout_s} s)",
        )
        response.headers["Retry-After"] = "1"
        await response(scope, receive, send)
