"""Surveys through the REST API, end to end on PostgreSQL and SQLite: the sample questionnaire
in zh-Hant and English with its screener, quota, skip logic and piping from lead attributes."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

from openpyxl import load_workbook
from sqlmodel import select
from survey_builders import LEAD, SAMPLE_PATH, publish_via_api, sample_document, with_quota_target

from core.db import system_session
from core.models import AuditEvent

from helpers import Tenant


def _answer(
    tenant: Tenant, interview_id: str, question: str, value: Any = None, **extra: Any
) -> Any:
    return tenant.http.post(
        f"/interviews/{interview_id}/answer",
        json={"question": question, "value": value, **extra},
        headers=tenant.headers(),
    )


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def test_questionnaire_versions_through_the_api(api: Any, tenant_a: Tenant) -> None:
    headers = tenant_a.headers()
    upload = api.post(
        "/questionnaires/import",
        files={"file": ("sample.yaml", SAMPLE_PATH.read_bytes(), "application/yaml")},
        headers=headers,
    )
    draft = _ok(upload)
    assert (draft["version"], draft["status"], draft["source_format"]) == (1, "draft", "yaml")
    assert not [p for p in draft["problems"] if p["severity"] == "error"]

    published = _ok(api.post(f"/questionnaire-versions/{draft['id']}/publish", headers=headers))
    assert published["status"] == "published"
    edit = sample_document()
    edit["title"] = {"zh-Hant": "改版", "en": "Revised"}
    refused = api.put(
        f"/questionnaire-versions/{draft['id']}", json={"content": edit}, headers=headers
    )
    assert refused.status_code == 409
    assert "create version 2 as a draft" in refused.json()["detail"]

    second = _ok(
        api.post(
            f"/questionnaires/{draft['questionnaire_id']}/versions",
            json={"content": edit},
            headers=headers,
        )
    )
    assert (second["version"], second["status"]) == (2, "draft")
    assert second["content"]["title"]["zh-Hant"] == "改版"
    broken = sample_document()
    broken["questions"][3]["relevant"] = "${satisfaction} = = 1"
    _ok(
        api.put(
            f"/questionnaire-versions/{second['id']}", json={"content": broken}, headers=headers
        )
    )
    rejected = api.post(f"/questionnaire-versions/{second['id']}/publish", headers=headers)
    assert rejected.status_code == 422
    problem = rejected.json()
    assert problem["type"].endswith("/questionnaire-invalid")
    located = [p for p in problem["problems"] if p.get("question") == "satisfaction"]
    assert located
    assert located[0]["field"] == "relevant"
    assert located[0]["position"] >= 1

    detail = _ok(api.get(f"/questionnaires/{draft['questionnaire_id']}", headers=headers))
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["latest_version"] == 2
    assert detail["title"] == "客戶滿意度調查"  # follows the latest saved document
    duplicate = api.post("/questionnaires", json={"content": sample_document()}, headers=headers)
    assert duplicate.status_code == 409
    bad = api.post("/questionnaires", json={"content": {"id": "x", "title": "t"}}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["field"] == "languages"
    refused_delete = api.delete(f"/questionnaires/{draft['questionnaire_id']}", headers=headers)
    assert refused_delete.status_code == 409


def test_sample_interview_end_to_end(
    api: Any, tenant_a: Tenant, app_factory: Callable[..., Any], database_url: str
) -> None:
    headers = tenant_a.headers()
    version = publish_via_api(tenant_a, sample_document())
    started = _ok(
        api.post(
            f"/questionnaire-versions/{version['id']}/interviews",
            json={"call_id": "call-42", "language": "zh-Hant", "attributes": LEAD},
            headers=headers,
        )
    )
    iid = started["id"]
    assert started["question"]["name"] == "greeting"
    assert "王小明" in started["question"]["label"]
    assert "智慧電表" in started["question"]["label"]
    _ok(_answer(tenant_a, iid, "greeting"))
    _ok(_answer(tenant_a, iid, "consent", "1"))
    _ok(_answer(tenant_a, iid, "used_recently", "1"))
    not_current = _answer(tenant_a, iid, "nps", 5)
    assert not_current.status_code == 409
    assert not_current.json()["current_question"] == "age"
    too_old = _answer(tenant_a, iid, "age", 130)
    assert too_old.status_code == 422
    assert too_old.json()["reason"] == "above_max"
    assert "120" in too_old.json()["detail"]
    _ok(_answer(tenant_a, iid, "age", 40))
    _ok(_answer(tenant_a, iid, "satisfaction", "2"))
    after = _ok(_answer(tenant_a, iid, "nps", 3))
    # Skip logic: dissatisfied respondents are asked why; the label pipes their answer.
    assert after["question"]["name"] == "reasons"
    assert "不滿意" in after["question"]["label"]
    needs_text = _answer(tenant_a, iid, "reasons", ["price", "other"])
    assert needs_text.status_code == 422
    assert not needs_text.json()["detail"].isascii()  # in the respondent's language

    # Suspend, then a "restarted server" (a new app on the same database) resumes it.
    _ok(api.post(f"/interviews/{iid}/suspend", headers=headers))
    restarted = app_factory(database_url)
    resumed = _ok(restarted.post(f"/interviews/{iid}/resume", headers=headers))
    assert resumed["question"]["name"] == "reasons"
    english = _ok(
        restarted.post(f"/interviews/{iid}/language", json={"language": "en"}, headers=headers)
    )
    assert english["question"]["label"].startswith('You said "Dissatisfied"')
    assert [o["value"] for o in english["question"]["options"]] == [
        o["value"] for o in resumed["question"]["options"]
    ]
    channel = _ok(_answer(tenant_a, iid, "reasons", ["price", "other"], other_text="too noisy"))
    assert channel["question"]["name"] == "channel"
    back = _ok(api.post(f"/interviews/{iid}/back", headers=headers))
    assert back["question"]["name"] == "reasons"
    assert back["question"]["current_answer"] == {
        "value": ["price", "other"],
        "special": None,
        "other_text": "too noisy",
    }
    _ok(_answer(tenant_a, iid, "reasons", ["price", "other"], other_text="too noisy"))
    improve = _ok(_answer(tenant_a, iid, "channel", "web"))
    assert improve["question"]["name"] == "improve"  # detractors only
    assert "3" in improve["question"]["label"]
    thanks = _ok(_answer(tenant_a, iid, "improve", '=HYPERLINK("http://x")'))
    assert thanks["question"]["label"] == "Thank you for your feedback, 王小明!"
    last = _ok(_answer(tenant_a, iid, "thanks"))
    assert last["awaiting_completion"] is True
    done = _ok(api.post(f"/interviews/{iid}/complete", headers=headers))
    assert done["status"] == "completed"
    assert done["closing_message"] == "The interview is complete. Thank you, 王小明."
    again = api.post(f"/interviews/{iid}/complete", headers=headers)
    assert again.status_code == 409

    # A screened-out respondent, and one without a call id (a test run).
    screened = _ok(
        api.post(
            f"/questionnaire-versions/{version['id']}/interviews",
            json={"attributes": LEAD},
            headers=headers,
        )
    )
    _ok(_answer(tenant_a, screened["id"], "greeting"))
    out = _ok(_answer(tenant_a, screened["id"], "consent", "2"))
    assert out["status"] == "not_eligible"
    assert out["closing_message"] == "沒關係，謝謝您，祝您有美好的一天。"

    listed = _ok(api.get("/interviews", params={"call_id": "call-42"}, headers=headers))
    assert [i["id"] for i in listed] == [iid]

    vid = version["id"]
    freq = _ok(
        api.get(
            f"/questionnaire-versions/{vid}/results/frequencies",
            params={"question": "reasons", "language": "en"},
            headers=headers,
        )
    )[0]
    assert freq["base"] == 1
    assert {r["value"]: r["count"] for r in freq["rows"]}["other"] == 1
    funnel = _ok(api.get(f"/questionnaire-versions/{vid}/results/funnel", headers=headers))
    consent = next(step for step in funnel if step["question"] == "consent")
    assert (consent["reached"], consent["answered"], consent["screened_out"]) == (2, 2, 1)
    crosstab = _ok(
        api.post(
            f"/questionnaire-versions/{vid}/results/crosstab",
            json={"row": "nps_group", "column": "region"},
            headers=headers,
        )
    )
    assert crosstab["total"] == 1
    assert crosstab["column_percentages"][crosstab["row_values"].index("detractor")] == [100.0]
    unknown = api.post(
        f"/questionnaire-versions/{vid}/results/crosstab",
        json={"row": "nosuch", "column": "region"},
        headers=headers,
    )
    assert unknown.status_code == 422

    csv_codes = api.get(f"/questionnaire-versions/{vid}/exports/responses.csv", headers=headers)
    assert csv_codes.status_code == 200
    text = csv_codes.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text  # formula injection neutralised
    labels = api.get(
        f"/questionnaire-versions/{vid}/exports/responses.csv",
        params={"labels": "true", "language": "en"},
        headers=headers,
    )
    assert "Website" in labels.content.decode("utf-8-sig")
    xlsx = api.get(f"/questionnaire-versions/{vid}/exports/responses.xlsx", headers=headers)
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True)["responses"]
    assert len(list(sheet.iter_rows())) == 3  # header + two interviews
    sav = api.get(f"/questionnaire-versions/{vid}/exports/responses.sav", headers=headers)
    assert sav.status_code == 200
    assert sav.content[:4] == b"$FL2"
    dictionary = api.get(f"/questionnaire-versions/{vid}/exports/dictionary.csv", headers=headers)
    assert "reasons_price" in dictionary.content.decode("utf-8-sig")
    with system_session() as session:
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.object_id == vid)).all()
    assert sorted(actions) == sorted(
        [
            "export_survey_csv",
            "export_survey_csv_labels",
            "export_survey_xlsx",
            "export_survey_sav",
            "export_survey_dictionary",
        ]
    )


def test_quota_full_through_the_api(api: Any, tenant_a: Tenant) -> None:
    headers = tenant_a.headers()
    document = with_quota_target(sample_document(id=f"quota_{uuid.uuid4().hex[:6]}"), 1)
    version = publish_via_api(tenant_a, document)
    outcomes = []
    for _ in range(2):
        started = _ok(
            api.post(
                f"/questionnaire-versions/{version['id']}/interviews",
                json={"attributes": LEAD, "language": "en"},
                headers=headers,
            )
        )
        state = started
        for question, value in [
            ("greeting", None),
            ("consent", "1"),
            ("used_recently", "1"),
            ("age", 60),
            ("satisfaction", "5"),
            ("nps", 10),
            ("channel", "app"),
            ("thanks", None),
        ]:
            if state["status"] != "in_progress":
                break
            state = _ok(_answer(tenant_a, started["id"], question, value))
        if state["status"] == "in_progress":
            state = _ok(api.post(f"/interviews/{started['id']}/complete", headers=headers))
        outcomes.append((state["status"], state["closing_message"]))
    assert outcomes[0][0] == "completed"
    assert outcomes[1] == (
        "quota_full",
        "Thank you; we already have enough people of your region and age group.",
    )
    quotas = _ok(api.get(f"/questionnaire-versions/{version['id']}/quotas", headers=headers))
    assert quotas == [
        {
            "quota": "region_age",
            "cell_key": "region=north;age_band=55_plus",
            "count": 1,
            "target": 1,
        }
    ]


def test_aapor_rates_for_posted_counts(api: Any, tenant_a: Tenant) -> None:
    response = api.post(
        "/surveys/aapor-rates",
        json={"counts": {"I": 40, "P": 10, "R": 20}, "dispositions": {"3.13": 30}, "e": 0.5},
        headers=tenant_a.headers(),
    )
    rates = _ok(response)
    assert rates["RR1"] == 40 / 100
    assert rates["RR3"] == 40 / (70 + 0.5 * 30)
    assert rates["e_method"] == "given"
    bad = api.post(
        "/surveys/aapor-rates", json={"dispositions": {"1.1": -1}}, headers=tenant_a.headers()
    )
    assert bad.status_code == 422


def test_roles_decide_who_designs_and_who_interviews(api: Any, tenant_a: Tenant) -> None:
    from helpers import make_tenant

    operator = make_tenant(api, "ops", role="operator")
    refused = api.post(
        "/questionnaires", json={"content": sample_document()}, headers=operator.headers()
    )
    assert refused.status_code == 403


def _draft_with_constraint(tenant: Tenant, constraint: str) -> Any:
    document = {
        "id": f"re_{uuid.uuid4().hex[:8]}",
        "title": "Regex",
        "languages": ["en"],
        "questions": [{"name": "code", "type": "text", "label": "Code", "constraint": constraint}],
    }
    created = tenant.http.post(
        "/questionnaires", json={"content": document}, headers=tenant.headers()
    )
    assert created.status_code == 201, created.text
    return tenant.http.post(
        f"/questionnaire-versions/{created.json()['id']}/publish", headers=tenant.headers()
    )


def test_hostile_expressions_are_refused_at_publish_with_422(api: Any, tenant_a: Tenant) -> None:
    """A 2**32 repetition (OverflowError in Python's re) and 1,999-deep nesting
    (RecursionError) were 500s; both are now publish-time problems naming the field."""
    deep = "(" * 1999 + "." + ")" * 1999
    for constraint, code in (
        ("regex(., 'a{4294967296}')", "bad_regex"),
        (deep, "syntax_error"),
        ("-" * 2000 + "1 = .", "syntax_error"),
    ):
        refused = _draft_with_constraint(tenant_a, constraint)
        assert refused.status_code == 422, refused.text
        (problem,) = refused.json()["problems"]
        assert (problem["code"], problem["field"]) == (code, "constraint")


def test_a_catastrophic_regex_answers_at_once(api: Any, tenant_a: Tenant) -> None:
    """``^(a+)+$`` against 29 a's and a '!' took 21.9 s with backtracking (x1.6 per extra
    character); with RE2 the answer is rejected in linear time. 60 characters here would take
    centuries with Python's re, so this test finishing at all is the check."""
    published = _draft_with_constraint(tenant_a, "regex(., '^(a+)+$')")
    assert published.status_code == 200, published.text
    interview = _ok(
        api.post(
            f"/questionnaire-versions/{published.json()['id']}/interviews",
            json={},
            headers=tenant_a.headers(),
        )
    )
    rejected = _answer(tenant_a, interview["id"], "code", "a" * 60 + "!")
    assert rejected.status_code == 422
    assert rejected.json()["reason"] == "constraint"
    _ok(_answer(tenant_a, interview["id"], "code", "a" * 60))


def test_a_workbook_bomb_upload_is_413_and_stores_nothing(api: Any, tenant_a: Tenant) -> None:
    """A 300 KB shared-string bomb took the API from 755 to 2,235 MiB and was stored."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "survey"
    sheet.append(["type", "name", "label"])
    sheet.append(["text", "q", "Q"])
    buffer = io.BytesIO()
    book.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        target.writestr(
            "xl/sharedStrings.xml", b"<sst><si><t>" + b"A" * 80_000_000 + b"</t></si></sst>"
        )
    files = {"file": ("bomb.xlsx", out.getvalue(), "application/octet-stream")}
    before = len(_ok(api.get("/questionnaires", headers=tenant_a.headers())))
    refused = api.post("/questionnaires/import", files=files, headers=tenant_a.headers())
    assert refused.status_code == 413, refused.text
    assert refused.json()["type"].endswith("/workbook-too-large")
    assert len(_ok(api.get("/questionnaires", headers=tenant_a.headers()))) == before


def test_a_draft_preview_runs_over_the_api_and_stays_out_of_exports(
    api: Any, tenant_a: Tenant
) -> None:
    headers = tenant_a.headers()
    document = sample_document(id=f"preview_{uuid.uuid4().hex[:8]}")
    draft = _ok(api.post("/questionnaires", json={"content": document}, headers=headers))
    refused = api.post(
        f"/questionnaire-versions/{draft['id']}/interviews",
        json={"attributes": LEAD},
        headers=headers,
    )
    assert refused.status_code == 409
    assert "preview it" in refused.json()["detail"]
    preview = _ok(
        api.post(
            f"/questionnaire-versions/{draft['id']}/preview",
            json={"attributes": LEAD, "language": "en"},
            headers=headers,
        )
    )
    assert preview["is_test"]
    assert preview["language"] == "en"
    assert preview["question"]["name"] == "greeting"
    for question, value in [("greeting", None), ("consent", "2")]:
        _ok(_answer(tenant_a, preview["id"], question, value))
    ended = _ok(api.get(f"/interviews/{preview['id']}", headers=headers))
    assert ended["status"] == "not_eligible"

    url = f"/questionnaire-versions/{draft['id']}/exports/responses.csv"
    plain = api.get(url, headers=headers)
    assert plain.status_code == 200
    assert plain.headers["X-Record-Count"] == "0"
    assert plain.content.startswith(b"\xef\xbb\xbf")
    tests = api.get(url, params={"include_test": "true", "bom": "false"}, headers=headers)
    assert tests.headers["X-Record-Count"] == "1"
    assert not tests.content.startswith(b"\xef\xbb\xbf")
    assert tests.content.split(b"\n", 1)[0].split(b",")[:4] == [
        b"interview_id",
        b"respondent_key",
        b"mode",
        b"is_test",
    ]
    counts = api.get(
        f"/questionnaire-versions/{draft['id']}/results/funnel",
        params={"include_test": "true"},
        headers=headers,
    )
    assert _ok(counts)[0]["reached"] == 1
    draft_now = _ok(api.get(f"/questionnaire-versions/{draft['id']}", headers=headers))
    assert draft_now["status"] == "draft"


def _xlsform(rows: list[list[str]], replace: Callable[[bytes], bytes] | None = None) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "survey"
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    if replace is None:
        return buffer.getvalue()
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = replace(data)
            target.writestr(info.filename, data)
    return out.getvalue()


def test_width_and_cell_bombs_in_an_xlsform_are_422_and_store_nothing(
    api: Any, tenant_a: Tenant
) -> None:
    import re

    headers = tenant_a.headers()
    header = ["type", "name", "label"]
    wide = b"".join(b'<c t="inlineStr"><is><t>x%d</t></is></c>' % i for i in range(5000))
    no_dimension = _xlsform(
        [header, ["text", "q", "Q"]],
        lambda xml: re.sub(
            rb"(<row r=\"2\".*?)</row>",
            rb"\1" + wide + b"</row>",
            re.sub(rb'<dimension ref="[^"]*" ?/>', b"", xml),
            flags=re.S,
        ),
    )
    giant = _xlsform([header, ["text", "q", os.urandom(6000).hex()]])
    before = len(_ok(api.get("/questionnaires", headers=headers)))
    for content, expected in [
        (no_dimension, "spans 2 rows x 5,003 columns"),
        (giant, "row 2 column 3: a cell of 12,000 characters"),
    ]:
        assert len(content) < 100_000
        files = {"file": ("form.xlsx", content, "application/octet-stream")}
        refused = api.post("/questionnaires/import", files=files, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert expected in refused.json()["detail"]
    assert len(_ok(api.get("/questionnaires", headers=headers))) == before
    # A claimed A1:XFD20000 is not believed: the form is read as the two rows it has.
    claimed = _xlsform(
        [header, ["text", f"q_{uuid.uuid4().hex[:6]}", "Q"]],
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD20000"', xml),
    )
    files = {"file": ("form.xlsx", claimed, "application/octet-stream")}
    imported = _ok(api.post("/questionnaires/import", files=files, headers=headers))
    assert len(imported["content"]["questions"]) == 1
