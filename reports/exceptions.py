"""The reports package's exceptions, each a subclass of one ``core.errors`` kind.

- ``ReportsError`` (mixin base, never raised alone)
  - ``ReportInputError`` (InvalidInput, 422): a period, interval, section, format, price or
    outage given wrongly; the message says what to send instead.
  - ``StatementLocked`` (Conflict, 409): an issued statement never changes; make a correction
    (a new version) instead.
  - ``StatementTransition`` (Conflict): a lifecycle step not allowed from the current status;
    ``extra["allowed"]`` lists what is.
"""

from __future__ import annotations

from core.errors import Conflict, InvalidInput

__all__ = ["ReportInputError", "ReportsError", "StatementLocked", "StatementTransition"]


class ReportsError:
    """Marker base of every exception this package raises."""


class ReportInputError(ReportsError, InvalidInput):
    code = "report-input"
    title = "Invalid report or statement input"


class StatementLocked(ReportsError, Conflict):
    code = "statement-locked"
    title = "Statement already issued"


class StatementTransition(ReportsError, Conflict):
    code = "statement-transition"
    title = "Statement step not allowed"

    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(message, extra={"allowed": allowed})
        self.allowed = allowed
