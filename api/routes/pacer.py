"""Start a campaign's pacer: the elected dial loop, on the simulated gateway and agents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import CurrentPrincipal, SessionDep
from campaigns.lifecycle import DIALING_STATUSES
from campaigns.models import Campaign
from core.db import get_or_404
from core.errors import Conflict
from core.jobs import submit_job
from core.models import JobPublic, JobRecord, Role
from core.security import require_role

router = APIRouter(tags=["dialer"])


class PacerStart(BaseModel):
    """The simulated world around the campaign, and the campaign clock."""

    agents: int = Field(default=5, ge=1, le=500)
    duration_s: float = Field(default=8 * 3600, gt=0, le=24 * 3600)
    answer_probability: float = Field(default=0.3, ge=0, le=1)
    machine_probability: float = Field(default=0.1, ge=0, le=1)
    conversion_probability: float = Field(default=0.15, ge=0, le=1)
    seed: int = 0
    speed: float | None = Field(default=None, gt=0, description="simulated s per wall s")
    clock_start: datetime | None = Field(default=None, description="default: now")


@router.post(
    "/campaigns/{campaign_id}/pacer",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def start_pacer(
    campaign_id: uuid.UUID, body: PacerStart, session: SessionDep, principal: CurrentPrincipal
) -> JobRecord:
    """Queue a pacer for a piloting or running campaign (one dials at a time; others wait)."""
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    require_role(principal, Role.operator)
    if campaign.status not in DIALING_STATUSES:
        raise Conflict(
            f"the campaign is {campaign.status.value}; start the pilot or the campaign first",
            extra={"campaign_status": campaign.status.value},
        )
    clock_start = body.clock_start or datetime.now(UTC)
    config = body.model_dump(exclude={"clock_start"})
    return submit_job(
        client_id=campaign.client_id,
        kind="pacer",
        handler="dialer.jobs:pace_campaign",
        params={
            "campaign_id": str(campaign_id),
            "config": config,
            "clock_start": clock_start.isoformat(),
            "clock_wall_start": datetime.now(UTC).timestamp(),
        },
    )
