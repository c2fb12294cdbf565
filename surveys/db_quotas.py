"""The engine's :class:`~surveys.quotas.QuotaCounter` on the database (atomic on PostgreSQL).

A claim runs inside a SAVEPOINT of the caller's transaction: it creates missing cell rows
(``INSERT ... ON CONFLICT DO NOTHING``), then for every cell, in a fixed order so concurrent
claims cannot deadlock::

    UPDATE quotacellcount SET count = count + 1
     WHERE version_id = :v AND quota = :q AND cell_key = :k AND count < target

If any update touches no row the cell is full: the savepoint is rolled back, so no cell was
counted, and that cell is returned. Under PostgreSQL's READ COMMITTED a second updater of the
same row waits for the first to commit and then re-checks ``count < target`` against the new
count, so concurrent completions can never overfill a cell. The increments stay locked until
the caller's transaction (which also stores the completed interview) commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import CursorResult, update
from sqlmodel import Session, col, select

from core.errors import ConfigError
from surveys.models import QuotaCellCount
from surveys.quotas import QuotaCell

__all__ = ["DatabaseQuotaCounter"]


class DatabaseQuotaCounter:
    """Quota counts of one questionnaire version, in the caller's session and transaction."""

    def __init__(self, session: Session, *, client_id: uuid.UUID, version_id: uuid.UUID) -> None:
        self.session = session
        self.client_id = client_id
        self.version_id = version_id

    def count(self, quota: str, key: str) -> int:
        """Completed interviews counted in a cell (0 for a cell never touched)."""
        found = self.session.exec(
            select(QuotaCellCount.count).where(
                QuotaCellCount.version_id == self.version_id,
                QuotaCellCount.quota == quota,
                QuotaCellCount.cell_key == key,
            )
        ).first()
        return int(found or 0)

    def is_full(self, cell: QuotaCell) -> bool:
        """Whether the cell has reached its target already."""
        return self.count(cell.quota, cell.key) >= cell.target

    def claim(self, cells: Sequence[QuotaCell]) -> QuotaCell | None:
        """Atomically add one to every cell; if any is full, add none and return that cell."""
        ordered = sorted(cells, key=lambda c: (c.quota, c.key))
        for cell in ordered:
            if cell.target <= 0:
                return cell
        self._create_missing(ordered)
        savepoint = self.session.begin_nested()
        for cell in ordered:
            statement = (
                update(QuotaCellCount)
                .where(
                    col(QuotaCellCount.version_id) == self.version_id,
                    col(QuotaCellCount.quota) == cell.quota,
                    col(QuotaCellCount.cell_key) == cell.key,
                    col(QuotaCellCount.count) < col(QuotaCellCount.target),
                )
                .values(count=col(QuotaCellCount.count) + 1)
                .execution_options(synchronize_session=False)
            )
            result: CursorResult[Any] = self.session.execute(statement)  # type: ignore[assignment]
            if result.rowcount != 1:
                savepoint.rollback()
                return cell
        savepoint.commit()
        return None

    def _create_missing(self, cells: Sequence[QuotaCell]) -> None:
        if not cells:
            return
        rows = [
            {
                "id": uuid.uuid4(),
                "client_id": self.client_id,
                "version_id": self.version_id,
                "quota": cell.quota,
                "cell_key": cell.key,
                "count": 0,
                "target": cell.target,
            }
            for cell in cells
        ]
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self.session.execute(pg_insert(QuotaCellCount).values(rows).on_conflict_do_nothing())
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self.session.execute(
                sqlite_insert(QuotaCellCount).values(rows).on_conflict_do_nothing()
            )
        else:  # pragma: no cover - the project runs on PostgreSQL or SQLite only
            raise ConfigError(f"quota counting does not support the {dialect} database")
