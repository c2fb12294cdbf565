"""An agent's own callbacks: the open ones, and dialling a due one by hand."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from campaigns.lifecycle import DIALING_STATUSES, FINAL_STATUSES
from campaigns.models import Campaign, CampaignLead, Lead, LeadState, PacingMode
from campaigns.rules import candidate_zones, is_callable_at, parse_holidays, parse_windows
from core.db import utcnow
from core.errors import NotFound
from dialer.agent_service._common import CallbackNotDialable, ClientScope
from dialer.agent_service.actions import ActionOutcome, apply_agent_action
from dialer.agent_service.commands import Dial
from dialer.agent_service.crud import get_agent
from dialer.agent_service.pacers import live_pacer_problem
from dialer.models import AgentSeat


@dataclass(frozen=True)
class ScheduledCallback:
    """One open callback an agent scheduled to itself, with what its page shows."""

    campaign_lead: CampaignLead
    lead: Lead
    campaign: Campaign
    zones: tuple[str, ...]
    due: bool
    # the campaign's calling window is open in every zone of the number now
    callable_now: bool
    # the dial loop calls this lead itself at its time and puts it through to the agent
    dialer_calls_it: bool
    # a pacer dials the campaign for real agents now: it can place the agent's own call
    pacer_live: bool = False


def scheduled_callbacks(
    *, session: Session, seat: AgentSeat, now: datetime | None = None, limit: int = 200
) -> list[ScheduledCallback]:
    """The open callbacks scheduled to ``seat`` in campaigns not stopped or cancelled, soonest
    first (the session's tenancy filter hides other clients' leads)."""
    now = now or utcnow()
    rows = session.exec(
        select(CampaignLead, Lead, Campaign)
        .join(Lead, col(Lead.id) == col(CampaignLead.lead_id))
        .join(Campaign, col(Campaign.id) == col(CampaignLead.campaign_id))
        .where(
            CampaignLead.callback_agent == seat.agent_code,
            col(CampaignLead.callback_at).is_not(None),
            col(CampaignLead.state).in_([LeadState.new, LeadState.scheduled]),
            col(Campaign.status).not_in(FINAL_STATUSES),  # a stopped campaign calls nobody
        )
        .order_by(col(CampaignLead.callback_at))
        .limit(limit)
    ).all()
    result = []
    live: dict[uuid.UUID, bool] = {}
    for row, lead, campaign in rows:
        if campaign.id not in live:
            live[campaign.id] = live_pacer_problem(campaign) is None
        zones = candidate_zones(row.zones_key, campaign.fallback_timezone or "UTC")
        windows = parse_windows(campaign.calling_windows)
        holidays = parse_holidays(campaign.holidays)
        result.append(
            ScheduledCallback(
                campaign_lead=row,
                lead=lead,
                campaign=campaign,
                zones=zones,
                due=row.callback_at is not None and row.callback_at <= now,
                callable_now=is_callable_at(now, zones, windows, holidays),
                dialer_calls_it=campaign.status in DIALING_STATUSES
                and campaign.pacing_mode is not PacingMode.preview,
                pacer_live=live[campaign.id],
            )
        )
    return result


def dial_callback(
    *,
    session: Session,
    agent_id: uuid.UUID,
    campaign_lead_id: uuid.UUID,
    now: datetime | None = None,
    client_scope: ClientScope = None,
) -> ActionOutcome:
    """Dial a due callback of the agent's by hand: the agent goes to ``dialing`` (a
    :class:`Dial` command: the number read as the cleaner reads it, never a do-not-call
    number) and the campaign's pacer places the call within a tick, by the hopper's rules
    (:func:`campaigns.hopper.lease_lead`), writing its attempt; the answer goes to the agent.
    Refused (409, nothing changed) before its time, outside the campaign's calling window,
    and when no pacer dials the campaign for real agents (:func:`live_pacer_problem`)."""
    now = now or utcnow()
    seat = get_agent(session=session, agent_id=agent_id, client_scope=client_scope)
    found = next(
        (
            c
            for c in scheduled_callbacks(session=session, seat=seat, now=now)
            if c.campaign_lead.id == campaign_lead_id
        ),
        None,
    )
    if found is None:
        raise NotFound("no open callback of yours with this id; the list shows your callbacks")
    if not found.due:
        raise CallbackNotDialable("the callback is not due yet; dial it at the agreed time")
    if not found.callable_now:
        raise CallbackNotDialable(
            "the campaign's calling window is closed for this number now ("
            + ", ".join(found.zones)
            + "); call back when it opens"
        )
    problem = live_pacer_problem(found.campaign)
    if problem is not None:
        raise CallbackNotDialable(problem)
    return apply_agent_action(
        session=session,
        agent_id=seat.id,
        command=Dial(
            number=found.lead.phone_e164,
            client_id=found.campaign_lead.client_id,
            lead_id=str(found.lead.id),
            campaign_lead=(found.campaign.id, found.campaign_lead.id),
        ),
        client_scope=client_scope,
    )
