"""Simulation hooks for the live dial loop: lead source, outcome sink, stop and clock."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import pytest

from dialer.pacing import PacingSnapshot, PredictivePolicy
from dialer.scenario import parse_scenario
from dialer.simulator import CallRecord, DialTarget, LeadSource, OutcomeSink, Simulation

OUTCOMES = {"no_answer", "busy", "failed", "machine", "abandoned", "contact"}


@dataclass
class Source:
    """Numbered targets; ``per_call`` caps each answer, ``total`` the whole supply."""

    per_call: int | None = None
    total: int | None = None
    skip_every: int = 0
    agent_ids: tuple[str, ...] = ()
    handed: list[DialTarget] = field(default_factory=list)
    asks: list[tuple[int, float]] = field(default_factory=list)

    def next_targets(self, n: int, at_s: float) -> list[DialTarget]:
        self.asks.append((n, at_s))
        if self.skip_every and len(self.asks) % self.skip_every == 0:
            return []
        if self.per_call is not None:
            n = min(n, self.per_call)
        if self.total is not None:
            n = min(n, self.total - len(self.handed))
        out = []
        for _ in range(max(n, 0)):
            i = len(self.handed) + 1
            agent = self.agent_ids[i % len(self.agent_ids)] if self.agent_ids else None
            target = DialTarget(f"L{i}", f"A{i}", f"+861390000{i:04d}", agent)
            self.handed.append(target)
            out.append(target)
        return out


@dataclass
class Sink:
    records: list[CallRecord] = field(default_factory=list)

    def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)


BASE = {
    "seed": 5,
    "agents": 4,
    "duration_s": 1200,
    "answer_probability": 0.4,
    "machine_probability": 0.1,
    "talk_time_s": {"dist": "lognormal", "mean": 60, "sd": 40},
    "abandon_target": 0.05,
}


def _check_records(source: Source, sink: Sink, result) -> None:
    ids = Counter(r.attempt_id for r in sink.records)
    assert ids == Counter(t.attempt_id for t in source.handed)  # each exactly once
    assert result.dials == len(sink.records)
    by_attempt = {t.attempt_id: t for t in source.handed}
    for r in sink.records:
        target = by_attempt[r.attempt_id]
        assert (r.lead_id, r.phone_e164) == (target.lead_id, target.phone_e164)
        assert r.outcome in OUTCOMES
        assert r.ended_s >= r.originated_s
        assert r.abandoned == (r.outcome == "abandoned")
        if r.outcome in ("no_answer", "busy", "failed"):
            assert r.answered_s is None
            assert r.hangup_by is None
            assert r.agent_id is None
            assert r.talk_s == 0.0
        else:
            assert r.answered_s is not None
            assert r.answered_s >= r.originated_s
            assert r.hangup_by in ("caller", "callee", "system")
        if r.outcome == "contact":
            assert r.answer_kind == "human"
            assert r.agent_id is not None
            assert r.connected_s is not None
            assert r.talk_s > 0
        if r.outcome == "abandoned":
            assert r.answer_kind == "human"
            assert r.agent_id is None
            assert r.talk_s == 0.0
        if r.ringing_s is not None:
            assert r.originated_s <= r.ringing_s <= r.ended_s
    live = sum(1 for r in sink.records if r.outcome in ("contact", "abandoned"))
    assert live == result.live_answers
    assert sum(r.abandoned for r in sink.records) == result.abandoned


def test_every_target_is_dialled_and_finished_exactly_once_with_its_ids():
    source, sink = Source(per_call=3, skip_every=4), Sink()
    assert isinstance(source, LeadSource)
    assert isinstance(sink, OutcomeSink)
    result = Simulation(
        parse_scenario(BASE), PredictivePolicy(), lead_source=source, outcome_sink=sink
    ).run()
    assert len(source.handed) > 50
    _check_records(source, sink, result)
    outcomes = Counter(r.outcome for r in sink.records)
    assert outcomes["contact"] > 0
    assert outcomes["no_answer"] > 0
    # Calls in progress at the end of the day were let finish, not cut off.
    assert result.duration_s >= 1200
    assert max(r.ended_s for r in sink.records) == result.duration_s


def test_a_source_that_runs_dry_is_fine():
    source, sink = Source(per_call=1, total=30), Sink()
    result = Simulation(parse_scenario(BASE), lead_source=source, outcome_sink=sink).run()
    assert len(source.handed) == 30
    assert result.dials == 30
    _check_records(source, sink, result)
    # The source was asked again after running dry, and answered with nothing.
    assert len(source.asks) > 30


def test_snapshot_has_no_lead_count_with_a_source():
    seen: list[int | None] = []

    @dataclass
    class Spy:
        inner: PredictivePolicy = field(default_factory=PredictivePolicy)

        def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
            seen.append(snapshot.leads_available)
            return self.inner.calls_to_launch(snapshot)

    Simulation(parse_scenario({**BASE, "duration_s": 60}), Spy(), lead_source=Source()).run()
    assert seen
    assert set(seen) == {None}


def test_should_continue_stops_launching_and_drains_calls_in_progress():
    source, sink = Source(), Sink()
    checks: list[float] = []

    def should_continue(now: float) -> bool:
        checks.append(now)
        return now < 600

    result = Simulation(
        parse_scenario({**BASE, "duration_s": 3600}),
        lead_source=source,
        outcome_sink=sink,
        should_continue=should_continue,
    ).run()
    stop = checks[-1]
    assert 600 <= stop < 602
    assert all(t < stop for _, t in source.asks)
    assert all(r.originated_s < stop for r in sink.records)
    _check_records(source, sink, result)
    # Some calls were still going at the stop and were let finish.
    assert any(r.ended_s > stop for r in sink.records)
    assert result.duration_s == max(r.ended_s for r in sink.records)
    assert result.duration_s < 3600


def test_should_continue_without_a_sink_also_drains():
    scenario = parse_scenario({**BASE, "duration_s": 3600})
    sim = Simulation(scenario, should_continue=lambda now: now < 300)
    result = sim.run()
    assert sim.gateway.calls_in_progress == 0
    assert 300 <= result.duration_s < 3600


def test_hooks_that_do_nothing_change_nothing():
    scenario = parse_scenario(BASE)
    plain = Simulation(scenario).run()
    times: list[float] = []
    hooked = Simulation(scenario, should_continue=lambda now: True, on_advance=times.append).run()
    assert hooked == plain
    assert times[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[-1] <= 1200


def test_on_advance_tracks_the_clock_through_the_drain():
    times: list[float] = []
    sink = Sink()
    result = Simulation(
        parse_scenario(BASE), lead_source=Source(), outcome_sink=sink, on_advance=times.append
    ).run()
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[-1] == result.duration_s


def test_preview_mode_asks_the_source_and_offers_named_agents():
    source = Source(agent_ids=("agent-002", "agent-003", "nobody"))
    sink = Sink()
    result = Simulation(
        parse_scenario({**BASE, "mode": "preview"}), lead_source=source, outcome_sink=sink
    ).run()
    assert source.asks
    assert all(n <= 4 for n, _ in source.asks)
    _check_records(source, sink, result)
    assert result.abandoned == 0
    contacts = [r for r in sink.records if r.outcome == "contact"]
    assert contacts
    assert Counter(r.agent_id for r in contacts).keys() <= {f"agent-00{i}" for i in range(1, 5)}


def test_agentless_interviews_are_contacts_with_talk_time():
    source, sink = Source(), Sink()
    result = Simulation(
        parse_scenario({**BASE, "mode": "agentless", "agents": 0, "agentless_lines": 6}),
        lead_source=source,
        outcome_sink=sink,
    ).run()
    _check_records_agentless = [r for r in sink.records if r.outcome == "contact"]
    assert _check_records_agentless
    assert all(r.agent_id is None and r.talk_s > 0 for r in _check_records_agentless)
    assert len(sink.records) == len(source.handed) == result.dials
    assert result.interviews_completed + result.interviews_broken_off == len(
        _check_records_agentless
    )


def test_a_source_returning_more_than_asked_is_an_error():
    class Greedy:
        def next_targets(self, n: int, at_s: float) -> list[DialTarget]:
            return [DialTarget(f"L{i}", f"A{i}", "+8613900000000") for i in range(n + 1)]

    with pytest.raises(ValueError, match="at most as many as asked"):
        Simulation(parse_scenario({**BASE, "duration_s": 30}), lead_source=Greedy()).run()


def test_agentless_last_call_gets_its_record_too() -> None:
    """The final call's queued system hang-up is delivered after the drain (was lost before)."""
    from dialer.scenario import parse_scenario
    from dialer.simulator import DialTarget, Simulation

    class Source:
        def __init__(self) -> None:
            self.handed = 0

        def next_targets(self, n: int, at_s: float) -> list[DialTarget]:
            targets = []
            for _ in range(n):
                self.handed += 1
                targets.append(DialTarget(f"l{self.handed}", f"a{self.handed}", "+8613800000000"))
            return targets

    class Sink:
        def __init__(self) -> None:
            self.records: list[object] = []

        def call_finished(self, record: object) -> None:
            self.records.append(record)

    for seed in range(4):
        scenario = parse_scenario(
            {"seed": seed, "duration_s": 1800, "agents": 4, "mode": "agentless", "leads": 10**6}
        )
        source, sink = Source(), Sink()
        Simulation(scenario, None, lead_source=source, outcome_sink=sink).run()
        assert source.handed == len(sink.records) > 0
