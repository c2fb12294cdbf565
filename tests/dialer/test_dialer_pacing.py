"""Pacing policies: bounds, modes, the predictive model and the abandon cap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.exceptions import PolicyError
from dialer.pacing import (
    AgentlessPolicy,
    PacingMode,
    PacingSnapshot,
    PacingStats,
    PowerPolicy,
    PredictivePolicy,
    PreviewPolicy,
    ProgressivePolicy,
    load_policy,
    policy_for_mode,
)
from dialer.scenario import parse_scenario
from dialer.simulator import Simulation

elapsed = st.lists(st.floats(min_value=0, max_value=600), max_size=40)


@st.composite
def snapshots(draw: st.DrawFn, signed_in: int | None = None) -> PacingSnapshot:
    talk = draw(elapsed)
    wrap = draw(st.lists(st.floats(min_value=0, max_value=30), max_size=10))
    ready = draw(st.integers(0, 30))
    agents = (
        signed_in
        if signed_in is not None
        else ready + len(talk) + len(wrap) + draw(st.integers(0, 5))
    )
    live = draw(st.integers(0, 2000))
    return PacingSnapshot(
        now_s=draw(st.floats(0, 86400)),
        agents_signed_in=agents,
        agents_ready=ready if signed_in != 0 else 0,
        talk_elapsed_s=talk if signed_in != 0 else (),
        wrap_elapsed_s=wrap if signed_in != 0 else (),
        ringing_elapsed_s=draw(st.lists(st.floats(0, 40), max_size=60)),
        calls_waiting=draw(st.integers(0, 3)),
        live_answers_in_window=live,
        abandoned_in_window=draw(st.integers(0, live)),
        leads_available=draw(st.none() | st.integers(0, 50)),
    )


AGENT_POLICIES = [PreviewPolicy, ProgressivePolicy, lambda: PowerPolicy(2.5), PredictivePolicy]


@pytest.mark.parametrize("factory", AGENT_POLICIES)
@settings(max_examples=60, deadline=None)
@given(snapshot=snapshots(signed_in=0))
def test_no_calls_without_signed_in_agents(factory, snapshot):
    assert factory().calls_to_launch(snapshot) == 0


@pytest.mark.parametrize("factory", [*AGENT_POLICIES, lambda: AgentlessPolicy(lines=12)])
@settings(max_examples=60, deadline=None)
@given(snapshot=snapshots())
def test_launches_are_bounded_by_leads(factory, snapshot):
    calls = factory().calls_to_launch(snapshot)
    assert calls >= 0
    if snapshot.leads_available is not None:
        assert calls <= snapshot.leads_available


def test_progressive_covers_each_ready_agent_once():
    policy = ProgressivePolicy()
    snap = PacingSnapshot(
        now_s=0, agents_signed_in=6, agents_ready=4, ringing_elapsed_s=(3.0,), talk_elapsed_s=(5, 9)
    )
    assert policy.calls_to_launch(snap) == 3


def test_power_keeps_ratio_lines_per_ready_agent():
    snap = PacingSnapshot(now_s=0, agents_signed_in=5, agents_ready=3, ringing_elapsed_s=(1, 2))
    assert PowerPolicy(2.0).calls_to_launch(snap) == 4
    assert PowerPolicy(1.5).calls_to_launch(snap) == 2
    with pytest.raises(PolicyError, match=r"≥ 1\.0"):
        PowerPolicy(0.5)


def test_agentless_fills_free_lines_without_agents():
    snap = PacingSnapshot(
        now_s=0, agents_signed_in=0, agents_ready=0, ringing_elapsed_s=(1, 2, 3), calls_in_ivr=4
    )
    assert AgentlessPolicy(lines=10).calls_to_launch(snap) == 3
    assert AgentlessPolicy(lines=5).calls_to_launch(snap) == 0


def test_predictive_over_dials_when_agents_are_about_to_free_up():
    # Ten agents whose calls (120 ± 10 s, no wrap-up) are nearly over, nobody ready:
    # predictive dials ahead, progressive waits.
    snap = PacingSnapshot(
        now_s=1000,
        agents_signed_in=10,
        agents_ready=0,
        talk_elapsed_s=(118.0,) * 10,
        stats=PacingStats(talk_time_mean_s=120.0, talk_time_sd_s=10.0, wrap_time_mean_s=0.0),
        live_answers_in_window=1000,
        abandoned_in_window=0,
    )
    assert ProgressivePolicy().calls_to_launch(snap) == 0
    assert PredictivePolicy().calls_to_launch(snap) > 0


def test_predictive_dials_progressively_once_the_budget_is_spent():
    base = {
        "now_s": 5000,
        "agents_signed_in": 20,
        "agents_ready": 3,
        "talk_elapsed_s": (300.0,) * 17,
        "live_answers_in_window": 1000,
    }
    within = PacingSnapshot(**base, abandoned_in_window=5)
    spent = PacingSnapshot(**base, abandoned_in_window=60)
    policy = PredictivePolicy()
    assert policy.calls_to_launch(within) > 3
    assert policy.calls_to_launch(spent) == 3  # one per uncovered ready agent, no more


def test_predictive_expected_abandons_grow_with_calls():
    snap = PacingSnapshot(now_s=0, agents_signed_in=5, agents_ready=1, talk_elapsed_s=(30,) * 4)
    policy = PredictivePolicy()
    values = [policy.expected_abandons(snap, n) for n in (0, 2, 6, 12)]
    assert values == sorted(values)
    assert values[-1] > values[0] + 0.5


@pytest.mark.parametrize("agents", [1, 2, 3])
@pytest.mark.parametrize("seed", range(2))
def test_predictive_cap_holds_with_few_agents(agents, seed):
    scenario = parse_scenario(
        {"seed": seed, "agents": agents, "duration_s": 2 * 3600, "abandon_target": 0.03}
    )
    result = Simulation(scenario, PredictivePolicy()).run()
    assert result.live_answers > 20
    assert result.abandon_rate <= 0.03


@pytest.mark.slow
@pytest.mark.parametrize("agents", [1, 2, 3])
@pytest.mark.parametrize("seed", range(2, 22))
def test_predictive_cap_holds_with_few_agents_many_seeds(agents, seed):
    scenario = parse_scenario({"seed": seed, "agents": agents, "abandon_target": 0.03})
    assert Simulation(scenario, PredictivePolicy()).run().abandon_rate <= 0.03


def test_load_policy_by_import_path():
    policy = load_policy("dialer.pacing:PowerPolicy", ratio=3.0)
    assert isinstance(policy, PowerPolicy)
    assert policy.ratio == 3.0


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("dialer.pacing", "import path like"),
        ("no_such_module_xyz:Policy", "cannot import module"),
        ("dialer.pacing:Nope", "has no class 'Nope'"),
        ("dialer.pacing:PacingStats", "not a pacing policy"),
    ],
)
def test_load_policy_errors_say_what_is_wrong(path, message):
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_policy_for_mode():
    assert isinstance(policy_for_mode("predictive"), PredictivePolicy)
    assert isinstance(policy_for_mode(PacingMode.PREVIEW), PreviewPolicy)
    power = policy_for_mode("power", power_ratio=1.5)
    assert isinstance(power, PowerPolicy)
    assert power.ratio == 1.5
    with pytest.raises(PolicyError, match="unknown dialing mode"):
        policy_for_mode("turbo")
