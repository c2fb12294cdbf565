"""The interview state machine: navigation, validation, persistence, quotas."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys.engine import InterviewEngine, InterviewState, InterviewStatus
from surveys.exceptions import (
    InterviewError,
    InterviewNotActiveError,
    InvalidAnswerError,
    NotCurrentQuestionError,
    QuestionnaireInvalidError,
    QuotaCounterRequiredError,
    SchemaError,
)
from surveys.quotas import InMemoryQuotaCounter, QuotaCell
from surveys.randomization import option_order
from surveys.schema import Choice, Questionnaire

Build = Callable[..., Questionnaire]

FRUIT = {
    "name": "fruit",
    "type": "single_choice",
    "label": {"en": "Fruit?", "zh-Hant": "水果？"},
    "choices": "fruit",
    "randomize": True,
    "required": True,
}


def begin(engine: InterviewEngine, now: datetime, **kwargs: Any) -> InterviewState:
    kwargs.setdefault("interview_id", "iv-1")
    kwargs.setdefault("respondent_key", "lead-1")
    return engine.start(now=now, **kwargs)


def reject(engine: InterviewEngine, state: InterviewState, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidAnswerError) as info:
        engine.answer(state, *args, **kwargs)
    assert info.value.question == args[0]
    return info.value.message


class TestStart:
    def test_unpublishable_questionnaire_is_refused(self, build: Build) -> None:
        q = build([{"name": "a", "type": "text", "label": "A", "relevant": "${zz} = 1"}])
        with pytest.raises(QuestionnaireInvalidError):
            InterviewEngine(q)

    def test_attributes_are_checked(self, sample_engine: InterviewEngine, now: datetime) -> None:
        with pytest.raises(SchemaError, match="customer_name") as info:
            begin(sample_engine, now, attributes={"region": "north"})
        assert info.value.field == "attributes"
        with pytest.raises(SchemaError, match="not declared"):
            begin(sample_engine, now, attributes={"customer_name": "x", "region": "n", "vip": 1})

    def test_language_must_be_offered(
        self, sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
    ) -> None:
        with pytest.raises(SchemaError, match="zh-Hans"):
            begin(sample_engine, now, attributes=lead, language="zh-Hans")

    def test_first_question_is_piped_from_lead(
        self, sample_engine: InterviewEngine, now: datetime, lead: dict[str, str]
    ) -> None:
        state = begin(sample_engine, now, attributes=lead)
        shown = sample_engine.current_question(state)
        assert shown is not None
        assert shown.name == "greeting"
        assert "王小明" in shown.label
        assert "智慧電表" in shown.label
        assert shown.can_go_back is False
        assert (shown.number, shown.total) == (1, 10)


class TestAnswers:
    def test_only_the_current_question_can_be_answered(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(build([FRUIT, {"name": "t", "type": "text", "label": "T"}]))
        state = begin(engine, now)
        with pytest.raises(NotCurrentQuestionError) as info:
            engine.answer(state, "t", "hello")
        assert info.value.current == "fruit"

    def test_messages_follow_the_respondent_language(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(
            build(
                [
                    {
                        "name": "n",
                        "type": "integer",
                        "label": "N",
                        "required": True,
                        "min": 1,
                        "max": 10,
                    }
                ]
            )
        )
        state = begin(engine, now, language="zh-Hant")
        assert reject(engine, state, "n", None) == "此題必須作答。"
        assert reject(engine, state, "n", "abc") == "請輸入整數。"
        assert reject(engine, state, "n", 11) == "答案不可大於 10。"
        english = engine.set_language(state, "en")
        assert reject(engine, english, "n", 0) == "The answer must be at least 1."
        assert reject(engine, english, "n", 2.5) == "Please enter a whole number."
        assert reject(engine, english, "n", True) == "Please enter a whole number."
        assert engine.answer(english, "n", "7").answers["n"].value == 7

    def test_constraint_with_custom_localized_message(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(
            build(
                [
                    {
                        "name": "phone",
                        "type": "text",
                        "label": "P",
                        "constraint": "regex(., '^09[0-9]{8}$')",
                        "constraint_message": {
                            "en": "Mobile numbers start 09",
                            "zh-Hant": "手機號碼須以 09 開頭",
                        },
                    }
                ]
            )
        )
        state = begin(engine, now, language="zh-Hant")
        assert reject(engine, state, "phone", "12345") == "手機號碼須以 09 開頭"
        assert engine.answer(state, "phone", " 0912345678 ").answers["phone"].value == "0912345678"

    def test_choice_validation(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(
            build(
                [
                    {
                        "name": "f",
                        "type": "multiple_choice",
                        "label": "F",
                        "choices": "fruit",
                        "max_selected": 3,
                    }
                ]
            )
        )
        state = begin(engine, now)
        assert "banana" in reject(engine, state, "f", ["apple", "banana"])
        assert "twice" in reject(engine, state, "f", ["apple", "apple"])
        assert "cannot be combined" in reject(engine, state, "f", ["apple", "dk"])
        assert "at most 3" in reject(engine, state, "f", ["apple", "pear", "plum", "kiwi"])
        assert "specify" in reject(engine, state, "f", ["apple", "other"])
        assert "one or more" in reject(engine, state, "f", "apple")
        assert "Only the 'other'" in reject(engine, state, "f", ["apple"], other_text="x")
        done = engine.answer(state, "f", ["pear", "other"], other_text="durian")
        assert done.answers["f"].value == ["pear", "other"]
        assert done.answers["f"].other_text == "durian"

    def test_special_answers_on_numbers(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(
            build(
                [
                    {
                        "name": "inc",
                        "type": "decimal",
                        "label": "Income",
                        "required": True,
                        "special_answers": ["refused"],
                    }
                ]
            )
        )
        state = begin(engine, now)
        assert "don't know" in reject(engine, state, "inc", special="dont_know")
        assert "either" in reject(engine, state, "inc", 5, special="refused")
        assert engine.answer(state, "inc", special="refused").answers["inc"].special == "refused"
        assert engine.answer(state, "inc", "1234.5").answers["inc"].value == 1234.5

    def test_other_types(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(
            build(
                [
                    {"name": "d", "type": "date", "label": "D"},
                    {"name": "r", "type": "rating", "label": "R", "min": 0, "max": 10},
                    {"name": "t", "type": "text", "label": "T", "max_length": 5},
                    {"name": "n", "type": "note", "label": "Bye"},
                ]
            )
        )
        state = begin(engine, now)
        assert "YYYY-MM-DD" in reject(engine, state, "d", "2026-02-30")
        state = engine.answer(state, "d", "2026-02-28")
        assert "at most 10" in reject(engine, state, "r", 11)
        state = engine.answer(state, "r", 0)
        assert "5 characters" in reject(engine, state, "t", "abcdef")
        state = engine.answer(state, "t", None)  # optional: skipping is an answer
        assert "t" not in state.answers
        assert "read-out" in reject(engine, state, "n", "x")
        state = engine.answer(state, "n")
        assert state.awaiting_completion
        assert engine.complete(state).status == InterviewStatus.COMPLETED


class TestNavigation:
    def questionnaire(self, build: Build) -> Questionnaire:
        return build(
            [
                {
                    "name": "likes",
                    "type": "single_choice",
                    "label": "Likes fruit?",
                    "choices": "yes_no",
                    "required": True,
                },
                {
                    "name": "g",
                    "type": "group",
                    "label": {"en": "Fruit", "zh-Hant": "水果"},
                    "relevant": "${likes} = 'y'",
                    "questions": [
                        FRUIT,
                        {
                            "name": "why",
                            "type": "text",
                            "label": {"en": "Why ${fruit}?", "zh-Hant": "為何${fruit}？"},
                        },
                    ],
                },
                {
                    "name": "score",
                    "type": "calculate",
                    "calculation": "if(${likes} = 'y', 10, 0) + string-length(${why})",
                },
                {"name": "end", "type": "note", "label": "Score ${score}"},
            ]
        )

    def test_skip_logic_and_piping(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        state = engine.answer(begin(engine, now), "likes", "n")
        assert state.current == "end"
        state = engine.back(state)
        state = engine.answer(state, "likes", "y")
        shown = engine.current_question(state)
        assert shown is not None
        assert shown.name == "fruit"
        assert shown.group_labels == ["Fruit"]
        state = engine.answer(state, "fruit", "other", other_text="Durian")
        why = engine.current_question(state)
        assert why is not None
        assert why.label == "Why Durian?"
        state = engine.answer(state, "why", "smell")
        assert state.calculated["score"] == 15
        end = engine.current_question(state)
        assert end is not None
        assert end.label == "Score 15"

    def test_back_keeps_answers_and_drops_irrelevant_ones(
        self, build: Build, now: datetime
    ) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        state = begin(engine, now)
        with pytest.raises(InterviewError, match="first question"):
            engine.back(state)
        state = engine.answer(state, "likes", "y")
        state = engine.answer(state, "fruit", "pear")
        state = engine.back(state)
        shown = engine.current_question(state)
        assert shown is not None
        assert shown.current_answer is not None
        assert shown.current_answer.value == "pear"
        state = engine.back(state)
        state = engine.answer(state, "likes", "n")
        assert "fruit" not in state.answers
        assert state.calculated["score"] == 0

    def test_suspend_resume_and_persistence(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        state = engine.answer(begin(engine, now), "likes", "y")
        later = now + timedelta(hours=3)
        suspended = engine.suspend(state, now=later)
        assert suspended.status == InterviewStatus.SUSPENDED
        assert engine.current_question(suspended) is None
        with pytest.raises(InterviewNotActiveError, match="resume"):
            engine.answer(suspended, "fruit", "pear")
        # What the DB stores and reloads after a server restart.
        stored = suspended.model_dump(mode="json")
        reloaded = InterviewState.model_validate(stored)
        assert reloaded == suspended
        fresh_engine = InterviewEngine(self.questionnaire(build))
        resumed = fresh_engine.resume(reloaded, now=later)
        shown = fresh_engine.current_question(resumed)
        assert shown is not None
        assert shown.name == "fruit"
        assert resumed.updated_at == later
        with pytest.raises(InterviewNotActiveError):
            fresh_engine.resume(resumed)

    def test_break_off_records_where(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        state = engine.answer(begin(engine, now), "likes", "y")
        ended = engine.break_off(state)
        assert (ended.status, ended.stopped_at) == (InterviewStatus.BROKEN_OFF, "fruit")
        with pytest.raises(InterviewNotActiveError):
            engine.break_off(ended)

    def test_complete_only_at_the_end(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        with pytest.raises(InterviewError, match="still open"):
            engine.complete(begin(engine, now))

    def test_state_of_another_version_is_refused(
        self, build: Build, now: datetime, sample_engine: InterviewEngine
    ) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        with pytest.raises(InterviewError, match="version"):
            sample_engine.current_question(begin(engine, now))

    def test_choice_filter(self, build: Build, now: datetime) -> None:
        q = build(
            [
                {
                    "name": "county",
                    "type": "single_choice",
                    "label": "County",
                    "choices": "counties",
                },
                {
                    "name": "city",
                    "type": "single_choice",
                    "label": "City",
                    "choices": "cities",
                    "choice_filter": "county = ${county}",
                },
                {"name": "end", "type": "note", "label": "End"},
            ],
            choice_lists={
                "counties": [
                    {"value": "a", "label": "A"},
                    {"value": "b", "label": "B"},
                    {"value": "c", "label": "C"},
                ],
                "cities": [
                    {"value": "a1", "label": "A1", "columns": {"county": "a"}},
                    {"value": "a2", "label": "A2", "columns": {"county": "a"}},
                    {"value": "b1", "label": "B1", "columns": {"county": "b"}},
                ],
            },
            languages=["en"],
            title="T",
        )
        engine = InterviewEngine(q)
        state = engine.answer(begin(engine, now), "county", "a")
        shown = engine.current_question(state)
        assert shown is not None
        assert [o.value for o in shown.options] == ["a1", "a2"]
        assert "b1" in reject(engine, state, "city", "b1")
        # No city is left for county c: the question is skipped.
        state = engine.answer(engine.back(state), "county", "c")
        assert state.current == "end"


class TestRandomisation:
    def test_order_is_stable_across_reloads_and_languages(
        self, build: Build, now: datetime
    ) -> None:
        engine = InterviewEngine(build([FRUIT]))
        state = begin(engine, now, respondent_key="lead-42")
        first = engine.current_question(state)
        assert first is not None
        reloaded = InterviewState.model_validate(state.model_dump(mode="json"))
        chinese = engine.set_language(reloaded, "zh-Hant")
        again = engine.current_question(chinese)
        assert again is not None
        assert [o.value for o in again.options] == [o.value for o in first.options]
        assert [o.value for o in first.options][-2:] == ["other", "dk"]

    def test_order_differs_between_respondents(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(build([FRUIT]))
        orders = set()
        for i in range(30):
            shown = engine.current_question(begin(engine, now, respondent_key=f"lead-{i}"))
            assert shown is not None
            orders.add(tuple(o.value for o in shown.options))
        assert len(orders) > 5  # 24 possible orders of four movable options


_choice_values = st.lists(
    st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True), min_size=1, max_size=12, unique=True
)


@settings(max_examples=100, deadline=None)
@given(values=_choice_values, anchors=st.data(), seed=st.text(max_size=20))
def test_randomised_order_is_stable_for_one_respondent(
    values: list[str], anchors: st.DataObject, seed: str
) -> None:
    flags = anchors.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    choices = [
        Choice(value=v, label=v, special="dont_know" if flag else None)
        for v, flag in zip(values, flags, strict=True)
    ]
    # One dont_know per list is what validation allows; anchoring works for any number.
    order = option_order(choices, seed=seed, question="q")
    assert order == option_order(list(choices), seed=seed, question="q")
    assert sorted(c.value for c in order) == sorted(values)
    for index, choice in enumerate(choices):
        if choice.anchored:
            assert order[index] == choice


class TestQuotasAndScreening:
    def questionnaire(self, build: Build) -> Questionnaire:
        return build(
            [
                {
                    "name": "adult",
                    "type": "single_choice",
                    "label": "Adult?",
                    "choices": "yes_no",
                    "required": True,
                    "screen_out": "${adult} = 'n'",
                    "screen_out_message": {"en": "Sorry, adults only", "zh-Hant": "僅限成人"},
                },
                FRUIT,
                {"name": "end", "type": "note", "label": "End"},
            ],
            attributes=[{"name": "region"}],
            quotas=[{"name": "fruit_region", "variables": ["region", "fruit"], "target": 2}],
        )

    def test_screen_out(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        state = engine.answer(begin(engine, now, attributes={"region": "n"}), "adult", "n")
        assert state.status == InterviewStatus.NOT_ELIGIBLE
        assert state.stopped_at == "adult"
        assert engine.closing_message(state) == "Sorry, adults only"
        with pytest.raises(InterviewNotActiveError):
            engine.back(state)

    def test_quota_needs_a_counter(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        state = begin(engine, now, attributes={"region": "n"})
        state = engine.answer(engine.answer(state, "adult", "y"), "fruit", "pear")
        state = engine.answer(state, "end")
        with pytest.raises(QuotaCounterRequiredError):
            engine.complete(state)

    def test_full_cell_ends_the_interview_early(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        counter = InMemoryQuotaCounter({("fruit_region", "region=n;fruit=pear"): 2})
        state = engine.answer(begin(engine, now, attributes={"region": "n"}), "adult", "y")
        state = engine.answer(state, "fruit", "pear", quota_counter=counter)
        assert state.status == InterviewStatus.QUOTA_FULL
        assert state.quota_cells[0].key == "region=n;fruit=pear"
        assert "enough" in engine.closing_message(state)
        other = engine.answer(begin(engine, now, attributes={"region": "n"}), "adult", "y")
        other = engine.answer(other, "fruit", "apple", quota_counter=counter)
        assert other.status == InterviewStatus.IN_PROGRESS

    def test_parallel_completions_never_overfill_a_cell(self, build: Build, now: datetime) -> None:
        engine = InterviewEngine(self.questionnaire(build))
        counter = InMemoryQuotaCounter()
        ready = []
        for i in range(12):
            state = begin(engine, now, interview_id=f"iv-{i}", attributes={"region": "s"})
            state = engine.answer(
                engine.answer(state, "adult", "y"), "fruit", "kiwi", quota_counter=counter
            )
            ready.append(engine.answer(state, "end"))
        results: list[InterviewState] = []
        barrier = threading.Barrier(len(ready))

        def finish(state: InterviewState) -> None:
            barrier.wait()
            results.append(engine.complete(state, quota_counter=counter))

        threads = [threading.Thread(target=finish, args=(s,)) for s in ready]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = [r.status for r in results]
        assert statuses.count(InterviewStatus.COMPLETED) == 2
        assert statuses.count(InterviewStatus.QUOTA_FULL) == 10
        assert counter.count("fruit_region", "region=s;fruit=kiwi") == 2

    def test_claim_is_all_or_nothing(self) -> None:
        counter = InMemoryQuotaCounter({("b", "x=1"): 1})
        a = QuotaCell(quota="a", key="x=1", values={"x": "1"}, target=5)
        b = QuotaCell(quota="b", key="x=1", values={"x": "1"}, target=1)
        assert counter.claim([a, b]) == b
        assert counter.count("a", "x=1") == 0
        assert counter.claim([a]) is None
        assert counter.count("a", "x=1") == 1
