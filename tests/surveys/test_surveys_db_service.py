"""The survey service on PostgreSQL: versions, interviews stored and reloaded, quota counting."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlmodel import Session, select
from survey_builders import LEAD, completing_answers, sample_document, with_quota_target

from core.admin import create_client
from core.audit import Actor
from core.db import scope_session
from core.errors import NotFound
from core.models import AuditEvent
from surveys import service
from surveys.db_errors import (
    AnswerRejected,
    InterviewStateConflict,
    PublishedVersionConflict,
    QuestionnaireRejected,
    VersionNotRunnable,
)
from surveys.db_quotas import DatabaseQuotaCounter
from surveys.engine import InterviewState, InterviewStatus
from surveys.models import AnswerIn, InterviewResponse, InterviewStart, QuotaCellCount
from surveys.quotas import QuotaCell
from surveys.versioning import VersionStatus

pytestmark = pytest.mark.postgres


@pytest.fixture
def client_id(session: Session) -> uuid.UUID:
    client = create_client(session=session, name="survey co", slug=f"s-{uuid.uuid4().hex[:8]}")
    session.flush()
    scope_session(session, [client.id])
    return client.id


def _publish(session: Session, client_id: uuid.UUID, document: dict[str, Any]) -> uuid.UUID:
    version = service.create_questionnaire(
        session=session, client_id=client_id, document=service.parse_document(document)
    )
    return service.publish_version(session=session, version_id=version.id).id


def _run(session: Session, interview_id: uuid.UUID, age: int = 40) -> None:
    for question, value, extra in completing_answers(age):
        service.answer_interview(
            session=session,
            interview_id=interview_id,
            answer=AnswerIn(question=question, value=value, **extra),
        )


def test_published_versions_are_frozen_and_edits_make_new_drafts(
    session: Session, client_id: uuid.UUID
) -> None:
    document = sample_document()
    draft = service.create_questionnaire(
        session=session, client_id=client_id, document=service.parse_document(document)
    )
    assert (draft.version, draft.status) == (1, VersionStatus.DRAFT)
    document["title"] = {"zh-Hant": "新版", "en": "Second draft"}
    edited = service.update_draft(
        session=session, version_id=draft.id, document=service.parse_document(document)
    )
    assert edited.content["title"]["en"] == "Second draft"
    published = service.publish_version(session=session, version_id=draft.id)
    assert published.status == VersionStatus.PUBLISHED
    frozen_hash = published.content_hash

    document["title"] = {"zh-Hant": "第三版", "en": "Third"}
    with pytest.raises(PublishedVersionConflict, match="create version 2 as a draft"):
        service.update_draft(
            session=session, version_id=draft.id, document=service.parse_document(document)
        )
    with pytest.raises(PublishedVersionConflict):
        service.publish_version(session=session, version_id=draft.id)
    second = service.add_version(
        session=session,
        questionnaire_id=draft.questionnaire_id,
        document=service.parse_document(document),
    )
    assert (second.version, second.status) == (2, VersionStatus.DRAFT)
    session.refresh(published)
    assert published.content_hash == frozen_hash
    assert published.content["title"]["en"] == "Second draft"
    with pytest.raises(VersionNotRunnable, match="publish it"):
        service.start_interview(
            session=session, version_id=second.id, start=InterviewStart(attributes=LEAD)
        )


def test_publish_reports_every_problem_with_its_location(
    session: Session, client_id: uuid.UUID
) -> None:
    document = sample_document()
    document["questions"][3]["relevant"] = "${nosuch} = 1"  # satisfaction
    document["questions"][4]["label"] = {"zh-Hant": "${undefined_name}", "en": "x"}  # nps
    draft = service.create_questionnaire(
        session=session, client_id=client_id, document=service.parse_document(document)
    )
    assert {p["question"] for p in draft.problems if p["severity"] == "error"} >= {
        "satisfaction",
        "nps",
    }
    with pytest.raises(QuestionnaireRejected) as caught:
        service.publish_version(session=session, version_id=draft.id)
    problems = caught.value.extra["problems"]
    by_question = {p.get("question"): p for p in problems}
    assert by_question["satisfaction"]["field"] == "relevant"
    assert "nosuch" in by_question["satisfaction"]["message"]
    assert "nps" in by_question


def test_schema_errors_name_the_field(session: Session, client_id: uuid.UUID) -> None:
    document = sample_document()
    document["questions"][1]["questions"][0]["typo_key"] = 1
    with pytest.raises(QuestionnaireRejected) as caught:
        service.parse_document(document)
    field = caught.value.extra["problems"][0]["field"]
    assert "consent" in field
    assert "typo_key" in field


def test_interview_state_survives_reload_and_writes_response_records(
    session: Session, client_id: uuid.UUID
) -> None:
    version_id = _publish(session, client_id, sample_document())
    interview = service.start_interview(
        session=session,
        version_id=version_id,
        start=InterviewStart(call_id="c-1", attributes=LEAD, language="en"),
    )
    service.answer_interview(session=session, interview_id=interview.id, answer=AnswerIn())
    service.answer_interview(
        session=session, interview_id=interview.id, answer=AnswerIn(question="consent", value="1")
    )
    service.suspend_interview(session=session, interview_id=interview.id)
    session.expire_all()  # as a new server process would: nothing cached in the session
    stored = service.get_interview(session=session, interview_id=interview.id)
    state = InterviewState.model_validate(stored.state)
    assert stored.status == state.status == InterviewStatus.SUSPENDED
    assert state.answers["consent"].value == "1"
    response = session.exec(
        select(InterviewResponse).where(InterviewResponse.interview_id == interview.id)
    ).one()
    assert response.status == InterviewStatus.SUSPENDED
    assert response.record["stopped_at"] == "used_recently"

    with pytest.raises(InterviewStateConflict, match="resume it first"):
        service.answer_interview(
            session=session, interview_id=interview.id, answer=AnswerIn(value="1")
        )
    resumed = service.resume_interview(session=session, interview_id=interview.id)
    view = service.interview_public(session=session, interview=resumed)
    assert view.question is not None
    assert view.question.name == "used_recently"
    assert "智慧電表" in view.question.label
    with pytest.raises(InterviewStateConflict, match="already has interview"):
        service.start_interview(
            session=session,
            version_id=version_id,
            start=InterviewStart(call_id="c-1", attributes=LEAD),
        )


def test_invalid_answers_are_rejected_in_the_respondents_language(
    session: Session, client_id: uuid.UUID
) -> None:
    version_id = _publish(session, client_id, sample_document())
    interview = service.start_interview(
        session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
    )
    service.answer_interview(session=session, interview_id=interview.id, answer=AnswerIn())
    with pytest.raises(AnswerRejected) as in_chinese:
        service.answer_interview(
            session=session, interview_id=interview.id, answer=AnswerIn(value="7")
        )
    service.set_interview_language(session=session, interview_id=interview.id, language="en")
    with pytest.raises(AnswerRejected) as in_english:
        service.answer_interview(
            session=session, interview_id=interview.id, answer=AnswerIn(value="7")
        )
    assert (
        in_chinese.value.extra
        == in_english.value.extra
        == {
            "question": "consent",
            "reason": "not_a_choice",
        }
    )
    assert in_chinese.value.message != in_english.value.message
    assert in_english.value.message.isascii()
    assert not in_chinese.value.message.isascii()


def test_completion_claims_quota_cells_and_then_turns_people_away(
    session: Session, client_id: uuid.UUID
) -> None:
    version_id = _publish(session, client_id, with_quota_target(sample_document(), 2))
    outcomes = []
    for _ in range(2):
        interview = service.start_interview(
            session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
        )
        _run(session, interview.id)
        done = service.complete_interview(session=session, interview_id=interview.id)
        outcomes.append(done.status)
    assert outcomes == [InterviewStatus.COMPLETED] * 2
    cells = service.quota_progress(session=session, version_id=version_id)
    assert [(c.cell_key, c.count, c.target) for c in cells] == [
        ("region=north;age_band=35_54", 2, 2)
    ]
    # The cell is full now: a new respondent in it is stopped as soon as the age is known.
    early = service.start_interview(
        session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
    )
    for question, value, _ in completing_answers()[:4]:
        early = service.answer_interview(
            session=session, interview_id=early.id, answer=AnswerIn(question=question, value=value)
        )
    assert early.status == InterviewStatus.QUOTA_FULL
    # ...while another age band still gets through.
    other = service.start_interview(
        session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
    )
    _run(session, other.id, age=25)
    assert (
        service.complete_interview(session=session, interview_id=other.id).status
        == InterviewStatus.COMPLETED
    )


def test_claim_is_all_or_nothing(session: Session, client_id: uuid.UUID) -> None:
    version_id = _publish(session, client_id, sample_document())
    counter = DatabaseQuotaCounter(session, client_id=client_id, version_id=version_id)
    open_cell = QuotaCell(quota="a", key="x=1", values={"x": "1"}, target=5)
    tight = QuotaCell(quota="b", key="y=1", values={"y": "1"}, target=1)
    assert counter.claim([open_cell, tight]) is None
    assert counter.claim([open_cell, tight]) == tight
    assert (counter.count("a", "x=1"), counter.count("b", "y=1")) == (1, 1)
    assert counter.is_full(tight)
    assert not counter.is_full(open_cell)
    rows = session.exec(select(QuotaCellCount).where(QuotaCellCount.version_id == version_id))
    assert sorted((r.quota, r.count, r.target) for r in rows) == [("a", 1, 5), ("b", 1, 1)]


def test_results_and_audited_exports_read_the_stored_records(
    session: Session, client_id: uuid.UUID
) -> None:
    version_id = _publish(session, client_id, sample_document())
    for age in (25, 40, 70):
        interview = service.start_interview(
            session=session, version_id=version_id, start=InterviewStart(attributes=LEAD)
        )
        _run(session, interview.id, age=age)
        service.complete_interview(session=session, interview_id=interview.id)
    table = service.version_frequencies(session=session, version_id=version_id, question="age")[0]
    assert table.base == 3
    assert {row.value: row.count for row in table.rows} == {"25": 1, "40": 1, "70": 1}
    bands = service.version_crosstab(
        session=session, version_id=version_id, row="age_band", column="region"
    )
    assert bands.total == 3
    assert bands.column_totals == [3]
    exported = service.export_responses(
        session=session,
        version_id=version_id,
        export_format=service.ExportFormat.CSV,
        actor=Actor(name="tester"),
    )
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 4
    assert exported.records == 3
    audit = session.exec(select(AuditEvent).where(AuditEvent.object_id == str(version_id))).one()
    assert audit.action == "export_survey_csv"
    assert audit.detail["records"] == 3


def test_other_clients_see_nothing(session: Session, client_id: uuid.UUID) -> None:
    version_id = _publish(session, client_id, sample_document())
    other = create_client(session=session, name="other", slug=f"o-{uuid.uuid4().hex[:8]}")
    scope_session(session, [other.id])
    with pytest.raises(NotFound):
        service.get_version(session=session, version_id=version_id)
    assert service.list_questionnaires(session=session) == []
