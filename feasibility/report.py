"""The feasibility report: pilot figures, estimates, curve, segments, projection, quote, verdict.

``build_report`` is the one entry point: give it the pilot attempts and the full lead list
(data frames or plain records), optional targets, costs and history, and a seed; it returns a
``FeasibilityReport`` whose ``model_dump(mode="json")`` is stable. Same inputs and seed give
the same numbers: every random draw comes from generators seeded from ``seed``, and nothing
reads the clock.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from feasibility.estimators import (
    BetaPrior,
    RateEstimate,
    fit_beta_prior,
    mean_interval,
    rate_estimate,
)
from feasibility.exceptions import CostError
from feasibility.inputs import (
    ANSWERED,
    AttemptsInput,
    Costs,
    Disposition,
    LeadsInput,
    PastCampaign,
    PilotInputs,
    Targets,
    costs_warnings,
    validate_inputs,
)
from feasibility.operations import Operations, plan_operations
from feasibility.projection import (
    AttemptsCurvePoint,
    PilotModels,
    Projection,
    attempts_curve,
    fit_pilot_models,
    project_fan,
    recommend_max_attempts,
)
from feasibility.quote import PriceBand, Quote, build_quote, contract_prices
from feasibility.segments import SegmentTable, segment_tables
from feasibility.selection import ModelSelection
from feasibility.sizing import PilotSizing, size_after_pilot

__all__ = [
    "REPORT_SCHEMA",
    "FeasibilityReport",
    "ModelSummary",
    "PilotCounts",
    "Priors",
    "TalkTime",
    "Verdict",
    "build_report",
    "decide_verdict",
]

REPORT_SCHEMA = "pilotdial.feasibility/1"
CURVE_ATTEMPTS = 15
MIN_CONTACTS = 30


class Verdict(StrEnum):
    """Go / no-go decision."""

    GO = "go"
    GO_WITH_CONDITIONS = "go_with_conditions"
    NO_GO = "no_go"


class PilotCounts(BaseModel):
    """What the pilot did."""

    model_config = ConfigDict(frozen=True)

    leads: int
    dials: int
    contacts: int
    leads_contacted: int
    conversions: int
    leads_converted: int
    valid_calls: int
    invalid_numbers: int
    max_attempt_no: int
    list_leads: int
    remaining_leads: int
    agent_hours: float
    agent_hours_measured: bool


class TalkTime(BaseModel):
    """Talk time of contacts, seconds."""

    model_config = ConfigDict(frozen=True)

    mean: float | None
    low: float | None
    high: float | None
    median: float | None
    p90: float | None


class Priors(BaseModel):
    """Empirical-Bayes priors fitted to past campaigns, when history was given."""

    model_config = ConfigDict(frozen=True)

    campaigns: int
    contact: BetaPrior
    conversion: BetaPrior


class ModelSummary(BaseModel):
    """Which attributes the models used and the fitted heterogeneity."""

    model_config = ConfigDict(frozen=True)

    attributes_used: list[str]
    attributes_skipped: dict[str, str]
    attributes_post_dial: dict[str, str]
    conversion_model: ModelSelection
    contact_heterogeneity_phi: float
    contact_leads_fitted: int
    conversion_contacts_fitted: int
    simulation_draws: int


class FeasibilityReport(BaseModel):
    """Everything sales needs to decide and quote; stable JSON via ``model_dump(mode='json')``."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = REPORT_SCHEMA
    seed: int
    inputs_digest: str
    max_attempts: int
    targets: Targets
    costs: Costs
    pilot: PilotCounts
    contact_rate: RateEstimate
    connect_rate: RateEstimate
    contact_per_dial: RateEstimate
    conversion_rate: RateEstimate
    valid_call_share: RateEstimate
    talk_time_s: TalkTime
    priors: Priors | None
    attempts_curve: list[AttemptsCurvePoint]
    recommended_max_attempts: int
    dials_per_lead_at_recommended: float
    segments: list[SegmentTable]
    projection: Projection
    projection_at_recommended: Projection
    projection_by_attempts: list[Projection]
    operations: Operations
    quote: Quote
    verdict: Verdict
    provisional_leads_scheduled: int
    reasons: list[str]
    sizing: PilotSizing
    warnings: list[str]
    model: ModelSummary


def _digest(
    inputs: PilotInputs,
    targets: Targets,
    costs: Costs,
    history: Sequence[PastCampaign],
    max_attempts: int,
    seed: int,
) -> str:
    hasher = hashlib.sha256()
    attempts = inputs.attempts.copy()
    attempts["started_at"] = attempts["started_at"].astype(str)
    hasher.update(attempts.to_csv(index=False).encode())
    hasher.update(inputs.leads.sort_values("lead_id").to_csv(index=False).encode())
    payload = {
        "targets": targets.model_dump(mode="json"),
        "costs": costs.model_dump(mode="json"),
        "history": [h.model_dump(mode="json") for h in history],
        "max_attempts": max_attempts,
        "seed": seed,
    }
    hasher.update(json.dumps(payload, sort_keys=True).encode())
    return hasher.hexdigest()


def _pilot_agent_hours(attempts: pd.DataFrame, costs: Costs) -> tuple[float, bool]:
    if costs.pilot_agent_hours is not None:
        return costs.pilot_agent_hours, True
    contact = attempts["disposition"] == Disposition.CONTACT.value
    busy = (
        attempts.loc[contact, "talk_s"].sum()
        + contact.sum() * costs.wrap_up_s
        + (~contact).sum() * costs.noncontact_agent_s
    )
    return max(float(busy) / 3600 / costs.occupancy, 1e-6), False


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def decide_verdict(
    *,
    targets: Targets,
    pilot: PilotCounts,
    projection: Projection,
    projection_at_recommended: Projection,
    recommended_max_attempts: int,
    operations: Operations,
    quote: Quote,
) -> tuple[Verdict, list[str]]:
    """Go / go with conditions / no go, with reasons a salesperson can read."""
    blockers: list[str] = []
    conditions: list[str] = []
    fine: list[str] = []
    if pilot.contacts == 0:
        blockers.append(f"the pilot reached no one in {_fmt(pilot.dials)} dials")
    elif pilot.leads_contacted < MIN_CONTACTS:
        conditions.append(
            f"the pilot reached only {pilot.leads_contacted} leads (< {MIN_CONTACTS}): extend it "
            "before committing"
        )
    if pilot.remaining_leads == 0:
        conditions.append("no leads are left to dial after the pilot")

    if targets.conversions is not None:
        wanted = targets.conversions
        have = pilot.leads_converted
        band = projection.conversions
        p10, p50, p90 = (have + band.p10, have + band.p50, have + band.p90)
        label = f"conversions (pilot + rest at {projection.max_attempts} attempts)"
        if p10 >= wanted:
            fine.append(f"P10 of {label} is {_fmt(p10)} >= {_fmt(wanted)} wanted")
        elif p50 >= wanted:
            conditions.append(
                f"P10 of {label} is {_fmt(p10)} < {_fmt(wanted)} wanted (P50 {_fmt(p50)})"
            )
        else:
            alternative = have + projection_at_recommended.conversions.p50
            message = f"P50 of {label} is {_fmt(p50)} < {_fmt(wanted)} wanted (P90 {_fmt(p90)})"
            if recommended_max_attempts != projection.max_attempts and alternative >= wanted:
                conditions.append(
                    message + f"; with {recommended_max_attempts} attempts the "
                    f"P50 is {_fmt(alternative)}"
                )
            else:
                blockers.append(message)

    deadline = operations.deadline_days
    seats = operations.seats_available
    p50_plan, p90_plan = operations.plans[0], operations.plans[1]
    if deadline is not None and seats is not None:
        need50, need90 = p50_plan.seats_for_deadline, p90_plan.seats_for_deadline
        assert need50 is not None
        assert need90 is not None
        days = p50_plan.days_with_seats
        days_text = f"; with {seats} it takes {days:.1f} days" if days is not None else ""
        if need50 > seats:
            blockers.append(
                f"needs {need50} seats for {deadline:g} days, {seats} available{days_text}"
            )
        elif need90 > seats:
            conditions.append(
                f"needs {need50} seats for {deadline:g} days at P50 but {need90} at P90, "
                f"{seats} available"
            )
        else:
            fine.append(
                f"needs {need90} seats for {deadline:g} days even at P90, {seats} available"
            )
    elif deadline is not None:
        fine.append(
            f"needs {p50_plan.seats_for_deadline} seats (P90 "
            f"{p90_plan.seats_for_deadline}) to finish in {deadline:g} days"
        )
    elif seats is not None and p50_plan.days_with_seats is not None:
        fine.append(
            f"takes {p50_plan.days_with_seats:.1f} days with {seats} seats (P90 "
            f"{(p90_plan.days_with_seats or 0):.1f})"
        )

    if targets.max_price is not None:
        scheme = targets.max_price_scheme
        price = _price_for_scheme(quote, scheme)
        limit = targets.max_price
        if price.estimate is None:
            blockers.append(
                f"no price per {scheme.replace('_', ' ')} can be computed from the pilot"
            )
        elif price.estimate > limit:
            blockers.append(
                f"price per {scheme.replace('_', ' ')} is {price.estimate:.2f} > "
                f"{limit:.2f} maximum"
            )
        elif price.high is None or price.high > limit:
            high = "unbounded" if price.high is None else f"{price.high:.2f}"
            conditions.append(
                f"price per {scheme.replace('_', ' ')} is {price.estimate:.2f} but "
                f"could reach {high} > {limit:.2f} maximum"
            )
        else:
            fine.append(
                f"price per {scheme.replace('_', ' ')} is {price.estimate:.2f} (band "
                f"{price.low:.2f}-{price.high:.2f}) <= {limit:.2f} maximum"
            )

    if not (targets.conversions or targets.deadline_days or targets.seats or targets.max_price):
        fine.append("no targets given: the verdict only checks the pilot's quality")
    if blockers:
        return Verdict.NO_GO, blockers + conditions + fine
    if conditions:
        return Verdict.GO_WITH_CONDITIONS, conditions + fine
    return Verdict.GO, fine


def _price_for_scheme(quote: Quote, scheme: str) -> PriceBand:
    if scheme == "valid_call":
        # The price quoted is the recommended one; the pilot's productivity band says how far
        # the cost behind it could move.
        pilot = quote.pilot_based.per_valid_call
        steady = quote.recommended.steady
        return PriceBand(
            estimate=steady,
            low=min(steady, pilot.low) if pilot.low is not None else steady,
            high=max(steady, pilot.high) if pilot.high is not None else None,
            basis=quote.recommended.basis,
        )
    if scheme == "contact":
        return quote.per_contact
    if scheme == "conversion":
        return quote.per_conversion
    value = quote.per_agent_hour if scheme == "agent_hour" else quote.per_seat_month
    return PriceBand(estimate=value, low=value, high=value, basis="cost-based")


def _fit_priors(history: Sequence[PastCampaign]) -> Priors | None:
    if not history:
        return None
    contact = fit_beta_prior(
        [h.contacted for h in history],
        [h.leads for h in history],
        source=f"{len(history)} past campaigns",
    )
    usable = [h for h in history if h.contacted > 0]
    conversion = fit_beta_prior(
        [h.conversions for h in usable],
        [h.contacted for h in usable],
        source=f"{len(usable)} past campaigns",
    )
    return Priors(campaigns=len(history), contact=contact, conversion=conversion)


def build_report(
    attempts: AttemptsInput,
    leads: LeadsInput,
    *,
    targets: Targets | None = None,
    costs: Costs | None = None,
    max_attempts: int | None = None,
    seed: int = 0,
    history: Sequence[PastCampaign] | None = None,
    draws: int = 1000,
) -> FeasibilityReport:
    """Validate the inputs, fit the models, project the rest of the list and quote."""
    targets = targets or Targets()
    costs = costs or Costs()
    history = list(history or [])
    inputs = validate_inputs(attempts, leads)
    warnings = list(inputs.warnings) + costs_warnings(costs)
    frame = inputs.attempts
    pilot_max = int(frame["attempt_no"].max())
    limit = targets.attempt_limit
    if max_attempts is None:
        max_attempts = pilot_max if limit is None else min(pilot_max, limit)
    elif max_attempts < 1:
        raise CostError(f"max attempts must be >= 1, got {max_attempts}")
    elif limit is not None and max_attempts > limit:
        raise CostError(
            f"max attempts {max_attempts} is more than the campaign allows ({limit}): project "
            f"at most {limit} or raise the campaign's max_attempts first"
        )
    if max_attempts > pilot_max:
        warnings.append(
            f"projecting {max_attempts} attempts but the pilot made at most "
            f"{pilot_max}: reach beyond attempt {pilot_max} is extrapolated"
        )
    if pilot_max < 3:
        warnings.append(
            "the pilot made fewer than 3 attempts per lead: the attempts curve "
            "rests on the model's heterogeneity prior beyond that"
        )
    priors = _fit_priors(history)
    models = fit_pilot_models(
        frame,
        inputs.leads,
        costs=costs,
        conversion_prior=priors.conversion if priors else None,
        seed=seed,
    )
    for column, why in models.excluded_post_dial.items():
        warnings.append(f"lead attribute '{column}' is not used by the models: {why}")
    pilot_ids = inputs.pilot_lead_ids
    rest = inputs.leads[~inputs.leads["lead_id"].isin(pilot_ids)].reset_index(drop=True)
    population = rest if len(rest) else inputs.leads

    pilot = _pilot_counts(inputs, models, costs)
    contact_attempts = int((frame["disposition"] == Disposition.CONTACT.value).sum())
    answered = int(frame["disposition"].isin({d.value for d in ANSWERED}).sum())
    talk = models.talk_s
    mean, low, high = mean_interval(talk.tolist(), seed=seed)
    talk_time = TalkTime(
        mean=_none_if_nan(mean),
        low=_none_if_nan(low),
        high=_none_if_nan(high),
        median=float(np.median(talk)) if talk.size else None,
        p90=float(np.quantile(talk, 0.9)) if talk.size else None,
    )

    curve_max = max(CURVE_ATTEMPTS, max_attempts)
    curve = attempts_curve(models, population, max_attempt=curve_max, seed=seed)
    valid_share = rate_estimate(models.valid_calls, models.contact_attempts)
    quote_probe = _steady_price(costs)
    agent_second = (
        costs.agent_monthly_cost
        * costs.management_coefficient
        / (costs.hours_per_day * costs.days_per_month * 3600)
    )
    recommended = recommend_max_attempts(
        curve,
        value_per_contact=quote_probe * valid_share.estimate,
        cost_per_dial=max(costs.noncontact_agent_s * agent_second, 1e-9),
    )
    if limit is not None and recommended > limit:
        warnings.append(
            f"more attempts would still pay ({recommended}), but the campaign allows {limit}: "
            f"the recommendation is {limit}"
        )
        recommended = limit
    # One set of parameter draws for the whole fan (caps 1..max): smooth and cheaper.
    caps = list(range(1, max(max_attempts, recommended) + 1))
    by_attempts = project_fan(models, rest, attempts=caps, costs=costs, seed=seed, draws=draws)
    projection = by_attempts[max_attempts - 1]
    at_recommended = by_attempts[recommended - 1]
    operations = plan_operations(
        projection.busy_hours,
        costs=costs,
        deadline_days=targets.deadline_days,
        seats_available=targets.seats,
    )
    contacts_per_conversion = (
        pilot.leads_contacted / pilot.leads_converted if pilot.leads_converted else None
    )
    quote = build_quote(
        costs,
        projection,
        pilot_valid_calls=pilot.valid_calls,
        pilot_agent_hours=pilot.agent_hours,
        agent_hours_measured=pilot.agent_hours_measured,
        mean_talk_s=talk_time.mean if talk_time.mean is not None else 0.0,
        contacts_per_conversion=contacts_per_conversion,
    )
    verdict, reasons = decide_verdict(
        targets=targets,
        pilot=pilot,
        projection=projection,
        projection_at_recommended=at_recommended,
        recommended_max_attempts=recommended,
        operations=operations,
        quote=quote,
    )
    if operations.note:
        warnings.append(operations.note)
    scheduled = _still_scheduled(inputs)
    if scheduled:
        reasons.insert(
            0,
            f"provisional: {scheduled:,} pilot leads still scheduled; the verdict can change "
            "once they are dialled",
        )
    rate = quote.pilot_based.valid_calls_per_agent_hour
    sizing = size_after_pilot(
        pilot_leads=pilot.leads,
        pilot_valid_calls=pilot.valid_calls,
        remaining_leads=pilot.remaining_leads,
        rate_estimate=rate.estimate or 0.0,
        rate_low=rate.low or 0.0,
        rate_high=rate.high or 0.0,
        verdict_certain=_verdict_certain(targets, pilot, projection, quote),
        precision=targets.price_precision,
    )
    return FeasibilityReport(
        seed=seed,
        inputs_digest=_digest(inputs, targets, costs, history, max_attempts, seed),
        max_attempts=max_attempts,
        targets=targets,
        costs=costs,
        pilot=pilot,
        contact_rate=rate_estimate(
            pilot.leads_contacted, pilot.leads, prior=priors.contact if priors else None
        ),
        connect_rate=rate_estimate(answered, pilot.dials),
        contact_per_dial=rate_estimate(contact_attempts, pilot.dials),
        conversion_rate=rate_estimate(
            pilot.leads_converted,
            pilot.leads_contacted,
            prior=priors.conversion if priors else None,
        ),
        valid_call_share=valid_share,
        talk_time_s=talk_time,
        priors=priors,
        attempts_curve=curve,
        recommended_max_attempts=recommended,
        dials_per_lead_at_recommended=curve[recommended - 1].dials_per_lead,
        segments=segment_tables(models.pilot_leads, inputs.leads, models.encoder),
        projection=projection,
        projection_at_recommended=at_recommended,
        projection_by_attempts=by_attempts,
        operations=operations,
        quote=quote,
        verdict=verdict,
        provisional_leads_scheduled=scheduled,
        reasons=reasons,
        sizing=sizing,
        warnings=warnings,
        model=ModelSummary(
            attributes_used=models.encoder.attributes,
            attributes_skipped=models.encoder.skipped,
            attributes_post_dial=models.excluded_post_dial,
            conversion_model=models.conversion_selection,
            contact_heterogeneity_phi=models.contact.phi,
            contact_leads_fitted=models.contact.leads_fitted,
            conversion_contacts_fitted=models.conversion.contacts_fitted,
            simulation_draws=draws,
        ),
    )


def _still_scheduled(inputs: PilotInputs) -> int:
    """Pilot leads (flagged ``is_pilot`` in the lead records) with no attempt yet."""
    if "is_pilot" not in inputs.leads.columns:
        return 0
    flagged = inputs.leads["is_pilot"].astype(str).str.lower().isin({"true", "1", "yes"})
    dialled = inputs.leads["lead_id"].isin(inputs.pilot_lead_ids)
    return int((flagged & ~dialled).sum())


def _verdict_certain(
    targets: Targets, pilot: PilotCounts, projection: Projection, quote: Quote
) -> bool:
    """The verdict cannot change at 90 %: every target given is clear of its P10-P90 band."""
    checks: list[bool] = []
    if targets.conversions is not None:
        band = projection.conversions
        have = pilot.leads_converted
        checks.append(
            have + band.p10 >= targets.conversions or have + band.p90 < targets.conversions
        )
    if targets.max_price is not None:
        price = _price_for_scheme(quote, targets.max_price_scheme)
        if price.low is None or price.high is None:
            checks.append(False)
        else:
            checks.append(price.high <= targets.max_price or price.low > targets.max_price)
    return bool(checks) and all(checks)


def _steady_price(costs: Costs) -> float:
    return contract_prices(costs).steady


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _pilot_counts(inputs: PilotInputs, models: PilotModels, costs: Costs) -> PilotCounts:
    frame = inputs.attempts
    leads = models.pilot_leads
    agent_hours, measured = _pilot_agent_hours(frame, costs)
    return PilotCounts(
        leads=len(leads),
        dials=len(frame),
        contacts=models.contact_attempts,
        leads_contacted=int(leads["contacted"].sum()),
        conversions=int(frame["converted"].sum()),
        leads_converted=int((leads["converted"] & leads["contacted"]).sum()),
        valid_calls=models.valid_calls,
        invalid_numbers=models.invalid_count,
        max_attempt_no=int(frame["attempt_no"].max()),
        list_leads=len(inputs.leads),
        remaining_leads=len(inputs.leads) - len(leads),
        agent_hours=agent_hours,
        agent_hours_measured=measured,
    )
