"""Import XLSForm workbooks (``survey``, ``choices``, ``settings`` sheets) as questionnaires.

Supported: ``type`` (``select_one L``, ``select_multiple L`` with optional ``or_other``,
``integer``, ``decimal``, ``text``, ``date``, ``note``, ``calculate``, ``range``, ``begin/end
group``), ``name``, ``label[::lang]``, ``hint[::lang]``, ``relevant``, ``constraint``,
``constraint_message[::lang]``, ``required``, ``required_message[::lang]``, ``calculation``,
``choice_filter``, ``parameters`` (``randomize=true``; ``start/end`` for ``range``). Extra
columns of the ``choices`` sheet become choice columns usable in ``choice_filter``.

Everything else is **reported by sheet and row** as a :class:`~surveys.validation.Problem`:
errors for what changes the questionnaire's meaning (unsupported question types, repeats,
dynamic ``required``), warnings for what only affects presentation (``appearance``, media,
metadata fields such as ``start``/``deviceid``). Nothing is dropped silently.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from surveys.exceptions import SchemaError, XLSFormError
from surveys.schema import NAME_PATTERN, Questionnaire, parse_questionnaire
from surveys.validation import Problem, Severity

__all__ = ["XLSFormImport", "import_xlsform"]

_SIMPLE_TYPES = {
    "integer": "integer",
    "int": "integer",
    "decimal": "decimal",
    "text": "text",
    "string": "text",
    "date": "date",
    "note": "note",
    "calculate": "calculate",
}
_METADATA_TYPES = {
    "start",
    "end",
    "today",
    "deviceid",
    "subscriberid",
    "simserial",
    "phonenumber",
    "username",
    "email",
    "audit",
    "start-geopoint",
    "background-audio",
}
_LOCALIZED = {"label", "hint", "constraint_message", "required_message"}
_KNOWN_SURVEY_COLUMNS = {
    "type",
    "name",
    "relevant",
    "constraint",
    "required",
    "calculation",
    "choice_filter",
    "parameters",
    "appearance",
    "default",
    "read_only",
    "guidance_hint",
    "trigger",
    "repeat_count",
    "body::accuracyThreshold",
}
_TRUE = {"yes", "true", "true()", "1", "y"}
_FALSE = {"", "no", "false", "false()", "0", "n"}


class XLSFormImport(BaseModel):
    """The imported questionnaire and every problem found on the way (by sheet and row)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    questionnaire: Questionnaire
    problems: list[Problem]


def _language(header: str) -> str | None:
    """'label::English (en)' -> 'en'; 'label::zh-Hant' -> 'zh-Hant'; 'label' -> None."""
    if "::" not in header:
        return None
    tail = header.split("::", 1)[1].strip()
    match = re.search(r"\(([^()]+)\)\s*$", tail)
    return match.group(1).strip() if match else tail


def _rows(sheet: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    iterator = sheet.iter_rows(values_only=True)
    try:
        header_row = next(iterator)
    except StopIteration:
        return
    headers = [str(h).strip() if h is not None else "" for h in header_row]
    for number, values in enumerate(iterator, start=2):
        row = {
            headers[i]: values[i]
            for i in range(min(len(headers), len(values)))
            if headers[i] and values[i] is not None and str(values[i]).strip() != ""
        }
        if row:
            yield number, row


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class _Importer:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.languages: list[str] = []
        self.default_language: str | None = None

    def report(
        self, severity: Severity, code: str, message: str, sheet: str, row: int, name: str | None
    ) -> None:
        self.problems.append(
            Problem(
                severity=severity,
                code=code,
                message=message,
                question=name,
                sheet=sheet,
                row=row,
            )
        )

    def localized(self, row: dict[str, Any], key: str) -> str | dict[str, str] | None:
        texts: dict[str, str] = {}
        for header, value in row.items():
            base = header.split("::", 1)[0].strip().lower()
            if base != key:
                continue
            language = _language(header) or self.default_language or "en"
            if language not in self.languages:
                self.languages.append(language)
            texts[language] = _text(value)
        return texts or None

    def columns_check(self, sheet: str, headers: list[str], known: set[str]) -> None:
        for header in headers:
            base = header.split("::", 1)[0].strip().lower()
            if base in _LOCALIZED or header.lower() in known:
                continue
            if base in ("media", "image", "audio", "video", "big-image"):
                message = f"media column {header!r} is ignored (IVR/CATI read text only)"
            else:
                message = f"column {header!r} is not supported and is ignored"
            self.report(Severity.WARNING, "unsupported_column", message, sheet, 1, None)


def import_xlsform(source: str | Path | bytes) -> XLSFormImport:
    """Read an XLSForm workbook (path or bytes); raises XLSFormError if it is unusable."""
    from openpyxl import load_workbook

    try:
        data = io.BytesIO(source) if isinstance(source, bytes) else source
        workbook = load_workbook(data, read_only=True, data_only=True)
    except FileNotFoundError:
        raise XLSFormError(f"{source!s} does not exist; check the path") from None
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise XLSFormError(
            f"not a readable .xlsx workbook ({type(exc).__name__}); save it as Excel .xlsx"
        ) from None
    sheets = {name.strip().lower(): workbook[name] for name in workbook.sheetnames}
    if "survey" not in sheets:
        raise XLSFormError(
            f"the workbook has no 'survey' sheet (sheets: {', '.join(workbook.sheetnames)})"
        )
    importer = _Importer()
    settings: dict[str, Any] = {}
    if "settings" in sheets:
        for _, row in _rows(sheets["settings"]):
            settings = {k.strip().lower(): v for k, v in row.items()}
            break
    if settings.get("default_language"):
        importer.default_language = _language("x::" + _text(settings["default_language"]))
    survey_rows = list(_rows(sheets["survey"]))
    choices_rows = list(_rows(sheets["choices"])) if "choices" in sheets else []
    if survey_rows and "type" not in {k.strip().lower() for k in survey_rows[0][1]}:
        raise XLSFormError("the 'survey' sheet has no 'type' column in its first row")

    survey_headers = list(dict.fromkeys(h for _, row in survey_rows for h in row))
    importer.columns_check("survey", survey_headers, _KNOWN_SURVEY_COLUMNS)
    choice_lists, or_other_lists = _import_choices(importer, choices_rows)
    questions = _import_survey(importer, survey_rows, choice_lists, or_other_lists)
    for list_name in or_other_lists:
        choices = choice_lists.setdefault(list_name, [])
        if not any(c["value"] == "other" for c in choices):
            choices.append({"value": "other", "label": "Other", "special": "other"})

    languages = importer.languages or [importer.default_language or "en"]
    if importer.default_language and importer.default_language not in languages:
        languages.insert(0, importer.default_language)
    document = {
        "id": _form_id(settings),
        "title": _text(settings.get("form_title") or settings.get("form_id") or "Untitled"),
        "languages": languages,
        "default_language": importer.default_language or languages[0],
        "choice_lists": choice_lists,
        "questions": questions,
    }
    try:
        questionnaire = parse_questionnaire(document)
    except SchemaError as exc:
        raise XLSFormError(f"the converted questionnaire is not valid: {exc}") from None
    return XLSFormImport(questionnaire=questionnaire, problems=importer.problems)


def _form_id(settings: dict[str, Any]) -> str:
    raw = _text(settings.get("form_id") or "imported_form")
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", raw)
    return cleaned if re.match(r"^[A-Za-z_]", cleaned) else f"form_{cleaned}"


def _import_choices(
    importer: _Importer, rows: list[tuple[int, dict[str, Any]]]
) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    lists: dict[str, list[dict[str, Any]]] = {}
    for number, row in rows:
        normalized = {k.strip(): v for k, v in row.items()}
        list_name = _text(normalized.get("list_name") or normalized.get("list name") or "")
        value = _text(normalized.get("name", ""))
        if not list_name or not value:
            importer.report(
                Severity.ERROR,
                "incomplete_choice",
                "a choice needs both 'list_name' and 'name'",
                "choices",
                number,
                None,
            )
            continue
        label = importer.localized(normalized, "label") or value
        columns = {
            k: _text(v)
            for k, v in normalized.items()
            if k not in ("list_name", "list name", "name")
            and k.split("::", 1)[0].lower() not in ("label", "media", "image", "audio", "video")
        }
        lists.setdefault(list_name, []).append({"value": value, "label": label, "columns": columns})
    return lists, set()


def _parse_parameters(text: str) -> dict[str, str]:
    params = {}
    for part in re.split(r"[\s;,]+", text.strip()):
        if "=" in part:
            key, _, value = part.partition("=")
            params[key.strip().lower()] = value.strip()
    return params


def _import_survey(
    importer: _Importer,
    rows: list[tuple[int, dict[str, Any]]],
    choice_lists: dict[str, list[dict[str, Any]]],
    or_other_lists: set[str],
) -> list[dict[str, Any]]:
    root: list[dict[str, Any]] = []
    stack: list[list[dict[str, Any]]] = [root]
    skipping_repeat = 0
    for number, raw in rows:
        row = {k.strip(): v for k, v in raw.items()}
        lower = {k.lower(): v for k, v in row.items()}
        kind = re.sub(r"\s+", " ", _text(lower.get("type", ""))).strip()
        kind_lower = (
            kind.lower().replace("_", " ")
            if kind.lower().startswith(("begin", "end"))
            else kind.lower()
        )
        name = _text(lower.get("name", "")) or None
        if skipping_repeat:
            if kind_lower in ("begin repeat",):
                skipping_repeat += 1
            elif kind_lower in ("end repeat",):
                skipping_repeat -= 1
            continue
        if not kind:
            if name:
                importer.report(
                    Severity.ERROR, "missing_type", f"row names {name!r} but has no type",
                    "survey", number, name,
                )  # fmt: skip
            continue
        if kind_lower == "begin repeat":
            importer.report(
                Severity.ERROR,
                "unsupported_repeat",
                "repeat groups are not supported; the repeat and everything in it is skipped",
                "survey",
                number,
                name,
            )
            skipping_repeat = 1
            continue
        if kind_lower == "end group":
            if len(stack) == 1:
                importer.report(
                    Severity.ERROR, "unbalanced_group", "'end group' without 'begin group'",
                    "survey", number, name,
                )  # fmt: skip
            else:
                stack.pop()
            continue
        if kind_lower in _METADATA_TYPES:
            importer.report(
                Severity.WARNING,
                "metadata_ignored",
                f"metadata field {kind!r} is ignored: the server records interview times",
                "survey",
                number,
                name,
            )
            continue
        if name is not None and not re.match(NAME_PATTERN, name):
            fixed = re.sub(r"[^A-Za-z0-9_]", "_", name)
            fixed = fixed if re.match(r"^[A-Za-z_]", fixed) else f"q_{fixed}"
            importer.report(
                Severity.ERROR,
                "invalid_name",
                f"name {name!r} has characters other than letters, digits and _; imported as "
                f"{fixed!r}, so expressions that use ${{{name}}} must be updated",
                "survey",
                number,
                name,
            )
            name = fixed[:64]
        question: dict[str, Any] = {"name": name or f"row_{number}"}
        if name is None:
            importer.report(
                Severity.ERROR, "missing_name", f"{kind} row has no name; named row_{number}",
                "survey", number, None,
            )  # fmt: skip
        for key in ("label", "hint", "constraint_message", "required_message"):
            text = importer.localized(row, key)
            if text is not None:
                question[key] = text
        for key in ("relevant", "constraint", "calculation", "choice_filter"):
            if lower.get(key) is not None:
                question[key] = _text(lower[key])
        params = _parse_parameters(_text(lower.get("parameters", "")))
        for unsupported in ("appearance", "default", "read_only", "trigger", "guidance_hint"):
            if lower.get(unsupported) is not None:
                importer.report(
                    Severity.WARNING,
                    "unsupported_column",
                    f"{unsupported} {_text(lower[unsupported])!r} is ignored",
                    "survey",
                    number,
                    name,
                )
        required = _text(lower.get("required", "")).lower()
        if required in _TRUE:
            question["required"] = True
        elif required not in _FALSE:
            importer.report(
                Severity.ERROR,
                "dynamic_required",
                f"required {required!r} is an expression, which is not supported; the question "
                "is imported as optional (use a constraint instead)",
                "survey",
                number,
                name,
            )
        if kind_lower == "begin group":
            question["type"] = "group"
            question["questions"] = []
            for key in ("required", "constraint", "calculation", "hint"):
                question.pop(key, None)
            stack[-1].append(question)
            stack.append(question["questions"])
            continue
        select = re.match(r"^(select_one|select_multiple)\s+(\S+)(\s+or_other)?$", kind)
        if select:
            question["type"] = (
                "single_choice" if select.group(1) == "select_one" else "multiple_choice"
            )
            list_name = select.group(2)
            question["choices"] = list_name
            if select.group(3):
                or_other_lists.add(list_name)
            if params.pop("randomize", "false").lower() in _TRUE:
                question["randomize"] = True
            if "seed" in params:
                params.pop("seed")
                importer.report(
                    Severity.WARNING,
                    "seed_ignored",
                    "randomisation seed is ignored: order is seeded per respondent",
                    "survey",
                    number,
                    name,
                )
        elif kind_lower == "range":
            start = float(params.pop("start", "1"))
            end = float(params.pop("end", "10"))
            step = float(params.pop("step", "1"))
            if step != 1 or not start.is_integer() or not end.is_integer():
                importer.report(
                    Severity.ERROR,
                    "unsupported_range",
                    "only whole-number ranges with step 1 are supported; imported as decimal",
                    "survey",
                    number,
                    name,
                )
                question.update(type="decimal", min=min(start, end), max=max(start, end))
            else:
                question.update(type="rating", min=int(min(start, end)), max=int(max(start, end)))
        elif kind_lower in _SIMPLE_TYPES:
            question["type"] = _SIMPLE_TYPES[kind_lower]
        else:
            importer.report(
                Severity.ERROR,
                "unsupported_type",
                f"question type {kind!r} is not supported; the row is skipped",
                "survey",
                number,
                name,
            )
            continue
        if question["type"] == "calculate":
            for key in ("label", "hint", "required", "constraint", "constraint_message"):
                question.pop(key, None)
        elif "label" not in question:
            question["label"] = question["name"]
            importer.report(
                Severity.WARNING, "missing_label", "no label; the name is used as label",
                "survey", number, name,
            )  # fmt: skip
        if question["type"] == "note":
            for key in ("required", "constraint", "constraint_message", "required_message"):
                question.pop(key, None)
        for leftover in params:
            importer.report(
                Severity.WARNING,
                "unsupported_parameter",
                f"parameter {leftover!r} is ignored",
                "survey",
                number,
                name,
            )
        stack[-1].append(question)
    if len(stack) > 1:
        importer.report(
            Severity.ERROR,
            "unbalanced_group",
            "a 'begin group' has no matching 'end group'",
            "survey",
            rows[-1][0] if rows else 1,
            None,
        )
    return root
