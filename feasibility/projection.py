"""From the pilot to the rest of the list: fitted models, attempts curve, simulated projection.

``fit_pilot_models`` summarises the pilot per lead and fits the contact (beta-geometric
regression) and conversion (logistic) models on the lead attributes. ``project`` scores every
lead to project and simulates totals: each draw takes parameters from the models' posterior
(parameter uncertainty), then draws binomial outcomes per lead group (outcome noise); P10 /
P50 / P90 are quantiles over the draws. Because the models use lead attributes, a pilot whose
mix differs from the list's is corrected for automatically.

Dialing rule projected: each lead is dialled until its first contact, an invalid-number result,
or ``max_attempts`` dials. Callbacks after a contact are not projected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy import special

from feasibility.estimators import BetaPrior
from feasibility.inputs import Costs, Disposition
from feasibility.modeling import (
    ContactModel,
    ConversionModel,
    FeatureEncoder,
    contact_survival,
    fit_contact_model,
    post_dial_attributes,
)
from feasibility.selection import ModelSelection, select_conversion_model

__all__ = [
    "AttemptsCurvePoint",
    "Band",
    "PilotModels",
    "Projection",
    "RatioBand",
    "attempts_curve",
    "fit_pilot_models",
    "project",
    "project_fan",
    "recommend_max_attempts",
    "score_leads",
    "summarize_pilot_leads",
]

DEFAULT_TALK_S = 90.0
_UNBOUNDED = 1e300


class Band(BaseModel):
    """P10 / P50 / P90 of a simulated total."""

    model_config = ConfigDict(frozen=True)

    p10: float
    p50: float
    p90: float


class RatioBand(BaseModel):
    """P10 / P50 / P90 of a ratio; None where too many draws have a zero denominator."""

    model_config = ConfigDict(frozen=True)

    p10: float | None
    p50: float | None
    p90: float | None


class Projection(BaseModel):
    """Projected totals for dialling the given leads with at most ``max_attempts`` each."""

    model_config = ConfigDict(frozen=True)

    leads: int
    max_attempts: int
    draws: int
    contacts: Band
    conversions: Band
    valid_calls: Band
    dials: Band
    agent_hours: Band
    busy_hours: Band
    agent_hours_per_contact: RatioBand
    agent_hours_per_conversion: RatioBand
    agent_hours_per_valid_call: RatioBand


class AttemptsCurvePoint(BaseModel):
    """Reach by attempt k on the projected list, with the pilot's observed reach."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    first_contact_probability: float
    cumulative_contact: float
    cumulative_low: float
    cumulative_high: float
    cumulative_geometric: float
    observed_cumulative: float | None
    hazard: float
    dials_per_lead: float


def summarize_pilot_leads(attempts: pd.DataFrame) -> pd.DataFrame:
    """One row per pilot lead: dials until contact/invalid/end, contacted, invalid, converted."""
    ordered = attempts.sort_values(["lead_id", "attempt_no"], kind="stable")
    position = ordered.groupby("lead_id", sort=False).cumcount().to_numpy() + 1
    disposition = ordered["disposition"].to_numpy()
    stop = np.isin(disposition, [Disposition.CONTACT.value, Disposition.INVALID_NUMBER.value])
    frame = pd.DataFrame(
        {
            "lead_id": ordered["lead_id"].to_numpy(),
            "stop_at": np.where(stop, position, np.iinfo(np.int64).max),
            "position": position,
            "converted": ordered["converted"].to_numpy() == 1,
        }
    )
    grouped = frame.groupby("lead_id", sort=True)
    summary = grouped.agg(
        stop_at=("stop_at", "min"), count=("position", "max"), converted=("converted", "max")
    )
    stopped = summary["stop_at"] <= summary["count"]
    dials = np.where(stopped, summary["stop_at"], summary["count"])
    first_stop = frame[stop & (frame["stop_at"] == grouped["stop_at"].transform("min"))]
    outcome = pd.Series(
        disposition[first_stop.index.to_numpy()] if len(first_stop) else [],
        index=first_stop["lead_id"].to_numpy(),
        dtype=object,
    ).reindex(summary.index)
    return pd.DataFrame(
        {
            "lead_id": summary.index.to_numpy(),
            "dials": dials.astype(int),
            "contacted": (stopped & (outcome == Disposition.CONTACT.value)).to_numpy(),
            "invalid": (stopped & (outcome == Disposition.INVALID_NUMBER.value)).to_numpy(),
            "converted": summary["converted"].to_numpy(dtype=bool),
        }
    )


@dataclass(frozen=True)
class PilotModels:
    """Everything fitted on the pilot that the projection needs."""

    encoder: FeatureEncoder
    contact: ContactModel
    conversion: ConversionModel
    pilot_leads: pd.DataFrame
    invalid_count: int
    invalid_dials_mean: float
    valid_calls: int
    contact_attempts: int
    talk_s: np.ndarray
    conversion_selection: ModelSelection
    excluded_post_dial: dict[str, str]
    #: the past campaigns' conversion prior the pilot's rate was shrunk toward, if any
    conversion_prior: BetaPrior | None = None


def fit_pilot_models(
    attempts: pd.DataFrame,
    leads: pd.DataFrame,
    *,
    costs: Costs,
    conversion_prior: BetaPrior | None = None,
    seed: int = 0,
) -> PilotModels:
    """Fit the contact and conversion models on validated pilot attempts and the lead list.

    Attributes that only exist once a lead has been dialled (``post_dial_attributes``) are left
    out: they would explain the pilot's outcomes and say nothing about the undialled leads.
    """
    summary = summarize_pilot_leads(attempts)
    excluded = post_dial_attributes(leads, set(summary["lead_id"]))
    encoder = FeatureEncoder.fit(leads, exclude=tuple(excluded))
    pilot = summary.merge(leads, on="lead_id", how="left", validate="one_to_one")
    valid = pilot[~pilot["invalid"]]
    contact = fit_contact_model(
        encoder,
        encoder.transform(valid),
        valid["dials"].to_numpy(),
        valid["contacted"].to_numpy(),
    )
    reached = pilot[pilot["contacted"]]
    intercept_prior = None
    if conversion_prior is not None:
        mean = conversion_prior.mean
        # sd of logit(p) under Beta(a, b) ~ sqrt(1/a + 1/b): the prior's weight on the intercept.
        intercept_prior = (
            float(special.logit(mean)),
            math.sqrt(1 / conversion_prior.alpha + 1 / conversion_prior.beta),
        )
    conversion, selection = select_conversion_model(
        encoder,
        encoder.transform(reached),
        reached["converted"].to_numpy(),
        intercept_prior=intercept_prior,
        seed=seed,
    )
    invalid = pilot[pilot["invalid"]]
    contacts = attempts[attempts["disposition"] == Disposition.CONTACT.value]
    return PilotModels(
        encoder=encoder,
        contact=contact,
        conversion=conversion,
        pilot_leads=pilot,
        invalid_count=len(invalid),
        invalid_dials_mean=float(invalid["dials"].mean()) if len(invalid) else 1.0,
        valid_calls=int((contacts["talk_s"] > costs.valid_call_min_talk_s).sum()),
        contact_attempts=len(contacts),
        talk_s=contacts["talk_s"].to_numpy(dtype=float),
        conversion_selection=selection,
        excluded_post_dial=excluded,
        conversion_prior=conversion_prior,
    )


def _conversion_draws(
    models: PilotModels, design: np.ndarray, params: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Conversion probability per draw and lead group: the pilot's own rate among its
    contacts (its Beta posterior, shrunk toward the past campaigns' rate when given) times the
    model's ratio for the group against the pilot's contacts (for each parameter draw).

    The level is what the pilot measured; the model only says how the undialled leads differ
    from the dialled ones. On a random pilot the ratios average to one over the rest of the
    list, so the projection is the pooled rate's; on a skewed pilot they correct its mix. (A
    model's own level would add its fitting noise to the pilot's: on random pilots it projected
    worse than the pooled rate, feasibility/BACKTEST.md.)"""
    conversion = models.conversion
    p = conversion.probability(design, params)
    reached = models.pilot_leads[models.pilot_leads["contacted"]]
    if conversion.kind == "pooled" or reached.empty:
        return p
    pilot_p = conversion.probability(models.encoder.transform(reached), params)
    ratio = p / np.maximum(pilot_p.mean(axis=1, keepdims=True), 1e-12)
    converted = float(reached["converted"].sum())
    prior = models.conversion_prior
    alpha, beta = (0.5, 0.5) if prior is None else (prior.alpha, prior.beta)
    level = np.asarray(
        rng.beta(converted + alpha, len(reached) - converted + beta, size=p.shape[0]), dtype=float
    )
    return np.asarray(np.clip(level[:, None] * ratio, 0.0, 1.0))


def _invalid_share_draws(models: PilotModels, rng: np.random.Generator, size: int) -> np.ndarray:
    n = len(models.pilot_leads)
    return rng.beta(models.invalid_count + 0.5, n - models.invalid_count + 0.5, size=size)


def _group(design: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    unique, inverse, counts = np.unique(design, axis=0, return_inverse=True, return_counts=True)
    return unique, inverse.reshape(-1), counts


def score_leads(models: PilotModels, leads: pd.DataFrame, *, max_attempts: int) -> pd.DataFrame:
    """Per-lead MAP probabilities: contact within ``max_attempts`` and conversion if contacted."""
    design = models.encoder.transform(leads)
    a, b = models.contact.shape(design, models.contact.posterior.mean)
    survival = contact_survival(a[0], b[0], max_attempts)
    invalid_share = (models.invalid_count + 0.5) / (len(models.pilot_leads) + 1.0)
    p_contact = (1 - invalid_share) * (1 - survival[:, max_attempts])
    p_convert = models.conversion.probability(design, models.conversion.posterior.mean)[0]
    return pd.DataFrame(
        {
            "lead_id": leads["lead_id"].to_numpy(),
            "p_contact": p_contact,
            "p_conversion_given_contact": p_convert,
            "p_conversion": p_contact * p_convert,
        }
    )


def _quantiles(values: np.ndarray) -> Band:
    p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9])
    return Band(p10=float(p10), p50=float(p50), p90=float(p90))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> RatioBand:
    # A draw with no conversions has no finite cost per conversion; it counts as the worst.
    ratio = np.where(denominator > 0, numerator / np.maximum(denominator, 1), _UNBOUNDED)
    p10, p50, p90 = np.quantile(ratio, [0.1, 0.5, 0.9])
    return RatioBand(p10=_finite(p10), p50=_finite(p50), p90=_finite(p90))


def _finite(value: float) -> float | None:
    return float(value) if value < _UNBOUNDED / 10 else None


def project(
    models: PilotModels,
    leads: pd.DataFrame,
    *,
    max_attempts: int,
    costs: Costs,
    seed: int = 0,
    draws: int = 1000,
) -> Projection:
    """Simulate P10/P50/P90 of contacts, conversions, dials and agent-hours for these leads."""
    return project_fan(models, leads, attempts=[max_attempts], costs=costs, seed=seed, draws=draws)[
        0
    ]


def _empty_projection(max_attempts: int) -> Projection:
    zero = Band(p10=0.0, p50=0.0, p90=0.0)
    none = RatioBand(p10=None, p50=None, p90=None)
    return Projection(
        leads=0,
        max_attempts=max_attempts,
        draws=0,
        contacts=zero,
        conversions=zero,
        valid_calls=zero,
        dials=zero,
        agent_hours=zero,
        busy_hours=zero,
        agent_hours_per_contact=none,
        agent_hours_per_conversion=none,
        agent_hours_per_valid_call=none,
    )


def project_fan(
    models: PilotModels,
    leads: pd.DataFrame,
    *,
    attempts: Sequence[int],
    costs: Costs,
    seed: int = 0,
    draws: int = 1000,
) -> list[Projection]:
    """``project`` at several attempt caps, sharing the parameter draws (a smooth fan)."""
    if leads.empty:
        return [_empty_projection(k) for k in attempts]
    rng = np.random.default_rng(seed)
    design, _, counts = _group(models.encoder.transform(leads))
    contact_params = models.contact.posterior.draw(rng, draws)
    conversion_params = models.conversion.posterior.draw(rng, draws)
    invalid_share = _invalid_share_draws(models, rng, draws)[:, None]
    valid_share = rng.beta(
        models.valid_calls + 0.5, models.contact_attempts - models.valid_calls + 0.5, size=draws
    )
    talk = models.talk_s
    if talk.size == 0:
        talk_mean = np.full(draws, DEFAULT_TALK_S)
    elif talk.size > 2000 or talk.size < 2:
        spread = float(talk.std(ddof=1)) / math.sqrt(talk.size) if talk.size > 1 else 0.0
        talk_mean = np.maximum(rng.normal(float(talk.mean()), spread, size=draws), 0.0)
    else:
        talk_mean = rng.choice(talk, size=(draws, talk.size)).mean(axis=1)
    a, b = models.contact.shape(design, contact_params)
    survival_all = contact_survival(a, b, max(attempts))
    conversion_p = _conversion_draws(models, design, conversion_params, rng)
    group_counts = np.broadcast_to(counts, a.shape)

    projections = []
    for max_attempts in attempts:
        # Outcome noise per cap from its own stream, so each cap is reproducible on its own.
        noise = np.random.default_rng([seed, max_attempts])
        survival = survival_all[..., : max_attempts + 1]
        reach = np.clip(1 - survival[..., max_attempts], 0.0, 1.0)
        first_contact = survival[..., :-1] - survival[..., 1:]
        attempt_index = np.arange(1, max_attempts + 1)
        safe_reach = np.maximum(reach, 1e-12)
        mean_t = (first_contact * attempt_index).sum(axis=-1) / safe_reach
        var_t = np.maximum(
            (first_contact * attempt_index**2).sum(axis=-1) / safe_reach - mean_t**2, 0.0
        )
        invalid = noise.binomial(group_counts, np.broadcast_to(invalid_share, reach.shape))
        valid = group_counts - invalid
        contacts = noise.binomial(valid, reach)
        conversions = noise.binomial(contacts, conversion_p)
        contact_dials_mean = (contacts * mean_t).sum(axis=1)
        contact_dials_sd = np.sqrt((contacts * var_t).sum(axis=1))
        contact_dials = np.maximum(
            contact_dials_mean + contact_dials_sd * noise.standard_normal(draws),
            contacts.sum(axis=1),
        )
        not_reached = (valid - contacts).sum(axis=1)
        dials = (
            contact_dials
            + not_reached * max_attempts
            + invalid.sum(axis=1) * models.invalid_dials_mean
        )
        total_contacts = contacts.sum(axis=1)
        total_conversions = conversions.sum(axis=1)
        valid_calls = noise.binomial(total_contacts, valid_share)
        busy_s = (
            total_contacts * (talk_mean + costs.wrap_up_s)
            + (dials - total_contacts) * costs.noncontact_agent_s
        )
        busy_hours = busy_s / 3600
        agent_hours = busy_hours / costs.occupancy
        projections.append(
            Projection(
                leads=len(leads),
                max_attempts=max_attempts,
                draws=draws,
                contacts=_quantiles(total_contacts),
                conversions=_quantiles(total_conversions),
                valid_calls=_quantiles(valid_calls),
                dials=_quantiles(dials),
                agent_hours=_quantiles(agent_hours),
                busy_hours=_quantiles(busy_hours),
                agent_hours_per_contact=_ratio(agent_hours, total_contacts),
                agent_hours_per_conversion=_ratio(agent_hours, total_conversions),
                agent_hours_per_valid_call=_ratio(agent_hours, valid_calls),
            )
        )
    return _monotone_in_cap(projections)


MONOTONE_BANDS = ("contacts", "conversions", "valid_calls", "dials", "agent_hours", "busy_hours")


def _monotone_in_cap(projections: list[Projection]) -> list[Projection]:
    """Allowing more attempts never lowers a total: running max of each quantile over caps.

    Each cap's outcome noise is drawn from its own stream, so two neighbouring caps whose true
    totals barely differ can swap order by chance (P10 dials at 15 attempts below P10 at 6).
    """
    order = sorted(range(len(projections)), key=lambda i: projections[i].max_attempts)
    best: dict[str, tuple[float, float, float]] = {}
    out = list(projections)
    for index in order:
        updates: dict[str, Band] = {}
        for name in MONOTONE_BANDS:
            band: Band = getattr(projections[index], name)
            low, mid, high = best.get(name, (-math.inf, -math.inf, -math.inf))
            raised = Band(p10=max(band.p10, low), p50=max(band.p50, mid), p90=max(band.p90, high))
            best[name] = (raised.p10, raised.p50, raised.p90)
            updates[name] = raised
        out[index] = projections[index].model_copy(update=updates)
    return out


def _observed_reach(models: PilotModels, max_attempt: int) -> list[float | None]:
    """Kaplan-Meier reach of the pilot's valid numbers, None beyond the attempts observed."""
    valid = models.pilot_leads[~models.pilot_leads["invalid"]]
    dials = valid["dials"].to_numpy()
    contacted = valid["contacted"].to_numpy()
    invalid_share = models.invalid_count / max(len(models.pilot_leads), 1)
    survival = 1.0
    out: list[float | None] = []
    for k in range(1, max_attempt + 1):
        at_risk = int((dials >= k).sum())
        if at_risk == 0:
            out.append(None)
            continue
        events = int(((dials == k) & contacted).sum())
        survival *= 1 - events / at_risk
        out.append((1 - invalid_share) * (1 - survival))
    return out


def attempts_curve(
    models: PilotModels,
    leads: pd.DataFrame,
    *,
    max_attempt: int,
    seed: int = 0,
    draws: int = 300,
) -> list[AttemptsCurvePoint]:
    """Probability of first contact by attempt k (1..max_attempt) on these leads."""
    design, _, counts = _group(models.encoder.transform(leads))
    weights = counts / counts.sum()
    invalid_share = (models.invalid_count + 0.5) / (len(models.pilot_leads) + 1.0)
    a, b = models.contact.shape(design, models.contact.posterior.mean)
    survival = (contact_survival(a[0], b[0], max_attempt) * weights[:, None]).sum(axis=0)
    rng = np.random.default_rng(seed)
    params = models.contact.posterior.draw(rng, draws)
    a_draws, b_draws = models.contact.shape(design, params)
    survival_draws = (contact_survival(a_draws, b_draws, max_attempt) * weights[None, :, None]).sum(
        axis=1
    )
    low = np.quantile(1 - survival_draws, 0.1, axis=0)
    high = np.quantile(1 - survival_draws, 0.9, axis=0)
    valid = models.pilot_leads[~models.pilot_leads["invalid"]]
    dials_at_risk = float(valid["dials"].sum())
    geometric_p = float(valid["contacted"].sum()) / dials_at_risk if dials_at_risk else 0.0
    observed = _observed_reach(models, max_attempt)
    points = []
    for k in range(1, max_attempt + 1):
        hazard = (survival[k - 1] - survival[k]) / survival[k - 1] if survival[k - 1] else 0.0
        points.append(
            AttemptsCurvePoint(
                attempt=k,
                first_contact_probability=float(
                    (1 - invalid_share) * (survival[k - 1] - survival[k])
                ),
                cumulative_contact=float((1 - invalid_share) * (1 - survival[k])),
                cumulative_low=float((1 - invalid_share) * low[k]),
                cumulative_high=float((1 - invalid_share) * high[k]),
                cumulative_geometric=float((1 - invalid_share) * (1 - (1 - geometric_p) ** k)),
                observed_cumulative=observed[k - 1],
                hazard=float(hazard),
                dials_per_lead=float(
                    (1 - invalid_share) * survival[:k].sum()
                    + invalid_share * models.invalid_dials_mean
                ),
            )
        )
    return points


def recommend_max_attempts(
    curve: list[AttemptsCurvePoint], *, value_per_contact: float, cost_per_dial: float
) -> int:
    """Last attempt whose marginal contacts still pay for its dials (hazard x value >= cost)."""
    recommended = 1
    for point in curve:
        if point.hazard * value_per_contact >= cost_per_dial:
            recommended = point.attempt
        else:
            break
    return recommended
