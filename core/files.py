"""Client files (uploads, cleaned lists, exports) stored in the database in chunks.

Workers on other machines must read what the API received, so files live in PostgreSQL (or
the embedded SQLite), not on one machine's disk. Files are written and read as streams of
1 MiB chunks, so memory stays flat for large lists; deleting a file deletes its chunks.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, delete, select

from core.db import TenantScoped, UTCDateTime, utcnow
from core.errors import NotFound, PayloadTooLarge

__all__ = [
    "CHUNK_BYTES",
    "FileChunk",
    "StoredFile",
    "delete_file",
    "iter_file",
    "materialise",
    "save_file",
    "save_path",
    "stream_file",
]

CHUNK_BYTES = 1024 * 1024


class StoredFile(SQLModel, TenantScoped, table=True):
    """A client's file: name, type, size and checksum; the bytes are in FileChunk rows."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    filename: str = Field(max_length=300)
    content_type: str = Field(default="application/octet-stream", max_length=120)
    size_bytes: int = 0
    sha256: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FileChunk(SQLModel, TenantScoped, table=True):
    """One piece of a stored file, in order."""

    __table_args__ = (UniqueConstraint("file_id", "seq"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    file_id: uuid.UUID = Field(foreign_key="storedfile.id", index=True, ondelete="CASCADE")
    seq: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


def save_file(
    session: Session,
    *,
    client_id: uuid.UUID,
    filename: str,
    chunks: Iterable[bytes],
    content_type: str = "application/octet-stream",
    max_bytes: int | None = None,
) -> StoredFile:
    """Store a stream of bytes; over ``max_bytes`` raises PayloadTooLarge and stores nothing."""
    stored = StoredFile(client_id=client_id, filename=filename, content_type=content_type)
    session.add(stored)
    session.flush()
    digest = hashlib.sha256()
    size = seq = 0
    buffer = bytearray()
    for piece in chunks:
        size += len(piece)
        if max_bytes is not None and size > max_bytes:
            session.rollback()
            raise PayloadTooLarge(
                f"{filename} is larger than the {max_bytes:,}-byte upload limit; split the list "
                "or ask an operator to raise PILOTDIAL_MAX_UPLOAD_BYTES",
                extra={"limit_bytes": max_bytes},
            )
        digest.update(piece)
        buffer.extend(piece)
        while len(buffer) >= CHUNK_BYTES:
            _add_chunk(session, stored, seq, bytes(buffer[:CHUNK_BYTES]))
            del buffer[:CHUNK_BYTES]
            seq += 1
    if buffer:
        _add_chunk(session, stored, seq, bytes(buffer))
    stored.size_bytes = size
    stored.sha256 = digest.hexdigest()
    session.add(stored)
    session.flush()
    return stored


def _add_chunk(session: Session, stored: StoredFile, seq: int, data: bytes) -> None:
    # Flushed and forgotten at once, so a large file never sits in the session's memory.
    chunk = FileChunk(client_id=stored.client_id, file_id=stored.id, seq=seq, data=data)
    session.add(chunk)
    session.flush()
    session.expunge(chunk)


def save_path(
    session: Session,
    *,
    client_id: uuid.UUID,
    path: Path,
    filename: str | None = None,
    content_type: str = "application/octet-stream",
) -> StoredFile:
    """Store a local file."""
    with path.open("rb") as fh:
        return save_file(
            session,
            client_id=client_id,
            filename=filename or path.name,
            chunks=iter(lambda: fh.read(CHUNK_BYTES), b""),
            content_type=content_type,
        )


def iter_file(session: Session, file_id: uuid.UUID) -> Iterator[bytes]:
    """The file's bytes in order, one chunk at a time (tenancy-scoped like every query)."""
    if session.get(StoredFile, file_id) is None:
        raise NotFound(f"file {file_id} does not exist")
    seq = 0
    while True:
        chunk = session.exec(
            select(FileChunk.data).where(FileChunk.file_id == file_id, FileChunk.seq == seq)
        ).first()
        if chunk is None:
            return
        yield chunk
        seq += 1


def stream_file(client_id: uuid.UUID, file_id: uuid.UUID) -> Iterator[bytes]:
    """A file's bytes from its own client-scoped session (for responses streamed after the
    request's session has closed)."""
    from core.db import tenant_session

    with tenant_session([client_id]) as session:
        yield from iter_file(session, file_id)


def materialise(session: Session, file_id: uuid.UUID, directory: Path) -> Path:
    """Copy a stored file to a local temporary path (for readers that need a real file)."""
    stored = session.get(StoredFile, file_id)
    if stored is None:
        raise NotFound(f"file {file_id} does not exist")
    suffix = Path(stored.filename).suffix
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, suffix=suffix, delete=False) as handle:
        for chunk in iter_file(session, file_id):
            handle.write(chunk)
    return Path(handle.name)


def delete_file(session: Session, file_id: uuid.UUID) -> None:
    """Delete a file and all its chunks (really deleted, not hidden)."""
    session.exec(delete(FileChunk).where(col(FileChunk.file_id) == file_id))
    session.exec(delete(StoredFile).where(col(StoredFile.id) == file_id))
