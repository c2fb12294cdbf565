"""The money of the two contracts (pure: no database, no clock).

Service contract (呼叫中心業務外包服務協議 第九條): valid calls (> 15 s) × the unit price of the
ramp month (month 1 → 1.68, month 2 → 1.49, from month 3 → 1.34, or the signed quote's
prices); valid calls on statutory holidays at 3× the unit price; the supervisor's
quality-inspection bonuses and penalties; VAT 6 % shown separately. Late payment: 0.05 % of the
unpaid amount per day (第十五條 3).

Seat lease (坐席租賃服務協議 第三條, 第五條): seats × monthly fee by seat kind, pro-rated by the
days each seat was active, less the availability tier (第一條二.16, 第五條五). Late payment:
3 ‰ per day.

Amounts are :class:`~decimal.Decimal`; every line is rounded to the fen half-up (the invoice
rule, 四捨五入), totals are sums of rounded lines, VAT is rounded once on the net.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from reports.exceptions import ReportInputError

__all__ = [
    "CONTRACT_PRICES",
    "DEFAULT_VAT_RATE",
    "LATE_INTEREST",
    "AvailabilityMode",
    "AvailabilityTier",
    "Calculation",
    "Line",
    "SeatInput",
    "availability_percent",
    "availability_tier",
    "days_late",
    "fen",
    "late_interest",
    "money",
    "ramp_month",
    "seat_lease_calculation",
    "service_calculation",
    "to_fen",
    "unit_price_for",
]

CENT = Decimal("0.01")
# The contract's prices by ramp month (3 = month 3 and after): 3000 × 1.4 ÷ 3132 = 1.34,
# settled at 80 % and 90 % of target in months 1 and 2 (1.34 ÷ 0.8, 1.34 ÷ 0.9).
CONTRACT_PRICES: Mapping[int, Decimal] = {
    1: Decimal("1.68"),
    2: Decimal("1.49"),
    3: Decimal("1.34"),
}
DEFAULT_VAT_RATE = Decimal("0.06")
DEFAULT_HOLIDAY_MULTIPLIER = Decimal("3")
LATE_INTEREST: Mapping[str, Decimal] = {
    "service": Decimal("0.0005"),  # 萬分之五 per day
    "seat_lease": Decimal("0.003"),  # 3 ‰ per day
}
AVAILABILITY_TARGET = Decimal("98")


def money(value: Any, what: str = "amount") -> Decimal:
    """A decimal amount from a string or number; a clear input error otherwise."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ReportInputError(
            f"{what} must be a decimal number such as 1.34, not {value!r}"
        ) from None
    if not amount.is_finite():
        raise ReportInputError(f"{what} must be a finite number")
    return amount


def fen(amount: Decimal) -> Decimal:
    """Rounded to the fen, half-up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_fen(amount: Decimal) -> int:
    return int(fen(amount) * 100)


def ramp_month(starts_on: date, month: date) -> int:
    """1 for the contract's first calendar month, 2 for the next, and so on."""
    n = (month.year - starts_on.year) * 12 + month.month - starts_on.month + 1
    if n < 1:
        raise ReportInputError(
            f"the statement month {month:%Y-%m} is before the contract starts ({starts_on})"
        )
    return n


def unit_price_for(prices: Mapping[int, Decimal], n: int) -> Decimal:
    """The unit price of ramp month ``n`` (month 3's price from then on)."""
    return prices[min(n, 3)]


@dataclass(frozen=True)
class Line:
    """One statement line: what, how many, at what price, the rounded amount."""

    key: str
    label: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    def as_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "label": self.label,
            "quantity": str(self.quantity),
            "unit_price": str(self.unit_price),
            "amount": str(self.amount),
        }


@dataclass(frozen=True)
class Calculation:
    """A statement's lines and totals, and how they were reached."""

    lines: list[Line]
    subtotal: Decimal
    deduction: Decimal
    net: Decimal
    vat: Decimal
    total: Decimal
    details: dict[str, Any] = field(default_factory=dict)


def _totals(
    lines: list[Line], deduction: Decimal, vat_rate: Decimal, details: dict[str, Any]
) -> Calculation:
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    net = subtotal - deduction
    vat = fen(net * vat_rate)
    return Calculation(
        lines=lines,
        subtotal=subtotal,
        deduction=deduction,
        net=net,
        vat=vat,
        total=net + vat,
        details={**details, "vat_rate": str(vat_rate)},
    )


def service_calculation(
    *,
    ramp: int,
    unit_price: Decimal,
    valid_calls_regular: int,
    valid_calls_holiday: int,
    adjustments: Sequence[tuple[str, Decimal, str]] = (),
    holiday_multiplier: Decimal = DEFAULT_HOLIDAY_MULTIPLIER,
    vat_rate: Decimal = DEFAULT_VAT_RATE,
    labels: Mapping[str, str] | None = None,
) -> Calculation:
    """Valid calls × price, holiday calls × price × 3, bonuses (+) and penalties (−), VAT."""
    text = {
        "regular": "Valid calls (> 15 s)",
        "holiday": "Valid calls on statutory holidays (3×)",
        **(labels or {}),
    }
    holiday_price = unit_price * holiday_multiplier
    lines = [
        Line(
            "valid_calls",
            text["regular"],
            Decimal(valid_calls_regular),
            unit_price,
            fen(unit_price * valid_calls_regular),
        )
    ]
    if valid_calls_holiday:
        lines.append(
            Line(
                "holiday_valid_calls",
                text["holiday"],
                Decimal(valid_calls_holiday),
                holiday_price,
                fen(holiday_price * valid_calls_holiday),
            )
        )
    for kind, amount, reason in adjustments:
        if amount <= 0:
            raise ReportInputError("a bonus or penalty amount must be positive")
        signed = amount if kind == "bonus" else -amount
        lines.append(Line(kind, reason, Decimal(1), signed, fen(signed)))
    details = {
        "ramp_month": ramp,
        "unit_price": str(unit_price),
        "holiday_unit_price": str(holiday_price),
        "valid_calls": valid_calls_regular + valid_calls_holiday,
    }
    return _totals(lines, Decimal("0.00"), vat_rate, details)


class AvailabilityMode(StrEnum):
    whole_points = "whole_points"  # each *whole* point below 98 % takes 1 % off
    pro_rata = "pro_rata"  # each point, fractions included, takes 1 % off


@dataclass(frozen=True)
class AvailabilityTier:
    """What the month's availability does to the bill."""

    availability: Decimal  # percent, e.g. 96.5
    pay_share: Decimal  # 1, 0.99, 0.8, 0.5 or 0
    rule: str
    incident_report: bool


def availability_percent(outage_minutes: Decimal, month: date) -> Decimal:
    """(1 − outage minutes ÷ (days in month × 24 × 60)) × 100 %, to 4 decimals."""
    days = calendar.monthrange(month.year, month.month)[1]
    total = Decimal(days * 24 * 60)
    minutes = min(max(outage_minutes, Decimal(0)), total)
    return ((1 - minutes / total) * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def availability_tier(
    availability: Decimal, mode: AvailabilityMode = AvailabilityMode.whole_points
) -> AvailabilityTier:
    """The contract's tiers: ≥ 98 % pays all; each point below takes 1 % off; ≤ 90 % pays
    80 % (and needs an incident report); ≤ 80 % pays 50 %; ≤ 65 % pays nothing."""
    if availability <= 65:
        return AvailabilityTier(availability, Decimal(0), "≤ 65 %: nothing payable", True)
    if availability <= 80:
        return AvailabilityTier(availability, Decimal("0.5"), "≤ 80 %: 50 % payable", True)
    if availability <= 90:
        return AvailabilityTier(availability, Decimal("0.8"), "≤ 90 %: 80 % payable", True)
    if availability >= AVAILABILITY_TARGET:
        return AvailabilityTier(availability, Decimal(1), "≥ 98 %: no deduction", False)
    shortfall = AVAILABILITY_TARGET - availability
    if mode is AvailabilityMode.whole_points:
        points = shortfall.to_integral_value(rounding=ROUND_FLOOR)
        rule = f"{points} whole point(s) below 98 %: {points} % off (whole points)"
    else:
        points = shortfall
        rule = f"{points} point(s) below 98 %: {points} % off (pro rata)"
    return AvailabilityTier(availability, 1 - points / 100, rule, False)


@dataclass(frozen=True)
class SeatInput:
    """Seats of one kind and fee, active for ``active_days`` of the month."""

    seat_kind: str
    seats: int
    monthly_fee: Decimal
    active_days: int


def seat_lease_calculation(
    *,
    month: date,
    seats: Sequence[SeatInput],
    outage_minutes: Decimal,
    mode: AvailabilityMode = AvailabilityMode.whole_points,
    vat_rate: Decimal = DEFAULT_VAT_RATE,
    labels: Mapping[str, str] | None = None,
) -> Calculation:
    """Seats × fee × active days ÷ days in month, less the availability tier, VAT."""
    days = calendar.monthrange(month.year, month.month)[1]
    lines = []
    for item in seats:
        if item.active_days <= 0:
            continue
        share = Decimal(item.active_days) / Decimal(days)
        quantity = Decimal(item.seats) * share
        label = (labels or {}).get(item.seat_kind, item.seat_kind)
        lines.append(
            Line(
                f"seats_{item.seat_kind}",
                f"{label} × {item.seats} ({item.active_days}/{days} d)",
                quantity.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                item.monthly_fee,
                fen(item.monthly_fee * item.seats * share),
            )
        )
    availability = availability_percent(outage_minutes, month)
    tier = availability_tier(availability, mode)
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    deduction = fen(subtotal * (1 - tier.pay_share))
    details = {
        "outage_minutes": str(outage_minutes),
        "minutes_in_month": days * 24 * 60,
        "availability_percent": str(availability),
        "availability_mode": mode.value,
        "pay_share": str(tier.pay_share),
        "rule": tier.rule,
        "incident_report_required": tier.incident_report,
    }
    return _totals(lines, deduction, vat_rate, details)


def days_late(due_on: date, paid_on: date) -> int:
    return max(0, (paid_on - due_on).days)


def late_interest(unpaid: Decimal, due_on: date, paid_on: date, rate_per_day: Decimal) -> Decimal:
    """Unpaid amount × daily rate × days after the due date, to the fen."""
    return fen(unpaid * rate_per_day * days_late(due_on, paid_on))
