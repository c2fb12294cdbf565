"""The report end to end: keys, reproducibility, honest edge cases, verdicts, mix correction."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from feasibility import report as report_module
from feasibility.inputs import Costs, PastCampaign, Targets
from feasibility.report import FeasibilityReport, Verdict, build_report
from feasibility.synthetic import SyntheticList, dial_leads

MakeAttempts = Callable[[list[tuple[str, int, str, float, int]]], pd.DataFrame]


@pytest.fixture(scope="module")
def report(synthetic_list: SyntheticList, pilot_attempts: pd.DataFrame) -> FeasibilityReport:
    return build_report(
        pilot_attempts,
        synthetic_list.leads,
        seed=7,
        draws=200,
        targets=Targets(conversions=200, deadline_days=5, seats=30),
    )


def test_json_has_the_issue_keys(report: FeasibilityReport) -> None:
    data = json.loads(json.dumps(report.model_dump(mode="json")))
    assert {"leads", "dials", "contacts", "conversions"} <= set(data["pilot"])
    for key in ("contact_rate", "conversion_rate"):
        assert {"estimate", "low", "high"} <= set(data[key])
    for key in (
        "attempts_curve",
        "recommended_max_attempts",
        "segments",
        "operations",
        "verdict",
        "reasons",
    ):
        assert key in data
    projection = data["projection"]
    assert projection["leads"] == 2700
    for key in ("contacts", "conversions", "dials", "agent_hours"):
        band = projection[key]
        assert band["p10"] <= band["p50"] <= band["p90"]
    quote = data["quote"]
    assert set(quote["per_valid_call"]) >= {"month_1", "month_2", "steady", "holiday"}
    assert quote["vat_rate"] == 0.06
    assert "pilot_based" in quote
    assert data["verdict"] in {"go", "go_with_conditions", "no_go"}


def test_same_inputs_and_seed_give_identical_numbers(
    synthetic_list: SyntheticList, pilot_attempts: pd.DataFrame, report: FeasibilityReport
) -> None:
    again = build_report(
        pilot_attempts.sample(frac=1.0, random_state=1),
        synthetic_list.leads,
        seed=7,
        draws=200,
        targets=Targets(conversions=200, deadline_days=5, seats=30),
    )
    assert again.model_dump(mode="json") == report.model_dump(mode="json")
    other_seed = build_report(pilot_attempts, synthetic_list.leads, seed=8, draws=200)
    assert other_seed.projection != report.projection


def test_projection_is_near_what_really_happens(
    synthetic_list: SyntheticList, pilot_attempts: pd.DataFrame, report: FeasibilityReport
) -> None:
    pilot_ids = set(pilot_attempts["lead_id"])
    rest = np.flatnonzero(~synthetic_list.leads["lead_id"].isin(pilot_ids).to_numpy())
    truth = dial_leads(synthetic_list, rest, max_attempts=5, seed=99)
    contacts = int((truth["disposition"] == "contact").sum())
    band = report.projection.contacts
    width = band.p90 - band.p10
    assert band.p10 - width < contacts < band.p90 + width
    assert (
        report.attempts_curve[7].cumulative_geometric > report.attempts_curve[7].cumulative_contact
    )


def test_reach_curve_is_monotone_and_recommendation_in_range(report: FeasibilityReport) -> None:
    reach = [p.cumulative_contact for p in report.attempts_curve]
    assert all(b >= a for a, b in itertools.pairwise(reach))
    assert 1 <= report.recommended_max_attempts <= len(report.attempts_curve)
    fan = [p.contacts.p50 for p in report.projection_by_attempts]
    assert [p.max_attempts for p in report.projection_by_attempts] == list(range(1, 6))
    assert all(b > a for a, b in itertools.pairwise(fan))
    assert report.projection_by_attempts[-1].contacts.p50 == pytest.approx(
        report.projection.contacts.p50, rel=0.03
    )
    hazard = report.attempts_curve[report.recommended_max_attempts - 1].hazard
    assert hazard > report.attempts_curve[-1].hazard


def test_segments_find_the_planted_effects(report: FeasibilityReport) -> None:
    by_name = {t.attribute: t for t in report.segments}
    assert by_name["phone_type"].contact_effect.matters
    landline = next(lvl for lvl in by_name["phone_type"].levels if lvl.level == "landline")
    mobile = next(lvl for lvl in by_name["phone_type"].levels if lvl.level == "mobile")
    assert landline.contact_pooled.estimate < mobile.contact_pooled.estimate


def test_zero_conversions_give_an_honest_interval(make_attempts: MakeAttempts) -> None:
    leads = pd.DataFrame({"lead_id": [f"l{i}" for i in range(60)], "region": ["n", "s"] * 30})
    rows = [(f"l{i}", 1, "contact" if i % 3 == 0 else "no_answer", 45.0, 0) for i in range(40)]
    result = build_report(make_attempts(rows), leads, draws=200, targets=Targets(conversions=5))
    assert result.conversion_rate.estimate > 0
    assert result.conversion_rate.high > 0.05
    assert result.projection.conversions.p90 >= 0
    assert result.verdict is Verdict.NO_GO
    assert any("no conversions" in w for w in result.warnings)


def test_zero_contacts_do_not_crash_and_say_no_go(make_attempts: MakeAttempts) -> None:
    leads = pd.DataFrame({"lead_id": [f"l{i}" for i in range(30)]})
    rows = [(f"l{i}", k, "no_answer", 0.0, 0) for i in range(20) for k in (1, 2)]
    result = build_report(make_attempts(rows), leads, draws=200)
    assert result.contact_rate.high > 0.05
    assert result.verdict is Verdict.NO_GO
    assert any("reached no one" in r for r in result.reasons)
    assert result.quote.per_valid_call.steady == 1.34


def test_verdict_reasons_are_readable(
    synthetic_list: SyntheticList, pilot_attempts: pd.DataFrame
) -> None:
    hard = build_report(
        pilot_attempts,
        synthetic_list.leads,
        draws=200,
        targets=Targets(conversions=5000, deadline_days=2, seats=3),
    )
    assert hard.verdict is Verdict.NO_GO
    text = " | ".join(hard.reasons)
    assert "< 5,000 wanted" in text
    assert "seats for 2 days, 3 available" in text
    easy = build_report(
        pilot_attempts,
        synthetic_list.leads,
        draws=200,
        targets=Targets(conversions=30, deadline_days=60, seats=40),
    )
    assert easy.verdict is Verdict.GO
    assert any(">= 30 wanted" in r for r in easy.reasons)


def test_history_gives_an_empirical_bayes_prior(
    synthetic_list: SyntheticList, pilot_attempts: pd.DataFrame
) -> None:
    history = [
        PastCampaign(leads=2000, contacted=1000 + 40 * i, conversions=100 + 5 * i) for i in range(5)
    ]
    result = build_report(pilot_attempts, synthetic_list.leads, history=history, draws=200)
    assert result.priors is not None
    assert "empirical-Bayes" in result.conversion_rate.method
    plain = build_report(pilot_attempts, synthetic_list.leads, draws=200)
    prior_mean = result.priors.conversion.mean
    assert abs(result.conversion_rate.estimate - prior_mean) < abs(
        plain.conversion_rate.estimate - prior_mean
    )


def test_skewed_pilot_is_corrected_by_the_lead_attributes(synthetic_list: SyntheticList) -> None:
    leads = synthetic_list.leads
    mobile = np.flatnonzero((leads["phone_type"] == "mobile").to_numpy())
    indices = np.random.default_rng(2).choice(mobile, 400, replace=False)
    attempts = dial_leads(synthetic_list, indices, max_attempts=5, seed=4)
    result = build_report(attempts, leads, draws=200)
    rest = np.setdiff1d(np.arange(len(leads)), indices)
    truth = dial_leads(synthetic_list, rest, max_attempts=5, seed=5)
    actual = int((truth["disposition"] == "contact").sum())
    naive = result.contact_rate.estimate * len(rest)
    assert abs(result.projection.contacts.p50 - actual) < abs(naive - actual)


def test_max_attempts_beyond_the_pilot_is_warned(
    synthetic_list: SyntheticList, pilot_attempts: pd.DataFrame
) -> None:
    result = build_report(
        pilot_attempts,
        synthetic_list.leads,
        max_attempts=8,
        draws=200,
        costs=Costs(pilot_agent_hours=20.0),
    )
    assert result.projection.max_attempts == 8
    assert any("extrapolated" in w for w in result.warnings)
    assert result.quote.pilot_based.agent_hours_source == "measured"
    assert result.schema_version == report_module.REPORT_SCHEMA
