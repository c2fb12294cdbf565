"""The console's pages do each role's job through the same services as the API."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path
from typing import Any

from console_builders import (
    console_objects_for,
    make_agent,
    make_user,
    pop_a_call,
    sign_in,
    tea_xlsform,
)

from helpers import Tenant


def _detail(response: Any) -> str:
    """What an error page says (its heading and message), for assertion messages."""
    found = re.search(r"<h1>(.*?)</section>", response.text, re.S)
    return found.group(1) if found else response.text[:500]


def _buttons(html: str) -> list[str]:
    return re.findall(r'data-action="([\w-]+)"', html)


def test_operator_sees_only_the_allowed_lifecycle_buttons_and_moves_the_campaign(
    app: Any, alpha: Tenant
) -> None:
    from campaign_builders import make_campaign, make_list

    from core.db import tenant_session

    with tenant_session([alpha.client_id]) as session:
        lead_list, _ = make_list(session, alpha.client_id, count=8)
        campaign_id = make_campaign(session, alpha.client_id, [lead_list.id], name="春季回访").id
    olga = sign_in(app.app, "olga", make_user("olga", "operator", [alpha.client_id]))
    listing = olga.http.get("/console/campaigns")
    assert "春季回访" in listing.text
    assert "草稿" in listing.text  # zh-Hans by default
    page = olga.http.get(f"/console/campaigns/{campaign_id}")
    assert _buttons(page.text) == ["start-pilot", "cancel"]
    # no pilot batch yet: the service refuses, the page says why (409), nothing changes
    refused = olga.post(f"/console/campaigns/{campaign_id}/transition", {"status": "piloting"})
    assert refused.status_code == 409
    assert "pilot batch" in refused.text
    bad = olga.post(f"/console/campaigns/{campaign_id}/batches", {"kind": "pilot", "size": "x"})
    assert bad.status_code == 422
    drawn = olga.post(
        f"/console/campaigns/{campaign_id}/batches", {"kind": "pilot", "size": "4", "seed": "7"}
    )
    assert drawn.status_code == 200, _detail(drawn)
    assert re.search(r'<td class="num">4</td><td>—</td><td class="num">7</td>', drawn.text)
    started = olga.post(f"/console/campaigns/{campaign_id}/transition", {"status": "piloting"})
    assert started.status_code == 200, _detail(started)
    assert _buttons(started.text) == ["pause", "finish-pilot", "cancel"]
    # a pilot pauses in its phase and resumes (run control, as POST /campaigns/{id}/pause)
    paused = olga.post(f"/console/campaigns/{campaign_id}/transition", {"status": "pilot_paused"})
    assert paused.status_code == 200, _detail(paused)
    assert "s-pilot_paused" in paused.text
    assert _buttons(paused.text) == ["resume", "finish-pilot", "cancel"]
    resumed = olga.post(f"/console/campaigns/{campaign_id}/transition", {"status": "piloting"})
    assert resumed.status_code == 200, _detail(resumed)
    assert _buttons(resumed.text) == ["pause", "finish-pilot", "cancel"]
    # a pacing change that breaks a rule is refused with the field named
    wrong = olga.post(
        f"/console/campaigns/{campaign_id}/pacing",
        {"pacing_mode": "predictive", "abandon_rate_cap": "50"},
    )
    assert wrong.status_code == 422
    assert "abandon_rate_cap" in wrong.text
    saved = olga.post(
        f"/console/campaigns/{campaign_id}/pacing",
        {"pacing_mode": "progressive", "dial_ratio": "1.5", "abandon_rate_cap": "2.5"},
    )
    assert saved.status_code == 200, _detail(saved)
    assert 'value="2.5"' in saved.text
    attempts = olga.http.get(f"/console/campaigns/{campaign_id}/attempts?outcome=busy&days=1")
    assert attempts.status_code == 200, _detail(attempts)
    assert "/attempts.csv?outcome=busy&amp;since=" in attempts.text


def test_client_user_gets_only_approve_and_cancel(app: Any, alpha: Tenant) -> None:
    from campaign_builders import make_campaign, make_list

    from campaigns.models import BatchCreate, CampaignStatus
    from campaigns.service import create_batch, transition_campaign
    from core.db import tenant_session

    with tenant_session([alpha.client_id]) as session:
        lead_list, _ = make_list(session, alpha.client_id, count=4)
        campaign = make_campaign(session, alpha.client_id, [lead_list.id])
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=2))
        for target in (CampaignStatus.piloting, CampaignStatus.pilot_done, CampaignStatus.quoted):
            transition_campaign(session=session, campaign=campaign, target=target)
        campaign_id = campaign.id
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    page = carl.http.get(f"/console/campaigns/{campaign_id}")
    # approve approves a recorded quote: none yet, so only cancel (see the sales quote test)
    assert _buttons(page.text) == ["cancel"]
    assert 'name="pacing_mode"' not in page.text  # clients do not pace
    refused = carl.post(f"/console/campaigns/{campaign_id}/transition", {"status": "approved"})
    assert refused.status_code == 409  # pressed anyway (a stale page): says how, moves nothing


def test_client_uploads_a_list_watches_it_and_downloads_both_files(app: Any, alpha: Tenant) -> None:
    from core.queue import drain_embedded

    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    rows = "name,phone\n张三,13812345678\n李四,13812345678\n王五,not a number\n赵六,13912345678\n"
    uploaded = carl.post(
        "/console/lists",
        {"name": "十二月名单"},
        files={"file": ("dec.csv", rows.encode(), "text/csv")},
    )
    assert uploaded.status_code == 200, _detail(uploaded)
    list_id = str(uploaded.url).rsplit("/", 1)[1]
    drain_embedded()
    progress = carl.http.get(f"/console/lists/{list_id}/progress")
    assert progress.status_code == 204
    assert progress.headers["HX-Refresh"] == "true"  # done: the page reloads with the report
    page = carl.http.get(f"/console/lists/{list_id}")
    assert "清洗报告" in page.text
    assert "<svg" in page.text  # rejected rows by reason
    cleaned = carl.http.get(f"/lists/{list_id}/cleaned.csv")
    rejects = carl.http.get(f"/lists/{list_id}/rejects.csv")
    assert cleaned.status_code == 200, cleaned.text[:400]
    assert rejects.status_code == 200, rejects.text[:400]
    assert "+8613912345678" in cleaned.text
    assert "王五" in rejects.text
    assert "李四" in rejects.text  # the duplicate


def test_a_non_table_upload_is_refused_on_the_form(app: Any, alpha: Tenant) -> None:
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    refused = carl.post("/console/lists", {}, files={"file": ("empty.csv", b"", "text/csv")})
    assert refused.status_code == 422
    assert "empty" in refused.text
    assert "/console/lists/" not in refused.text  # no list was stored


def test_researcher_uploads_an_xlsform_sees_problems_at_their_row_and_previews(
    app: Any, alpha: Tenant
) -> None:
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    uploaded = rita.post(
        "/console/questionnaires",
        {},
        files={"file": ("tea.xlsx", tea_xlsform(), "application/octet-stream")},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert "/console/versions/" in str(uploaded.url)
    # the geopoint cannot be asked by phone: reported at survey row 3, column A
    assert re.search(r"<td>survey</td><td class=\"num\">3</td><td>A</td>", uploaded.text)
    version_id = str(uploaded.url).rsplit("/", 1)[1]
    # the draft is previewed before it is published (a test interview on a draft)
    preview = rita.post(f"/console/versions/{version_id}/preview", {"language": "zh-Hant"})
    assert preview.status_code == 200, _detail(preview)
    assert "你喜歡茶嗎？" in preview.text
    interview_id = str(preview.url).rsplit("/", 1)[1]
    answered = rita.post(
        f"/console/preview/{interview_id}/answer", {"question": "likes_tea", "value": "yes"}
    )
    assert "每天幾杯？" in answered.text
    published = rita.post(f"/console/versions/{version_id}/publish")
    assert published.status_code == 200, _detail(published)
    # a test interview is kept out of results
    results = rita.http.get(f"/console/versions/{version_id}/results")
    assert results.status_code == 200, _detail(results)
    assert "<svg" not in results.text


def test_agent_takes_a_call_pop_and_dispositions_it(app: Any, alpha: Tenant) -> None:
    from sqlmodel import select

    from core.db import system_session
    from dialer.models import AgentDisposition

    ids = console_objects_for(alpha.client_id)
    agent_id = make_agent(alpha.client_id)
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    page = ann.http.get("/console/agent")
    assert _buttons(page.text) == ["sign_in"]
    ann.post("/console/agent/action", {"action": "sign_in"})
    ready = ann.post("/console/agent/action", {"action": "go_ready"})
    assert "go_not_ready" in _buttons(ready.text)
    attempt_id = pop_a_call(alpha.client_id, agent_id, uuid.UUID(ids["campaign_id"]))
    pop = ann.http.get("/console/agent")
    for text in ("工号", "A001", "技能组", "survey", "主叫", "+862155550000", "被叫", "王小明"):
        assert text in pop.text, text
    assert 'value="no_answer"' in pop.text or 'name="disposition"' in pop.text
    codes = re.findall(r'<option value="([\w-]+)">', pop.text.split('name="disposition"')[1])
    assert codes, "the campaign's disposition codes are offered"
    done = ann.post("/console/agent/disposition", {"disposition": codes[0], "then": "hang_up"})
    assert done.status_code == 200, _detail(done)
    assert "话后处理" in done.text  # wrap-up after hanging up
    with system_session() as session:
        row = session.exec(
            select(AgentDisposition).where(AgentDisposition.attempt_id == attempt_id)
        ).one()
        assert row.disposition == codes[0]
    wrong = ann.post("/console/agent/disposition", {"disposition": "no-such-code"})
    assert wrong.status_code in (409, 422)


def _last_move(agent_id: uuid.UUID) -> tuple[str, Any]:
    """The agent's last logged action and its target; it left them in wrap-up."""
    from core.db import system_session
    from dialer import agent_service

    with system_session() as session:
        last = agent_service.state_log(session=session, agent_id=agent_id)[-1]
    assert last.to_state.value == "wrap_up"
    return last.action.value, last.details.get("target")


def test_the_soft_phone_consults_transfers_dials_and_previews(app: Any, alpha: Tenant) -> None:
    """The agent screen's call functions: consult a colleague by 工號, cancel, transfer to a
    skill group (the target logged), dial a typed number, and a preview's dial and skip."""
    from core.db import system_session
    from dialer import agent_service
    from dialer.gateway import CallParameters

    ids = console_objects_for(alpha.client_id)
    agent_id = make_agent(alpha.client_id)
    make_agent(alpha.client_id, code="A002", name="王芳")
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    ann.post("/console/agent/action", {"action": "sign_in"})
    ready = ann.post("/console/agent/action", {"action": "go_ready"})
    assert 'id="manual-dial"' in ready.text  # a typed number, from ready
    assert 'id="transfer"' not in ready.text  # nothing to transfer yet
    pop_a_call(alpha.client_id, agent_id, uuid.UUID(ids["campaign_id"]))
    on_call = ann.http.get("/console/agent").text
    assert {"transfer", "internal_call", "hand_to_ivr", "hold"} <= set(_buttons(on_call))
    consult = {"action": "internal_call", "target_kind": "agent", "target": "A002"}
    consulting = ann.post("/console/agent/action", consult)
    assert consulting.status_code == 200, _detail(consulting)
    assert {"three_way", "cancel_consult", "transfer"} <= set(_buttons(consulting.text))
    assert 'data-action="internal_call"' not in consulting.text  # one consultation at a time
    back = ann.post("/console/agent/action", {"action": "cancel_consult"})
    assert "unhold" in _buttons(back.text)
    ann.post("/console/agent/action", {"action": "unhold"})
    moved = ann.post(
        "/console/agent/action",
        {"action": "transfer", "target_kind": "skill_group", "target": "survey"},
    )
    assert moved.status_code == 200, _detail(moved)
    assert _last_move(agent_id) == ("transfer", {"kind": "skill_group", "target": "survey"})
    ann.post("/console/agent/action", {"action": "finish_wrap"})
    typed = ann.post("/console/agent/action", {"action": "dial", "number": "139 1234 5678"})
    assert typed.status_code == 200, _detail(typed)
    with system_session() as session:
        [dial] = [
            e
            for e in agent_service.state_log(session=session, agent_id=agent_id)
            if e.action.value == "dial"
        ]
        assert dial.details["number"] == "+8613912345678"  # read as the cleaner reads it
        agent_service.apply_agent_action(
            session=session, agent_id=agent_id, command=agent_service.HangUp()
        )
        agent_service.apply_agent_action(
            session=session, agent_id=agent_id, command=agent_service.FinishWrap()
        )
        agent_service.offer_preview(
            session=session,
            agent_id=agent_id,
            client_id=alpha.client_id,
            lead={"id": "lead-9", "name": "陈先生"},
            params=CallParameters("+862155550000", "+8613900000009", skill_group="survey"),
            script=None,
        )
    preview = ann.http.get("/console/agent").text
    assert {"dial", "skip_preview"} <= set(_buttons(preview))
    assert "陈先生" in preview
    assert 'id="manual-dial"' not in preview
    skipped = ann.post("/console/agent/action", {"action": "skip_preview"})
    assert skipped.status_code == 200, _detail(skipped)
    assert "go_not_ready" in _buttons(skipped.text)


def test_the_soft_phone_transfers_a_call_out_to_an_outside_number(app: Any, alpha: Tenant) -> None:
    """The screen's transfer offers an outside number (外部號碼); the transfer is logged with
    the number (the live loop hands the call to the gateway from that entry), and something
    that is not a number is refused, saying why, with the agent still on the call."""
    from core.db import system_session
    from dialer import agent_service

    ids = console_objects_for(alpha.client_id)
    agent_id = make_agent(alpha.client_id)
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    ann.post("/console/agent/action", {"action": "sign_in"})
    ann.post("/console/agent/action", {"action": "go_ready"})
    pop_a_call(alpha.client_id, agent_id, uuid.UUID(ids["campaign_id"]))
    on_call = ann.http.get("/console/agent").text
    assert '<option value="external">' in on_call
    bad = {"action": "transfer", "target_kind": "external", "target": "call my boss"}
    refused = ann.post("/console/agent/action", bad)
    assert refused.status_code in (409, 422)
    assert "not a phone number" in refused.text
    with system_session() as session:
        assert agent_service.get_agent(session=session, agent_id=agent_id).state.value == "on_call"
    out = {"action": "transfer", "target_kind": "external", "target": "+8610955880000"}
    moved = ann.post("/console/agent/action", out)
    assert moved.status_code == 200, _detail(moved)
    assert _last_move(agent_id) == ("transfer", {"kind": "external", "target": "+8610955880000"})


def test_sales_builds_a_report_and_sees_the_verdict_and_quote(app: Any, alpha: Tenant) -> None:
    from core.queue import drain_embedded

    ids = console_objects_for(alpha.client_id)
    sam = sign_in(app.app, "sam", make_user("sam", "sales", [alpha.client_id]))
    page = sam.http.get(f"/console/feasibility/{ids['run_id']}")
    assert page.status_code == 200, _detail(page)
    assert "报价" in page.text
    assert f'src="/feasibility-reports/{ids["run_id"]}/report.html"' in page.text
    document = sam.http.get(f"/feasibility-reports/{ids['run_id']}/report.html")
    assert document.status_code == 200, _detail(document)
    assert "<svg" in document.text
    whatif = sam.post(f"/console/feasibility/{ids['run_id']}/whatif", {"seats": "5"})
    assert whatif.status_code == 200, _detail(whatif)
    drain_embedded()
    new_page = sam.http.get(str(whatif.url))
    assert new_page.status_code == 200, _detail(new_page)
    assert str(whatif.url) != f"/console/feasibility/{ids['run_id']}"


def test_sales_records_the_quote_for_the_campaign_and_offers_the_client_quote(
    app: Any, alpha: Tenant
) -> None:
    import numpy as np
    from sqlmodel import select

    from campaigns.models import Campaign, CampaignStatus
    from campaigns.service import transition_campaign
    from core.db import tenant_session
    from core.queue import drain_embedded
    from feasibility.models import DealQuote
    from feasibility.service import create_run
    from feasibility.synthetic import dial_leads, make_lead_list

    ids = console_objects_for(alpha.client_id, with_run=False)
    campaign_id = uuid.UUID(ids["campaign_id"])
    with tenant_session([alpha.client_id]) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        for target in (CampaignStatus.piloting, CampaignStatus.pilot_done):
            transition_campaign(session=session, campaign=campaign, target=target)
        synthetic = make_lead_list(300, seed=1)
        attempts = dial_leads(synthetic, np.arange(40), max_attempts=3, seed=1)
        run_id = create_run(
            session=session,
            client_id=alpha.client_id,
            attempts=attempts.to_dict(orient="records"),
            leads=synthetic.leads.to_dict(orient="records"),
            campaign_id=campaign_id,
        ).id
    drain_embedded()
    sam = sign_in(app.app, "sam", make_user("sam", "sales", [alpha.client_id]))
    page = sam.http.get(f"/console/feasibility/{run_id}")
    assert page.status_code == 200, _detail(page)
    assert f"/feasibility-reports/{run_id}/quote.pdf?language=zh-Hans" in page.text
    assert "将此报价记入活动" in page.text
    quote_page = sam.http.get(f"/feasibility-reports/{run_id}/quote.html?language=zh-Hans")
    assert quote_page.status_code == 200, _detail(quote_page)  # the session cookie reads it
    recorded = sam.post(f"/console/feasibility/{run_id}/quote", {"override_reason": "trial"})
    assert recorded.status_code == 200, _detail(recorded)
    assert "报价已记录" in recorded.text
    with tenant_session([alpha.client_id]) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.status is CampaignStatus.quoted
        [quote] = session.exec(select(DealQuote).where(DealQuote.campaign_id == campaign_id)).all()
        assert quote.quote_number in recorded.text
    again = sam.post(f"/console/feasibility/{run_id}/quote", {"override_reason": "trial"})
    assert again.status_code == 409  # quoted already: the page says why, nothing recorded
    assert 'role="alert"' in again.text

    # the client approves it with the campaign page's button: the quote's approval is recorded
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    page = carl.http.get(f"/console/campaigns/{campaign_id}")
    assert _buttons(page.text) == ["approve", "cancel"]
    approved = carl.post(f"/console/campaigns/{campaign_id}/transition", {"status": "approved"})
    assert approved.status_code == 200, _detail(approved)
    with tenant_session([alpha.client_id]) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.status is CampaignStatus.approved
        [quote] = session.exec(select(DealQuote).where(DealQuote.campaign_id == campaign_id)).all()
        assert quote.approved_by == "user:carl"


def test_every_console_label_is_translated_in_every_language() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from console_catalogs import extract

    from api.console.i18n import LOCALES, translations

    ids = extract()
    assert len(ids) > 200
    for locale in LOCALES:
        catalog = translations(locale)
        untranslated = [m for m in ids if locale != "en" and catalog.gettext(m) == m]
        assert not untranslated, (locale, untranslated[:10])
        for message in ids:  # Jinja's newstyle gettext %-formats every translation
            assert catalog.gettext(message) % {} == catalog.gettext(message).replace("%%", "%")


def test_dates_and_numbers_follow_the_users_language(app: Any, alpha: Tenant) -> None:
    from api.console.i18n import environment

    assert environment("en").filters["number"](1234567) == "1,234,567"
    assert environment("zh-Hans").filters["percent"](0.0123) == "1.2%"
    hant = sign_in(
        app.app, "hans", make_user("hans", "client_user", [alpha.client_id], locale="zh-Hant")
    )
    assert 'lang="zh-Hant"' in hant.http.get("/console/lists").text
    switched = hant.post("/console/language", {"locale": "en", "back": "/console/lists"})
    assert "Lead lists" in switched.text


def test_swagger_ui_is_served_locally(app: Any) -> None:
    docs = app.get("/docs")
    assert docs.status_code == 200, _detail(docs)
    assert "cdn" not in docs.text.lower()
    for asset in re.findall(r'(?:src|href)="(/static/swagger-ui/[^"]+)"', docs.text):
        assert app.get(asset).status_code == 200
    assert "/static/swagger-ui/swagger-ui-bundle.js" in docs.text
