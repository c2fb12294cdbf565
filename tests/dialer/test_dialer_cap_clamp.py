"""The policy-independent abandon-cap clamp: the pure rule, and the invariant in the simulator."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.pacing import (
    PacingSnapshot,
    PowerPolicy,
    PredictivePolicy,
    ProgressivePolicy,
    cap_safe_launch,
)
from dialer.scenario import parse_scenario
from dialer.simulator import Simulation


@dataclass(slots=True)
class RecklessPolicy:
    """Asks for 50 calls every tick, whatever the state."""

    calls: int = 50

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        return self.calls


def _snapshot(**fields: object) -> PacingSnapshot:
    base: dict[str, object] = {"now_s": 100.0, "agents_signed_in": 10, "agents_ready": 0}
    return PacingSnapshot(**{**base, **fields})  # type: ignore[arg-type]


def test_no_exposure_before_any_live_answer():
    # (0 + k) / (0 + k) = 1 > cap for any k ≥ 1: only calls with a free agent each.
    snap = _snapshot(agents_ready=3, ringing_elapsed_s=(1.0,))
    assert cap_safe_launch(snap, 50) == 2
    assert cap_safe_launch(_snapshot(agents_ready=0), 50) == 0


def test_exposure_budget_is_the_largest_k_within_the_cap():
    # 100 live answers, none abandoned, cap 3 %: 3/103 fits, 4/104 does not.
    counts = {"live_answers_in_window": 100, "abandoned_in_window": 0, "abandon_cap": 0.03}
    assert cap_safe_launch(_snapshot(**counts, agents_ready=2), 50) == 5
    assert cap_safe_launch(_snapshot(**counts, agents_ready=2, ringing_elapsed_s=(1,) * 5), 50) == 0
    assert cap_safe_launch(_snapshot(**counts, agents_ready=2, ringing_elapsed_s=(1,) * 4), 50) == 1
    # Waiting calls are exposed too; agents talking or in wrap-up do not help.
    snap = _snapshot(**counts, agents_ready=0, calls_waiting=2, talk_elapsed_s=(500.0,) * 8)
    assert cap_safe_launch(snap, 50) == 1
    # Abandons already counted use the budget up: 3 of 100 → (3 + k)/(100 + k) > 3 % for k ≥ 1.
    spent = {**counts, "abandoned_in_window": 3}
    assert cap_safe_launch(_snapshot(**spent, agents_ready=4, ringing_elapsed_s=(1,)), 50) == 3


def test_calls_bound_to_a_reserved_agent_are_not_exposed():
    counts = {"live_answers_in_window": 100, "abandoned_in_window": 0}
    snap = _snapshot(**counts, agents_ready=1, agents_reserved=4, ringing_elapsed_s=(2,) * 4)
    assert cap_safe_launch(snap, 50) == 0  # taken as unbound: 1 ready - 4 exposed + budget 3
    bound = _snapshot(
        **counts, agents_ready=1, agents_reserved=4, ringing_elapsed_s=(2,) * 4, ringing_bound=4
    )
    assert cap_safe_launch(bound, 50) == 4  # one free agent + three exposed calls


def test_over_the_cap_only_free_agents_are_served_and_agentless_is_not_clamped():
    over = _snapshot(live_answers_in_window=50, abandoned_in_window=5, agents_ready=3)
    assert cap_safe_launch(over, 10) == 3
    assert cap_safe_launch(over, -4) == 0
    agentless = _snapshot(agents_signed_in=0, ringing_elapsed_s=(1,) * 30)
    assert cap_safe_launch(agentless, 12, agentless=True) == 12
    assert cap_safe_launch(_snapshot(abandon_cap=1.0), 7) == 7


@st.composite
def clamp_inputs(draw: st.DrawFn) -> tuple[PacingSnapshot, int]:
    live = draw(st.integers(0, 5000))
    ringing = draw(st.integers(0, 80))
    snap = _snapshot(
        agents_ready=draw(st.integers(0, 40)),
        ringing_elapsed_s=(3.0,) * ringing,
        ringing_bound=draw(st.integers(0, ringing)),
        calls_waiting=draw(st.integers(0, 5)),
        live_answers_in_window=live,
        abandoned_in_window=draw(st.integers(0, live)),
        abandon_cap=draw(st.sampled_from([0.0, 0.01, 0.03, 0.05, 0.1, 0.5])),
    )
    return snap, draw(st.integers(-5, 200))


@settings(max_examples=200, deadline=None)
@given(inputs=clamp_inputs())
def test_clamp_rule(inputs):
    snap, requested = inputs
    allowed = cap_safe_launch(snap, requested)
    unbound = snap.calls_ringing - snap.ringing_bound + snap.calls_waiting
    free = snap.agents_ready - unbound
    assert 0 <= allowed <= max(requested, 0)
    # Progressive-level dialing is never blocked.
    assert allowed >= min(max(requested, 0), max(free, 0))
    a, live, cap = snap.abandoned_in_window, snap.live_answers_in_window, snap.abandon_cap

    def fits(k: int) -> bool:
        return a + k <= cap * (live + k) + 1e-9

    exposed = unbound + allowed - snap.agents_ready
    if allowed > max(free, 0):  # beyond free agents only what the worst case allows
        assert fits(exposed)
    if allowed < requested and allowed >= max(free, 0) and fits(0):
        assert not fits(exposed + 1)  # and all of it


POLICIES = {
    "progressive": ProgressivePolicy,
    "power3": lambda: PowerPolicy(3.0),
    "predictive": PredictivePolicy,
    "reckless": RecklessPolicy,
}


def _run_checking_every_moment(raw: dict[str, object], policy_name: str) -> tuple[int, int]:
    scenario = parse_scenario(raw)
    cap = scenario.abandon_target
    seen = {"live": 0, "abandoned": 0, "worst": 0.0}

    def on_live_answer(at: float, abandoned: bool) -> None:
        seen["live"] += 1
        seen["abandoned"] += int(abandoned)
        # Once a live answer has happened, the rate is within the cap at every moment.
        assert seen["abandoned"] <= cap * seen["live"] + 1e-9, (at, seen, cap)

    result = Simulation(scenario, POLICIES[policy_name](), on_live_answer=on_live_answer).run()
    # The result reports the very counts the window (and so the clamp) used.
    assert (result.live_answers, result.abandoned) == (seen["live"], seen["abandoned"])
    assert result.abandon_rate <= cap + 1e-12
    return result.live_answers, result.abandoned


scenarios = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "agents": st.integers(1, 5),
        "duration_s": st.sampled_from([900, 1500]),
        "abandon_target": st.sampled_from([0.0, 0.01, 0.03, 0.05, 0.1]),
        "answer_probability": st.sampled_from([0.25, 0.4, 0.6]),
        "machine_probability": st.sampled_from([0.0, 0.1]),
        "talk_time_s": st.sampled_from(
            [{"dist": "lognormal", "mean": 40, "sd": 30}, {"dist": "exponential", "mean": 90}]
        ),
        "wrap_time_s": st.sampled_from(
            [{"dist": "fixed", "value": 0}, {"dist": "fixed", "value": 10}]
        ),
        "amd_policy": st.sampled_from(["hang_up", "pass_to_agent"]),
        "abandon_grace_s": st.sampled_from([0.0, 2.0]),
    }
)


@settings(max_examples=30, deadline=None)
@given(raw=scenarios, policy=st.sampled_from(sorted(POLICIES)))
def test_abandon_rate_never_exceeds_the_cap_at_any_moment(raw, policy):
    _run_checking_every_moment(raw, policy)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    raw=scenarios.map(lambda r: {**r, "duration_s": 3 * 3600}),
    policy=st.sampled_from(sorted(POLICIES)),
)
def test_abandon_rate_never_exceeds_the_cap_at_any_moment_long_days(raw, policy):
    _run_checking_every_moment(raw, policy)


@pytest.mark.parametrize("agents", [1, 3])
def test_reckless_policy_is_held_right_at_the_cap(agents):
    raw = {
        "seed": 7,
        "agents": agents,
        "duration_s": 1800,
        "abandon_target": 0.05,
        "answer_probability": 0.5,
        "talk_time_s": {"dist": "lognormal", "mean": 40, "sd": 30},
    }
    live, abandoned = _run_checking_every_moment(raw, "reckless")
    # Not vacuous: the clamp lets the reckless policy spend the budget, and no more.
    assert abandoned > 0
    assert abandoned / live > 0.03
