"""The contract's pricing model reproduced exactly, its caveats, and the other schemes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feasibility.inputs import Costs
from feasibility.quote import contract_caveats, contract_prices, money


def test_contract_worked_example_exactly() -> None:
    """DOMAIN.md: 3000 x 1.4 / 3132 = 1.34; ramp 1.68 / 1.49; holiday 3x; VAT 6 % excluded."""
    prices = contract_prices(Costs())
    assert prices.monthly_target == 3132  # 18 x 8 x 21.75
    assert prices.steady == 1.34
    assert prices.month_1 == 1.68  # 1.34 / 0.8 = 1.675, rounded half up
    assert prices.month_2 == 1.49  # 1.34 / 0.9
    assert prices.holiday == 4.02  # 3 x 1.34
    assert prices.steady_with_vat == 1.42  # 1.34 x 1.06
    # Caveats: real working days and wage-only holiday premium.
    assert prices.steady_at_actual_working_days == 1.41
    assert prices.holiday_cost_based == 3.26  # (3000 x 3 + 3000 x 0.4) / 3132


def test_money_rounds_half_up_like_an_invoice() -> None:
    assert money(Decimal("1.675")) == Decimal("1.68")
    assert money(1.675) == Decimal("1.68")  # via str, not the binary float 1.67499...
    assert money("1.665") == Decimal("1.67")


def test_caveats_state_the_numbers_beside_the_contract() -> None:
    costs = Costs()
    caveats = " ".join(contract_caveats(costs, contract_prices(costs), measured_rate=12.5))
    for figure in (
        "21.75",
        "20.67",
        "2976",
        "1.41",
        "1.68",
        "1.49",
        "4.02",
        "3.26",
        "6%",
        "not dials",
        "12.5",
    ):
        assert figure in caveats


def test_margin_raises_every_contract_price() -> None:
    base = contract_prices(Costs())
    marked = contract_prices(Costs(margin=0.1))
    assert marked.steady == pytest.approx(1.48)
    assert marked.month_1 > base.month_1
    assert marked.holiday > base.holiday


@given(
    cost=st.floats(1000, 20000),
    coefficient=st.floats(1.0, 3.0),
    rate=st.floats(5, 40),
    ramp1=st.floats(0.5, 1.0),
)
def test_contract_prices_are_consistent(
    cost: float, coefficient: float, rate: float, ramp1: float
) -> None:
    costs = Costs(
        agent_monthly_cost=cost,
        management_coefficient=coefficient,
        valid_calls_per_agent_hour=rate,
        ramp_month_1=ramp1,
    )
    prices = contract_prices(costs)
    exact = cost * coefficient / (rate * 8 * 21.75)
    assert abs(prices.steady - exact) <= 0.005 + 1e-9
    assert prices.month_1 >= prices.steady
    # Equal when the coefficient is 1, up to the contract rounding the unit price first.
    assert prices.holiday >= prices.holiday_cost_based - 0.015
    assert prices.steady_with_vat >= prices.steady


def test_nonsense_costs_are_rejected() -> None:
    with pytest.raises(ValueError, match="agent_monthly_cost"):
        Costs(agent_monthly_cost=-1)
    with pytest.raises(ValueError, match="ramp_month_1"):
        Costs(ramp_month_1=1.5)
    with pytest.raises(ValueError, match="vat_rate"):
        Costs(vat_rate=1.2)
