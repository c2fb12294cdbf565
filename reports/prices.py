"""The one place a campaign's unit prices come from.

Order: the campaign's contract override (``ServiceContract.prices``), else the prices of its
approved quote (``feasibility.quotes.approved_prices``, source "signed quote"), else the
contract's defaults (1.68 / 1.49 / 1.34).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlmodel import Session, select

from feasibility.quotes import approved_prices
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
    signed = approved_prices(session, campaign_id)
    if signed:
        prices = dict(CONTRACT_PRICES)
        for month, amount in signed.items():
            prices[month] = money(amount, f"price of month {month}")
        return prices, "signed quote"
    return dict(CONTRACT_PRICES), "contract defaults"
