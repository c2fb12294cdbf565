"""Publish-time validation: every reference, expression, choice list, label and quota.

:func:`validate_questionnaire` never raises on a bad questionnaire; it returns every
:class:`Problem` found (errors block publishing, warnings do not), each naming the question,
the field and, for expressions, the 1-based column. :func:`ensure_publishable` raises
:class:`~surveys.exceptions.QuestionnaireInvalidError` when there is at least one error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from graphlib import CycleError, TopologicalSorter

from pydantic import BaseModel, ConfigDict

from surveys.exceptions import ExpressionSyntaxError, QuestionnaireInvalidError
from surveys.expressions import (
    FUNCTIONS,
    Call,
    ChoiceField,
    Current,
    Node,
    Reference,
    StringLiteral,
    iter_nodes,
    parse,
)
from surveys.regex import RegexError, check_pattern
from surveys.schema import (
    CHOICE_TYPES,
    INPUT_TYPES,
    LocalizedText,
    Question,
    Questionnaire,
    QuestionType,
    SpecialKind,
)

__all__ = [
    "PIPE_PATTERN",
    "Problem",
    "Severity",
    "calculation_order",
    "ensure_publishable",
    "validate_questionnaire",
]

PIPE_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
"""``${name}`` inside a label: replaced by the answer's display text when shown."""

_EXPRESSION_FIELDS = (
    "relevant",
    "constraint",
    "calculation",
    "choice_filter",
    "screen_out",
    "required_if",
)
_TEXT_FIELDS = (
    "label",
    "hint",
    "required_message",
    "constraint_message",
    "min_label",
    "max_label",
    "screen_out_message",
    "ivr_prompt",
)
_QUOTA_VARIABLE_TYPES = frozenset(
    {QuestionType.SINGLE_CHOICE, QuestionType.RATING, QuestionType.INTEGER, QuestionType.CALCULATE}
)


class Severity(StrEnum):
    """Errors block publishing; warnings are shown to the researcher."""

    ERROR = "error"
    WARNING = "warning"


class Problem(BaseModel):
    """One finding of validation, with where it is."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: str
    message: str
    question: str | None = None
    field: str | None = None
    position: int | None = None
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    """The spreadsheet column (``D``) of an imported workbook's cell."""

    def describe(self) -> str:
        """One line: 'error in sheet survey row 4 column D, question q3, relevant: ...'."""
        where = []
        if self.sheet:
            cell = f" column {self.column}" if self.column else ""
            where.append(f"sheet {self.sheet} row {self.row}{cell}")
        if self.question:
            where.append(f"question {self.question}")
        if self.field:
            where.append(self.field)
        if self.position is not None:
            where.append(f"character {self.position}")
        location = f" in {', '.join(where)}" if where else ""
        return f"{self.severity.value}{location}: {self.message}"


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, code: str, message: str, **where: str | int | None) -> None:
        self.problems.append(Problem(severity=Severity.ERROR, code=code, message=message, **where))

    def warning(self, code: str, message: str, **where: str | int | None) -> None:
        self.problems.append(
            Problem(severity=Severity.WARNING, code=code, message=message, **where)
        )


def validate_questionnaire(questionnaire: Questionnaire) -> list[Problem]:
    """Return every problem found; an empty list (or warnings only) means publishable."""
    out = _Collector()
    items = list(questionnaire.walk())
    order: dict[str, int] = {}
    kinds: dict[str, QuestionType | None] = {}
    for attribute in questionnaire.attributes:
        if attribute.name in kinds:
            out.error("duplicate_name", f"attribute {attribute.name!r} is declared twice")
        kinds[attribute.name] = None
        order[attribute.name] = -1
    for index, question in enumerate(items):
        if question.name in kinds:
            what = "an attribute" if kinds[question.name] is None else "another question"
            out.error(
                "duplicate_name",
                f"name {question.name!r} is already used by {what}; names must be unique",
                question=question.name,
                field="name",
            )
            continue
        kinds[question.name] = question.type
        order[question.name] = index

    if not any(q.type in INPUT_TYPES or q.type == QuestionType.NOTE for q in items):
        out.error("no_questions", "the questionnaire asks nothing: add at least one question")

    _check_choice_lists(questionnaire, items, out)
    _check_texts(questionnaire, items, kinds, order, out)
    for question in items:
        _check_expressions(questionnaire, question, kinds, order, out)
    for question in items:
        if question.trigger is not None:
            _check_trigger(question, kinds, out)
    _check_cycles(items, out)
    _check_quotas(questionnaire, kinds, out)
    return out.problems


def _check_trigger(
    question: Question, kinds: dict[str, QuestionType | None], out: _Collector
) -> None:
    match = PIPE_PATTERN.fullmatch(question.trigger or "")
    if match is None or match.group(1) not in kinds:
        out.error(
            "bad_trigger",
            f"trigger {question.trigger!r} must name one question as ${{name}}",
            question=question.name,
            field="trigger",
        )
    elif question.calculation is None:
        out.warning(
            "trigger_without_calculation",
            "a trigger only matters with a calculation",
            question=question.name,
            field="trigger",
        )


def ensure_publishable(questionnaire: Questionnaire) -> list[Problem]:
    """Raise QuestionnaireInvalidError on any error; return the warnings otherwise."""
    problems = validate_questionnaire(questionnaire)
    errors = [p for p in problems if p.severity == Severity.ERROR]
    if errors:
        raise QuestionnaireInvalidError(errors)
    return problems


def calculation_order(questionnaire: Questionnaire) -> list[str]:
    """Names of computed questions (calculate, read-only with a calculation or default), each
    after the ones it depends on."""
    calcs = _computed(questionnaire.walk())
    graph = {name: _calc_dependencies(q) & set(calcs) for name, q in calcs.items()}
    return list(TopologicalSorter(graph).static_order())


def _computed(items: Iterable[Question]) -> dict[str, Question]:
    return {
        q.name: q
        for q in items
        if q.type == QuestionType.CALCULATE
        or (q.read_only and q.type in INPUT_TYPES and (q.calculation or q.default is not None))
    }


def _calc_dependencies(question: Question) -> set[str]:
    names: set[str] = set()
    for text in (question.calculation, question.relevant):
        if text:
            try:
                names |= {n.name for n in iter_nodes(parse(text)) if isinstance(n, Reference)}
            except ExpressionSyntaxError:
                continue
    return names


def _check_choice_lists(
    questionnaire: Questionnaire, items: list[Question], out: _Collector
) -> None:
    used: set[str] = set()
    for question in items:
        if question.type not in CHOICE_TYPES or question.choices is None:
            continue
        used.add(question.choices)
        if question.choices not in questionnaire.choice_lists:
            known = ", ".join(sorted(questionnaire.choice_lists)) or "none defined"
            out.error(
                "unknown_choice_list",
                f"choice list {question.choices!r} does not exist (known: {known})",
                question=question.name,
                field="choices",
            )
            continue
        choices = questionnaire.choice_lists[question.choices]
        if (
            question.type == QuestionType.MULTIPLE_CHOICE
            and question.max_selected is not None
            and question.max_selected > len(choices)
        ):
            out.warning(
                "max_selected_too_large",
                f"max_selected {question.max_selected} exceeds the {len(choices)} options",
                question=question.name,
                field="max_selected",
            )
    for list_name, choices in questionnaire.choice_lists.items():
        seen: set[str] = set()
        specials: set[SpecialKind] = set()
        for choice in choices:
            if choice.value in seen:
                out.error(
                    "duplicate_choice",
                    f"choice list {list_name!r} has value {choice.value!r} twice",
                    field=f"choice_lists.{list_name}",
                )
            seen.add(choice.value)
            if choice.special is not None:
                if choice.special in specials:
                    out.error(
                        "duplicate_special",
                        f"choice list {list_name!r} has two {choice.special.value!r} options",
                        field=f"choice_lists.{list_name}",
                    )
                specials.add(choice.special)
        if list_name not in used:
            out.warning(
                "unused_choice_list",
                f"choice list {list_name!r} is not used by any question",
                field=f"choice_lists.{list_name}",
            )


def _texts_of(question: Question) -> Iterable[tuple[str, LocalizedText]]:
    for field in _TEXT_FIELDS:
        value = getattr(question, field)
        if value is not None:
            yield field, value


def _check_texts(
    questionnaire: Questionnaire,
    items: list[Question],
    kinds: dict[str, QuestionType | None],
    order: dict[str, int],
    out: _Collector,
) -> None:
    languages = set(questionnaire.languages)

    def check_translation(text: LocalizedText, question: str | None, field: str) -> None:
        if isinstance(text, str):
            return
        missing = sorted(languages - set(text))
        extra = sorted(set(text) - languages)
        if missing:
            out.warning(
                "missing_translation",
                f"no text in {', '.join(missing)}; the {questionnaire.primary_language} "
                "text will be shown",
                question=question,
                field=field,
            )
        if extra:
            out.warning(
                "undeclared_language",
                f"text in {', '.join(extra)}, which is not in 'languages'",
                question=question,
                field=field,
            )

    check_translation(questionnaire.title, None, "title")
    for index, question in enumerate(items):
        for field, text in _texts_of(question):
            check_translation(text, question.name, field)
            for body in [text] if isinstance(text, str) else text.values():
                for match in PIPE_PATTERN.finditer(body):
                    name = match.group(1)
                    if name not in kinds:
                        out.error(
                            "unknown_reference",
                            f"piped ${{{name}}} is not a question, calculation or attribute",
                            question=question.name,
                            field=field,
                            position=match.start() + 1,
                        )
                    elif order[name] >= index and kinds[name] != QuestionType.CALCULATE:
                        out.warning(
                            "forward_reference",
                            f"piped ${{{name}}} is not answered yet when this is shown",
                            question=question.name,
                            field=field,
                            position=match.start() + 1,
                        )
    for list_name, choices in questionnaire.choice_lists.items():
        for choice in choices:
            check_translation(choice.label, None, f"choice_lists.{list_name}.{choice.value}")


def _check_expressions(
    questionnaire: Questionnaire,
    question: Question,
    kinds: dict[str, QuestionType | None],
    order: dict[str, int],
    out: _Collector,
) -> None:
    for field in _EXPRESSION_FIELDS:
        text = getattr(question, field)
        if text is None:
            continue
        where = {"question": question.name, "field": field}
        try:
            tree = parse(text)
        except ExpressionSyntaxError as exc:
            out.error("syntax_error", str(exc), position=exc.position, **where)
            continue
        choice_columns: set[str] = {"name"}
        if field == "choice_filter" and question.choices in questionnaire.choice_lists:
            for choice in questionnaire.choice_lists[question.choices]:
                choice_columns |= set(choice.columns)
        for node in iter_nodes(tree):
            _check_node(node, field, question, kinds, order, choice_columns, out)


def _check_node(
    node: Node,
    field: str,
    question: Question,
    kinds: dict[str, QuestionType | None],
    order: dict[str, int],
    choice_columns: set[str],
    out: _Collector,
) -> None:
    where: dict[str, str | int | None] = {
        "question": question.name,
        "field": field,
        "position": node.pos,
    }
    match node:
        case Reference(name=name):
            if name not in kinds:
                out.error(
                    "unknown_reference",
                    f"${{{name}}} is not a question, calculation or attribute",
                    **where,
                )
            elif kinds[name] == QuestionType.GROUP:
                out.error(
                    "reference_to_non_value",
                    f"${{{name}}} is a {kinds[name]}, which has no value",
                    **where,
                )
            elif kinds[name] == QuestionType.NOTE:
                out.warning(
                    "reference_to_note",
                    f"${{{name}}} is a note, which has no value: it is always empty",
                    **where,
                )
            elif name == question.name and field in ("relevant", "calculation"):
                out.error(
                    "self_reference",
                    f"{field} refers to its own question ${{{name}}}; use '.' in a constraint",
                    **where,
                )
            elif (
                field in ("relevant", "choice_filter")
                and order[name] > order[question.name]
                and kinds[name] not in (QuestionType.CALCULATE, QuestionType.METADATA)
                and question.type != QuestionType.CALCULATE
            ):
                out.warning(
                    "forward_reference",
                    f"${{{name}}} comes later, so it is always empty here",
                    **where,
                )
        case Current():
            if field != "constraint":
                out.error(
                    "current_outside_constraint",
                    "'.' (the current answer) is only meaningful in a constraint",
                    **where,
                )
        case ChoiceField(name=name):
            if field != "choice_filter":
                out.error(
                    "bare_name",
                    f"bare name {name!r} is only allowed in a choice_filter; "
                    f"write ${{{name}}} to refer to a question",
                    **where,
                )
            elif name not in choice_columns:
                out.warning(
                    "unknown_choice_column",
                    f"{name!r} is not a column of choice list {question.choices!r}, so it is "
                    f"always empty (columns: {', '.join(sorted(choice_columns))})",
                    **where,
                )
        case Call(name=name, args=args):
            function = FUNCTIONS.get(name)
            if function is None:
                out.error(
                    "unknown_function",
                    f"unknown function {name}(); supported: {', '.join(sorted(FUNCTIONS))}",
                    **where,
                )
                return
            count = len(args)
            if count < function.min_args or (
                function.max_args is not None and count > function.max_args
            ):
                upper = "any number of" if function.max_args is None else str(function.max_args)
                expected = (
                    str(function.min_args)
                    if function.min_args == function.max_args
                    else f"{function.min_args} to {upper}"
                )
                out.error(
                    "wrong_arity",
                    f"{name}() takes {expected} argument(s), got {count}",
                    **where,
                )
            if name == "regex" and count == 2 and isinstance(args[1], StringLiteral):
                try:
                    check_pattern(args[1].value)
                except RegexError as exc:
                    out.error("bad_regex", f"regular expression is not usable: {exc}", **where)
        case _:
            pass


def _check_cycles(items: list[Question], out: _Collector) -> None:
    calcs = _computed(items)
    graph = {name: _calc_dependencies(q) & set(calcs) for name, q in calcs.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = list(exc.args[1])
        path = " -> ".join(reversed(cycle))
        out.error(
            "calculation_cycle",
            f"calculations depend on each other in a cycle: {path}",
            question=cycle[0],
            field="calculation",
        )


def _check_quotas(
    questionnaire: Questionnaire, kinds: dict[str, QuestionType | None], out: _Collector
) -> None:
    seen: set[str] = set()
    for quota in questionnaire.quotas:
        field = f"quotas.{quota.name}"
        if quota.name in seen:
            out.error("duplicate_quota", f"quota {quota.name!r} is defined twice", field=field)
        seen.add(quota.name)
        for variable in quota.variables:
            if variable not in kinds:
                out.error(
                    "unknown_reference",
                    f"quota variable {variable!r} is not a question, calculation or attribute",
                    field=field,
                )
                continue
            kind = kinds[variable]
            if kind is not None and kind not in _QUOTA_VARIABLE_TYPES:
                out.error(
                    "bad_quota_variable",
                    f"quota variable {variable!r} is a {kind}; use a single choice, rating, "
                    "integer, calculation or attribute",
                    field=field,
                )
                continue
            if kind == QuestionType.SINGLE_CHOICE:
                question = questionnaire.question(variable)
                allowed = {
                    c.value for c in questionnaire.choice_lists.get(question.choices or "", [])
                }
                for cell in quota.cells:
                    if allowed and cell.match[variable] not in allowed:
                        out.error(
                            "unknown_quota_value",
                            f"quota cell value {cell.match[variable]!r} is not a choice of "
                            f"{variable!r} (choices: {', '.join(sorted(allowed))})",
                            field=field,
                        )
