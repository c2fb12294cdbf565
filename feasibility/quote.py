"""Unit prices under several schemes, the contract model reproduced exactly, and its caveats.

The contract model (DOMAIN.md): unit price per valid call = agent monthly cost x management
coefficient / (valid calls per agent-hour x hours per day x days per month), rounded to the fen:
3000 x 1.4 / 3132 = 1.34 CNY. Ramp months settle a lower share of target, so they divide the
steady price: 1.34 / 0.8 = 1.68, 1.34 / 0.9 = 1.49. Holidays worked pay 3x the unit price. All
prices exclude VAT (6 %), which is shown separately. Arithmetic is decimal with half-up
rounding, as on an invoice, so the worked example comes out to the fen.

Beside the contract figures, ``contract_caveats`` states what a careful reader should know
(21.75 pay days vs about 20.67 working days, the ramp raising prices, the holiday convention
vs a cost-based holiday price, valid calls not dials, VAT).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict

from feasibility.estimators import poisson_rate_interval
from feasibility.inputs import Costs
from feasibility.projection import Projection, RatioBand

__all__ = [
    "ContractPrices",
    "PilotBasedPrices",
    "PriceBand",
    "Quote",
    "RecommendedPrice",
    "build_quote",
    "contract_caveats",
    "contract_prices",
    "money",
]

CENT = Decimal("0.01")


def money(value: Decimal | float | str) -> Decimal:
    """Round to the fen (0.01), half up, as on an invoice."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _d(value: float) -> Decimal:
    return Decimal(str(value))


class ContractPrices(BaseModel):
    """Per-valid-call prices of the contract model, before VAT."""

    model_config = ConfigDict(frozen=True)

    monthly_target: float
    month_1: float
    month_2: float
    steady: float
    holiday: float
    holiday_cost_based: float
    steady_with_vat: float
    steady_at_actual_working_days: float


class PriceBand(BaseModel):
    """A price with its band (low / high), before VAT; None when it cannot be computed."""

    model_config = ConfigDict(frozen=True)

    estimate: float | None
    low: float | None
    high: float | None
    basis: str


class PilotBasedPrices(BaseModel):
    """Prices recomputed from what the pilot measured."""

    model_config = ConfigDict(frozen=True)

    valid_calls_per_agent_hour: PriceBand
    agent_hours_source: str
    per_valid_call: PriceBand
    per_contact: PriceBand
    per_conversion: PriceBand


class RecommendedPrice(BaseModel):
    """The one per-valid-call price to quote, per ramp month, and why the others were not."""

    model_config = ConfigDict(frozen=True)

    basis: str
    month_1: float
    month_2: float
    steady: float
    steady_with_vat: float
    reason: str
    alternatives: list[str]


class Quote(BaseModel):
    """All unit prices, before VAT, with the VAT rate, the recommended price and caveats."""

    model_config = ConfigDict(frozen=True)

    currency: str = "CNY"
    vat_rate: float
    prices_include_vat: bool = False
    per_valid_call: ContractPrices
    per_agent_hour: float
    per_seat_month: float
    per_contact: PriceBand
    per_conversion: PriceBand
    pilot_based: PilotBasedPrices
    recommended: RecommendedPrice
    caveats: list[str]


def contract_prices(costs: Costs) -> ContractPrices:
    """The contract's per-valid-call prices: month 1, month 2, steady, holiday."""
    markup = 1 + _d(costs.margin)
    monthly_cost = _d(costs.agent_monthly_cost) * _d(costs.management_coefficient) * markup
    target = (
        _d(costs.valid_calls_per_agent_hour) * _d(costs.hours_per_day) * _d(costs.days_per_month)
    )
    steady = money(monthly_cost / target)
    # The contract applies ramp and holiday factors to the rounded unit price.
    month_1 = money(steady / _d(costs.ramp_month_1))
    month_2 = money(steady / _d(costs.ramp_month_2))
    holiday = money(steady * _d(costs.holiday_multiplier))
    wages = _d(costs.agent_monthly_cost)
    overhead = wages * (_d(costs.management_coefficient) - 1)
    holiday_cost_based = money((wages * _d(costs.holiday_multiplier) + overhead) * markup / target)
    actual_target = (
        _d(costs.valid_calls_per_agent_hour)
        * _d(costs.hours_per_day)
        * _d(costs.actual_working_days_per_month)
    )
    return ContractPrices(
        monthly_target=float(target),
        month_1=float(month_1),
        month_2=float(month_2),
        steady=float(steady),
        holiday=float(holiday),
        holiday_cost_based=float(holiday_cost_based),
        steady_with_vat=float(money(steady * (1 + _d(costs.vat_rate)))),
        steady_at_actual_working_days=float(money(monthly_cost / actual_target)),
    )


def contract_caveats(
    costs: Costs, prices: ContractPrices, measured_rate: float | None = None
) -> list[str]:
    """Caveats to show beside the contract figures, with this quote's numbers."""
    actual_target = (
        costs.valid_calls_per_agent_hour * costs.hours_per_day * costs.actual_working_days_per_month
    )
    uplift = prices.steady_at_actual_working_days / prices.steady - 1 if prices.steady else 0.0
    caveats = [
        f"{costs.days_per_month:g} days a month is the pay-calculation day count, which includes "
        f"paid public holidays; with about {costs.actual_working_days_per_month:g} real working "
        f"days the target is {actual_target:.0f} valid calls per agent-month and the same costs "
        f"give {prices.steady_at_actual_working_days:.2f} per valid call ({uplift:+.0%}).",
        f"The ramp settles a lower target, so it raises the unit price in months 1-2: "
        f"{prices.month_1:.2f} and {prices.month_2:.2f} instead of {prices.steady:.2f}.",
        f"Holidays: the contract multiplies the whole unit price by "
        f"{costs.holiday_multiplier:g} ({prices.holiday:.2f}), which also multiplies overhead "
        f"and margin; multiplying only wages gives {prices.holiday_cost_based:.2f}.",
        f"The target of {costs.valid_calls_per_agent_hour:g} per agent-hour counts valid calls "
        f"(talk over {costs.valid_call_min_talk_s:g} s), not dials.",
        f"Prices exclude {costs.vat_rate:.0%} VAT: {prices.steady:.2f} is "
        f"{prices.steady_with_vat:.2f} with VAT.",
    ]
    if measured_rate is not None:
        caveats[3] += f" The pilot measured {measured_rate:.1f} valid calls per agent-hour."
    return caveats


def recommend_price(
    costs: Costs,
    prices: ContractPrices,
    measured_rate: PriceBand,
    pilot_price: PriceBand,
    per_contact: PriceBand,
    per_conversion: PriceBand,
) -> RecommendedPrice:
    """One price to quote per valid call: the contract's unless the pilot rules its target out.

    The contract price assumes ``valid_calls_per_agent_hour``. If the pilot's 90 % interval
    of valid calls per agent-hour still reaches that target, the contract price stands (the
    pilot does not contradict it). If even the interval's top is below the target, quoting the
    contract price would lose money at the productivity measured: the pilot-based price is
    quoted instead, with the same ramp factors.
    """
    target = costs.valid_calls_per_agent_hour
    high = measured_rate.high
    alternatives: list[str] = []
    use_pilot = pilot_price.estimate is not None and high is not None and high < target
    if use_pilot:
        assert pilot_price.estimate is not None
        steady = money(pilot_price.estimate)
        basis = "pilot-based"
        reason = (
            f"the pilot achieved {measured_rate.estimate:.1f} valid calls per agent-hour (90 % "
            f"interval up to {high:.1f}), below the contract's {target:g}: the contract price "
            f"{prices.steady:.2f} would not cover the cost at the rate measured"
        )
        alternatives.append(
            f"contract price {prices.steady:.2f}: assumes {target:g} valid calls per agent-hour, "
            "which the pilot rules out"
        )
    else:
        steady = money(prices.steady)
        basis = "contract"
        measured = (
            f"the pilot's {measured_rate.estimate:.1f} valid calls per agent-hour (90 % interval "
            f"up to {high:.1f}) is consistent with"
            if high is not None
            else "the pilot measured no agent time, so nothing contradicts"
        )
        reason = f"{measured} the contract's target of {target:g}"
        if pilot_price.estimate is not None:
            alternatives.append(
                f"{pilot_price.estimate:.2f} at the pilot's measured rate: a small-sample "
                "estimate of productivity, shown for reference; not quoted while the pilot's "
                "interval includes the contract target"
            )
    if per_contact.estimate is not None:
        alternatives.append(
            f"per contact {per_contact.estimate:.2f} or per conversion "
            f"{per_conversion.estimate if per_conversion.estimate is not None else '-'}: other "
            "schemes, if the client prefers to pay for outcomes"
        )
    return RecommendedPrice(
        basis=basis,
        month_1=float(money(steady / _d(costs.ramp_month_1))),
        month_2=float(money(steady / _d(costs.ramp_month_2))),
        steady=float(steady),
        steady_with_vat=float(money(steady * (1 + _d(costs.vat_rate)))),
        reason=reason,
        alternatives=alternatives,
    )


def _scale(band: RatioBand, unit: Decimal, extra: Decimal, basis: str) -> PriceBand:
    def price(value: float | None) -> float | None:
        return None if value is None else float(money(_d(value) * unit + extra))

    return PriceBand(
        estimate=price(band.p50), low=price(band.p10), high=price(band.p90), basis=basis
    )


def build_quote(
    costs: Costs,
    projection: Projection,
    *,
    pilot_valid_calls: int,
    pilot_agent_hours: float,
    agent_hours_measured: bool,
    mean_talk_s: float,
    contacts_per_conversion: float | None,
) -> Quote:
    """Every pricing scheme from the costs, the pilot's measurements and the projection."""
    prices = contract_prices(costs)
    markup = 1 + _d(costs.margin)
    monthly_cost = _d(costs.agent_monthly_cost) * _d(costs.management_coefficient) * markup
    monthly_hours = _d(costs.hours_per_day) * _d(costs.days_per_month)
    per_agent_hour = monthly_cost / monthly_hours
    telecom_per_contact = _d(mean_talk_s) / 60 * _d(costs.telecom_cost_per_minute) * markup
    telecom_per_conversion = (
        telecom_per_contact * _d(contacts_per_conversion)
        if contacts_per_conversion is not None
        else Decimal(0)
    )
    basis = "projected agent-hours per unit x price per agent-hour + telecom"
    per_contact = _scale(
        projection.agent_hours_per_contact, per_agent_hour, telecom_per_contact, basis
    )
    per_conversion = _scale(
        projection.agent_hours_per_conversion, per_agent_hour, telecom_per_conversion, basis
    )

    rate, low, high = poisson_rate_interval(pilot_valid_calls, pilot_agent_hours)

    def per_valid_call(hourly: float) -> float | None:
        if hourly <= 0:
            return None
        return float(money(monthly_cost / (_d(hourly) * monthly_hours)))

    measured_rate = PriceBand(
        estimate=rate,
        low=low,
        high=high,
        basis="pilot valid calls / pilot agent-hours (Garwood interval)",
    )
    pilot_per_valid_call = PriceBand(
        estimate=per_valid_call(rate),
        low=per_valid_call(high),
        high=per_valid_call(low),
        basis="contract formula with the valid calls per agent-hour the pilot achieved",
    )
    pilot_based = PilotBasedPrices(
        valid_calls_per_agent_hour=measured_rate,
        agent_hours_source="measured"
        if agent_hours_measured
        else ("estimated from talk, wrap-up and dial time at the target occupancy"),
        per_valid_call=pilot_per_valid_call,
        per_contact=per_contact,
        per_conversion=per_conversion,
    )
    recommended = recommend_price(
        costs, prices, measured_rate, pilot_per_valid_call, per_contact, per_conversion
    )
    return Quote(
        vat_rate=costs.vat_rate,
        recommended=recommended,
        per_valid_call=prices,
        per_agent_hour=float(money(per_agent_hour)),
        per_seat_month=float(money(monthly_cost)),
        per_contact=per_contact,
        per_conversion=per_conversion,
        pilot_based=pilot_based,
        caveats=contract_caveats(costs, prices, measured_rate=rate),
    )
