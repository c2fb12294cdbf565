"""Exports of response records: CSV (codes or labels), XLSX, SPSS ``.sav``, data dictionary.

Variables (one column each), in questionnaire order after ``interview_id``, ``version``,
``status`` and ``language``:

* single choice ``q``: the choice value (CSV codes), its label (CSV labels) or its numeric code
  with value labels (SPSS); plus ``q_specify`` when the list has an "other (specify)" option;
* multiple choice ``q``: one 0/1 column ``q_<value>`` per option, empty when not asked, plus
  ``q_specify``; a derived name that collides with another column gets a ``_2`` suffix;
* integer, decimal, rating: the number; text, date, calculate: text;
* a special answer on a non-choice question is ``-1`` (don't know) or ``-2`` (refused) in
  numeric columns (declared user-missing in SPSS) and ``dont_know``/``refused`` in text ones.

Text cells of CSV exports that start with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return) get a leading ``'`` so spreadsheets show them as text instead of running a formula;
numeric cells are never changed.

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
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from surveys.expressions import to_text
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
        Variable(name="version", label="Questionnaire version", kind="string"),
        Variable(name="status", label="Interview status", kind="string"),
        Variable(name="language", label="Interview language", kind="string"),
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
        variables.extend(_variables_of(questionnaire, question, text))
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


def _variables_of(questionnaire: Questionnaire, question: Question, text: Any) -> list[Variable]:
    kind = question.type
    label = text(question.label) or question.name
    common = {"question": question.name, "question_type": kind.value}
    if kind in (QuestionType.GROUP, QuestionType.NOTE):
        return []
    if kind in CHOICE_TYPES:
        choices = questionnaire.choice_lists[question.choices or ""]
        codes = choice_codes(choices)
        out: list[Variable] = []
        if kind == QuestionType.SINGLE_CHOICE:
            out.append(
                Variable(
                    name=_sav_name(question.name),
                    label=label,
                    kind="numeric",
                    value_labels={str(codes[c.value]): text(c.label) for c in choices},
                    **common,
                )
            )
        else:
            for choice in choices:
                out.append(
                    Variable(
                        name=_sav_name(f"{question.name}_{choice.value}"),
                        label=f"{label}: {text(choice.label)}",
                        kind="numeric",
                        value_labels={"0": "not selected", "1": "selected"},
                        choice_value=choice.value,
                        **common,
                    )
                )
        if any(c.special == SpecialKind.OTHER for c in choices):
            out.append(
                Variable(
                    name=_sav_name(f"{question.name}_specify"),
                    label=f"{label}: other (specify)",
                    kind="string",
                    specify=True,
                    **common,
                )
            )
        return out
    numeric = kind in (QuestionType.INTEGER, QuestionType.DECIMAL, QuestionType.RATING)
    value_labels: dict[str, str] = {}
    missing: list[int] = []
    for special in question.special_answers:
        if numeric:
            value_labels[str(SPECIAL_CODES[special])] = special.value
            missing.append(SPECIAL_CODES[special])
    if kind == QuestionType.RATING:
        if question.min_label is not None:
            value_labels[to_text(question.min)] = text(question.min_label)
        if question.max_label is not None:
            value_labels[to_text(question.max)] = text(question.max_label)
    return [
        Variable(
            name=_sav_name(question.name),
            label=label,
            kind="numeric" if numeric else "string",
            value_labels=value_labels,
            missing_codes=missing,
            **common,
        )
    ]


def export_rows(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    *,
    mode: Literal["codes", "labels", "numeric"] = "codes",
    language: str | None = None,
) -> tuple[list[Variable], list[dict[str, str | float | None]]]:
    """The variables and one row per record; ``numeric`` gives SPSS codes for choices."""
    language = language or questionnaire.primary_language
    fallback = questionnaire.primary_language
    variables = data_dictionary(questionnaire, language=language)
    rows = []
    for record in records:
        row: dict[str, str | float | None] = {}
        for variable in variables:
            row[variable.name] = _cell(questionnaire, record, variable, mode, language, fallback)
        rows.append(row)
    return variables, rows


def _cell(
    questionnaire: Questionnaire,
    record: ResponseRecord,
    variable: Variable,
    mode: str,
    language: str,
    fallback: str,
) -> str | float | None:
    meta = {
        "interview_id": record.interview_id,
        "version": record.version,
        "status": record.status.value,
        "language": record.language,
    }
    if variable.question is None:
        return meta[variable.name]
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
            return 1.0 if variable.choice_value in stored.value else 0.0
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
    if variable.kind == "numeric":
        return float(stored.value) if not isinstance(stored.value, list) else None
    return to_text(stored.value)


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
) -> str:
    """Responses as CSV text, choice codes or (``labels=True``) labels in ``language``."""
    variables, rows = export_rows(
        questionnaire, records, mode="labels" if labels else "codes", language=language
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
) -> bytes:
    """Responses and the data dictionary as an XLSX workbook (two sheets)."""
    from openpyxl import Workbook

    variables, rows = export_rows(
        questionnaire, records, mode="labels" if labels else "codes", language=language
    )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("responses")
    sheet.append([v.name for v in variables])
    for row in rows:
        sheet.append([_xlsx_safe(row[v.name]) for v in variables])
    dictionary = workbook.create_sheet("dictionary")
    dictionary.append(["variable", "label", "kind", "question", "question_type", "values"])
    for variable in variables:
        dictionary.append(
            [
                variable.name,
                _xlsx_safe(variable.label),
                variable.kind,
                variable.question or "",
                variable.question_type or "",
                "; ".join(f"{c}={label}" for c, label in variable.value_labels.items()),
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_safe(value: str | float | None) -> str | float | None:
    # A leading "=" would make Excel evaluate respondent text as a formula (CSV/formula
    # injection); prefix it so it stays text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def export_sav(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    path: str | Path,
    *,
    language: str | None = None,
) -> None:
    """Write an SPSS ``.sav`` file with variable labels, value labels and missing codes."""
    import pandas as pd
    import pyreadstat

    variables, rows = export_rows(questionnaire, records, mode="numeric", language=language)
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
    )
