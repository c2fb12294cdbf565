"""The contracts' worked numbers: prices by ramp month, holidays at 3×, VAT, availability tiers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.billing import (
    CONTRACT_PRICES,
    AvailabilityMode,
    SeatInput,
    availability_percent,
    availability_tier,
    late_interest,
    ramp_month,
    seat_lease_calculation,
    service_calculation,
    unit_price_for,
)
from reports.holiday_calendar import add_working_days, is_working_day, statutory_holidays

D = Decimal


def test_contract_unit_price_is_cost_times_coefficient_over_target() -> None:
    assert (D(3000) * D("1.4") / D(3132)).quantize(D("0.01")) == CONTRACT_PRICES[3] == D("1.34")
    assert (D("1.34") / D("0.8")).quantize(D("0.01")) == CONTRACT_PRICES[1]
    assert (D("1.34") / D("0.9")).quantize(D("0.01")) == CONTRACT_PRICES[2]


def test_25_agents_at_target_for_a_month_from_month_3() -> None:
    calls = 25 * 3132  # 18 × 8 × 21.75 per agent
    assert calls == 78_300
    calc = service_calculation(
        ramp=3,
        unit_price=unit_price_for(CONTRACT_PRICES, 3),
        valid_calls_regular=calls,
        valid_calls_holiday=0,
    )
    assert calc.subtotal == D("104922.00")
    assert calc.vat == D("6295.32")
    assert calc.total == D("111217.32")


@pytest.mark.parametrize(
    ("start", "month", "ramp", "price", "share", "amount"),
    [
        (date(2026, 10, 20), date(2026, 10, 1), 1, D("1.68"), D("0.8"), D("105235.20")),
        (date(2026, 10, 20), date(2026, 11, 1), 2, D("1.49"), D("0.9"), D("105000.30")),
        (date(2026, 10, 20), date(2026, 12, 1), 3, D("1.34"), D("1"), D("104922.00")),
        (date(2026, 10, 20), date(2027, 6, 1), 9, D("1.34"), D("1"), D("104922.00")),
    ],
)
def test_ramp_months_settle_the_lower_target_at_the_higher_price(
    start: date, month: date, ramp: int, price: Decimal, share: Decimal, amount: Decimal
) -> None:
    n = ramp_month(start, month)
    assert n == ramp
    calls = int(25 * 3132 * share)  # the settled target of the ramp month
    calc = service_calculation(
        ramp=n,
        unit_price=unit_price_for(CONTRACT_PRICES, n),
        valid_calls_regular=calls,
        valid_calls_holiday=0,
    )
    assert calc.lines[0].unit_price == price
    assert calc.subtotal == amount
    assert calc.vat == (amount * D("0.06")).quantize(D("0.01"))


def test_a_holiday_worked_is_paid_at_three_times_and_bonus_penalty_lines_add_up() -> None:
    calc = service_calculation(
        ramp=3,
        unit_price=D("1.34"),
        valid_calls_regular=70_000,
        valid_calls_holiday=3_600,  # 25 agents worked National Day at target
        adjustments=[("bonus", D("500"), "QA bonus"), ("penalty", D("120.50"), "script error")],
    )
    amounts = {line.key: line.amount for line in calc.lines}
    assert amounts["valid_calls"] == D("93800.00")
    assert amounts["holiday_valid_calls"] == D("14472.00")  # 3600 × 4.02
    assert amounts["bonus"] == D("500.00")
    assert amounts["penalty"] == D("-120.50")
    assert calc.net == D("108651.50")
    assert calc.vat == D("6519.09")
    assert calc.total == D("115170.59")


def test_cn_calendar_separates_statutory_days_from_swapped_rest_days() -> None:
    days = statutory_holidays("CN", 2025)
    assert len(days) == 13  # since 2025: 13 statutory days
    assert date(2025, 10, 1) in days
    assert date(2025, 10, 7) not in days
    assert not is_working_day("CN", date(2025, 10, 7))
    assert is_working_day("CN", date(2025, 9, 28))  # a Sunday worked in exchange
    # issued Tue 30 Sep 2025: Oct 1-8 off, then Thu 9, Fri 10, Sat 11 (a make-up working
    # day), Mon 13, Tue 14
    assert add_working_days("CN", date(2025, 9, 30), 5) == date(2025, 10, 14)


@pytest.mark.parametrize(
    ("availability", "mode", "share"),
    [
        (D("98.0"), AvailabilityMode.whole_points, D("1")),
        (D("96.5"), AvailabilityMode.whole_points, D("0.99")),
        (D("96.5"), AvailabilityMode.pro_rata, D("0.985")),
        (D("90.5"), AvailabilityMode.whole_points, D("0.93")),
        (D("90"), AvailabilityMode.whole_points, D("0.8")),
        (D("89"), AvailabilityMode.whole_points, D("0.8")),
        (D("80"), AvailabilityMode.whole_points, D("0.5")),
        (D("65.01"), AvailabilityMode.whole_points, D("0.5")),
        (D("64"), AvailabilityMode.whole_points, D("0")),
    ],
)
def test_availability_tiers(availability: Decimal, mode: AvailabilityMode, share: Decimal) -> None:
    tier = availability_tier(availability, mode)
    assert tier.pay_share == share
    assert tier.incident_report == (availability <= 90)


def test_availability_formula_and_seat_lease_deduction() -> None:
    # 30-day month: 43 200 minutes; 1 512 minutes down → 96.5 %
    assert availability_percent(D(1512), date(2026, 11, 1)) == D("96.5000")
    seats = [
        SeatInput("inbound", 10, D("600"), 30),
        SeatInput("inbound_outbound", 4, D("900"), 15),  # opened mid-month
    ]
    calc = seat_lease_calculation(month=date(2026, 11, 1), seats=seats, outage_minutes=D(1512))
    assert calc.subtotal == D("6000.00") + D("1800.00")
    assert calc.deduction == D("78.00")  # 1 % off
    assert calc.net == D("7722.00")
    assert calc.total == D("7722.00") + D("463.32")
    assert calc.details["rule"].endswith("(whole points)")
    at_89 = seat_lease_calculation(
        month=date(2026, 11, 1), seats=seats, outage_minutes=D(43_200) * D("0.11")
    )
    assert at_89.net == D("6240.00")  # 80 % of 7 800
    at_64 = seat_lease_calculation(
        month=date(2026, 11, 1), seats=seats, outage_minutes=D(43_200) * D("0.36")
    )
    assert at_64.net == at_64.total == D("0.00")


def test_late_interest_per_contract() -> None:
    due = date(2026, 12, 20)
    assert late_interest(D("111217.32"), due, date(2026, 12, 30), D("0.0005")) == D("556.09")
    assert late_interest(D("7722"), due, date(2026, 12, 22), D("0.003")) == D("46.33")
    assert late_interest(D("7722"), due, date(2026, 12, 20), D("0.003")) == D("0.00")


@given(st.decimals(min_value=0, max_value=100, places=3), st.sampled_from(list(AvailabilityMode)))
def test_lower_availability_never_pays_more(availability: Decimal, mode: AvailabilityMode) -> None:
    lower = max(D(0), availability - D("0.5"))
    assert (
        availability_tier(lower, mode).pay_share <= availability_tier(availability, mode).pay_share
    )
    assert D(0) <= availability_tier(availability, mode).pay_share <= D(1)
