"""Alembic, driven from code: upgrade, current revision, and the 'schema is behind' check."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import OperationalError

from core.errors import ConfigError, SchemaOutOfDate

__all__ = [
    "MODEL_MODULES",
    "alembic_config",
    "check_schema_current",
    "current_revision",
    "head_revision",
    "import_all_models",
    "upgrade",
]

# Every module that defines tables; migrations/env.py and the app import them all so the
# metadata is complete. Add a domain's models module here when it gains tables.
MODEL_MODULES = (
    "core.models",
    "core.files",
    "campaigns.models",
    "surveys.models",
    "feasibility.models",
    "dialer.models",
    "dialer.recordings",
    "reports.models",
    "core.users",
)


def import_all_models() -> None:
    """Import every table module so SQLModel.metadata knows the whole schema."""
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def alembic_config(url: URL | str) -> Config:
    """An Alembic config pointing at the packaged migrations for ``url``."""
    import migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def upgrade(url: URL | str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise ConfigError(
            f"PILOTDIAL_DATABASE_URL: cannot reach the database ({_first_line(exc)})"
        ) from exc


def head_revision(url: URL | str = "sqlite://") -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None if never migrated)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise ConfigError(
            f"PILOTDIAL_DATABASE_URL: cannot reach the database ({_first_line(exc)})"
        ) from exc


def check_schema_current(engine: Engine) -> None:
    """Raise SchemaOutOfDate unless the database is at the code's head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at {current or 'nothing'} but this version needs {head}; "
            "run `pilotdial db upgrade`"
        )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
