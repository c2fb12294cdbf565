"""Quota cells on PostgreSQL under concurrency: many completions racing for the last places."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.engine import Engine
from survey_builders import LEAD, completing_answers, sample_document, with_quota_target

from core.admin import create_client
from core.db import system_session, tenant_session
from surveys import service
from surveys.db_quotas import DatabaseQuotaCounter
from surveys.engine import InterviewStatus
from surveys.models import AnswerIn, InterviewStart
from surveys.quotas import QuotaCell

pytestmark = pytest.mark.postgres

TARGET = 5
ALREADY_COUNTED = 3
RACERS = 12
CELL = "region=north;age_band=35_54"


def _ready_interviews(
    engine: Engine, client_id: uuid.UUID, count: int
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    with tenant_session([client_id], engine) as session:
        draft = service.create_questionnaire(
            session=session,
            client_id=client_id,
            document=service.parse_document(with_quota_target(sample_document(), TARGET)),
        )
        version_id = service.publish_version(session=session, version_id=draft.id).id
        counter = DatabaseQuotaCounter(session, client_id=client_id, version_id=version_id)
        cell = QuotaCell(quota="region_age", key=CELL, values={}, target=TARGET)
        for _ in range(ALREADY_COUNTED):
            assert counter.claim([cell]) is None
        ids = []
        for _ in range(count):
            interview = service.start_interview(
                session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
            )
            for question, value, _extra in completing_answers(40):
                service.answer_interview(
                    session=session,
                    interview_id=interview.id,
                    answer=AnswerIn(question=question, value=value),
                )
            ids.append(interview.id)
    return version_id, ids


def test_racing_completions_never_overfill_a_cell(pg_engine: Engine) -> None:
    with system_session(pg_engine) as session:
        client_id = create_client(
            session=session, name="race", slug=f"race-{uuid.uuid4().hex[:8]}"
        ).id
    version_id, interview_ids = _ready_interviews(pg_engine, client_id, RACERS)
    barrier = threading.Barrier(RACERS)

    def complete(interview_id: uuid.UUID) -> InterviewStatus:
        barrier.wait(timeout=30)
        with tenant_session([client_id], pg_engine) as session:
            done = service.complete_interview(session=session, interview_id=interview_id)
            return done.status

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        outcomes = list(pool.map(complete, interview_ids))

    completed = outcomes.count(InterviewStatus.COMPLETED)
    assert completed == TARGET - ALREADY_COUNTED
    assert outcomes.count(InterviewStatus.QUOTA_FULL) == RACERS - completed
    with tenant_session([client_id], pg_engine) as session:
        cells = service.quota_progress(session=session, version_id=version_id)
        assert [(c.cell_key, c.count) for c in cells] == [(CELL, TARGET)]
        stored = service.list_interviews(session=session, version_id=version_id)
        assert sorted(i.status for i in stored) == sorted(outcomes)
        records = service.load_records(session=session, version_id=version_id)
        assert len(records) == RACERS
        full = [r for r in records if r.status == InterviewStatus.QUOTA_FULL]
        assert len(full) == RACERS - completed


def test_a_cell_filled_after_the_screener_ends_the_interview_as_quota_full(
    pg_engine: Engine,
) -> None:
    with system_session(pg_engine) as session:
        client_id = create_client(
            session=session, name="late", slug=f"late-{uuid.uuid4().hex[:8]}"
        ).id
    version_id, (interview_id,) = _ready_interviews(pg_engine, client_id, 1)
    with tenant_session([client_id], pg_engine) as session:
        counter = DatabaseQuotaCounter(session, client_id=client_id, version_id=version_id)
        cell = QuotaCell(quota="region_age", key=CELL, values={}, target=TARGET)
        while counter.claim([cell]) is None:
            pass
    with tenant_session([client_id], pg_engine) as session:
        done = service.complete_interview(session=session, interview_id=interview_id)
        view = service.interview_public(session=session, interview=done)
    assert done.status == InterviewStatus.QUOTA_FULL
    assert view.closing_message == "謝謝您，您所在地區與年齡層的名額已滿。"
    with tenant_session([client_id], pg_engine) as session:
        assert service.quota_progress(session=session, version_id=version_id)[0].count == TARGET
