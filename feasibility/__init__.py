"""Pilot-call feasibility modeler and quote engine (pure domain layer: no database, no clock).

From a pilot's call attempts and the full lead list, ``build_report`` estimates contact and
conversion rates with small-sample honest intervals, fits the attempts curve with heterogeneous
leads, breaks rates down by lead attribute, projects the rest of the list with P10/P50/P90 by
simulation, sizes the operation, prices the job under several schemes (the outsourcing
contract's model reproduced exactly) and gives a go / no-go verdict with readable reasons.
``render_html`` turns the report into a self-contained HTML page.

Modules: ``inputs`` (validation, targets, costs), ``estimators`` (intervals, priors),
``modeling`` (beta-geometric and logistic models), ``projection``, ``segments``,
``operations`` (Erlang B staffing), ``quote``, ``report``, ``html``, ``cli``, ``synthetic``
(test and demo data). Errors: ``feasibility.exceptions``.
"""

from feasibility.exceptions import CostError, FeasibilityError, InputError, ModelError
from feasibility.inputs import (
    Costs,
    Disposition,
    PastCampaign,
    Targets,
    attempts_from_records,
    leads_from_records,
    load_costs,
    load_targets,
    read_attempts_csv,
    read_leads_csv,
    validate_inputs,
)
from feasibility.quote import contract_prices
from feasibility.report import FeasibilityReport, Verdict, build_report

__all__ = [
    "CostError",
    "Costs",
    "Disposition",
    "FeasibilityError",
    "FeasibilityReport",
    "InputError",
    "ModelError",
    "PastCampaign",
    "Targets",
    "Verdict",
    "attempts_from_records",
    "build_report",
    "contract_prices",
    "leads_from_records",
    "load_costs",
    "load_targets",
    "read_attempts_csv",
    "read_leads_csv",
    "render_html",
    "validate_inputs",
]


def __getattr__(name: str) -> object:
    # matplotlib is imported only when HTML is rendered, so the API and jobs start fast.
    if name == "render_html":
        from feasibility.html import render_html

        return render_html
    raise AttributeError(f"module 'feasibility' has no attribute {name!r}")
