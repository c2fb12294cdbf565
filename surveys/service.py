"""Survey operations on the database: questionnaires and versions, interviews, results, exports.

Functions are keyword-only and take the caller's session first; they ``flush()`` but never
commit (the API request, the job or the CLI command owns the transaction). Every session is
expected to be tenant-scoped, so another client's objects are simply not found.

Versions: a questionnaire's content lives in numbered versions. Drafts can be edited in place;
publishing validates (errors → 422 with every problem) and freezes the version; editing a
published version is a 409 that says to create the next draft. Interviews run only on
published versions; one :class:`~surveys.engine.InterviewEngine` per version is cached.

Interviews: the engine state is stored after every operation (``state.model_dump``), so an
interview survives a reloaded screen or a restarted server. Operations lock the interview row
(``SELECT ... FOR UPDATE`` on PostgreSQL), so a double-clicked answer cannot be applied twice.
A response record is written when an interview ends or is suspended; results and exports read
those. Quotas are counted by :class:`~surveys.db_quotas.DatabaseQuotaCounter` in the same
transaction as the completed interview.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from core.audit import Actor, record_audit
from core.db import get_or_404, utcnow
from core.errors import Conflict, InvalidInput
from surveys.aapor import (
    DISPOSITION_FAMILY,
    AaporDisposition,
    OutcomeCounts,
    OutcomeRates,
    compute_rates,
)
from surveys.db_errors import (
    InterviewStateConflict,
    PublishedVersionConflict,
    SurveyInputError,
    VersionNotRunnable,
    translated,
)
from surveys.db_quotas import DatabaseQuotaCounter
from surveys.engine import InterviewEngine, InterviewMode, InterviewState, InterviewStatus
from surveys.exports import data_dictionary_csv, export_csv, export_sav, export_xlsx
from surveys.models import (
    AnswerIn,
    Interview,
    InterviewPublic,
    InterviewResponse,
    InterviewStart,
    QuestionnaireDetail,
    QuestionnaireVersion,
    QuestionnaireVersionPublic,
    QuestionnaireVersionSummary,
    QuotaCellCount,
    QuotaCellPublic,
    SurveyQuestionnaire,
)
from surveys.quotas import QuotaCell, QuotaCounter
from surveys.results import (
    CrossTab,
    FrequencyTable,
    FunnelStep,
    ResponseRecord,
    completion_funnel,
    cross_tab,
    frequencies,
    record_from_state,
)
from surveys.schema import (
    Questionnaire,
    QuestionType,
    content_hash,
    dump_questionnaire,
    load_questionnaire,
    parse_questionnaire,
    resolve_text,
)
from surveys.validation import Problem, validate_questionnaire
from surveys.versioning import VersionStatus, ensure_editable, publish_check
from surveys.xlsform import import_xlsform

__all__ = [
    "ENDED_STATUSES",
    "ExportFile",
    "ExportFormat",
    "ParsedDocument",
    "aapor_rates",
    "add_version",
    "answer_interview",
    "break_off_interview",
    "complete_interview",
    "count_interviews",
    "create_questionnaire",
    "delete_questionnaire",
    "engine_for",
    "export_responses",
    "get_interview",
    "get_questionnaire",
    "get_version",
    "go_back",
    "interview_public",
    "list_interviews",
    "list_questionnaires",
    "list_versions",
    "load_records",
    "parse_document",
    "parse_upload",
    "preview_interview",
    "publish_version",
    "questionnaire_detail",
    "quota_progress",
    "resume_interview",
    "retire_version",
    "set_interview_language",
    "start_interview",
    "suspend_interview",
    "update_draft",
    "version_crosstab",
    "version_frequencies",
    "version_funnel",
    "version_public",
]

ENDED_STATUSES = frozenset(
    {
        InterviewStatus.COMPLETED,
        InterviewStatus.NOT_ELIGIBLE,
        InterviewStatus.QUOTA_FULL,
        InterviewStatus.BROKEN_OFF,
    }
)
_RECORDED_STATUSES = ENDED_STATUSES | {InterviewStatus.SUSPENDED}
_ENGINE_CACHE_SIZE = 128


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class ParsedDocument:
    """A questionnaire read from a request, how it came, and problems found while importing."""

    questionnaire: Questionnaire
    source_format: str
    import_problems: tuple[Problem, ...] = ()


def parse_document(content: dict[str, Any]) -> ParsedDocument:
    """A questionnaire from a JSON document; SchemaError → 422 naming the field."""
    with translated():
        return ParsedDocument(parse_questionnaire(content), "json")


def parse_upload(*, filename: str, data: bytes) -> ParsedDocument:
    """A questionnaire from an uploaded ``.yaml``/``.yml``/``.json`` or XLSForm ``.xlsx`` file."""
    suffix = Path(filename).suffix.lower()
    with translated():
        if suffix in (".xlsx", ".xls", ".xlsm"):
            imported = import_xlsform(data)
            return ParsedDocument(imported.questionnaire, "xlsform", tuple(imported.all_problems()))
        if suffix in (".yaml", ".yml", ".json"):
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise SurveyInputError(
                    f"{filename} is not UTF-8 text; save it as UTF-8 and upload it again",
                    extra={"field": "file"},
                ) from None
            return ParsedDocument(load_questionnaire(text), "json" if suffix == ".json" else "yaml")
    raise SurveyInputError(
        f"{filename!r} is not a questionnaire file: upload .yaml, .yml, .json or XLSForm .xlsx",
        extra={"field": "file"},
    )


def _problems_of(document: ParsedDocument) -> list[dict[str, Any]]:
    found = list(document.import_problems)
    if document.source_format != "xlsform":  # an import's problems include validation's, located
        found += validate_questionnaire(document.questionnaire)
    return [p.model_dump(mode="json", exclude_none=True) for p in found]


def _title(questionnaire: Questionnaire) -> str:
    text = resolve_text(
        questionnaire.title, questionnaire.primary_language, questionnaire.primary_language
    )
    return text[:500]


# --------------------------------------------------------------------------- questionnaires


def create_questionnaire(
    *, session: Session, client_id: uuid.UUID, document: ParsedDocument
) -> QuestionnaireVersion:
    """Create a questionnaire and its version 1 as a draft; the key must be new."""
    questionnaire = document.questionnaire
    existing = session.exec(
        select(SurveyQuestionnaire).where(SurveyQuestionnaire.key == questionnaire.id)
    ).first()
    if existing is not None:
        raise Conflict(
            f"questionnaire {questionnaire.id!r} exists already (id {existing.id}); add a new "
            "version to it instead, or change the document's 'id'",
            extra={"field": "id", "questionnaire_id": str(existing.id)},
        )
    now = utcnow()
    row = SurveyQuestionnaire(
        client_id=client_id,
        key=questionnaire.id,
        title=_title(questionnaire),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _new_version(session, row, document, now)


def _new_version(
    session: Session, row: SurveyQuestionnaire, document: ParsedDocument, now: datetime
) -> QuestionnaireVersion:
    row.latest_version += 1
    row.title = _title(document.questionnaire)
    row.updated_at = now
    version = QuestionnaireVersion(
        client_id=row.client_id,
        questionnaire_id=row.id,
        version=row.latest_version,
        content=dump_questionnaire(document.questionnaire),
        content_hash=content_hash(document.questionnaire),
        source_format=document.source_format,
        problems=_problems_of(document),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.add(version)
    session.flush()
    return version


def list_questionnaires(*, session: Session, limit: int = 100) -> list[SurveyQuestionnaire]:
    """The client's questionnaires, most recently changed first."""
    stmt = (
        select(SurveyQuestionnaire)
        .order_by(col(SurveyQuestionnaire.updated_at).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def get_questionnaire(*, session: Session, questionnaire_id: uuid.UUID) -> SurveyQuestionnaire:
    """One questionnaire, or NotFound (also for another client's)."""
    found: SurveyQuestionnaire = get_or_404(
        session, SurveyQuestionnaire, questionnaire_id, what="questionnaire"
    )
    return found


def list_versions(*, session: Session, questionnaire_id: uuid.UUID) -> list[QuestionnaireVersion]:
    """Every version of a questionnaire, newest first."""
    get_questionnaire(session=session, questionnaire_id=questionnaire_id)
    stmt = (
        select(QuestionnaireVersion)
        .where(QuestionnaireVersion.questionnaire_id == questionnaire_id)
        .order_by(col(QuestionnaireVersion.version).desc())
    )
    return list(session.exec(stmt))


def questionnaire_detail(*, session: Session, questionnaire_id: uuid.UUID) -> QuestionnaireDetail:
    """A questionnaire with the summaries of all its versions."""
    row = get_questionnaire(session=session, questionnaire_id=questionnaire_id)
    versions = list_versions(session=session, questionnaire_id=questionnaire_id)
    return QuestionnaireDetail(
        id=row.id,
        key=row.key,
        title=row.title,
        latest_version=row.latest_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        versions=[
            QuestionnaireVersionSummary.model_validate(v, from_attributes=True) for v in versions
        ],
    )


def delete_questionnaire(*, session: Session, questionnaire_id: uuid.UUID) -> None:
    """Delete a questionnaire that was never published (its drafts go with it)."""
    row = get_questionnaire(session=session, questionnaire_id=questionnaire_id)
    published = session.exec(
        select(QuestionnaireVersion.version).where(
            QuestionnaireVersion.questionnaire_id == questionnaire_id,
            QuestionnaireVersion.status != VersionStatus.DRAFT,
        )
    ).first()
    if published is not None:
        raise Conflict(
            f"questionnaire {row.key!r} has published version {published}, which campaigns and "
            "interviews may use; retire its versions instead of deleting it"
        )
    for version in session.exec(
        select(QuestionnaireVersion).where(QuestionnaireVersion.questionnaire_id == row.id)
    ):
        session.delete(version)
    session.delete(row)
    session.flush()


# --------------------------------------------------------------------------- versions


def get_version(*, session: Session, version_id: uuid.UUID) -> QuestionnaireVersion:
    """One questionnaire version, or NotFound (also for another client's)."""
    found: QuestionnaireVersion = get_or_404(
        session, QuestionnaireVersion, version_id, what="questionnaire version"
    )
    return found


def version_public(version: QuestionnaireVersion) -> QuestionnaireVersionPublic:
    """A version with its document and problems, as the API shows it."""
    return QuestionnaireVersionPublic.model_validate(
        {
            **QuestionnaireVersionSummary.model_validate(
                version, from_attributes=True
            ).model_dump(),
            "content": version.content,
            "problems": version.problems,
        }
    )


def add_version(
    *, session: Session, questionnaire_id: uuid.UUID, document: ParsedDocument
) -> QuestionnaireVersion:
    """Save an edited document as the questionnaire's next version, a draft."""
    row = get_questionnaire(session=session, questionnaire_id=questionnaire_id)
    _check_key(row, document.questionnaire)
    return _new_version(session, row, document, utcnow())


def _check_key(row: SurveyQuestionnaire, questionnaire: Questionnaire) -> None:
    if questionnaire.id != row.key:
        raise InvalidInput(
            f"the document's id is {questionnaire.id!r} but this questionnaire is {row.key!r}; "
            f"keep 'id: {row.key}' (or create a new questionnaire for a different survey)",
            extra={"field": "id"},
        )


def update_draft(
    *, session: Session, version_id: uuid.UUID, document: ParsedDocument
) -> QuestionnaireVersion:
    """Replace a draft's document; a published version → 409 (create the next draft)."""
    version = get_version(session=session, version_id=version_id)
    row = get_questionnaire(session=session, questionnaire_id=version.questionnaire_id)
    with translated():
        ensure_editable(version.status, questionnaire_id=row.key, version=version.version)
    _check_key(row, document.questionnaire)
    now = utcnow()
    version.content = dump_questionnaire(document.questionnaire)
    version.content_hash = content_hash(document.questionnaire)
    version.source_format = document.source_format
    version.problems = _problems_of(document)
    version.updated_at = now
    row.title = _title(document.questionnaire)
    row.updated_at = now
    session.add(version)
    session.add(row)
    session.flush()
    return version


def _document_of(version: QuestionnaireVersion) -> Questionnaire:
    with translated():
        return parse_questionnaire(version.content)


def publish_version(
    *, session: Session, version_id: uuid.UUID, now: datetime | None = None
) -> QuestionnaireVersion:
    """Validate and freeze a draft; errors → 422 listing every problem."""
    version = get_version(session=session, version_id=version_id)
    row = get_questionnaire(session=session, questionnaire_id=version.questionnaire_id)
    with translated():
        ensure_editable(version.status, questionnaire_id=row.key, version=version.version)
        stored_hash, warnings = publish_check(_document_of(version))
    version.status = VersionStatus.PUBLISHED
    version.content_hash = stored_hash
    version.problems = [w.model_dump(mode="json", exclude_none=True) for w in warnings]
    version.published_at = version.updated_at = now or utcnow()
    session.add(version)
    session.flush()
    return version


def retire_version(
    *, session: Session, version_id: uuid.UUID, now: datetime | None = None
) -> QuestionnaireVersion:
    """Stop a published version taking new interviews (running ones may finish)."""
    version = get_version(session=session, version_id=version_id)
    if version.status != VersionStatus.PUBLISHED:
        raise PublishedVersionConflict(
            f"version {version.version} is {version.status.value}; only a published version "
            "can be retired (a draft can simply be left unpublished)"
        )
    version.status = VersionStatus.RETIRED
    version.retired_at = version.updated_at = now or utcnow()
    session.add(version)
    session.flush()
    return version


_engines: OrderedDict[tuple[uuid.UUID, str], InterviewEngine] = OrderedDict()
_engines_lock = threading.Lock()


def engine_for(version: QuestionnaireVersion, *, preview: bool = False) -> InterviewEngine:
    """The cached interview engine of a published (or retired) version, or with ``preview``
    of a draft too (validated first: a draft with errors cannot be previewed)."""
    draft = version.status == VersionStatus.DRAFT
    if draft and not preview:
        raise VersionNotRunnable(
            f"version {version.version} is a draft; publish it before running interviews, "
            "or preview it (POST .../preview) to try it out"
        )
    key = (version.id, version.content_hash)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
    # Published versions were validated when published; building the engine is cheap. A
    # draft's hash changes with every edit, so a cached draft engine is never stale.
    with translated():
        engine = InterviewEngine(
            _document_of(version), version_hash=version.content_hash, validated=not draft
        )
    with _engines_lock:
        _engines[key] = engine
        while len(_engines) > _ENGINE_CACHE_SIZE:
            _engines.popitem(last=False)
    return engine


# --------------------------------------------------------------------------- interviews


def start_interview(
    *,
    session: Session,
    version_id: uuid.UUID,
    start: InterviewStart,
    now: datetime | None = None,
) -> Interview:
    """Start an interview on a published version (for a call, or without one for testing)."""
    version = get_version(session=session, version_id=version_id)
    if version.status == VersionStatus.RETIRED:
        raise VersionNotRunnable(
            f"version {version.version} is retired and takes no new interviews; start them on "
            "the questionnaire's current published version"
        )
    return _begin(session, version, start, engine_for(version), now)


def preview_interview(
    *,
    session: Session,
    version_id: uuid.UUID,
    start: InterviewStart,
    now: datetime | None = None,
) -> Interview:
    """Start a test interview on any version, a draft included, in any of its languages:
    it runs like a real one but never takes a quota place and stays out of results and
    exports (unless they ask for test interviews)."""
    version = get_version(session=session, version_id=version_id)
    start = start.model_copy(update={"test": True, "mode": _real_mode(start.mode), "call_id": None})
    return _begin(session, version, start, engine_for(version, preview=True), now)


def _real_mode(mode: InterviewMode) -> InterviewMode:
    # 'test' as a mode is the older spelling of test=true; the interview itself is CATI.
    return InterviewMode.CATI if mode == InterviewMode.TEST else mode


def _begin(
    session: Session,
    version: QuestionnaireVersion,
    start: InterviewStart,
    engine: InterviewEngine,
    now: datetime | None,
) -> Interview:
    is_test = start.test or start.mode == InterviewMode.TEST
    if start.call_id is not None:
        running = session.exec(
            select(Interview).where(
                Interview.call_id == start.call_id,
                col(Interview.status).in_([InterviewStatus.IN_PROGRESS, InterviewStatus.SUSPENDED]),
            )
        ).first()
        if running is not None:
            raise InterviewStateConflict(
                f"call {start.call_id!r} already has interview {running.id} "
                f"({running.status.value}); continue or resume that one",
                extra={"interview_id": str(running.id)},
            )
    now = now or utcnow()
    interview_id = uuid.uuid4()
    counter = DatabaseQuotaCounter(session, client_id=version.client_id, version_id=version.id)
    with translated():
        state = engine.start(
            interview_id=str(interview_id),
            respondent_key=start.respondent_key or start.call_id or str(interview_id),
            now=now,
            language=start.language,
            attributes=start.attributes,
            call_id=start.call_id,
            mode=_real_mode(start.mode),
            quota_counter=_counter(counter, is_test),
            interviewer=start.interviewer,
            is_test=is_test,
        )
    interview = Interview(
        id=interview_id,
        client_id=version.client_id,
        version_id=version.id,
        questionnaire_hash=state.questionnaire_hash,
        mode=state.mode,
        is_test=state.is_test,
        call_id=start.call_id,
        respondent_key=state.respondent_seed,
        language=state.language,
        state={},
        created_at=now,
    )
    _store(session, interview, engine, state)
    return interview


def get_interview(*, session: Session, interview_id: uuid.UUID, lock: bool = False) -> Interview:
    """One interview, or NotFound; ``lock`` holds its row until the transaction ends."""
    stmt = select(Interview).where(Interview.id == interview_id)
    if lock:
        stmt = stmt.with_for_update()
    found = session.exec(stmt).first()
    if found is None:
        get_or_404(session, Interview, interview_id, what="interview")
    assert found is not None
    return found


def list_interviews(
    *,
    session: Session,
    version_id: uuid.UUID | None = None,
    call_id: str | None = None,
    status: InterviewStatus | None = None,
    limit: int = 100,
) -> list[Interview]:
    """The client's interviews, newest first, optionally by version, call or status."""
    stmt = select(Interview).order_by(col(Interview.created_at).desc()).limit(limit)
    if version_id is not None:
        stmt = stmt.where(Interview.version_id == version_id)
    if call_id is not None:
        stmt = stmt.where(Interview.call_id == call_id)
    if status is not None:
        stmt = stmt.where(Interview.status == status)
    return list(session.exec(stmt))


class _TestQuotaCounter:
    """Test interviews see whether cells are full but never take a place in them."""

    def __init__(self, real: QuotaCounter) -> None:
        self.real = real

    def is_full(self, cell: QuotaCell) -> bool:
        return self.real.is_full(cell)

    def claim(self, cells: Sequence[QuotaCell]) -> QuotaCell | None:
        return next((cell for cell in cells if self.real.is_full(cell)), None)


def _counter(real: QuotaCounter, is_test: bool) -> QuotaCounter:
    return _TestQuotaCounter(real) if is_test else real


def _store(
    session: Session, interview: Interview, engine: InterviewEngine, state: InterviewState
) -> None:
    interview.state = state.model_dump(mode="json")
    interview.status = state.status
    interview.language = state.language
    interview.updated_at = state.updated_at
    interview.ended_at = state.ended_at
    session.add(interview)
    if state.status in _RECORDED_STATUSES:
        record = record_from_state(engine, state).model_dump(mode="json")
        response = session.exec(
            select(InterviewResponse).where(InterviewResponse.interview_id == interview.id)
        ).first()
        if response is None:
            response = InterviewResponse(
                client_id=interview.client_id,
                interview_id=interview.id,
                version_id=interview.version_id,
                status=state.status,
                is_test=interview.is_test,
                record=record,
                created_at=state.updated_at,
            )
        response.status = state.status
        response.record = record
        response.updated_at = state.updated_at
        session.add(response)
    session.flush()


def _engine_of(version: QuestionnaireVersion, interview: Interview) -> InterviewEngine:
    """The engine an interview runs on; a preview whose draft was edited since cannot go on."""
    if interview.questionnaire_hash != version.content_hash:
        raise InterviewStateConflict(
            f"draft version {version.version} was edited after preview {interview.id} started; "
            "start a new preview to try the edited questionnaire"
        )
    return engine_for(version, preview=interview.is_test)


Operation = Callable[[InterviewEngine, InterviewState, QuotaCounter, datetime], InterviewState]


def _operate(
    session: Session, interview_id: uuid.UUID, operation: Operation, now: datetime | None
) -> Interview:
    interview = get_interview(session=session, interview_id=interview_id, lock=True)
    version = get_version(session=session, version_id=interview.version_id)
    engine = _engine_of(version, interview)
    state = InterviewState.model_validate(interview.state)
    counter = DatabaseQuotaCounter(session, client_id=interview.client_id, version_id=version.id)
    with translated():
        new_state = operation(engine, state, _counter(counter, interview.is_test), now or utcnow())
    _store(session, interview, engine, new_state)
    return interview


def answer_interview(
    *,
    session: Session,
    interview_id: uuid.UUID,
    answer: AnswerIn,
    now: datetime | None = None,
) -> Interview:
    """Answer the current question (``question`` defaults to it) and move on."""

    def run(
        engine: InterviewEngine, state: InterviewState, counter: QuotaCounter, at: datetime
    ) -> InterviewState:
        question = answer.question or state.current
        if question is None:
            raise InterviewStateConflict(
                f"interview {state.interview_id} has no open question "
                f"({state.status.value}); nothing to answer"
            )
        return engine.answer(
            state,
            question,
            answer.value,
            special=answer.special,
            other_text=answer.other_text,
            now=at,
            quota_counter=counter,
        )

    return _operate(session, interview_id, run, now)


def go_back(*, session: Session, interview_id: uuid.UUID, now: datetime | None = None) -> Interview:
    """Return to the previous question shown (its answer is kept as the default)."""
    return _operate(session, interview_id, lambda e, s, _c, at: e.back(s, now=at), now)


def suspend_interview(
    *, session: Session, interview_id: uuid.UUID, now: datetime | None = None
) -> Interview:
    """Suspend (a partial) to resume later, e.g. on a callback."""
    return _operate(session, interview_id, lambda e, s, _c, at: e.suspend(s, now=at), now)


def resume_interview(
    *, session: Session, interview_id: uuid.UUID, now: datetime | None = None
) -> Interview:
    """Resume a suspended interview at the question where it stopped."""
    return _operate(session, interview_id, lambda e, s, _c, at: e.resume(s, now=at), now)


def set_interview_language(
    *, session: Session, interview_id: uuid.UUID, language: str, now: datetime | None = None
) -> Interview:
    """Switch the interview's language (the option order stays the same)."""
    return _operate(
        session, interview_id, lambda e, s, _c, at: e.set_language(s, language, now=at), now
    )


def complete_interview(
    *, session: Session, interview_id: uuid.UUID, now: datetime | None = None
) -> Interview:
    """Complete after the last question, claiming quota cells atomically (or quota_full)."""
    return _operate(
        session,
        interview_id,
        lambda e, s, c, at: e.complete(s, quota_counter=c, now=at),
        now,
    )


def break_off_interview(
    *, session: Session, interview_id: uuid.UUID, now: datetime | None = None
) -> Interview:
    """The respondent ends the interview for good."""
    return _operate(session, interview_id, lambda e, s, _c, at: e.break_off(s, now=at), now)


def interview_public(*, session: Session, interview: Interview) -> InterviewPublic:
    """What the agent screen shows: the question in the interview's language, and progress."""
    version = get_version(session=session, version_id=interview.version_id)
    engine = _engine_of(version, interview)
    state = InterviewState.model_validate(interview.state)
    with translated():
        question = engine.current_question(state)
        closing = engine.closing_message(state) if state.status in ENDED_STATUSES else ""
        intro = engine.intro_text(state)
        progress = engine.progress(state)
    return InterviewPublic(
        id=interview.id,
        version_id=interview.version_id,
        status=state.status,
        mode=state.mode,
        is_test=interview.is_test,
        call_id=state.call_id,
        respondent_key=state.respondent_seed,
        language=state.language,
        created_at=interview.created_at,
        updated_at=state.updated_at,
        ended_at=state.ended_at,
        questionnaire_key=engine.questionnaire.id,
        version=version.version,
        intro=intro,
        question=question,
        awaiting_completion=state.awaiting_completion,
        closing_message=closing,
        progress=progress,
        answers=state.answers,
        attributes=state.attributes,
        quota_cells=state.quota_cells,
        stopped_at=state.stopped_at,
    )


# --------------------------------------------------------------------------- results


def load_records(
    *,
    session: Session,
    version_id: uuid.UUID,
    statuses: Iterable[InterviewStatus] | None = None,
    include_test: bool = False,
) -> list[ResponseRecord]:
    """The response records of a version's interviews (ended or suspended), oldest first;
    test interviews only when ``include_test``."""
    stmt = (
        select(InterviewResponse.record)
        .where(InterviewResponse.version_id == version_id)
        .order_by(col(InterviewResponse.created_at), col(InterviewResponse.id))
    )
    wanted = list(statuses or [])
    if wanted:
        stmt = stmt.where(col(InterviewResponse.status).in_(wanted))
    if not include_test:
        stmt = stmt.where(col(InterviewResponse.is_test).is_(False))
    return [ResponseRecord.model_validate(data) for data in session.exec(stmt)]


def _analysable(questionnaire: Questionnaire) -> list[str]:
    names = [a.name for a in questionnaire.attributes]
    names += [
        q.name
        for q in questionnaire.walk()
        if q.type not in (QuestionType.GROUP, QuestionType.NOTE)
    ]
    return names


def _check_variable(questionnaire: Questionnaire, name: str, field: str) -> None:
    known = _analysable(questionnaire)
    if name not in known:
        raise SurveyInputError(
            f"{field} {name!r} is not a question, calculation or attribute of questionnaire "
            f"{questionnaire.id!r}; choose one of: {', '.join(known)}",
            extra={"field": field},
        )


def _check_language(questionnaire: Questionnaire, language: str | None) -> None:
    if language is not None and language not in questionnaire.languages:
        raise SurveyInputError(
            f"language {language!r} is not offered; choose one of {questionnaire.languages}",
            extra={"field": "language"},
        )


def version_frequencies(
    *,
    session: Session,
    version_id: uuid.UUID,
    question: str | None = None,
    language: str | None = None,
    statuses: Sequence[InterviewStatus] = (InterviewStatus.COMPLETED,),
    include_test: bool = False,
) -> list[FrequencyTable]:
    """Frequencies of one question, or of every question, calculation and attribute."""
    version = get_version(session=session, version_id=version_id)
    questionnaire = _document_of(version)
    _check_language(questionnaire, language)
    names = _analysable(questionnaire)
    if question is not None:
        _check_variable(questionnaire, question, "question")
        names = [question]
    records = load_records(
        session=session, version_id=version_id, statuses=statuses, include_test=include_test
    )
    return [frequencies(questionnaire, records, name, language=language) for name in names]


def version_crosstab(
    *,
    session: Session,
    version_id: uuid.UUID,
    row: str,
    column: str,
    language: str | None = None,
    statuses: Sequence[InterviewStatus] = (InterviewStatus.COMPLETED,),
    include_test: bool = False,
) -> CrossTab:
    """Counts of ``row``'s values by ``column``'s among records that answered both."""
    version = get_version(session=session, version_id=version_id)
    questionnaire = _document_of(version)
    _check_language(questionnaire, language)
    _check_variable(questionnaire, row, "row")
    _check_variable(questionnaire, column, "column")
    records = load_records(
        session=session, version_id=version_id, statuses=statuses, include_test=include_test
    )
    return cross_tab(questionnaire, records, row, column, language=language)


def version_funnel(
    *, session: Session, version_id: uuid.UUID, include_test: bool = False
) -> list[FunnelStep]:
    """For each question in order: interviews that reached, answered and stopped there."""
    version = get_version(session=session, version_id=version_id)
    records = load_records(session=session, version_id=version_id, include_test=include_test)
    return completion_funnel(_document_of(version), records)


def quota_progress(*, session: Session, version_id: uuid.UUID) -> list[QuotaCellPublic]:
    """Counts and targets of every quota cell that has been reached at least once."""
    get_version(session=session, version_id=version_id)
    stmt = (
        select(QuotaCellCount)
        .where(QuotaCellCount.version_id == version_id)
        .order_by(col(QuotaCellCount.quota), col(QuotaCellCount.cell_key))
    )
    return [
        QuotaCellPublic(quota=c.quota, cell_key=c.cell_key, count=c.count, target=c.target)
        for c in session.exec(stmt)
    ]


def count_interviews(
    *, session: Session, version_id: uuid.UUID, include_test: bool = False
) -> dict[str, int]:
    """Interviews of a version per status (test interviews only with ``include_test``)."""
    stmt = (
        select(Interview.status, func.count())
        .where(Interview.version_id == version_id)
        .group_by(Interview.status)
    )
    if not include_test:
        stmt = stmt.where(col(Interview.is_test).is_(False))
    return {str(status): int(n) for status, n in session.exec(stmt)}


# --------------------------------------------------------------------------- exports


class ExportFormat(StrEnum):
    """What an export produces."""

    CSV = "csv"
    CSV_LABELS = "csv_labels"
    XLSX = "xlsx"
    SAV = "sav"
    DICTIONARY = "dictionary"


@dataclass(frozen=True)
class ExportFile:
    """An export's bytes and how to serve them."""

    filename: str
    media_type: str
    content: bytes
    records: int


def export_responses(
    *,
    session: Session,
    version_id: uuid.UUID,
    export_format: ExportFormat,
    actor: Actor,
    language: str | None = None,
    statuses: Sequence[InterviewStatus] | None = None,
    include_test: bool = False,
    bom: bool = True,
) -> ExportFile:
    """Export a version's responses (or its data dictionary); every export is audited.

    Test interviews are left out unless ``include_test`` (then an ``is_test`` column says
    which rows are tests). CSV starts with a UTF-8 byte-order mark unless ``bom`` is false:
    Excel (zh-CN and others) reads a CSV without one in the local code page and garbles
    Chinese, while some tools want plain UTF-8."""
    version = get_version(session=session, version_id=version_id)
    questionnaire = _document_of(version)
    _check_language(questionnaire, language)
    records = (
        []
        if export_format == ExportFormat.DICTIONARY
        else load_records(
            session=session, version_id=version_id, statuses=statuses, include_test=include_test
        )
    )
    options: dict[str, Any] = {
        "language": language,
        "version_number": version.version,
        "test_flag": include_test,
    }
    stem = f"{questionnaire.id}-v{version.version}"
    csv_type = "text/csv; charset=utf-8"
    text_encoding = "utf-8-sig" if bom else "utf-8"
    if export_format == ExportFormat.CSV:
        result = ExportFile(
            f"{stem}-codes.csv",
            csv_type,
            export_csv(questionnaire, records, **options).encode(text_encoding),
            len(records),
        )
    elif export_format == ExportFormat.CSV_LABELS:
        result = ExportFile(
            f"{stem}-labels.csv",
            csv_type,
            export_csv(questionnaire, records, labels=True, **options).encode(text_encoding),
            len(records),
        )
    elif export_format == ExportFormat.XLSX:
        result = ExportFile(
            f"{stem}.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            export_xlsx(questionnaire, records, **options),
            len(records),
        )
    elif export_format == ExportFormat.SAV:
        with tempfile.TemporaryDirectory(prefix="pilotdial-sav-") as directory:
            path = Path(directory) / "responses.sav"
            export_sav(questionnaire, records, path, **options)
            data = path.read_bytes()
        result = ExportFile(f"{stem}.sav", "application/x-spss-sav", data, len(records))
    else:
        result = ExportFile(
            f"{stem}-dictionary.csv",
            csv_type,
            data_dictionary_csv(questionnaire, language=language).encode(text_encoding),
            0,
        )
    record_audit(
        session,
        client_id=version.client_id,
        actor=actor,
        action=f"export_survey_{export_format.value}",
        object_type="questionnaire_version",
        object_id=version.id,
        detail={
            "records": result.records,
            "language": language or questionnaire.primary_language,
            "statuses": sorted(s.value for s in statuses or []),
            "include_test": include_test,
        },
    )
    session.flush()
    return result


# --------------------------------------------------------------------------- AAPOR


def aapor_rates(
    *,
    counts: OutcomeCounts,
    dispositions: Mapping[AaporDisposition, int] | None = None,
    e: float | None = None,
) -> OutcomeRates:
    """AAPOR RR1–6, COOP1–4, REF1–3, CON1–3 from counts per family plus per final code."""
    totals = counts.model_dump()
    for code, number in (dispositions or {}).items():
        if number < 0:
            raise SurveyInputError(
                f"the count for disposition {code.value} is negative ({number}); "
                "counts are numbers of cases",
                extra={"field": f"dispositions.{code.value}"},
            )
        totals[DISPOSITION_FAMILY[code].value] += number
    with translated():
        return compute_rates(OutcomeCounts(**totals), e=e)
