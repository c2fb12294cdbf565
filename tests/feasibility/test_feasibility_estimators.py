"""Interval estimators: small-sample honesty, coverage, empirical-Bayes priors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from feasibility.estimators import (
    BetaPrior,
    beta_posterior,
    fit_beta_prior,
    jeffreys_interval,
    mean_interval,
    poisson_rate_interval,
    rate_estimate,
    wilson_interval,
)
from feasibility.exceptions import CostError


def _coverage(interval, p: float, n: int) -> float:
    """Exact coverage: sum of binomial probabilities of the x whose interval holds p."""
    total = 0.0
    for x in range(n + 1):
        low, high = interval(x, n, 0.9)
        if low <= p <= high:
            total += stats.binom.pmf(x, n, p)
    return total


def test_wilson_matches_closed_form_at_zero_successes() -> None:
    z = stats.norm.ppf(0.95)
    low, high = wilson_interval(0, 10, 0.9)
    assert low == 0.0
    assert high == pytest.approx(z * z / (10 + z * z))


def test_jeffreys_at_zero_successes_is_an_upper_bound_not_zero() -> None:
    low, high = jeffreys_interval(0, 40)
    assert low == 0.0
    assert high == pytest.approx(stats.beta.ppf(0.95, 0.5, 40.5))
    estimate = rate_estimate(0, 40)
    assert 0 < estimate.estimate < high


@pytest.mark.parametrize("interval", [wilson_interval, jeffreys_interval])
@pytest.mark.parametrize(("p", "n"), [(0.05, 20), (0.1, 30), (0.3, 15), (0.5, 50)])
def test_small_sample_coverage_near_nominal(interval, p: float, n: int) -> None:
    # The normal approximation falls far below 90 % here (e.g. ~0.64 at p=0.05, n=20).
    assert _coverage(interval, p, n) > 0.80


def test_normal_approximation_would_fail_the_same_check() -> None:
    def wald(x: int, n: int, level: float) -> tuple[float, float]:
        p = x / n
        half = stats.norm.ppf(0.5 + level / 2) * math.sqrt(p * (1 - p) / n)
        return p - half, p + half

    assert _coverage(wald, 0.05, 20) < 0.80


@given(st.integers(0, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_intervals_are_ordered_and_bounded(counts: tuple[int, int]) -> None:
    successes, trials = counts
    for interval in (wilson_interval, jeffreys_interval):
        low, high = interval(successes, trials)
        assert 0.0 <= low <= high <= 1.0
        if trials:
            assert low <= successes / trials + 1e-12
            assert high >= successes / trials - 1e-12


def test_intervals_reject_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_fit_beta_prior_recovers_the_generating_distribution() -> None:
    rng = np.random.default_rng(1)
    rates = rng.beta(12, 88, size=60)
    trials = rng.integers(300, 1000, size=60)
    successes = rng.binomial(trials, rates)
    prior = fit_beta_prior(successes, trials)
    assert prior.mean == pytest.approx(0.12, abs=0.01)
    assert 40 < prior.strength < 300


def test_fit_beta_prior_needs_two_campaigns() -> None:
    with pytest.raises(CostError, match="at least two"):
        fit_beta_prior([3], [10])


def test_posterior_shrinks_a_small_pilot_toward_the_prior() -> None:
    prior = BetaPrior(alpha=10, beta=90)
    posterior = beta_posterior(prior, 5, 10)
    assert 0.1 < posterior.estimate < 0.5
    assert posterior.estimate == pytest.approx(15 / 110)
    assert rate_estimate(5, 10, prior=prior) == posterior


def test_poisson_interval_zero_count() -> None:
    rate, low, high = poisson_rate_interval(0, 10.0)
    assert rate == 0.0
    assert low == 0.0
    assert high == pytest.approx(-math.log(0.05) / 10.0)


def test_mean_interval_is_seeded() -> None:
    values = np.random.default_rng(0).lognormal(4, 1, 200)
    assert mean_interval(values, seed=3) == mean_interval(values, seed=3)
    mean, low, high = mean_interval(values, seed=3)
    assert low < mean < high
