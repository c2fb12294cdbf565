"""Questionnaire editing in the console: a draft's questions, choices and skip logic, errors
at the question they concern, published versions read-only."""

from __future__ import annotations

import re
from typing import Any

from console_builders import make_user, sign_in

from helpers import Tenant


def _draft(tenant: Tenant) -> dict[str, Any]:
    document = {
        "id": "tea",
        "title": {"zh-Hans": "饮茶调查", "en": "Tea survey"},
        "languages": ["zh-Hans", "en"],
        "choice_lists": {
            "yn": [
                {"value": "yes", "label": {"zh-Hans": "是", "en": "Yes"}},
                {"value": "no", "label": {"zh-Hans": "否", "en": "No"}},
            ]
        },
        "questions": [
            {
                "name": "likes",
                "type": "single_choice",
                "label": {"zh-Hans": "您喜欢喝茶吗？", "en": "Do you like tea?"},
                "hint": {"en": "Ask politely"},
                "choices": "yn",
                "required": True,
            },
            {"name": "cups", "type": "integer", "label": {"zh-Hans": "每天几杯？", "en": "Cups?"}},
        ],
    }
    created = tenant.http.post(
        "/questionnaires", json={"content": document}, headers=tenant.headers()
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _content(version_id: str) -> dict[str, Any]:
    import uuid

    from core.db import system_session
    from surveys.models import QuestionnaireVersion

    with system_session() as session:
        version = session.get(QuestionnaireVersion, uuid.UUID(version_id))
        assert version is not None
        return dict(version.content)


def _form(page: str) -> dict[str, str]:
    """The editor form's fields as the browser would send them (unchecked boxes left out)."""
    form = re.search(
        r'<form method="post" action="[^"]+/edit" id="editor">(.*?)</form>', page, re.S
    )
    assert form
    fields: dict[str, str] = {}
    for tag in re.findall(r"<select[^>]*>.*?</select>|<input[^>]*>", form.group(1), re.S):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        if tag.startswith("<select"):
            chosen = re.search(r'<option value="([^"]*)" selected', tag)
            fields[name.group(1)] = chosen.group(1) if chosen else ""
            continue
        if 'type="checkbox"' in tag and " checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = value.group(1) if value else ""
    return fields


def test_researcher_edits_a_draft_adds_a_question_choice_and_skip_logic(
    app: Any, alpha: Tenant
) -> None:
    import html

    version = _draft(alpha)
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    page = rita.http.get(f"/console/versions/{version['id']}/edit")
    assert page.status_code == 200
    form = {k: html.unescape(v) for k, v in _form(page.text).items()}
    assert form["q0.label.zh-Hans"] == "您喜欢喝茶吗？"
    assert form["q0.required"] == "1"
    # skip logic on cups, a new question, a new choice, a renamed label
    form["q1.relevant"] = "${likes} = 'yes'"
    form["q1.constraint"] = ". <= 30"
    form["q0.label.en"] = "Do you drink tea?"
    form.update({
        "q2.name": "brand", "q2.type": "text", "q2.label.zh-Hans": "什么牌子？",
        "q2.label.en": "Which brand?", "q2.order": "1.5",
        "c.yn.2.value": "sometimes", "c.yn.2.label.zh-Hans": "有时", "c.yn.2.label.en": "Sometimes",
    })  # fmt: skip
    saved = rita.post(f"/console/versions/{version['id']}/edit", form)
    assert saved.status_code == 200, re.findall(r'class="error[^>]*>(.*?)</', saved.text, re.S)
    assert "Draft saved" in saved.text or "草稿已保存" in saved.text
    content = _content(version["id"])
    names = [q["name"] for q in content["questions"]]
    assert names == ["likes", "brand", "cups"]
    likes, _brand, cups = content["questions"]
    assert likes["label"]["en"] == "Do you drink tea?"
    assert likes["hint"] == {"en": "Ask politely"}  # what the form does not show is kept
    assert cups["relevant"] == "${likes} = 'yes'"
    assert cups["constraint"] == ". <= 30"
    assert [c["value"] for c in content["choice_lists"]["yn"]] == ["yes", "no", "sometimes"]
    # delete a question and a choice, uncheck required
    form = {k: html.unescape(v) for k, v in _form(saved.text).items()}
    form["q1.delete"] = "1"
    form["c.yn.1.delete"] = "1"
    form.pop("q0.required")
    rita.post(f"/console/versions/{version['id']}/edit", form)
    content = _content(version["id"])
    assert [q["name"] for q in content["questions"]] == ["likes", "cups"]
    assert "required" not in content["questions"][0]
    assert [c["value"] for c in content["choice_lists"]["yn"]] == ["yes", "sometimes"]


def test_errors_are_shown_at_their_question_and_nothing_is_saved(app: Any, alpha: Tenant) -> None:
    import html

    version = _draft(alpha)
    before = _content(version["id"])
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    page = rita.http.get(f"/console/versions/{version['id']}/edit")
    form = {k: html.unescape(v) for k, v in _form(page.text).items()}
    form["q1.type"] = "no_such_type"
    form["q0.label.zh-Hans"] = "改过的标签"
    refused = rita.post(f"/console/versions/{version['id']}/edit", form)
    assert refused.status_code == 422
    cups = re.search(r'data-question="cups"(.*?)</fieldset>', refused.text, re.S)
    assert cups
    assert 'class="error field-error"' in cups.group(1)
    assert "questions[1]" in cups.group(1)
    likes = re.search(r'data-question="likes"(.*?)</fieldset>', refused.text, re.S)
    assert likes
    assert "field-error" not in likes.group(1)
    assert "改过的标签" in refused.text  # what was typed stays on the form
    assert _content(version["id"]) == before
    # a document that parses but has a validation problem is saved; the problem is shown at
    # its question: skip logic naming a question that does not exist
    form["q1.type"] = "integer"
    form["q1.relevant"] = "${nothing} = 'yes'"
    saved = rita.post(f"/console/versions/{version['id']}/edit", form)
    cups = re.search(r'data-question="cups"(.*?)</fieldset>', saved.text, re.S)
    assert cups
    assert "nothing" in cups.group(1)
    assert "field-error" in cups.group(1)


def test_the_yaml_source_saves_and_refuses_like_the_form(app: Any, alpha: Tenant) -> None:
    import yaml

    version = _draft(alpha)
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    document = _content(version["id"])
    document["questions"][1]["hint"] = {"zh-Hans": "包括奶茶"}
    saved = rita.post(
        f"/console/versions/{version['id']}/source",
        {"source": yaml.safe_dump(document, allow_unicode=True)},
    )
    assert saved.status_code == 200
    assert _content(version["id"])["questions"][1]["hint"] == {"zh-Hans": "包括奶茶"}
    broken = rita.post(
        f"/console/versions/{version['id']}/source", {"source": "id: tea\nquestions: 3\n"}
    )
    assert broken.status_code == 422
    assert "questions: 3" in broken.text  # the text stays in the editor


def test_a_published_version_is_read_only(app: Any, alpha: Tenant) -> None:
    from survey_builders import publish_via_api

    published = publish_via_api(alpha)
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    page = rita.http.get(f"/console/versions/{published['id']}/edit")
    assert page.status_code == 200
    assert '<fieldset class="plain" disabled>' in page.text
    assert 'data-action="save-draft"' not in page.text
    assert "readonly" in page.text
    refused = rita.post(f"/console/versions/{published['id']}/edit", _form(page.text))
    assert refused.status_code == 409
    assert (
        rita.post(f"/console/versions/{published['id']}/source", {"source": "x"}).status_code == 409
    )
    new = rita.post(f"/console/versions/{published['id']}/new-draft")
    assert new.status_code == 200
    assert 'data-action="save-draft"' in new.text
    assert f"/console/versions/{published['id']}/edit" not in str(new.url)
    carl = sign_in(app.app, "carl", make_user("carl", "sales", [alpha.client_id]))
    assert carl.http.get(f"/console/versions/{published['id']}/edit").status_code == 403


def _grouped(tenant: Tenant) -> dict[str, Any]:
    document = {
        "id": "tea2",
        "title": {"zh-Hans": "饮茶调查", "en": "Tea survey"},
        "languages": ["zh-Hans", "en"],
        "questions": [
            {"name": "intro", "type": "note", "label": {"zh-Hans": "您好", "en": "Hello"}},
            {
                "name": "habits",
                "type": "group",
                "label": {"zh-Hans": "习惯", "en": "Habits"},
                "relevant": "1 = 1",
                "questions": [
                    {"name": "cups", "type": "integer", "label": {"en": "Cups?"},
                     "hint": {"en": "a day"}},
                    {"name": "brand", "type": "text", "label": {"en": "Brand?"}},
                ],
            },
            {"name": "age", "type": "integer", "label": {"en": "Age?"}},
        ],
    }  # fmt: skip
    created = tenant.http.post(
        "/questionnaires", json={"content": document}, headers=tenant.headers()
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _rows(page: str) -> list[str]:
    return re.findall(r'<fieldset class="grid question[^"]*" data-question="([^"]+)"', page)


def test_questions_inside_groups_are_edited_moved_and_regrouped_in_the_form(
    app: Any, alpha: Tenant
) -> None:
    import html

    version = _grouped(alpha)
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    url = f"/console/versions/{version['id']}/edit"
    page = rita.http.get(url)
    assert "edit them in the YAML" not in page.text
    # the tree depth first: the group's questions are rows of the form, naming their group
    assert _rows(page.text) == ["intro", "habits", "cups", "brand", "age"]
    form = {k: html.unescape(v) for k, v in _form(page.text).items()}
    assert form["q2.group"] == "1"
    assert form["q3.group"] == "1"
    assert form["q4.group"] == ""
    assert form["q2.label.en"] == "Cups?"
    # edit a question in the group, rename the group, move brand out and age in (first)
    form["q2.label.en"] = "How many cups?"
    form["q1.name"] = "tea_habits"
    form["q3.group"] = ""
    form["q3.order"] = "1.5"
    form["q4.group"] = "1"
    form["q4.order"] = "0"
    saved = rita.post(url, form)
    assert saved.status_code == 200, re.findall(r'class="error[^>]*>(.*?)</', saved.text, re.S)
    content = _content(version["id"])
    assert [q["name"] for q in content["questions"]] == ["intro", "brand", "tea_habits"]
    group = content["questions"][2]
    assert group["relevant"] == "1 = 1"  # what the form does not show is kept
    assert [q["name"] for q in group["questions"]] == ["age", "cups"]
    assert group["questions"][1]["label"]["en"] == "How many cups?"
    assert group["questions"][1]["hint"] == {"en": "a day"}
    assert _rows(saved.text) == ["intro", "brand", "tea_habits", "age", "cups"]

    # a new group made in one save with a question moved into it
    form = {k: html.unescape(v) for k, v in _form(saved.text).items()}
    form.update({"q5.name": "about_you", "q5.type": "group", "q5.label.en": "About you",
                 "q5.order": "9", "q1.group": "5"})  # fmt: skip
    saved = rita.post(url, form)
    assert saved.status_code == 200, re.findall(r'class="error[^>]*>(.*?)</', saved.text, re.S)
    content = _content(version["id"])
    assert [q["name"] for q in content["questions"]] == ["intro", "tea_habits", "about_you"]
    assert [q["name"] for q in content["questions"][2]["questions"]] == ["brand"]


def test_group_mistakes_are_refused_and_nothing_is_saved(app: Any, alpha: Tenant) -> None:
    import html

    version = _grouped(alpha)
    before = _content(version["id"])
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    url = f"/console/versions/{version['id']}/edit"
    form = {k: html.unescape(v) for k, v in _form(rita.http.get(url).text).items()}
    # deleting a group that still holds questions: say what to do, keep everything
    deleted = rita.post(url, {**form, "q1.delete": "1"})
    assert deleted.status_code == 422
    assert "cups" in deleted.text
    assert "choose another group" in deleted.text
    assert _content(version["id"]) == before
    # a group inside itself (through one of its own questions turned into a group)
    cycle = rita.post(url, {**form, "q2.type": "group", "q1.group": "2"})
    assert cycle.status_code == 422
    assert "inside itself" in cycle.text
    assert _content(version["id"]) == before
    # a schema error inside the group is shown at that question's row
    refused = rita.post(url, {**form, "q3.type": "no_such_type"})
    assert refused.status_code == 422
    brand = re.search(r'data-question="brand"(.*?)</fieldset>', refused.text, re.S)
    assert brand
    assert "field-error" in brand.group(1)
    cups = re.search(r'data-question="cups"(.*?)</fieldset>', refused.text, re.S)
    assert cups
    assert "field-error" not in cups.group(1)
    # emptying a group: the schema's own rule, shown at the group
    empty = rita.post(url, {**form, "q2.group": "", "q3.group": ""})
    assert empty.status_code == 422
    habits = re.search(r'data-question="habits"(.*?)</fieldset>', empty.text, re.S)
    assert habits
    assert "field-error" in habits.group(1)
    assert _content(version["id"]) == before


def test_refusals_are_explained_in_the_users_language(app: Any, alpha: Tenant) -> None:
    from survey_builders import publish_via_api

    published = publish_via_api(alpha)
    draft = _draft(alpha)
    hans = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    hant = sign_in(
        app.app, "mei", make_user("mei", "researcher", [alpha.client_id], locale="zh-Hant")
    )
    english = sign_in(
        app.app, "ruth", make_user("ruth", "researcher", [alpha.client_id], locale="en")
    )
    # an error page (409: a published version is read-only)
    url = f"/console/versions/{published['id']}/source"
    page = hans.post(url, {"source": "x"})
    assert page.status_code == 409
    assert "已发布的版本不能修改" in page.text
    assert "详情（英文）：" in page.text  # the service's own sentence follows as the details
    page = hant.post(url, {"source": "x"})
    assert "已發佈的版本不能修改" in page.text
    page = english.post(url, {"source": "x"})
    assert page.status_code == 409
    assert "已发布" not in page.text
    assert "Details:" not in page.text
    # an error shown inside the page (422: the document is refused)
    url = f"/console/versions/{draft['id']}/source"
    refused = hans.post(url, {"source": "id: tea\nquestions: 3\n"})
    assert refused.status_code == 422
    shown = re.search(r'id="editor-error">(.*?)</p>', refused.text, re.S)
    assert shown
    assert "问卷有错误" in shown.group(1)
    assert "questions" in shown.group(1)  # what exactly is wrong, from the service


def test_every_problem_code_has_a_sentence_in_every_language() -> None:
    import importlib
    import inspect
    import pkgutil

    from api.console.i18n import translations
    from api.console.problems import PROBLEM_TEXT
    from core.errors import PilotdialError

    codes: set[str] = set()
    for package in ("core", "api", "campaigns", "dialer", "surveys", "reports"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if ".sip" in info.name or info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for _name, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, PilotdialError) and cls.code not in ("error", "dialer"):
                    codes.add(cls.code)
    missing = sorted(codes - set(PROBLEM_TEXT) - {"sign-in-required", "internal"})
    assert not missing, f"add a sentence to api/console/problems.py for: {missing}"
    for locale in ("zh-Hans", "zh-Hant"):
        catalog = translations(locale)
        untranslated = [c for c, text in PROBLEM_TEXT.items() if catalog.gettext(text) == text]
        assert not untranslated, (locale, untranslated)
