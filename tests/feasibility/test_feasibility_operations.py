"""Erlang B staffing: seats for a deadline and days for the seats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feasibility.inputs import Costs
from feasibility.operations import (
    agents_for_load,
    erlang_b,
    max_load_for_agents,
    plan_operations,
)
from feasibility.projection import Band


def test_erlang_b_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(10, 5.0) == pytest.approx(0.018384, abs=1e-6)
    assert erlang_b(0, 3.0) == 1.0


@given(load=st.floats(0.1, 200))
def test_agents_meet_both_targets_and_no_fewer_would(load: float) -> None:
    agents = agents_for_load(load, occupancy=0.85, abandon_target=0.03)
    assert load / agents <= 0.85 + 1e-9
    assert erlang_b(agents, load) <= 0.03
    fewer = agents - 1
    assert fewer == 0 or load / fewer > 0.85 or erlang_b(fewer, load) > 0.03


@given(agents=st.integers(1, 150))
def test_max_load_is_the_inverse_of_staffing(agents: int) -> None:
    load = max_load_for_agents(agents, occupancy=0.85, abandon_target=0.03)
    assert agents_for_load(load, occupancy=0.85, abandon_target=0.03) <= agents


def test_plan_adds_shrinkage_and_reports_days() -> None:
    costs = Costs()
    busy = Band(p10=900, p50=1000, p90=1100)
    plan = plan_operations(busy, costs=costs, deadline_days=10, seats_available=10)
    agents = agents_for_load(
        1000 / 80, occupancy=costs.occupancy, abandon_target=costs.abandon_target
    )
    assert plan.seats_needed == -(-agents * 100 // 85)
    assert plan.plans[1].seats_for_deadline >= plan.plans[0].seats_for_deadline
    assert plan.days_needed is not None
    assert plan.days_needed > 10  # 10 seats are too few for 10 days
    more = plan_operations(busy, costs=costs, deadline_days=10, seats_available=40)
    assert more.days_needed is not None
    assert more.days_needed < plan.days_needed


def test_one_seat_after_shrinkage_is_explained() -> None:
    plan = plan_operations(
        Band(p10=1, p50=2, p90=3), costs=Costs(shrinkage=0.5), deadline_days=None, seats_available=1
    )
    assert plan.days_needed is None
    assert "no agent on the phone" in plan.note
