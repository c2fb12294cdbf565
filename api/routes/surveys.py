"""Surveys: questionnaires and versions, interviews, results, exports, AAPOR rates.

- ``/questionnaires``: create from a JSON document or an uploaded YAML/JSON/XLSForm file,
  list, get, delete (never-published only), versions (list, add a draft).
- ``/questionnaire-versions/{version_id}``: get, edit a draft (409 once published), publish
  (422 with every problem), retire, start interviews, preview (a test interview, drafts
  included), quotas, results and exports (test interviews only with ``include_test=true``).
- ``/interviews/{interview_id}``: the current question and operations (answer, back,
  suspend, resume, language, complete, break-off); every call returns the interview as the
  agent screen needs it (:class:`~surveys.models.InterviewPublic`).
- ``/surveys/aapor-rates``: AAPOR rates for posted disposition counts.

Researchers and clients design questionnaires; operators (agents) run interviews. Every path
object is loaded through the tenant-scoped session first, so another client's id is a 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, File, Query, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.downloads import content_disposition
from api.router import Router
from core.errors import PayloadTooLarge
from core.models import Role
from core.security import Principal, require_role
from surveys import service
from surveys.aapor import AaporDisposition, OutcomeCounts, OutcomeRates
from surveys.engine import InterviewStatus
from surveys.models import (
    AnswerIn,
    Interview,
    InterviewPublic,
    InterviewStart,
    InterviewSummary,
    LanguageIn,
    QuestionnaireCreate,
    QuestionnaireDetail,
    QuestionnaireVersion,
    QuestionnaireVersionPublic,
    QuestionnaireVersionSummary,
    QuotaCellPublic,
    SurveyQuestionnaire,
    SurveyQuestionnairePublic,
    VersionContent,
)
from surveys.results import CrossTab, FrequencyTable, FunnelStep

router = Router(tags=["surveys"])

DESIGNERS = (Role.researcher, Role.client)
INTERVIEWERS = (Role.operator, Role.researcher, Role.client)
MAX_QUESTIONNAIRE_BYTES = 5 * 1024 * 1024


def load_questionnaire(questionnaire_id: uuid.UUID, session: SessionDep) -> SurveyQuestionnaire:
    """The path's questionnaire, or 404 (also for another client's)."""
    return service.get_questionnaire(session=session, questionnaire_id=questionnaire_id)


def load_version(version_id: uuid.UUID, session: SessionDep) -> QuestionnaireVersion:
    """The path's questionnaire version, or 404."""
    return service.get_version(session=session, version_id=version_id)


def load_interview(interview_id: uuid.UUID, session: SessionDep) -> Interview:
    """The path's interview, or 404."""
    return service.get_interview(session=session, interview_id=interview_id)


QuestionnaireDep = Annotated[SurveyQuestionnaire, Depends(load_questionnaire)]
VersionDep = Annotated[QuestionnaireVersion, Depends(load_version)]
InterviewDep = Annotated[Interview, Depends(load_interview)]


def _read_upload(file: UploadFile) -> service.ParsedDocument:
    data = file.file.read(MAX_QUESTIONNAIRE_BYTES + 1)
    if len(data) > MAX_QUESTIONNAIRE_BYTES:
        raise PayloadTooLarge(
            f"a questionnaire file is limited to {MAX_QUESTIONNAIRE_BYTES:,} bytes; "
            "remove embedded media or split the workbook",
            extra={"limit_bytes": MAX_QUESTIONNAIRE_BYTES},
        )
    return service.parse_upload(filename=file.filename or "questionnaire.yaml", data=data)


def _summary(version: QuestionnaireVersion) -> QuestionnaireVersionSummary:
    return QuestionnaireVersionSummary.model_validate(version, from_attributes=True)


# --------------------------------------------------------------------------- questionnaires


@router.post(
    "/questionnaires",
    response_model=QuestionnaireVersionPublic,
    status_code=status.HTTP_201_CREATED,
)
def create_questionnaire(
    body: QuestionnaireCreate, session: SessionDep, principal: CurrentPrincipal
) -> QuestionnaireVersionPublic:
    """Create a questionnaire from a JSON document; returns its version 1 (a draft)."""
    require_role(principal, *DESIGNERS)
    document = service.parse_document(body.content)
    version = service.create_questionnaire(
        session=session, client_id=principal.acting_client(), document=document
    )
    return service.version_public(version)


@router.post(
    "/questionnaires/import",
    response_model=QuestionnaireVersionPublic,
    status_code=status.HTTP_201_CREATED,
)
def import_questionnaire(
    session: SessionDep,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="YAML, JSON or XLSForm (.xlsx)")],
) -> QuestionnaireVersionPublic:
    """Create a questionnaire from an uploaded YAML, JSON or XLSForm file (version 1, draft)."""
    require_role(principal, *DESIGNERS)
    document = _read_upload(file)
    version = service.create_questionnaire(
        session=session, client_id=principal.acting_client(), document=document
    )
    return service.version_public(version)


@router.get("/questionnaires", response_model=list[SurveyQuestionnairePublic])
def list_questionnaires(
    session: SessionDep, limit: int = Query(default=100, ge=1, le=1000)
) -> list[SurveyQuestionnaire]:
    """The client's questionnaires, most recently changed first."""
    return service.list_questionnaires(session=session, limit=limit)


@router.get("/questionnaires/{questionnaire_id}", response_model=QuestionnaireDetail)
def get_questionnaire(questionnaire: QuestionnaireDep, session: SessionDep) -> QuestionnaireDetail:
    """A questionnaire with all its versions (newest first)."""
    return service.questionnaire_detail(session=session, questionnaire_id=questionnaire.id)


@router.delete("/questionnaires/{questionnaire_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_questionnaire(
    questionnaire: QuestionnaireDep, session: SessionDep, principal: CurrentPrincipal
) -> None:
    """Delete a questionnaire that was never published (409 otherwise: retire instead)."""
    require_role(principal, *DESIGNERS)
    service.delete_questionnaire(session=session, questionnaire_id=questionnaire.id)


@router.get(
    "/questionnaires/{questionnaire_id}/versions",
    response_model=list[QuestionnaireVersionSummary],
)
def list_versions(
    questionnaire: QuestionnaireDep, session: SessionDep
) -> list[QuestionnaireVersionSummary]:
    """The questionnaire's versions, newest first (without their documents)."""
    versions = service.list_versions(session=session, questionnaire_id=questionnaire.id)
    return [_summary(v) for v in versions]


@router.post(
    "/questionnaires/{questionnaire_id}/versions",
    response_model=QuestionnaireVersionPublic,
    status_code=status.HTTP_201_CREATED,
)
def add_version(
    questionnaire: QuestionnaireDep,
    body: VersionContent,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> QuestionnaireVersionPublic:
    """Save an edited document as the next version, a draft (the document's id must match)."""
    require_role(principal, *DESIGNERS)
    document = service.parse_document(body.content)
    version = service.add_version(
        session=session, questionnaire_id=questionnaire.id, document=document
    )
    return service.version_public(version)


@router.post(
    "/questionnaires/{questionnaire_id}/versions/import",
    response_model=QuestionnaireVersionPublic,
    status_code=status.HTTP_201_CREATED,
)
def import_version(
    questionnaire: QuestionnaireDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="YAML, JSON or XLSForm (.xlsx)")],
) -> QuestionnaireVersionPublic:
    """Save an uploaded YAML, JSON or XLSForm file as the next version, a draft."""
    require_role(principal, *DESIGNERS)
    document = _read_upload(file)
    version = service.add_version(
        session=session, questionnaire_id=questionnaire.id, document=document
    )
    return service.version_public(version)


# --------------------------------------------------------------------------- versions


@router.get("/questionnaire-versions/{version_id}", response_model=QuestionnaireVersionPublic)
def get_version(version: VersionDep) -> QuestionnaireVersionPublic:
    """A version with its document and the problems validation found."""
    return service.version_public(version)


@router.put("/questionnaire-versions/{version_id}", response_model=QuestionnaireVersionPublic)
def update_draft(
    version: VersionDep, body: VersionContent, session: SessionDep, principal: CurrentPrincipal
) -> QuestionnaireVersionPublic:
    """Replace a draft's document; a published version is a 409 (add a new version)."""
    require_role(principal, *DESIGNERS)
    document = service.parse_document(body.content)
    updated = service.update_draft(session=session, version_id=version.id, document=document)
    return service.version_public(updated)


@router.post(
    "/questionnaire-versions/{version_id}/publish", response_model=QuestionnaireVersionPublic
)
def publish_version(
    version: VersionDep, session: SessionDep, principal: CurrentPrincipal
) -> QuestionnaireVersionPublic:
    """Validate and freeze a draft; 422 lists every problem (question, field, position)."""
    require_role(principal, *DESIGNERS)
    return service.version_public(service.publish_version(session=session, version_id=version.id))


@router.post(
    "/questionnaire-versions/{version_id}/retire", response_model=QuestionnaireVersionPublic
)
def retire_version(
    version: VersionDep, session: SessionDep, principal: CurrentPrincipal
) -> QuestionnaireVersionPublic:
    """Stop a published version taking new interviews (running ones may finish)."""
    require_role(principal, *DESIGNERS)
    return service.version_public(service.retire_version(session=session, version_id=version.id))


@router.get("/questionnaire-versions/{version_id}/quotas", response_model=list[QuotaCellPublic])
def get_quotas(version: VersionDep, session: SessionDep) -> list[QuotaCellPublic]:
    """Count and target of every quota cell reached so far."""
    return service.quota_progress(session=session, version_id=version.id)


# --------------------------------------------------------------------------- results


StatusQuery = Annotated[
    list[InterviewStatus] | None,
    Query(alias="status", description="Interview statuses to include (repeat the parameter)"),
]
IncludeTestQuery = Annotated[
    bool, Query(description="Include test interviews and previews (left out by default)")
]


@router.get(
    "/questionnaire-versions/{version_id}/results/frequencies",
    response_model=list[FrequencyTable],
)
def get_frequencies(
    version: VersionDep,
    session: SessionDep,
    question: Annotated[str | None, Query(description="One variable; default all")] = None,
    language: Annotated[str | None, Query(description="Label language")] = None,
    status_filter: StatusQuery = None,
    include_test: IncludeTestQuery = False,
) -> list[FrequencyTable]:
    """Counts and percentages per value, for one question or every question and attribute."""
    return service.version_frequencies(
        session=session,
        version_id=version.id,
        question=question,
        language=language,
        statuses=status_filter or (InterviewStatus.COMPLETED,),
        include_test=include_test,
    )


class CrossTabRequest(BaseModel):
    """Which two variables to cross (questions, calculations or attributes)."""

    row: str = Field(description="Variable whose values are the rows")
    column: str = Field(description="Variable whose values are the columns")
    language: str | None = None
    statuses: list[InterviewStatus] = Field(default_factory=lambda: [InterviewStatus.COMPLETED])
    include_test: bool = Field(False, description="Include test interviews and previews")


class CrossTabResult(CrossTab):
    """A cross-tab with each cell as a percentage of its column total."""

    column_percentages: list[list[float]]


@router.post("/questionnaire-versions/{version_id}/results/crosstab", response_model=CrossTabResult)
def post_crosstab(
    version: VersionDep, body: CrossTabRequest, session: SessionDep
) -> CrossTabResult:
    """Counts of one variable by another (POST: the request names both variables)."""
    table = service.version_crosstab(
        session=session,
        version_id=version.id,
        row=body.row,
        column=body.column,
        language=body.language,
        statuses=body.statuses,
        include_test=body.include_test,
    )
    return CrossTabResult(**table.model_dump(), column_percentages=table.column_percents())


@router.get("/questionnaire-versions/{version_id}/results/funnel", response_model=list[FunnelStep])
def get_funnel(
    version: VersionDep, session: SessionDep, include_test: IncludeTestQuery = False
) -> list[FunnelStep]:
    """Per question: interviews that reached it, answered it and stopped there."""
    return service.version_funnel(session=session, version_id=version.id, include_test=include_test)


# --------------------------------------------------------------------------- exports


def _export(
    version: QuestionnaireVersion,
    session: SessionDep,
    actor: CurrentActor,
    export_format: service.ExportFormat,
    language: str | None,
    statuses: list[InterviewStatus] | None = None,
    include_test: bool = False,
    bom: bool = True,
) -> Response:
    exported = service.export_responses(
        session=session,
        version_id=version.id,
        export_format=export_format,
        actor=actor,
        language=language,
        statuses=statuses,
        include_test=include_test,
        bom=bom,
    )
    return Response(
        exported.content,
        media_type=exported.media_type,
        headers={
            "Content-Disposition": content_disposition(exported.filename),
            "X-Record-Count": str(exported.records),
        },
    )


LanguageQuery = Annotated[str | None, Query(description="Label language; default the primary")]
BomQuery = Annotated[
    bool,
    Query(
        description="Start the CSV with a UTF-8 byte-order mark, so Excel (zh-CN, zh-TW) "
        "opens it as UTF-8; false for tools that want plain UTF-8"
    ),
]


@router.get("/questionnaire-versions/{version_id}/exports/responses.csv", response_class=Response)
def export_responses_csv(
    version: VersionDep,
    session: SessionDep,
    actor: CurrentActor,
    labels: Annotated[bool, Query(description="Choice labels instead of codes")] = False,
    language: LanguageQuery = None,
    status_filter: StatusQuery = None,
    include_test: IncludeTestQuery = False,
    bom: BomQuery = True,
) -> Response:
    """Responses as CSV (UTF-8 with BOM), choice codes or labels; all statuses by default.

    Text that a spreadsheet would run as a formula (starting with = + - @) gets a leading
    apostrophe; numbers are never changed. The XLSX export needs no such guard."""
    export_format = service.ExportFormat.CSV_LABELS if labels else service.ExportFormat.CSV
    return _export(
        version, session, actor, export_format, language, status_filter, include_test, bom
    )


@router.get("/questionnaire-versions/{version_id}/exports/responses.xlsx", response_class=Response)
def export_responses_xlsx(
    version: VersionDep,
    session: SessionDep,
    actor: CurrentActor,
    language: LanguageQuery = None,
    status_filter: StatusQuery = None,
    include_test: IncludeTestQuery = False,
) -> Response:
    """Responses and the data dictionary as an Excel workbook (audited)."""
    return _export(
        version, session, actor, service.ExportFormat.XLSX, language, status_filter, include_test
    )


@router.get("/questionnaire-versions/{version_id}/exports/responses.sav", response_class=Response)
def export_responses_sav(
    version: VersionDep,
    session: SessionDep,
    actor: CurrentActor,
    language: LanguageQuery = None,
    status_filter: StatusQuery = None,
    include_test: IncludeTestQuery = False,
) -> Response:
    """Responses as an SPSS .sav file with variable and value labels (audited)."""
    return _export(
        version, session, actor, service.ExportFormat.SAV, language, status_filter, include_test
    )


@router.get("/questionnaire-versions/{version_id}/exports/dictionary.csv", response_class=Response)
def export_dictionary(
    version: VersionDep,
    session: SessionDep,
    actor: CurrentActor,
    language: LanguageQuery = None,
    bom: BomQuery = True,
) -> Response:
    """The data dictionary: every exported variable, its label, type and value labels."""
    return _export(
        version, session, actor, service.ExportFormat.DICTIONARY, language, None, False, bom
    )


# --------------------------------------------------------------------------- interviews


def _public(session: SessionDep, interview: Interview) -> InterviewPublic:
    return service.interview_public(session=session, interview=interview)


def _interviewer(principal: Principal) -> None:
    require_role(principal, *INTERVIEWERS)


@router.post(
    "/questionnaire-versions/{version_id}/interviews",
    response_model=InterviewPublic,
    status_code=status.HTTP_201_CREATED,
)
def start_interview(
    version: VersionDep, body: InterviewStart, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Start an interview on a published version, for a call or (no call_id) as a test."""
    _interviewer(principal)
    interview = service.start_interview(session=session, version_id=version.id, start=body)
    return _public(session, interview)


@router.post(
    "/questionnaire-versions/{version_id}/preview",
    response_model=InterviewPublic,
    status_code=status.HTTP_201_CREATED,
)
def preview_interview(
    version: VersionDep, body: InterviewStart, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Preview any version, a draft included, in any of its languages: a test interview
    (never in quotas, results or exports) run with the usual interview operations; 422 lists
    the problems of a draft that cannot run yet."""
    _interviewer(principal)
    interview = service.preview_interview(session=session, version_id=version.id, start=body)
    return _public(session, interview)


@router.get("/interviews", response_model=list[InterviewSummary])
def list_interviews(
    session: SessionDep,
    version_id: uuid.UUID | None = None,
    call_id: str | None = None,
    status_filter: Annotated[InterviewStatus | None, Query(alias="status")] = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[InterviewSummary]:
    """The client's interviews, newest first; filter by version, call id or status."""
    found = service.list_interviews(
        session=session, version_id=version_id, call_id=call_id, status=status_filter, limit=limit
    )
    return [InterviewSummary.model_validate(i, from_attributes=True) for i in found]


@router.get("/interviews/{interview_id}", response_model=InterviewPublic)
def get_interview(interview: InterviewDep, session: SessionDep) -> InterviewPublic:
    """The interview and its current question, in the interview's language."""
    return _public(session, interview)


@router.post("/interviews/{interview_id}/answer", response_model=InterviewPublic)
def answer(
    interview: InterviewDep, body: AnswerIn, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Answer the current question; 422 with a message in the respondent's language."""
    _interviewer(principal)
    updated = service.answer_interview(session=session, interview_id=interview.id, answer=body)
    return _public(session, updated)


@router.post("/interviews/{interview_id}/back", response_model=InterviewPublic)
def back(
    interview: InterviewDep, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Go back to the previous question (its answer is kept as the default)."""
    _interviewer(principal)
    return _public(session, service.go_back(session=session, interview_id=interview.id))


@router.post("/interviews/{interview_id}/suspend", response_model=InterviewPublic)
def suspend(
    interview: InterviewDep, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Suspend the interview (a partial) to resume it later."""
    _interviewer(principal)
    return _public(session, service.suspend_interview(session=session, interview_id=interview.id))


@router.post("/interviews/{interview_id}/resume", response_model=InterviewPublic)
def resume(
    interview: InterviewDep, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Resume a suspended interview where it stopped."""
    _interviewer(principal)
    return _public(session, service.resume_interview(session=session, interview_id=interview.id))


@router.post("/interviews/{interview_id}/language", response_model=InterviewPublic)
def set_language(
    interview: InterviewDep, body: LanguageIn, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Switch the interview's language mid-interview."""
    _interviewer(principal)
    updated = service.set_interview_language(
        session=session, interview_id=interview.id, language=body.language or ""
    )
    return _public(session, updated)


@router.post("/interviews/{interview_id}/complete", response_model=InterviewPublic)
def complete(
    interview: InterviewDep, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """Complete after the last question; ends as quota_full if a quota cell filled meanwhile."""
    _interviewer(principal)
    return _public(session, service.complete_interview(session=session, interview_id=interview.id))


@router.post("/interviews/{interview_id}/break-off", response_model=InterviewPublic)
def break_off(
    interview: InterviewDep, session: SessionDep, principal: CurrentPrincipal
) -> InterviewPublic:
    """The respondent ends the interview for good (hang-up, refusal to continue)."""
    _interviewer(principal)
    return _public(session, service.break_off_interview(session=session, interview_id=interview.id))


# --------------------------------------------------------------------------- AAPOR


class RatesRequest(BaseModel):
    """Case counts per family (I, P, R, NC, O, UH, UO, NE) and/or per AAPOR final code."""

    counts: OutcomeCounts = Field(default_factory=OutcomeCounts)
    dispositions: dict[AaporDisposition, int] = Field(
        default_factory=dict, description='Counts per final code, e.g. {"1.1": 120, "3.13": 40}'
    )
    e: float | None = Field(None, ge=0, le=1, description="Eligible share of unknowns")


@router.post("/surveys/aapor-rates", response_model=OutcomeRates)
def aapor_rates(body: RatesRequest, principal: CurrentPrincipal) -> OutcomeRates:
    """AAPOR RR1–6, COOP1–4, REF1–3 and CON1–3 for posted counts (codes are added to counts)."""
    return service.aapor_rates(counts=body.counts, dispositions=body.dispositions, e=body.e)
