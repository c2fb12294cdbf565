"""Pilot sizing before and after a pilot, the sequential stop, and the provisional verdict."""

from __future__ import annotations

import numpy as np
import pytest

from feasibility.inputs import Targets
from feasibility.report import build_report
from feasibility.sizing import plan_pilot, size_after_pilot, valid_calls_needed
from feasibility.synthetic import dial_leads, make_lead_list


def test_valid_calls_needed_follows_the_poisson_precision() -> None:
    assert valid_calls_needed(0.10) == 271  # (1.645 / 0.10)^2 = 270.6
    assert valid_calls_needed(0.05) == 1083  # (1.645 / 0.05)^2 = 1082.4: 4x for half the width
    with pytest.raises(ValueError, match="between 0 and 1"):
        valid_calls_needed(0)


def test_plan_before_a_pilot_from_priors() -> None:
    plan = plan_pilot(
        contact_rate=0.4, valid_call_share=0.75, list_leads=20_000, attempts_per_lead=5
    )
    assert plan.valid_calls_needed == 271
    assert plan.leads == 904  # 271 / (0.4 x 0.75) = 903.3
    assert plan.expected_dials == 5 * 904
    assert plan.note == ""
    small = plan_pilot(contact_rate=0.4, valid_call_share=0.75, list_leads=500, attempts_per_lead=5)
    assert small.leads == 500
    assert "out of reach" in small.note


def test_after_a_pilot_dial_n_more_or_stop() -> None:
    # 100 valid calls from 400 leads: +-10 % needs 271, i.e. 1,084 leads: 684 more.
    sizing = size_after_pilot(
        pilot_leads=400,
        pilot_valid_calls=100,
        remaining_leads=10_000,
        rate_estimate=10.0,
        rate_low=8.5,
        rate_high=11.7,
        verdict_certain=False,
    )
    assert sizing.more_leads_for_precision == 684
    assert sizing.advice == "dial 684 more leads to know the price per valid call within +-10%"
    assert sizing.price_precision_now == pytest.approx(0.16)
    certain = size_after_pilot(
        pilot_leads=400,
        pilot_valid_calls=100,
        remaining_leads=10_000,
        rate_estimate=10.0,
        rate_low=8.5,
        rate_high=11.7,
        verdict_certain=True,
    )
    assert certain.advice.startswith("stop the pilot: the verdict is already certain")


def test_a_pilot_still_dialling_gives_a_provisional_verdict() -> None:
    synthetic = make_lead_list(1500, seed=4)
    leads = synthetic.leads.copy()
    pilot = np.arange(200)
    leads["is_pilot"] = leads.index < 243  # 43 pilot leads not dialled yet
    attempts = dial_leads(synthetic, pilot, max_attempts=4, seed=5)
    report = build_report(attempts, leads, targets=Targets(conversions=5), draws=200)
    assert report.provisional_leads_scheduled == 43
    assert report.reasons[0].startswith("provisional: 43 pilot leads still scheduled")
    finished = build_report(attempts, synthetic.leads, targets=Targets(conversions=5), draws=200)
    assert finished.provisional_leads_scheduled == 0
    assert not finished.reasons[0].startswith("provisional")
    # 5 conversions wanted from a 1,300-lead rest: certain at 90 %, so the pilot can stop.
    assert finished.sizing.verdict_certain
    assert finished.sizing.advice.startswith("stop the pilot")
