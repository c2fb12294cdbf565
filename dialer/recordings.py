"""Call recordings: stored where every worker and the API read them, linked to the attempt,
downloadable by the client (audited by the routes), kept for the retention and then purged.

Storage (``PILOTDIAL_RECORDING_STORAGE``):

- ``database`` (the default): the file's bytes in the database's file store
  (:mod:`core.files`, 1 MiB chunks), fine for small deployments and the embedded mode;
- ``directory``: files under ``PILOTDIAL_RECORDING_DIR``, a directory every worker and the API
  mount (NFS, a shared volume), laid out ``<client>/<campaign>/<YYYY-MM>/<attempt>.wav``.

An S3-style bucket is not done yet. Retention: each recording carries ``expires_at``, set when
it is stored from the campaign's retention (``PILOTDIAL_RECORDING_RETENTION_DAYS``, default 31:
the contract's one month); :func:`purge_expired` deletes expired recordings for good (file and
row) and logs how many and which attempts. It runs as the RQ job :func:`purge_job`, scheduled
hourly by :func:`run_purge_schedule` next to ``pilotdial worker``, and as
``pilotdial recordings purge [--dry-run]``.

Errors: an unknown or foreign recording is :class:`core.errors.NotFound`; a bad month is
:class:`core.errors.InvalidInput`; a misconfigured directory is :class:`core.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import multiprocessing.process
import os
import re
import shutil
import threading
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from campaigns.models import CallAttempt
from core.db import TenantScoped, UTCDateTime, get_or_404, str_enum, utcnow
from core.errors import ConfigError, InvalidInput, NotFound
from core.files import CHUNK_BYTES, delete_file, save_path, stream_file
from core.settings import Settings, get_settings

__all__ = [
    "PurgeReport",
    "Recording",
    "RecordingPublic",
    "RecordingStorage",
    "archive_chunks",
    "get_attempt_recording",
    "list_recordings",
    "month_range",
    "purge_expired",
    "purge_job",
    "recording_chunks",
    "run_purge_schedule",
    "start_purge_process",
    "store_recording",
]

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0
_PURGE_LOCK_KEY = "pilotdial:recordings:purge"


class RecordingStorage(StrEnum):
    database = "database"
    directory = "directory"


class Recording(SQLModel, TenantScoped, table=True):
    """One call's recording (both legs mixed): where its bytes are and until when."""

    __table_args__ = (UniqueConstraint("attempt_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    attempt_id: uuid.UUID = Field(foreign_key="callattempt.id", ondelete="CASCADE")
    format: str = Field(default="wav", max_length=16)
    duration_s: float = 0.0
    size_bytes: int = 0
    sha256: str = Field(default="", max_length=64)
    storage: RecordingStorage = Field(sa_type=str_enum(RecordingStorage))
    storage_key: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class RecordingPublic(SQLModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    attempt_id: uuid.UUID
    format: str
    duration_s: float
    size_bytes: int
    sha256: str
    created_at: datetime
    expires_at: datetime


def _directory(settings: Settings) -> Path:
    directory = settings.recording_dir
    if directory is None:
        raise ConfigError(
            "PILOTDIAL_RECORDING_STORAGE=directory needs PILOTDIAL_RECORDING_DIR, a directory "
            "every worker and the API can read"
        )
    return directory


def store_recording(
    *,
    session: Session,
    attempt: CallAttempt,
    path: Path,
    duration_s: float,
    retention_days: int | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> Recording:
    """Store a call's recording file and link it to its attempt (``attempt.recording_ref``)."""
    settings = settings or get_settings()
    now = now or utcnow()
    days = retention_days if retention_days is not None else settings.recording_retention_days
    fmt = path.suffix.lstrip(".").lower() or "wav"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    storage = RecordingStorage(settings.recording_storage)
    if storage is RecordingStorage.database:
        stored = save_path(
            session,
            client_id=attempt.client_id,
            path=path,
            filename=f"{attempt.id}.{fmt}",
            content_type=_content_type(fmt),
        )
        key = str(stored.id)
    else:
        key = f"{attempt.client_id}/{attempt.campaign_id}/{now:%Y-%m}/{attempt.id}.{fmt}"
        target = _directory(settings) / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        shutil.copyfile(path, partial)
        os.replace(partial, target)  # readers never see half a file
    recording = Recording(
        client_id=attempt.client_id,
        campaign_id=attempt.campaign_id,
        attempt_id=attempt.id,
        format=fmt,
        duration_s=duration_s,
        size_bytes=path.stat().st_size,
        sha256=digest.hexdigest(),
        storage=storage,
        storage_key=key,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(recording)
    attempt.recording_ref = f"recording:{recording.id}"
    session.add(attempt)
    session.flush()
    return recording


def _content_type(fmt: str) -> str:
    return {"wav": "audio/wav", "ogg": "audio/ogg", "opus": "audio/ogg"}.get(
        fmt, "application/octet-stream"
    )


def recording_chunks(recording: Recording, settings: Settings | None = None) -> Iterator[bytes]:
    """The recording's bytes, streamed (from its own client-scoped session if in the database)."""
    if recording.storage is RecordingStorage.database:
        yield from stream_file(recording.client_id, uuid.UUID(recording.storage_key))
        return
    path = _directory(settings or get_settings()) / recording.storage_key
    try:
        with path.open("rb") as handle:
            yield from iter(lambda: handle.read(CHUNK_BYTES), b"")
    except FileNotFoundError as exc:
        raise NotFound(f"the recording file of attempt {recording.attempt_id} is gone") from exc


def get_attempt_recording(
    *, session: Session, campaign_id: uuid.UUID, attempt_id: uuid.UUID
) -> Recording:
    """The recording of one of the campaign's attempts (NotFound if none, or not the caller's)."""
    get_or_404(session, CallAttempt, attempt_id, what="call attempt")
    recording = session.exec(
        select(Recording).where(
            Recording.attempt_id == attempt_id, Recording.campaign_id == campaign_id
        )
    ).first()
    if recording is None:
        raise NotFound(f"call attempt {attempt_id} of campaign {campaign_id} has no recording")
    return recording


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_range(month: str | None, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as [first instant, first instant of the next month) in UTC; None: this month."""
    if month is None:
        month = f"{now or utcnow():%Y-%m}"
    match = _MONTH.match(month)
    if match is None:
        raise InvalidInput(
            f"month {month!r} is not YYYY-MM; ask for e.g. month=2026-11",
            extra={"field": "month"},
        )
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def list_recordings(
    *, session: Session, campaign_id: uuid.UUID, month: str | None = None
) -> list[Recording]:
    """The campaign's recordings made in ``month`` (UTC), oldest first."""
    from campaigns.models import Campaign

    get_or_404(session, Campaign, campaign_id, what="campaign")
    start, end = month_range(month)
    return list(
        session.exec(
            select(Recording)
            .where(
                Recording.campaign_id == campaign_id,
                col(Recording.created_at) >= start,
                col(Recording.created_at) < end,
            )
            .order_by(col(Recording.created_at), col(Recording.id))
        )
    )


class _Sink:
    """A write-only buffer for zipfile (no ``tell``: zipfile then streams with data
    descriptors instead of seeking back)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer.extend(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def archive_chunks(
    recordings: list[Recording], settings: Settings | None = None
) -> Iterator[bytes]:
    """One ZIP of the recordings, produced piece by piece (memory stays at about a chunk)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[call-overload]
        for recording in recordings:
            name = f"{recording.created_at:%Y-%m-%d}/{recording.attempt_id}.{recording.format}"
            info = zipfile.ZipInfo(name, date_time=recording.created_at.timetuple()[:6])
            with archive.open(info, "w", force_zip64=True) as member:
                for chunk in recording_chunks(recording, settings):
                    member.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


@dataclass
class PurgeReport:
    """What a purge deleted (or, in a dry run, would delete)."""

    dry_run: bool
    count: int = 0
    size_bytes: int = 0
    attempt_ids: list[uuid.UUID] = field(default_factory=list)


def purge_expired(
    *,
    session: Session,
    now: datetime | None = None,
    dry_run: bool = False,
    settings: Settings | None = None,
) -> PurgeReport:
    """Delete every recording past its ``expires_at``: file, row and the attempt's link."""
    settings = settings or get_settings()
    now = now or utcnow()
    expired = list(
        session.exec(
            select(Recording)
            .where(col(Recording.expires_at) <= now)
            .order_by(col(Recording.expires_at))
        )
    )
    report = PurgeReport(dry_run=dry_run)
    for recording in expired:
        report.count += 1
        report.size_bytes += recording.size_bytes
        report.attempt_ids.append(recording.attempt_id)
        if dry_run:
            continue
        if recording.storage is RecordingStorage.database:
            delete_file(session, uuid.UUID(recording.storage_key))
        else:
            (_directory(settings) / recording.storage_key).unlink(missing_ok=True)
        attempt = session.get(CallAttempt, recording.attempt_id)
        if attempt is not None and attempt.recording_ref == f"recording:{recording.id}":
            attempt.recording_ref = None
            session.add(attempt)
        session.delete(recording)
    session.flush()
    log.info(
        "recordings purge%s: %d expired recording(s), %d bytes, attempts %s",
        " (dry run)" if dry_run else "",
        report.count,
        report.size_bytes,
        ", ".join(str(a) for a in report.attempt_ids) or "none",
    )
    return report


def purge_job() -> dict[str, object]:
    """RQ entry point: purge expired recordings of every client (a system session)."""
    from core.db import system_session

    with system_session() as session:
        report = purge_expired(session=session)
    return {"count": report.count, "attempt_ids": [str(a) for a in report.attempt_ids]}


def run_purge_schedule(
    *, stop: threading.Event | None = None, every_s: float = PURGE_EVERY_S
) -> None:
    """Enqueue :func:`purge_job` once per period across all workers (a Redis lock elects who)."""
    from redis.exceptions import RedisError

    from core.queue import enqueue_call, get_redis

    stop = stop or threading.Event()
    settings = get_settings()
    while True:  # a look first, then the wait: a stop already set still runs one period
        try:
            if settings.redis_url:
                redis = get_redis(settings.redis_url)
                if redis.set(_PURGE_LOCK_KEY, "1", nx=True, ex=max(1, int(every_s))):
                    enqueue_call("dialer.recordings.purge_job", settings=settings)
            else:
                purge_job()
        except (RedisError, OSError):
            log.exception("could not schedule the recordings purge; retrying next period")
        if stop.wait(every_s):
            return


def _purge_main(parent_pid: int) -> None:
    from core.logging import configure_logging
    from core.migrate import import_all_models
    from core.queue import die_with_parent

    die_with_parent(parent_pid)
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    import_all_models()
    run_purge_schedule()


def start_purge_process() -> multiprocessing.process.BaseProcess:
    """Start :func:`run_purge_schedule` in a spawned process beside ``pilotdial worker``
    (not a thread: the worker forks its work-horses, like the pacer supervisor)."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_purge_main, args=(os.getpid(),), name="pilotdial-recordings-purge", daemon=True
    )
    process.start()
    return process
