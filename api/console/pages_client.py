"""Client pages: upload a lead list, watch its cleaning, read the report, download the rows.

The list is stored and queued by ``campaigns.lists.create_list_from_upload`` exactly as
``POST /lists`` does; downloads link to the API's ``/lists/{id}/cleaned.csv`` and
``rejects.csv``, which accept the console's session cookie for reads and audit the export.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlmodel import col, select

from api.console.charts import hbar_chart
from api.console.i18n import translations
from api.console.web import Console, ConsoleDep
from api.routes.lists import UPLOAD_CHUNK, _check_declared_size
from campaigns.lists import create_list_from_upload
from campaigns.models import Campaign, LeadList, ListStatus
from core.db import get_or_404
from core.errors import InvalidInput, PayloadTooLarge
from core.models import Client, Role
from core.security import require_role
from core.users import UserRole
from reports.exceptions import StatementTransition
from reports.i18n import LANGUAGES as REPORT_LANGUAGES
from reports.models import Statement
from reports.statements import confirm_statement, dispute_statement, list_statements

router = APIRouter()

LIST_ROLES = (UserRole.client_user, UserRole.operator, UserRole.supervisor)


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    while chunk := upload.file.read(UPLOAD_CHUNK):
        yield chunk


def _clients(console: Console) -> list[Client]:
    return list(
        console.session.exec(
            select(Client).where(col(Client.id).in_(console.principal.scope)).order_by(Client.name)
        )
    )


def _lists_page(console: Console, *, error: str | None = None, status: int = 200) -> Response:
    stmt = select(LeadList).order_by(col(LeadList.created_at).desc()).limit(200)
    return console.render(
        "lists.html",
        status_code=status,
        lists=list(console.session.exec(stmt)),
        clients=_clients(console),
        error=error,
    )


@router.get("/lists")
def lists_page(console: ConsoleDep) -> Response:
    """My lead lists and the upload form."""
    console.require(*LIST_ROLES)
    return _lists_page(console)


@router.post("/lists")
def lists_upload(
    console: ConsoleDep,
    file: Annotated[UploadFile, File()],
    name: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    client_id: Annotated[str, Form()] = "",
) -> Response:
    """Upload a list; it is cleaned in the background, its page shows the progress."""
    console.require(*LIST_ROLES)
    require_role(console.principal, Role.client, Role.operator)
    _check_declared_size(console.request)
    try:
        acting = console.acting_client(uuid.UUID(client_id) if client_id else None)
        client = console.session.get(Client, acting)
        lead_list = create_list_from_upload(
            session=console.session,
            client_id=acting,
            filename=file.filename or "upload.csv",
            chunks=_chunks(file),
            name=name.strip() or None,
            region=region.strip() or (client.default_region if client else "CN"),
        )
    except (InvalidInput, PayloadTooLarge) as exc:
        console.session.rollback()
        return _lists_page(console, error=console.describe(exc), status=422)
    return RedirectResponse(f"/console/lists/{lead_list.id}", status_code=303)


def _report_charts(report: dict[str, object], locale: str) -> dict[str, Markup]:
    # reasons and number types are codes with catalog entries (labels.py); regions are names
    gettext = translations(locale).gettext
    charts: dict[str, Markup] = {}
    for key in ("by_reason", "by_type", "by_region"):
        values = report.get(key)
        if isinstance(values, dict) and values:
            label = (lambda k: k) if key == "by_region" else gettext
            items = sorted(
                ((label(str(k)), float(v)) for k, v in values.items()), key=lambda kv: -kv[1]
            )
            charts[key] = hbar_chart(items[:12], title=key)
    return charts


@router.get("/lists/{list_id}")
def list_page(console: ConsoleDep, list_id: uuid.UUID) -> Response:
    """A list: cleaning progress while it runs, then the report with charts and downloads."""
    console.require(*LIST_ROLES)
    return _list_view(console, list_id, "list.html")


@router.get("/lists/{list_id}/progress")
def list_progress(console: ConsoleDep, list_id: uuid.UUID) -> Response:
    """The progress part of a list's page (htmx polls it each second until it is done)."""
    console.require(*LIST_ROLES)
    lead_list: LeadList = get_or_404(console.session, LeadList, list_id, what="lead list")
    if lead_list.status in (ListStatus.ready, ListStatus.failed):
        # done: reload the whole page once, so the report and downloads appear
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return _list_view(console, list_id, "list_progress.html")


def _list_view(console: Console, list_id: uuid.UUID, template: str) -> Response:
    lead_list: LeadList = get_or_404(console.session, LeadList, list_id, what="lead list")
    report = lead_list.report or {}
    return console.render(
        template,
        lead_list=lead_list,
        report=report,
        charts=_report_charts(report, console.locale),
        running=lead_list.status in (ListStatus.uploaded, ListStatus.processing),
    )


STATEMENT_ROLES = (UserRole.client_user, UserRole.operator, UserRole.sales)


@router.get("/statements")
def statements_page(console: ConsoleDep, month: str = "") -> Response:
    """Monthly statements of my campaigns and seats, every version, with downloads (the
    API's audited ``/statements/{id}/document`` in my language, HTML to print or XLSX)."""
    console.require(*STATEMENT_ROLES)
    chosen = None
    if month.strip():
        try:
            chosen = date.fromisoformat(month.strip() + "-01")
        except ValueError as exc:
            raise InvalidInput(f"month {month!r} is not a month; write it as 2026-11") from exc
    return _statements_page(console, month=month.strip(), chosen=chosen)


def _statements_page(
    console: Console,
    *,
    month: str = "",
    chosen: date | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    rows = list_statements(session=console.session, month=chosen, limit=500)
    campaign_ids = {s.campaign_id for s in rows if s.campaign_id is not None}
    names = {
        c.id: c.name
        for c in console.session.exec(select(Campaign).where(col(Campaign.id).in_(campaign_ids)))
    }
    return console.render(
        "statements.html",
        status_code=status,
        statements=rows,
        campaign_names=names,
        month=month,
        can_answer=console.has_role(UserRole.client_user),
        error=error,
        report_language=console.locale if console.locale in REPORT_LANGUAGES else "zh-Hans",
    )


def _statement(console: Console, statement_id: uuid.UUID) -> Statement:
    statement: Statement = get_or_404(console.session, Statement, statement_id, what="statement")
    console.require(UserRole.client_user)
    return statement


@router.post("/statements/{statement_id}/confirm")
def statement_confirm(console: ConsoleDep, statement_id: uuid.UUID) -> Response:
    """Confirm an issued (or disputed) statement, as ``POST /statements/{id}/confirm``."""
    statement = _statement(console, statement_id)
    try:
        with console.session.begin_nested():
            confirm_statement(session=console.session, statement=statement, actor=console.actor)
    except StatementTransition as exc:
        return _statements_page(console, error=console.describe(exc), status=409)
    return RedirectResponse("/console/statements", status_code=303)


@router.post("/statements/{statement_id}/dispute")
def statement_dispute(
    console: ConsoleDep, statement_id: uuid.UUID, reason: Annotated[str, Form()] = ""
) -> Response:
    """Dispute an issued statement within its confirmation period, with the reason."""
    statement = _statement(console, statement_id)
    reason = reason.strip()
    if not reason or len(reason) > 1000:
        return _statements_page(
            console, error="say why you dispute the statement (1-1000 characters)", status=422
        )
    try:
        with console.session.begin_nested():
            dispute_statement(
                session=console.session, statement=statement, reason=reason, actor=console.actor
            )
    except StatementTransition as exc:
        return _statements_page(console, error=console.describe(exc), status=409)
    return RedirectResponse("/console/statements", status_code=303)
