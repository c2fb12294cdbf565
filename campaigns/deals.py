"""The deal in the campaign lifecycle: ``quoted`` carries a recorded quote, ``approved`` its
approval. Thin orchestration of ``feasibility.quotes`` and the lifecycle transition, in one
transaction: nothing is half stored when the transition is refused.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from campaigns.lifecycle import check_transition
from campaigns.models import Campaign, CampaignStatus
from campaigns.service import transition_campaign
from core.audit import Actor
from core.errors import Conflict
from feasibility.models import DealQuote
from feasibility.quotes import approve_quote, record_quote

__all__ = [
    "approve_campaign_quote",
    "open_quote",
    "quote_campaign",
    "refuse_deal_move",
]

#: The lifecycle states that record the deal, and how to reach each of them instead.
_DEAL_MOVES = {
    CampaignStatus.quoted: (
        "a campaign is quoted by recording a quote: POST /campaigns/{id}/quote with the run_id "
        "of a ready feasibility report (console: Record this quote on the report's page)"
    ),
    CampaignStatus.approved: (
        "a campaign is approved by approving one of its quotes: POST /campaigns/{id}/approve "
        "with the quote_number (GET /campaigns/{id}/quotes lists them)"
    ),
}


def refuse_deal_move(target: CampaignStatus) -> None:
    """A plain lifecycle move (``POST /transitions``, the CLI) never records a deal: ``quoted``
    and ``approved`` are reached only with a quote on record (409 saying how)."""
    how = _DEAL_MOVES.get(target)
    if how is not None:
        raise Conflict(how, extra={"target_status": target.value})


def open_quote(session: Session, campaign_id: uuid.UUID) -> DealQuote | None:
    """The campaign's newest quote not yet approved (what an Approve button approves)."""
    stmt = (
        select(DealQuote)
        .where(DealQuote.campaign_id == campaign_id, col(DealQuote.approved_at).is_(None))
        .order_by(col(DealQuote.quoted_at).desc())
    )
    return session.exec(stmt).first()


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
