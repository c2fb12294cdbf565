"""Feasibility reports and quotes: from a campaign's pilot, or from uploaded pilot results."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import File, Form, Query, UploadFile, status
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.downloads import content_disposition
from api.router import Router
from campaigns.attempts import dial_history, lead_records, pilot_attempt_records
from campaigns.deals import approve_campaign_quote, quote_campaign
from campaigns.models import Campaign, Lead
from campaigns.service import campaign_list_ids
from core.audit import record_audit
from core.db import get_or_404, utcnow
from core.errors import Conflict, InvalidInput, QueueUnavailable
from core.files import stream_file
from core.models import Role
from core.security import require_role
from feasibility.client_quote import render_pdf
from feasibility.inputs import Costs
from feasibility.models import (
    DealQuote,
    DealQuotePublic,
    FeasibilityRun,
    FeasibilityRunPublic,
    RunStatus,
    run_view,
)
from feasibility.service import client_quote_for_run, create_run, rerun
from feasibility.sizing import DEFAULT_PRECISION, PilotPlan, plan_pilot

router = Router(tags=["feasibility"])


@contextmanager
def _failed_if_unqueued(session: Session) -> Iterator[None]:
    """A report whose job the queue refused is marked failed (committed), never left queued."""
    try:
        yield
    except QueueUnavailable as exc:
        run_id = exc.params.get("run_id")
        run = session.get(FeasibilityRun, uuid.UUID(run_id)) if run_id else None
        if run is not None:
            run.status = RunStatus.failed
            run.job_id = uuid.UUID(exc.job_id)
            run.error = "the job queue was unavailable, so nothing ran; submit the report again"
            run.finished_at = utcnow()
            session.add(run)
            session.commit()
        raise


class FeasibilityParams(BaseModel):
    """What to project and price: targets, costs, attempt cap, seed."""

    targets: dict[str, Any] = Field(default_factory=dict, description="conversions, deadline…")
    costs: dict[str, Any] = Field(default_factory=dict, description="defaults: the contract")
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="any 0 … 2,147,483,647")


class FeasibilityIn(FeasibilityParams):
    """Pilot results from another dialer, as records."""

    attempts: list[dict[str, Any]] = Field(min_length=1)
    leads: list[dict[str, Any]] = Field(min_length=1)


@router.post(
    "/campaigns/{campaign_id}/feasibility",
    response_model=FeasibilityRunPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def feasibility_for_campaign(
    campaign_id: uuid.UUID,
    params: FeasibilityParams,
    session: SessionDep,
    principal: CurrentPrincipal,
    batch_id: uuid.UUID | None = None,
) -> FeasibilityRun:
    """Build the report and quote from the campaign's pilot batch (runs in the background)."""
    # look the object up first: another client's campaign is a 404 whatever the role
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.sales, Role.operator)
    attempts = pilot_attempt_records(session=session, campaign_id=campaign_id, batch_id=batch_id)
    if not attempts:
        raise Conflict(
            "the campaign has no finished pilot attempts yet; dial the pilot batch or import "
            "its results with POST /campaigns/{id}/attempts/import first"
        )
    leads = lead_records(session=session, campaign_id=campaign_id)
    with _failed_if_unqueued(session):
        return create_run(
            session=session,
            client_id=campaign.client_id,
            attempts=attempts,
            leads=leads,
            # The campaign's own attempt limit bounds every recommendation, unless overridden.
            targets={"attempt_limit": campaign.max_attempts, **params.targets},
            costs=params.costs,
            max_attempts=params.max_attempts,
            seed=params.seed,
            campaign_id=campaign_id,
            batch_id=batch_id,
        )


@router.post(
    "/feasibility-reports",
    response_model=FeasibilityRunPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def feasibility_from_records(
    body: FeasibilityIn, session: SessionDep, principal: CurrentPrincipal
) -> FeasibilityRun:
    """Build a report from pilot attempts and leads sent as JSON records."""
    require_role(principal, Role.sales, Role.operator)
    with _failed_if_unqueued(session):
        return create_run(
            session=session,
            client_id=principal.acting_client(),
            attempts=body.attempts,
            leads=body.leads,
            targets=body.targets,
            costs=body.costs,
            max_attempts=body.max_attempts,
            seed=body.seed,
        )


@router.post(
    "/feasibility-reports/upload",
    response_model=FeasibilityRunPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def feasibility_from_files(
    session: SessionDep,
    principal: CurrentPrincipal,
    attempts: Annotated[UploadFile, File(description="lead_id,attempt_no,started_at,…")],
    leads: Annotated[UploadFile, File(description="lead_id plus any attribute columns")],
    targets: Annotated[str, Form(description="JSON object")] = "{}",
    costs: Annotated[str, Form(description="JSON object")] = "{}",
    max_attempts: Annotated[int | None, Form(ge=1, le=50)] = None,
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
) -> FeasibilityRun:
    """Build a report from ATTEMPTS.csv and LEADS.csv uploads."""
    require_role(principal, Role.sales, Role.operator)
    try:
        targets_obj, costs_obj = json.loads(targets), json.loads(costs)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"targets and costs must be JSON objects: {exc}") from exc
    with _failed_if_unqueued(session):
        return create_run(
            session=session,
            client_id=principal.acting_client(),
            attempts=attempts.file.read(),
            leads=leads.file.read(),
            targets=targets_obj,
            costs=costs_obj,
            max_attempts=max_attempts,
            seed=seed,
        )


@router.get("/feasibility-reports", response_model=list[FeasibilityRunPublic])
def list_reports(
    session: SessionDep,
    principal: CurrentPrincipal,
    campaign_id: uuid.UUID | None = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> list[FeasibilityRunPublic]:
    """The client's feasibility reports, newest first (a client key gets the client view)."""
    stmt = select(FeasibilityRun).order_by(col(FeasibilityRun.created_at).desc()).limit(limit)
    if campaign_id is not None:
        stmt = stmt.where(FeasibilityRun.campaign_id == campaign_id)
    return [run_view(run, internal=principal.is_staff) for run in session.exec(stmt)]


@router.get("/feasibility-reports/{run_id}", response_model=FeasibilityRunPublic)
def get_report(
    run_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> FeasibilityRunPublic:
    """One report: status, verdict, projection and prices; costs and margin for staff only."""
    run: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="feasibility report")
    return run_view(run, internal=principal.is_staff)


@router.get("/feasibility-reports/{run_id}/report.html", response_class=StreamingResponse)
def get_report_html(
    run_id: uuid.UUID, session: SessionDep, actor: CurrentActor, principal: CurrentPrincipal
) -> StreamingResponse:
    """The internal HTML report with charts, costs and caveats (staff only)."""
    run: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="feasibility report")
    require_role(principal, Role.sales, Role.operator, Role.researcher)
    if run.html_file_id is None:
        raise Conflict(f"the report is {run.status.value}; the HTML exists once it is ready")
    record_audit(
        session,
        client_id=run.client_id,
        actor=actor,
        action="export_feasibility_html",
        object_type="feasibility_report",
        object_id=run.id,
    )
    return StreamingResponse(
        stream_file(run.client_id, run.html_file_id), media_type="text/html; charset=utf-8"
    )


QuoteLanguage = Annotated[str, Query(description="zh-Hans, zh-Hant or en")]


@router.get("/feasibility-reports/{run_id}/quote.html", response_class=HTMLResponse)
def get_client_quote_html(
    run_id: uuid.UUID, session: SessionDep, language: QuoteLanguage = "zh-Hans"
) -> HTMLResponse:
    """The client quote (prices per ramp month, VAT, assumptions, signature block) as HTML."""
    _, html = client_quote_for_run(session=session, run_id=run_id, language=language)
    return HTMLResponse(html)


@router.get("/feasibility-reports/{run_id}/quote.pdf", response_class=Response)
def get_client_quote_pdf(
    run_id: uuid.UUID, session: SessionDep, language: QuoteLanguage = "zh-Hans"
) -> Response:
    """The client quote as PDF (Chromium print, CJK fonts embedded)."""
    quote, html = client_quote_for_run(session=session, run_id=run_id, language=language)
    return Response(
        render_pdf(html),
        media_type="application/pdf",
        headers={"Content-Disposition": content_disposition(f"{quote.quote_number}.pdf")},
    )


@router.post(
    "/feasibility-reports/{run_id}/rerun",
    response_model=FeasibilityRunPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def rerun_report(
    run_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> FeasibilityRun:
    """Run the same stored inputs and seed again; the numbers come out identical."""
    get_or_404(session, FeasibilityRun, run_id, what="feasibility report")
    require_role(principal, Role.sales, Role.operator)
    with _failed_if_unqueued(session):
        return rerun(session=session, run_id=run_id)


class QuoteIn(BaseModel):
    """Quote a campaign from one of its ready feasibility reports."""

    # Optional in the schema so another client's campaign is a 404 before the body is judged.
    run_id: uuid.UUID | None = Field(default=None, description="The ready report to quote.")
    override_reason: str | None = Field(
        default=None, max_length=2000, description="Required when the report's verdict is NO GO."
    )


class ApprovalIn(BaseModel):
    """Approve a quote by its number; the approval records who, when and the prices."""

    quote_number: str | None = Field(default=None, min_length=1, max_length=40)


@router.post(
    "/campaigns/{campaign_id}/quote",
    response_model=DealQuotePublic,
    status_code=status.HTTP_201_CREATED,
)
def quote_campaign_route(
    campaign_id: uuid.UUID,
    body: QuoteIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> DealQuote:
    """Record a numbered quote at the report's recommended prices; the campaign is quoted."""
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.sales, Role.operator)
    if body.run_id is None:
        raise InvalidInput("run_id is required: the id of a ready feasibility report")
    return quote_campaign(
        session=session,
        campaign=campaign,
        run_id=body.run_id,
        actor=actor,
        override_reason=body.override_reason,
    )


@router.post("/campaigns/{campaign_id}/approve", response_model=DealQuotePublic)
def approve_campaign_route(
    campaign_id: uuid.UUID,
    body: ApprovalIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> DealQuote:
    """Approve a quote (the client or sales); the campaign is approved at the quote's prices."""
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.sales, Role.client)
    if body.quote_number is None:
        raise InvalidInput("quote_number is required: see GET /campaigns/{id}/quotes")
    return approve_campaign_quote(
        session=session, campaign=campaign, quote_number=body.quote_number, actor=actor
    )


@router.get("/campaigns/{campaign_id}/quotes", response_model=list[DealQuotePublic])
def list_campaign_quotes(campaign_id: uuid.UUID, session: SessionDep) -> list[DealQuote]:
    """The campaign's quotes, newest first, with their approval."""
    get_or_404(session, Campaign, campaign_id, what="campaign")
    stmt = (
        select(DealQuote)
        .where(DealQuote.campaign_id == campaign_id)
        .order_by(col(DealQuote.quoted_at).desc())
    )
    return list(session.exec(stmt))


# --------------------------------------------------------------------------- pilot planning

#: Fewest leads the client's past campaigns must have dialled to stand in for the rates.
MIN_HISTORY_LEADS = 50


class PilotPlanOut(BaseModel):
    """How big the pilot must be, and where the rates it rests on came from."""

    plan: PilotPlan
    list_leads: int = Field(description="Leads the campaign would dial (one per number).")
    contact_rate: float
    valid_call_share: float
    rates_from: str = Field(description="'given', or the past campaigns the rates come from.")


@router.get("/campaigns/{campaign_id}/pilot-plan", response_model=PilotPlanOut)
def pilot_plan_route(
    campaign_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    precision: Annotated[
        float, Query(gt=0, lt=1, description="Price per valid call within +-precision.")
    ] = DEFAULT_PRECISION,
    level: Annotated[float, Query(ge=0.5, le=0.999, description="Confidence level.")] = 0.9,
    attempts_per_lead: Annotated[
        int | None, Query(ge=1, le=50, description="Default: the campaign's max_attempts.")
    ] = None,
    contact_rate: Annotated[
        float | None,
        Query(gt=0, le=1, description="Share of leads reached; default: the client's history."),
    ] = None,
    valid_call_share: Annotated[
        float | None,
        Query(gt=0, le=1, description="Share of contacts that are valid calls; default: history."),
    ] = None,
) -> PilotPlanOut:
    """Before a pilot: how many leads to dial, and how many attempts each, to know the price per
    valid call within +-precision, from the campaign's list and the client's past campaigns."""
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.sales, Role.operator)
    list_ids = campaign_list_ids(session=session, campaign_id=campaign.id)
    list_leads = int(
        session.exec(
            select(func.count(func.distinct(Lead.phone_e164))).where(
                col(Lead.list_id).in_(list_ids)
            )
        ).one()
    )
    if list_leads == 0:
        raise Conflict("the campaign has no leads to plan a pilot from; add a cleaned lead list")
    rates_from = "given"
    if contact_rate is None or valid_call_share is None:
        history = dial_history(
            session=session,
            client_id=campaign.client_id,
            exclude_campaign_id=campaign.id,
            valid_call_min_talk_s=Costs().valid_call_min_talk_s,
        )
        if history.leads_dialled < MIN_HISTORY_LEADS or history.contacts == 0:
            raise InvalidInput(
                f"the client's past campaigns dialled {history.leads_dialled} leads with "
                f"{history.contacts} contacts, too few to stand in for the rates (at least "
                f"{MIN_HISTORY_LEADS} leads and one contact): give contact_rate (e.g. 0.35) and "
                "valid_call_share (e.g. 0.8)",
                extra={"field": "contact_rate"},
            )
        if contact_rate is None:
            contact_rate = history.leads_contacted / history.leads_dialled
        if valid_call_share is None:
            valid_call_share = history.valid_calls / history.contacts
        if contact_rate <= 0 or valid_call_share <= 0:
            raise InvalidInput(
                "the client's past campaigns reached no one (or had no valid call): give "
                "contact_rate and valid_call_share",
                extra={"field": "contact_rate"},
            )
        rates_from = (
            f"{history.campaigns} past campaign(s) of the client: "
            f"{history.leads_contacted:,} of {history.leads_dialled:,} leads reached, "
            f"{history.valid_calls:,} of {history.contacts:,} contacts valid calls"
        )
    plan = plan_pilot(
        contact_rate=contact_rate,
        valid_call_share=valid_call_share,
        list_leads=list_leads,
        attempts_per_lead=attempts_per_lead or campaign.max_attempts,
        precision=precision,
        level=level,
    )
    return PilotPlanOut(
        plan=plan,
        list_leads=list_leads,
        contact_rate=contact_rate,
        valid_call_share=valid_call_share,
        rates_from=rates_from,
    )
