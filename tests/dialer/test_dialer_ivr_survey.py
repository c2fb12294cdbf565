"""Agentless IVR surveys on the simulator: the survey engine drives the calls through the
gateway's events, and the simulated gateway's respondents answer the real prompts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialer.ivr import IvrDriver, IvrTurn, SurveyIvr
from dialer.respondents import RespondentPrompt, RespondentReply
from dialer.scenario import parse_scenario
from dialer.simulator import CallRecord, Simulation, SimulationResult
from surveys.engine import InterviewEngine, InterviewMode, InterviewStatus
from surveys.ivr import IvrInput
from surveys.quotas import InMemoryQuotaCounter
from surveys.schema import load_questionnaire

SAMPLE = Path(__file__).resolve().parents[2] / "surveys" / "samples" / "customer_satisfaction.yaml"
SCENARIO = {
    "seed": 11,
    "mode": "agentless",
    "agents": 1,
    "agentless_lines": 8,
    "duration_s": 1500,
    "leads": 400,
    "answer_probability": 0.5,
}
INVALID_KEYS = {"9999#", "*#*#"}  # what surveys.ivr.SimulatedRespondent keys when mis-keying


@pytest.fixture(scope="module")
def engine() -> InterviewEngine:
    return InterviewEngine(load_questionnaire(SAMPLE))


def _attributes(lead_id: str) -> dict[str, str | int | float | None]:
    number = int(lead_id.removeprefix("lead-"))
    return {
        "customer_name": f"Customer {number}",
        "region": "south" if number % 2 else "north",
        "product": "Pilot",
    }


@dataclass
class Sink:
    records: list[CallRecord] = field(default_factory=list)

    def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)


@dataclass
class Run:
    result: SimulationResult
    ivr: SurveyIvr
    records: list[CallRecord]
    replies: list[tuple[IvrTurn, RespondentReply, IvrInput, dict[str, str]]]


def _run(engine: InterviewEngine, seed: int = 11, *, full_south: bool = True) -> Run:
    # The south region's age bands are already full: its respondents end as quota full.
    counts = (
        {("region_age", f"region=south;age_band={b}"): 200 for b in ("18_34", "35_54", "55_plus")}
        if full_south
        else {}
    )
    ivr = SurveyIvr(
        engine,
        quota_counter=InMemoryQuotaCounter(counts),
        attributes_for=_attributes,
        language="en",
    )
    inner = ivr.simulated_respondent(seed, hang_up_probability=0.04, invalid_key_probability=0.08)
    replies: list[tuple[IvrTurn, RespondentReply, IvrInput, dict[str, str]]] = []

    def respondent(prompt: RespondentPrompt, turn: IvrTurn) -> RespondentReply:
        shown = ivr.current_prompt(prompt.call_id)
        assert shown is not None
        reply = inner(prompt, turn)
        replies.append((turn, reply, shown.input, dict(shown.keys)))
        return reply

    sink = Sink()
    scenario = parse_scenario({**SCENARIO, "seed": seed})
    result = Simulation(scenario, outcome_sink=sink, ivr=ivr, ivr_respondent=respondent).run()
    return Run(result, ivr, sink.records, replies)


@pytest.fixture(scope="module")
def day(engine: InterviewEngine) -> Run:
    return _run(engine)


def test_survey_ivr_is_an_ivr_driver(engine: InterviewEngine) -> None:
    assert isinstance(SurveyIvr(engine), IvrDriver)


def test_agentless_day_completes_screens_out_and_breaks_off(day: Run) -> None:
    outcomes = Counter(i.outcome for i in day.ivr.finished())
    assert outcomes["completed"] > 0
    assert outcomes["not_eligible"] > 0
    assert outcomes["quota_full"] > 0
    assert outcomes["broken_off"] > 0
    assert day.ivr.in_progress == 0
    assert day.ivr.not_started == 0
    # every live answer became exactly one interview, and the result's counts agree
    assert sum(outcomes.values()) == day.result.live_answers
    assert day.result.interviews_completed == outcomes["completed"]
    assert day.result.interviews_broken_off == outcomes["broken_off"]
    assert day.result.abandoned == 0
    for interview in day.ivr.finished():
        state = interview.state
        assert state.mode is InterviewMode.IVR
        assert state.status.value == interview.outcome
        assert state.ended_at is not None
        if interview.outcome == "completed":
            assert {"consent", "used_recently", "age", "satisfaction", "nps", "channel"} <= set(
                state.answers
            )
            assert state.quota_cells  # claimed on completion
        if interview.outcome == "quota_full":
            assert state.attributes["region"] == "south"


def test_call_records_of_ivr_calls(day: Run) -> None:
    by_attempt = {r.attempt_id: r for r in day.records}
    assert len(day.records) == day.result.dials
    for interview in day.ivr.finished():
        record = by_attempt[interview.attempt_id]
        assert record.outcome == "contact"
        assert record.answer_kind == "human"
        assert record.agent_id is None
        assert record.answered_s is not None
        assert record.talk_s == pytest.approx(record.ended_s - record.answered_s)
        assert record.talk_s > 0
        # the caller hangs up on a break-off; the system after the goodbye otherwise
        if interview.outcome == "broken_off" and interview.invalid_inputs <= 3:
            assert record.hangup_by == "callee"
        else:
            assert record.hangup_by == "system"
    contacts = sum(r.outcome == "contact" for r in day.records)
    assert contacts == len(day.ivr.finished())


def test_respondents_key_valid_options_or_deliberate_invalid_keys(day: Run) -> None:
    invalid = 0
    for turn, reply, kind, keys in day.replies:
        assert turn.expect_dtmf
        assert not turn.over
        assert turn.text  # the read-out prompt travels with the turn
        assert dict(turn.keys) == keys
        digits = reply.digits
        if digits is None:  # a hang-up
            continue
        if digits in INVALID_KEYS:
            invalid += 1
            continue
        if kind is IvrInput.SINGLE_KEY and keys:
            assert digits in keys
            assert f"press {digits}." in turn.text
        elif kind is IvrInput.MULTI_KEYS:
            assert digits.endswith("#")
            assert set(digits[:-1]) <= set(keys)
        elif kind is IvrInput.DIGITS:
            assert digits.endswith("#")
            assert digits[:-1].isdigit()
    assert invalid > 0
    # every deliberate invalid input was counted and re-prompted (or ended the call after
    # too many in a row)
    assert sum(i.invalid_inputs for i in day.ivr.finished()) == invalid
    retries = sum(turn.message_id.endswith("-retry") for turn, _, _, _ in day.replies)
    assert 0 < retries <= invalid


def test_same_seed_same_day_and_other_seed_differs(engine: InterviewEngine, day: Run) -> None:
    again = _run(engine)
    assert again.result == day.result
    assert [(i.attempt_id, i.outcome, i.state.answers) for i in again.ivr.finished()] == [
        (i.attempt_id, i.outcome, i.state.answers) for i in day.ivr.finished()
    ]
    other = _run(engine, seed=12)
    assert [i.outcome for i in other.ivr.finished()] != [i.outcome for i in day.ivr.finished()]


def test_without_quota_pressure_nobody_is_quota_full(engine: InterviewEngine) -> None:
    run = _run(engine, seed=5, full_south=False)
    outcomes = Counter(i.outcome for i in run.ivr.finished())
    assert outcomes["quota_full"] == 0
    assert outcomes["completed"] > 0


def test_without_the_hook_results_are_unchanged() -> None:
    scenario = parse_scenario(SCENARIO)
    plain = Simulation(scenario).run()
    assert Simulation(scenario, ivr=None).run() == plain
    sink_a, sink_b = Sink(), Sink()
    Simulation(scenario, outcome_sink=sink_a).run()
    Simulation(scenario, outcome_sink=sink_b, ivr=None, ivr_respondent=None).run()
    assert sink_a.records == sink_b.records


def test_hook_without_a_respondent_uses_the_default_one(engine: InterviewEngine) -> None:
    # The gateway's generic respondent keys 1-5 or hangs up; the driver still copes.
    ivr = SurveyIvr(
        engine, quota_counter=InMemoryQuotaCounter(), attributes_for=_attributes, language="en"
    )
    result = Simulation(parse_scenario({**SCENARIO, "duration_s": 600}), ivr=ivr).run()
    statuses = {i.state.status for i in ivr.finished()}
    assert statuses
    assert statuses <= set(InterviewStatus)
    assert result.live_answers >= len(ivr.finished())


def test_driver_without_required_attributes_says_goodbye(engine: InterviewEngine) -> None:
    ivr = SurveyIvr(engine, quota_counter=InMemoryQuotaCounter())
    turn = ivr.start("c1", "lead-1", "a1", 0.0)
    assert turn.over
    assert turn.outcome == "not_started"
    assert ivr.not_started == 1
    assert ivr.finished() == []


def test_driver_turns_and_hang_up(engine: InterviewEngine) -> None:
    ivr = SurveyIvr(
        engine, quota_counter=InMemoryQuotaCounter(), attributes_for=_attributes, language="en"
    )
    first = ivr.start("c1", "lead-1", "a1", 0.0)
    assert first.expect_dtmf
    assert not first.over
    assert first.text.startswith("Hello, this is the customer service centre")
    second = ivr.respond("c1", "1", 5.0)  # the greeting note: any key continues
    assert second.expect_dtmf
    assert set(second.keys) == {"1", "2"}
    retry = ivr.respond("c1", "7", 9.0)
    assert retry.message_id.endswith("-retry")
    assert retry.expect_dtmf
    ivr.hang_up("c1", 12.0)
    (done,) = ivr.finished()
    assert done.outcome == "broken_off"
    assert done.invalid_inputs == 1
    assert done.state.stopped_at == "consent"
    assert ivr.for_attempt("a1") is done
    assert ivr.respond("c1", "1", 13.0).over  # nothing left to answer
