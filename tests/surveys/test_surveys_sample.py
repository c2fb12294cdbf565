"""The demo questionnaire end to end: screener, quota, skip logic, piping, both languages."""

from __future__ import annotations

from datetime import datetime

from surveys.engine import InterviewEngine, InterviewState, InterviewStatus
from surveys.quotas import InMemoryQuotaCounter
from surveys.results import record_from_state


def answer_all(
    engine: InterviewEngine,
    state: InterviewState,
    answers: dict[str, object],
    counter: InMemoryQuotaCounter,
) -> InterviewState:
    """Answer whatever is current from ``answers`` until the interview stops asking."""
    seen = []
    while state.status == InterviewStatus.IN_PROGRESS and state.current is not None:
        name = state.current
        seen.append(name)
        value = answers.get(name)
        other = None
        if isinstance(value, tuple):
            value, other = value
        state = engine.answer(state, name, value, other_text=other, quota_counter=counter)
    if state.awaiting_completion:
        state = engine.complete(state, quota_counter=counter)
    state.history = seen  # what was asked, for the assertions below
    return state


HAPPY = {
    "consent": "1",
    "used_recently": "1",
    "age": 63,
    "satisfaction": "5",
    "nps": 10,
    "channel": "app",
}


def test_satisfied_promoter_in_traditional_chinese(
    sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
) -> None:
    counter = InMemoryQuotaCounter()
    state = sample_engine.start(
        interview_id="cs-1",
        respondent_key="lead-1",
        now=now,
        attributes=lead,
        quota_counter=counter,
    )
    state = answer_all(sample_engine, state, HAPPY, counter)
    assert state.status == InterviewStatus.COMPLETED
    # Skip logic: no reasons (satisfied), no improvement question (promoter).
    assert state.history == [
        "greeting",
        "consent",
        "used_recently",
        "age",
        "satisfaction",
        "nps",
        "channel",
        "thanks",
    ]
    assert state.calculated == {"age_band": "55_plus", "nps_group": "promoter"}
    assert [c.key for c in state.quota_cells] == ["region=north;age_band=55_plus"]
    assert counter.count("region_age", "region=north;age_band=55_plus") == 1
    assert sample_engine.closing_message(state) == "訪問完成，謝謝 王小明 的寶貴意見。"


def test_dissatisfied_detractor_switching_to_english(
    sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
) -> None:
    counter = InMemoryQuotaCounter()
    state = sample_engine.start(
        interview_id="cs-2", respondent_key="lead-2", now=now, attributes=lead
    )
    for name, value in [
        ("greeting", None),
        ("consent", "1"),
        ("used_recently", "1"),
        ("age", 30),
        ("satisfaction", "2"),
        ("nps", 4),
    ]:
        state = sample_engine.answer(state, name, value, quota_counter=counter)
    state = sample_engine.set_language(state, "en")
    reasons = sample_engine.current_question(state)
    assert reasons is not None
    assert reasons.name == "reasons"
    assert reasons.label == 'You said "Dissatisfied". What are the main reasons? (all that apply)'
    # Randomised, with "other" and "don't know" kept in their places at the end.
    assert [o.value for o in reasons.options][-2:] == ["other", "dk"]
    assert sorted(o.value for o in reasons.options[:4]) == [
        "delivery",
        "price",
        "quality",
        "service",
    ]
    state = sample_engine.answer(state, "reasons", ["price", "other"], other_text="Too loud")
    state = sample_engine.answer(state, "channel", "web")
    improve = sample_engine.current_question(state)
    assert improve is not None
    assert improve.label == "You gave us 4. What could we do better?"
    state = sample_engine.answer(state, "improve", "Cheaper plans")
    thanks = sample_engine.current_question(state)
    assert thanks is not None
    assert thanks.label == "Thank you for your feedback, 王小明!"
    state = sample_engine.answer(state, "thanks")
    state = sample_engine.complete(state, quota_counter=counter)
    assert state.status == InterviewStatus.COMPLETED
    record = record_from_state(sample_engine, state)
    assert record.answers["reasons"].other_text == "Too loud"
    assert record.progress == 1.0


def test_screener_ends_minors_as_not_eligible(
    sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
) -> None:
    counter = InMemoryQuotaCounter()
    state = sample_engine.start(
        interview_id="cs-3", respondent_key="lead-3", now=now, attributes=lead, language="en"
    )
    state = answer_all(sample_engine, state, {**HAPPY, "age": 16}, counter)
    assert state.status == InterviewStatus.NOT_ELIGIBLE
    assert state.stopped_at == "age"
    assert sample_engine.closing_message(state) == "Thank you for your time; that is all we need."


def test_quota_cell_fills_at_its_target(
    sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
) -> None:
    counter = InMemoryQuotaCounter()
    south = {**lead, "region": "south"}
    outcomes = []
    for i in range(53):
        state = sample_engine.start(
            interview_id=f"cs-q{i}",
            respondent_key=f"lead-q{i}",
            now=now,
            attributes=south,
            quota_counter=counter,
        )
        outcomes.append(answer_all(sample_engine, state, HAPPY, counter))
    statuses = [s.status for s in outcomes]
    # The south × 55+ cell has a target of 50 (the default for other cells is 200).
    assert statuses.count(InterviewStatus.COMPLETED) == 50
    assert statuses.count(InterviewStatus.QUOTA_FULL) == 3
    late = outcomes[-1]
    assert late.stopped_at == "age"  # ended as soon as the cell was known, not at the end
    assert "名額已滿" in sample_engine.closing_message(late)
    assert counter.count("region_age", "region=south;age_band=55_plus") == 50
