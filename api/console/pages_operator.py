"""Operator and supervisor pages: campaigns, lifecycle buttons, pacing, batches, attempts, live.

Every page loads its campaign through ``campaigns.service.get_campaign`` on the user's scoped
session (another client's campaign: 404) and changes it through the same service functions
and role rules as the API routes in :mod:`api.routes.campaigns`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import col, select

from api.console.web import Console, ConsoleDep
from api.routes.campaigns import _TRANSITION_ROLES as TRANSITION_ROLES
from api.routes.live import AGENT_LIST_ROLES
from campaigns import attempts as attempts_service
from campaigns import service
from campaigns.deals import approve_campaign_quote, open_quote, refuse_deal_move
from campaigns.lifecycle import ACTIONS, RUN_CONTROL_ACTIONS
from campaigns.models import (
    AttemptStatus,
    BatchCreate,
    BatchKind,
    CallAttempt,
    Campaign,
    CampaignStatus,
    CampaignUpdate,
    OutcomeClass,
    PacingMode,
)
from core.audit import record_audit
from core.db import utcnow
from core.errors import InvalidInput, PermissionDenied
from core.models import Role
from core.security import require_role
from core.users import UserRole
from dialer import live as dialer_live
from dialer.recordings import list_recordings
from dialer.run_control import control_campaign

router = APIRouter()

STAFF = (UserRole.operator, UserRole.supervisor, UserRole.sales)
WRITE_ROLES = (Role.operator, Role.sales)
LIVE_STATUSES = frozenset(
    {
        CampaignStatus.piloting,
        CampaignStatus.pilot_paused,
        CampaignStatus.running,
        CampaignStatus.paused,
    }
)


def live_snapshot(
    console: Console, campaign: Campaign, *, with_agent_list: bool = True
) -> dict[str, Any]:
    """The live metrics (``dialer.live``); the agent list (staff names) only for the roles
    the live API shows it to."""
    snapshot: dict[str, Any] = dialer_live.live_snapshot(
        session=console.session, client_id=campaign.client_id, campaign_id=campaign.id,
        now=utcnow(),
        with_agent_list=with_agent_list and console.principal.role in AGENT_LIST_ROLES,
    )  # fmt: skip
    return snapshot


def _progress(counts: dict[str, int]) -> tuple[int, int]:
    total = sum(counts.values())
    return counts.get("final", 0), total


def _run_control_verb(current: CampaignStatus, target: CampaignStatus) -> str | None:
    """``pause``/``resume``/``stop`` when current -> target is one (in either phase)."""
    return next(
        (verb for verb, moves in RUN_CONTROL_ACTIONS.items() if moves.get(current) is target),
        None,
    )


def _action_name(current: CampaignStatus, target: CampaignStatus) -> str:
    verb = _run_control_verb(current, target)
    if verb in ("pause", "resume"):
        return verb
    # "stop" reads "finish-pilot" in the pilot phase; the press goes through run control
    return next((name for name, status in ACTIONS.items() if status is target), target.value)


def _allowed_buttons(console: Console, campaign: Campaign) -> list[tuple[str, CampaignStatus]]:
    """The lifecycle buttons this user may press now (allowed next state and role)."""
    buttons: list[tuple[str, CampaignStatus]] = []
    for target in service.campaign_public(
        session=console.session, campaign=campaign
    ).allowed_next_states:
        try:
            require_role(console.principal, *TRANSITION_ROLES.get(target, (Role.operator,)))
        except PermissionDenied:
            continue
        if target is CampaignStatus.quoted:
            continue  # quoted on the feasibility report's page, with the quote recorded
        if target is CampaignStatus.approved and open_quote(console.session, campaign.id) is None:
            continue  # nothing to approve yet
        buttons.append((_action_name(campaign.status, target), target))
    return buttons


@router.get("/campaigns")
def campaigns_page(console: ConsoleDep, status: CampaignStatus | None = None) -> Response:
    """Campaigns with state, progress and today's figures."""
    console.require(*STAFF, UserRole.client_user)
    campaigns = service.list_campaigns(session=console.session, status=status, limit=500)
    # today's figures of every dialing campaign in a few grouped queries, not one live
    # snapshot each (the list shows only those figures)
    figures = dialer_live.list_figures(
        session=console.session,
        campaigns=[c for c in campaigns if c.status in LIVE_STATUSES],
        now=utcnow(),
    )
    states = service.lead_state_counts_by_campaign(
        session=console.session, campaign_ids=[c.id for c in campaigns]
    )
    rows = []
    for campaign in campaigns:
        done, total = _progress(states[campaign.id])
        live = figures.get(campaign.id)
        rows.append({"campaign": campaign, "done": done, "total": total, "live": live})
    return console.render("campaigns.html", rows=rows, status=status, statuses=list(CampaignStatus))


@router.get("/campaigns/{campaign_id}")
def campaign_page(console: ConsoleDep, campaign_id: uuid.UUID) -> Response:
    """One campaign: lifecycle buttons, pacing, batches, the live panel."""
    console.require(*STAFF, UserRole.client_user)
    return _campaign_page(console, campaign_id)


def _campaign_page(
    console: Console, campaign_id: uuid.UUID, *, error: str | None = None, status: int = 200
) -> Response:
    campaign = service.get_campaign(session=console.session, campaign_id=campaign_id)
    counts = service.lead_state_counts(session=console.session, campaign_id=campaign.id)
    done, total = _progress(counts)
    return console.render(
        "campaign.html",
        status_code=status,
        campaign=campaign,
        counts=counts,
        done=done,
        total=total,
        buttons=_allowed_buttons(console, campaign),
        batches=service.list_batches(session=console.session, campaign_id=campaign.id),
        live=live_snapshot(console, campaign),
        can_edit=console.has_role(UserRole.operator, UserRole.supervisor, UserRole.sales),
        pacing_modes=list(PacingMode),
        error=error,
    )


@router.post("/campaigns/{campaign_id}/transition")
def campaign_transition(
    console: ConsoleDep, campaign_id: uuid.UUID, status: Annotated[CampaignStatus, Form()]
) -> Response:
    """Press a lifecycle button (the same rule and role check as the API)."""
    campaign = service.get_campaign(session=console.session, campaign_id=campaign_id)
    require_role(console.principal, *TRANSITION_ROLES.get(status, (Role.operator,)))
    verb = _run_control_verb(campaign.status, status)
    if verb is not None:
        # Pause, resume and stop go through run control, as POST /campaigns/{id}/<verb>:
        # resume dials again with the stored pacer settings, stop releases the leases.
        client_id, target_id = campaign.client_id, campaign.id
        console.session.commit()  # the run-control transaction locks the campaign row
        control_campaign(
            client_id=client_id, campaign_id=target_id, action=verb, actor=console.actor
        )
        return RedirectResponse(f"/console/campaigns/{target_id}", status_code=303)
    if status is CampaignStatus.approved:
        # Approve approves the newest open quote, as POST /campaigns/{id}/approve does.
        quote = open_quote(console.session, campaign.id)
        if quote is not None:
            approve_campaign_quote(
                session=console.session,
                campaign=campaign,
                quote_number=quote.quote_number,
                actor=console.actor,
            )
            return RedirectResponse(f"/console/campaigns/{campaign.id}", status_code=303)
    refuse_deal_move(status)  # quoted, or approved with no quote: 409 saying how
    service.transition_campaign(
        session=console.session, campaign=campaign, target=status, actor=console.actor
    )
    return RedirectResponse(f"/console/campaigns/{campaign.id}", status_code=303)


@router.post("/campaigns/{campaign_id}/pacing")
def campaign_pacing(
    console: ConsoleDep,
    campaign_id: uuid.UUID,
    pacing_mode: Annotated[PacingMode, Form()],
    dial_ratio: Annotated[float | None, Form()] = None,
    abandon_rate_cap: Annotated[float | None, Form()] = None,
    max_ring_s: Annotated[int | None, Form()] = None,
) -> Response:
    """Change the pacing settings (allowed while running: the pacer reads them each tick)."""
    campaign = service.get_campaign(session=console.session, campaign_id=campaign_id)
    require_role(console.principal, *WRITE_ROLES)
    params = dict(campaign.pacing_params)
    if dial_ratio is not None:
        params["dial_ratio"] = dial_ratio
    try:
        fields: dict[str, Any] = {"pacing_mode": pacing_mode, "pacing_params": params}
        if abandon_rate_cap is not None:
            fields["abandon_rate_cap"] = abandon_rate_cap / 100
        if max_ring_s is not None:
            fields["max_ring_s"] = max_ring_s
        update = CampaignUpdate.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _campaign_page(console, campaign.id, error=problems, status=422)
    service.update_campaign(session=console.session, campaign=campaign, campaign_in=update)
    return RedirectResponse(f"/console/campaigns/{campaign.id}", status_code=303)


@router.post("/campaigns/{campaign_id}/batches")
def campaign_batch(
    console: ConsoleDep,
    campaign_id: uuid.UUID,
    kind: Annotated[BatchKind, Form()] = BatchKind.pilot,
    size: Annotated[str, Form()] = "",
    stratify_by: Annotated[str, Form()] = "",
    seed: Annotated[str, Form()] = "",
) -> Response:
    """Draw a pilot (size, strata, seed) or release the full batch."""
    campaign = service.get_campaign(session=console.session, campaign_id=campaign_id)
    require_role(console.principal, *WRITE_ROLES)
    try:
        batch_in = BatchCreate(
            kind=kind,
            size=int(size) if size.strip() else None,
            stratify_by=stratify_by.strip() or None,
            seed=int(seed) if seed.strip() else None,
        )
    except (ValidationError, ValueError) as exc:
        detail = (
            "; ".join(str(e["msg"]) for e in exc.errors())
            if isinstance(exc, ValidationError)
            else f"size and seed are whole numbers ({exc})"
        )
        return _campaign_page(console, campaign.id, error=detail, status=422)
    service.create_batch(session=console.session, campaign=campaign, batch_in=batch_in)
    return RedirectResponse(f"/console/campaigns/{campaign.id}", status_code=303)


@router.get("/campaigns/{campaign_id}/recordings")
def recordings_page(console: ConsoleDep, campaign_id: uuid.UUID, month: str = "") -> Response:
    """A month's call recordings, each playable and downloadable, and the month as one ZIP
    (the API's audited downloads)."""
    console.require(*STAFF, UserRole.client_user)
    campaign = service.get_campaign(session=console.session, campaign_id=campaign_id)
    chosen = month.strip() or utcnow().strftime("%Y-%m")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", chosen):
        raise InvalidInput(f"month {month!r} is not a month; write it as 2026-11")
    recordings = list_recordings(session=console.session, campaign_id=campaign.id, month=chosen)
    attempts = {
        a.id: a
        for a in console.session.exec(
            select(CallAttempt).where(col(CallAttempt.id).in_([r.attempt_id for r in recordings]))
        )
    }
    return console.render(
        "recordings.html",
        campaign=campaign,
        month=chosen,
        rows=[(r, attempts.get(r.attempt_id)) for r in recordings],
        total_s=sum(r.duration_s for r in recordings),
    )


@router.get("/campaigns/{campaign_id}/attempts")
def attempts_page(
    console: ConsoleDep,
    campaign_id: uuid.UUID,
    batch_id: Annotated[str, Query()] = "",
    disposition: Annotated[str, Query()] = "",
    outcome: Annotated[str, Query()] = "",
    status: Annotated[str, Query()] = "",
    days: Annotated[int, Query(ge=0, le=366)] = 0,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Call attempts with filters (batch, disposition, outcome, status, recent days)."""
    console.require(*STAFF, UserRole.client_user)
    campaign = service.get_campaign(session=console.session, campaign_id=campaign_id)
    try:
        flt = attempts_service.AttemptFilter(
            batch_id=uuid.UUID(batch_id) if batch_id else None,
            disposition=disposition or None,
            outcome=OutcomeClass(outcome) if outcome else None,
            status=AttemptStatus(status) if status else None,
            since=utcnow() - timedelta(days=days) if days else None,
        )
    except ValueError as exc:
        raise InvalidInput(f"a filter value is not one of the listed choices: {exc}") from exc
    page_size = 100
    rows = attempts_service.list_attempts(
        session=console.session, campaign_id=campaign.id, flt=flt, limit=page_size, offset=offset
    )
    record_audit(
        console.session,
        client_id=campaign.client_id,
        actor=console.actor,
        action="campaign.attempts.read",
        object_type="campaign",
        object_id=campaign.id,
        detail={"rows": len(rows), "console": True},
    )
    query = {
        "batch_id": batch_id,
        "disposition": disposition,
        "outcome": outcome,
        "status": status,
    }
    export_query = "&".join(f"{k}={v}" for k, v in query.items() if v)
    if days:
        since: datetime = utcnow() - timedelta(days=days)
        export_query += (
            ("&" if export_query else "") + "since=" + since.isoformat().replace("+00:00", "Z")
        )
    return console.render(
        "attempts.html",
        campaign=campaign,
        rows=rows,
        batches=service.list_batches(session=console.session, campaign_id=campaign.id),
        dispositions=service.list_dispositions(session=console.session, campaign_id=campaign.id),
        outcomes=list(OutcomeClass),
        statuses=list(AttemptStatus),
        query=query,
        days=days,
        offset=offset,
        page_size=page_size,
        export_query=export_query,
    )
