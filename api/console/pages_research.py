"""Researcher pages: questionnaires and versions, XLSForm upload with its problems at their
rows, publish, a live preview of a draft in each language (test interviews, kept out of
results and quotas), and results with charts. All through :mod:`surveys.service`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from api.console.charts import hbar_chart, stacked_bar_chart
from api.console.web import Console, ConsoleDep
from api.routes.surveys import DESIGNERS, MAX_QUESTIONNAIRE_BYTES
from core.errors import PayloadTooLarge, PilotdialError
from core.security import require_role
from core.users import UserRole
from surveys import service
from surveys.models import AnswerIn, InterviewStart

router = APIRouter()

RESEARCH = (UserRole.researcher, UserRole.client_user)


def _questionnaires_page(
    console: Console,
    *,
    problems: list[dict[str, Any]] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return console.render(
        "questionnaires.html",
        status_code=status,
        questionnaires=service.list_questionnaires(session=console.session),
        problems=problems or [],
        error=error,
    )


@router.get("/questionnaires")
def questionnaires_page(console: ConsoleDep) -> Response:
    """Questionnaires, newest change first, and the upload form."""
    console.require(*RESEARCH)
    return _questionnaires_page(console)


@router.post("/questionnaires")
def questionnaire_upload(
    console: ConsoleDep, file: Annotated[UploadFile, File()], client_id: Annotated[str, Form()] = ""
) -> Response:
    """Upload an XLSForm (or YAML/JSON); problems are listed at their sheet, row and column."""
    console.require(*RESEARCH)
    require_role(console.principal, *DESIGNERS)
    data = file.file.read(MAX_QUESTIONNAIRE_BYTES + 1)
    try:
        if len(data) > MAX_QUESTIONNAIRE_BYTES:
            raise PayloadTooLarge(
                f"a questionnaire file is limited to {MAX_QUESTIONNAIRE_BYTES:,} bytes"
            )
        document = service.parse_upload(filename=file.filename or "questionnaire.xlsx", data=data)
        acting = console.acting_client(uuid.UUID(client_id) if client_id else None)
        with console.session.begin_nested():
            version = service.create_questionnaire(
                session=console.session, client_id=acting, document=document
            )
    except PilotdialError as exc:
        problems = exc.extra.get("problems") or []
        return _questionnaires_page(
            console, problems=problems, error=console.describe(exc), status=422
        )
    return RedirectResponse(f"/console/versions/{version.id}", status_code=303)


@router.get("/questionnaires/{questionnaire_id}")
def questionnaire_page(console: ConsoleDep, questionnaire_id: uuid.UUID) -> Response:
    """A questionnaire's versions."""
    console.require(*RESEARCH)
    detail = service.questionnaire_detail(
        session=console.session, questionnaire_id=questionnaire_id
    )
    return console.render("questionnaire.html", detail=detail)


def _version_page(
    console: Console, version_id: uuid.UUID, *, error: str | None = None, status: int = 200,
    problems: list[dict[str, Any]] | None = None,
) -> Response:  # fmt: skip
    version = service.get_version(session=console.session, version_id=version_id)
    content = version.content
    counts = service.count_interviews(session=console.session, version_id=version.id)
    return console.render(
        "version.html",
        status_code=status,
        version=version,
        questionnaire=service.get_questionnaire(
            session=console.session, questionnaire_id=version.questionnaire_id
        ),
        languages=content.get("languages", []),
        questions=content.get("questions", []),
        problems=problems if problems is not None else version.problems,
        counts=counts,
        error=error,
    )


@router.get("/versions/{version_id}")
def version_page(console: ConsoleDep, version_id: uuid.UUID) -> Response:
    """A version: status, problems at their rows, publish, preview, results."""
    console.require(*RESEARCH)
    return _version_page(console, version_id)


def _refused(console: Console, version_id: uuid.UUID, exc: PilotdialError) -> Response:
    """The version page with why it cannot be published or previewed (422, problems listed)."""
    if exc.code == "not-found":
        raise exc
    return _version_page(
        console, version_id, error=console.describe(exc), status=422,
        problems=exc.extra.get("problems") or [],
    )  # fmt: skip


@router.post("/versions/{version_id}/publish")
def version_publish(console: ConsoleDep, version_id: uuid.UUID) -> Response:
    """Validate and freeze a draft; every problem is listed if it cannot be published."""
    console.require(*RESEARCH)
    require_role(console.principal, *DESIGNERS)
    try:
        with console.session.begin_nested():
            service.publish_version(session=console.session, version_id=version_id)
    except PilotdialError as exc:
        return _refused(console, version_id, exc)
    return RedirectResponse(f"/console/versions/{version_id}", status_code=303)


@router.post("/versions/{version_id}/preview")
def version_preview_start(
    console: ConsoleDep, version_id: uuid.UUID, language: Annotated[str, Form()] = ""
) -> Response:
    """Start a test interview of this version, a draft included, in a language (never
    counted anywhere); a draft with problems shows them instead."""
    console.require(*RESEARCH)
    try:
        with console.session.begin_nested():
            interview = service.preview_interview(
                session=console.session,
                version_id=version_id,
                start=InterviewStart(
                    language=language or None,
                    interviewer=f"preview:{console.user.username}",
                ),
            )
    except PilotdialError as exc:
        return _refused(console, version_id, exc)
    return RedirectResponse(f"/console/preview/{interview.id}", status_code=303)


@router.get("/preview/{interview_id}")
def preview_page(console: ConsoleDep, interview_id: uuid.UUID) -> Response:
    """The preview: the current question as an agent would read it."""
    console.require(*RESEARCH)
    interview = service.get_interview(session=console.session, interview_id=interview_id)
    public = service.interview_public(session=console.session, interview=interview)
    version = service.get_version(session=console.session, version_id=interview.version_id)
    return console.render(
        "preview.html",
        interview=public,
        version=version,
        languages=version.content.get("languages", []),
    )


@router.post("/preview/{interview_id}/answer")
def preview_answer(
    console: ConsoleDep,
    interview_id: uuid.UUID,
    question: Annotated[str, Form()],
    value: Annotated[list[str] | None, Form()] = None,
    multiple: Annotated[bool, Form()] = False,
) -> Response:
    """Answer the preview's current question and move on."""
    console.require(*RESEARCH)
    answer: Any = (value or []) if multiple else (value[0] if value else None)
    service.answer_interview(
        session=console.session,
        interview_id=interview_id,
        answer=AnswerIn(question=question, value=answer),
    )
    return RedirectResponse(f"/console/preview/{interview_id}", status_code=303)


@router.post("/preview/{interview_id}/back")
def preview_back(console: ConsoleDep, interview_id: uuid.UUID) -> Response:
    """Go back one question."""
    console.require(*RESEARCH)
    service.go_back(session=console.session, interview_id=interview_id)
    return RedirectResponse(f"/console/preview/{interview_id}", status_code=303)


@router.get("/versions/{version_id}/results")
def results_page(console: ConsoleDep, version_id: uuid.UUID) -> Response:
    """Frequencies of every question with a bar chart each; the exports."""
    console.require(*RESEARCH, UserRole.sales, UserRole.operator, UserRole.supervisor)
    version = service.get_version(session=console.session, version_id=version_id)
    tables = service.version_frequencies(session=console.session, version_id=version.id)
    charts = {
        t.question: hbar_chart(
            [(r.label or r.value, float(r.count)) for r in t.rows], title=t.label
        )
        for t in tables
        if t.rows and t.base
    }
    funnel = service.version_funnel(session=console.session, version_id=version.id)
    return console.render(
        "results.html", version=version, tables=tables, charts=charts, funnel=funnel
    )


@router.get("/versions/{version_id}/crosstab")
def crosstab_page(
    console: ConsoleDep,
    version_id: uuid.UUID,
    row: str = "",
    column: str = "",
    language: str = "",
    include_test: bool = False,
) -> Response:
    """Two questions against each other: counts, row and column percentages, and a chart of
    each row's split (completed interviews; test interviews only if asked)."""
    console.require(*RESEARCH, UserRole.sales, UserRole.operator, UserRole.supervisor)
    version = service.get_version(session=console.session, version_id=version_id)
    variables = [
        (t.question, t.label)
        for t in service.version_frequencies(session=console.session, version_id=version.id)
    ]
    languages = list(version.content.get("languages", []))
    chosen_language = language or (console.locale if console.locale in languages else "")
    table = None
    error = None
    chart = Markup("")
    if row and column:
        try:
            table = service.version_crosstab(
                session=console.session, version_id=version.id, row=row, column=column,
                language=chosen_language or None, include_test=include_test,
            )  # fmt: skip
        except PilotdialError as exc:
            if exc.code == "not-found":
                raise
            error = console.describe(exc)
        if table is not None and table.total:
            shares = table.row_percents()
            chart = stacked_bar_chart(
                [(label, shares[i]) for i, label in enumerate(table.row_labels)],
                table.column_labels,
                title=f"{row} × {column}",
            )
    return console.render(
        "crosstab.html",
        status_code=422 if error else 200,
        version=version,
        variables=variables,
        languages=languages,
        row=row,
        column=column,
        language=chosen_language,
        include_test=include_test,
        table=table,
        row_percents=table.row_percents() if table else [],
        column_percents=table.column_percents() if table else [],
        chart=chart,
        error=error,
    )
