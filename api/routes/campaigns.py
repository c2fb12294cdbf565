"""Campaigns: CRUD, lifecycle, batches, dispositions, lead states, call attempts (list, export,
import).

Every route under ``/campaigns/{campaign_id}`` loads the campaign through the tenant-scoped
session first, so another client's campaign is a 404 before anything else is looked at.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Annotated, Any

from fastapi import Depends, File, Query, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.downloads import content_disposition
from api.router import Router
from campaigns import attempts as attempts_service
from campaigns import service
from campaigns.deals import refuse_deal_move
from campaigns.lifecycle import check_transition
from campaigns.models import (
    AttemptStatus,
    Batch,
    BatchCreate,
    BatchPublic,
    CallAttempt,
    CallAttemptPublic,
    Campaign,
    CampaignCreate,
    CampaignLead,
    CampaignLeadPublic,
    CampaignPublic,
    CampaignStatus,
    CampaignUpdate,
    Disposition,
    DispositionCreate,
    DispositionPublic,
    DispositionUpdate,
    LeadState,
    OutcomeClass,
)
from core.audit import record_audit
from core.models import JobPublic, Role
from core.security import require_role
from core.validation import MAX_OFFSET
from dialer.run_control import control_campaign

router = Router(prefix="/campaigns", tags=["campaigns"])

STAFF_WRITE = (Role.operator, Role.sales)
MAX_IMPORT_BYTES = 50 * 1024 * 1024


def load_campaign(campaign_id: uuid.UUID, session: SessionDep) -> Campaign:
    """The path's campaign, or 404 (also for another client's campaign)."""
    return service.get_campaign(session=session, campaign_id=campaign_id)


CampaignDep = Annotated[Campaign, Depends(load_campaign)]


class TransitionIn(BaseModel):
    """The status to move to; allowed next states are listed on the campaign."""

    status: CampaignStatus


class LeadStatesPage(BaseModel):
    counts: dict[str, int]
    leads: list[CampaignLeadPublic]


class ImportOut(BaseModel):
    attempts: int
    leads: int
    leads_added: int
    batch_id: uuid.UUID


# --------------------------------------------------------------------------- campaigns


@router.post("", response_model=CampaignPublic, status_code=status.HTTP_201_CREATED)
def create_campaign(
    body: CampaignCreate, session: SessionDep, principal: CurrentPrincipal
) -> CampaignPublic:
    """Create a draft campaign on ready lead lists (default dispositions are seeded)."""
    require_role(principal, *STAFF_WRITE)
    campaign = service.create_campaign(
        session=session, client_id=principal.acting_client(), campaign_in=body
    )
    return service.campaign_public(session=session, campaign=campaign)


@router.get("", response_model=list[CampaignPublic])
def list_campaigns(
    session: SessionDep,
    status_: Annotated[CampaignStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[CampaignPublic]:
    """The client's campaigns, newest first (filter by status)."""
    rows = service.list_campaigns(session=session, status=status_, limit=limit, offset=offset)
    return [service.campaign_public(session=session, campaign=c) for c in rows]


@router.get("/{campaign_id}", response_model=CampaignPublic)
def get_campaign(campaign: CampaignDep, session: SessionDep) -> CampaignPublic:
    """One campaign with its settings, lists and allowed next states."""
    return service.campaign_public(session=session, campaign=campaign)


@router.patch("/{campaign_id}", response_model=CampaignPublic)
def update_campaign(
    campaign: CampaignDep, body: CampaignUpdate, session: SessionDep, principal: CurrentPrincipal
) -> CampaignPublic:
    """Change settings (lists and questionnaire only while draft)."""
    require_role(principal, *STAFF_WRITE)
    service.update_campaign(session=session, campaign=campaign, campaign_in=body)
    return service.campaign_public(session=session, campaign=campaign)


@router.delete("/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_campaign(
    campaign: CampaignDep, session: SessionDep, principal: CurrentPrincipal
) -> None:
    """Delete a campaign and everything recorded under it (not while dialing)."""
    require_role(principal, Role.operator)
    service.delete_campaign(session=session, campaign=campaign)


_TRANSITION_ROLES: dict[CampaignStatus, tuple[Role, ...]] = {
    CampaignStatus.quoted: (Role.operator, Role.sales),
    CampaignStatus.approved: (Role.operator, Role.client),
    CampaignStatus.cancelled: (Role.operator, Role.client),
}


@router.post("/{campaign_id}/transitions", response_model=CampaignPublic)
def transition_campaign(
    campaign: CampaignDep,
    body: TransitionIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> CampaignPublic:
    """Move the campaign through its lifecycle; 409 lists the allowed next states.

    ``quoted`` and ``approved`` record the deal and are reached through ``POST
    /campaigns/{id}/quote`` and ``/approve`` only (409 here, saying so)."""
    require_role(principal, *_TRANSITION_ROLES.get(body.status, (Role.operator,)))
    check_transition(campaign.status, body.status)
    refuse_deal_move(body.status)
    service.transition_campaign(session=session, campaign=campaign, target=body.status, actor=actor)
    return service.campaign_public(session=session, campaign=campaign)


# --------------------------------------------------------------------------- run control


class RunControlOut(BaseModel):
    """The campaign after the action, and the pacer run dialing it now (resume)."""

    campaign: CampaignPublic
    run: JobPublic | None = None


def _control(
    action: str, campaign: Campaign, session: SessionDep, principal: Any, actor: Any
) -> RunControlOut:
    require_role(principal, Role.operator)
    _, run = control_campaign(
        client_id=campaign.client_id, campaign_id=campaign.id, action=action, actor=actor
    )
    session.refresh(campaign)
    return RunControlOut(
        campaign=service.campaign_public(session=session, campaign=campaign),
        run=JobPublic.model_validate(run) if run is not None else None,
    )


_RUN_CONTROL_409: dict[int | str, dict[str, Any]] = {
    409: {"description": "the action does not apply to the campaign's status"}
}


@router.post("/{campaign_id}/pause", response_model=RunControlOut, responses=_RUN_CONTROL_409)
def pause_campaign(
    campaign: CampaignDep, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> RunControlOut:
    """Pause dialing, in the pilot or the full phase; calls in progress end normally."""
    return _control("pause", campaign, session, principal, actor)


@router.post("/{campaign_id}/resume", response_model=RunControlOut, responses=_RUN_CONTROL_409)
def resume_campaign(
    campaign: CampaignDep, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> RunControlOut:
    """Resume a paused campaign or pilot: it dials again with its stored pacer settings."""
    return _control("resume", campaign, session, principal, actor)


@router.post("/{campaign_id}/stop", response_model=RunControlOut, responses=_RUN_CONTROL_409)
def stop_campaign(
    campaign: CampaignDep, session: SessionDep, principal: CurrentPrincipal, actor: CurrentActor
) -> RunControlOut:
    """Stop dialing: a pilot is finished (pilot_done), a full campaign completed; calls in
    progress end normally and the pacer gives its leases back."""
    return _control("stop", campaign, session, principal, actor)


# --------------------------------------------------------------------------- batches


@router.post(
    "/{campaign_id}/batches", response_model=BatchPublic, status_code=status.HTTP_201_CREATED
)
def create_batch(
    campaign: CampaignDep, body: BatchCreate, session: SessionDep, principal: CurrentPrincipal
) -> Batch:
    """Draw a pilot sample (size, optional stratify_by and seed) or release the full batch."""
    require_role(principal, *STAFF_WRITE)
    return service.create_batch(session=session, campaign=campaign, batch_in=body)


@router.get("/{campaign_id}/batches", response_model=list[BatchPublic])
def list_batches(campaign: CampaignDep, session: SessionDep) -> list[Batch]:
    """The campaign's batches, oldest first."""
    return service.list_batches(session=session, campaign_id=campaign.id)


@router.get("/{campaign_id}/batches/{batch_id}", response_model=BatchPublic)
def get_batch(campaign: CampaignDep, batch_id: uuid.UUID, session: SessionDep) -> Batch:
    """One batch, with its seed and strata."""
    return service.get_batch(session=session, campaign_id=campaign.id, batch_id=batch_id)


# --------------------------------------------------------------------------- dispositions


@router.get("/{campaign_id}/dispositions", response_model=list[DispositionPublic])
def list_dispositions(campaign: CampaignDep, session: SessionDep) -> list[Disposition]:
    """The campaign's disposition vocabulary with flags, retry rules and AAPOR codes."""
    return service.list_dispositions(session=session, campaign_id=campaign.id)


@router.post(
    "/{campaign_id}/dispositions",
    response_model=DispositionPublic,
    status_code=status.HTTP_201_CREATED,
)
def create_disposition(
    campaign: CampaignDep, body: DispositionCreate, session: SessionDep, principal: CurrentPrincipal
) -> Disposition:
    """Add a disposition code."""
    require_role(principal, *STAFF_WRITE, Role.researcher)
    return service.create_disposition(session=session, campaign=campaign, disposition_in=body)


@router.patch("/{campaign_id}/dispositions/{disposition_id}", response_model=DispositionPublic)
def update_disposition(
    campaign: CampaignDep,
    disposition_id: uuid.UUID,
    body: DispositionUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Disposition:
    """Change a disposition's label, flags, retry rule or AAPOR code."""
    require_role(principal, *STAFF_WRITE, Role.researcher)
    return service.update_disposition(
        session=session, campaign=campaign, disposition_id=disposition_id, disposition_in=body
    )


@router.delete(
    "/{campaign_id}/dispositions/{disposition_id}", status_code=status.HTTP_204_NO_CONTENT
)
def delete_disposition(
    campaign: CampaignDep,
    disposition_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> None:
    """Remove a disposition no attempt has used."""
    require_role(principal, *STAFF_WRITE, Role.researcher)
    service.delete_disposition(session=session, campaign=campaign, disposition_id=disposition_id)


# --------------------------------------------------------------------------- lead states


@router.get("/{campaign_id}/leads", response_model=LeadStatesPage)
def list_lead_states(
    campaign: CampaignDep,
    session: SessionDep,
    actor: CurrentActor,
    state: LeadState | None = None,
    batch_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> LeadStatesPage:
    """Lead states (new, scheduled, in progress, final) with counts per state."""
    rows = service.list_campaign_leads(
        session=session,
        campaign_id=campaign.id,
        state=state,
        batch_id=batch_id,
        limit=limit,
        offset=offset,
    )
    record_audit(
        session,
        client_id=campaign.client_id,
        actor=actor,
        action="campaign.leads.read",
        object_type="campaign",
        object_id=campaign.id,
        detail={"rows": len(rows), "state": state.value if state else None},
    )
    return LeadStatesPage(
        counts=service.lead_state_counts(session=session, campaign_id=campaign.id),
        leads=[CampaignLeadPublic.model_validate(r.model_dump()) for r in rows],
    )


@router.get("/{campaign_id}/leads/{lead_id}", response_model=CampaignLeadPublic)
def get_lead_state(
    campaign: CampaignDep, lead_id: uuid.UUID, session: SessionDep, actor: CurrentActor
) -> CampaignLead:
    """One lead's state in the campaign."""
    row = service.get_campaign_lead(session=session, campaign_id=campaign.id, lead_id=lead_id)
    record_audit(
        session,
        client_id=campaign.client_id,
        actor=actor,
        action="campaign.lead.read",
        object_type="lead",
        object_id=lead_id,
        detail={"campaign_id": str(campaign.id)},
    )
    return row


# --------------------------------------------------------------------------- attempts


def _attempt_filter(
    batch_id: uuid.UUID | None = None,
    lead_id: uuid.UUID | None = None,
    disposition: str | None = None,
    outcome: OutcomeClass | None = None,
    status_: Annotated[AttemptStatus | None, Query(alias="status")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> attempts_service.AttemptFilter:
    return attempts_service.AttemptFilter(
        batch_id=batch_id,
        lead_id=lead_id,
        disposition=disposition,
        outcome=outcome,
        status=status_,
        since=since,
        until=until,
    )


FilterDep = Annotated[attempts_service.AttemptFilter, Depends(_attempt_filter)]


@router.get("/{campaign_id}/attempts", response_model=list[CallAttemptPublic])
def list_attempts(
    campaign: CampaignDep,
    flt: FilterDep,
    session: SessionDep,
    actor: CurrentActor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[CallAttempt]:
    """Call attempts, filtered by batch, lead, disposition, outcome, status and time."""
    rows = attempts_service.list_attempts(
        session=session, campaign_id=campaign.id, flt=flt, limit=limit, offset=offset
    )
    record_audit(
        session,
        client_id=campaign.client_id,
        actor=actor,
        action="campaign.attempts.read",
        object_type="campaign",
        object_id=campaign.id,
        detail={"rows": len(rows)},
    )
    return rows


def _stream(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(64 * 1024):
            yield chunk
    finally:
        handle.close()


@router.get("/{campaign_id}/attempts.csv", response_class=StreamingResponse)
def export_attempts(
    campaign: CampaignDep, flt: FilterDep, session: SessionDep, actor: CurrentActor
) -> StreamingResponse:
    """Every matching attempt as CSV (cells neutralised against spreadsheet formulas)."""
    handle, count = attempts_service.export_attempts_csv(
        session=session, campaign_id=campaign.id, flt=flt
    )
    record_audit(
        session,
        client_id=campaign.client_id,
        actor=actor,
        action="campaign.attempts.export",
        object_type="campaign",
        object_id=campaign.id,
        detail={"rows": count},
    )
    return StreamingResponse(
        _stream(handle),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition(f"attempts-{campaign.id}.csv")},
    )


@router.post("/{campaign_id}/attempts/import", response_model=ImportOut)
def import_attempts(
    campaign: CampaignDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    file: Annotated[UploadFile, File(description="CSV: lead_id or phone, attempt_no, ...")],
    batch_id: uuid.UUID | None = None,
) -> ImportOut:
    """Import pilot attempts from another dialer: all rows or none, errors by line number."""
    require_role(principal, *STAFF_WRITE, Role.client)
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        from core.errors import PayloadTooLarge

        raise PayloadTooLarge(
            f"the attempts file is larger than {MAX_IMPORT_BYTES:,} bytes; split it"
        )
    result = attempts_service.import_attempts_csv(
        session=session, campaign=campaign, data=data, batch_id=batch_id
    )
    record_audit(
        session,
        client_id=campaign.client_id,
        actor=actor,
        action="campaign.attempts.import",
        object_type="campaign",
        object_id=campaign.id,
        detail={"attempts": result.attempts, "filename": file.filename},
    )
    return ImportOut(
        attempts=result.attempts,
        leads=result.leads,
        leads_added=result.leads_added,
        batch_id=result.batch_id,
    )
