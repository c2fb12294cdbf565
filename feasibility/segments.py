"""Contact and conversion by lead attribute: raw and partially pooled rates, GLM effect sizes.

For each attribute the pilot leads are split by level (numeric attributes by quartile). Each
level gets its raw rate with a Jeffreys interval and a partially pooled rate with its interval,
both from one Beta posterior: a Beta prior centred on the overall rate, whose strength is fitted
across levels (empirical Bayes), so small levels are pulled toward the overall rate. The report
shows the pooled estimate with the pooled interval, so the estimate is always inside its bar.
A binomial GLM (statsmodels) per attribute gives odds ratios with 90 % intervals and a
likelihood-ratio test of whether the attribute matters.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy import stats

from feasibility.estimators import BetaPrior, RateEstimate, beta_posterior, rate_estimate
from feasibility.modeling import FeatureEncoder, level_labels

__all__ = ["AttributeEffect", "SegmentLevel", "SegmentTable", "segment_tables"]

MIN_POOL_STRENGTH = 2.0
MAX_POOL_STRENGTH = 2000.0


class SegmentLevel(BaseModel):
    """One level of an attribute in the pilot."""

    model_config = ConfigDict(frozen=True)

    level: str
    leads: int
    list_leads: int
    contact: RateEstimate
    contact_pooled: RateEstimate
    conversion: RateEstimate
    conversion_pooled: RateEstimate
    contact_odds_ratio: float | None = None
    conversion_odds_ratio: float | None = None


class AttributeEffect(BaseModel):
    """Likelihood-ratio test and largest effect of an attribute on one outcome."""

    model_config = ConfigDict(frozen=True)

    p_value: float | None
    matters: bool
    largest_odds_ratio: float | None
    note: str = ""


class SegmentTable(BaseModel):
    """An attribute's levels with rates and effects."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    kind: str
    reference_level: str
    levels: list[SegmentLevel]
    contact_effect: AttributeEffect
    conversion_effect: AttributeEffect


def _levels(series: pd.Series, kind: str, edges: np.ndarray | None) -> pd.Series:
    if kind == "numeric" and edges is not None:
        values = pd.Series(pd.to_numeric(series, errors="coerce"), index=series.index)
        binned = pd.cut(values, bins=list(edges), include_lowest=True, duplicates="drop")
        return pd.Series(
            np.where(binned.notna(), binned.astype(str), "(missing)"), index=series.index
        )
    return pd.Series(level_labels(series), index=series.index)


def _pool_prior(successes: np.ndarray, trials: np.ndarray) -> BetaPrior:
    """Beta prior centred on the overall rate; strength from the between-level spread."""
    total = trials.sum()
    overall = float((successes.sum() + 0.5) / (total + 1.0))
    mask = trials > 0
    if mask.sum() < 2:
        strength = MAX_POOL_STRENGTH
    else:
        rates = successes[mask] / trials[mask]
        weights = trials[mask]
        between = float(np.average((rates - overall) ** 2, weights=weights))
        binomial = overall * (1 - overall) * mask.sum() / total
        excess = between - binomial
        # Method of moments: Var(level rate) = m(1-m)/(strength+1) beyond binomial noise.
        strength = overall * (1 - overall) / excess - 1 if excess > 0 else MAX_POOL_STRENGTH
    strength = float(np.clip(strength, MIN_POOL_STRENGTH, MAX_POOL_STRENGTH))
    return BetaPrior(alpha=overall * strength, beta=(1 - overall) * strength, source="levels")


def _glm_effect(
    outcome: np.ndarray, level: pd.Series, reference: str
) -> tuple[AttributeEffect, dict[str, float]]:
    import statsmodels.api as sm

    if outcome.size < 5 or outcome.min() == outcome.max():
        return AttributeEffect(
            p_value=None, matters=False, largest_odds_ratio=None, note="too few outcomes to test"
        ), {}
    dummies = pd.get_dummies(level, dtype=float)
    dummies = dummies.drop(columns=[reference], errors="ignore")
    if dummies.shape[1] == 0:
        return AttributeEffect(
            p_value=None, matters=False, largest_odds_ratio=None, note="one level only"
        ), {}
    exog = sm.add_constant(dummies.to_numpy(), has_constant="add")
    try:
        with warnings.catch_warnings():
            # Separation and non-convergence are reported through the note, not as warnings.
            warnings.simplefilter("ignore")
            full = sm.GLM(outcome, exog, family=sm.families.Binomial()).fit()
            null = sm.GLM(outcome, np.ones((outcome.size, 1)), family=sm.families.Binomial()).fit()
    except (ValueError, np.linalg.LinAlgError) as exc:
        return AttributeEffect(
            p_value=None, matters=False, largest_odds_ratio=None, note=f"GLM failed: {exc}"
        ), {}
    lr = max(float(null.deviance - full.deviance), 0.0)
    p_value = float(stats.chi2.sf(lr, dummies.shape[1]))
    coefficients = np.asarray(full.params)[1:]
    errors = np.asarray(full.bse)[1:]
    odds: dict[str, float] = {}
    note = ""
    for name, coefficient, error in zip(dummies.columns, coefficients, errors, strict=True):
        if not math.isfinite(coefficient) or not math.isfinite(error) or error > 10:
            note = "some levels have all or no successes; their odds ratios are not estimable"
            continue
        odds[str(name)] = float(math.exp(coefficient))
    largest = max(odds.values(), key=lambda v: abs(math.log(v)), default=None)
    return AttributeEffect(
        p_value=p_value, matters=p_value < 0.05, largest_odds_ratio=largest, note=note
    ), odds


def segment_tables(
    pilot_leads: pd.DataFrame, leads: pd.DataFrame, encoder: FeatureEncoder
) -> list[SegmentTable]:
    """Segment tables for each attribute the models use, most significant first."""
    tables: list[SegmentTable] = []
    for attribute in encoder.attributes:
        kind = "numeric" if attribute in encoder.numeric else "categorical"
        edges = None
        if kind == "numeric":
            values = pd.to_numeric(leads[attribute], errors="coerce").dropna()
            edges = np.unique(np.quantile(values, [0, 0.25, 0.5, 0.75, 1]))
            if edges.size < 2:
                continue
        pilot_level = _levels(pilot_leads[attribute], kind, edges)
        list_level = _levels(leads[attribute], kind, edges)
        list_counts = list_level.value_counts()
        contacted = pilot_leads["contacted"].to_numpy(dtype=float)
        converted = pilot_leads["converted"].to_numpy(dtype=float)
        names = sorted(set(pilot_level) | set(list_level))
        by_level = {name: (pilot_level == name).to_numpy() for name in names}
        contact_s = np.array([contacted[m].sum() for m in by_level.values()])
        contact_n = np.array([m.sum() for m in by_level.values()], dtype=float)
        conv_s = np.array([converted[m & (contacted == 1)].sum() for m in by_level.values()])
        contact_prior = _pool_prior(contact_s, contact_n)
        conversion_prior = _pool_prior(conv_s, contact_s)
        reference = str(pilot_level.value_counts().idxmax()) if len(pilot_level) else names[0]
        contact_effect, contact_or = _glm_effect(contacted, pilot_level, reference)
        reached = contacted == 1
        conversion_effect, conversion_or = _glm_effect(
            converted[reached], pilot_level[reached], reference
        )
        levels = []
        for index, name in enumerate(names):
            levels.append(
                SegmentLevel(
                    level=name,
                    leads=int(contact_n[index]),
                    list_leads=int(list_counts.get(name, 0)),
                    contact=rate_estimate(contact_s[index], contact_n[index]),
                    contact_pooled=beta_posterior(
                        contact_prior, contact_s[index], contact_n[index]
                    ),
                    conversion=rate_estimate(conv_s[index], contact_s[index]),
                    conversion_pooled=beta_posterior(
                        conversion_prior, conv_s[index], contact_s[index]
                    ),
                    contact_odds_ratio=1.0 if name == reference else contact_or.get(name),
                    conversion_odds_ratio=1.0 if name == reference else conversion_or.get(name),
                )
            )
        tables.append(
            SegmentTable(
                attribute=attribute,
                kind=kind,
                reference_level=reference,
                levels=levels,
                contact_effect=contact_effect,
                conversion_effect=conversion_effect,
            )
        )

    def significance(table: SegmentTable) -> float:
        values = [
            e.p_value
            for e in (table.contact_effect, table.conversion_effect)
            if e.p_value is not None
        ]
        return min(values, default=1.0)

    return sorted(tables, key=significance)
