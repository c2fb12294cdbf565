"""Console pages for agents and skill groups, an agent's callbacks, and client statements."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from console_builders import make_agent, make_user, sign_in, statement_for

from core.db import system_session
from dialer import agent_service
from dialer.leadership import LocalLeadership

from helpers import Tenant


def _seat(agent_id: uuid.UUID) -> Any:
    from core.db import system_session
    from dialer.models import AgentSeat

    with system_session() as session:
        seat = session.get(AgentSeat, agent_id)
        assert seat is not None
        session.expunge(seat)
        return seat


def _agent_id(code: str) -> uuid.UUID:
    from sqlmodel import select

    from core.db import system_session
    from dialer.models import AgentSeat

    with system_session() as session:
        found = session.exec(select(AgentSeat.id).where(AgentSeat.agent_code == code)).first()
        assert found is not None, code
        return found


def test_operator_creates_edits_and_deactivates_an_agent(app: Any, alpha: Tenant) -> None:
    olga = sign_in(app.app, "olga", make_user("olga", "operator", [alpha.client_id]))
    assert olga.http.get("/console/agents").status_code == 200
    # a 工號 the model refuses: shown at its field, nothing stored
    bad = olga.post("/console/agents", {"agent_code": "a b", "name": "张伟"})
    assert bad.status_code == 422
    assert 'id="err-agent_code"' in bad.text
    assert 'value="张伟"' in bad.text  # the form keeps what was typed
    made = olga.post(
        "/console/agents",
        {
            "agent_code": "B007",
            "name": "张伟",
            "skill_groups": "survey， sales",
            "wrap_limit_s": "30",
        },
    )
    assert made.status_code == 200, made.text[:500]
    assert "B007" in made.text
    agent_id = _agent_id("B007")
    seat = _seat(agent_id)
    assert seat.skill_groups == ["survey", "sales"]
    assert seat.client_ids == [str(alpha.client_id)]
    taken = olga.post("/console/agents", {"agent_code": "B007", "name": "另一个"})
    assert taken.status_code == 409
    assert "already taken" in taken.text
    saved = olga.post(
        f"/console/agents/{agent_id}",
        {"name": "张伟伟", "skill_groups": "sales", "client_ids": str(alpha.client_id)},
    )
    assert saved.status_code == 200, saved.text[:500]
    seat = _seat(agent_id)
    assert (seat.name, seat.skill_groups, seat.wrap_limit_s) == ("张伟伟", ["sales"], None)
    wrong = olga.post(f"/console/agents/{agent_id}", {"name": "x", "wrap_limit_s": "9999"})
    assert wrong.status_code == 422
    assert 'id="err-wrap_limit_s"' in wrong.text

    # the agent signs in; deactivating signs it out and keeps it from signing in again
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    assert ann.post("/console/agent/action", {"action": "sign_in"}).status_code == 200
    assert _seat(agent_id).state.value == "signed_in"
    off = olga.post(f"/console/agents/{agent_id}/deactivate")
    assert off.status_code == 200
    assert 'data-action="activate"' in off.text
    seat = _seat(agent_id)
    assert (seat.active, seat.state.value) == (False, "signed_out")
    refused = ann.post("/console/agent/action", {"action": "sign_in"})
    assert refused.status_code == 409
    assert "deactivated" in refused.text
    assert "inactive" in olga.http.get("/console/agents").text
    on = olga.post(f"/console/agents/{agent_id}/activate")
    assert on.status_code == 200
    assert _seat(agent_id).active
    assert ann.post("/console/agent/action", {"action": "sign_in"}).status_code == 200


def test_an_agent_on_a_call_is_not_deactivated(app: Any, alpha: Tenant) -> None:
    from campaign_builders import make_campaign, make_list
    from console_builders import pop_a_call

    from core.db import tenant_session

    with tenant_session([alpha.client_id]) as session:
        lead_list, _ = make_list(session, alpha.client_id, count=2)
        campaign_id = make_campaign(session, alpha.client_id, [lead_list.id]).id
        from campaigns.models import BatchCreate
        from campaigns.service import create_batch, get_campaign

        create_batch(
            session=session,
            campaign=get_campaign(session=session, campaign_id=campaign_id),
            batch_in=BatchCreate(size=2, seed=1),
        )
    agent_id = make_agent(alpha.client_id, code="C001")
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    ann.post("/console/agent/action", {"action": "sign_in"})
    ann.post("/console/agent/action", {"action": "go_ready"})
    pop_a_call(alpha.client_id, agent_id, campaign_id)
    sam = sign_in(app.app, "sam", make_user("sam", "supervisor", [alpha.client_id]))
    busy = sam.post(f"/console/agents/{agent_id}/deactivate")
    assert busy.status_code == 409
    assert "on_call" in busy.text
    assert _seat(agent_id).active


def test_agent_pages_are_for_operators_and_supervisors_of_the_agents_clients(
    app: Any, alpha: Tenant, bravo: Tenant
) -> None:
    b_agent = make_agent(bravo.client_id, code="B900")
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    assert carl.http.get("/console/agents").status_code == 403
    assert carl.http.get("/console/skill-groups").status_code == 403
    sara = sign_in(app.app, "sara", make_user("sara", "sales", [alpha.client_id]))
    assert sara.http.get("/console/agents").status_code == 403
    sam = sign_in(app.app, "sam", make_user("sam", "supervisor", [alpha.client_id]))
    assert "B900" not in sam.http.get("/console/agents").text
    assert sam.http.get(f"/console/agents/{b_agent}").status_code == 404
    added = sam.post("/console/skill-groups/members", {"agent_id": str(b_agent), "group": "x"})
    assert added.status_code == 404
    assert _seat(b_agent).skill_groups == ["survey"]


def test_skill_groups_show_members_and_campaigns_and_change_membership(
    app: Any, alpha: Tenant
) -> None:
    from campaign_builders import make_campaign, make_list

    from core.db import tenant_session

    with tenant_session([alpha.client_id]) as session:
        lead_list, _ = make_list(session, alpha.client_id, count=2)
        make_campaign(
            session, alpha.client_id, [lead_list.id], name="回访", skill_group="retention"
        )
    first = make_agent(alpha.client_id, code="G001", name="甲")
    make_agent(alpha.client_id, code="G002", name="乙")
    olga = sign_in(app.app, "olga", make_user("olga", "operator", [alpha.client_id]))
    page = olga.http.get("/console/skill-groups")
    assert page.status_code == 200
    survey = re.search(r'data-group="survey">(.*?)</section>', page.text, re.S)
    assert survey
    assert "G001" in survey.group(1)
    assert "G002" in survey.group(1)
    retention = re.search(r'data-group="retention">(.*?)</section>', page.text, re.S)
    assert retention
    assert "回访" in retention.group(1)
    assert "G001" not in retention.group(1)
    added = olga.post(
        "/console/skill-groups/members", {"agent_id": str(first), "group": "retention"}
    )
    assert added.status_code == 200
    retention = re.search(r'data-group="retention">(.*?)</section>', added.text, re.S)
    assert retention
    assert "G001" in retention.group(1)
    assert _seat(first).skill_groups == ["survey", "retention"]
    blank = olga.post("/console/skill-groups/members", {"agent_id": str(first), "group": " "})
    assert blank.status_code == 422
    bad = olga.post("/console/skill-groups/members", {"agent_id": str(first), "group": "a,b"})
    assert bad.status_code == 422
    assert "without commas" in bad.text
    removed = olga.post(
        "/console/skill-groups/members/remove", {"agent_id": str(first), "group": "survey"}
    )
    assert removed.status_code == 200
    assert _seat(first).skill_groups == ["retention"]


def _callback_for(
    client_id: uuid.UUID,
    agent_code: str,
    *,
    due_in: timedelta,
    zones: list[str] | None = None,
    status: str = "draft",
    numbers: list[str] | None = None,
) -> tuple[uuid.UUID, uuid.UUID]:
    """A campaign lead with a callback to ``agent_code``; (campaign id, campaign lead id)."""
    from campaign_builders import make_campaign, make_list
    from sqlmodel import select

    from campaigns.models import BatchCreate, CampaignLead, CampaignStatus, LeadState
    from campaigns.service import create_batch
    from core.db import tenant_session, utcnow

    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(
            session, client_id, count=1, zones=[zones or ["Asia/Shanghai"]], numbers=numbers
        )
        campaign = make_campaign(session, client_id, [lead_list.id], name=f"回拨 {agent_code}")
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=1, seed=1))
        campaign.status = CampaignStatus(status)
        session.add(campaign)
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign.id)
        ).one()
        row.state = LeadState.scheduled
        row.callback_at = utcnow() + due_in
        row.next_attempt_at = row.callback_at
        row.callback_agent = agent_code
        session.add(row)
        session.flush()
        return campaign.id, row.id


def test_my_callbacks_lists_mine_in_both_zones_and_dials_a_due_one(
    app: Any, alpha: Tenant, bravo: Tenant
) -> None:
    agent_id = make_agent(alpha.client_id, code="K001")
    _c, due = _callback_for(
        alpha.client_id, "K001", due_in=timedelta(minutes=-5), zones=["America/New_York"]
    )
    _c, later = _callback_for(alpha.client_id, "K001", due_in=timedelta(hours=3))
    _c, theirs = _callback_for(alpha.client_id, "K002", due_in=timedelta(minutes=-5))
    dialing_campaign, dialing = _callback_for(
        alpha.client_id, "K001", due_in=timedelta(minutes=-1), status="running"
    )
    _c, _cancelled = _callback_for(
        alpha.client_id, "K001", due_in=timedelta(minutes=-1), status="cancelled"
    )
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    # the agent screen says how many are due (the one due and the dialer's), linking to the list
    assert 'data-callbacks-due="2"' in ann.http.get("/console/agent").text
    page = ann.http.get("/console/agent/callbacks")
    assert page.status_code == 200
    rows = dict(re.findall(r'data-callback="([\w-]+)">(.*?)</tr>', page.text, re.S))
    # not K002's, nor the cancelled campaign's
    assert set(rows) == {str(due), str(later), str(dialing)}
    assert "(America/New_York)" in rows[str(due)]
    assert "(Asia/Shanghai)" in rows[str(later)]
    # signed out: the due one is not dialable yet; the future one never shows a button
    assert 'data-action="dial-callback"' not in page.text
    ann.post("/console/agent/action", {"action": "sign_in"})
    signed_in = ann.http.get("/console/agent/callbacks").text
    rows = dict(re.findall(r'data-callback="([\w-]+)">(.*?)</tr>', signed_in, re.S))
    # the call goes through the campaign's pacer: none runs these campaigns yet
    assert 'data-action="dial-callback"' not in signed_in
    assert 'data-note="no-pacer"' in rows[str(due)]
    assert 'data-note="no-pacer"' in rows[str(dialing)]
    assert 'data-action="dial-callback"' not in rows[str(later)]
    early = ann.post("/console/agent/callbacks/dial", {"campaign_lead_id": str(later)})
    assert early.status_code == 409
    assert "not due" in early.text
    idle = ann.post("/console/agent/callbacks/dial", {"campaign_lead_id": str(due)})
    assert idle.status_code == 409
    assert "nothing dials it" in idle.text
    unled = ann.post("/console/agent/callbacks/dial", {"campaign_lead_id": str(dialing)})
    assert unled.status_code == 409
    assert "no pacer" in unled.text
    other = ann.post("/console/agent/callbacks/dial", {"campaign_lead_id": str(theirs)})
    assert other.status_code == 404
    assert _seat(agent_id).state.value == "signed_in"  # nothing refused changed the agent

    # a pacer leads the running campaign: the agent dials, the pacer will place the call
    pacer = LocalLeadership(dialing_campaign, "console-test-pacer")
    assert pacer.acquire()
    try:
        led = ann.http.get("/console/agent/callbacks").text
        assert led.count('accesskey="d"') == 1  # the keyboard reaches the first due one
        rows = dict(re.findall(r'data-callback="([\w-]+)">(.*?)</tr>', led, re.S))
        assert 'data-action="dial-callback"' in rows[str(dialing)]
        assert 'data-action="dial-callback"' not in rows[str(due)]
        dialed = ann.post("/console/agent/callbacks/dial", {"campaign_lead_id": str(dialing)})
        assert dialed.status_code == 200, dialed.text[:500]
    finally:
        pacer.release()
    assert _seat(agent_id).state.value == "dialing"
    with system_session() as session:
        [dial] = [
            e
            for e in agent_service.state_log(session=session, agent_id=agent_id)
            if e.action.value == "dial"
        ]
    assert dial.details["campaign_id"] == str(dialing_campaign)
    assert dial.details["campaign_lead_id"] == str(dialing)


def test_a_due_callback_on_a_do_not_call_number_is_refused(app: Any, alpha: Tenant) -> None:
    from campaigns.suppression import add_numbers
    from core.db import tenant_session

    agent_id = make_agent(alpha.client_id, code="K009")
    number = "+8613912345678"
    campaign_id, due = _callback_for(
        alpha.client_id, "K009", due_in=timedelta(minutes=-5), numbers=[number], status="running"
    )
    with tenant_session([alpha.client_id]) as session:
        add_numbers(
            session=session, client_id=alpha.client_id, numbers=[number], region="CN", source="api"
        )
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    ann.post("/console/agent/action", {"action": "sign_in"})
    pacer = LocalLeadership(campaign_id, "console-test-pacer")
    assert pacer.acquire()
    try:
        refused = ann.post("/console/agent/callbacks/dial", {"campaign_lead_id": str(due)})
    finally:
        pacer.release()
    assert refused.status_code == 409
    assert "do-not-call" in refused.text
    assert _seat(agent_id).state.value == "signed_in"


def test_client_sees_own_statements_and_downloads_them(
    app: Any, alpha: Tenant, bravo: Tenant
) -> None:
    mine = statement_for(alpha.client_id, "十月活动")
    theirs = statement_for(bravo.client_id, "B 活动")
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    page = carl.http.get("/console/statements")
    assert page.status_code == 200
    assert str(mine) in page.text
    assert "十月活动" in page.text
    assert str(theirs) not in page.text
    assert "2026-10" in page.text
    assert str(mine) not in carl.http.get("/console/statements?month=2026-09").text
    assert carl.http.get("/console/statements?month=October").status_code == 422
    link = re.search(rf'href="(/statements/{mine}/document\?fmt=xlsx[^"]*)"', page.text)
    assert link
    download = carl.http.get(link.group(1).replace("&amp;", "&"))
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    assert "statement_202610_v1.xlsx" in download.headers["content-disposition"]
    assert carl.http.get(f"/statements/{theirs}/document?fmt=html").status_code == 404
    ann = sign_in(app.app, "ann2", make_user("ann2", "researcher", [alpha.client_id]))
    assert ann.http.get("/console/statements").status_code == 403


def test_client_confirms_or_disputes_an_issued_statement(app: Any, alpha: Tenant) -> None:
    from core.db import system_session
    from reports.models import Statement

    draft = statement_for(alpha.client_id, "草稿")
    first = statement_for(alpha.client_id, "一", issue=True)
    second = statement_for(alpha.client_id, "二", issue=True)
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    page = carl.http.get("/console/statements").text
    row = dict(re.findall(r'data-statement="([\w-]+)">(.*?)</tr>', page, re.S))
    assert 'data-action="confirm"' not in row[str(draft)]  # not issued: nothing to answer
    assert 'data-action="dispute"' in row[str(first)]
    assert carl.post(f"/console/statements/{draft}/confirm").status_code == 409
    assert carl.post(f"/console/statements/{first}/dispute", {"reason": " "}).status_code == 422
    disputed = carl.post(f"/console/statements/{first}/dispute", {"reason": "通话数不对"})
    assert disputed.status_code == 200
    assert "通话数不对" in disputed.text
    assert carl.post(f"/console/statements/{second}/confirm").status_code == 200
    with system_session() as session:
        states = {
            sid: getattr(session.get(Statement, sid), "status", None)
            for sid in (draft, first, second)
        }
    assert {k: v.value for k, v in states.items() if v} == {
        draft: "draft", first: "disputed", second: "confirmed",
    }  # fmt: skip
    olga = sign_in(app.app, "olga", make_user("olga", "operator", [alpha.client_id]))
    assert 'data-action="confirm"' not in olga.http.get("/console/statements").text
    assert olga.post(f"/console/statements/{first}/confirm").status_code == 403


def test_an_agent_whose_phone_was_lost_sees_why_and_reconnects(app: Any, alpha: Tenant) -> None:
    from datetime import UTC, datetime

    from core.db import system_session
    from dialer import agent_service
    from dialer.agents import AgentState

    agent_id = make_agent(alpha.client_id, code="P001")
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    ann.post("/console/agent/action", {"action": "sign_in"})
    ann.post("/console/agent/action", {"action": "go_ready"})
    with system_session() as session:  # what the dial loop does on an AgentLegEvent
        agent_service.apply_agent_action(
            session=session,
            agent_id=agent_id,
            command=agent_service.PhoneLost(reason="phone hung up: BYE from the phone"),
            at=datetime.now(UTC),
        )
    page = ann.http.get("/console/agent")
    assert page.status_code == 200
    assert "data-agent-state>电话断线" in page.text  # the state, in the agent's language
    assert "phone hung up: BYE from the phone" in page.text  # and why
    assert 'data-action="reconnect_phone"' in page.text
    assert 'data-action="go_ready"' not in page.text  # no calls until the phone is back
    assert ann.post("/console/agent/action", {"action": "reconnect_phone"}).status_code == 200
    assert _seat(agent_id).state is AgentState.SIGNED_IN  # the dialer calls the phone again


def test_a_call_popped_before_the_agent_pages_stream_connects_is_not_missed(
    app: Any, alpha: Tenant
) -> None:
    from console_builders import console_objects_for, pop_a_call

    ids = console_objects_for(alpha.client_id, with_run=False)
    agent_id = make_agent(alpha.client_id, code="R001")
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    ann.post("/console/agent/action", {"action": "sign_in"})
    page = ann.post("/console/agent/action", {"action": "go_ready"})
    match = re.search(r'data-agent-stream="([^"]+)"', page.text)
    assert match is not None
    stream = match.group(1).replace("&amp;", "&")
    assert "after=" in stream  # the page's own starting point
    pop_a_call(alpha.client_id, agent_id, uuid.UUID(ids["campaign_id"]))  # before it connects
    events = ann.http.get(stream + "&once=true")
    assert events.status_code == 200
    assert "event: call_connected" in events.text  # replayed: the page reloads its phone
    again = ann.http.get(stream + "&once=true", headers={"Last-Event-ID": "999999"})
    assert "event: call_connected" not in again.text  # a reconnect resumes where it was
