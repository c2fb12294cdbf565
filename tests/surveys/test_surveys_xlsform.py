"""XLSForm import: supported columns, languages, and unsupported features reported by row."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from surveys.engine import InterviewEngine
from surveys.exceptions import XLSFormError
from surveys.schema import QuestionType
from surveys.validation import Severity, validate_questionnaire
from surveys.xlsform import import_xlsform

SURVEY = [
    [
        "type",
        "name",
        "label::English (en)",
        "label::zh-Hant",
        "hint::English (en)",
        "relevant",
        "constraint",
        "constraint_message::English (en)",
        "required",
        "calculation",
        "choice_filter",
        "parameters",
        "appearance",
    ],
    [
        "begin group",
        "about",
        "About you",
        "關於您",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "field-list",
    ],
    [
        "integer",
        "age",
        "Age?",
        "年齡？",
        "In years",
        None,
        ". >= 0 and . < 120",
        "0 to 119",
        "yes",
        None,
        None,
        None,
        None,
    ],
    [
        "select_one county",
        "county",
        "County?",
        "縣市？",
        None,
        None,
        None,
        None,
        "true",
        None,
        None,
        "randomize=true",
        None,
    ],
    [
        "select_one town",
        "town",
        "Town?",
        "鄉鎮？",
        None,
        None,
        None,
        None,
        None,
        None,
        "county = ${county}",
        None,
        None,
    ],
    ["end group", None, None, None, None, None, None, None, None, None, None, None, None],
    [
        "select_multiple fruit or_other",
        "fruit",
        "Fruit?",
        "水果？",
        None,
        "${age} >= 18",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ],
    [
        "range",
        "score",
        "Score",
        "分數",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "start=0 end=10 step=1",
        None,
    ],
    [
        "calculate",
        "adult",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "if(${age} >= 18, 1, 0)",
        None,
        None,
        None,
    ],
    ["geopoint", "where", "Where?", "哪裡？", None, None, None, None, None, None, None, None, None],
    ["start", "started", None, None, None, None, None, None, None, None, None, None, None],
    ["begin repeat", "kids", "Kids", "小孩", None, None, None, None, None, None, None, None, None],
    ["text", "kid_name", "Name", "名字", None, None, None, None, None, None, None, None, None],
    ["end repeat", None, None, None, None, None, None, None, None, None, None, None, None],
    [
        "text",
        "note-1",
        "Comment",
        "意見",
        None,
        None,
        None,
        None,
        "${age} > 50",
        None,
        None,
        None,
        None,
    ],
    ["note", "bye", "Bye ${age}", "再見", None, None, None, None, None, None, None, None, None],
]
CHOICES = [
    ["list_name", "name", "label::English (en)", "label::zh-Hant", "county"],
    ["county", "tpe", "Taipei", "台北", None],
    ["county", "khh", "Kaohsiung", "高雄", None],
    ["town", "xinyi", "Xinyi", "信義", "tpe"],
    ["town", "zuoying", "Zuoying", "左營", "khh"],
    ["fruit", "apple", "Apple", "蘋果", None],
    ["fruit", 2, "Pear", "梨", None],
]
SETTINGS = [
    ["form_id", "form_title", "default_language", "version"],
    ["town_survey", "Town survey", "English (en)", "2026030201"],
]


def workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def imported() -> Any:
    return import_xlsform(workbook({"survey": SURVEY, "choices": CHOICES, "settings": SETTINGS}))


def test_questions_languages_and_settings(imported: Any) -> None:
    q = imported.questionnaire
    assert q.id == "town_survey"
    assert q.languages == ["en", "zh-Hant"]
    assert q.default_language == "en"
    about = q.question("about")
    assert about.type == QuestionType.GROUP
    assert [c.name for c in about.questions] == ["age", "county", "town"]
    age = q.question("age")
    assert age.required
    assert age.constraint == ". >= 0 and . < 120"
    assert age.label == {"en": "Age?", "zh-Hant": "年齡？"}
    assert age.hint == {"en": "In years"}
    assert q.question("county").randomize
    assert q.question("town").choice_filter == "county = ${county}"
    assert q.question("score").type == QuestionType.RATING
    assert (q.question("score").min, q.question("score").max) == (0, 10)
    assert q.question("adult").calculation == "if(${age} >= 18, 1, 0)"
    assert [c.value for c in q.choice_lists["fruit"]] == ["apple", "2", "other"]
    assert q.choice_lists["fruit"][-1].special == "other"
    assert q.choice_lists["town"][0].columns == {"county": "tpe"}


def test_features_are_imported_or_reported_at_their_sheet_row_and_column(imported: Any) -> None:
    found = {(p.row, p.column, p.code, p.severity) for p in imported.problems}
    assert (1, "M", "presentation_column", Severity.WARNING) in found  # appearance
    assert (10, "A", "not_asked_by_phone", Severity.WARNING) in found  # geopoint
    assert (12, "A", "open_repeat", Severity.WARNING) in found  # no repeat_count
    assert all(p.sheet == "survey" for p in imported.problems)
    q = imported.questionnaire
    assert q.question("where").type == QuestionType.NOT_ASKED
    assert (q.question("started").type, q.question("started").source_type) == ("metadata", "start")
    # Dashes are valid names (as in pyxform) and a required expression is kept.
    assert q.question("note-1").required_if == "${age} > 50"
    # A repeat without repeat_count: rounds behind an "another one?" question.
    names = [question.name for question in q.walk()]
    assert names.index("kid_name_1") < names.index("kids_another_2") < names.index("kid_name_2")
    assert q.question("kids_2").relevant == "${kids_another_2} = 'yes'"
    assert (
        "sheet survey row 10 column A"
        in next(p for p in imported.problems if p.row == 10).describe()
    )


def test_imported_form_validates_and_runs(imported: Any) -> None:
    q = imported.questionnaire
    assert [p for p in validate_questionnaire(q) if p.severity == Severity.ERROR] == []
    engine = InterviewEngine(q)
    state = engine.start(interview_id="x", respondent_key="r", now=datetime(2026, 1, 1, tzinfo=UTC))
    state = engine.answer(engine.answer(state, "age", 30), "county", "khh")
    town = engine.current_question(state)
    assert town is not None
    assert [o.value for o in town.options] == ["zuoying"]


def test_unusable_workbooks(tmp_path: Path) -> None:
    with pytest.raises(XLSFormError, match="no 'survey' sheet"):
        import_xlsform(workbook({"choices": CHOICES}))
    with pytest.raises(XLSFormError, match="not an Excel workbook"):
        import_xlsform(b"not a workbook")
    with pytest.raises(XLSFormError, match="does not exist"):
        import_xlsform(tmp_path / "missing.xlsx")
    with pytest.raises(XLSFormError, match="no 'type' column"):
        import_xlsform(workbook({"survey": [["name", "label"], ["a", "A"]]}))
