"""The exception tree every domain builds on.

Domain packages raise subclasses of these; ``api/errors.py`` maps each base class to one HTTP
status and a stable problem ``type``, and the CLI turns them into a one-line message and exit 2.
Domain code never imports FastAPI.

- ``PilotdialError``: base of everything we raise on purpose.
  - ``ConfigError``: the environment or settings are wrong (names the variable).
  - ``NotFound``: the object does not exist *for this caller* (another client's object too).
  - ``Conflict``: the request is valid but not in the object's current state.
  - ``InvalidInput``: the caller sent something malformed; says what and how to fix it.
  - ``PayloadTooLarge``: an upload above the configured limit.
  - ``PermissionDenied``: the caller's role may not do this (never used to hide existence).
  - ``SchemaOutOfDate``: the database needs ``pilotdial db upgrade``.
  - ``QueueUnavailable``: the job queue (Redis) refused a job; nothing was queued, retry.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "PilotdialError",
    "QueueUnavailable",
    "SchemaOutOfDate",
]


class PilotdialError(Exception):
    """Base class; ``code`` becomes the problem type slug, ``extra`` its extension members."""

    code = "error"
    title = "Error"

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class ConfigError(PilotdialError):
    code = "config"
    title = "Bad configuration"


class NotFound(PilotdialError):
    code = "not-found"
    title = "Not found"


class Conflict(PilotdialError):
    code = "conflict"
    title = "Conflict"


class InvalidInput(PilotdialError):
    code = "invalid-input"
    title = "Invalid input"


class PayloadTooLarge(PilotdialError):
    code = "payload-too-large"
    title = "Payload too large"


class PermissionDenied(PilotdialError):
    code = "forbidden"
    title = "Forbidden"


class SchemaOutOfDate(PilotdialError):
    code = "schema-out-of-date"
    title = "Database schema out of date"


class Unavailable(PilotdialError):
    """A tool or service the operation needs is missing or failing here (HTTP 503)."""

    code = "unavailable"
    title = "Service unavailable"


class QueueUnavailable(PilotdialError):
    """A job could not be queued; its record is marked failed (``job_id``, ``params``)."""

    code = "queue-unavailable"
    title = "Service unavailable"

    def __init__(self, message: str, *, job_id: str, params: dict[str, Any]) -> None:
        super().__init__(message, extra={"job_id": job_id})
        self.job_id = job_id
        self.params = params
