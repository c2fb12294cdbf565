"""Contract reports, monthly statements and platform outages."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.downloads import content_disposition
from api.router import Router
from api.views import outage_view
from core.db import get_or_404, utcnow
from core.files import stream_file
from core.models import Role
from core.security import require_role
from reports.availability import OutageIn, end_outage, month_outages, record_outage, visible_outage
from reports.billing import AvailabilityMode
from reports.models import ContractKind, Outage, ReportDocument, Statement
from reports.render import FORMATS, render
from reports.service import (
    ProfileUpdate,
    ReportRequest,
    generate_report,
    get_profile,
    list_reports,
    open_report,
    update_profile,
)
from reports.statements import (
    AdjustmentIn,
    ContractIn,
    SeatLeaseIn,
    add_adjustment,
    add_seat_lease,
    confirm_statement,
    correct_statement,
    dispute_statement,
    generate_statement,
    issue_statement,
    pay_statement,
    set_contract,
    statement_document,
)
from reports.statements import (
    list_statements as statements_of,
)

router = Router(tags=["reports"])
STAFF = (Role.operator, Role.sales)


def _statement(statement_id: uuid.UUID, session: SessionDep) -> Statement:
    """The statement in the path, resolved before the body is validated (404 first)."""
    statement: Statement = get_or_404(session, Statement, statement_id, what="statement")
    return statement


def _outage(outage_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Outage:
    """The outage in the path: platform-wide or one of the caller's clients'."""
    return visible_outage(session, outage_id, principal.scope)


def _campaign_id(campaign_id: uuid.UUID, session: SessionDep) -> uuid.UUID:
    from campaigns.models import Campaign

    get_or_404(session, Campaign, campaign_id, what="campaign")
    return campaign_id


StatementDep = Annotated[Statement, Depends(_statement)]
OutageDep = Annotated[Outage, Depends(_outage)]
CampaignIdDep = Annotated[uuid.UUID, Depends(_campaign_id)]


def _report_public(doc: ReportDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "kind": doc.kind,
        "period_kind": doc.period_kind,
        "period_start": doc.period_start,
        "period_end": doc.period_end,
        "interval": doc.interval,
        "campaign_id": doc.campaign_id,
        "skill_group": doc.skill_group,
        "language": doc.language,
        "fmt": doc.fmt,
        "filename": doc.filename,
        "scheduled": doc.scheduled,
        "created_by": doc.created_by,
        "created_at": doc.created_at,
        "summary": doc.summary,
        "download": f"/reports/{doc.id}/download",
    }


@router.get("/report-profile")
def read_profile(session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The client's report settings and template."""
    return get_profile(session, principal.acting_client()).model_dump()


@router.patch("/report-profile")
def change_profile(
    body: ProfileUpdate, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change time zone, language, masking, thresholds, template (sections, columns, logo,
    name) or the weekly schedule."""
    profile = update_profile(session=session, client_id=principal.acting_client(), update=body)
    return profile.model_dump()


@router.post("/reports", status_code=status.HTTP_201_CREATED)
def create_report(
    body: ReportRequest, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> dict[str, Any]:
    """Generate a report now into the client's download area."""
    client_id = principal.acting_client()
    if body.campaign_id is not None:
        from campaigns.models import Campaign

        campaign: Campaign = get_or_404(session, Campaign, body.campaign_id, what="campaign")
        client_id = campaign.client_id
    doc = generate_report(session=session, client_id=client_id, request=body, actor=actor)
    return _report_public(doc)


@router.get("/reports")
def read_reports(
    session: SessionDep,
    campaign_id: uuid.UUID | None = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> list[dict[str, Any]]:
    """The client's generated reports (on demand and scheduled), newest first."""
    return [_report_public(d) for d in list_reports(session, campaign_id=campaign_id, limit=limit)]


@router.get("/reports/{report_id}")
def read_report(report_id: uuid.UUID, session: SessionDep) -> dict[str, Any]:
    """One generated report."""
    doc: ReportDocument = get_or_404(session, ReportDocument, report_id, what="report")
    return _report_public(doc)


@router.get("/reports/{report_id}/download")
def download_report(
    report_id: uuid.UUID, session: SessionDep, actor: CurrentActor
) -> StreamingResponse:
    """The report file (the download is audited)."""
    doc = open_report(session, report_id, actor=actor)
    session.commit()  # the audit row is written before the bytes go out
    return StreamingResponse(
        stream_file(doc.client_id, doc.file_id),
        media_type=FORMATS[doc.fmt],
        headers={"Content-Disposition": content_disposition(doc.filename)},
    )


# --------------------------------------------------------------------------- statements


class StatementRequest(BaseModel):
    contract: ContractKind = ContractKind.service
    month: date = Field(description="any day of the month billed")
    campaign_id: uuid.UUID | None = None
    availability_mode: AvailabilityMode = AvailabilityMode.whole_points


class DisputeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class PaymentIn(BaseModel):
    paid_on: date


def _statement_public(s: Statement) -> dict[str, Any]:
    data = s.model_dump()
    for key in ("subtotal", "deduction", "net", "vat", "total", "paid", "late_interest"):
        value = data.pop(f"{key}_fen")
        data[key] = None if value is None else f"{value / 100:.2f}"
    return data


@router.put("/campaigns/{campaign_id}/contract")
def put_contract(
    campaign_id: CampaignIdDep, body: ContractIn, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Set the campaign's service contract: first month, agents, price overrides."""
    require_role(principal, *STAFF)
    contract = set_contract(session=session, campaign_id=campaign_id, contract_in=body)
    return contract.model_dump()


@router.post("/seat-leases", status_code=status.HTTP_201_CREATED)
def post_seat_lease(
    body: SeatLeaseIn, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Record leased seats (kind, number, monthly fee, active dates)."""
    require_role(principal, *STAFF)
    return add_seat_lease(
        session=session, client_id=principal.acting_client(), lease_in=body
    ).model_dump()


@router.post("/statement-adjustments", status_code=status.HTTP_201_CREATED)
def post_adjustment(
    body: AdjustmentIn, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> dict[str, Any]:
    """A supervisor's quality-inspection bonus or penalty for a campaign-month."""
    row = add_adjustment(session=session, adjustment_in=body, actor=actor)
    require_role(principal, *STAFF)
    return row.model_dump()


@router.post("/statements", status_code=status.HTTP_201_CREATED)
def post_statement(
    body: StatementRequest, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> dict[str, Any]:
    """Compute (or recompute) the month's draft statement."""
    client_id = principal.acting_client() if body.campaign_id is None else None
    if body.campaign_id is not None:
        from campaigns.models import Campaign

        campaign: Campaign = get_or_404(session, Campaign, body.campaign_id, what="campaign")
        client_id = campaign.client_id
    require_role(principal, *STAFF)
    assert client_id is not None
    statement = generate_statement(
        session=session,
        client_id=client_id,
        contract=body.contract,
        month=body.month,
        campaign_id=body.campaign_id,
        availability_mode=body.availability_mode,
        actor=actor,
    )
    return _statement_public(statement)


@router.get("/statements")
def list_statements(session: SessionDep, month: date | None = None) -> list[dict[str, Any]]:
    """The client's statements, every version, newest first."""
    return [_statement_public(s) for s in statements_of(session=session, month=month)]


@router.get("/statements/{statement_id}")
def read_statement(statement: StatementDep, session: SessionDep) -> dict[str, Any]:
    """One statement version."""
    return _statement_public(statement)


@router.get("/statements/{statement_id}/document")
def statement_file(
    statement: StatementDep,
    session: SessionDep,
    actor: CurrentActor,
    fmt: Annotated[str, Query(pattern="^(html|xlsx)$")] = "html",
    language: str | None = None,
) -> Response:
    """The statement as HTML (prints to PDF) or XLSX; the download is audited."""
    from core.audit import record_audit

    payload = render(statement_document(session, statement, language=language), fmt)
    record_audit(
        session,
        client_id=statement.client_id,
        actor=actor,
        action="statement.download",
        object_type="statement",
        object_id=statement.id,
        detail={"fmt": fmt},
    )
    name = f"statement_{statement.month:%Y%m}_v{statement.version}.{fmt}"
    return Response(
        payload,
        media_type=FORMATS[fmt],
        headers={"Content-Disposition": content_disposition(name)},
    )


@router.post("/statements/{statement_id}/issue")
def post_issue(
    statement: StatementDep, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> dict[str, Any]:
    """Issue the draft: frozen from now on; the client confirms within 5 working days."""
    require_role(principal, *STAFF)
    return _statement_public(issue_statement(session=session, statement=statement, actor=actor))


@router.post("/statements/{statement_id}/confirm")
def post_confirm(
    statement: StatementDep, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> dict[str, Any]:
    """The client confirms the statement."""
    return _statement_public(confirm_statement(session=session, statement=statement, actor=actor))


@router.post("/statements/{statement_id}/dispute")
def post_dispute(
    statement: StatementDep,
    body: DisputeIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> dict[str, Any]:
    """The client disputes the statement (within the confirmation period)."""
    return _statement_public(
        dispute_statement(session=session, statement=statement, reason=body.reason, actor=actor)
    )


@router.post("/statements/{statement_id}/correct", status_code=status.HTTP_201_CREATED)
def post_correct(
    statement: StatementDep, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> dict[str, Any]:
    """A correction: a new draft version recomputed from the data."""
    require_role(principal, *STAFF)
    return _statement_public(correct_statement(session=session, statement=statement, actor=actor))


@router.post("/statements/{statement_id}/pay")
def post_pay(
    statement: StatementDep,
    body: PaymentIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> dict[str, Any]:
    """Record the payment (late interest computed when paid after the due date)."""
    require_role(principal, *STAFF)
    return _statement_public(
        pay_statement(session=session, statement=statement, paid_on=body.paid_on, actor=actor)
    )


# --------------------------------------------------------------------------- outages


class OutageEnd(BaseModel):
    ended_at: datetime


@router.post("/outages", status_code=status.HTTP_201_CREATED)
def post_outage(
    body: OutageIn, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> dict[str, Any]:
    """Record an outage by hand (operators)."""
    require_role(principal, Role.operator)
    if body.client_id is not None and body.client_id not in principal.scope:
        from core.errors import NotFound

        raise NotFound("no client with this id")
    if body.client_id is None and not principal.all_clients:
        body = body.model_copy(update={"client_id": principal.acting_client()})
    return record_outage(session=session, outage_in=body, actor=actor).model_dump()


@router.get("/outages")
def list_outages(
    session: SessionDep, principal: CurrentPrincipal, month: date | None = None
) -> list[dict[str, Any]]:
    """Outages that affect the caller's clients (platform-wide ones included)."""
    from reports.availability import counts, month_bounds

    start, end = month_bounds(month or utcnow().date())
    rows = [
        o
        for o in month_outages(session, None, start, end)
        if o.client_id is None or o.client_id in principal.scope
    ]
    return [outage_view(o.model_dump() | {"counts": counts(o)}, principal) for o in rows]


@router.post("/outages/{outage_id}/end")
def post_outage_end(
    outage: OutageDep, body: OutageEnd, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Close an open outage."""
    require_role(principal, Role.operator)
    return end_outage(session=session, outage=outage, ended_at=body.ended_at).model_dump()
