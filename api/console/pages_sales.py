"""Sales pages: feasibility reports from a campaign's pilot, with targets and costs (what-if),
the verdict and quote on screen, the client document (HTML, with its charts), the client quote
(HTML/PDF, in the user's language), recording the quote for the campaign, and re-runs.

Only the feasibility service's public functions and outputs are used (``create_run``,
``rerun`` and the stored run), as ``api/routes/feasibility.py`` does.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlmodel import col, select

from api.console.web import Console, ConsoleDep
from campaigns import service as campaign_service
from campaigns.attempts import lead_records, pilot_attempt_records
from campaigns.deals import quote_campaign
from core.db import get_or_404
from core.errors import Conflict, InvalidInput, PilotdialError
from core.models import Role
from core.security import require_role
from core.users import UserRole
from feasibility.models import FeasibilityRun, RunStatus
from feasibility.service import create_run, rerun

router = APIRouter()

SALES = (UserRole.sales, UserRole.operator, UserRole.supervisor)
_TARGET_FIELDS = ("conversions", "deadline_days", "seats", "max_price")
_COST_FIELDS = ("agent_monthly_cost", "valid_calls_per_agent_hour", "hours_per_day")


def _numbers(values: dict[str, str]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for name, raw in values.items():
        text = raw.strip()
        if text:
            number = float(text)
            out[name] = (
                int(number) if number.is_integer() and name in ("conversions", "seats") else number
            )
    return out


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A nested report as (dotted key, scalar) rows, for a plain table."""
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        return [(prefix, f"[{len(value)}]")]
    return [(prefix, value)]


def _label(key: str) -> str:
    return key.replace("_", " ").replace(".", " · ")


def split_rows(rows: list[tuple[str, Any]]) -> tuple[list[tuple[str, Any]], list[str]]:
    """Figures (numbers, flags, short words) for the table; long texts as notes below it."""
    figures, notes = [], []
    for key, value in rows:
        if isinstance(value, str) and len(value) > 24:
            notes.append(f"{_label(key)}: {value}")
        else:
            figures.append((_label(key), value))
    return figures, notes


def quantile_rows(rows: list[tuple[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Projection rows with their p10/p50/p90 side by side (other figures as they are)."""
    grouped: dict[str, list[Any]] = {}
    for key, value in rows:
        base, _, tail = key.rpartition(".")
        if tail in ("p10", "p50", "p90") and base:
            grouped.setdefault(base, [None, None, None])[("p10", "p50", "p90").index(tail)] = value
        else:
            grouped[key] = [None, value, None]
    return [(_label(k), v) for k, v in grouped.items()]


@router.get("/feasibility")
def feasibility_list(console: ConsoleDep) -> Response:
    """Feasibility reports, and the campaigns whose pilot can be priced."""
    console.require(*SALES)
    runs = list(
        console.session.exec(
            select(FeasibilityRun).order_by(col(FeasibilityRun.created_at).desc()).limit(100)
        )
    )
    campaigns = campaign_service.list_campaigns(session=console.session, limit=500)
    return console.render(
        "feasibility_list.html",
        runs=runs,
        campaigns=campaigns,
        names={c.id: c.name for c in campaigns},
        target_fields=_TARGET_FIELDS,
        cost_fields=_COST_FIELDS,
        error=None,
    )


class PricingForm(BaseModel):
    """The targets and costs of the pricing form; a blank field keeps the default."""

    conversions: str = ""
    deadline_days: str = ""
    seats: str = ""
    max_price: str = ""
    agent_monthly_cost: str = ""
    valid_calls_per_agent_hour: str = ""
    hours_per_day: str = ""


def _create(console: Console, campaign_id: uuid.UUID, form: dict[str, str]) -> FeasibilityRun:
    campaign = campaign_service.get_campaign(session=console.session, campaign_id=campaign_id)
    require_role(console.principal, Role.sales, Role.operator)
    attempts = pilot_attempt_records(session=console.session, campaign_id=campaign.id)
    if not attempts:
        raise Conflict(
            "the campaign has no finished pilot attempts yet; dial the pilot batch or import "
            "its results first"
        )
    try:
        targets = _numbers({k: form.get(k, "") for k in _TARGET_FIELDS})
        costs = _numbers({k: form.get(k, "") for k in _COST_FIELDS})
    except ValueError as exc:
        from core.errors import InvalidInput

        raise InvalidInput(f"targets and costs are numbers: {exc}") from exc
    return create_run(
        session=console.session,
        client_id=campaign.client_id,
        attempts=attempts,
        leads=lead_records(session=console.session, campaign_id=campaign.id),
        targets=targets,
        costs=costs,
        campaign_id=campaign.id,
    )


@router.post("/campaigns/{campaign_id}/feasibility")
def feasibility_create(
    console: ConsoleDep,
    campaign_id: uuid.UUID,
    form: Annotated[PricingForm, Form()],
) -> Response:
    """Price a campaign's pilot with these targets and costs (runs in the background)."""
    console.require(*SALES)
    run = _create(console, campaign_id, form.model_dump())
    return RedirectResponse(f"/console/feasibility/{run.id}", status_code=303)


@router.get("/feasibility/{run_id}")
def feasibility_page(console: ConsoleDep, run_id: uuid.UUID, quoted: str | None = None) -> Response:
    """One report: verdict, reasons, quote and projection, the document with its charts."""
    console.require(*SALES)
    return _feasibility_page(console, run_id, quoted=quoted)


@router.post("/feasibility/{run_id}/quote")
def feasibility_quote(
    console: ConsoleDep,
    run_id: uuid.UUID,
    override_reason: Annotated[str, Form()] = "",
) -> Response:
    """Record the report's quote for its campaign (the campaign moves to quoted), as
    ``POST /campaigns/{id}/quote``; a NO GO needs the reason it goes ahead anyway."""
    console.require(*SALES)
    require_role(console.principal, Role.sales, Role.operator)
    run: FeasibilityRun = get_or_404(
        console.session, FeasibilityRun, run_id, what="feasibility report"
    )
    if run.campaign_id is None:
        raise InvalidInput("this report was computed from uploaded records, not a campaign")
    campaign = campaign_service.get_campaign(session=console.session, campaign_id=run.campaign_id)
    try:
        with console.session.begin_nested():
            quote = quote_campaign(
                session=console.session,
                campaign=campaign,
                run_id=run.id,
                actor=console.actor,
                override_reason=override_reason or None,
            )
    except PilotdialError as exc:
        if exc.code == "not-found":
            raise
        return _feasibility_page(console, run_id, error=console.describe(exc), status=409)
    return RedirectResponse(
        f"/console/feasibility/{run_id}?quoted={quote.quote_number}", status_code=303
    )


def _feasibility_page(
    console: Console,
    run_id: uuid.UUID,
    *,
    quoted: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    run: FeasibilityRun = get_or_404(
        console.session, FeasibilityRun, run_id, what="feasibility report"
    )
    report = run.report or {}
    quote_rows, quote_notes = split_rows(flatten(report.get("quote", {})))
    return console.render(
        "feasibility.html",
        status_code=status,
        quoted=quoted,
        error=error,
        run=run,
        report=report,
        quote_rows=quote_rows,
        quote_notes=quote_notes,
        projection_rows=quantile_rows(flatten(report.get("projection", {}))),
        running=run.status in (RunStatus.queued, RunStatus.running),
        target_fields=_TARGET_FIELDS,
        cost_fields=_COST_FIELDS,
    )


@router.post("/feasibility/{run_id}/whatif")
def feasibility_whatif(
    console: ConsoleDep,
    run_id: uuid.UUID,
    form: Annotated[PricingForm, Form()],
) -> Response:
    """Recompute with other targets and costs: a new report on the same pilot."""
    console.require(*SALES)
    run: FeasibilityRun = get_or_404(
        console.session, FeasibilityRun, run_id, what="feasibility report"
    )
    if run.campaign_id is None:
        require_role(console.principal, Role.sales, Role.operator)
        new = rerun(session=console.session, run_id=run.id)
    else:
        new = _create(console, run.campaign_id, form.model_dump())
    return RedirectResponse(f"/console/feasibility/{new.id}", status_code=303)
