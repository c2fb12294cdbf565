"""The one tenancy mechanism: every ORM query on client data is scoped, writes are checked."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func
from sqlmodel import delete, select, update

from core.admin import create_client
from core.db import system_session, tenant_session
from core.errors import NotFound
from core.models import AuditEvent, JobRecord


def _two_clients() -> tuple[uuid.UUID, uuid.UUID]:
    with system_session() as s:
        a = create_client(session=s, name="Alpha").id
        b = create_client(session=s, name="Bravo").id
        for client_id in (a, b):
            for i in range(3):
                s.add(JobRecord(client_id=client_id, kind=f"k{i}", handler="core.jobs:x"))
    return a, b


@pytest.fixture
def db(database_url: str, configure) -> str:  # type: ignore[no-untyped-def]
    configure(database_url=database_url)
    return database_url


def test_select_get_and_count_see_only_the_scoped_client(db: str) -> None:
    a, b = _two_clients()
    with system_session() as s:
        b_job = s.exec(select(JobRecord).where(JobRecord.client_id == b)).first()
    assert b_job is not None
    with tenant_session([a]) as s:
        jobs = s.exec(select(JobRecord)).all()
        assert {j.client_id for j in jobs} == {a}
        assert len(jobs) == 3
        assert s.exec(select(func.count()).select_from(JobRecord)).one() == 3
        assert s.get(JobRecord, b_job.id) is None


def test_bulk_update_and_delete_touch_only_the_scoped_client(db: str) -> None:
    a, b = _two_clients()
    with tenant_session([a]) as s:
        s.exec(update(JobRecord).values(kind="changed"))  # type: ignore[call-overload]
    with tenant_session([a]) as s:
        s.exec(delete(JobRecord))  # type: ignore[call-overload]
    with system_session() as s:
        remaining = s.exec(select(JobRecord)).all()
    assert {j.client_id for j in remaining} == {b}
    assert all(j.kind != "changed" for j in remaining)


def test_writing_another_clients_row_is_refused(db: str) -> None:
    a, b = _two_clients()
    with pytest.raises(NotFound), tenant_session([a]) as s:
        s.add(AuditEvent(client_id=b, actor_name="x", action="read", object_type="t"))
    with system_session() as s:
        assert s.exec(select(AuditEvent)).all() == []


def test_moving_a_row_to_another_client_is_refused(db: str) -> None:
    a, b = _two_clients()
    with tenant_session([a]) as s:
        job = s.exec(select(JobRecord)).first()
        assert job is not None
        job.client_id = b
        s.add(job)
        with pytest.raises(NotFound):
            s.flush()
        s.rollback()
    with system_session() as s:
        assert len(s.exec(select(JobRecord).where(JobRecord.client_id == b)).all()) == 3


def test_multi_client_scope_sees_both(db: str) -> None:
    a, b = _two_clients()
    with tenant_session([a, b]) as s:
        assert {j.client_id for j in s.exec(select(JobRecord))} == {a, b}
