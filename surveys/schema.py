"""The questionnaire schema (pydantic) and its JSON/YAML loaders; see ``surveys/SCHEMA.md``.

A :class:`Questionnaire` is plain data: questions (possibly nested in groups), named choice
lists, declared lead attributes (for piping and quotas), quotas and closing messages. Loading
checks the *shape* (types, unknown keys, per-type required fields); cross-references and
expressions are checked by :func:`surveys.validation.validate_questionnaire` at publish time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from surveys.exceptions import SchemaError

__all__ = [
    "CHOICE_TYPES",
    "INPUT_TYPES",
    "METADATA_SOURCES",
    "NAME_PATTERN",
    "SILENT_TYPES",
    "Attribute",
    "Choice",
    "LocalizedText",
    "Question",
    "QuestionType",
    "Questionnaire",
    "Quota",
    "QuotaCellSpec",
    "SpecialKind",
    "content_hash",
    "dump_questionnaire",
    "load_questionnaire",
    "parse_questionnaire",
    "resolve_text",
]

NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$"
_NAME_RE: Final = re.compile(NAME_PATTERN)

LocalizedText: TypeAlias = str | dict[str, str]
"""A label: one text for every language, or a mapping ``language -> text``."""


class QuestionType(StrEnum):
    """What a question asks for."""

    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    RATING = "rating"
    NOTE = "note"
    DATETIME = "datetime"
    TIME = "time"
    ACKNOWLEDGE = "acknowledge"
    RANK = "rank"
    CALCULATE = "calculate"
    GROUP = "group"
    METADATA = "metadata"
    NOT_ASKED = "not_asked"


METADATA_SOURCES: Final = frozenset(
    {"start", "end", "today", "deviceid", "username", "phonenumber", "email", "subscriberid",
     "simserial"}
)  # fmt: skip
"""What a ``metadata`` field can hold; see SCHEMA.md for their meaning in a phone interview."""


CHOICE_TYPES: Final = frozenset(
    {QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE, QuestionType.RANK}
)
INPUT_TYPES: Final = frozenset(
    {
        QuestionType.SINGLE_CHOICE,
        QuestionType.MULTIPLE_CHOICE,
        QuestionType.INTEGER,
        QuestionType.DECIMAL,
        QuestionType.TEXT,
        QuestionType.DATE,
        QuestionType.RATING,
        QuestionType.DATETIME,
        QuestionType.TIME,
        QuestionType.ACKNOWLEDGE,
        QuestionType.RANK,
    }
)
SILENT_TYPES: Final = frozenset(
    {QuestionType.CALCULATE, QuestionType.GROUP, QuestionType.METADATA, QuestionType.NOT_ASKED}
)
"""Types never presented to the agent: their value comes from elsewhere (or is empty)."""


class SpecialKind(StrEnum):
    """Options that keep their place when choices are randomised."""

    OTHER = "other"
    DONT_KNOW = "dont_know"
    REFUSED = "refused"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use letters, digits and _ (at most 64), "
            "starting with a letter or _"
        )
    return value


class Choice(_Strict):
    """One option of a choice list."""

    value: str = Field(description="The code stored in responses, e.g. 'north' or '1'.")
    label: LocalizedText
    special: SpecialKind | None = None
    fixed: bool = Field(False, description="Keep this option in place when randomising.")
    code: int | None = Field(None, description="Numeric code for SPSS; default: see SCHEMA.md.")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Extra columns visible to choice_filter expressions."
    )

    @field_validator("value", mode="before")
    @classmethod
    def _value_as_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a choice value must be text or a number, not true/false")
        if isinstance(value, int | float):
            return str(value)
        return value

    @field_validator("value")
    @classmethod
    def _value_not_blank(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError(f"choice value {value!r} must be non-empty, without outer spaces")
        return value

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value

    @property
    def anchored(self) -> bool:
        """Whether randomisation leaves this option where it is."""
        return self.fixed or self.special is not None


class Attribute(_Strict):
    """A lead attribute the interview receives at start (for piping, logic and quotas)."""

    name: str
    label: LocalizedText | None = None
    required: bool = False

    _name = field_validator("name")(_check_name)


class Question(_Strict):
    """A question, note, calculation or group; which fields apply depends on ``type``."""

    name: str
    type: QuestionType
    label: LocalizedText | None = None
    hint: LocalizedText | None = None
    required: bool = False
    required_if: str | None = Field(
        None, description="Expression; when true the question is required (XLSForm 'required')."
    )
    required_message: LocalizedText | None = None
    relevant: str | None = None
    constraint: str | None = None
    constraint_message: LocalizedText | None = None
    calculation: str | None = None
    choices: str | None = Field(None, description="Name of a choice list (choice types).")
    choice_filter: str | None = None
    randomize: bool = False
    min: float | None = None
    max: float | None = None
    min_label: LocalizedText | None = None
    max_label: LocalizedText | None = None
    max_length: int | None = Field(None, ge=1)
    max_selected: int | None = Field(None, ge=1)
    special_answers: list[SpecialKind] = Field(default_factory=list)
    screen_out: str | None = Field(
        None, description="Expression; when true after answering, the case is not eligible."
    )
    screen_out_message: LocalizedText | None = None
    ivr_prompt: LocalizedText | None = None
    default: str | None = Field(None, description="Answer proposed to the agent (pre-filled).")
    read_only: bool = Field(False, description="Shown or computed, never asked.")
    trigger: str | None = Field(None, description="Recompute 'calculation' when it changes.")
    source_type: str | None = Field(
        None, description="metadata: what it records; not_asked: the XLSForm type (geopoint)."
    )
    measure: Literal["nominal", "ordinal", "scale"] | None = Field(
        None, description="SPSS measurement level; default from the type."
    )
    parameters: dict[str, str] = Field(
        default_factory=dict, description="XLSForm parameters kept for round trips."
    )
    questions: list[Question] = Field(default_factory=list)

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _fields_fit_type(self) -> Question:
        kind = self.type
        where = f"question {self.name!r} ({kind.value})"
        if kind in CHOICE_TYPES and not self.choices:
            raise ValueError(f"{where} needs 'choices': the name of a choice list")
        if kind not in CHOICE_TYPES:
            for attr in ("choices", "choice_filter", "max_selected"):
                if getattr(self, attr) is not None:
                    raise ValueError(f"{where} cannot have {attr!r}: only choice questions can")
            if self.randomize:
                raise ValueError(f"{where} cannot have 'randomize': only choice questions can")
        if kind == QuestionType.SINGLE_CHOICE and self.max_selected is not None:
            raise ValueError(f"{where} cannot have 'max_selected'")
        if kind == QuestionType.CALCULATE:
            if not self.calculation:
                raise ValueError(f"{where} needs 'calculation': an expression")
        elif self.calculation is not None and kind not in INPUT_TYPES:
            raise ValueError(f"{where} cannot have 'calculation': use type calculate")
        if kind == QuestionType.METADATA and self.source_type not in METADATA_SOURCES:
            raise ValueError(
                f"{where} needs 'source_type', one of {', '.join(sorted(METADATA_SOURCES))}"
            )
        if kind == QuestionType.NOT_ASKED and not self.source_type:
            raise ValueError(f"{where} needs 'source_type': the XLSForm type it comes from")
        if kind == QuestionType.GROUP:
            if not self.questions:
                raise ValueError(f"{where} needs 'questions': a non-empty list")
        elif self.questions:
            raise ValueError(f"{where} cannot have 'questions': only groups can")
        if kind not in SILENT_TYPES and self.label is None:
            raise ValueError(f"{where} needs a 'label'")
        if kind == QuestionType.RATING:
            if self.min is None or self.max is None:
                raise ValueError(f"{where} needs 'min' and 'max' (e.g. 0 and 10 for NPS)")
            if not (float(self.min).is_integer() and float(self.max).is_integer()):
                raise ValueError(f"{where} needs whole-number 'min' and 'max'")
            if self.max - self.min > 100:
                raise ValueError(f"{where} has more than 101 points; use an integer question")
        elif self.min_label is not None or self.max_label is not None:
            raise ValueError(f"{where} cannot have 'min_label'/'max_label': only rating can")
        if kind not in (QuestionType.INTEGER, QuestionType.DECIMAL, QuestionType.RATING) and (
            self.min is not None or self.max is not None
        ):
            raise ValueError(f"{where} cannot have 'min'/'max': only numeric questions can")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{where} has min {self.min} greater than max {self.max}")
        if kind != QuestionType.TEXT and self.max_length is not None:
            raise ValueError(f"{where} cannot have 'max_length': only text questions can")
        if self.special_answers:
            if kind not in INPUT_TYPES or kind in CHOICE_TYPES:
                raise ValueError(
                    f"{where} cannot have 'special_answers'; choice questions use choices "
                    "with 'special: dont_know' or 'special: refused' instead"
                )
            if SpecialKind.OTHER in self.special_answers:
                raise ValueError(f"{where}: 'other' is not a special answer, only a choice")
        if kind not in INPUT_TYPES:
            for attr in ("constraint", "screen_out"):
                if getattr(self, attr) is not None:
                    raise ValueError(f"{where} cannot have {attr!r}: it takes no answer")
            if self.required or self.required_if is not None:
                raise ValueError(f"{where} cannot be 'required': it takes no answer")
        return self

    def walk(self) -> Iterator[Question]:
        """Yield this question and, for a group, everything inside it in order."""
        yield self
        for child in self.questions:
            yield from child.walk()


class QuotaCellSpec(_Strict):
    """The target of one quota cell, e.g. ``{region: north, age_band: '18-34'} -> 200``."""

    match: dict[str, str]
    target: int = Field(ge=0)

    @field_validator("match", mode="before")
    @classmethod
    def _match_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value


class Quota(_Strict):
    """Completes allowed per combination of the values of ``variables``."""

    name: str
    variables: list[str] = Field(min_length=1)
    target: int | None = Field(
        None, ge=0, description="Target of every cell not listed in 'cells'; none = no limit."
    )
    cells: list[QuotaCellSpec] = Field(default_factory=list)
    message: LocalizedText | None = None

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _cells_fit_variables(self) -> Quota:
        wanted = set(self.variables)
        seen: set[tuple[str, ...]] = set()
        for index, cell in enumerate(self.cells):
            if set(cell.match) != wanted:
                raise ValueError(
                    f"quota {self.name!r} cell {index + 1} must give a value for exactly "
                    f"{sorted(wanted)}, got {sorted(cell.match)}"
                )
            key = tuple(cell.match[v] for v in self.variables)
            if key in seen:
                raise ValueError(f"quota {self.name!r} lists cell {dict(cell.match)} twice")
            seen.add(key)
        if self.target is None and not self.cells:
            raise ValueError(f"quota {self.name!r} needs 'target' or 'cells'")
        return self

    def cell_target(self, values: dict[str, str]) -> int | None:
        """Target of the cell for these variable values, or None when unlimited."""
        for cell in self.cells:
            if cell.match == values:
                return cell.target
        return self.target


class Questionnaire(_Strict):
    """A complete questionnaire document."""

    schema_version: int = Field(1, ge=1, le=1)
    id: str
    title: LocalizedText
    languages: list[str] = Field(min_length=1)
    default_language: str | None = None
    attributes: list[Attribute] = Field(default_factory=list)
    choice_lists: dict[str, list[Choice]] = Field(default_factory=dict)
    questions: list[Question] = Field(min_length=1)
    quotas: list[Quota] = Field(default_factory=list)
    tables: dict[str, list[dict[str, str]]] = Field(
        default_factory=dict,
        description="Lookup tables (attached CSVs) by file name without .csv, for pulldata().",
    )
    intro: LocalizedText | None = None
    completed_message: LocalizedText | None = None
    screened_out_message: LocalizedText | None = None
    quota_full_message: LocalizedText | None = None

    _id = field_validator("id")(_check_name)

    @model_validator(mode="after")
    def _languages_consistent(self) -> Questionnaire:
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("'languages' lists a language twice")
        if self.default_language is not None and self.default_language not in self.languages:
            raise ValueError(
                f"default_language {self.default_language!r} is not in languages {self.languages}"
            )
        for list_name, choices in self.choice_lists.items():
            _check_name(list_name)
            if not choices:
                raise ValueError(f"choice list {list_name!r} is empty")
        return self

    @property
    def primary_language(self) -> str:
        """The language used when a text is missing in the requested one."""
        return self.default_language or self.languages[0]

    def walk(self) -> Iterator[Question]:
        """Every question, group, note and calculation, in document order."""
        for question in self.questions:
            yield from question.walk()

    def question(self, name: str) -> Question:
        """The question called ``name``; raises KeyError when there is none."""
        for question in self.walk():
            if question.name == name:
                return question
        raise KeyError(name)


def resolve_text(text: LocalizedText | None, language: str, fallback: str) -> str:
    """The text in ``language``, else in ``fallback``, else any; '' for no text."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    for candidate in (language, fallback):
        if candidate in text:
            return text[candidate]
    return next(iter(text.values()), "")


def _location(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn a pydantic location into 'questions[2] (name=q3).choices'."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            named = ""
            if isinstance(node, list) and 0 <= item < len(node):
                node = node[item]
                if isinstance(node, dict) and "name" in node:
                    named = f" (name={node['name']})"
                elif isinstance(node, dict) and "value" in node:
                    named = f" (value={node['value']})"
            else:
                node = None
            parts.append(f"[{item}]{named}")
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(document)"


def parse_questionnaire(data: Any) -> Questionnaire:
    """Build a Questionnaire from parsed JSON/YAML data; raises SchemaError naming the field."""
    if not isinstance(data, dict):
        raise SchemaError("a questionnaire must be a mapping with 'id', 'title', 'questions'")
    try:
        return Questionnaire.model_validate(data)
    except ValidationError as exc:
        messages = []
        first_field: str | None = None
        for error in exc.errors()[:10]:
            where = _location(error["loc"], data)
            first_field = first_field or where
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check the spelling against surveys/SCHEMA.md)"
            messages.append(f"{where}: {message}")
        more = exc.error_count() - len(messages)
        suffix = f"; and {more} more" if more > 0 else ""
        raise SchemaError("; ".join(messages) + suffix, field=first_field) from None


def load_questionnaire(source: str | Path) -> Questionnaire:
    """Load a questionnaire from a ``.yaml``/``.yml``/``.json`` path or from YAML/JSON text."""
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemaError(f"cannot read {source}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SchemaError(f"{source} is not UTF-8 text; save it as UTF-8") from None
    else:
        text = source
    try:
        # JSON is a subset of YAML 1.2 for our purposes; safe_load never builds objects.
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise SchemaError(f"not valid YAML/JSON{where}: {problem}; fix the syntax") from None
    return parse_questionnaire(data)


def dump_questionnaire(questionnaire: Questionnaire) -> dict[str, Any]:
    """The questionnaire as JSON-able data without defaults (what the DB stores)."""
    return questionnaire.model_dump(mode="json", exclude_defaults=True)


def content_hash(questionnaire: Questionnaire) -> str:
    """A SHA-256 of the canonical JSON: equal content gives an equal hash."""
    canonical = json.dumps(
        questionnaire.model_dump(mode="json"),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
