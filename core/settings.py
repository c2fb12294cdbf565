"""One typed settings object, read from ``PILOTDIAL_*`` environment variables and ``.env``.

With nothing configured Pilotdial runs *embedded*: SQLite under ``./var/``, background jobs in
process, and a development secret generated once into ``./var/secret_key``. Production
(``PILOTDIAL_ENVIRONMENT=production``) needs PostgreSQL, Redis and a real secret, and refuses to
start otherwise, naming the variable to set.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError

__all__ = ["Environment", "Settings", "get_settings"]

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "please-change", "dev", "CHANGE_ME"}
MIN_SECRET_LENGTH = 32
# A request holds its own session's connection and, while it queues a job, one more.
CONNECTIONS_PER_REQUEST = 2
#: Reads of open event streams run at most this many at once (api/streams.py), beside the
#: admitted requests: each holds one connection while it runs.
STREAM_READERS = 2


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    """Runtime configuration; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="PILOTDIAL_", env_file=".env", extra="ignore")

    environment: Environment = Environment.development
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in data_dir"
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; unset runs background jobs in process"
    )
    secret_key: str | None = Field(default=None, description="HMAC key for suppression hashes")
    queue_name: str = "pilotdial"
    max_upload_bytes: int = 200 * 1024 * 1024
    list_split_rows: int = Field(
        default=1_000_000,
        ge=1000,
        description="lists of more rows are cleaned in parts by several RQ workers (with Redis)",
    )
    log_json: bool = False
    log_level: str = "INFO"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Capacity, sized together (see ``check_capacity``): an admitted request holds at most
    # two connections and one thread at a time, so neither can run out under any load.
    api_max_in_flight: int = Field(
        default=12, ge=1, le=1000, description="requests the API works on at once; others queue"
    )
    api_queue_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="a queued request waiting longer gets 503"
    )
    pacer_drain_s: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="at shutdown, how long pacers may take to finish their calls in progress",
    )
    # Failed authentications allowed per window before 429 (per process; see core.security)
    auth_failures_per_ip: int = Field(default=30, ge=1, le=100_000)
    auth_failures_per_key: int = Field(default=10, ge=1, le=100_000)
    auth_failure_window_s: float = Field(default=60.0, gt=0, le=86_400)
    # Call recordings (dialer.recordings): where they are kept and for how long
    recording_storage: Literal["database", "directory"] = "database"
    recording_dir: Path | None = Field(
        default=None, description="with recording_storage=directory: a directory all workers read"
    )
    recording_retention_days: int = Field(default=31, ge=1, le=3660)
    # Telephony (dialer.gateway): which gateway live-agent runs dial through. "sip" takes the
    # trunk from PILOTDIAL_SIP_TRUNK_HOST/_PORT/_TRANSPORT/_USERNAME/_PASSWORD (docs/sip.md).
    gateway: Literal["simulated", "sip"] = "simulated"
    sip_local_host: str = Field(
        default="127.0.0.1", description="address the SIP gateway binds and puts in SDP"
    )
    sip_port: int = Field(default=5060, ge=0, le=65535, description="0: any free port (UDP)")
    sip_rtp_port_min: int = Field(default=20000, ge=1024, le=65534)
    sip_rtp_port_max: int = Field(default=30000, ge=1025, le=65535)
    sip_symmetric_rtp: bool = Field(
        default=False,
        description="send RTP where the far end's packets come from (phones or trunks behind "
        "NAT announce a private address in their SDP)",
    )
    sip_messages_dir: Path | None = Field(
        default=None,
        description="8 kHz mono WAVs named by message id (safe_harbour.wav, "
        "machine_message.wav); <dir>/<campaign id>/ overrides them for one campaign",
    )
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_max_overflow: int = Field(default=20, ge=0, le=1000)
    db_pool_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="waiting longer for a connection answers 503"
    )

    @property
    def embedded(self) -> bool:
        """True when jobs run in process (no Redis configured)."""
        return self.redis_url is None

    def sqlalchemy_url(self) -> URL:
        """The database URL, defaulted and normalised to the psycopg 3 driver."""
        raw = self.database_url or f"sqlite:///{(self.data_dir / 'pilotdial.db').as_posix()}"
        try:
            url = make_url(raw)
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(
                f"PILOTDIAL_DATABASE_URL is not a valid database URL ({raw!r}); use e.g. "
                "postgresql://user@host:5432/dbname or sqlite:///var/pilotdial.db"
            ) from exc
        if url.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername not in {"postgresql+psycopg", "sqlite", "sqlite+pysqlite"}:
            raise ConfigError(
                f"PILOTDIAL_DATABASE_URL uses unsupported database {url.drivername!r}; "
                "use postgresql://… or sqlite:///…"
            )
        return url

    def resolved_secret(self) -> str:
        """The secret key; generated into data_dir in development, required in production."""
        if self.secret_key and self.secret_key not in PLACEHOLDER_SECRETS:
            if len(self.secret_key) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"PILOTDIAL_SECRET_KEY is too short ({len(self.secret_key)} characters); "
                    f"set at least {MIN_SECRET_LENGTH} random characters, e.g. "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            return self.secret_key
        if self.environment is Environment.production:
            raise ConfigError(
                "PILOTDIAL_SECRET_KEY is missing or a placeholder; production needs a random "
                "secret: `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value + "\n")
        path.chmod(0o600)
        return value

    def check_capacity(self) -> None:
        """Refuse a pool too small for the requests admitted at once (the API would wedge)."""
        needed = CONNECTIONS_PER_REQUEST * self.api_max_in_flight + STREAM_READERS
        if self.db_pool_size + self.db_max_overflow < needed:
            raise ConfigError(
                f"PILOTDIAL_DB_POOL_SIZE + PILOTDIAL_DB_MAX_OVERFLOW "
                f"({self.db_pool_size} + {self.db_max_overflow}) must be at least "
                f"{CONNECTIONS_PER_REQUEST} x PILOTDIAL_API_MAX_IN_FLIGHT + {STREAM_READERS} "
                f"for event streams ({needed})"
            )

    def check_production(self) -> None:
        """Refuse to run in production on embedded defaults."""
        if self.environment is not Environment.production:
            return
        self.resolved_secret()
        if not self.database_url or self.sqlalchemy_url().get_backend_name() != "postgresql":
            raise ConfigError(
                "PILOTDIAL_DATABASE_URL must point at PostgreSQL in production "
                "(postgresql://user:password@host:5432/pilotdial)"
            )
        if not self.redis_url:
            raise ConfigError("PILOTDIAL_REDIS_URL must be set in production (redis://host:6379/0)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
