"""Model selection on the pilot, post-dial attribute detection, and a stable attempts curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feasibility.inputs import Costs, validate_inputs
from feasibility.modeling import FeatureEncoder, post_dial_attributes
from feasibility.projection import attempts_curve, fit_pilot_models
from feasibility.selection import MIN_CLASS, select_conversion_model
from feasibility.synthetic import dial_leads, make_lead_list


def _leads(size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(size)],
            "segment": rng.choice(["a", "b", "c", "d"], size=size),
            "channel": rng.choice(["web", "shop", "phone"], size=size),
            "age": rng.integers(20, 70, size=size),
            "score": rng.normal(size=size),
        }
    )


def test_noise_attributes_fall_back_to_the_pooled_rate() -> None:
    leads = _leads(400, seed=1)
    converted = np.random.default_rng(2).random(400) < 0.2  # no attribute matters
    encoder = FeatureEncoder.fit(leads)
    model, selection = select_conversion_model(encoder, encoder.transform(leads), converted)
    assert selection.chosen == "pooled"
    assert model.kind == "pooled"
    assert "no model beat it out of sample" in selection.reason
    p = model.probability(encoder.transform(leads), model.posterior.mean)[0]
    assert np.allclose(p, p[0])
    assert p[0] == pytest.approx(converted.mean(), abs=0.01)


def test_a_strong_attribute_wins_over_the_pooled_rate() -> None:
    leads = _leads(600, seed=3)
    rate = np.where(leads["segment"] == "a", 0.6, 0.08)
    converted = np.random.default_rng(4).random(600) < rate
    encoder = FeatureEncoder.fit(leads)
    model, selection = select_conversion_model(encoder, encoder.transform(leads), converted)
    assert selection.chosen in {"logistic", "boosting"}
    assert "beat the pooled rate out of sample" in selection.reason
    pooled = next(c for c in selection.candidates if c.name == "pooled")
    assert min(c.log_loss for c in selection.candidates) < pooled.log_loss
    p = model.probability(encoder.transform(leads), model.posterior.mean)[0]
    in_a = (leads["segment"] == "a").to_numpy()
    assert p[in_a].mean() > 0.4 > 0.15 > p[~in_a].mean()


def test_too_few_conversions_are_pooled_with_the_reason() -> None:
    leads = _leads(200, seed=5)
    converted = np.zeros(200, dtype=bool)
    converted[: MIN_CLASS - 1] = True
    encoder = FeatureEncoder.fit(leads)
    _, selection = select_conversion_model(encoder, encoder.transform(leads), converted)
    assert selection.chosen == "pooled"
    assert f"{MIN_CLASS - 1} conversions" in selection.reason


def test_attributes_known_only_after_dialling_are_recognised() -> None:
    leads = _leads(100, seed=6)
    leads["month"] = "may"
    leads["day_of_week"] = "mon"
    leads["campaign"] = 2
    leads["duration"] = 30.0
    leads["poutcome"] = "nonexistent"  # the previous campaign's outcome is known beforehand
    pilot = {f"L{i}" for i in range(20)}
    leads["agent_note"] = np.where(leads["lead_id"].isin(pilot), "called", None)
    found = post_dial_attributes(leads, pilot)
    assert set(found) == {"month", "day_of_week", "campaign", "duration", "agent_note"}
    assert "filled for 100% of the dialled pilot leads but 0%" in found["agent_note"]


def test_fit_pilot_models_leaves_post_dial_columns_out() -> None:
    synthetic = make_lead_list(2000, seed=7)
    leads = synthetic.leads.copy()
    attempts = dial_leads(synthetic, np.arange(300), max_attempts=4, seed=8)
    # A column that records the pilot's own outcome: a model using it would be perfect in
    # the pilot and useless for the rest of the list.
    by_lead = attempts.groupby("lead_id")["converted"].max()
    leads["call_result"] = leads["lead_id"].map(by_lead)
    inputs = validate_inputs(attempts, leads)
    models = fit_pilot_models(inputs.attempts, inputs.leads, costs=Costs())
    assert "call_result" in models.excluded_post_dial
    assert "call_result" not in models.encoder.attributes


def test_attempts_curve_band_is_narrow_and_agrees_with_the_pilot() -> None:
    # A sales-style 200-lead pilot with high contact: the curve band at attempt 1 used to span
    # 5-65 % with an unstable heterogeneity estimate.
    synthetic = make_lead_list(3000, seed=21, base_contact=0.55, heterogeneity=3.0)
    attempts = dial_leads(synthetic, np.arange(200), max_attempts=6, seed=22)
    inputs = validate_inputs(attempts, synthetic.leads)
    models = fit_pilot_models(inputs.attempts, inputs.leads, costs=Costs())
    assert 0.3 <= models.contact.phi <= 30
    curve = attempts_curve(models, synthetic.leads.iloc[200:], max_attempt=15)
    for point in curve[:6]:
        assert point.cumulative_high - point.cumulative_low < 0.15
        assert point.observed_cumulative is not None
        # The pilot's own Kaplan-Meier reach is within a few points of the model band.
        assert point.cumulative_low - 0.08 <= point.observed_cumulative
        assert point.observed_cumulative <= point.cumulative_high + 0.08
