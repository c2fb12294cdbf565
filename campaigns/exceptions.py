"""The campaigns package's exceptions, each a subclass of one ``core.errors`` kind.

- ``CampaignError`` (mixin base, never raised alone)
  - ``IllegalTransition`` (Conflict, 409): a lifecycle action not allowed from the current
    status; ``extra["allowed_next_states"]`` lists what is.
  - ``CampaignNotDialing`` (Conflict): a dial was asked for while the campaign is not piloting
    or running (paused campaigns start no new calls).
  - ``LeaseExpired`` (Conflict): a dialer completed a call on a lease that had already expired
    or been taken over; the completion is refused so nothing is counted twice.
  - ``AttemptFinished`` (Conflict): a finished call attempt is immutable.
  - ``CampaignInputError`` (InvalidInput, 422): settings, batch or disposition input is wrong.
  - ``AttemptsImportError`` (InvalidInput): an attempts CSV has bad rows; ``errors`` lists
    them with their line numbers and nothing was imported.
"""

from __future__ import annotations

from typing import Any

from core.errors import Conflict, InvalidInput

__all__ = [
    "AttemptFinished",
    "AttemptsImportError",
    "CampaignError",
    "CampaignInputError",
    "CampaignNotDialing",
    "IllegalTransition",
    "LeaseExpired",
]


class CampaignError:
    """Marker base of every exception this package raises."""


class IllegalTransition(CampaignError, Conflict):
    code = "illegal-transition"
    title = "Illegal campaign transition"

    def __init__(self, message: str, *, allowed_next_states: list[str]) -> None:
        super().__init__(message, extra={"allowed_next_states": allowed_next_states})
        self.allowed_next_states = allowed_next_states


class CampaignNotDialing(CampaignError, Conflict):
    code = "campaign-not-dialing"
    title = "Campaign is not dialing"


class LeaseExpired(CampaignError, Conflict):
    code = "lease-expired"
    title = "Lead lease expired"


class AttemptFinished(CampaignError, Conflict):
    code = "attempt-finished"
    title = "Call attempt already finished"


class CampaignInputError(CampaignError, InvalidInput):
    code = "invalid-input"
    title = "Invalid input"


class AttemptsImportError(CampaignError, InvalidInput):
    code = "attempts-import"
    title = "Attempts file rejected"

    def __init__(self, message: str, *, errors: list[dict[str, Any]]) -> None:
        super().__init__(message, extra={"errors": errors})
        self.errors = errors
