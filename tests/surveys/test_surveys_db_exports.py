"""CSV exports never hand a spreadsheet a formula, whatever the respondent typed."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from surveys.engine import InterviewStatus, StoredAnswer
from surveys.exports import data_dictionary_csv, export_csv
from surveys.results import ResponseRecord
from surveys.schema import Questionnaire, parse_questionnaire

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _record(text: str, age: int | None = None) -> ResponseRecord:
    answers = {"comment": StoredAnswer(value=text)}
    if age is not None:
        answers["age"] = StoredAnswer(value=age)
    return ResponseRecord(
        interview_id="i1",
        questionnaire_id="test_form",
        version="v",
        status=InterviewStatus.COMPLETED,
        language="en",
        answers=answers,
    )


def _form(build: Callable[..., Questionnaire]) -> Questionnaire:
    return build(
        [
            {"name": "comment", "type": "text", "label": "Comment"},
            {"name": "age", "type": "integer", "label": "Age", "special_answers": ["dont_know"]},
        ]
    )


FORM = parse_questionnaire(
    {
        "id": "test_form",
        "title": "Test",
        "languages": ["en"],
        "questions": [{"name": "comment", "type": "text", "label": "Comment"}],
    }
)


def _cell(text: str, column: str) -> str:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return rows[0][column]


_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs"))


@given(
    text=st.one_of(
        st.text(_PRINTABLE, min_size=1, max_size=40),
        st.tuples(st.sampled_from("=+-@"), st.text(_PRINTABLE, max_size=40)).map("".join),
    ).filter(lambda t: t.strip() == t and t != "")
)
def test_text_cells_never_start_a_formula(text: str) -> None:
    cell = _cell(export_csv(FORM, [_record(text)]), "comment")
    assert not cell.startswith(FORMULA_STARTS)
    if text.startswith(FORMULA_STARTS):
        assert cell == "'" + text
    else:
        assert cell == text


def test_formula_answers_are_prefixed_and_numbers_are_not(
    build: Callable[..., Questionnaire],
) -> None:
    form = _form(build)
    exported = export_csv(form, [_record('=HYPERLINK("http://evil","x")', age=-1)])
    assert _cell(exported, "comment") == '\'=HYPERLINK("http://evil","x")'
    assert _cell(exported, "age") == "-1"  # a number stays a number
    for dangerous in ("+1+2", "-2+3", "@SUM(A1)"):
        assert _cell(export_csv(form, [_record(dangerous)]), "comment") == "'" + dangerous


def test_dictionary_labels_are_prefixed_too(build: Callable[..., Questionnaire]) -> None:
    form = build([{"name": "comment", "type": "text", "label": "=cmd|' /C calc'!A0"}])
    rows = list(csv.DictReader(io.StringIO(data_dictionary_csv(form))))
    label = next(r["label"] for r in rows if r["variable"] == "comment")
    assert label == "'=cmd|' /C calc'!A0"
