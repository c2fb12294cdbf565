"""Import XLSForm workbooks (``.xlsx`` or ``.xls``) as questionnaires, as pyxform reads them.

Sheets and column names are case-insensitive; ``label::English (en)``, ``label::en`` and
``label:English`` name languages; ``bind:relevant`` and the other ``bind:``/``control:``
spellings are the plain columns. Everything the importer meets is either understood or
**reported with its sheet, row and column** as a :class:`~surveys.validation.Problem`: an
error for what would change the questionnaire's meaning (an unknown question type, an
unknown ``bind:`` column, an open-ended repeat), a warning for what only changes presentation
(``appearance``, media) or cannot be asked by phone (``geopoint``, ``image``: kept as
``not_asked`` so references still resolve). One bad row is reported and skipped; it never
hides the other rows nor fails the workbook. SCHEMA.md lists the mapping.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from surveys.exceptions import ExpressionError, SchemaError, XLSFormError
from surveys.expressions import parse, rename_references
from surveys.schema import (
    METADATA_SOURCES,
    NAME_PATTERN,
    Choice,
    Question,
    Questionnaire,
    Quota,
    parse_questionnaire,
)
from surveys.validation import Problem, Severity, validate_questionnaire
from surveys.workbook import SHEETS, Sheet, read_workbook

__all__ = ["MAX_REPEAT", "OPEN_REPEAT", "XLSFormImport", "import_xlsform"]

MAX_REPEAT: Final = 20
"""Most copies a repeat (household roster) is unrolled into on the phone."""
OPEN_REPEAT: Final = 10
"""Rounds of a repeat without repeat_count (each after the first behind an "another?")."""

_SIMPLE_TYPES: Final = {
    "integer": "integer",
    "int": "integer",
    "decimal": "decimal",
    "text": "text",
    "string": "text",
    "date": "date",
    "datetime": "datetime",
    "time": "time",
    "note": "note",
    "calculate": "calculate",
    "acknowledge": "acknowledge",
    "trigger": "acknowledge",
    "rating": "rating",
}
_METADATA_ALIASES: Final = {
    "imei": "deviceid", "get device id": "deviceid", "device id": "deviceid",
    "uri:deviceid": "deviceid", "get start time": "start", "start time": "start",
    "get end time": "end", "end time": "end", "get today": "today",
    "get subscriber id": "subscriberid", "uri:subscriberid": "subscriberid",
    "get sim id": "simserial", "sim id": "simserial", "uri:simserial": "simserial",
    "get phone number": "phonenumber", "uri:phonenumber": "phonenumber",
    "uri:username": "username", "uri:email": "email",
}  # fmt: skip
_TYPE_ALIASES: Final = {
    "q string": "text", "add text prompt": "text", "q int": "integer",
    "add integer prompt": "integer", "q decimal": "decimal", "add decimal prompt": "decimal",
    "q date": "date", "add date prompt": "date", "q datetime": "datetime",
    "add datetime prompt": "datetime", "q note": "note", "add note prompt": "note",
    "q calculate": "calculate", "add calculate prompt": "calculate",
    "q acknowledge": "acknowledge", "add acknowledge prompt": "acknowledge",
    "gps": "geopoint", "location": "geopoint", "q location": "geopoint",
    "q geopoint": "geopoint", "add location prompt": "geopoint", "q geoshape": "geoshape",
    "q geotrace": "geotrace", "q picture": "image", "q image": "image", "q audio": "audio",
    "q video": "video", "q barcode": "barcode", "add barcode prompt": "barcode",
}  # fmt: skip
_NOT_PHONE: Final = {
    "geopoint", "geotrace", "geoshape", "image", "photo", "audio", "video", "barcode", "file",
    "signature", "background-audio", "start-geopoint", "audit", "osm", "add image prompt",
    "add photo prompt", "add audio prompt", "add video prompt", "add file prompt",
    "background-geopoint", "xml-external", "csv-external", "select_one_external",
}  # fmt: skip
_SELECT_KEYWORDS: Final = {
    "select_one": "single_choice",
    "select one": "single_choice",
    "select1": "single_choice",
    "select one from": "single_choice",
    "add select one prompt using": "single_choice",
    "select_multiple": "multiple_choice",
    "select all that apply": "multiple_choice",
    "select all that apply from": "multiple_choice",
    "select multiple": "multiple_choice",
    "add select multiple prompt using": "multiple_choice",
    "rank": "rank",
}
_FROM_FILE: Final = {
    "select_one_from_file": "single_choice",
    "select one from file": "single_choice",
    "select_multiple_from_file": "multiple_choice",
    "select multiple from file": "multiple_choice",
}
_OR_OTHER = re.compile(r"\s+(or_other|or other|or specify other)$", re.IGNORECASE)
_TYPE_RE = re.compile(
    r"^(?P<kw>"
    + "|".join(re.escape(k) for k in sorted({**_SELECT_KEYWORDS, **_FROM_FILE}, key=len)[::-1])
    + r")\s+(?P<list>\S+)$",
    re.IGNORECASE,
)

# Column aliases (pyxform's spellings) -> our column.
_ALIASES: Final = {
    "relevance": "relevant",
    "bind:relevant": "relevant",
    "bind:constraint": "constraint",
    "bind:required": "required",
    "bind:calculate": "calculation",
    "calculate": "calculation",
    "bind:readonly": "read_only",
    "bind:read_only": "read_only",
    "readonly": "read_only",
    "bind:jr:constraintmsg": "constraint_message",
    "jr:constraintmsg": "constraint_message",
    "constraining_message": "constraint_message",
    "bind:jr:requiredmsg": "required_message",
    "jr:requiredmsg": "required_message",
    "requiredmsg": "required_message",
    "caption": "label",
    "control:appearance": "appearance",
    "body:appearance": "appearance",
    "count": "repeat_count",
    "jr:count": "repeat_count",
    "control:jr:count": "repeat_count",
    "command": "type",
    "list name": "list_name",
    "bind:jr:noapperrorstring": "no_app_error_string",
    "noapperrorstring": "no_app_error_string",
}
_LOCALIZED: Final = {
    "label", "hint", "constraint_message", "required_message", "guidance_hint", "media",
    "image", "big-image", "audio", "video",
    "screen_out_message", "ivr_prompt", "no_app_error_string", "min_label", "max_label",
    "message",
}  # fmt: skip
_SURVEY_COLUMNS: Final = {
    "type", "name", "label", "hint", "relevant", "constraint", "constraint_message", "required",
    "required_message", "calculation", "choice_filter", "parameters", "default", "read_only",
    "trigger", "repeat_count", "screen_out", "screen_out_message", "ivr_prompt", "measure",
    "min", "max", "min_label", "max_label", "max_length", "max_selected", "special_answers",
}  # fmt: skip
_PRESENTATION: Final = {
    "appearance", "guidance_hint", "media", "image", "big-image", "audio", "video", "autoplay",
    "rows", "no_app_error_string", "compact_tag", "note", "notes", "comment", "comments",
    "body", "instance",
}  # fmt: skip
_TRUE: Final = {"yes", "true", "true()", "1", "y"}
_FALSE: Final = {"", "no", "false", "false()", "0", "n"}


class XLSFormImport(BaseModel):
    """The imported questionnaire and every problem found on the way (by sheet and row)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    questionnaire: Questionnaire
    problems: list[Problem]
    locations: dict[str, tuple[int, dict[str, str]]] = {}

    def all_problems(self) -> list[Problem]:
        """The import's problems, then publish-time validation's, each at its sheet, row and
        column (a repeat's copies point at the repeat's row)."""
        located = list(self.problems)
        for problem in validate_questionnaire(self.questionnaire):
            where = self.locations.get(problem.question or "")
            if where is None:
                located.append(self._locate_sheet_level(problem))
                continue
            row, columns = where
            field = "required" if problem.field == "required_if" else problem.field
            column = columns.get(field or "") or columns.get("type")
            located.append(
                problem.model_copy(update={"sheet": "survey", "row": row, "column": column})
            )
        return located

    def _locate_sheet_level(self, problem: Problem) -> Problem:
        if problem.code == "no_questions":
            return problem.model_copy(update={"sheet": "survey", "row": 1, "column": "A"})
        field = problem.field or ""
        if field.startswith("choice_lists."):
            list_name = field.split(".")[1]
            row = self.locations.get(f"choices:{list_name}")
            if row is not None:
                return problem.model_copy(update={"sheet": "choices", "row": row[0]})
        return problem


@dataclass(frozen=True, slots=True)
class _Column:
    """A header cell understood: our column name, its language, the header as written."""

    key: str
    language: str | None
    header: str
    number: int


@dataclass
class _Row:
    number: int
    cells: dict[str, Any]  # "key" or "key::language" -> value
    columns: dict[str, str]  # same keys -> column letter


def _letter(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _language_code(tail: str) -> str:
    """'English (en)' -> 'en'; 'zh-Hant' -> 'zh-Hant'; 'English' -> 'English'."""
    match = re.search(r"\(([^()]+)\)\s*$", tail)
    return (match.group(1) if match else tail).strip()


def _column(header: str, number: int) -> _Column:
    text = re.sub(r"\s*:\s*", ":", header.strip())
    language: str | None = None
    if "::" in text:
        base, _, tail = text.partition("::")
        language = _language_code(tail)
    else:
        base = text
        head, sep, tail = text.partition(":")
        if sep and _ALIASES.get(head.strip().lower(), head.strip().lower()) in _LOCALIZED:
            base, language = head, _language_code(tail)
    key = base.strip().lower()
    key = _ALIASES.get(key, key)
    return _Column(key, language or None, text, number)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


@dataclass
class _Table:
    """A sheet read as header + rows; unknown columns already reported."""

    name: str
    columns: list[_Column] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)


class _Importer:
    def __init__(self, attachments: Mapping[str, bytes], base: Path | None) -> None:
        self.problems: list[Problem] = []
        self.languages: list[str] = []
        self.default_language: str | None = None
        self.attachments = attachments
        self.base = base
        self.choice_lists: dict[str, list[dict[str, Any]]] = {}
        self.or_other: set[str] = set()
        self.used_names: set[str] = set()
        self.allow_duplicates = False
        self.locations: dict[str, tuple[int, dict[str, str]]] = {}

    # --- reporting -----------------------------------------------------------------

    def report(
        self,
        severity: Severity,
        code: str,
        message: str,
        sheet: str,
        row: int,
        name: str | None = None,
        column: str | None = None,
    ) -> None:
        self.problems.append(
            Problem(
                severity=severity,
                code=code,
                message=message,
                question=name,
                sheet=sheet,
                row=row,
                column=column,
            )
        )

    def error(self, code: str, message: str, sheet: str, row: _Row | int, **kw: Any) -> None:
        number = row.number if isinstance(row, _Row) else row
        self.report(Severity.ERROR, code, message, sheet, number, **kw)

    def warning(self, code: str, message: str, sheet: str, row: _Row | int, **kw: Any) -> None:
        number = row.number if isinstance(row, _Row) else row
        self.report(Severity.WARNING, code, message, sheet, number, **kw)

    # --- tables ----------------------------------------------------------------------

    def table(self, sheet: Sheet, known: set[str] | None, sheet_key: str) -> _Table:
        table = _Table(sheet_key)
        if not sheet.rows:
            return table
        header_number, header = sheet.rows[0]
        seen: dict[str, str] = {}
        for number, cell in enumerate(header, start=1):
            if cell is None or _text(cell) == "":
                continue
            column = _column(_text(cell), number)
            slot = column.key + (f"::{column.language}" if column.language else "")
            letter = _letter(number)
            if slot in seen:
                self.error(
                    "duplicate_column",
                    f"column {column.header!r} appears twice (columns {seen[slot]} and "
                    f"{letter}); only the first is read",
                    sheet_key,
                    header_number,
                    column=letter,
                )
                continue
            seen[slot] = letter
            if column.key.startswith(("bind:", "control:", "body:", "instance:")) or (
                known is not None and column.key not in known and column.key not in _LOCALIZED
            ):
                self.unknown_column(column, sheet_key, header_number, letter)
                continue
            table.columns.append(column)
        for number, values in sheet.rows[1:]:
            cells: dict[str, Any] = {}
            letters: dict[str, str] = {}
            for column in table.columns:
                index = column.number - 1
                value = values[index] if index < len(values) else None
                if value is None or _text(value) == "":
                    continue
                slot = column.key + (f"::{column.language}" if column.language else "")
                cells[slot] = value
                letters[slot] = _letter(column.number)
            if cells:
                table.rows.append(_Row(number, cells, letters))
        return table

    def unknown_column(self, column: _Column, sheet: str, row: int, letter: str) -> None:
        key = column.key
        if key.startswith("bind:") or key in ("jr:preload", "jr:preloadparams"):
            self.error(
                "unsupported_bind",
                f"column {column.header!r} changes how answers are stored or checked and is "
                "not understood; remove it or use a supported column (SCHEMA.md)",
                sheet,
                row,
                column=letter,
            )
        elif key in _PRESENTATION or key.startswith(("body:", "control:", "instance:")):
            self.warning(
                "presentation_column",
                f"column {column.header!r} only changes how a form looks on a device; ignored",
                sheet,
                row,
                column=letter,
            )
        elif key.startswith("sms_") or key in ("list_name", "name", "label"):
            self.warning(
                "unsupported_column", f"column {column.header!r} is ignored", sheet, row,
                column=letter,
            )  # fmt: skip
        else:
            self.warning(
                "unsupported_column",
                f"column {column.header!r} is not an XLSForm column we use; ignored",
                sheet,
                row,
                column=letter,
            )

    # --- cells -----------------------------------------------------------------------

    def localized(self, row: _Row, key: str) -> str | dict[str, str] | None:
        texts: dict[str, str] = {}
        plain = row.cells.get(key)
        for slot, value in row.cells.items():
            base, _, language = slot.partition("::")
            if base != key or not language:
                continue
            self.language(language)
            texts[language] = _text(value)
        if plain is not None:
            if not texts:
                return _text(plain)  # one text for every language
            language = self.default_language or "en"
            if language not in texts:
                self.language(language)
                texts[language] = _text(plain)
        return texts or None

    def language(self, language: str) -> None:
        if language not in self.languages:
            self.languages.append(language)


def import_xlsform(
    source: str | Path | bytes, *, attachments: Mapping[str, bytes] | None = None
) -> XLSFormImport:
    """Read an XLSForm workbook (path or bytes); raises XLSFormError only when the workbook is
    unreadable as a whole (not a workbook, no survey sheet, too large). ``attachments`` maps
    file names (``villages.csv``) to contents for ``select_one_from_file`` and ``pulldata``;
    for a path, files beside the workbook are used too."""
    sheets = read_workbook(source)
    base = Path(source).parent if not isinstance(source, bytes) else None
    importer = _Importer(dict(attachments or {}), base)
    if "survey" not in sheets and len(sheets) == 1 and not sheets.keys() & SHEETS:
        (only,) = sheets.values()
        sheets = {"survey": only}
        importer.warning(
            "survey_sheet_name", f"the only sheet, {only.name!r}, is read as the survey sheet",
            only.name, 1,
        )  # fmt: skip
    if "survey" not in sheets:
        names = ", ".join(sheet.name for sheet in sheets.values())
        raise XLSFormError(f"the workbook has no 'survey' sheet (sheets: {names})")
    settings = _read_settings(importer, sheets.get("settings"))
    survey = importer.table(sheets["survey"], _SURVEY_COLUMNS, "survey")
    if not any(c.key == "type" for c in survey.columns):
        raise XLSFormError("the 'survey' sheet has no 'type' column in its first row")
    choices_sheet = sheets.get("choices")
    if choices_sheet is not None:
        _import_choices(importer, importer.table(choices_sheet, None, "choices"))
    for extra in ("external_choices", "entities", "osm"):
        if extra in sheets:
            importer.warning(
                "unsupported_sheet", f"sheet {sheets[extra].name!r} is not used by phone "
                "interviews; ignored", extra, 1,
            )  # fmt: skip
    questions = _import_survey(importer, survey)
    for list_name in importer.or_other:
        options = importer.choice_lists.setdefault(list_name, [])
        if not any(c["value"] == "other" for c in options):
            options.append({"value": "other", "label": "Other", "special": "other"})
    quotas = _import_quotas(importer, sheets.get("quotas"))
    tables = _pulldata_tables(importer, questions)
    languages = importer.languages or [importer.default_language or "en"]
    if importer.default_language and importer.default_language not in languages:
        languages.insert(0, importer.default_language)
    document: dict[str, Any] = {
        "id": _form_id(settings),
        "title": _setting_text(settings, "form_title")
        or _text(settings.get("form_id") or "Untitled"),
        "languages": languages,
        "default_language": importer.default_language or languages[0],
        "choice_lists": {k: v for k, v in importer.choice_lists.items() if v},
        "questions": questions,
        "quotas": quotas,
        "tables": tables,
        "attributes": _import_attributes(importer, sheets.get("attributes")),
    }
    for key in ("intro", "completed_message", "screened_out_message", "quota_full_message"):
        text = _setting_text(settings, key)
        if text:
            document[key] = text
    if not questions:
        importer.error("no_questions", "the survey sheet has no usable question", "survey", 1)
        document["questions"] = [{"name": "empty_form", "type": "note", "label": "(empty)"}]
    try:
        questionnaire = parse_questionnaire(document)
    except SchemaError as exc:
        raise XLSFormError(f"the converted questionnaire is not valid: {exc}") from None
    return XLSFormImport(
        questionnaire=questionnaire, problems=importer.problems, locations=importer.locations
    )


def _pulldata_tables(
    importer: _Importer, questions: list[dict[str, Any]]
) -> dict[str, list[dict[str, str]]]:
    tables: dict[str, list[dict[str, str]]] = {}
    for question in _walk(questions):
        for key in ("calculation", "relevant", "constraint", "default", "required_if"):
            for name in re.findall(r"pulldata\(\s*['\"]([^'\"]+)['\"]", question.get(key) or ""):
                stem = name.removesuffix(".csv")
                if stem in tables or stem in importer.choice_lists:
                    continue
                data = _attachment(importer, f"{stem}.csv")
                row, columns = importer.locations.get(question["name"], (1, {}))
                if data is None:
                    importer.error(
                        "missing_file",
                        f"pulldata() reads {stem}.csv, which is not attached; upload it with "
                        "the form",
                        "survey",
                        row,
                        name=question["name"],
                        column=columns.get(key),
                    )
                    continue
                try:
                    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
                    tables[stem] = [
                        {str(k).strip(): (v or "") for k, v in r.items() if k} for r in reader
                    ]
                except (UnicodeDecodeError, csv.Error) as exc:
                    importer.error(
                        "bad_file", f"{stem}.csv is not a UTF-8 CSV ({exc})", "survey", row,
                        name=question["name"], column=columns.get(key),
                    )  # fmt: skip
    return tables


def _attachment(importer: _Importer, filename: str) -> bytes | None:
    data = importer.attachments.get(filename)
    if data is None and importer.base is not None and (importer.base / filename).is_file():
        data = (importer.base / filename).read_bytes()
    return data


def _setting_key(header: str) -> str:
    base, sep, language = header.partition("::")
    return base.strip().lower() + sep + language.strip()


def _setting_text(settings: dict[str, Any], key: str) -> str | dict[str, str] | None:
    texts = {
        _language_code(k.split("::", 1)[1]): _text(v)
        for k, v in settings.items()
        if k.split("::", 1)[0] == key and "::" in k
    }
    if texts:
        return texts
    return _text(settings[key]) if settings.get(key) is not None else None


def _import_attributes(importer: _Importer, sheet: Sheet | None) -> list[dict[str, Any]]:
    """The ``attributes`` sheet (ours): lead attributes, columns name, label, required."""
    if sheet is None:
        return []
    attributes = []
    for row in importer.table(sheet, {"name", "label", "required"}, "attributes").rows:
        name = _text(row.cells.get("name"))
        if not name:
            importer.error("missing_name", "an attribute needs a name", "attributes", row)
            continue
        attribute: dict[str, Any] = {"name": name}
        label = importer.localized(row, "label")
        if label is not None:
            attribute["label"] = label
        if _flag(_text(row.cells.get("required"))):
            attribute["required"] = True
        attributes.append(attribute)
    return attributes


def _read_settings(importer: _Importer, sheet: Sheet | None) -> dict[str, Any]:
    if sheet is None or len(sheet.rows) < 2:
        return {}
    header, values = sheet.rows[0][1], sheet.rows[1][1]
    settings = {
        _setting_key(_text(h)): v
        for h, v in zip(header, values, strict=False)
        if h is not None and v is not None and _text(v) != ""
    }
    for alias, key in (("set_form_title", "form_title"), ("set_form_id", "form_id")):
        if alias in settings:
            settings.setdefault(key, settings[alias])
    if settings.get("default_language"):
        importer.default_language = _language_code(_text(settings["default_language"]))
    for language in _text(settings.get("languages")).split():
        importer.language(language)
    importer.allow_duplicates = _text(settings.get("allow_choice_duplicates")).lower() in _TRUE
    return settings


def _form_id(settings: dict[str, Any]) -> str:
    raw = _text(settings.get("form_id") or "imported_form")
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", raw)[:64]
    return cleaned if re.match(r"^[A-Za-z_]", cleaned) else f"form_{cleaned}"[:64]


def _valid_name(importer: _Importer, raw: str, sheet: str, row: _Row, what: str) -> str:
    if re.match(NAME_PATTERN, raw):
        return raw
    fixed = re.sub(r"[^A-Za-z0-9_.\-]", "_", raw)
    fixed = (fixed if re.match(r"^[A-Za-z_]", fixed) else f"q_{fixed}")[:64]
    importer.error(
        "invalid_name",
        f"{what} {raw!r} must start with a letter or _ and use letters, digits, _, - and . "
        f"(at most 64); imported as {fixed!r}",
        sheet,
        row,
        name=raw,
        column=row.columns.get("name") or row.columns.get("list_name"),
    )
    return fixed


def _import_choices(importer: _Importer, table: _Table) -> None:
    for row in table.rows:
        list_name = _text(row.cells.get("list_name"))
        value = _text(row.cells.get("name"))
        if not list_name or not value:
            missing = "list_name" if not list_name else "name"
            importer.error(
                "incomplete_choice",
                f"a choice needs both 'list_name' and 'name'; this row has no {missing!r}",
                "choices",
                row,
                column=row.columns.get("name") or row.columns.get("list_name"),
            )
            continue
        list_name = _valid_name(importer, list_name, "choices", row, "list name")
        importer.locations.setdefault(f"choices:{list_name}", (row.number, row.columns))
        _add_choice(importer, list_name, value, importer.localized(row, "label"), row, "choices")
        choice = importer.choice_lists[list_name][-1] if importer.choice_lists[list_name] else None
        if choice is None or choice["value"] != value:
            continue
        choice["columns"] = {
            slot: _text(v)
            for slot, v in row.cells.items()
            if slot not in _CHOICE_FIELDS and slot.split("::")[0] not in _LOCALIZED
        }
        if row.cells.get("special") is not None:
            choice["special"] = _text(row.cells["special"])
        if _flag(_text(row.cells.get("fixed"))):
            choice["fixed"] = True
        if row.cells.get("spss_code") is not None:
            choice["code"] = row.cells["spss_code"]
        try:
            Choice.model_validate(choice)
        except ValidationError as exc:
            importer.error(
                "invalid_choice", _first_error(exc), "choices", row, column=row.columns.get("name")
            )
            importer.choice_lists[list_name].pop()


_CHOICE_FIELDS: Final = {"list_name", "name", "special", "fixed", "spss_code"}


def _add_choice(
    importer: _Importer,
    list_name: str,
    value: str,
    label: str | dict[str, str] | None,
    row: _Row,
    sheet: str,
) -> None:
    options = importer.choice_lists.setdefault(list_name, [])
    if any(option["value"] == value for option in options):
        if importer.allow_duplicates:
            importer.warning(
                "duplicate_choice",
                f"list {list_name!r} has {value!r} twice (allowed by settings); phone "
                "interviews store the first one",
                sheet,
                row,
                column=row.columns.get("name"),
            )
        else:
            importer.error(
                "duplicate_choice",
                f"list {list_name!r} has {value!r} twice; set allow_choice_duplicates in "
                "settings or rename it",
                sheet,
                row,
                column=row.columns.get("name"),
            )
        return
    try:
        Choice.model_validate({"value": value, "label": label or value})
    except ValidationError as exc:
        importer.error(
            "invalid_choice", _first_error(exc), sheet, row, column=row.columns.get("name")
        )
        return
    options.append({"value": value, "label": label or value})


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _parse_parameters(text: str) -> dict[str, str]:
    params = {}
    for part in re.split(r"[\s;,]+", text.strip()):
        if "=" in part:
            key, _, value = part.partition("=")
            params[key.strip().lower()] = value.strip()
    return params


def _flag(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _control(kind: str) -> tuple[str, str] | None:
    """('begin'|'end', 'group'|'repeat'|'loop') for group rows, else None."""
    match = re.match(r"^(begin|end)[\s_]+(group|repeat|loop|looped group)\b", kind.lower())
    if not match:
        return None
    what = "repeat" if match.group(2) in ("repeat", "looped group") else match.group(2)
    return match.group(1), what


@dataclass
class _Frame:
    """An open group or repeat while reading the survey sheet."""

    question: dict[str, Any] | None
    row: _Row | None
    children: list[dict[str, Any]] = field(default_factory=list)
    repeat: str | None = None  # the repeat_count of a repeat ("" when open-ended)
    loop: str | None = None  # the list of a 'begin loop over L'


def _import_survey(importer: _Importer, table: _Table) -> list[dict[str, Any]]:
    stack: list[_Frame] = [_Frame(None, None)]
    for row in table.rows:
        kind = re.sub(r"\s+", " ", _text(row.cells.get("type")))
        name = _text(row.cells.get("name")) or None
        if not kind:
            if name or row.cells.get("label"):
                importer.error(
                    "missing_type", "this row has no type", "survey", row, name=name,
                    column=row.columns.get("name"),
                )  # fmt: skip
            continue
        control = _control(kind)
        if control is not None:
            _group_row(importer, stack, row, control, name)
            continue
        question = _question_row(importer, row, kind, name)
        if question is not None:
            stack[-1].children.append(question)
    while len(stack) > 1:
        frame = stack.pop()
        assert frame.row is not None
        importer.error(
            "unbalanced_group",
            "this 'begin group'/'begin repeat' has no matching end",
            "survey",
            frame.row,
            name=frame.question["name"] if frame.question else None,
        )
        _close(importer, stack, frame)
    return stack[0].children


def _group_row(
    importer: _Importer,
    stack: list[_Frame],
    row: _Row,
    control: tuple[str, str],
    name: str | None,
) -> None:
    edge, what = control
    if edge == "end":
        if len(stack) == 1:
            importer.error(
                "unbalanced_group", f"'end {what}' without 'begin {what}'", "survey", row,
                column=row.columns.get("type"),
            )  # fmt: skip
            return
        _close(importer, stack, stack.pop())
        return
    if name is None:
        importer.error(
            "missing_name", f"begin {what} needs a name", "survey", row,
            column=row.columns.get("type"),
        )  # fmt: skip
        name = f"group_{row.number}"
    name = _valid_name(importer, name, "survey", row, "name")
    group: dict[str, Any] = {"name": name, "type": "group"}
    importer.locations[name] = (row.number, row.columns)
    label = importer.localized(row, "label")
    if label is not None:
        group["label"] = label
    if row.cells.get("relevant") is not None:
        group["relevant"] = _text(row.cells["relevant"])
    frame = _Frame(group, row)
    if what == "repeat":
        frame.repeat = _text(row.cells.get("repeat_count"))
    elif what == "loop":
        over = re.match(r"^begin[\s_]+loop\s+over\s+(\S+)$", _text(row.cells.get("type")), re.I)
        frame.loop = over.group(1) if over else ""
    stack.append(frame)


def _close(importer: _Importer, stack: list[_Frame], frame: _Frame) -> None:
    group = frame.question
    assert group is not None
    assert frame.row is not None
    if not frame.children:
        importer.error(
            "empty_group", "this group has no questions; it is skipped", "survey", frame.row,
            name=group["name"],
        )  # fmt: skip
        return
    if frame.repeat is None and frame.loop is None:
        group["questions"] = frame.children
        stack[-1].children.append(group)
        return
    stack[-1].children.extend(_unroll(importer, group, frame))


def _unroll(importer: _Importer, group: dict[str, Any], frame: _Frame) -> list[dict[str, Any]]:
    """A repeat (or loop) as copies of its group, ``member_1``, ``member_2``...: names inside
    copy ``i`` get the suffix ``_i`` and references between them follow (``position(..)``
    becomes ``i``). With a number, that many copies; with an expression, copy ``i`` is
    relevant when ``i <= count``; without a count, each copy after the first is preceded by
    an "another one?" question. A ``loop over L`` has one copy per option of ``L``."""
    assert frame.row is not None
    rounds = _rounds(importer, group, frame)
    inner = {q["name"] for q in _walk(frame.children)}
    result: list[dict[str, Any]] = []
    gate: str | None = None
    for index, (suffix, condition, label) in enumerate(rounds, start=1):
        renames = {n: f"{n}_{suffix}"[:64] for n in inner}
        copy = _renamed(importer, {**group, "questions": frame.children}, renames, index)
        copy["name"] = f"{group['name']}_{suffix}"[:64]
        if label is not None:
            copy = _relabelled(copy, label)
        if frame.repeat == "" and index > 1:
            question = _another(importer, group, index, gate)
            result.append(question)
            gate = question["name"]
            condition = f"${{{gate}}} = 'yes'"
        if condition:
            previous = copy.get("relevant")
            copy["relevant"] = f"({previous}) and {condition}" if previous else condition
        result.append(copy)
    return result


def _rounds(
    importer: _Importer, group: dict[str, Any], frame: _Frame
) -> list[tuple[str, str | None, str | dict[str, str] | None]]:
    assert frame.row is not None
    columns = frame.row.columns
    where = {"name": group["name"], "column": columns.get("repeat_count") or columns.get("type")}
    if frame.loop is not None:
        options = importer.choice_lists.get(frame.loop, [])
        if not options:
            importer.error(
                "unknown_choice_list", f"'begin loop over {frame.loop}': no such list",
                "survey", frame.row, **where,
            )  # fmt: skip
        return [(re.sub(r"[^\w.-]", "_", o["value"]), None, o["label"]) for o in options]
    count = frame.repeat or ""
    if re.fullmatch(r"\d+", count):
        copies = int(count)
        if copies > MAX_REPEAT:
            importer.error(
                "repeat_too_long",
                f"repeat_count {copies} is more than the {MAX_REPEAT} rounds asked by phone",
                "survey",
                frame.row,
                **where,
            )
        return [(str(i), None, None) for i in range(1, min(copies, MAX_REPEAT) + 1)]
    if count:
        importer.warning(
            "repeat_unrolled", f"the repeat is asked at most {MAX_REPEAT} times ({count})",
            "survey", frame.row, **where,
        )  # fmt: skip
        return [(str(i), f"{i} <= number({count})", None) for i in range(1, MAX_REPEAT + 1)]
    importer.warning(
        "open_repeat",
        f"a repeat without repeat_count is asked up to {OPEN_REPEAT} times, with an "
        "'another one?' question before each round after the first",
        "survey",
        frame.row,
        **where,
    )
    return [(str(i), None, None) for i in range(1, OPEN_REPEAT + 1)]


_YES_NO: Final = "pilotdial_yes_no"


def _another(importer: _Importer, group: dict[str, Any], index: int, gate: str | None) -> Any:
    importer.choice_lists.setdefault(
        _YES_NO, [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}]
    )
    label = group.get("label") or group["name"]
    texts = label if isinstance(label, dict) else {importer.default_language or "en": label}
    question: dict[str, Any] = {
        "name": f"{group['name']}_another_{index}"[:64],
        "type": "single_choice",
        "choices": _YES_NO,
        "required": True,
        "label": {language: f"{text} ({index})?" for language, text in texts.items()},
    }
    if gate is not None:
        question["relevant"] = f"${{{gate}}} = 'yes'"
    return question


def _relabelled(question: dict[str, Any], label: str | dict[str, str]) -> dict[str, Any]:
    """``%(label)s`` in a loop's texts becomes the option's label (per language)."""
    copy = dict(question)
    for key in ("label", "hint"):
        text = copy.get(key)
        if isinstance(text, str):
            value = label if isinstance(label, str) else next(iter(label.values()), "")
            copy[key] = text.replace("%(label)s", value)
        elif isinstance(text, dict):
            copy[key] = {
                lang: t.replace(
                    "%(label)s", label if isinstance(label, str) else label.get(lang, "")
                )
                for lang, t in text.items()
            }
    if "questions" in copy:
        copy["questions"] = [_relabelled(q, label) for q in copy["questions"]]
    return copy


def _walk(questions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for question in questions:
        yield question
        yield from _walk(question.get("questions", []))


def _renamed(
    importer: _Importer, question: dict[str, Any], renames: dict[str, str], index: int
) -> dict[str, Any]:
    copy = dict(question)
    if copy["name"] in renames:
        if copy["name"] in importer.locations:
            importer.locations[renames[copy["name"]]] = importer.locations[copy["name"]]
        copy["name"] = renames[copy["name"]]
    for key in ("relevant", "constraint", "calculation", "choice_filter", "required_if"):
        if copy.get(key):
            copy[key] = rename_references(copy[key], renames, position=index)
    for key in ("label", "hint", "constraint_message", "required_message"):
        text = copy.get(key)
        if isinstance(text, str):
            copy[key] = rename_references(text, renames, position=index)
        elif isinstance(text, dict):
            copy[key] = {
                lang: rename_references(t, renames, position=index) for lang, t in text.items()
            }
    if "questions" in copy:
        copy["questions"] = [_renamed(importer, q, renames, index) for q in copy["questions"]]
    return copy


def _question_row(
    importer: _Importer, row: _Row, kind: str, name: str | None
) -> dict[str, Any] | None:
    lowered = kind.lower()
    type_column = row.columns.get("type")
    if name is None and lowered in ("note", "q note", "add note prompt"):
        name = f"note_row_{row.number}"
        importer.warning(
            "missing_name", f"a note without a name; named {name!r}", "survey", row,
            column=type_column,
        )  # fmt: skip
    if name is None:
        importer.error(
            "missing_name", f"a {kind!r} row needs a name; the row is skipped", "survey", row,
            column=type_column,
        )  # fmt: skip
        return None
    name = _valid_name(importer, name, "survey", row, "name")
    question: dict[str, Any] = {"name": name}
    importer.locations[name] = (row.number, row.columns)
    params = _parse_parameters(_text(row.cells.get("parameters")))
    lowered = _METADATA_ALIASES.get(lowered, lowered)
    lowered = _TYPE_ALIASES.get(lowered, lowered)
    if lowered == "phone number":
        question["constraint"] = r"regex(., '^\d*$')"
        lowered = "text"
    if lowered in METADATA_SOURCES:
        if lowered in ("phonenumber", "email", "subscriberid", "simserial"):
            importer.warning(
                "metadata_empty",
                f"{kind!r} is not known in a phone interview; it stays empty",
                "survey",
                row,
                name=name,
                column=type_column,
            )
        return {"name": name, "type": "metadata", "source_type": lowered}
    if lowered in _NOT_PHONE or lowered.split(" ")[0] in _NOT_PHONE:
        importer.warning(
            "not_asked_by_phone",
            f"a {kind!r} question cannot be asked by phone; it is kept (empty) so that "
            "references to it still work",
            "survey",
            row,
            name=name,
            column=type_column,
        )
        return {"name": name, "type": "not_asked", "source_type": lowered.split(" ")[0]}
    if lowered == "hidden":
        question.update(type="text", read_only=True)
    elif lowered == "range":
        if not _range(importer, question, params, row):
            return None
    elif lowered in _SIMPLE_TYPES:
        question["type"] = _SIMPLE_TYPES[lowered]
    elif not _select(importer, question, kind, params, row):
        return None
    _common_columns(importer, question, row)
    if params:
        question["parameters"] = params
    try:
        Question.model_validate(question)
    except ValidationError as exc:
        importer.error(
            "invalid_question", _first_error(exc) + "; the row is skipped", "survey", row,
            name=name, column=type_column,
        )  # fmt: skip
        return None
    return question


def _select(
    importer: _Importer,
    question: dict[str, Any],
    kind: str,
    params: dict[str, str],
    row: _Row,
) -> bool:
    or_other = _OR_OTHER.search(kind)
    base = kind[: or_other.start()] if or_other else kind
    match = _TYPE_RE.match(base.strip())
    if match is None:
        importer.error(
            "unknown_type",
            f"question type {kind!r} is not an XLSForm type (or needs a list name); the row "
            "is skipped",
            "survey",
            row,
            name=question["name"],
            column=row.columns.get("type"),
        )
        return False
    keyword = match.group("kw").lower()
    list_name = match.group("list")
    if keyword in _FROM_FILE:
        question["type"] = _FROM_FILE[keyword]
        loaded = _choices_from_file(importer, list_name, row)
        if loaded is None:
            return False
        list_name = loaded
    else:
        question["type"] = _SELECT_KEYWORDS[keyword]
        if list_name not in importer.choice_lists:
            importer.error(
                "unknown_choice_list",
                f"list {list_name!r} is not on the choices sheet; the row is skipped",
                "survey",
                row,
                name=question["name"],
                column=row.columns.get("type"),
            )
            return False
    question["choices"] = list_name
    if or_other:
        importer.or_other.add(list_name)
    if params.pop("randomize", "false").lower() in _TRUE:
        question["randomize"] = True
    if params.pop("seed", None) is not None:
        importer.warning(
            "seed_ignored", "randomisation seed is ignored: order is seeded per respondent",
            "survey", row, name=question["name"], column=row.columns.get("parameters"),
        )  # fmt: skip
    return True


def _choices_from_file(importer: _Importer, filename: str, row: _Row) -> str | None:
    data = _attachment(importer, filename)
    where = {"name": _text(row.cells.get("name")), "column": row.columns.get("type")}
    if not filename.lower().endswith(".csv"):
        importer.error(
            "unsupported_file", f"choices from {filename!r}: only CSV files are supported",
            "survey", row, **where,
        )  # fmt: skip
        return None
    if data is None:
        importer.error(
            "missing_file",
            f"{filename!r} is not attached; upload it with the form (name, label columns)",
            "survey",
            row,
            **where,
        )
        return None
    list_name = re.sub(r"[^A-Za-z0-9_]", "_", Path(filename).stem)
    if not re.match(r"^[A-Za-z_]", list_name):
        list_name = f"file_{list_name}"
    if list_name in importer.choice_lists:
        return list_name
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        records = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        importer.error(
            "bad_file", f"{filename!r} is not a UTF-8 CSV ({exc})", "survey", row, **where
        )
        return None
    for number, record in enumerate(records, start=2):
        fake = _Row(number, {k.strip().lower(): v for k, v in record.items() if k}, {})
        value = _text(fake.cells.get("name"))
        if not value:
            importer.error("incomplete_choice", "a row has no 'name'", filename, number)
            continue
        plain = importer.default_language or "en"
        label = {
            _language_code(k.split("::", 1)[1]) if "::" in k else plain: v
            for k, v in fake.cells.items()
            if k.split("::")[0] == "label" and v
        }
        _add_choice(importer, list_name, value, label or value, fake, filename)
        options = importer.choice_lists[list_name]
        if options and options[-1]["value"] == value:
            options[-1]["columns"] = {
                k: v or ""
                for k, v in fake.cells.items()
                if k not in ("name",) and "::" not in k and k != "label"
            }
    return list_name


def _range(
    importer: _Importer, question: dict[str, Any], params: dict[str, str], row: _Row
) -> bool:
    try:
        start = float(params.pop("start", "1"))
        end = float(params.pop("end", "10"))
        step = float(params.pop("step", "1"))
    except ValueError:
        importer.error(
            "bad_parameters", "range start, end and step must be numbers", "survey", row,
            name=question["name"], column=row.columns.get("parameters"),
        )  # fmt: skip
        return False
    whole = start.is_integer() and end.is_integer() and abs(end - start) <= 100
    if step != 1 or not whole:
        question.update(type="decimal", min=min(start, end), max=max(start, end))
        if step != 1:
            question["constraint"] = f"(. - {_number(min(start, end))}) mod {_number(step)} = 0"
    else:
        question.update(type="rating", min=int(min(start, end)), max=int(max(start, end)))
    return True


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _common_columns(importer: _Importer, question: dict[str, Any], row: _Row) -> None:
    name = question["name"]
    kind = question["type"]
    for key in ("label", "hint", "constraint_message", "required_message", "screen_out_message",
                "ivr_prompt", "min_label", "max_label"):  # fmt: skip
        text = importer.localized(row, key)
        if text is not None:
            question[key] = text
    for key in ("relevant", "constraint", "calculation", "choice_filter", "screen_out", "trigger"):
        if row.cells.get(key) is not None:
            question[key] = _text(row.cells[key])
    if row.cells.get("default") is not None:
        question["default"] = _text(row.cells["default"])
    if row.cells.get("measure") is not None:
        question["measure"] = _text(row.cells["measure"]).lower()
    for key in ("min", "max"):
        if row.cells.get(key) is not None:
            question[key] = row.cells[key]
    for key in ("max_length", "max_selected"):
        if row.cells.get(key) is not None:
            question[key] = row.cells[key]
    if row.cells.get("special_answers") is not None:
        question["special_answers"] = _text(row.cells["special_answers"]).split()
    required = _text(row.cells.get("required"))
    flag = _flag(required)
    if flag:
        question["required"] = True
    elif flag is None:
        question["required_if"] = required
    read_only = _text(row.cells.get("read_only"))
    if read_only:
        flag = _flag(read_only)
        if flag is None:
            importer.error(
                "dynamic_read_only",
                f"read_only {read_only!r} is an expression; only yes/no is supported",
                "survey",
                row,
                name=name,
                column=row.columns.get("read_only"),
            )
        elif flag:
            question["read_only"] = True
    if kind == "calculate":
        for key in ("label", "hint", "required", "required_if", "constraint",
                    "constraint_message", "required_message", "default", "read_only"):  # fmt: skip
            question.pop(key, None)
        if "calculation" not in question:
            importer.error(
                "missing_calculation", "a calculate row needs a calculation", "survey", row,
                name=name, column=row.columns.get("type"),
            )  # fmt: skip
    elif kind in ("note", "acknowledge") or question.get("read_only"):
        if kind == "note":
            for key in ("required", "required_if", "constraint", "constraint_message",
                        "required_message", "default", "calculation", "read_only"):  # fmt: skip
                question.pop(key, None)
        if "label" not in question and kind != "text":
            question["label"] = name
    elif "label" not in question:
        if "hint" in question:
            question["label"] = question["hint"]
        else:
            question["label"] = name
            importer.warning(
                "missing_label", "no label; the name is read out instead", "survey", row,
                name=name, column=row.columns.get("type"),
            )  # fmt: skip
    if question.get("read_only") and "label" not in question:
        question["label"] = name
    if kind == "calculate" and "calculation" not in question:
        question["calculation"] = "''"
    if question.get("calculation") and kind not in ("calculate",):
        _check_parses(importer, question, row)


def _check_parses(importer: _Importer, question: dict[str, Any], row: _Row) -> None:
    try:
        parse(question["calculation"])
    except ExpressionError:
        return  # validation reports it with the column


def _import_quotas(importer: _Importer, sheet: Sheet | None) -> list[dict[str, Any]]:
    """The ``quotas`` sheet: a row with ``name``, ``variables`` (space-separated) and
    optionally ``target`` and ``message[::lang]`` defines a quota; rows with the same ``name``
    and a ``match`` (``region=south age_band=55_plus``) and ``target`` define its cells."""
    if sheet is None:
        return []
    table = importer.table(sheet, {"name", "variables", "target", "match", "message"}, "quotas")
    quotas: dict[str, dict[str, Any]] = {}
    rows: dict[str, _Row] = {}
    for row in table.rows:
        name = _text(row.cells.get("name"))
        if not name:
            importer.error("missing_name", "a quota row needs a name", "quotas", row)
            continue
        target_text = _text(row.cells.get("target"))
        target: int | None = None
        if target_text:
            if not re.fullmatch(r"\d+", target_text):
                importer.error(
                    "bad_target", f"target {target_text!r} is not a whole number", "quotas",
                    row, column=row.columns.get("target"),
                )  # fmt: skip
                continue
            target = int(target_text)
        match_text = _text(row.cells.get("match"))
        if not match_text:
            variables = _text(row.cells.get("variables")).split()
            quota: dict[str, Any] = {"name": name, "variables": variables, "cells": []}
            if target is not None:
                quota["target"] = target
            message = importer.localized(row, "message")
            if message is not None:
                quota["message"] = message
            quotas[name] = quota
            rows[name] = row
            continue
        if name not in quotas:
            importer.error(
                "unknown_quota", f"quota {name!r} is not defined above this cell", "quotas", row
            )
            continue
        pairs = dict(part.split("=", 1) for part in match_text.split() if "=" in part)
        quotas[name]["cells"].append({"match": pairs, "target": target or 0})
    valid = []
    for name, quota in quotas.items():
        try:
            Quota.model_validate(quota)
        except ValidationError as exc:
            importer.error("invalid_quota", _first_error(exc), "quotas", rows[name])
            continue
        valid.append(quota)
    return valid
