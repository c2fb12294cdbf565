"""The Alembic migrations build exactly the schema the models describe (no drift)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from core.migrate import current_revision, head_revision, import_all_models


def _drift(url: str) -> list[Any]:
    import_all_models()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": False}
            )
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def test_postgres_schema_matches_the_models(pg_url: str, pg_engine: sa.Engine) -> None:
    """A table, column, index or type added to a model needs a migration (and vice versa)."""
    assert current_revision(pg_engine) == head_revision()
    assert _drift(pg_url) == []


def test_sqlite_schema_matches_the_models(sqlite_url: str) -> None:
    assert _drift(sqlite_url) == []
