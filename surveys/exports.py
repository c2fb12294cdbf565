r"""Exports of response records: CSV (codes or labels), XLSX, SPSS ``.sav``, data dictionary.

Variables (one column each), in questionnaire order after ``interview_id``,
``respondent_key``, ``mode`` (cati/ivr/test), ``version`` (the version NUMBER when the caller
gives it), ``status``, ``language``, ``interviewer`` (the agent), ``started_at``, ``ended_at``
and ``duration_seconds``:

* single choice ``q``: the choice value (CSV codes), its label (CSV labels) or its numeric code
  with value labels (SPSS); plus ``q_specify`` when the list has an "other (specify)" option;
* multiple choice ``q``: one 0/1 column ``q_<value>`` per option, empty when not asked, plus
  ``q_specify``; a derived name that collides with another column gets a ``_2`` suffix;
* integer, decimal, rating: the number; text, date, calculate: text;
* a special answer on a non-choice question is ``-1`` (don't know) or ``-2`` (refused) in
  numeric columns and ``dont_know``/``refused`` in text ones; special options of a choice list
  (don't know, refused: e.g. codes 98, 99) keep their code. In SPSS every such code is declared
  user-missing on every variable where it occurs, so means and frequencies leave them out;
* a multiple-choice answer of don't know/refused leaves the option columns missing (not 0),
  with only that option's column 1.

SPSS: integers, ratings and choice codes are ``F``\ *n*\ ``.0``, dates ``DATE11`` and times
``DATETIME20``, measurement levels come from the type (choices nominal, ratings ordinal,
numbers scale) or the question's ``measure``; value labels (``selected``, ``don't know``...)
are in the export's language.

CSV: UTF-8 with a BOM (the service adds it) so that Excel opens Chinese text; text cells that
start with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) get a leading ``'`` so a
spreadsheet shows them as text instead of running a formula (CSV cannot say "this is text").
XLSX: text cells are written as text cells, so nothing is ever prefixed or altered (an answer
``-2+3`` reads ``-2+3``); numbers stay numbers.

Numeric codes of choices: ``code`` when given, else the value when every value of the list is a
whole number, else the 1-based position in the list. Exports never include lead attributes
other than those the questionnaire declares. Scoping to a client and auditing who exported
what are the API layer's job.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from surveys.engine import InterviewMode
from surveys.expressions import to_text
from surveys.messages import export_label
from surveys.results import ResponseRecord
from surveys.schema import (
    CHOICE_TYPES,
    Choice,
    Question,
    Questionnaire,
    QuestionType,
    SpecialKind,
    resolve_text,
)

__all__ = [
    "SPECIAL_CODES",
    "Variable",
    "choice_codes",
    "data_dictionary",
    "data_dictionary_csv",
    "export_csv",
    "export_rows",
    "export_sav",
    "export_xlsx",
]

SPECIAL_CODES: dict[SpecialKind, int] = {SpecialKind.DONT_KNOW: -1, SpecialKind.REFUSED: -2}


class Variable(BaseModel):
    """One exported column and what it means (a data dictionary entry)."""

    name: str
    label: str
    kind: Literal["numeric", "string"]
    question: str | None = None
    question_type: str | None = None
    value_labels: dict[str, str] = Field(
        default_factory=dict, description="Code (as text) -> label, for SPSS and codebooks."
    )
    missing_codes: list[int] = Field(default_factory=list)
    measure: Literal["nominal", "ordinal", "scale"] = "nominal"
    spss_format: str | None = Field(None, description="e.g. F3.0, DATE11, DATETIME20.")
    choice_value: str | None = Field(None, description="For multiple-choice dummies.")
    specify: bool = Field(False, description="The 'other (specify)' text of a question.")


def choice_codes(choices: Sequence[Choice]) -> dict[str, int]:
    """Numeric SPSS code of every choice value (see the module docstring for the rule)."""
    all_numeric = all(re.fullmatch(r"-?\d+", c.value) for c in choices)
    codes = {}
    for position, choice in enumerate(choices, start=1):
        if choice.code is not None:
            codes[choice.value] = choice.code
        elif all_numeric:
            codes[choice.value] = int(choice.value)
        else:
            codes[choice.value] = position
    return codes


def _sav_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "v" + cleaned
    return cleaned[:64]


def data_dictionary(questionnaire: Questionnaire, *, language: str | None = None) -> list[Variable]:
    """Every exported variable with its label, type and value labels."""
    language = language or questionnaire.primary_language
    fallback = questionnaire.primary_language

    def text(value: Any) -> str:
        return resolve_text(value, language, fallback)

    variables = [
        Variable(name="interview_id", label="Interview", kind="string"),
        Variable(name="respondent_key", label="Respondent", kind="string"),
        Variable(name="mode", label="Interview mode", kind="string"),
        Variable(name="version", label="Questionnaire version", kind="numeric", spss_format="F6.0"),
        Variable(name="status", label="Interview status", kind="string"),
        Variable(name="language", label="Interview language", kind="string"),
        Variable(name="interviewer", label="Interviewer", kind="string"),
        Variable(name="started_at", label="Started", kind="numeric", spss_format="DATETIME20"),
        Variable(name="ended_at", label="Ended", kind="numeric", spss_format="DATETIME20"),
        Variable(
            name="duration_seconds",
            label="Duration (seconds)",
            kind="numeric",
            measure="scale",
            spss_format="F8.0",
        ),
    ]
    for attribute in questionnaire.attributes:
        variables.append(
            Variable(
                name=_sav_name(attribute.name),
                label=text(attribute.label) or attribute.name,
                kind="string",
                question=attribute.name,
                question_type="attribute",
            )
        )
    for question in questionnaire.walk():
        variables.extend(_variables_of(questionnaire, question, text, language))
    # Derived names (q_value, q_specify) can collide with each other or with a question
    # name; SPSS and spreadsheets need unique columns, so later ones get a numeric suffix.
    taken: set[str] = set()
    unique = []
    for variable in variables:
        name, suffix = variable.name, 2
        while name.lower() in taken:
            name, suffix = f"{variable.name[:60]}_{suffix}", suffix + 1
        taken.add(name.lower())
        unique.append(
            variable if name == variable.name else variable.model_copy(update={"name": name})
        )
    return unique


def _width(*numbers: float | None) -> int:
    return max([len(str(int(abs(n)))) + (n < 0) for n in numbers if n is not None] + [1])


def _variables_of(
    questionnaire: Questionnaire, question: Question, text: Any, language: str
) -> list[Variable]:
    kind = question.type
    label = text(question.label) or question.name
    common: dict[str, Any] = {"question": question.name, "question_type": kind.value}
    if kind in (QuestionType.GROUP, QuestionType.NOTE, QuestionType.NOT_ASKED):
        return []
    if kind in CHOICE_TYPES and kind != QuestionType.RANK:
        choices = questionnaire.choice_lists[question.choices or ""]
        codes = choice_codes(choices)
        out: list[Variable] = []
        special_codes = [
            codes[c.value]
            for c in choices
            if c.special in (SpecialKind.DONT_KNOW, SpecialKind.REFUSED)
        ]
        if kind == QuestionType.SINGLE_CHOICE:
            out.append(
                Variable(
                    name=_sav_name(question.name),
                    label=label,
                    kind="numeric",
                    value_labels={str(codes[c.value]): text(c.label) for c in choices},
                    missing_codes=special_codes[:3],
                    measure=question.measure or "nominal",
                    spss_format=f"F{_width(*codes.values())}.0",
                    **common,
                )
            )
        else:
            labels = {
                "0": export_label("not_selected", language),
                "1": export_label("selected", language),
            }
            for choice in choices:
                out.append(
                    Variable(
                        name=_sav_name(f"{question.name}_{choice.value}"),
                        label=f"{label}: {text(choice.label)}",
                        kind="numeric",
                        value_labels=labels,
                        choice_value=choice.value,
                        measure="nominal",
                        spss_format="F1.0",
                        **common,
                    )
                )
        if any(c.special == SpecialKind.OTHER for c in choices):
            out.append(
                Variable(
                    name=_sav_name(f"{question.name}_specify"),
                    label=f"{label}: {export_label('specify', language)}",
                    kind="string",
                    specify=True,
                    **common,
                )
            )
        return out
    numeric = kind in (QuestionType.INTEGER, QuestionType.DECIMAL, QuestionType.RATING)
    dated = kind in (QuestionType.DATE, QuestionType.DATETIME)
    value_labels: dict[str, str] = {}
    missing: list[int] = []
    for special in question.special_answers:
        if numeric:
            value_labels[str(SPECIAL_CODES[special])] = export_label(special.value, language)
            missing.append(SPECIAL_CODES[special])
    spss_format = None
    measure: Literal["nominal", "ordinal", "scale"] = "nominal"
    if kind in (QuestionType.INTEGER, QuestionType.RATING):
        spss_format = f"F{_width(question.min, question.max, -2, 99999)}.0"
        if question.min is not None and question.max is not None:
            spss_format = f"F{_width(question.min, question.max, -2)}.0"
        measure = "ordinal" if kind == QuestionType.RATING else "scale"
    elif kind == QuestionType.DECIMAL:
        spss_format, measure = "F12.2", "scale"
    elif dated:
        spss_format = "DATE11" if kind == QuestionType.DATE else "DATETIME20"
        measure = "scale"
    if kind == QuestionType.RATING:
        if question.min_label is not None:
            value_labels[to_text(question.min)] = text(question.min_label)
        if question.max_label is not None:
            value_labels[to_text(question.max)] = text(question.max_label)
    return [
        Variable(
            name=_sav_name(question.name),
            label=label,
            kind="numeric" if numeric or dated else "string",
            value_labels=value_labels,
            missing_codes=missing,
            measure=question.measure or measure,
            spss_format=spss_format,
            **common,
        )
    ]


def export_rows(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    *,
    mode: Literal["codes", "labels", "numeric"] = "codes",
    language: str | None = None,
    version_number: int | None = None,
    test_flag: bool = False,
) -> tuple[list[Variable], list[dict[str, str | float | None]]]:
    """The variables and one row per record; ``numeric`` gives SPSS codes for choices and
    dates as datetimes; ``version`` is ``version_number`` when given; ``test_flag`` adds
    ``is_test`` (1 for a test interview) after ``mode``, for exports that include tests."""
    language = language or questionnaire.primary_language
    fallback = questionnaire.primary_language
    variables = data_dictionary(questionnaire, language=language)
    if test_flag:
        at = next(i for i, v in enumerate(variables) if v.name == "mode") + 1
        variables.insert(at, _TEST_FLAG)
    rows = []
    for record in records:
        row: dict[str, str | float | None] = {}
        for variable in variables:
            if variable is _TEST_FLAG:
                tested = record.is_test or record.mode == InterviewMode.TEST
                row[variable.name] = 1.0 if tested else 0.0
                continue
            row[variable.name] = _cell(questionnaire, record, variable, mode, language, fallback)
        if version_number is not None:
            row["version"] = float(version_number)
        rows.append(row)
    return variables, rows


_TEST_FLAG = Variable(
    name="is_test", label="Test interview (1 = test)", kind="numeric", spss_format="F1.0"
)


def _cell(
    questionnaire: Questionnaire,
    record: ResponseRecord,
    variable: Variable,
    mode: str,
    language: str,
    fallback: str,
) -> str | float | None:
    if variable.question is None:
        return _meta(record, variable.name, mode)
    if variable.question_type == "attribute":
        value = record.attributes.get(variable.question)
        return None if value is None else to_text(value)
    question = questionnaire.question(variable.question)
    if question.type == QuestionType.CALCULATE:
        text = to_text(record.calculated.get(question.name))
        return text or None
    stored = record.answers.get(question.name)
    if variable.specify:
        return stored.other_text if stored is not None else None
    if question.type in CHOICE_TYPES:
        choices = questionnaire.choice_lists[question.choices or ""]
        if variable.choice_value is not None:
            if stored is None or not isinstance(stored.value, list):
                return None
            chosen = variable.choice_value in stored.value
            specials = {
                c.value
                for c in choices
                if c.special in (SpecialKind.DONT_KNOW, SpecialKind.REFUSED)
            }
            if not chosen and specials & set(stored.value):
                return None  # "refused" says nothing about the other options
            return 1.0 if chosen else 0.0
        if stored is None or stored.value is None:
            return None
        value = to_text(stored.value)
        if mode == "numeric":
            return float(choice_codes(choices)[value])
        if mode == "labels":
            by_value = {c.value: c for c in choices}
            return resolve_text(by_value[value].label, language, fallback)
        return value
    if stored is None:
        return None
    if stored.special is not None:
        if variable.kind == "numeric" and mode != "labels":
            return float(SPECIAL_CODES[stored.special])
        return stored.special.value
    if stored.value is None:
        return None
    if variable.spss_format in ("DATE11", "DATETIME20") and mode != "numeric":
        return to_text(stored.value)
    if variable.spss_format == "DATE11":
        return _spss_time(datetime.fromisoformat(f"{stored.value}T00:00"))
    if variable.spss_format == "DATETIME20":
        return _spss_time(datetime.fromisoformat(str(stored.value)))
    if variable.kind == "numeric":
        return float(stored.value) if not isinstance(stored.value, list) else None
    if isinstance(stored.value, list):  # rank: the order
        return " ".join(stored.value)
    return to_text(stored.value)


_SPSS_EPOCH = datetime(1582, 10, 14)


def _spss_time(moment: datetime) -> float:
    """Seconds since 1582-10-14, SPSS's date origin (naive, as the time was recorded)."""
    return (moment.replace(tzinfo=None) - _SPSS_EPOCH).total_seconds()


def _meta(record: ResponseRecord, name: str, mode: str) -> str | float | None:
    if name in ("started_at", "ended_at"):
        moment = record.started_at if name == "started_at" else record.ended_at
        if moment is None:
            return None
        return _spss_time(moment) if mode == "numeric" else moment.isoformat()
    if name == "duration_seconds":
        if record.started_at is None or record.ended_at is None:
            return None
        return float(round((record.ended_at - record.started_at).total_seconds()))
    if name == "version":
        return None if mode == "numeric" else record.version
    values: dict[str, str | None] = {
        "interview_id": record.interview_id,
        "respondent_key": record.respondent_key,
        "mode": record.mode.value,
        "status": record.status.value,
        "language": record.language,
        "interviewer": record.interviewer,
    }
    return values[name]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(text: str) -> str:
    # Spreadsheets run a cell that starts with = + - @ (or tab/CR before one) as a formula:
    # respondent or author text could then exfiltrate data (CSV injection). A leading
    # apostrophe makes it plain text. Numbers are written as numbers and never prefixed.
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _text_cell(value: str | float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return to_text(value)
    return _csv_safe(value)


def export_csv(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    *,
    labels: bool = False,
    language: str | None = None,
    version_number: int | None = None,
    test_flag: bool = False,
) -> str:
    """Responses as CSV text, choice codes or (``labels=True``) labels in ``language``."""
    variables, rows = export_rows(
        questionnaire,
        records,
        mode="labels" if labels else "codes",
        language=language,
        version_number=version_number,
        test_flag=test_flag,
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([v.name for v in variables])
    for row in rows:
        writer.writerow([_text_cell(row[v.name]) for v in variables])
    return buffer.getvalue()


def data_dictionary_csv(questionnaire: Questionnaire, *, language: str | None = None) -> str:
    """The data dictionary as CSV: variable, label, type, question, values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variable", "label", "kind", "question", "question_type", "values"])
    for variable in data_dictionary(questionnaire, language=language):
        values = "; ".join(f"{code}={label}" for code, label in variable.value_labels.items())
        writer.writerow(
            [
                variable.name,
                _csv_safe(variable.label),
                variable.kind,
                variable.question or "",
                variable.question_type or "",
                _csv_safe(values),
            ]
        )
    return buffer.getvalue()


def export_xlsx(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    *,
    labels: bool = False,
    language: str | None = None,
    version_number: int | None = None,
    test_flag: bool = False,
) -> bytes:
    """Responses and the data dictionary as an XLSX workbook (two sheets); text is written as
    text cells, never as formulas, and never altered."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    variables, rows = export_rows(
        questionnaire,
        records,
        mode="labels" if labels else "codes",
        language=language,
        version_number=version_number,
        test_flag=test_flag,
    )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("responses")
    dictionary = workbook.create_sheet("dictionary")

    def cells(values: list[str | float | None], target: Any) -> list[Any]:
        out = []
        for value in values:
            cell = WriteOnlyCell(target, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # openpyxl would take "=..." for a formula
            out.append(cell)
        return out

    sheet.append([v.name for v in variables])
    for row in rows:
        sheet.append(cells([row[v.name] for v in variables], sheet))
    dictionary.append(["variable", "label", "kind", "question", "question_type", "values"])
    for variable in variables:
        dictionary.append(
            cells(
                [
                    variable.name,
                    variable.label,
                    variable.kind,
                    variable.question or "",
                    variable.question_type or "",
                    "; ".join(f"{c}={label}" for c, label in variable.value_labels.items()),
                ],
                dictionary,
            )
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def export_sav(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    path: str | Path,
    *,
    language: str | None = None,
    version_number: int | None = None,
    test_flag: bool = False,
) -> None:
    """Write an SPSS ``.sav`` file with variable labels, value labels, user-missing codes,
    formats (F n.0, DATE11, DATETIME20) and measurement levels."""
    import pandas as pd
    import pyreadstat

    variables, rows = export_rows(
        questionnaire,
        records,
        mode="numeric",
        language=language,
        version_number=version_number,
        test_flag=test_flag,
    )
    columns: dict[str, list[Any]] = {v.name: [] for v in variables}
    for row in rows:
        for variable in variables:
            value = row[variable.name]
            if variable.kind == "numeric":
                columns[variable.name].append(float("nan") if value is None else float(value))
            else:
                columns[variable.name].append("" if value is None else str(value))
    frame = pd.DataFrame(columns, columns=[v.name for v in variables])
    value_labels = {
        v.name: {float(code): label for code, label in v.value_labels.items()}
        for v in variables
        if v.kind == "numeric" and v.value_labels
    }
    missing_ranges: dict[str, list[Any]] = {
        v.name: [float(code) for code in v.missing_codes] for v in variables if v.missing_codes
    }
    pyreadstat.write_sav(
        frame,
        str(path),
        column_labels={v.name: v.label for v in variables},
        variable_value_labels=value_labels,
        missing_ranges=missing_ranges or None,
        variable_format={v.name: v.spss_format for v in variables if v.spss_format},
        variable_measure={v.name: v.measure for v in variables},
    )
