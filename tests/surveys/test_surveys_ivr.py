"""IVR mode: DTMF key maps, read-out prompts, the seeded simulated respondent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

from surveys.engine import InterviewEngine, InterviewMode, InterviewState, InterviewStatus
from surveys.ivr import (
    IvrInput,
    SimulatedRespondent,
    ivr_problems,
    ivr_prompt,
    ivr_respond,
    run_ivr_interview,
)
from surveys.quotas import InMemoryQuotaCounter
from surveys.schema import Questionnaire

Build = Callable[..., Questionnaire]


def start_ivr(engine: InterviewEngine, now: datetime, key: str, **kwargs: object) -> InterviewState:
    return engine.start(
        interview_id=key,
        respondent_key=key,
        now=now,
        mode=InterviewMode.IVR,
        **kwargs,  # type: ignore[arg-type]
    )


def test_prompts_and_key_maps(
    sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
) -> None:
    state = start_ivr(sample_engine, now, "ivr-1", attributes=lead)
    greeting = ivr_prompt(sample_engine, state)
    assert greeting is not None
    assert greeting.input == IvrInput.CONTINUE
    assert greeting.text.startswith("您好，這是一份關於 智慧電表 的簡短問卷。")
    state = ivr_respond(sample_engine, state, "").state
    consent = ivr_prompt(sample_engine, state)
    assert consent is not None
    assert consent.input == IvrInput.SINGLE_KEY
    assert consent.keys == {"1": "1", "2": "2"}
    assert "是請按 1。" in consent.text
    assert "否請按 2。" in consent.text
    step = ivr_respond(sample_engine, state, "7")
    assert not step.accepted
    assert step.error == "按鍵 7 無效。"
    assert step.state == state
    state = ivr_respond(sample_engine, state, "1").state
    state = ivr_respond(sample_engine, state, "1").state
    age = ivr_prompt(sample_engine, state)
    assert age is not None
    assert (age.input, age.terminator) == (IvrInput.DIGITS, "#")
    assert "0 到 120" in age.text
    refused = ivr_respond(sample_engine, state, "150#")
    assert not refused.accepted
    assert "120" in refused.error
    state = ivr_respond(sample_engine, state, "45#").state
    assert state.answers["age"].value == 45
    state = ivr_respond(sample_engine, state, "4").state  # satisfaction: option 4 in list order
    nps = ivr_prompt(sample_engine, state)
    assert nps is not None
    assert nps.input == IvrInput.DIGITS
    assert nps.max_digits == 2
    state = ivr_respond(sample_engine, state, "10#").state
    assert state.answers["nps"].value == 10


def test_multiple_choice_keys_and_other_without_text(build: Build, now: datetime) -> None:
    engine = InterviewEngine(
        build(
            [
                {
                    "name": "f",
                    "type": "multiple_choice",
                    "label": {"en": "Which?", "zh-Hant": "哪些？"},
                    "choices": "fruit",
                }
            ]
        )
    )
    state = start_ivr(engine, now, "ivr-m", language="en")
    prompt = ivr_prompt(engine, state)
    assert prompt is not None
    assert prompt.input == IvrInput.MULTI_KEYS
    assert prompt.keys["5"] == "other"
    assert "For Apple, press 1." in prompt.text
    step = ivr_respond(engine, state, "15#")
    assert step.accepted
    assert step.state.answers["f"].value == ["apple", "other"]
    assert not ivr_respond(engine, state, "19#").accepted


def test_required_text_questions_are_reported_for_ivr(build: Build) -> None:
    q = build([{"name": "t", "type": "text", "label": "T", "required": True}])
    (problem,) = ivr_problems(q)
    assert (problem.question, problem.code) == ("t", "ivr_text")


def test_simulated_respondents_are_reproducible(
    sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
) -> None:
    def run(seed: int) -> list[tuple[str, str | None]]:
        state = start_ivr(sample_engine, now, f"ivr-{seed}", attributes=lead)
        respondent = SimulatedRespondent(
            seed, hang_up_probability=0.05, invalid_key_probability=0.1
        )
        transcript = run_ivr_interview(
            sample_engine, state, respondent, quota_counter=InMemoryQuotaCounter()
        )
        return [(t.question, t.keys) for t in transcript.turns]

    assert run(7) == run(7)
    assert any(run(7) != run(seed) for seed in range(8, 12))


def test_simulated_ivr_batch_reaches_every_ending(
    sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
) -> None:
    counter = InMemoryQuotaCounter()
    endings: Counter[InterviewStatus] = Counter()
    for seed in range(120):
        state = start_ivr(sample_engine, now, f"b-{seed}", attributes={**lead, "region": "east"})
        respondent = SimulatedRespondent(
            seed, hang_up_probability=0.02, invalid_key_probability=0.05
        )
        transcript = run_ivr_interview(sample_engine, state, respondent, quota_counter=counter)
        final = transcript.state
        endings[final.status] += 1
        if final.status == InterviewStatus.COMPLETED:
            assert final.quota_cells, "completions claim their quota cell"
            assert {"consent", "age", "satisfaction", "nps", "channel"} <= set(final.answers)
        assert final.status != InterviewStatus.IN_PROGRESS
    assert endings[InterviewStatus.COMPLETED] > 0
    assert endings[InterviewStatus.NOT_ELIGIBLE] > 0
    assert endings[InterviewStatus.BROKEN_OFF] > 0
    total_claimed = sum(
        counter.count("region_age", f"region=east;age_band={band}")
        for band in ("18_34", "35_54", "55_plus")
    )
    assert total_claimed == endings[InterviewStatus.COMPLETED]
