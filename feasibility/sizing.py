"""How big a pilot must be: before it (from the list and priors) and after it (dial N more).

The price per valid call is the contract formula over valid calls per agent-hour, a Poisson
rate: its relative 90 % half-width is about z / sqrt(valid calls), z = 1.645. So knowing the
price within +-X % takes (z / X)^2 valid calls, whatever the list; a pilot gives so many valid
calls per lead dialled. Before a pilot the valid calls per lead come from the priors (past
campaigns' contact rate) and the valid-call share assumed; after it, from what it measured.

The verdict side is sequential: the pilot can stop as soon as the verdict is already certain at
90 % (the conversions target below P10 or above P90 of the projection, and the price band on
one side of the maximum price), instead of dialling to a fixed size.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict
from scipy import stats

__all__ = ["PilotPlan", "PilotSizing", "plan_pilot", "size_after_pilot", "valid_calls_needed"]

DEFAULT_PRECISION = 0.10


class PilotPlan(BaseModel):
    """Before a pilot: leads and attempts to dial for the price within +-precision."""

    model_config = ConfigDict(frozen=True)

    precision: float
    level: float
    valid_calls_needed: int
    valid_calls_per_lead: float
    leads: int
    attempts_per_lead: int
    expected_dials: int
    note: str


class PilotSizing(BaseModel):
    """After a pilot: how precise the price is and how many more leads would settle it."""

    model_config = ConfigDict(frozen=True)

    precision_target: float
    price_precision_now: float | None
    more_leads_for_precision: int | None
    verdict_certain: bool
    advice: str


def valid_calls_needed(precision: float, level: float = 0.9) -> int:
    """Valid calls that pin the price per valid call within +-``precision`` at ``level``."""
    if not 0 < precision < 1:
        raise ValueError(f"precision must be between 0 and 1, got {precision}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    return math.ceil((z / precision) ** 2)


def plan_pilot(
    *,
    contact_rate: float,
    valid_call_share: float,
    list_leads: int,
    attempts_per_lead: int,
    dials_per_lead: float | None = None,
    precision: float = DEFAULT_PRECISION,
    level: float = 0.9,
) -> PilotPlan:
    """Leads to dial (and attempts each) so the price per valid call is known to +-precision.

    ``contact_rate`` is the share of leads reached within ``attempts_per_lead`` (from past
    campaigns' priors), ``valid_call_share`` the share of contacts that are valid calls.
    """
    if not 0 < contact_rate <= 1 or not 0 < valid_call_share <= 1:
        raise ValueError("contact_rate and valid_call_share must be in (0, 1]")
    needed = valid_calls_needed(precision, level)
    per_lead = contact_rate * valid_call_share
    leads = math.ceil(needed / per_lead)
    note = ""
    if leads > list_leads:
        note = (
            f"the whole list ({list_leads:,} leads) gives only about "
            f"{list_leads * per_lead:,.0f} valid calls: +-{precision:.0%} is out of reach"
        )
        leads = list_leads
    dials = dials_per_lead if dials_per_lead is not None else float(attempts_per_lead)
    return PilotPlan(
        precision=precision,
        level=level,
        valid_calls_needed=needed,
        valid_calls_per_lead=per_lead,
        leads=leads,
        attempts_per_lead=attempts_per_lead,
        expected_dials=math.ceil(leads * dials),
        note=note,
    )


def size_after_pilot(
    *,
    pilot_leads: int,
    pilot_valid_calls: int,
    remaining_leads: int,
    rate_estimate: float,
    rate_low: float,
    rate_high: float,
    verdict_certain: bool,
    precision: float = DEFAULT_PRECISION,
    level: float = 0.9,
) -> PilotSizing:
    """How precise the pilot's price is now and how many more leads reach +-precision."""
    now = (rate_high - rate_low) / (2 * rate_estimate) if rate_estimate > 0 else None
    needed = valid_calls_needed(precision, level)
    more: int | None
    if pilot_valid_calls == 0 or pilot_leads == 0:
        more = None
    else:
        per_lead = pilot_valid_calls / pilot_leads
        more = max(0, math.ceil(needed / per_lead) - pilot_leads)
    if verdict_certain:
        advice = "stop the pilot: the verdict is already certain at 90 %"
        if more:
            advice += f" (the price itself would need {more:,} more leads for +-{precision:.0%})"
    elif more is None:
        advice = "the pilot has no valid calls yet: dial more leads before pricing"
    elif more == 0:
        advice = f"the price per valid call is known within +-{precision:.0%}: the pilot suffices"
    elif more > remaining_leads:
        advice = (
            f"dial the whole rest of the list ({remaining_leads:,} leads): even that may not "
            f"reach +-{precision:.0%} on the price"
        )
    else:
        advice = (
            f"dial {more:,} more leads to know the price per valid call within +-{precision:.0%}"
        )
    return PilotSizing(
        precision_target=precision,
        price_precision_now=now,
        more_leads_for_precision=more,
        verdict_certain=verdict_certain,
        advice=advice,
    )
