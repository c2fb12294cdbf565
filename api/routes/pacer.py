"""Start a campaign's pacer: the elected dial loop, for simulated agents or the real seats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import CurrentPrincipal, SessionDep
from campaigns.lifecycle import DIALING_STATUSES
from campaigns.models import Campaign
from core.db import get_or_404
from core.errors import Conflict, InvalidInput
from core.jobs import submit_job
from core.models import JobPublic, JobRecord, Role
from core.security import require_role
from dialer.attended import AgentsMode, check_live_campaign
from dialer.scenario import AmdPolicy

router = APIRouter(tags=["dialer"])


class PacerStart(BaseModel):
    """Who takes the calls, the simulated world around the campaign, and the campaign clock."""

    agents_mode: AgentsMode = Field(
        default=AgentsMode.SIMULATED,
        description=(
            "simulated: simulated agents on the simulator (the demo); live: the campaign's "
            "real agent seats (its skill group, serving its client), in real time"
        ),
    )
    agents: int = Field(default=5, ge=1, le=500, description="simulated agents (simulated mode)")
    duration_s: float = Field(default=8 * 3600, gt=0, le=24 * 3600)
    answer_probability: float = Field(default=0.3, ge=0, le=1)
    machine_probability: float = Field(default=0.1, ge=0, le=1)
    conversion_probability: float = Field(
        default=0.15, ge=0, le=1, description="simulated mode; live agents give dispositions"
    )
    seed: int = 0
    speed: float | None = Field(
        default=None, gt=0, description="simulated s per wall s (simulated mode only)"
    )
    clock_start: datetime | None = Field(
        default=None, description="default: now (simulated mode; live mode runs on the clock)"
    )
    amd_policy: AmdPolicy = Field(
        default=AmdPolicy.HANG_UP, description="live mode: what to do with answering machines"
    )
    default_disposition: str = Field(
        default="callback_requested",
        max_length=40,
        description=(
            "live mode: the disposition of a connected call whose agent gave none before the "
            "wrap-up ended (one of the campaign's codes)"
        ),
    )


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
    """Queue a pacer for a piloting or running campaign (one dials at a time; others wait).

    ``agents_mode`` ``live`` dials for the real agent seats of the campaign's skill group
    that serve its client (409 naming what to set up when there are none, or the campaign
    has no skill group); they take calls once signed in and ready.
    """
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.operator)
    if campaign.status not in DIALING_STATUSES:
        raise Conflict(
            f"the campaign is {campaign.status.value}; start the pilot or the campaign first",
            extra={"campaign_status": campaign.status.value},
        )
    now = datetime.now(UTC)
    if body.agents_mode is AgentsMode.LIVE:
        if body.speed is not None and body.speed != 1.0:
            raise InvalidInput(
                "speed applies to simulated agents; live mode runs in real time (leave it out)",
                extra={"field": "speed"},
            )
        check_live_campaign(
            session=session, campaign=campaign, default_disposition=body.default_disposition
        )
        config = body.model_dump(
            mode="json",
            include={
                "duration_s",
                "answer_probability",
                "machine_probability",
                "seed",
                "amd_policy",
                "default_disposition",
            },
        )
    else:
        config = body.model_dump(
            exclude={"clock_start", "agents_mode", "amd_policy", "default_disposition"}
        )
    clock_start = body.clock_start or now
    return submit_job(
        client_id=campaign.client_id,
        kind="pacer",
        handler="dialer.jobs:pace_campaign",
        params={
            "campaign_id": str(campaign_id),
            "agents_mode": body.agents_mode.value,
            "config": config,
            "clock_start": clock_start.isoformat(),
            "clock_wall_start": now.timestamp(),
        },
    )
