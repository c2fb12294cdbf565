"""Stored files: chunked round trip, size limit with nothing left behind, tenancy, deletion."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlmodel import func, select

from core.admin import create_client
from core.db import system_session, tenant_session
from core.errors import NotFound, PayloadTooLarge
from core.files import CHUNK_BYTES, FileChunk, StoredFile, delete_file, iter_file, save_file


@pytest.fixture
def clients(database_url: str, configure) -> tuple[uuid.UUID, uuid.UUID]:  # type: ignore[no-untyped-def]
    configure(database_url=database_url)
    with system_session() as s:
        return create_client(session=s, name="A").id, create_client(session=s, name="B").id


def test_round_trip_across_chunk_boundaries(clients: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, _ = clients
    payload = os.urandom(CHUNK_BYTES * 2 + 12345)
    pieces = [payload[i : i + 70_000] for i in range(0, len(payload), 70_000)]
    with tenant_session([a]) as s:
        stored = save_file(s, client_id=a, filename="list.csv", chunks=pieces)
    with tenant_session([a]) as s:
        assert b"".join(iter_file(s, stored.id)) == payload
        assert s.exec(select(func.count()).select_from(FileChunk)).one() == 3
        assert s.get(StoredFile, stored.id).size_bytes == len(payload)  # type: ignore[union-attr]


def test_over_the_limit_stores_nothing(clients: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, _ = clients
    with pytest.raises(PayloadTooLarge, match="1,000-byte"), tenant_session([a]) as s:
        save_file(s, client_id=a, filename="big.csv", chunks=[b"x" * 600] * 2, max_bytes=1000)
    with system_session() as s:
        assert s.exec(select(func.count()).select_from(StoredFile)).one() == 0


def test_other_clients_file_is_not_found_and_delete_removes_chunks(
    clients: tuple[uuid.UUID, uuid.UUID],
) -> None:
    a, b = clients
    with tenant_session([a]) as s:
        stored = save_file(s, client_id=a, filename="a.csv", chunks=[b"hello"])
    with pytest.raises(NotFound), tenant_session([b]) as s:
        list(iter_file(s, stored.id))
    with tenant_session([a]) as s:
        delete_file(s, stored.id)
    with system_session() as s:
        assert s.exec(select(func.count()).select_from(FileChunk)).one() == 0
