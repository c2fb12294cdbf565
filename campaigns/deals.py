"""The deal in the campaign lifecycle: ``quoted`` carries a recorded quote, ``approved`` its
approval. Thin orchestration of ``feasibility.quotes`` and the lifecycle transition, in one
transaction: nothing is half stored when the transition is refused.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from campaigns.lifecycle import check_transition
from campaigns.models import Campaign, CampaignStatus
from campaigns.service import transition_campaign
from core.audit import Actor
from feasibility.models import DealQuote
from feasibility.quotes import approve_quote, record_quote

__all__ = ["approve_campaign_quote", "quote_campaign"]


def quote_campaign(
    *,
    session: Session,
    campaign: Campaign,
    run_id: uuid.UUID,
    actor: Actor,
    override_reason: str | None = None,
) -> DealQuote:
    """Record the quote and move the campaign to ``quoted``."""
    check_transition(campaign.status, CampaignStatus.quoted)
    quote = record_quote(
        session=session,
        campaign_id=campaign.id,
        client_id=campaign.client_id,
        run_id=run_id,
        actor=actor,
        override_reason=override_reason,
    )
    transition_campaign(
        session=session, campaign=campaign, target=CampaignStatus.quoted, actor=actor
    )
    return quote


def approve_campaign_quote(
    *, session: Session, campaign: Campaign, quote_number: str, actor: Actor
) -> DealQuote:
    """Record the approval of a quote and move the campaign to ``approved``."""
    check_transition(campaign.status, CampaignStatus.approved)
    quote = approve_quote(
        session=session, campaign_id=campaign.id, quote_number=quote_number, actor=actor
    )
    transition_campaign(
        session=session, campaign=campaign, target=CampaignStatus.approved, actor=actor
    )
    return quote
