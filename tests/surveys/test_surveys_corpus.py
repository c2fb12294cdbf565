"""57 real XLSForms written by others (pyxform's own test forms, see corpus/SOURCES.md) against
pyxform's verdicts: none crashes the import, every rejection names a sheet and row, we never
accept what pyxform refuses, and every form we accept runs as an interview.

The figures are printed (``pytest tests/surveys/test_surveys_corpus.py -s``). Forms pyxform
accepts and we refuse are listed in ``_KNOWN_DIFFERENCES`` with the reason; a form leaving
that list (or joining it) fails the test, so the accepted set can only move on purpose.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from surveys.engine import InterviewEngine
from surveys.exceptions import XLSFormError
from surveys.validation import Severity
from surveys.xlsform import import_xlsform

CORPUS = Path(__file__).parent / "corpus"
PYXFORM = json.loads((CORPUS / "pyxform_verdicts.json").read_text(encoding="utf-8"))

_KNOWN_DIFFERENCES = {
    # Nothing to ask by phone: a calculate only (and an expression pyxform does not parse).
    "bad_calc.xlsx": "no question",
    "bug_bad_calc.xlsx": "no question",
    "gps.xls": "no question: a geopoint only",
    # select_one_from_file with CSVs that are not in pyxform's repository: no options to read.
    "bug_UCL_Biomass_Plot_Form.xlsx": "choices file not attached",
    # A typed row without a name at row 19999, which pyxform silently drops.
    "bug_extra_columns.xls": "row without a name",
    # choice_filter "label::English != ''" is not an expression of ours.
    "bug_xl_date_ambiguous.xlsx": "choice filter on a label column",
}


@cache
def _verdict(path: Path) -> tuple[str, list[str]]:
    """'accepted', 'rejected' (with located errors) or 'rejected-whole' (XLSFormError)."""
    try:
        imported = import_xlsform(path)
    except XLSFormError as exc:
        return "rejected-whole", [str(exc)]
    errors = [p for p in imported.all_problems() if p.severity == Severity.ERROR]
    if not errors:
        engine = InterviewEngine(imported.questionnaire)
        state = engine.start(
            interview_id="corpus", respondent_key="r1", now=datetime(2026, 3, 2, tzinfo=UTC)
        )
        assert state.is_active
        engine.current_question(state)
        return "accepted", []
    return "rejected", [p.describe() for p in errors if p.sheet and p.row]


def test_the_corpus_against_pyxform() -> None:
    assert len(PYXFORM) >= 30
    ours = {name: _verdict(CORPUS / name) for name in PYXFORM}  # a crash fails right here
    pyx_accepted = {n for n, v in PYXFORM.items() if v == "accepted"}
    accepted = {n for n, (v, _) in ours.items() if v == "accepted"}
    rejected_with_row = {n for n, (v, where) in ours.items() if v == "rejected" and where}
    print(
        f"\ncorpus: {len(PYXFORM)} forms; pyxform accepts {len(pyx_accepted)}; we accept "
        f"{len(accepted)}, reject {len(rejected_with_row)} with sheet and row, "
        f"{len(PYXFORM) - len(accepted) - len(rejected_with_row)} otherwise, crash 0; "
        f"same verdict as pyxform on {len(PYXFORM) - len(accepted ^ pyx_accepted)}"
    )
    assert accepted <= pyx_accepted, "we accept forms pyxform rejects"
    assert set(PYXFORM) == accepted | rejected_with_row, "a rejection without a sheet and row"
    assert pyx_accepted - accepted == set(_KNOWN_DIFFERENCES)


@pytest.mark.parametrize("name", sorted(_KNOWN_DIFFERENCES))
def test_known_differences_name_their_row(name: str) -> None:
    verdict, where = _verdict(CORPUS / name)
    assert verdict == "rejected"
    assert any("sheet survey row" in line for line in where)
