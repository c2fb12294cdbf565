"""Whether a campaign's pacer can place an agent's own call now, and which lead a typed
number is."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from campaigns.lifecycle import DIALING_STATUSES
from campaigns.models import Campaign, CampaignLead, LeadState
from dialer.leadership import PacerHealth, campaign_pacer
from dialer.models import AgentSeat


def live_pacer_problem(campaign: Campaign, health: PacerHealth | None = None) -> str | None:
    """Why no pacer could place an agent's own call in ``campaign`` now (None: one can).

    The call goes through the campaign's pacer, which holds the gateway and the hopper: it
    must be dialing, led by a pacer (its lease renewed) for real agents, not simulated ones.
    """
    if campaign.status not in DIALING_STATUSES:
        return (
            f"campaign {campaign.name!r} is {campaign.status.value}, so nothing dials it; "
            "resume it (or ask an operator to) to call back"
        )
    stored = campaign.pacer_settings or {}
    if stored.get("agents_mode") == "simulated":
        return (
            f"campaign {campaign.name!r} is dialed with simulated agents; an operator restarts "
            "its pacer with agents_mode 'live' for agents to call"
        )
    health = health or campaign_pacer(campaign.id)
    if not health.healthy:
        return (
            f"no pacer dials campaign {campaign.name!r} now, so nothing can place the call; an "
            "operator starts it (POST /campaigns/{id}/pacer, or the campaign page)"
        )
    return None


def lead_for_number(
    session: Session, seat: AgentSeat, client_id: uuid.UUID, number: str
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(campaign id, campaign lead id) of the waiting lead with the E.164 ``number`` in a
    campaign of ``client_id`` that a live pacer dials for one of the agent's skill groups, so
    that pacer places an agent's manual call to it (with its attempt, by the hopper's rules);
    None when there is none (the dial is then the soft-phone's only)."""
    rows = session.exec(
        select(CampaignLead, Campaign)
        .join(Campaign, col(Campaign.id) == col(CampaignLead.campaign_id))
        .where(
            CampaignLead.client_id == client_id,
            CampaignLead.phone_e164 == number,
            col(CampaignLead.state).in_([LeadState.new, LeadState.scheduled]),
            col(Campaign.status).in_(list(DIALING_STATUSES)),
        )
        .order_by(col(CampaignLead.created_at))
    ).all()
    for row, campaign in rows:
        if campaign.skill_group in seat.skill_groups and live_pacer_problem(campaign) is None:
            return campaign.id, row.id
    return None
