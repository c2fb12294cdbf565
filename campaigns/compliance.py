"""Dial-time compliance checks on the database: suppression lists and the Ofcom 72-hour rule.

Numbers are looked up by their keyed hash (HMAC-SHA256 under a key derived from the secret
key), the same hash the suppression-list import stores; the plain number is never stored in a
suppression table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from campaigns.models import CallAttempt, GlobalSuppressionEntry, SuppressionEntry
from campaigns.rules import OFCOM_REDIAL_GAP
from core.errors import Conflict, InvalidInput
from core.security import suppression_key
from core.settings import get_settings
from data_cleaning.exceptions import DataCleaningError
from data_cleaning.normalise import PhoneNormaliser
from data_cleaning.suppression import hash_e164

__all__ = [
    "ManualDialRefused",
    "check_manual_dial",
    "current_key",
    "number_hash",
    "recent_abandons",
    "suppress_number",
    "suppressed_numbers",
]


def current_key() -> bytes:
    """The HMAC key of suppression hashes (derived from PILOTDIAL_SECRET_KEY)."""
    return suppression_key(get_settings().resolved_secret())


def number_hash(e164: str, *, key: bytes | None = None) -> str:
    """The suppression hash of an E.164 number (hex HMAC-SHA256), as the list import stores."""
    return hash_e164(e164, key or current_key())


class ManualDialRefused(Conflict):
    """A number an agent typed may not be dialed (do-not-call list)."""

    code = "dial-refused"
    title = "Dial refused"


def check_manual_dial(*, session: Session, client_id: uuid.UUID, number: str, region: str) -> str:
    """The E.164 form of a number an agent dials by hand, after the checks every dial gets:
    read as the list cleaner reads it (``+86 139 1234 5678``, ``0139-1234-5678`` with the
    client's region, ...), and never a number on the client's or the global do-not-call
    list. InvalidInput (422) for what is not a number, ManualDialRefused (409) for a
    suppressed one."""
    try:
        normalised = PhoneNormaliser(region).normalise(number)
    except DataCleaningError as exc:
        raise InvalidInput(str(exc), extra={"field": "number"}) from exc
    if normalised.e164 is None:
        reason = normalised.reject_reason.value if normalised.reject_reason else "not_a_number"
        raise InvalidInput(
            f"{number!r} is not a phone number the list cleaner accepts ({reason}); send it in "
            f"international form (+86 139 1234 5678) or as dialed in {region}",
            extra={"field": "number"},
        )
    if suppressed_numbers(session=session, client_id=client_id, numbers=[normalised.e164]):
        raise ManualDialRefused(
            f"{normalised.e164} is on a do-not-call list; it may not be dialed, manually either",
            extra={"field": "number"},
        )
    return normalised.e164


def suppressed_numbers(
    *, session: Session, client_id: uuid.UUID, numbers: Iterable[str]
) -> set[str]:
    """Which of ``numbers`` are on the client's or the global do-not-call list."""
    key = current_key()
    by_hash = {number_hash(n, key=key): n for n in set(numbers)}
    if not by_hash:
        return set()
    hashes = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        found.update(
            session.exec(
                select(SuppressionEntry.number_hash).where(
                    SuppressionEntry.client_id == client_id,
                    col(SuppressionEntry.number_hash).in_(chunk),
                )
            ).all()
        )
        found.update(
            session.exec(
                select(GlobalSuppressionEntry.number_hash).where(
                    col(GlobalSuppressionEntry.number_hash).in_(chunk)
                )
            ).all()
        )
    return {by_hash[h] for h in found}


def suppress_number(
    *,
    session: Session,
    client_id: uuid.UUID,
    e164: str,
    source: str,
    reason: str | None = None,
) -> SuppressionEntry:
    """Put a number on the client's do-not-call list (no-op if it is already there)."""
    from data_cleaning.suppression import mask_e164

    digest = number_hash(e164)
    existing = session.exec(
        select(SuppressionEntry).where(
            SuppressionEntry.client_id == client_id, SuppressionEntry.number_hash == digest
        )
    ).first()
    if existing is not None:
        return existing
    try:
        masked = mask_e164(e164)
    except Exception:  # a number the masker cannot parse still gets suppressed
        masked = e164[:4] + "****"
    entry = SuppressionEntry(
        client_id=client_id, number_hash=digest, masked=masked, source=source, reason=reason
    )
    # A savepoint, so a concurrent insert of the same number does not break the caller's
    # transaction: the other insert already did what we wanted.
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        again = session.exec(
            select(SuppressionEntry).where(
                SuppressionEntry.client_id == client_id, SuppressionEntry.number_hash == digest
            )
        ).one()
        return again
    return entry


def recent_abandons(
    *, session: Session, client_id: uuid.UUID, numbers: Iterable[str], now: datetime
) -> dict[str, datetime]:
    """Numbers whose call was abandoned less than 72 h before ``now`` → when that call ended."""
    wanted = list(set(numbers))
    out: dict[str, datetime] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.exec(
            select(CallAttempt.number_dialed, func.max(CallAttempt.ended_at))
            .where(
                CallAttempt.client_id == client_id,
                col(CallAttempt.number_dialed).in_(chunk),
                col(CallAttempt.abandoned).is_(True),
                col(CallAttempt.ended_at) > now - OFCOM_REDIAL_GAP,
            )
            .group_by(CallAttempt.number_dialed)
        ).all()
        for number, ended in rows:
            if ended is not None:
                out[number] = ended
    return out
