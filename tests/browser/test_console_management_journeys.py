"""Browser journeys of the newer console pages, in headless Chromium against the real server:
the abandon bar's colour over and under the cap, agent and skill-group management, an agent's
callbacks, questionnaire editing, the cross-tab and a client's statements.

Every wait is on a condition (an element, a URL, a download), never a fixed sleep.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from console_builders import PASSWORD, make_agent, make_user, running_campaign_with_calls, shot

from helpers import make_tenant

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

RED = "rgb(185, 28, 28)"
BLUE = "rgb(37, 99, 235)"


def _fill(page: Any) -> str:
    fill: str = page.locator("#live [data-live-bar]").evaluate("el => getComputedStyle(el).fill")
    return fill


def test_the_abandon_bar_is_red_over_the_cap_and_blue_under_it(page_for: Any) -> None:
    alpha = make_tenant(None, "alpha").client_id
    # 1 abandoned of 4 live answers: 25 % against a 3 % cap
    over = running_campaign_with_calls(alpha, connected=3, abandoned=1, name="超限")
    under = running_campaign_with_calls(alpha, connected=40, abandoned=1, name="达标")
    make_user("olga", "operator", [alpha])
    page = page_for("olga", PASSWORD)
    page.goto(f"/console/campaigns/{over}")
    page.wait_for_selector("#live[data-updated]")  # redrawn by the stream's first event
    assert _fill(page) == RED
    assert page.locator("#live [data-live='abandon.rate']").first.inner_text() == "25.0%"
    bar = page.locator("#live [data-live-bar]")
    assert float(bar.get_attribute("width") or 0) == pytest.approx(540)  # past twice the cap
    cap_line = page.locator("#live [data-cap-line]")
    assert float(cap_line.get_attribute("x1") or 0) == pytest.approx(270, abs=1)
    shot(page, "operator-abandon-over-cap")
    page.goto(f"/console/campaigns/{under}")
    page.wait_for_selector("#live[data-updated]")
    assert _fill(page) == BLUE  # 1 of 41 = 2.4 %, under the cap
    assert float(bar.get_attribute("width") or 0) == pytest.approx(540 * 0.0244 / 0.06, abs=2)


def test_operator_manages_agents_and_skill_groups(page_for: Any) -> None:
    alpha = make_tenant(None, "alpha").client_id
    make_agent(alpha, code="A001", name="李娜")
    make_user("olga", "operator", [alpha])
    page = page_for("olga", PASSWORD)
    page.click("header nav a[href='/console/agents']")
    page.wait_for_selector("text=A001")
    form = page.locator("#new-agent")
    form.locator("input[name=agent_code]").fill("bad code")
    form.locator("input[name=name]").fill("王伟")
    form.locator("input[name=skill_groups]").fill("survey, 回访")
    form.locator("button.primary").click()
    page.wait_for_selector("#err-agent_code")  # refused at the field, the typing kept
    assert page.locator("#new-agent input[name=name]").input_value() == "王伟"
    assert page.locator("#new-agent input[name=agent_code]").get_attribute("aria-invalid")
    page.locator("#new-agent input[name=agent_code]").fill("A002")
    page.locator("#new-agent input[name=skill_groups]").fill("survey, 回访")
    page.locator("#new-agent button.primary").click()
    page.wait_for_selector("a:text-is('A002')")
    shot(page, "operator-agents")
    page.click("a:text-is('A002')")
    page.wait_for_selector("#agent-settings")
    page.click("button[data-action=deactivate]")
    page.wait_for_selector("[data-agent-status]")
    page.click("button[data-action=activate]")
    page.wait_for_selector("button[data-action=deactivate]")
    page.goto("/console/skill-groups")
    assert "A002" in page.locator("section[data-group='回访']").inner_text()
    page.select_option("#add-member select[name=agent_id]", label="A001 李娜")
    page.fill("#add-member input[name=group]", "回访")
    page.click("#add-member button.primary")
    page.wait_for_selector("section[data-group='回访'] tr[data-member='A001']")
    shot(page, "operator-skill-groups")
    page.click("section[data-group='survey'] tr[data-member='A002'] button")
    page.wait_for_selector("section[data-group='survey'] tr[data-member='A001']")
    assert page.locator("section[data-group='survey'] tr[data-member='A002']").count() == 0


def _due_callback(client_id: uuid.UUID, agent_code: str) -> uuid.UUID:
    """A running campaign whose one lead is a callback of ``agent_code``'s, due 2 min ago."""
    from campaign_builders import make_campaign, make_list
    from sqlmodel import select

    from campaigns.models import BatchCreate, CampaignLead, CampaignStatus, LeadState
    from campaigns.service import create_batch
    from core.db import tenant_session, utcnow

    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(
            session, client_id, count=1, attributes=[{"name": "陈先生"}], zones=[["Asia/Tokyo"]]
        )
        campaign = make_campaign(session, client_id, [lead_list.id], name="回访预约")
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=1, seed=1))
        campaign.status = CampaignStatus.running
        session.add(campaign)
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign.id)
        ).one()
        row.state = LeadState.scheduled
        row.callback_at = row.next_attempt_at = utcnow() - timedelta(minutes=2)
        row.callback_agent = agent_code
        session.add(row)
        return campaign.id


def test_agent_dials_a_due_callback_from_my_callbacks(page_for: Any) -> None:
    alpha = make_tenant(None, "alpha").client_id
    agent_id = make_agent(alpha, code="A007")
    from dialer.leadership import LocalLeadership

    campaign_id = _due_callback(alpha, "A007")
    make_user("ann", "agent", [alpha], agent_id=agent_id)
    pacer = LocalLeadership(campaign_id, "browser-test-pacer")  # the server's process
    assert pacer.acquire()
    page = page_for("ann", PASSWORD)
    page.click("button[data-action=sign_in]")
    page.wait_for_selector("button[data-action=go_ready]")
    page.click("header nav a[href='/console/agent/callbacks']")
    page.wait_for_selector("#callbacks tr.due")
    row = page.locator("#callbacks tr.due").inner_text()
    assert "(Asia/Tokyo)" in row
    assert "陈先生" in row
    shot(page, "agent-my-callbacks")
    page.click("button[data-action=dial-callback]")
    # the agent dials; the campaign's pacer places the call (tests/dialer: the attempt)
    page.wait_for_selector(".badge.a-dialing")
    pacer.release()


def _draft_version(client_id: uuid.UUID) -> str:
    from console_builders import tea_xlsform

    from core.db import tenant_session
    from surveys import service

    with tenant_session([client_id]) as session:
        document = service.parse_upload(filename="tea.xlsx", data=tea_xlsform())
        version = service.create_questionnaire(
            session=session, client_id=client_id, document=document
        )
        return str(version.id)


def test_researcher_edits_a_draft_with_errors_shown_inline(page_for: Any) -> None:
    alpha = make_tenant(None, "alpha").client_id
    version_id = _draft_version(alpha)
    make_user("rita", "researcher", [alpha])
    page = page_for("rita", PASSWORD)
    page.goto(f"/console/versions/{version_id}")
    page.click("a.button:text-is('编辑')")
    page.wait_for_selector("#editor")
    cups = page.locator("fieldset[data-question='cups']")
    cups.locator("select[name$='.type']").select_option("date")
    cups.locator("input[name$='.relevant']").fill("${likes_tea} = = 'yes'")
    page.click("button[data-action=save-draft]")
    page.wait_for_selector("fieldset[data-question='cups'] .field-error")
    border = page.locator("fieldset[data-question='cups']").evaluate(
        "el => getComputedStyle(el).borderTopColor"
    )
    assert border == RED  # the question with the problem is outlined
    assert "relevant" in page.locator("fieldset[data-question='cups'] .field-error").inner_text()
    shot(page, "researcher-editor-problem")
    page.locator("fieldset[data-question='cups'] input[name$='.relevant']").fill(
        "${likes_tea} = 'yes'"
    )
    page.locator("fieldset.question.new input[name$='.name']").fill("brand")
    page.locator("fieldset.question.new select[name$='.type']").select_option("text")
    page.locator("fieldset.question.new input[name$='.label.zh-Hans']").fill("什么牌子？")
    page.click("button[data-action=save-draft]")
    page.wait_for_selector("fieldset[data-question='brand']")  # saved, the page came back
    assert page.locator("text=草稿已保存。").count() == 1
    assert page.locator("fieldset[data-question='cups'] .field-error").count() == 0


def test_researcher_reads_a_cross_tab_with_its_chart(page_for: Any, server: str) -> None:
    import httpx
    from console_builders import published_with_answers

    with httpx.Client(base_url=server) as http:
        tenant = make_tenant(http, "alpha")
        version_id = published_with_answers(tenant)
    make_user("rita", "researcher", [tenant.client_id])
    page = page_for("rita", PASSWORD)
    page.goto(f"/console/versions/{version_id}/results")
    page.click("text=交叉表")
    page.select_option("#ct-row", "city")
    page.select_option("#ct-column", "likes")
    page.click("#crosstab-form button.primary")
    page.wait_for_selector("#crosstab")
    assert "66.7%" in page.locator("td[data-cell='sh|yes']").inner_text()
    assert page.locator("svg.stacked rect title").count() == 4
    shot(page, "researcher-crosstab")


def test_client_downloads_a_monthly_statement(page_for: Any) -> None:
    from console_builders import statement_for

    alpha = make_tenant(None, "alpha").client_id
    statement_for(alpha, "十月回访", issue=True)
    make_user("carl", "client_user", [alpha])
    page = page_for("carl", PASSWORD)
    page.click("header nav a[href='/console/statements']")
    page.wait_for_selector("#statements tr[data-statement]")
    assert "十月回访" in page.locator("#statements").inner_text()
    shot(page, "client-statements")
    page.fill("#statements input[name=reason]", "有效通话数与我方记录不符")
    page.click("#statements button[data-action=dispute]")
    page.wait_for_selector("#statements .badge.st-disputed")
    with page.expect_download() as download:
        page.click("#statements a:text-is('HTML')")
    assert download.value.suggested_filename == "statement_202610_v1.html"
    assert "<table" in Path(download.value.path()).read_text(encoding="utf-8")
