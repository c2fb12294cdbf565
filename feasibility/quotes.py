"""The deal on record: quotes given for a campaign and their approval; approved prices.

``record_quote`` turns a ready feasibility report into a numbered quote at its recommended
prices per ramp month; a report whose verdict is NO GO is only quoted with an explicit
override reason. ``approve_quote`` records who approved which quote (number, prices) and when.
``approved_prices`` is what the monthly statement bills: the prices of the campaign's approved
quote (``reports.prices.ramp_prices`` reads it).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from sqlmodel import Session, col, select

from core.audit import Actor, record_audit
from core.db import get_or_404, utcnow
from core.errors import Conflict, InvalidInput
from feasibility.client_quote import DEFAULT_VALIDITY_DAYS
from feasibility.models import DealQuote, FeasibilityRun, RunStatus
from feasibility.report import FeasibilityReport, Verdict

__all__ = ["approve_quote", "approved_prices", "record_quote"]


def record_quote(
    *,
    session: Session,
    campaign_id: uuid.UUID,
    client_id: uuid.UUID,
    run_id: uuid.UUID,
    actor: Actor,
    override_reason: str | None = None,
    validity_days: int = DEFAULT_VALIDITY_DAYS,
) -> DealQuote:
    """A numbered quote at the report's recommended prices; NO GO needs an override reason."""
    run: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="feasibility report")
    if run.status is not RunStatus.ready or run.report is None:
        raise Conflict(f"the report is {run.status.value}; quote from a ready report")
    if run.campaign_id is not None and run.campaign_id != campaign_id:
        raise InvalidInput("that feasibility report belongs to another campaign")
    report = FeasibilityReport.model_validate(run.report)
    reason = (override_reason or "").strip() or None
    if report.verdict is Verdict.NO_GO and reason is None:
        raise Conflict(
            "the report's verdict is NO GO; quoting it needs an explicit override: send "
            "override_reason saying why the deal goes ahead"
        )
    recommended = report.quote.recommended
    today = utcnow().date()
    quote = DealQuote(
        client_id=client_id,
        campaign_id=campaign_id,
        run_id=run.id,
        quote_number=f"PD-{today:%Y%m%d}-{uuid.uuid4().hex[:6].upper()}",
        currency=report.quote.currency,
        vat_rate=str(report.quote.vat_rate),
        prices={
            "1": f"{recommended.month_1:.2f}",
            "2": f"{recommended.month_2:.2f}",
            "3": f"{recommended.steady:.2f}",
        },
        valid_until=today + timedelta(days=validity_days),
        verdict=report.verdict.value,
        override_reason=reason,
        quoted_by=actor.name,
    )
    session.add(quote)
    record_audit(
        session,
        client_id=client_id,
        actor=actor,
        action="deal.quote",
        object_type="campaign",
        object_id=campaign_id,
        detail={
            "quote_number": quote.quote_number,
            "prices": quote.prices,
            "verdict": quote.verdict,
            "override_reason": reason,
        },
    )
    session.flush()
    return quote


def approve_quote(
    *,
    session: Session,
    campaign_id: uuid.UUID,
    quote_number: str,
    actor: Actor,
    today: date | None = None,
) -> DealQuote:
    """Record who approved which quote at which prices; an expired quote cannot be approved."""
    quote = session.exec(
        select(DealQuote).where(
            DealQuote.campaign_id == campaign_id, DealQuote.quote_number == quote_number
        )
    ).first()
    if quote is None:
        raise InvalidInput(
            f"the campaign has no quote {quote_number!r}; list them with GET "
            "/campaigns/{id}/quotes"
        )
    if quote.approved_at is not None:
        raise Conflict(f"quote {quote_number} was already approved by {quote.approved_by}")
    day = today or utcnow().date()
    if quote.valid_until < day:
        raise Conflict(
            f"quote {quote_number} expired on {quote.valid_until.isoformat()}; issue a new one"
        )
    quote.approved_by = actor.name
    quote.approved_at = utcnow()
    session.add(quote)
    record_audit(
        session,
        client_id=quote.client_id,
        actor=actor,
        action="deal.approve",
        object_type="campaign",
        object_id=campaign_id,
        detail={"quote_number": quote.quote_number, "prices": quote.prices},
    )
    session.flush()
    return quote


def approved_prices(session: Session, campaign_id: uuid.UUID) -> dict[int, Decimal] | None:
    """Unit prices by ramp month (1, 2, 3) of the campaign's latest approved quote, if any."""
    quote = session.exec(
        select(DealQuote)
        .where(DealQuote.campaign_id == campaign_id, col(DealQuote.approved_at).is_not(None))
        .order_by(col(DealQuote.approved_at).desc())
    ).first()
    if quote is None:
        return None
    return {int(month): Decimal(price) for month, price in quote.prices.items()}
