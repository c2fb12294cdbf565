"""Each role's main journey in headless Chromium, against the real server on PostgreSQL.

Every wait is on a condition (an element, a URL, a download) with Playwright's deadline, never
a fixed sleep. Screenshots of each main page are kept under artifacts/screenshots.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from console_builders import (
    PASSWORD,
    console_objects_for,
    make_agent,
    make_user,
    pop_a_call,
    shot,
    tea_xlsform,
)

from helpers import make_tenant

# one worker, one browser: the journeys run together (make test uses --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


def _clients() -> tuple[uuid.UUID, uuid.UUID]:
    alpha = make_tenant(None, "alpha").client_id
    bravo = make_tenant(None, "bravo").client_id
    return alpha, bravo


def _staff_the_floor(client_id: uuid.UUID) -> None:
    """Three agents serving the client: two ready, one on a break."""
    from core.db import system_session
    from dialer.agent_service import GoNotReady, GoReady, SignIn, apply_agent_action

    for code, name, last in (
        ("A001", "李娜", None),
        ("A002", "王伟", None),
        ("A003", "张敏", "break"),
    ):
        agent_id = make_agent(client_id, code=code, name=name)
        with system_session() as session:
            apply_agent_action(session=session, agent_id=agent_id, command=SignIn())
            command = GoNotReady(reason=last) if last else GoReady()
            apply_agent_action(session=session, agent_id=agent_id, command=command)


def _lease(campaign_id: str, count: int) -> None:
    from campaigns.hopper import lease_leads
    from core.db import system_session, utcnow

    with system_session() as session:
        leased = lease_leads(
            session=session,
            campaign_id=uuid.UUID(campaign_id),
            now=utcnow(),
            limit=count,
            worker_id="browser-test",
        )
        assert len(leased) == count


def test_operator_draws_a_pilot_starts_it_and_watches_the_live_panel(page_for: Any) -> None:
    from campaign_builders import make_campaign, make_list

    from core.db import tenant_session

    alpha, _ = _clients()
    with tenant_session([alpha]) as session:
        lead_list, _ = make_list(session, alpha, count=40)
        campaign_id = str(
            make_campaign(
                session, alpha, [lead_list.id], name="春季满意度回访", skill_group="survey"
            ).id
        )
    _staff_the_floor(alpha)
    make_user("olga", "operator", [alpha])
    page = page_for("olga", PASSWORD)
    page.wait_for_selector("text=春季满意度回访")
    shot(page, "operator-campaigns")
    page.click("text=春季满意度回访")
    page.fill("input[name=size]", "20")
    page.fill("input[name=seed]", "7")
    page.click("text=抽取试呼样本")
    page.wait_for_selector("td.num:text-is('20')")
    page.click("button[data-action=start-pilot]")
    page.wait_for_selector(".badge.s-piloting")
    assert page.locator("button[data-action]").evaluate_all(
        "els => els.map(e => e.dataset.action)"
    ) == ["pause", "finish-pilot", "cancel"]
    live = page.locator("#live")
    callable_now = live.locator("[data-live='hopper.callable_now']")
    page.wait_for_selector("#live[data-updated]")  # the stream's first event arrived
    assert callable_now.inner_text() == "20"
    _lease(campaign_id, 5)  # the dialer takes five leads: the stream wakes, the tile moves
    page.wait_for_function(
        "el => el.textContent.trim() === '15'", arg=callable_now.element_handle()
    )
    rows = live.locator("[data-live-agents] tr")
    assert live.locator("[data-live='agents.ready']").inner_text() == "2"
    assert live.locator("[data-live='agents.not_ready']").inner_text() == "1"
    assert rows.count() == 3
    assert rows.nth(0).inner_text().split("\t")[:3] == ["A001", "李娜", "就绪"]
    shot(page, "operator-live-panel")


def test_agent_takes_a_call_pop_and_dispositions_it_from_the_keyboard(page_for: Any) -> None:
    alpha, _ = _clients()
    ids = console_objects_for(alpha, with_run=False)
    agent_id = make_agent(alpha)
    make_user("ann", "agent", [alpha], agent_id=agent_id)
    page = page_for("ann", PASSWORD)
    page.click("button[data-action=sign_in]")
    page.wait_for_selector("button[data-action=go_ready]")
    page.click("button[data-action=go_ready]")
    page.wait_for_selector("button[data-action=go_not_ready]")
    pop_a_call(alpha, agent_id, uuid.UUID(ids["campaign_id"]))
    # the seat's event stream tells the page, which reloads its phone panel: no reload by hand
    page.wait_for_selector("text=王小明")
    pop = page.locator("section.pop")
    for text in ("A001", "survey", "+862155550000", "+8613800000001", "上海"):
        assert text in pop.inner_text()
    shot(page, "agent-call-pop")
    page.select_option("select[name=disposition]", "complete")
    page.focus("button[data-action=disposition]")
    page.keyboard.press("Enter")  # the keyboard alone takes the call to its wrap-up
    page.wait_for_selector(".badge.a-wrap_up")
    page.reload()  # the state lives on the server
    page.wait_for_selector(".badge.a-wrap_up")
    shot(page, "agent-wrap-up")


def test_client_uploads_a_list_watches_cleaning_and_downloads_the_rows(
    page_for: Any, tmp_path: Path
) -> None:
    alpha, _ = _clients()
    make_user("carl", "client_user", [alpha])
    page = page_for("carl", PASSWORD)
    source = tmp_path / "十二月名单.csv"
    lines = ["name,phone"] + [f"客户{i},1381234{i:04d}" for i in range(300)]
    lines += ["重复,13812340001", "无效,12345"]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.set_input_files("input[type=file]", str(source))
    page.click("text=上传并清洗")
    page.wait_for_selector("text=清洗报告")  # htmx polled the progress, then reloaded
    assert "300" in page.locator(".tile").nth(1).inner_text()
    shot(page, "client-cleaning-report")
    with page.expect_download() as cleaned:
        page.click("text=下载清洗后数据")
    text = Path(cleaned.value.path()).read_text(encoding="utf-8-sig")
    assert text.count("\n") == 301
    with page.expect_download() as rejects:
        page.click("text=下载剔除数据")
    rejected = Path(rejects.value.path()).read_text(encoding="utf-8-sig")
    assert "无效" in rejected
    assert "重复" in rejected


def test_researcher_uploads_an_xlsform_and_previews_it_in_zh_hant(
    page_for: Any, tmp_path: Path
) -> None:
    alpha, _ = _clients()
    make_user("rita", "researcher", [alpha])
    page = page_for("rita", PASSWORD)
    workbook = tmp_path / "tea.xlsx"
    workbook.write_bytes(tea_xlsform())
    page.set_input_files("input[type=file]", str(workbook))
    page.click("button:text-is('上传')")
    page.wait_for_url(re.compile(r".*/console/versions/.*"))
    row = page.locator("table.problems tr", has_text="survey")
    assert "3" in row.first.inner_text()  # the geopoint's row
    # previewed as a draft: nothing is published
    page.select_option("#plang", "zh-Hant")
    page.click("text=开始预览")
    page.wait_for_selector("text=你喜歡茶嗎？")
    shot(page, "researcher-preview-zh-hant")
    page.check("input[value=yes]")
    page.click("button:text-is('下一步')")
    page.wait_for_selector("text=每天幾杯？")


def test_sales_reads_the_verdict_and_downloads_the_quote_document(page_for: Any) -> None:
    from core.queue import drain_embedded

    alpha, _ = _clients()
    ids = console_objects_for(alpha)
    drain_embedded()
    make_user("sam", "sales", [alpha])
    page = page_for("sam", PASSWORD)
    page.goto(f"/console/feasibility/{ids['run_id']}")
    page.wait_for_selector("iframe.report")
    assert page.locator("h2", has_text="报价").count() == 1
    frame = page.frame_locator("iframe.report")
    frame.locator("svg").first.wait_for()
    shot(page, "sales-feasibility")
    with page.expect_download() as document:
        page.click("text=下载客户文档")
    assert "<svg" in Path(document.value.path()).read_text(encoding="utf-8")


def test_a_client_user_cannot_reach_another_clients_pages(page_for: Any) -> None:
    alpha, bravo = _clients()
    b_ids = console_objects_for(bravo, with_run=False)
    make_user("carl", "client_user", [alpha])
    page = page_for("carl", PASSWORD)
    for url in (
        f"/console/campaigns/{b_ids['campaign_id']}",
        f"/console/lists/{b_ids['list_id']}",
        f"/lists/{b_ids['list_id']}/cleaned.csv",
    ):
        response = page.goto(url)
        assert response is not None
        assert response.status == 404, url
    page.goto(f"/console/campaigns/{b_ids['campaign_id']}")
    assert "未找到" in page.inner_text("main")
    shot(page, "client-other-client-404")
