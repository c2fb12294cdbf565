"""Previews of drafts and test interviews on PostgreSQL: they run like real interviews, never
take a quota place, and stay out of results and exports unless these ask for them."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from sqlmodel import Session, select
from survey_builders import LEAD, completing_answers, sample_document, with_quota_target

from core.admin import create_client
from core.audit import Actor
from core.db import scope_session
from surveys import service
from surveys.db_errors import InterviewStateConflict, QuestionnaireRejected
from surveys.engine import InterviewMode, InterviewStatus
from surveys.models import AnswerIn, InterviewResponse, InterviewStart, QuotaCellCount
from surveys.versioning import VersionStatus

pytestmark = pytest.mark.postgres


@pytest.fixture
def client_id(session: Session) -> uuid.UUID:
    client = create_client(session=session, name="preview co", slug=f"p-{uuid.uuid4().hex[:8]}")
    session.flush()
    scope_session(session, [client.id])
    return client.id


def _draft(session: Session, client_id: uuid.UUID, document: dict[str, Any]) -> uuid.UUID:
    version = service.create_questionnaire(
        session=session, client_id=client_id, document=service.parse_document(document)
    )
    return version.id


def _complete(session: Session, interview_id: uuid.UUID, age: int = 40) -> InterviewStatus:
    for question, value, extra in completing_answers(age):
        service.answer_interview(
            session=session,
            interview_id=interview_id,
            answer=AnswerIn(question=question, value=value, **extra),
        )
    return service.complete_interview(session=session, interview_id=interview_id).status


def _csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def test_a_draft_is_previewed_in_any_language_without_being_published(
    session: Session, client_id: uuid.UUID
) -> None:
    version_id = _draft(session, client_id, with_quota_target(sample_document(), 1))
    preview = service.preview_interview(
        session=session,
        version_id=version_id,
        start=InterviewStart(attributes=LEAD, language="en"),
    )
    shown = service.interview_public(session=session, interview=preview)
    assert shown.is_test
    assert shown.language == "en"
    assert shown.question is not None
    assert shown.question.label.startswith("Hello")
    switched = service.set_interview_language(
        session=session, interview_id=preview.id, language="zh-Hant"
    )
    in_chinese = service.interview_public(session=session, interview=switched).question
    assert in_chinese is not None
    assert in_chinese.name == "greeting"
    assert in_chinese.language == "zh-Hant"
    assert not in_chinese.label.startswith("Hello")

    assert _complete(session, preview.id) == InterviewStatus.COMPLETED
    assert service.get_version(session=session, version_id=version_id).status == (
        VersionStatus.DRAFT
    )
    # Quota target 1, yet the preview claimed nothing: no cell was even created.
    cells = session.exec(select(QuotaCellCount).where(QuotaCellCount.version_id == version_id))
    assert list(cells) == []
    stored = session.exec(
        select(InterviewResponse).where(InterviewResponse.interview_id == preview.id)
    ).one()
    assert stored.is_test
    assert stored.record["is_test"] is True


def test_a_draft_that_cannot_run_is_refused_with_its_problems(
    session: Session, client_id: uuid.UUID
) -> None:
    document = sample_document()
    document["questions"][3]["relevant"] = "${nosuch} = 1"
    version_id = _draft(session, client_id, document)
    with pytest.raises(QuestionnaireRejected) as caught:
        service.preview_interview(
            session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
        )
    assert any("nosuch" in p["message"] for p in caught.value.problems)


def test_a_preview_stops_when_its_draft_is_edited(session: Session, client_id: uuid.UUID) -> None:
    document = sample_document()
    version_id = _draft(session, client_id, document)
    preview = service.preview_interview(
        session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
    )
    document["title"] = {"zh-Hant": "改過", "en": "Edited"}
    service.update_draft(
        session=session, version_id=version_id, document=service.parse_document(document)
    )
    with pytest.raises(InterviewStateConflict, match="start a new preview"):
        service.answer_interview(
            session=session, interview_id=preview.id, answer=AnswerIn(question="greeting")
        )
    again = service.preview_interview(
        session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
    )
    assert _complete(session, again.id) == InterviewStatus.COMPLETED


def test_test_interviews_take_no_quota_place_and_stay_out_of_results_and_exports(
    session: Session, client_id: uuid.UUID
) -> None:
    draft = _draft(session, client_id, with_quota_target(sample_document(), 1))
    version_id = service.publish_version(session=session, version_id=draft).id
    tests = [
        service.start_interview(
            session=session, version_id=version_id, start=InterviewStart(attributes=LEAD, test=True)
        ),
        # The older spelling, mode 'test', is a test interview too (recorded as CATI).
        service.preview_interview(
            session=session,
            version_id=version_id,
            start=InterviewStart(attributes=LEAD, mode=InterviewMode.TEST),
        ),
    ]
    for interview in tests:
        assert interview.is_test
        assert interview.mode == InterviewMode.CATI
        assert _complete(session, interview.id, age=40) == InterviewStatus.COMPLETED
    assert service.quota_progress(session=session, version_id=version_id) == []
    # The one place in the cell is still free for a real respondent, and then it is full.
    real = service.start_interview(
        session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
    )
    assert _complete(session, real.id, age=41) == InterviewStatus.COMPLETED
    assert [c.count for c in service.quota_progress(session=session, version_id=version_id)] == [1]

    ages = service.version_frequencies(session=session, version_id=version_id, question="age")[0]
    assert {row.value: row.count for row in ages.rows} == {"41": 1}
    with_tests = service.version_frequencies(
        session=session, version_id=version_id, question="age", include_test=True
    )[0]
    assert {row.value: row.count for row in with_tests.rows} == {"40": 2, "41": 1}
    crossed = service.version_crosstab(
        session=session, version_id=version_id, row="age_band", column="region"
    )
    assert crossed.total == 1
    funnel = service.version_funnel(session=session, version_id=version_id)
    assert funnel[0].reached == 1
    assert service.count_interviews(session=session, version_id=version_id) == {"completed": 1}

    actor = Actor(name="tester")
    plain = service.export_responses(
        session=session, version_id=version_id, export_format=service.ExportFormat.CSV, actor=actor
    )
    rows = _csv_rows(plain.content)
    assert plain.records == 1
    assert [row["interview_id"] for row in rows] == [str(real.id)]
    assert "is_test" not in rows[0]
    everything = service.export_responses(
        session=session,
        version_id=version_id,
        export_format=service.ExportFormat.CSV,
        actor=actor,
        include_test=True,
    )
    flagged = {row["interview_id"]: row["is_test"] for row in _csv_rows(everything.content)}
    assert flagged == {str(real.id): "0", str(tests[0].id): "1", str(tests[1].id): "1"}
    assert {row["mode"] for row in _csv_rows(everything.content)} == {"cati"}


def test_csv_exports_carry_a_bom_unless_asked_not_to(
    session: Session, client_id: uuid.UUID
) -> None:
    version_id = service.publish_version(
        session=session, version_id=_draft(session, client_id, sample_document())
    ).id
    real = service.start_interview(
        session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
    )
    _complete(session, real.id)
    actor = Actor(name="tester")
    for export_format in (service.ExportFormat.CSV, service.ExportFormat.DICTIONARY):
        with_bom = service.export_responses(
            session=session, version_id=version_id, export_format=export_format, actor=actor
        )
        without = service.export_responses(
            session=session,
            version_id=version_id,
            export_format=export_format,
            actor=actor,
            bom=False,
        )
        assert with_bom.content.startswith(b"\xef\xbb\xbf")
        assert not without.content.startswith(b"\xef\xbb\xbf")
        assert with_bom.content[3:] == without.content
