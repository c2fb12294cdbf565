"""A campaign's pacer: start it, read and edit its stored settings while it dials."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import status
from pydantic import BaseModel, Field

from api.deps import CurrentPrincipal, SessionDep
from api.router import Router
from campaigns.models import Campaign
from core.db import get_or_404
from core.models import JobPublic, JobRecord, Role
from core.security import require_role
from dialer.run_control import (
    PacerSettings,
    pacer_settings_of,
    start_dialing,
    update_pacer_settings,
)

router = Router(tags=["dialer"])


class PacerStart(PacerSettings):
    """The pacer settings to store, and the campaign clock (simulated mode)."""

    clock_start: datetime | None = Field(
        default=None, description="default: now (simulated mode; live mode runs on the clock)"
    )


class PacerSettingsOut(BaseModel):
    """The stored settings; ``active`` says whether the campaign dials when it may."""

    settings: PacerSettings | None
    active: bool


@router.post(
    "/campaigns/{campaign_id}/pacer",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {"description": "the campaign is not dialing, or has no agents for live mode"},
        422: {"description": "a field is invalid for the chosen agents_mode"},
    },
)
def start_pacer(
    campaign_id: uuid.UUID, body: PacerStart, session: SessionDep, principal: CurrentPrincipal
) -> JobRecord:
    """Store the pacer settings and dial the piloting or running campaign until it is paused,
    stopped or out of leads (or for ``duration_s``); returns the run (a job).

    ``agents_mode`` ``live`` dials for the real agent seats of the campaign's skill group
    that serve its client (409 naming what to set up when there are none, or the campaign
    has no skill group); they take calls once signed in and ready. Starting again while a
    run is on updates the settings and returns that run.
    """
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.operator)
    settings = PacerSettings.model_validate(body.model_dump(exclude={"clock_start"}))
    return start_dialing(
        client_id=campaign.client_id,
        campaign_id=campaign.id,
        settings=settings,
        clock_start=body.clock_start,
    )


@router.get("/campaigns/{campaign_id}/pacer", response_model=PacerSettingsOut)
def get_pacer(
    campaign_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> PacerSettingsOut:
    """The campaign's stored pacer settings."""
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.operator)
    return PacerSettingsOut(
        settings=pacer_settings_of(campaign),
        active=bool((campaign.pacer_settings or {}).get("active")),
    )


@router.patch(
    "/campaigns/{campaign_id}/pacer",
    response_model=PacerSettingsOut,
    responses={422: {"description": "a setting is invalid; the detail names it"}},
)
def patch_pacer(
    campaign_id: uuid.UUID, body: dict[str, Any], session: SessionDep, principal: CurrentPrincipal
) -> PacerSettingsOut:
    """Change some pacer settings, also while the campaign dials: the pacer lets its calls
    finish and dials with the new settings within seconds."""
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.operator)
    updated = update_pacer_settings(
        client_id=campaign.client_id, campaign_id=campaign.id, changes=body
    )
    session.refresh(campaign)
    return PacerSettingsOut(
        settings=updated, active=bool((campaign.pacer_settings or {}).get("active"))
    )
