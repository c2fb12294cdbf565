"""Do-not-call lists in the database: keyed hashes and masks, never plain numbers.

A client's own list (``SuppressionEntry``, tenant-scoped) and the house-wide list
(``GlobalSuppressionEntry``, managed by admins) are both consulted when a list is cleaned and
again at dial time (by :mod:`campaigns.compliance`, which owns the key and the hash).
Numbers come in any format the cleaner accepts and are normalised to E.164 before hashing, so
``138 1234 5678`` and ``+86 138-1234-5678`` are the same entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, delete, select

from campaigns.compliance import current_key
from campaigns.models import GlobalSuppressionEntry, SuppressionEntry
from core.errors import InvalidInput
from data_cleaning import PhoneNormaliser, SuppressionSet
from data_cleaning.exceptions import DataCleaningError
from data_cleaning.suppression import hash_e164, suppression_entry

__all__ = [
    "SuppressionChange",
    "add_numbers",
    "client_suppression_set",
    "import_dnc_file",
    "remove_numbers",
]

_BATCH = 5000


@dataclass
class SuppressionChange:
    """What an add or remove did, row by row accounted for."""

    accepted: int = 0
    already_present: int = 0
    not_found: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "already_present": self.already_present,
            "not_found": self.not_found,
            "rejected": self.rejected,
        }


def _normalise(numbers: Iterable[str], region: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        normaliser = PhoneNormaliser(region)
    except DataCleaningError as exc:
        raise InvalidInput(str(exc)) from exc
    good: list[str] = []
    bad: list[dict[str, str]] = []
    for raw in numbers:
        result = normaliser.normalise(raw)
        if result.e164 is None:
            reason = result.reject_reason.value if result.reject_reason else "not_a_number"
            bad.append({"input": raw, "reason": reason})
        else:
            good.append(result.e164)
    return good, bad


def add_numbers(
    *,
    session: Session,
    client_id: uuid.UUID | None,
    numbers: Iterable[str],
    region: str,
    source: str,
    reason: str | None = None,
) -> SuppressionChange:
    """Add numbers to the client's list (or the global list when ``client_id`` is None)."""
    good, bad = _normalise(numbers, region)
    return _store(session, client_id, good, source, reason, SuppressionChange(rejected=bad))


def _store(
    session: Session,
    client_id: uuid.UUID | None,
    e164s: list[str],
    source: str,
    reason: str | None,
    change: SuppressionChange,
) -> SuppressionChange:
    key = current_key()
    model = SuppressionEntry if client_id is not None else GlobalSuppressionEntry
    for start in range(0, len(e164s), _BATCH):
        entries = {}
        for e164 in e164s[start : start + _BATCH]:
            entry = suppression_entry(e164, key)
            if entry.e164_hash in entries:
                change.already_present += 1
            entries[entry.e164_hash] = entry
        existing = set(
            session.exec(select(model.number_hash).where(col(model.number_hash).in_(list(entries))))
        )
        for number_hash, entry in entries.items():
            if number_hash in existing:
                change.already_present += 1
                continue
            if client_id is not None:
                session.add(
                    SuppressionEntry(
                        client_id=client_id,
                        number_hash=number_hash,
                        masked=entry.masked,
                        source=source,
                        reason=reason,
                    )
                )
            else:
                session.add(
                    GlobalSuppressionEntry(
                        number_hash=number_hash, masked=entry.masked, source=source
                    )
                )
            change.accepted += 1
        session.flush()
    return change


def remove_numbers(
    *, session: Session, client_id: uuid.UUID | None, numbers: Iterable[str], region: str
) -> SuppressionChange:
    """Remove numbers from the client's list (or the global list)."""
    good, bad = _normalise(numbers, region)
    key = current_key()
    hashes = {hash_e164(e164, key) for e164 in good}
    model = SuppressionEntry if client_id is not None else GlobalSuppressionEntry
    present = set(
        session.exec(select(model.number_hash).where(col(model.number_hash).in_(list(hashes))))
    )
    if present:
        session.exec(delete(model).where(col(model.number_hash).in_(list(present))))
    return SuppressionChange(accepted=len(present), not_found=len(hashes - present), rejected=bad)


def import_dnc_file(
    *,
    session: Session,
    client_id: uuid.UUID | None,
    path: Path,
    region: str,
    source: str = "upload",
    reason: str | None = None,
) -> SuppressionChange:
    """Add every number of a DNC file (CSV with a phone column, or one number per line)."""
    try:
        lines = _numbers_with_lines(path)
        normaliser = PhoneNormaliser(region)
    except DataCleaningError as exc:
        raise InvalidInput(f"do-not-call file: {exc}") from exc
    good: list[str] = []
    change = SuppressionChange()
    for line, raw in lines:
        result = normaliser.normalise(raw)
        if result.e164 is None:
            why = result.reject_reason.value if result.reject_reason else "not_a_number"
            change.rejected.append({"line": str(line), "input": raw, "reason": why})
        else:
            good.append(result.e164)
    return _store(session, client_id, good, source, reason, change)


def _numbers_with_lines(path: Path) -> list[tuple[int, str]]:
    """(file line, cell) for each number in a DNC file (the reader numbers rows by line)."""
    from data_cleaning.columns import detect_phone_column, looks_like_phone
    from data_cleaning.readers import open_table

    with open_table(path) as reader:
        columns = list(reader.info.columns)
        rows = [(number, row) for number, row in reader.rows()]
    if any(looks_like_phone(cell) for cell in columns):
        index = next(i for i, cell in enumerate(columns) if looks_like_phone(cell))
        found = [(1, columns[index])]
        return found + [(n, row[index]) for n, row in rows if len(row) > index]
    name = detect_phone_column(tuple(columns), [row for _, row in rows[:200]], None)
    index = columns.index(name)
    return [(n, row[index]) for n, row in rows if len(row) > index]


def client_suppression_set(*, session: Session, include_global: bool = True) -> SuppressionSet:
    """Every hash the session's client(s) must not dial, as a fast in-memory set."""
    key = current_key()
    hashes = list(session.exec(select(SuppressionEntry.number_hash)))
    if include_global:
        hashes += list(session.exec(select(GlobalSuppressionEntry.number_hash)))
    return SuppressionSet.from_hashes(hashes, key)
