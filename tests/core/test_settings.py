"""Settings: embedded defaults, production refusals, and messages that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Environment, Settings


def test_embedded_default_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    url = settings.sqlalchemy_url()
    assert url.get_backend_name() == "sqlite"
    assert url.database == f"{tmp_path.as_posix()}/pilotdial.db"
    assert settings.embedded


def test_postgres_url_is_normalised_to_psycopg3() -> None:
    url = Settings(database_url="postgresql://u@h:5432/db", _env_file=None).sqlalchemy_url()
    assert url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize("raw", ["not a url", "mysql://u@h/db", "postgresql://h:notaport/x"])
def test_bad_database_url_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="PILOTDIAL_DATABASE_URL"):
        Settings(database_url=raw, _env_file=None).sqlalchemy_url()


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path, _env_file=None).resolved_secret()
    second = Settings(data_dir=tmp_path, _env_file=None).resolved_secret()
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("secret", [None, "changeme", "short-secret"])
def test_production_refuses_missing_placeholder_or_short_secret(
    tmp_path: Path, secret: str | None
) -> None:
    settings = Settings(
        environment=Environment.production,
        secret_key=secret,
        data_dir=tmp_path,
        database_url="postgresql://u@h/db",
        redis_url="redis://h:6379/0",
        _env_file=None,
    )
    with pytest.raises(ConfigError, match="PILOTDIAL_SECRET_KEY"):
        settings.check_production()
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_embedded_database_and_missing_redis(tmp_path: Path) -> None:
    base = {"environment": Environment.production, "secret_key": "s" * 40, "data_dir": tmp_path}
    with pytest.raises(ConfigError, match="PILOTDIAL_DATABASE_URL"):
        Settings(**base, redis_url="redis://h/0", _env_file=None).check_production()
    with pytest.raises(ConfigError, match="PILOTDIAL_REDIS_URL"):
        Settings(**base, database_url="postgresql://u@h/db", _env_file=None).check_production()


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTDIAL_REDIS_URL", "redis://example:6379/3")
    monkeypatch.setenv("PILOTDIAL_MAX_UPLOAD_BYTES", "1234")
    settings = Settings(_env_file=None)
    assert settings.redis_url == "redis://example:6379/3"
    assert settings.max_upload_bytes == 1234
    assert not settings.embedded
