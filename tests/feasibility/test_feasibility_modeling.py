"""Beta-geometric and conversion models: recovery of known parameters, pooling, encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from feasibility.modeling import (
    FeatureEncoder,
    contact_survival,
    fit_contact_model,
    fit_conversion_model,
)


def _beta_geometric_sample(
    a: float, b: float, size: int, max_attempts: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, size=size)
    first = rng.geometric(p)
    contacted = first <= max_attempts
    return np.where(contacted, first, max_attempts), contacted


def test_beta_geometric_recovers_heterogeneity_and_reach() -> None:
    dials, contacted = _beta_geometric_sample(0.6, 1.4, 4000, 6, seed=1)
    leads = pd.DataFrame({"lead_id": [str(i) for i in range(dials.size)]})
    encoder = FeatureEncoder.fit(leads)
    model = fit_contact_model(encoder, encoder.transform(leads), dials, contacted)
    a, b = model.shape(encoder.transform(leads.iloc[:1]), model.posterior.mean)
    assert float(a[0, 0] / (a[0, 0] + b[0, 0])) == pytest.approx(0.3, abs=0.03)
    assert model.phi == pytest.approx(2.0, rel=0.35)
    # Extrapolated reach at 10 attempts matches the generating model, unlike a geometric fit.
    true_reach = 1 - contact_survival(np.array([0.6]), np.array([1.4]), 10)[0, 10]
    fitted_reach = 1 - contact_survival(a[0], b[0], 10)[0, 10]
    assert fitted_reach == pytest.approx(true_reach, abs=0.04)
    geometric_p = contacted.sum() / dials.sum()
    assert 1 - (1 - geometric_p) ** 10 > true_reach + 0.08


def test_contact_survival_matches_closed_form() -> None:
    a, b = np.array([0.7]), np.array([2.3])
    survival = contact_survival(a, b, 5)[0]
    expected = [np.exp(special.betaln(0.7, 2.3 + k) - special.betaln(0.7, 2.3)) for k in range(6)]
    np.testing.assert_allclose(survival, expected, rtol=1e-10)


def test_conversion_model_recovers_an_effect_and_pools_small_levels() -> None:
    rng = np.random.default_rng(3)
    size = 3000
    leads = pd.DataFrame(
        {
            "lead_id": [str(i) for i in range(size)],
            "product": rng.choice(["basic", "premium"], size=size),
            "tiny": np.where(np.arange(size) < 4, "rare", "common"),
        }
    )
    truth = special.expit(-1.5 + np.where(leads["product"] == "premium", -1.0, 0.0))
    converted = rng.random(size) < truth
    # The 4 "rare" leads all convert: the prior must stop an infinite effect.
    converted[:4] = True
    encoder = FeatureEncoder.fit(leads)
    model = fit_conversion_model(encoder, encoder.transform(leads), converted)
    names = encoder.columns
    coefficient = dict(zip(names, model.posterior.mean, strict=True))
    effect = coefficient["product=premium"] - coefficient["product=basic"]
    assert effect == pytest.approx(-1.0, abs=0.25)
    assert coefficient["tiny=rare"] - coefficient["tiny=common"] < 3.0
    assert np.all(np.linalg.eigvalsh(model.posterior.covariance) > 0)


def test_encoder_handles_numeric_missing_and_unseen_levels() -> None:
    leads = pd.DataFrame(
        {
            "lead_id": ["a", "b", "c", "d"],
            "age": [20.0, 40.0, None, 60.0],
            "income": [1.0, 2.0, 3.0, 4.0],
            "region": ["n", "s", None, "n"],
            "phone": ["555-1", "555-2", "555-3", "555-4"],
            "constant": ["x", "x", "x", "x"],
        }
    )
    encoder = FeatureEncoder.fit(leads)
    assert "region=(missing)" in encoder.columns
    assert encoder.skipped["constant"] == "constant"
    design = encoder.transform(leads)
    assert design.shape == (4, len(encoder.columns))
    assert np.all(design[:, 0] == 1)
    other = pd.DataFrame(
        {
            "lead_id": ["e"],
            "age": [30.0],
            "income": [2.0],
            "region": ["w"],
            "phone": ["x"],
            "constant": ["x"],
        }
    )
    row = encoder.transform(other)[0]
    region_columns = [i for i, n in enumerate(encoder.columns) if n.startswith("region=")]
    assert row[region_columns].sum() == 0  # unseen level: prior only
