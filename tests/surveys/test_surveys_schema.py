"""Questionnaire schema loading and publish-time validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from surveys.exceptions import PublishedVersionError, QuestionnaireInvalidError, SchemaError
from surveys.schema import (
    Questionnaire,
    content_hash,
    dump_questionnaire,
    load_questionnaire,
    parse_questionnaire,
)
from surveys.validation import Problem, Severity, ensure_publishable, validate_questionnaire
from surveys.versioning import VersionStatus, ensure_editable, ensure_unchanged, publish_check

Build = Callable[..., Questionnaire]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == Severity.ERROR]


class TestLoading:
    def test_yaml_and_json_give_the_same_questionnaire(self, sample: Questionnaire) -> None:
        as_json = json.dumps(dump_questionnaire(sample), ensure_ascii=False)
        again = load_questionnaire(as_json)
        assert again == sample
        assert content_hash(again) == content_hash(sample)

    def test_unknown_question_type_names_the_field(self) -> None:
        doc = {
            "id": "x",
            "title": "T",
            "languages": ["en"],
            "questions": [{"name": "q1", "type": "slider", "label": "Q"}],
        }
        with pytest.raises(SchemaError) as info:
            parse_questionnaire(doc)
        assert info.value.field == "questions[0] (name=q1).type"
        assert "single_choice" in str(info.value)

    def test_typo_in_a_field_is_reported(self) -> None:
        doc = {
            "id": "x",
            "title": "T",
            "languages": ["en"],
            "questions": [{"name": "q1", "type": "text", "label": "Q", "relevance": "1"}],
        }
        with pytest.raises(SchemaError, match="relevance: unknown field"):
            parse_questionnaire(doc)

    @pytest.mark.parametrize(
        ("question", "needle"),
        [
            ({"name": "q", "type": "single_choice", "label": "Q"}, "needs 'choices'"),
            ({"name": "q", "type": "rating", "label": "Q"}, "needs 'min' and 'max'"),
            ({"name": "q", "type": "calculate"}, "needs 'calculation'"),
            ({"name": "q", "type": "text"}, "needs a 'label'"),
            ({"name": "q", "type": "note", "label": "N", "required": True}, "cannot be 'required'"),
            ({"name": "q", "type": "integer", "label": "Q", "min": 5, "max": 1}, "greater than"),
            ({"name": "bad name", "type": "text", "label": "Q"}, "not a valid name"),
            ({"name": "q", "type": "group", "label": "G"}, "non-empty list"),
        ],
    )
    def test_per_type_rules(self, question: dict[str, Any], needle: str) -> None:
        doc = {"id": "x", "title": "T", "languages": ["en"], "questions": [question]}
        with pytest.raises(SchemaError, match=needle):
            parse_questionnaire(doc)

    def test_broken_yaml_says_where(self) -> None:
        with pytest.raises(SchemaError, match=r"line \d+, column \d+"):
            load_questionnaire("id: x\ntitle: [unclosed\n")

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(SchemaError, match="cannot read"):
            load_questionnaire(tmp_path / "nope.yaml")


class TestValidation:
    def test_sample_is_publishable_without_warnings(self, sample: Questionnaire) -> None:
        assert validate_questionnaire(sample) == []

    def test_duplicate_names(self, build: Build) -> None:
        q = build(
            [
                {"name": "a", "type": "text", "label": "A"},
                {
                    "name": "g",
                    "type": "group",
                    "questions": [{"name": "a", "type": "integer", "label": "A again"}],
                },
            ]
        )
        found = errors(validate_questionnaire(q))
        assert [(p.code, p.question) for p in found] == [("duplicate_name", "a")]

    def test_unknown_choice_list(self, build: Build) -> None:
        q = build([{"name": "a", "type": "single_choice", "label": "A", "choices": "colours"}])
        (problem,) = errors(validate_questionnaire(q))
        assert problem.code == "unknown_choice_list"
        assert problem.field == "choices"
        assert "colours" in problem.message

    def test_expression_errors_name_question_field_and_column(self, build: Build) -> None:
        q = build(
            [
                {"name": "age", "type": "integer", "label": "Age"},
                {"name": "b", "type": "text", "label": "B", "relevant": "${age} >> 3"},
                {"name": "c", "type": "text", "label": "C", "relevant": "${agee} > 3"},
                {"name": "d", "type": "text", "label": "D", "constraint": "string-length() < 3"},
                {"name": "e", "type": "text", "label": "E", "relevant": ". > 3"},
                {"name": "f", "type": "text", "label": "F", "relevant": "region = 'x'"},
                {"name": "g", "type": "text", "label": "G", "constraint": "regex(., '(')"},
            ]
        )
        found = {p.question: p for p in errors(validate_questionnaire(q))}
        assert (found["b"].code, found["b"].field, found["b"].position) == (
            "syntax_error",
            "relevant",
            9,
        )
        assert (found["c"].code, found["c"].position) == ("unknown_reference", 1)
        assert found["d"].code == "wrong_arity"
        assert found["e"].code == "current_outside_constraint"
        assert found["f"].code == "bare_name"
        assert found["g"].code == "bad_regex"
        assert "question b, relevant, character 9" in found["b"].describe()

    def test_calculation_cycle(self, build: Build) -> None:
        q = build(
            [
                {"name": "x", "type": "calculate", "calculation": "${z} + 1"},
                {"name": "y", "type": "calculate", "calculation": "${x} * 2"},
                {"name": "z", "type": "calculate", "calculation": "${y} - 1"},
                {"name": "t", "type": "text", "label": "T"},
            ]
        )
        (problem,) = errors(validate_questionnaire(q))
        assert problem.code == "calculation_cycle"
        for name in ("x", "y", "z"):
            assert name in problem.message

    def test_self_reference_in_calculation(self, build: Build) -> None:
        q = build(
            [
                {"name": "x", "type": "calculate", "calculation": "${x} + 1"},
                {"name": "t", "type": "text", "label": "T"},
            ]
        )
        codes = {p.code for p in errors(validate_questionnaire(q))}
        assert "self_reference" in codes

    def test_piping_reference_must_exist(self, build: Build) -> None:
        q = build([{"name": "a", "type": "text", "label": {"en": "Hi ${nme}", "zh-Hant": "嗨"}}])
        (problem,) = errors(validate_questionnaire(q))
        assert (problem.code, problem.field, problem.position) == (
            "unknown_reference",
            "label",
            4,
        )

    def test_choice_filter_columns(self, build: Build) -> None:
        q = build(
            [
                {
                    "name": "city",
                    "type": "single_choice",
                    "label": "C",
                    "choices": "cities",
                    "choice_filter": "county = 'x' and nope = 1",
                },
            ],
            choice_lists={
                "cities": [
                    {"value": "a", "label": "A", "columns": {"county": "x"}},
                    {"value": "b", "label": "B", "columns": {"county": "y"}},
                ]
            },
            languages=["en"],
            title="T",
        )
        # As in XPath (and pyxform), a column the list lacks is empty: a warning, not an error.
        assert errors(validate_questionnaire(q)) == []
        (problem,) = [p for p in validate_questionnaire(q) if p.code == "unknown_choice_column"]
        assert "nope" in problem.message

    def test_warnings_do_not_block_publishing(self, build: Build) -> None:
        q = build([{"name": "a", "type": "text", "label": {"en": "A"}}])
        problems = ensure_publishable(q)
        codes = {p.code for p in problems}
        assert "missing_translation" in codes
        assert "unused_choice_list" in codes

    def test_errors_block_publishing(self, build: Build) -> None:
        q = build([{"name": "a", "type": "text", "label": "A", "relevant": "${nope}"}])
        with pytest.raises(QuestionnaireInvalidError, match="nope") as info:
            ensure_publishable(q)
        assert info.value.problems[0].question == "a"

    def test_quota_values_must_be_choices(self, build: Build) -> None:
        q = build(
            [{"name": "a", "type": "single_choice", "label": "A", "choices": "yes_no"}],
            quotas=[
                {
                    "name": "qa",
                    "variables": ["a"],
                    "cells": [{"match": {"a": "maybe"}, "target": 3}],
                }
            ],
        )
        codes = [p.code for p in errors(validate_questionnaire(q))]
        assert codes == ["unknown_quota_value"]


class TestVersioning:
    def test_published_versions_are_immutable(self) -> None:
        ensure_editable(VersionStatus.DRAFT, questionnaire_id="cs", version=1)
        with pytest.raises(PublishedVersionError, match="create version 3"):
            ensure_editable(VersionStatus.PUBLISHED, questionnaire_id="cs", version=2)

    def test_hash_detects_any_change(self, sample: Questionnaire) -> None:
        digest, warnings = publish_check(sample)
        assert warnings == []
        ensure_unchanged(digest, sample)
        data = dump_questionnaire(sample)
        data["questions"][0]["label"]["en"] = "Changed"
        with pytest.raises(PublishedVersionError):
            ensure_unchanged(digest, parse_questionnaire(data))
