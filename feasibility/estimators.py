"""Small-sample honest rate estimators (pure functions, no I/O).

- ``wilson_interval`` and ``jeffreys_interval`` for a binomial proportion: both keep their
  nominal coverage with a handful of trials and never collapse to [0, 0] at zero successes,
  unlike the normal approximation.
- ``fit_beta_prior`` fits a Beta prior to past campaigns by beta-binomial maximum likelihood
  (empirical Bayes); ``beta_posterior`` combines it with the pilot.
- ``poisson_rate_interval`` for counts per unit of exposure (valid calls per agent-hour).
- ``mean_interval`` for a mean (talk time) by a seeded bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import optimize, special, stats

from feasibility.exceptions import CostError

__all__ = [
    "BetaPrior",
    "RateEstimate",
    "beta_posterior",
    "fit_beta_prior",
    "jeffreys_interval",
    "mean_interval",
    "poisson_rate_interval",
    "rate_estimate",
    "wilson_interval",
]


class RateEstimate(BaseModel):
    """A rate with its interval and the counts behind it."""

    model_config = ConfigDict(frozen=True)

    estimate: float
    low: float
    high: float
    successes: float
    trials: float
    method: str
    level: float = 0.9


class BetaPrior(BaseModel):
    """A Beta(alpha, beta) prior; ``strength`` = alpha + beta is its worth in pseudo-trials."""

    model_config = ConfigDict(frozen=True)

    alpha: float
    beta: float
    source: str = ""

    @property
    def mean(self) -> float:
        """Prior mean."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def strength(self) -> float:
        """Pseudo-trials the prior is worth."""
        return self.alpha + self.beta


def _check_counts(successes: float, trials: float) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")


def wilson_interval(successes: float, trials: float, level: float = 0.9) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    _check_counts(successes, trials)
    if trials == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def jeffreys_interval(successes: float, trials: float, level: float = 0.9) -> tuple[float, float]:
    """Jeffreys interval (Beta(1/2, 1/2) prior), with the usual 0 and 1 end fixes."""
    _check_counts(successes, trials)
    tail = (1 - level) / 2
    low = (
        0.0
        if successes == 0
        else float(stats.beta.ppf(tail, successes + 0.5, trials - successes + 0.5))
    )
    high = (
        1.0
        if successes == trials
        else float(stats.beta.ppf(1 - tail, successes + 0.5, trials - successes + 0.5))
    )
    return low, high


def rate_estimate(
    successes: float,
    trials: float,
    *,
    prior: BetaPrior | None = None,
    level: float = 0.9,
) -> RateEstimate:
    """Point estimate and interval: Jeffreys without a prior, the Beta posterior with one."""
    _check_counts(successes, trials)
    if prior is not None:
        return beta_posterior(prior, successes, trials, level=level)
    low, high = jeffreys_interval(successes, trials, level)
    # The observed rate, except at 0 or all successes, where the Jeffreys posterior mean
    # keeps the estimate off an impossible 0 or 1.
    interior = 0 < successes < trials
    estimate = successes / trials if interior else (successes + 0.5) / (trials + 1.0)
    return RateEstimate(
        estimate=estimate,
        low=low,
        high=high,
        successes=successes,
        trials=trials,
        method="jeffreys",
        level=level,
    )


def beta_posterior(
    prior: BetaPrior, successes: float, trials: float, *, level: float = 0.9
) -> RateEstimate:
    """Posterior mean and equal-tailed interval of a Beta prior updated with the pilot."""
    _check_counts(successes, trials)
    alpha = prior.alpha + successes
    beta = prior.beta + trials - successes
    tail = (1 - level) / 2
    return RateEstimate(
        estimate=alpha / (alpha + beta),
        low=float(stats.beta.ppf(tail, alpha, beta)),
        high=float(stats.beta.ppf(1 - tail, alpha, beta)),
        successes=successes,
        trials=trials,
        method=f"beta posterior, empirical-Bayes prior ({prior.source or 'history'})",
        level=level,
    )


def fit_beta_prior(
    successes: Sequence[float], trials: Sequence[float], *, source: str = "history"
) -> BetaPrior:
    """Fit a Beta prior to past (successes, trials) by beta-binomial maximum likelihood."""
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if x.shape != n.shape or x.size < 2:
        raise CostError("history needs at least two past campaigns to fit a prior")
    if (n <= 0).any() or (x < 0).any() or (x > n).any():
        raise CostError("history has a campaign with successes outside 0..trials")
    pooled = float(np.clip(x.sum() / n.sum(), 1e-4, 1 - 1e-4))

    def negative_log_likelihood(params: np.ndarray) -> float:
        mean = special.expit(params[0])
        strength = math.exp(params[1])
        a, b = mean * strength, (1 - mean) * strength
        loglik = special.betaln(x + a, n - x + b) - special.betaln(a, b)
        return -float(loglik.sum())

    start = np.array([special.logit(pooled), math.log(50.0)])
    result = optimize.minimize(
        negative_log_likelihood,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000},
    )
    mean = float(special.expit(result.x[0]))
    # Campaigns that agree perfectly push the strength to infinity; a prior worth more than
    # the median past campaign would drown the pilot, so cap it there.
    strength = float(min(math.exp(result.x[1]), float(np.median(n))))
    strength = max(strength, 2.0)
    return BetaPrior(alpha=mean * strength, beta=(1 - mean) * strength, source=source)


def poisson_rate_interval(
    count: float, exposure: float, level: float = 0.9
) -> tuple[float, float, float]:
    """Rate and exact (Garwood) interval of a Poisson count over an exposure."""
    if exposure <= 0 or count < 0:
        raise ValueError("need count >= 0 and exposure > 0")
    tail = (1 - level) / 2
    low = 0.0 if count == 0 else float(stats.gamma.ppf(tail, count)) / exposure
    high = float(stats.gamma.ppf(1 - tail, count + 1)) / exposure
    return count / exposure, low, high


def mean_interval(
    values: Sequence[float], *, seed: int = 0, level: float = 0.9, draws: int = 2000
) -> tuple[float, float, float]:
    """Mean and seeded percentile-bootstrap interval; (nan, nan, nan) for no values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    if data.size == 1:
        return float(data[0]), float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2
    if data.size > 2000:
        # Large samples: the bootstrap and the normal interval agree; skip the big resample.
        half = float(stats.norm.ppf(1 - tail)) * float(data.std(ddof=1)) / math.sqrt(data.size)
        return float(data.mean()), float(data.mean()) - half, float(data.mean()) + half
    means = rng.choice(data, size=(draws, data.size), replace=True).mean(axis=1)
    return (
        float(data.mean()),
        float(np.quantile(means, tail)),
        float(np.quantile(means, 1 - tail)),
    )
