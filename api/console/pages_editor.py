"""Questionnaire editing for researchers: a draft's questions (name, type, label in each
language, required, skip logic ``relevant``, ``constraint``, choice list, the group it sits
in), its choice lists, or the whole document as YAML; published versions are shown read-only.

Questions inside groups are rows of the same form: the question tree is shown depth first,
each row naming the group it belongs to (by the group's row, so renaming a group keeps its
questions) and its position there; moving a question is choosing another group. The form
rewrites only those keys of each question and choice and keeps every other one (hints,
calculations, quotas…) as stored. The result goes through
``surveys.service.update_draft`` exactly like ``PUT /questionnaire-versions/{id}``: a document
the schema refuses is not saved and its errors are shown at the question or list they name;
a saved draft's validation problems are shown at their question.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Annotated, Any, NamedTuple

import yaml
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from api.console.web import Console, ConsoleDep
from api.routes.surveys import DESIGNERS
from core.errors import InvalidInput
from core.security import require_role
from surveys import service
from surveys.db_errors import QuestionnaireRejected, SurveyInputError, translated
from surveys.models import QuestionnaireVersion
from surveys.schema import QuestionType
from surveys.versioning import VersionStatus, ensure_editable

router = APIRouter()

#: Fields of a question the form edits (the rest of a question is kept as stored).
EXPRESSIONS = ("relevant", "constraint")
#: The question path a schema error starts with: 'questions[2] (name=g).questions[0] (name=q)'.
_QUESTION_PATH = re.compile(r"^(?:\.?questions\[\d+\](?: \((?:name|value)=[^)]*\))?)+")
_INDEX = re.compile(r"questions\[(\d+)\]")
#: How deep groups may nest in the form (the schema's own limit is checked when saving).
MAX_DEPTH = 20

Path = tuple[int, ...]


class Row(NamedTuple):
    """One question of the tree as a row of the form."""

    path: Path  # where it is in the document: (2,) or (2, 0) for the first of group 2
    question: dict[str, Any]
    parent: int | None  # the row of its group, None at the top level
    position: int  # 1-based place among its group's questions


def flatten(questions: list[dict[str, Any]]) -> list[Row]:
    """The question tree depth first: every question, groups before their questions."""
    rows: list[Row] = []

    def walk(nodes: Any, prefix: Path, parent: int | None) -> None:
        if not isinstance(nodes, list):
            return
        for k, node in enumerate(nodes):
            if not isinstance(node, dict):
                continue
            row = len(rows)
            rows.append(Row((*prefix, k), node, parent, k + 1))
            if len(prefix) < MAX_DEPTH:
                walk(node.get("questions"), (*prefix, k), row)

    walk(questions, (), None)
    return rows


def _is_group(question: dict[str, Any]) -> bool:
    return question.get("type") == QuestionType.GROUP.value or bool(question.get("questions"))


def _at_path(questions: list[dict[str, Any]], path: Path) -> dict[str, Any] | None:
    node: Any = {"questions": questions}
    for index in path:
        children = node.get("questions") if isinstance(node, dict) else None
        if not isinstance(children, list) or not 0 <= index < len(children):
            return None
        node = children[index]
    return node if isinstance(node, dict) else None


def _path_text(path: Path) -> str:
    return ".".join(str(i) for i in path)


def _path_of(raw: str) -> Path | None:
    parts = raw.split(".") if raw else []
    if not parts or len(parts) > MAX_DEPTH + 1 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


_LIST_AT = re.compile(r"^choice_lists\.([^\[.\s]+)")


async def _form(request: Request) -> FormData:
    return await request.form()  # parsed once (the CSRF check read it already)


FormDep = Annotated[FormData, Depends(_form)]


def _check(console: Console) -> None:
    from api.console.pages_research import RESEARCH

    console.require(*RESEARCH)


def _draft(console: Console, version_id: uuid.UUID) -> QuestionnaireVersion:
    """The version to change: found (404), the designer role (403), still a draft (409)."""
    _check(console)
    version = service.get_version(session=console.session, version_id=version_id)
    require_role(console.principal, *DESIGNERS)
    row = service.get_questionnaire(
        session=console.session, questionnaire_id=version.questionnaire_id
    )
    with translated():
        ensure_editable(version.status, questionnaire_id=row.key, version=version.version)
    return version


def _text(value: Any, language: str) -> str:
    if isinstance(value, dict):
        return str(value.get(language, ""))
    return "" if value is None else str(value)


def _errors_at(
    problems: list[dict[str, Any]], questions: list[dict[str, Any]]
) -> tuple[dict[int, list[str]], dict[str, list[str]], list[dict[str, Any]]]:
    """Problems by question row, by choice list, and the rest (shown above the form)."""
    rows = flatten(questions)
    by_path = {row.path: i for i, row in enumerate(rows)}
    by_name = {row.question.get("name"): i for i, row in enumerate(rows)}
    at_row: dict[int, list[str]] = {}
    at_list: dict[str, list[str]] = {}
    rest: list[dict[str, Any]] = []
    for problem in problems:
        placed = False
        if problem.get("code") == "schema":
            # one schema error names its place first: 'questions[2] (name=q3).type: ...'
            for part in str(problem.get("message", "")).split("; "):
                if found := _QUESTION_PATH.match(part):
                    path = tuple(int(i) for i in _INDEX.findall(found.group(0)))
                    while path and path not in by_path:
                        path = path[:-1]  # the deepest question the form shows
                    if path:
                        at_row.setdefault(by_path[path], []).append(part)
                        placed = True
                elif found := _LIST_AT.match(part):
                    at_list.setdefault(found.group(1), []).append(part)
                    placed = True
        elif problem.get("question") in by_name:
            row = by_name[problem["question"]]
            field = f"{problem['field']}: " if problem.get("field") else ""
            at_row.setdefault(row, []).append(f"{_sev(problem)}{field}{problem.get('message')}")
            placed = True
        if not placed:
            rest.append(problem)
    return at_row, at_list, rest


def _sev(problem: dict[str, Any]) -> str:
    return "" if problem.get("severity", "error") == "error" else "(warning) "


def _render(
    console: Console,
    version: QuestionnaireVersion,
    content: dict[str, Any],
    *,
    problems: list[dict[str, Any]] | None = None,
    error: str | None = None,
    saved: bool = False,
    status: int = 200,
    source: str | None = None,
    origins: Origins | None = None,
) -> Response:
    """The editor for ``content`` (``origins``: where each row of a refused form came from
    in the stored document; by default the rows are the stored ones)."""
    questions = list(content.get("questions", []))
    lists = dict(content.get("choice_lists", {}))
    rows = flatten(questions)
    origins = dict(origins or {})
    origins.setdefault("questions", [_path_text(row.path) for row in rows])
    for name, choices in lists.items():
        origins.setdefault(f"c.{name}", list(range(len(choices))))
    at_row, at_list, rest = _errors_at(
        problems if problems is not None else list(version.problems), questions
    )
    return console.render(
        "editor.html",
        status_code=status,
        version=version,
        questionnaire=service.get_questionnaire(
            session=console.session, questionnaire_id=version.questionnaire_id
        ),
        editable=version.status is VersionStatus.DRAFT,
        languages=list(content.get("languages", [])),
        rows=rows,
        groups=[i for i, row in enumerate(rows) if _is_group(row.question)],
        choice_lists=lists,
        origins=origins,
        types=[t.value for t in QuestionType],
        text=_text,
        at_row=at_row,
        at_list=at_list,
        other_problems=rest,
        source=source
        if source is not None
        else yaml.safe_dump(content, allow_unicode=True, sort_keys=False),
        error=error,
        saved=saved,
    )


@router.get("/versions/{version_id}/edit")
def editor_page(console: ConsoleDep, version_id: uuid.UUID, saved: bool = False) -> Response:
    """Edit a draft (a published version is shown read-only)."""
    _check(console)
    version = service.get_version(session=console.session, version_id=version_id)
    return _render(console, version, copy.deepcopy(version.content), saved=saved)


def _localized(form: FormData, prefix: str, languages: list[str]) -> dict[str, str] | None:
    texts = {lang: str(form.get(f"{prefix}.{lang}", "")).strip() for lang in languages}
    kept = {lang: text for lang, text in texts.items() if text}
    return kept or None


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value in (None, "", False):
        target.pop(key, None)
    else:
        target[key] = value


#: Where each row of a refused form came from in the stored document: question rows by
#: path ("2.0"), choices by index; None for a new row.
Origins = dict[str, list[Any]]


class _FormRow(NamedTuple):
    order: float
    row: int
    origin: Path | None
    question: dict[str, Any]
    parent: int | None


def _questions_from(
    form: FormData, stored: list[dict[str, Any]], languages: list[str]
) -> tuple[list[dict[str, Any]], list[str | None]]:
    """The question tree as the form has it, and where each of its rows (depth first) came
    from in ``stored`` (None: new)."""
    count = min(int(str(form.get("question_rows", "0")) or 0), 1000)
    kept: dict[int, _FormRow] = {}
    for i in range(count):
        prefix = f"q{i}"
        name = str(form.get(f"{prefix}.name", "")).strip()
        orig_raw = str(form.get(f"{prefix}.orig", ""))
        if form.get(f"{prefix}.delete") or (not name and not orig_raw):
            continue  # deleted, or the blank new-question row left empty
        origin = _path_of(orig_raw)
        found = _at_path(stored, origin) if origin is not None else None
        if found is None:
            origin = None
        question = copy.deepcopy(found) if found is not None else {}
        question.pop("questions", None)  # a group's questions are the rows that name it
        question["name"] = name
        question["type"] = str(form.get(f"{prefix}.type", "")).strip()
        _set(question, "label", _localized(form, f"{prefix}.label", languages))
        _set(question, "required", bool(form.get(f"{prefix}.required")))
        for key in (*EXPRESSIONS, "choices"):
            _set(question, key, str(form.get(f"{prefix}.{key}", "")).strip())
        try:
            order = float(str(form.get(f"{prefix}.order", "")) or i + 1)
        except ValueError as exc:
            raise InvalidInput(f"question {name!r}: the position is a number") from exc
        group_raw = str(form.get(f"{prefix}.group", "")).strip()
        parent = int(group_raw) if group_raw.isdigit() and int(group_raw) < count else None
        if group_raw and parent is None:
            raise InvalidInput(f"question {name!r}: choose its group from the list")
        kept[i] = _FormRow(order, i, origin, question, parent)
    for row in kept.values():
        _check_group(row, kept)
    children: dict[int | None, list[_FormRow]] = {}
    for row in kept.values():
        children.setdefault(row.parent, []).append(row)
    origins: list[str | None] = []

    def build(parent: int | None) -> list[dict[str, Any]]:
        built = []
        for row in sorted(children.get(parent, []), key=lambda r: (r.order, r.row)):
            origins.append(None if row.origin is None else _path_text(row.origin))
            if row.row in children:
                row.question["questions"] = build(row.row)
            built.append(row.question)
        return built

    return build(None), origins


def _check_group(row: _FormRow, kept: dict[int, _FormRow]) -> None:
    """The group a row names exists on the form, and no group ends up inside itself."""
    name = row.question["name"]
    seen = {row.row}
    parent = row.parent
    while parent is not None:
        group = kept.get(parent)
        if group is None:
            raise InvalidInput(
                f"question {name!r} is in a group that is deleted or left empty on the form: "
                "choose another group for it, or delete it too"
            )
        if parent in seen:
            raise InvalidInput(
                f"group {group.question['name']!r} cannot be inside itself: "
                f"choose another group for {name!r}"
            )
        seen.add(parent)
        parent = group.parent


def _choices_from(
    form: FormData, stored: dict[str, list[dict[str, Any]]], languages: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], Origins]:
    """The choice lists as the form has them, and each choice's index in its stored list."""
    lists: dict[str, list[dict[str, Any]]] = {}
    origins: Origins = {}
    for name in [str(n) for n in form.getlist("list")][:200]:
        choices = stored.get(name, [])
        count = int(str(form.get(f"c.{name}.rows", "0")) or 0)
        kept: list[dict[str, Any]] = []
        came_from: list[int | None] = []
        for j in range(min(count, 1000)):
            prefix = f"c.{name}.{j}"
            value = str(form.get(f"{prefix}.value", "")).strip()
            orig_raw = str(form.get(f"{prefix}.orig", ""))
            orig = int(orig_raw) if orig_raw.isdigit() and int(orig_raw) < len(choices) else None
            if form.get(f"{prefix}.delete") or (not value and orig is None):
                continue
            choice: dict[str, Any] = copy.deepcopy(choices[orig]) if orig is not None else {}
            choice["value"] = value
            _set(choice, "label", _localized(form, f"{prefix}.label", languages))
            kept.append(choice)
            came_from.append(orig)
        lists[name] = kept
        origins[name] = came_from
    new_name = str(form.get("newlist.name", "")).strip()
    if new_name:
        value = str(form.get("newlist.value", "")).strip()
        first: dict[str, Any] = {"value": value}
        _set(first, "label", _localized(form, "newlist.label", languages))
        lists.setdefault(new_name, []).append(first)
        origins.setdefault(new_name, []).append(None)
    return lists, origins


def _save(
    console: Console,
    version: QuestionnaireVersion,
    content: dict[str, Any],
    document: Any,
    *,
    source: str | None = None,
    origins: Origins | None = None,
) -> Response | None:
    """Store the draft; None when stored, else the editor with why not (422)."""
    try:
        with console.session.begin_nested():
            service.update_draft(session=console.session, version_id=version.id, document=document)
    except (QuestionnaireRejected, SurveyInputError) as exc:
        problems = exc.extra.get("problems") or [{"severity": "error", "message": exc.message}]
        return _render(
            console, version, content, problems=problems, error=console.describe(exc), status=422,
            source=source, origins=origins,
        )  # fmt: skip
    return None


@router.post("/versions/{version_id}/edit")
def editor_save(console: ConsoleDep, version_id: uuid.UUID, form: FormDep) -> Response:
    """Save the questions and choice lists of a draft (published: 409, make a new draft)."""
    version = _draft(console, version_id)
    content = copy.deepcopy(version.content)
    languages = list(content.get("languages", []))
    try:
        content["questions"], question_origins = _questions_from(
            form, list(content.get("questions", [])), languages
        )
    except InvalidInput as exc:
        stored = copy.deepcopy(version.content)
        return _render(console, version, stored, error=console.describe(exc), status=422)
    lists, choice_origins = _choices_from(form, dict(content.get("choice_lists", {})), languages)
    _set(content, "choice_lists", lists)
    origins = {"questions": question_origins, **{f"c.{k}": v for k, v in choice_origins.items()}}
    try:
        document = service.parse_document(content)
    except (QuestionnaireRejected, SurveyInputError) as exc:
        problems = exc.extra.get("problems") or []
        return _render(
            console, version, content, problems=problems, error=console.describe(exc), status=422,
            origins=origins,
        )  # fmt: skip
    refused = _save(console, version, content, document, origins=origins)
    return refused or RedirectResponse(
        f"/console/versions/{version.id}/edit?saved=true", status_code=303
    )


@router.post("/versions/{version_id}/source")
def editor_source(
    console: ConsoleDep, version_id: uuid.UUID, source: Annotated[str, Form()] = ""
) -> Response:
    """Save a draft from its whole document as YAML (everything the schema supports)."""
    version = _draft(console, version_id)
    content = copy.deepcopy(version.content)
    try:
        document = service.parse_upload(filename="source.yaml", data=source.encode("utf-8"))
    except (QuestionnaireRejected, SurveyInputError) as exc:
        problems = exc.extra.get("problems") or []
        return _render(
            console, version, content, problems=problems, error=console.describe(exc), status=422,
            source=source,
        )  # fmt: skip
    refused = _save(console, version, content, document, source=source)
    return refused or RedirectResponse(
        f"/console/versions/{version.id}/edit?saved=true", status_code=303
    )


@router.post("/versions/{version_id}/new-draft")
def editor_new_draft(console: ConsoleDep, version_id: uuid.UUID) -> Response:
    """Start the next version as a draft with this version's document, and edit it."""
    _check(console)
    version = service.get_version(session=console.session, version_id=version_id)
    require_role(console.principal, *DESIGNERS)
    document = service.parse_document(copy.deepcopy(version.content))
    draft = service.add_version(
        session=console.session, questionnaire_id=version.questionnaire_id, document=document
    )
    return RedirectResponse(f"/console/versions/{draft.id}/edit", status_code=303)
