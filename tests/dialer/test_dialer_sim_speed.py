"""The simulator's fast paths decide and count exactly as the generic ones do."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from dialer.agents import AgentAction, AgentState, allowed_actions, next_state
from dialer.distributions import LogNormal
from dialer.exceptions import IllegalTransition
from dialer.pacing import ElapsedTimes, PacingSnapshot, PredictivePolicy
from dialer.scenario import parse_scenario
from dialer.simulator import Simulation, SimulationResult

DAY = {
    "duration_s": 3600,
    "answer_probability": 0.3,
    "talk_time_s": {"dist": "lognormal", "mean": 90, "sd": 60},
    "wrap_time_s": {"dist": "fixed", "value": 8},
}


@dataclasses.dataclass
class PlainSnapshots:
    """The predictive policy shown snapshots whose elapsed times are plain lists."""

    inner: PredictivePolicy = dataclasses.field(default_factory=PredictivePolicy)
    seen: int = 0

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        self.seen += 1
        plain = dataclasses.replace(
            snapshot,
            ringing_elapsed_s=list(snapshot.ringing_elapsed_s),
            talk_elapsed_s=list(snapshot.talk_elapsed_s),
            wrap_elapsed_s=list(snapshot.wrap_elapsed_s),
        )
        return self.inner.calls_to_launch(plain)


def _figures(result: SimulationResult) -> dict[str, object]:
    figures = result.to_dict()
    del figures["policy"]
    return figures


@pytest.mark.parametrize(
    ("agents", "seed", "extra"),
    [
        (30, 1, {}),
        (8, 2, {}),
        (30, 3, {"answer_probability": [{"from_s": 0, "p": 0.35}, {"from_s": 1800, "p": 0.15}]}),
        (20, 4, {"amd_policy": "pass_to_agent", "pacing_interval_s": 2.5}),
    ],
)
def test_predictive_decides_alike_on_array_and_plain_snapshots(agents, seed, extra):
    scenario = parse_scenario({**DAY, **extra, "agents": agents, "seed": seed})
    fast = Simulation(scenario, PredictivePolicy()).run()
    plain_policy = PlainSnapshots()
    plain = Simulation(scenario, plain_policy).run()
    assert plain_policy.seen > 1000
    assert _figures(fast) == _figures(plain)


def test_same_scenario_seed_and_policy_give_the_same_result():
    scenario = parse_scenario({**DAY, "agents": 25, "seed": 7})
    assert Simulation(scenario, PredictivePolicy()).run() == (
        Simulation(scenario, PredictivePolicy()).run()
    )


def test_elapsed_times_read_like_a_tuple_of_elapsed_seconds():
    elapsed = ElapsedTimes(10.0, (1.0, 2.5, 10.0))
    assert len(elapsed) == 3
    assert list(elapsed) == [9.0, 7.5, 0.0]
    assert elapsed[1] == 7.5
    assert elapsed[-1] == 0.0
    assert elapsed[:2] == (9.0, 7.5)
    assert elapsed == [9.0, 7.5, 0.0]
    assert elapsed == (9.0, 7.5, 0.0)
    assert elapsed == ElapsedTimes(9.0, (0.0, 1.5, 9.0))
    assert elapsed != [9.0]
    assert 7.5 in elapsed
    assert bool(ElapsedTimes(3.0, ())) is False
    assert sum(elapsed) == 16.5
    assert "9.0" in repr(elapsed)


def test_predictive_reads_array_and_plain_snapshots_alike():
    starts = {"ringing": (95.5, 98.0, 99.9), "talk": (10.0, 60.25, 99.0), "wrap": (97.0,)}
    now = 100.0
    arrays = PacingSnapshot(
        now_s=now,
        agents_signed_in=6,
        agents_ready=2,
        ringing_elapsed_s=ElapsedTimes(now, starts["ringing"]),
        talk_elapsed_s=ElapsedTimes(now, starts["talk"]),
        wrap_elapsed_s=ElapsedTimes(now, starts["wrap"]),
        live_answers_in_window=400,
        abandoned_in_window=3,
    )
    plain = dataclasses.replace(
        arrays,
        ringing_elapsed_s=[now - s for s in starts["ringing"]],
        talk_elapsed_s=[now - s for s in starts["talk"]],
        wrap_elapsed_s=[now - s for s in starts["wrap"]],
    )
    assert PredictivePolicy().calls_to_launch(arrays) == PredictivePolicy().calls_to_launch(plain)
    for n in (0, 3, 9):
        assert PredictivePolicy().expected_abandons(arrays, n) == (
            PredictivePolicy().expected_abandons(plain, n)
        )


def test_next_state_is_the_transition_table():
    for state in AgentState:
        for action in AgentAction:
            if action in allowed_actions(state):
                assert isinstance(next_state(state, action), AgentState)
            else:
                with pytest.raises(IllegalTransition) as raised:
                    next_state(state, action, agent_id="agent-007")
                assert raised.value.agent_id == "agent-007"


def test_lognormal_keeps_its_value_semantics():
    a = LogNormal(12.0, 6.0)
    assert a == LogNormal(12, 6)
    assert hash(a) == hash(LogNormal(12, 6))
    assert repr(a) == "LogNormal(mean_s=12.0, sd_s=6.0)"
    assert pickle.loads(pickle.dumps(a)) == a
    assert dataclasses.replace(a, sd_s=3.0).log_params == LogNormal(12.0, 3.0).log_params


# -- the tick's fast paths: snapshots, the guard chosen once, the stats window ------------


def test_make_snapshot_equals_the_dataclass():
    from dialer.pacing import PacingSnapshot, PacingStats, make_snapshot

    values = [
        12.0,
        5,
        2,
        ElapsedTimes(12.0, (1.0, 3.0)),
        (),
        [4.0],
        1,
        0,
        1,
        PacingStats(samples=3),
        40,
        1,
        0.03,
        None,
        0,
    ]
    assert make_snapshot(*values) == PacingSnapshot(*values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_snapshot(*values).now_s = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("guard", ["strict", "statistical"])
@pytest.mark.parametrize("agentless", [False, True])
def test_the_guard_chosen_once_answers_as_guarded_launch(guard, agentless):
    from dialer.guard import guard_for, guarded_launch
    from dialer.pacing import PacingStats

    launch = guard_for(guard, 0.02, agentless=agentless)
    for ready, ringing, live, abandoned in [(0, 5, 0, 0), (3, 1, 200, 2), (10, 30, 900, 30)]:
        snapshot = PacingSnapshot(
            now_s=100.0,
            agents_signed_in=12,
            agents_ready=ready,
            talk_elapsed_s=[30.0] * (12 - ready),
            ringing_elapsed_s=[3.0] * ringing,
            stats=PacingStats(samples=500, human_answer_upper=0.3),
            live_answers_in_window=live,
            abandoned_in_window=abandoned,
        )
        for requested in (0, 1, 4, 40):
            assert launch(snapshot, requested) == guarded_launch(
                snapshot, requested, guard=guard, risk=0.02, agentless=agentless
            )


@pytest.mark.parametrize("shuffled", [False, True])
def test_recent_stats_window_counts_as_a_plain_scan_would(shuffled):
    import random

    from dialer.stats import DialOutcome, RecentStats

    rng = random.Random(5)
    stats = RecentStats(window_s=60.0, short_window_s=20.0)
    seen: list[tuple[float, DialOutcome]] = []
    kinds = list(DialOutcome)
    t = 0.0
    for step in range(6000):
        t += rng.random()
        at = t - rng.random() * 30 if shuffled and step % 7 == 0 else t
        kind = rng.choice(kinds)
        stats.record_outcome(at, kind, 5.0)
        seen.append((at, kind))
        if step % 25 == 0:
            snapshot = stats.snapshot(t, 25.0)

            # What popping from the front while older leaves, for both windows.
            def left(since: float) -> list[DialOutcome]:
                start = 0
                while start < len(seen) and seen[start][0] < since:
                    start += 1
                return [k for _, k in seen[start:]]

            window = left(t - 60.0)
            assert snapshot.samples == len(window)
            humans = window.count(DialOutcome.HUMAN)
            assert snapshot.human_answer_rate == (humans + 40.0 * 0.25) / (len(window) + 40.0)
            recent = left(t - 20.0)
            if recent:
                from dialer.stats import answer_rate_upper_bound

                short = answer_rate_upper_bound(
                    recent.count(DialOutcome.HUMAN) / len(recent), len(recent)
                )
                assert snapshot.human_answer_upper is not None
                assert snapshot.human_answer_upper >= short
