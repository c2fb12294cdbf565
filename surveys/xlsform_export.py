"""Write a questionnaire as an XLSForm workbook that :func:`surveys.xlsform.import_xlsform`
reads back to the same questionnaire (the round trip is tested).

Standard XLSForm columns carry what XLSForm has (types, labels per language, relevant,
constraint, required, calculation, choice_filter, parameters, default, read_only, trigger);
the few things XLSForm lacks are written in the columns and sheets SCHEMA.md defines: survey
columns ``screen_out``, ``screen_out_message``, ``ivr_prompt``, ``measure``, ``min``/``max``,
``min_label``/``max_label``, ``max_length``, ``max_selected``, ``special_answers``; choices
columns ``special``, ``fixed``, ``spss_code``; the ``attributes`` and ``quotas`` sheets; the
closing messages in ``settings``.
"""

from __future__ import annotations

import io
from typing import Any

from surveys.schema import LocalizedText, Question, Questionnaire, QuestionType

__all__ = ["export_xlsform"]

_TYPE_OUT = {
    QuestionType.SINGLE_CHOICE: "select_one",
    QuestionType.MULTIPLE_CHOICE: "select_multiple",
    QuestionType.RANK: "rank",
}
_TEXTS = (
    "label", "hint", "constraint_message", "required_message", "screen_out_message",
    "ivr_prompt", "min_label", "max_label",
)  # fmt: skip
_PLAIN = (
    "relevant", "constraint", "calculation", "choice_filter", "default", "trigger",
    "screen_out", "measure", "min", "max", "max_length", "max_selected",
)  # fmt: skip


def _number(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(value)


class _Writer:
    def __init__(self, questionnaire: Questionnaire) -> None:
        self.q = questionnaire
        self.rows: list[dict[str, Any]] = []

    def texts(self, row: dict[str, Any], key: str, text: LocalizedText | None) -> None:
        if text is None:
            return
        if isinstance(text, str):
            row[key] = text
        else:
            for language, value in text.items():
                row[f"{key}::{language}"] = value

    def question(self, question: Question) -> None:
        row: dict[str, Any] = {"name": question.name}
        kind = question.type
        if kind == QuestionType.GROUP:
            row["type"] = "begin group"
            self.texts(row, "label", question.label)
            if question.relevant:
                row["relevant"] = question.relevant
            self.rows.append(row)
            for child in question.questions:
                self.question(child)
            self.rows.append({"type": "end group"})
            return
        if kind in _TYPE_OUT:
            row["type"] = f"{_TYPE_OUT[kind]} {question.choices}"
        elif kind in (QuestionType.METADATA, QuestionType.NOT_ASKED):
            row["type"] = question.source_type
        else:
            row["type"] = kind.value
        for key in _TEXTS:
            self.texts(row, key, getattr(question, key))
        for key in _PLAIN:
            value = getattr(question, key)
            if value is not None:
                row[key] = _number(value) if key in ("min", "max") else value
        if question.required:
            row["required"] = "yes"
        elif question.required_if:
            row["required"] = question.required_if
        if question.read_only:
            row["read_only"] = "yes"
        if question.special_answers:
            row["special_answers"] = " ".join(s.value for s in question.special_answers)
        params = dict(question.parameters)
        if question.randomize:
            params["randomize"] = "true"
        if params:
            row["parameters"] = " ".join(f"{k}={v}" for k, v in params.items())
        self.rows.append(row)


def _table(rows: list[dict[str, Any]], first: list[str]) -> list[list[Any]]:
    headers = list(first)
    for row in rows:
        headers.extend(h for h in row if h not in headers)
    return [headers, *[[row.get(h) for h in headers] for row in rows]]


def export_xlsform(questionnaire: Questionnaire) -> bytes:
    """The questionnaire as an ``.xlsx`` XLSForm (survey, choices, settings, and attributes
    and quotas sheets when it has them)."""
    from openpyxl import Workbook

    writer = _Writer(questionnaire)
    for question in questionnaire.questions:
        writer.question(question)
    choices: list[dict[str, Any]] = []
    for list_name, options in questionnaire.choice_lists.items():
        for choice in options:
            row: dict[str, Any] = {"list_name": list_name, "name": choice.value}
            writer.texts(row, "label", choice.label)
            if choice.special is not None:
                row["special"] = choice.special.value
            if choice.fixed:
                row["fixed"] = "yes"
            if choice.code is not None:
                row["spss_code"] = choice.code
            row.update(choice.columns)
            choices.append(row)
    settings: dict[str, Any] = {"form_id": questionnaire.id}
    writer.texts(settings, "form_title", questionnaire.title)
    settings["default_language"] = questionnaire.primary_language
    settings["languages"] = " ".join(questionnaire.languages)
    for key in ("intro", "completed_message", "screened_out_message", "quota_full_message"):
        writer.texts(settings, key, getattr(questionnaire, key))
    sheets = {
        "survey": _table(writer.rows, ["type", "name"]),
        "choices": _table(choices, ["list_name", "name"]),
        "settings": _table([settings], ["form_id"]),
    }
    if questionnaire.attributes:
        attributes = []
        for attribute in questionnaire.attributes:
            row = {"name": attribute.name}
            writer.texts(row, "label", attribute.label)
            if attribute.required:
                row["required"] = "yes"
            attributes.append(row)
        sheets["attributes"] = _table(attributes, ["name"])
    if questionnaire.quotas:
        quotas = []
        for quota in questionnaire.quotas:
            row = {"name": quota.name, "variables": " ".join(quota.variables)}
            if quota.target is not None:
                row["target"] = quota.target
            writer.texts(row, "message", quota.message)
            quotas.append(row)
            for cell in quota.cells:
                match = " ".join(f"{k}={v}" for k, v in cell.match.items())
                quotas.append({"name": quota.name, "match": match, "target": cell.target})
        sheets["quotas"] = _table(quotas, ["name", "variables", "match", "target"])
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for values in rows:
            sheet.append(values)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
