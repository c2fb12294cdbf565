"""Who sees what of a feasibility report: staff see everything, a client key the client view.

The internal report carries the cost side (agent monthly cost, management coefficient, margin,
occupancy), the cost-based prices derived from it and caveats that quote those figures. None
of that may reach a client: ``client_report`` keeps an allow-list of what a client may read
(what the pilot measured, the projection's contacts and conversions, the prices, the verdict),
so a field added to the report later stays internal until it is deliberately listed here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLIENT_PRICE_FIELDS", "client_report"]

CLIENT_REPORT_FIELDS = (
    "schema_version",
    "max_attempts",
    "targets",
    "contact_rate",
    "conversion_rate",
    "verdict",
)
CLIENT_PILOT_FIELDS = (
    "leads",
    "dials",
    "contacts",
    "leads_contacted",
    "conversions",
    "leads_converted",
    "valid_calls",
    "invalid_numbers",
    "list_leads",
    "remaining_leads",
)
CLIENT_PROJECTION_FIELDS = ("leads", "max_attempts", "contacts", "conversions", "valid_calls")
CLIENT_PRICE_FIELDS = ("month_1", "month_2", "steady", "holiday", "steady_with_vat")


def _pick(source: dict[str, Any] | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    if source is None:
        return None
    return {name: source[name] for name in fields if name in source}


def client_report(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a stored report a client key may read: no costs, margin or derivations."""
    if report is None:
        return None
    view = {name: report[name] for name in CLIENT_REPORT_FIELDS if name in report}
    view["pilot"] = _pick(report.get("pilot"), CLIENT_PILOT_FIELDS)
    view["projection"] = _pick(report.get("projection"), CLIENT_PROJECTION_FIELDS)
    quote = report.get("quote") or {}
    view["quote"] = {
        "currency": quote.get("currency"),
        "vat_rate": quote.get("vat_rate"),
        "prices_include_vat": quote.get("prices_include_vat"),
        "per_valid_call": _pick(quote.get("per_valid_call"), CLIENT_PRICE_FIELDS),
    }
    return view
