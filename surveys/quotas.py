"""Quota cells and the counter protocol the database layer implements.

A quota such as "200 per region × age band" has one *cell* per combination of values. The
engine asks a :class:`QuotaCounter` whether a cell is already full (to end the interview early
as *quota full*) and, on completion, to **claim** every cell the respondent falls in, atomically
and all-or-nothing. The PostgreSQL implementation does, in one transaction, for each cell::

    UPDATE quota_cells SET count = count + 1
     WHERE questionnaire_version_id = :v AND quota = :quota AND cell_key = :key
       AND count < target

and rolls back (returning the first cell whose update touched no row) if any cell is full, so
concurrent completions can never overfill a cell. :class:`InMemoryQuotaCounter` is the
thread-safe reference implementation used by tests and the IVR simulation.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from surveys.expressions import Value, to_text
from surveys.schema import Questionnaire

__all__ = [
    "InMemoryQuotaCounter",
    "QuotaCell",
    "QuotaCounter",
    "quota_cells",
]


class QuotaCell(BaseModel):
    """One cell of one quota, e.g. quota ``region_age``, key ``region=north;age_band=18-34``."""

    model_config = ConfigDict(frozen=True)

    quota: str
    key: str
    values: dict[str, str]
    target: int


@runtime_checkable
class QuotaCounter(Protocol):
    """Where completed-interview counts per quota cell live (the DB in production)."""

    def is_full(self, cell: QuotaCell) -> bool:
        """Whether the cell has reached its target already."""
        ...

    def claim(self, cells: Sequence[QuotaCell]) -> QuotaCell | None:
        """Atomically add one to every cell; if any is full, add none and return that cell."""
        ...


def quota_cells(questionnaire: Questionnaire, values: Mapping[str, Value]) -> list[QuotaCell]:
    """The limited cells the respondent falls in (quotas whose variables are all known)."""
    cells: list[QuotaCell] = []
    for quota in questionnaire.quotas:
        texts: dict[str, str] = {}
        for variable in quota.variables:
            text = to_text(values.get(variable))
            if text == "":
                break
            texts[variable] = text
        else:
            target = quota.cell_target(texts)
            if target is None:
                continue
            key = ";".join(f"{v}={texts[v]}" for v in quota.variables)
            cells.append(QuotaCell(quota=quota.name, key=key, values=texts, target=target))
    return cells


class InMemoryQuotaCounter:
    """A thread-safe QuotaCounter kept in a dict (tests, simulations, dry runs)."""

    def __init__(self, counts: Mapping[tuple[str, str], int] | None = None) -> None:
        self._counts: dict[tuple[str, str], int] = dict(counts or {})
        self._lock = threading.Lock()

    def count(self, quota: str, key: str) -> int:
        """Completed interviews counted in a cell."""
        with self._lock:
            return self._counts.get((quota, key), 0)

    def is_full(self, cell: QuotaCell) -> bool:
        """Whether the cell has reached its target already."""
        return self.count(cell.quota, cell.key) >= cell.target

    def claim(self, cells: Sequence[QuotaCell]) -> QuotaCell | None:
        """Atomically add one to every cell; if any is full, add none and return that cell."""
        with self._lock:
            for cell in cells:
                if self._counts.get((cell.quota, cell.key), 0) >= cell.target:
                    return cell
            for cell in cells:
                self._counts[(cell.quota, cell.key)] = (
                    self._counts.get((cell.quota, cell.key), 0) + 1
                )
            return None
