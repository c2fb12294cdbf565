"""XLSForm -> questionnaire -> XLSForm -> the same questionnaire, for the demo questionnaire
(attributes, quotas with cells, screen-outs, special answers, codes, intro and closing texts)
and for an imported workbook."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from survey_builders import SAMPLE_PATH

from surveys.schema import dump_questionnaire, load_questionnaire, parse_questionnaire
from surveys.validation import Severity
from surveys.xlsform import import_xlsform
from surveys.xlsform_export import export_xlsform


def _round_trip(document: dict[str, Any]) -> dict[str, Any]:
    imported = import_xlsform(export_xlsform(parse_questionnaire(document)))
    assert [p for p in imported.problems if p.severity == Severity.ERROR] == []
    return dump_questionnaire(imported.questionnaire)


def test_the_demo_questionnaire_survives_the_round_trip() -> None:
    sample = load_questionnaire(SAMPLE_PATH)
    assert sample.quotas
    assert sample.attributes
    document = dump_questionnaire(sample)
    assert _round_trip(document) == document


def test_an_imported_workbook_survives_a_second_round_trip() -> None:
    spec = importlib.util.spec_from_file_location(
        "xlsform_fixture", Path(__file__).with_name("test_surveys_xlsform.py")
    )
    assert spec is not None
    assert spec.loader is not None
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    sheets = {"survey": fixture.SURVEY, "choices": fixture.CHOICES, "settings": fixture.SETTINGS}
    first = import_xlsform(fixture.workbook(sheets))
    document = dump_questionnaire(first.questionnaire)
    assert _round_trip(document) == document


_texts = st.text(alphabet="abc 滿意é", min_size=1, max_size=8).map(str.strip).filter(bool)


@settings(max_examples=25, deadline=None)
@given(
    labels=st.lists(st.tuples(_texts, _texts), min_size=1, max_size=4),
    required=st.booleans(),
    target=st.integers(min_value=0, max_value=500),
)
def test_round_trip_property(labels: list[tuple[str, str]], required: bool, target: int) -> None:
    questions: list[dict[str, Any]] = [
        {
            "name": f"q{i}",
            "type": "single_choice",
            "label": {"en": en, "zh-Hant": zh},
            "choices": "opts",
            "required": required,
        }
        for i, (en, zh) in enumerate(labels)
    ]
    document = {
        "id": "prop",
        "title": {"en": "T", "zh-Hant": "題"},
        "languages": ["en", "zh-Hant"],
        "default_language": "en",
        "choice_lists": {"opts": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]},
        "questions": questions,
        "quotas": [{"name": "by_q0", "variables": ["q0"], "target": target}],
    }
    expected = dump_questionnaire(parse_questionnaire(document))
    assert _round_trip(expected) == expected
