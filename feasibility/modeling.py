"""Lead-level models fitted on the pilot and applied to the whole list (pure numpy/scipy).

- ``FeatureEncoder`` turns lead attributes into a design matrix: categorical columns are one-hot
  encoded over *every* level (no reference level), numeric columns standardised over the list
  with a missing indicator. Coefficients get a Gaussian prior (ridge), so levels seen rarely in
  the pilot are shrunk toward the overall rate (partial pooling) and levels never seen keep
  their prior uncertainty.
- ``fit_contact_model``: beta-geometric regression of the attempt of first contact. Each lead
  has its own per-dial contact probability p ~ Beta(mu * phi, (1 - mu) * phi) with
  logit(mu) = x'beta; leads not reached are right-censored after their last attempt. The
  heterogeneity (phi) is what makes reach flatten with attempts; a geometric model, one p for
  everyone, overstates reach at 5-8 attempts.
- ``fit_conversion_model``: Bayesian logistic regression of conversion given contact.

Both return the MAP estimate and a Laplace (Gaussian) approximation of the posterior, from which
``draw`` samples parameters for the projection's simulation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from feasibility.exceptions import ModelError

__all__ = [
    "INTERNAL_COLUMNS",
    "ContactModel",
    "ConversionModel",
    "FeatureEncoder",
    "LaplacePosterior",
    "contact_survival",
    "fit_contact_model",
    "fit_conversion_model",
    "fit_logistic",
    "level_labels",
    "post_dial_attributes",
]

MAX_LEVELS = 30
# Bookkeeping columns the campaign adds to its lead records: not lead attributes, never shown.
INTERNAL_COLUMNS = ("lead_id", "is_pilot", "in_pilot", "batch_id", "list_id", "row_number")
COEFFICIENT_PRIOR_SD = 1.0
INTERCEPT_PRIOR_SD = 10.0
LOG_PHI_PRIOR_MEAN = math.log(3.0)
LOG_PHI_PRIOR_SD = 1.0
# Beyond phi = 30 the beta-geometric is indistinguishable from the geometric over 15 attempts,
# and below 0.3 half the list would be unreachable forever: a pilot cannot tell such values
# apart, and letting the fit wander there made the attempts-curve band explode.
LOG_PHI_BOUNDS = (math.log(0.3), math.log(30.0))
CONVERSION_PRIOR_SDS = (0.125, 0.25, 0.5, 1.0)


@dataclass
class FeatureEncoder:
    """Encode lead attributes into a design matrix (intercept first)."""

    categorical: dict[str, list[str]] = field(default_factory=dict)
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)
    numeric_with_missing: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fit(cls, leads: pd.DataFrame, *, exclude: tuple[str, ...] = ()) -> FeatureEncoder:
        """Choose columns and levels from the full lead list (never ``INTERNAL_COLUMNS``)."""
        encoder = cls()
        for column in leads.columns:
            if column in exclude or column in INTERNAL_COLUMNS:
                continue
            series = leads[column]
            if series.isna().all():
                encoder.skipped[str(column)] = "empty"
                continue
            if pd.api.types.is_bool_dtype(series):
                series = series.astype(str)
            if pd.api.types.is_numeric_dtype(series):
                values = series.astype(float)
                if values.nunique() <= 1:
                    encoder.skipped[str(column)] = "constant"
                    continue
                if values.nunique() <= 6:
                    encoder.categorical[str(column)] = sorted(set(level_labels(series)))
                    continue
                sd = float(values.std(ddof=0))
                encoder.numeric[str(column)] = (float(values.mean()), sd if sd > 0 else 1.0)
                if values.isna().any():
                    encoder.numeric_with_missing.append(str(column))
                continue
            levels = pd.Series(level_labels(series))
            n_levels = levels.nunique()
            if n_levels <= 1:
                encoder.skipped[str(column)] = "constant"
            elif n_levels > MAX_LEVELS:
                encoder.skipped[str(column)] = f"{n_levels} distinct values (> {MAX_LEVELS})"
            else:
                encoder.categorical[str(column)] = sorted(levels.unique())
        return encoder

    @property
    def columns(self) -> list[str]:
        """Names of the design-matrix columns, intercept first."""
        names = ["(intercept)"]
        for column, levels in self.categorical.items():
            names.extend(f"{column}={level}" for level in levels)
        for column in self.numeric:
            names.append(f"{column} (per SD)")
            if column in self.numeric_with_missing:
                names.append(f"{column}=(missing)")
        return names

    @property
    def attributes(self) -> list[str]:
        """Lead attributes used by the models."""
        return [*self.categorical, *self.numeric]

    def transform(self, leads: pd.DataFrame) -> np.ndarray:
        """Design matrix for these leads (intercept column first)."""
        blocks = [np.ones((len(leads), 1))]
        for column, levels in self.categorical.items():
            values = level_labels(leads[column])
            blocks.append(
                (values[:, None] == np.asarray(levels, dtype=object)[None, :]).astype(float)
            )
        for column, (mean, sd) in self.numeric.items():
            values = pd.to_numeric(leads[column], errors="coerce").to_numpy(dtype=float)
            missing = np.isnan(values)
            blocks.append(np.where(missing, 0.0, (values - mean) / sd)[:, None])
            if column in self.numeric_with_missing:
                blocks.append(missing.astype(float)[:, None])
        return np.hstack(blocks)


# Column names that describe a dial, not a lead: they only exist after dialling (call month and
# weekday, number of calls, call duration, outcome) and leak the outcome into the model.
POST_DIAL_NAMES = re.compile(
    r"^(month|day_of_week|weekday|day|campaign|duration|calls?|attempts?|n_?calls|"
    r"n_?attempts|call_.*|.*_duration|talk_.*|disposition|outcome|"
    r"contacted|converted|called_at|last_call.*|last_contact.*|contact_date|dialed_at|"
    r"dialled_at)$",
    re.IGNORECASE,
)


def post_dial_attributes(leads: pd.DataFrame, pilot_ids: set[object]) -> dict[str, str]:
    """Lead columns that only exist after dialling, with the reason each was recognised.

    Two signs: the column's name describes a call (month, day_of_week, campaign = calls made,
    duration, ...), or it is filled for the dialled pilot leads but empty for nearly all the
    leads not yet dialled.
    """
    found: dict[str, str] = {}
    in_pilot = leads["lead_id"].isin(pilot_ids).to_numpy()
    for column in leads.columns:
        if column in INTERNAL_COLUMNS:
            continue
        name = str(column)
        if POST_DIAL_NAMES.match(name.strip()):
            found[name] = "its name describes a call, known only after dialling"
            continue
        if in_pilot.all() or not in_pilot.any():
            continue
        filled = leads[column].notna().to_numpy()
        pilot_filled = float(filled[in_pilot].mean())
        rest_filled = float(filled[~in_pilot].mean())
        if pilot_filled >= 0.5 and rest_filled <= 0.05:
            found[name] = (
                f"filled for {pilot_filled:.0%} of the dialled pilot leads but {rest_filled:.0%} "
                "of the others: recorded by dialling"
            )
    return found


def _as_level(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def level_labels(series: pd.Series) -> np.ndarray:
    """Level label of each value: integer-valued floats without '.0', NaN as '(missing)'."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = np.array([_as_level(u) for u in uniques] + ["(missing)"], dtype=object)
    return np.asarray(labels[codes])


@dataclass(frozen=True)
class LaplacePosterior:
    """Gaussian approximation of a posterior: MAP and covariance."""

    mean: np.ndarray
    covariance: np.ndarray

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Parameter draws, one per row."""
        return rng.multivariate_normal(self.mean, self.covariance, size=size, method="cholesky")


def _laplace(
    gradient: object, theta: np.ndarray, scale: float = 1e-5, floor: np.ndarray | None = None
) -> np.ndarray:
    """Covariance = inverse of the finite-difference Hessian of the negative log posterior."""
    grad = gradient  # callable returning the gradient of the negative log posterior
    size = theta.size
    hessian = np.zeros((size, size))
    for j in range(size):
        step = scale * max(1.0, abs(theta[j]))
        up = theta.copy()
        down = theta.copy()
        up[j] += step
        down[j] -= step
        hessian[:, j] = (grad(up) - grad(down)) / (2 * step)  # type: ignore[operator]
    hessian = (hessian + hessian.T) / 2
    eigenvalues, eigenvectors = np.linalg.eigh(hessian)
    # The posterior is never wider than the prior: a flat or non-convex direction of the
    # likelihood (a poorly identified phi) must not get a variance of 1e8.
    minimum = 1e-8 if floor is None else float(np.min(floor))
    eigenvalues = np.maximum(eigenvalues, minimum)
    covariance = np.asarray((eigenvectors / eigenvalues) @ eigenvectors.T)
    return np.asarray((covariance + covariance.T) / 2)


def _prior_precision(
    size: int, intercept_mean: float, intercept_sd: float
) -> tuple[np.ndarray, np.ndarray]:
    precision = np.full(size, 1 / COEFFICIENT_PRIOR_SD**2)
    precision[0] = 1 / intercept_sd**2
    mean = np.zeros(size)
    mean[0] = intercept_mean
    return precision, mean


@dataclass(frozen=True)
class ContactModel:
    """Beta-geometric regression of first contact; parameters are (beta..., log phi)."""

    encoder: FeatureEncoder
    posterior: LaplacePosterior
    leads_fitted: int

    @property
    def phi(self) -> float:
        """Concentration of the Beta distribution of per-dial contact probabilities."""
        return float(math.exp(self.posterior.mean[-1]))

    def shape(self, design: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beta shapes (a, b) per lead for parameter rows ``params`` (draws x params)."""
        params2 = np.atleast_2d(params)
        mu = special.expit(params2[:, :-1] @ design.T)
        phi = np.exp(np.clip(params2[:, -1], *LOG_PHI_BOUNDS))[:, None]
        mu = np.clip(mu, 1e-6, 1 - 1e-6)
        return mu * phi, (1 - mu) * phi


def contact_survival(a: np.ndarray, b: np.ndarray, max_attempt: int) -> np.ndarray:
    """P(no contact in the first k dials) for k = 0..max_attempt, stacked on a new last axis."""
    survival = [np.ones_like(a)]
    current = np.ones_like(a)
    for k in range(max_attempt):
        current = current * (b + k) / (a + b + k)
        survival.append(current)
    return np.stack(survival, axis=-1)


def fit_contact_model(
    encoder: FeatureEncoder, design: np.ndarray, dials: np.ndarray, contacted: np.ndarray
) -> ContactModel:
    """Fit the beta-geometric regression: ``dials`` until contact or censoring per lead."""
    n = np.asarray(dials, dtype=float)
    d = np.asarray(contacted, dtype=float)
    if n.size == 0:
        raise ModelError("no reachable pilot leads to fit the attempts curve: dial a pilot first")
    size = design.shape[1]
    rate = float(np.clip((d.sum() + 0.5) / (n.sum() + 1.0), 1e-3, 0.999))
    precision, prior_mean = _prior_precision(size + 1, special.logit(rate), INTERCEPT_PRIOR_SD)
    precision[-1] = 1 / LOG_PHI_PRIOR_SD**2
    prior_mean[-1] = LOG_PHI_PRIOR_MEAN

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ theta[:-1]
        mu = np.clip(special.expit(eta), 1e-9, 1 - 1e-9)
        phi = math.exp(min(theta[-1], 30.0))
        a, b = mu * phi, (1 - mu) * phi
        base = special.betaln(a, b)
        loglik = np.where(
            d == 1,
            special.betaln(a + 1, b + n - 1) - base,
            special.betaln(a, b + n) - base,
        )
        dig_ab, dig_abn = special.digamma(a + b), special.digamma(a + b + n)
        dig_a, dig_b = special.digamma(a), special.digamma(b)
        grad_a = np.where(d == 1, special.digamma(a + 1) - dig_a, 0.0) + dig_ab - dig_abn
        grad_b = np.where(d == 1, special.digamma(b + n - 1), special.digamma(b + n)) - dig_b
        grad_b = grad_b + dig_ab - dig_abn
        dmu = mu * (1 - mu) * phi
        grad_eta = (grad_a - grad_b) * dmu
        grad_beta = design.T @ grad_eta
        grad_logphi = float(np.sum(grad_a * a + grad_b * b))
        deviation = theta - prior_mean
        value = -float(loglik.sum()) + 0.5 * float(np.sum(precision * deviation**2))
        gradient = -np.append(grad_beta, grad_logphi) + precision * deviation
        return value, gradient

    start = prior_mean.copy()
    bounds = [(None, None)] * size + [LOG_PHI_BOUNDS]
    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 500, "gtol": 1e-7},
    )
    if not np.all(np.isfinite(result.x)):
        raise ModelError("the attempts-curve model did not converge: check the pilot attempts")
    covariance = _laplace(lambda t: objective(t)[1], result.x, floor=precision)
    return ContactModel(
        encoder=encoder, posterior=LaplacePosterior(result.x, covariance), leads_fitted=int(n.size)
    )


@dataclass(frozen=True)
class ConversionModel:
    """Model of conversion given contact, with a Laplace posterior of its parameters.

    Three forms, chosen on the pilot by ``feasibility.selection``: the pooled rate (``columns``
    = the intercept only), a penalised logistic regression on every design column, or a score
    (gradient boosting's log-odds) recalibrated on out-of-fold predictions, where the
    parameters are the calibration intercept and slope.
    """

    encoder: FeatureEncoder
    posterior: LaplacePosterior
    contacts_fitted: int
    columns: tuple[int, ...] | None = None
    scorer: Callable[[np.ndarray], np.ndarray] | None = None
    kind: str = "logistic"

    def probability(self, design: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Conversion probability per lead for parameter rows ``params`` (draws x params)."""
        rows = np.atleast_2d(params)
        if self.scorer is not None:
            score = self.scorer(design)
            return np.asarray(special.expit(rows[:, :1] + rows[:, 1:2] * score[None, :]))
        used = design if self.columns is None else design[:, list(self.columns)]
        return np.asarray(special.expit(rows @ used.T))


def fit_conversion_model(
    encoder: FeatureEncoder,
    design: np.ndarray,
    converted: np.ndarray,
    *,
    intercept_prior: tuple[float, float] | None = None,
) -> ConversionModel:
    """Fit conversion given contact; ``intercept_prior`` = (logit mean, sd) from history.

    The prior scale of the attribute effects is chosen by empirical Bayes: the candidate in
    ``CONVERSION_PRIOR_SDS`` with the largest Laplace-approximated marginal likelihood, so a
    small pilot with many attributes is not allowed to over-fit them.
    """
    y = np.asarray(converted, dtype=float)
    if intercept_prior is None:
        rate = float(np.clip((y.sum() + 0.5) / (y.size + 1.0), 1e-3, 0.999))
        intercept_prior = (float(special.logit(rate)), INTERCEPT_PRIOR_SD)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for prior_sd in CONVERSION_PRIOR_SDS if design.shape[1] > 1 else (COEFFICIENT_PRIOR_SD,):
        theta, covariance, evidence = fit_logistic(design, y, intercept_prior, prior_sd)
        if best is None or evidence > best[0]:
            best = (evidence, theta, covariance)
    assert best is not None
    return ConversionModel(
        encoder=encoder, posterior=LaplacePosterior(best[1], best[2]), contacts_fitted=int(y.size)
    )


def fit_logistic(
    design: np.ndarray, y: np.ndarray, intercept_prior: tuple[float, float], prior_sd: float
) -> tuple[np.ndarray, np.ndarray, float]:
    size = design.shape[1]
    precision = np.full(size, 1 / prior_sd**2)
    precision[0] = 1 / intercept_prior[1] ** 2
    prior_mean = np.zeros(size)
    prior_mean[0] = intercept_prior[0]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ theta
        loglik = y * eta - np.logaddexp(0.0, eta)
        deviation = theta - prior_mean
        value = -float(loglik.sum()) + 0.5 * float(np.sum(precision * deviation**2))
        gradient = -(design.T @ (y - special.expit(eta))) + precision * deviation
        return value, gradient

    result = optimize.minimize(
        objective,
        prior_mean.copy(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 500, "gtol": 1e-8},
    )
    if not np.all(np.isfinite(result.x)):
        raise ModelError("the conversion model did not converge: check the converted column")
    eta = design @ result.x
    weights = special.expit(eta) * (1 - special.expit(eta))
    hessian = (design.T * weights) @ design + np.diag(precision)
    covariance = np.linalg.inv(hessian)
    covariance = (covariance + covariance.T) / 2
    _, log_det_hessian = np.linalg.slogdet(hessian)
    evidence = (
        -float(result.fun) + 0.5 * float(np.sum(np.log(precision))) - 0.5 * float(log_det_hessian)
    )
    return result.x, covariance, evidence
