"""The one place a campaign's unit prices come from.

Order: the campaign's contract override (``ServiceContract.prices``), else the contract's
defaults (1.68 / 1.49 / 1.34). The signed quote plugs in here (see the marked line).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlmodel import Session, select

from reports.billing import CONTRACT_PRICES, money
from reports.exceptions import ReportInputError
from reports.models import ServiceContract

__all__ = ["ramp_prices"]


def ramp_prices(session: Session, campaign_id: uuid.UUID) -> tuple[dict[int, Decimal], str]:
    """Unit prices by ramp month (1, 2, 3 = from month 3) and where they came from."""
    contract = session.exec(
        select(ServiceContract).where(ServiceContract.campaign_id == campaign_id)
    ).first()
    if contract is not None and contract.prices:
        prices = dict(CONTRACT_PRICES)
        for key, value in contract.prices.items():
            if key not in {"1", "2", "3"}:
                raise ReportInputError("contract prices are keyed by ramp month: 1, 2 or 3")
            prices[int(key)] = money(value, f"price of month {key}")
        return prices, "contract override"
    # PLUG-IN POINT for the signed quote: once feasibility.quotes.approved_prices(session,
    # campaign_id) exists, return its prices here (source "signed quote") when it has any.
    return dict(CONTRACT_PRICES), "contract defaults"
