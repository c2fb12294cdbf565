"""The agent API: roles, actions with 409 problem+json, state log, and the SSE pop stream."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from api.routes.agents import sse_stream
from core.admin import issue_key
from core.db import system_session
from core.models import Role
from dialer import agent_service as svc
from dialer.gateway import CallParameters
from dialer.models import AgentEventKind

from helpers import Tenant

LEAD = {"id": "lead-7", "name": "李四", "phone": "+8613900001111", "segment": "gold"}
SCRIPT = {"questionnaire_id": "q-9", "greeting": "您好"}


def operator_for(tenant: Tenant, *more: Tenant) -> Tenant:
    """An operator key granted the tenants' clients, on the same HTTP client."""
    with system_session() as session:
        _key, plain = issue_key(
            session=session,
            name="ops",
            role=Role.operator,
            client_refs=[str(t.client_id) for t in (tenant, *more)],
        )
    return Tenant(client_id=tenant.client_id, key=plain, http=tenant.http)


def create_agent(op: Tenant, clients: list[uuid.UUID], **extra: Any) -> dict[str, Any]:
    body = {
        "agent_code": f"G{uuid.uuid4().hex[:6]}",
        "name": "王五",
        "skill_groups": ["sales"],
        "client_ids": [str(c) for c in clients],
        **extra,
    }
    response = op.http.post("/agents", json=body, headers=op.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def action(op: Tenant, agent_id: str, name: str, **body: Any) -> Any:
    return op.http.post(
        f"/agents/{agent_id}/actions", json={"action": name, **body}, headers=op.headers()
    )


def make_ready(op: Tenant, agent_id: str) -> None:
    for name in ("sign_in", "go_ready"):
        assert action(op, agent_id, name).status_code == 200


def pop(agent_id: str, client_id: uuid.UUID, lead: dict[str, Any] = LEAD) -> str:
    with system_session() as session:
        event = svc.pop_call(
            session=session,
            agent_id=uuid.UUID(agent_id),
            client_id=client_id,
            attempt_id=uuid.uuid4(),
            lead=lead,
            params=CallParameters("+862155550000", str(lead["phone"]), skill_group="sales"),
            script=SCRIPT,
        )
        return str(event.payload["call_id"])


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events as {id, event, data}; comments and retry lines are skipped."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or line.startswith("retry:"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
        if fields:
            events.append(fields)
    return events


def read_stream(op: Tenant, agent_id: str, **headers: str) -> list[dict[str, Any]]:
    response = op.http.get(
        f"/agents/{agent_id}/events?once=true", headers={**op.headers(), **headers}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def test_client_keys_cannot_list_create_or_drive_agents(tenant_a: Tenant) -> None:
    op = operator_for(tenant_a)
    agent = create_agent(op, [tenant_a.client_id])
    for method, url, body in [
        ("GET", "/agents", None),
        ("POST", "/agents", {"agent_code": "X1", "name": "x"}),
        ("GET", f"/agents/{agent['id']}", None),
        ("POST", f"/agents/{agent['id']}/actions", {"action": "sign_in"}),
        ("GET", f"/agents/{agent['id']}/events?once=true", None),
        ("GET", f"/agents/{agent['id']}/state-log", None),
    ]:
        response = tenant_a.http.request(method, url, json=body, headers=tenant_a.headers())
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["type"].endswith("/forbidden")
    assert op.http.get(f"/agents/{agent['id']}", headers=op.headers()).json()["state"] == (
        "signed_out"
    )


def test_operators_see_only_agents_of_their_clients(tenant_a: Tenant, tenant_b: Tenant) -> None:
    op_a, op_b = operator_for(tenant_a), operator_for(tenant_b)
    agent_b = create_agent(op_b, [tenant_b.client_id])
    shared = create_agent(
        operator_for(tenant_a, tenant_b), [tenant_a.client_id, tenant_b.client_id]
    )
    listed = op_a.http.get("/agents", headers=op_a.headers()).json()
    assert [a["id"] for a in listed] == [shared["id"]]
    # the shared agent's other client is not disclosed to A's operator
    assert listed[0]["client_ids"] == [str(tenant_a.client_id)]
    for url in (f"/agents/{agent_b['id']}", f"/agents/{agent_b['id']}/events?once=true"):
        response = op_a.http.get(url, headers=op_a.headers())
        assert response.status_code == 404
    response = action(op_a, agent_b["id"], "sign_in")
    assert response.status_code == 404
    # creating an agent for a client the operator has no grant for looks like a missing client
    response = op_a.http.post(
        "/agents",
        json={"agent_code": "Z9", "name": "z", "client_ids": [str(tenant_b.client_id)]},
        headers=op_a.headers(),
    )
    assert response.status_code == 404


def test_lifecycle_over_rest_and_illegal_action_is_409_with_allowed(tenant_a: Tenant) -> None:
    op = operator_for(tenant_a)
    agent = create_agent(op, [tenant_a.client_id], wrap_limit_s=120)
    assert agent["allowed_actions"] == ["sign_in"]

    response = action(op, agent["id"], "go_ready")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/illegal-agent-transition")
    assert problem["allowed"] == ["sign_in"]
    assert problem["state"] == "signed_out"

    make_ready(op, agent["id"])
    response = action(op, agent["id"], "go_not_ready")
    assert response.status_code == 422
    assert "reason" in response.json()["detail"]
    result = action(op, agent["id"], "go_not_ready", reason="training").json()
    assert result["agent"]["state"] == "not_ready"
    assert result["agent"]["state_reason"] == "training"
    assert result["transition"]["from_state"] == "ready"

    assert action(op, agent["id"], "go_ready").status_code == 200
    call_id = pop(agent["id"], tenant_a.client_id)
    callback_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    result = action(op, agent["id"], "schedule_callback", callback_at=callback_at).json()
    assert result["callback"]["lead_id"] == "lead-7"
    assert result["callback"]["client_id"] == str(tenant_a.client_id)
    result = action(
        op, agent["id"], "transfer", transfer={"kind": "external", "target": "+861012345"}
    ).json()
    assert result["agent"]["state"] == "wrap_up"
    assert result["agent"]["wrap_deadline"] is not None
    assert result["transition"]["call_id"] == call_id
    assert action(op, agent["id"], "finish_wrap").json()["agent"]["state"] == "ready"

    log = op.http.get(f"/agents/{agent['id']}/state-log", headers=op.headers()).json()
    assert [e["action"] for e in log] == [
        "sign_in",
        "go_ready",
        "go_not_ready",
        "go_ready",
        "connect",
        "schedule_callback",
        "transfer",
        "finish_wrap",
    ]
    assert log[6]["details"]["target"] == {"kind": "external", "target": "+861012345"}
    naive = op.http.get(
        f"/agents/{agent['id']}/state-log?since=2026-01-01T00:00:00", headers=op.headers()
    )
    assert naive.status_code == 422


def test_a_detail_the_action_does_not_take_is_422_once_the_action_is_possible(
    tenant_a: Tenant,
) -> None:
    op = operator_for(tenant_a)
    agent = create_agent(op, [tenant_a.client_id])
    make_ready(op, agent["id"])
    target = {"kind": "external", "target": "+861012345"}

    # hold is not possible while ready: the state's answer comes first, as without the detail
    response = action(op, agent["id"], "hold", transfer=target)
    assert response.status_code == 409
    assert "hold" not in response.json()["allowed"]
    assert action(op, agent["id"], "transfer").status_code == 409  # no target, not on a call

    pop(agent["id"], tenant_a.client_id)
    response = action(op, agent["id"], "hold", transfer=target)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/invalid-agent-action")
    assert problem["field"] == "transfer"
    assert "internal_call, transfer" in problem["detail"]
    assert "'hold'" in problem["detail"]
    for name, body in (
        ("hold", {"number": "+8613812345678"}),
        ("hang_up", {"callback_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}),
        ("hang_up", {"callback_to": "group"}),
        ("hang_up", {"call_id": "other-call"}),
    ):
        problem = action(op, agent["id"], name, **body).json()
        assert problem["status"] == 422, (name, body)
        assert problem["field"] == next(iter(body)), problem
    response = action(op, agent["id"], "transfer")  # on a call now: the missing target
    assert response.status_code == 422
    assert response.json()["field"] == "transfer"
    assert op.http.get(f"/agents/{agent['id']}", headers=op.headers()).json()["state"] == "on_call"

    # what the action does not use but every action carries, or a default, is accepted
    result = action(op, agent["id"], "hold", reason="customer asked", callback_to="me")
    assert result.status_code == 200, result.text
    assert result.json()["transition"]["reason"] == "customer asked"


def test_stream_pops_lead_params_and_script_and_resumes_after_last_event_id(
    tenant_a: Tenant,
) -> None:
    op = operator_for(tenant_a)
    agent = create_agent(op, [tenant_a.client_id])
    make_ready(op, agent["id"])

    first = read_stream(op, agent["id"])
    assert [e["event"] for e in first] == ["snapshot"]
    assert first[0]["data"]["agent"]["state"] == "ready"
    assert first[0]["data"]["pop"] is None
    resume = first[0]["id"]

    call_id = pop(agent["id"], tenant_a.client_id)
    events = read_stream(op, agent["id"], **{"Last-Event-ID": resume})
    assert [e["event"] for e in events] == ["state_changed", "call_connected"]
    assert [int(e["id"]) for e in events] == [int(resume) + 1, int(resume) + 2]
    popped = events[1]["data"]
    assert popped["lead"] == LEAD
    assert popped["script"] == SCRIPT
    assert popped["call_id"] == call_id
    assert popped["params"]["agent_id"] == agent["agent_code"]
    assert popped["params"]["callee_number"] == LEAD["phone"]
    assert events[0]["data"]["to"] == "on_call"

    # resuming after the last id sends nothing twice; new events continue the sequence
    assert read_stream(op, agent["id"], **{"Last-Event-ID": events[-1]["id"]}) == []
    action(op, agent["id"], "hang_up")
    later = read_stream(op, agent["id"], **{"Last-Event-ID": events[-1]["id"]})
    assert [e["event"] for e in later] == ["state_changed", "call_ended"]
    assert later[1]["data"]["call_id"] == call_id

    # a fresh connection during the call gets the call's pop in its snapshot
    fresh = read_stream(op, agent["id"])
    assert fresh[0]["data"]["agent"]["state"] == "wrap_up"
    bad = op.http.get(
        f"/agents/{agent['id']}/events?once=true", headers={**op.headers(), "Last-Event-ID": "x"}
    )
    assert bad.status_code == 422


def test_snapshot_carries_the_current_pop(tenant_a: Tenant) -> None:
    op = operator_for(tenant_a)
    agent = create_agent(op, [tenant_a.client_id])
    make_ready(op, agent["id"])
    pop(agent["id"], tenant_a.client_id)
    (snapshot,) = read_stream(op, agent["id"])
    assert snapshot["data"]["agent"]["state"] == "on_call"
    assert snapshot["data"]["pop"]["lead"] == LEAD


def test_stream_never_shows_another_clients_pop(tenant_a: Tenant, tenant_b: Tenant) -> None:
    both = operator_for(tenant_a, tenant_b)
    op_a = operator_for(tenant_a)
    agent = create_agent(both, [tenant_a.client_id, tenant_b.client_id])
    make_ready(both, agent["id"])
    pop(agent["id"], tenant_a.client_id, {**LEAD, "id": "lead-a"})
    action(both, agent["id"], "hang_up")
    action(both, agent["id"], "finish_wrap")
    b_call = pop(agent["id"], tenant_b.client_id, {**LEAD, "id": "lead-b", "name": "秘密"})

    seen_by_a = op_a.http.get(
        f"/agents/{agent['id']}/events?once=true", headers={**op_a.headers(), "Last-Event-ID": "0"}
    ).text
    assert "lead-a" in seen_by_a
    for secret in ("lead-b", "秘密", b_call, str(tenant_b.client_id)):
        assert secret not in seen_by_a
    # nor in A's snapshot, the agent's public view or the state log
    for url in (
        f"/agents/{agent['id']}/events?once=true",
        f"/agents/{agent['id']}",
        f"/agents/{agent['id']}/state-log",
    ):
        text = op_a.http.get(url, headers=op_a.headers()).text
        assert b_call not in text, url
        assert "lead-b" not in text, url
    # A's operator cannot drive the agent through B's call
    assert action(op_a, agent["id"], "hang_up").status_code == 422
    seen_by_both = both.http.get(
        f"/agents/{agent['id']}/events?once=true", headers={**both.headers(), "Last-Event-ID": "0"}
    ).text
    assert "lead-b" in seen_by_both
    assert b_call in seen_by_both


def test_live_stream_reads_on_wakeups_sends_keepalives_and_stops_on_disconnect() -> None:
    """The streaming loop itself (the HTTP test client buffers whole responses)."""
    now = [0.0]
    batches = [[], [], [_entry(1)], [], [], [_entry(2), _entry(3)], []]
    asked: list[int] = []
    waits: list[float] = []

    def fetch(after: int) -> list[svc.StreamEntry]:
        asked.append(after)
        return batches.pop(0) if batches else []

    async def wait(timeout_s: float) -> bool:
        # nobody wakes the stream: it sleeps until its next keep-alive or recheck
        waits.append(timeout_s)
        now[0] += timeout_s
        return False

    def disconnected_after(n: int) -> Callable[[], Awaitable[bool]]:
        calls = [0]

        async def check() -> bool:
            calls[0] += 1
            return calls[0] > n

        return check

    async def collect() -> list[str]:
        out = []
        async for message in sse_stream(
            fetch,
            disconnected_after(7),
            after_seq=0,
            wait=wait,
            recheck_s=10.0,
            keepalive_s=15.0,
            clock=lambda: now[0],
        ):
            out.append(message)
        return out

    messages = anyio.run(collect)
    assert asked == [0, 0, 0, 1, 1, 1, 3]
    ids = [line for m in messages for line in m.splitlines() if line.startswith("id:")]
    assert ids == ["id: 1", "id: 2", "id: 3"]
    # 15 s without an event (15 -> 30): one keep-alive
    assert messages.count(": keep-alive\n\n") == 1
    # each sleep ends at the recheck (10 s) or at the next keep-alive, whichever is first
    assert waits == [10.0, 5.0, 10.0, 5.0, 10.0, 10.0, 5.0]


def test_stream_wakes_at_the_agents_next_deadline() -> None:
    """A timed wrap-up ending is a change nobody commits: the stream wakes for it."""
    waits: list[float] = []
    checks = [0]

    async def wait(timeout_s: float) -> bool:
        waits.append(timeout_s)
        return False

    async def disconnected() -> bool:
        checks[0] += 1
        return checks[0] > 1

    async def run() -> None:
        async for _ in sse_stream(
            lambda after: [],
            disconnected,
            after_seq=0,
            wait=wait,
            next_deadline=lambda: 2.5,
            recheck_s=10.0,
            keepalive_s=15.0,
            clock=lambda: 0.0,
        ):
            pass

    anyio.run(run)
    assert waits == [2.5]


def _entry(seq: int) -> svc.StreamEntry:
    return svc.StreamEntry(
        seq, AgentEventKind.CALL_CONNECTED, None, {"n": seq}, datetime(2026, 1, 1, tzinfo=UTC)
    )


def _due_callback(client_id: uuid.UUID, agent_code: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A running campaign whose one lead is a callback of ``agent_code``'s, due 5 min ago."""
    from campaign_builders import make_campaign, make_list
    from sqlmodel import select

    from campaigns.models import BatchCreate, CampaignLead, CampaignStatus, LeadState
    from campaigns.service import create_batch
    from core.db import tenant_session, utcnow

    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, count=1)
        campaign = make_campaign(session, client_id, [lead_list.id], skill_group="sales")
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=1, seed=1))
        campaign.status = CampaignStatus.running
        session.add(campaign)
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign.id)
        ).one()
        row.state = LeadState.scheduled
        row.callback_at = row.next_attempt_at = utcnow() - timedelta(minutes=5)
        row.callback_agent = agent_code
        session.add(row)
        session.flush()
        return campaign.id, row.id


def test_an_agents_callbacks_are_listed_and_dialed_through_the_campaigns_pacer(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    from sqlmodel import select

    from core.models import AuditEvent
    from dialer.leadership import LocalLeadership

    op = operator_for(tenant_a)
    agent = create_agent(op, [tenant_a.client_id])
    campaign_id, campaign_lead_id = _due_callback(tenant_a.client_id, agent["agent_code"])
    assert action(op, agent["id"], "sign_in").status_code == 200

    listed = op.http.get(f"/agents/{agent['id']}/callbacks", headers=op.headers())
    assert listed.status_code == 200, listed.text
    [callback] = listed.json()
    assert callback["campaign_lead_id"] == str(campaign_lead_id)
    assert callback["due"] is True
    assert callback["pacer_live"] is False
    assert callback["dialable"] is False
    dial_url = f"/agents/{agent['id']}/callbacks/{campaign_lead_id}/dial"
    refused = op.http.post(dial_url, headers=op.headers())
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "no pacer" in refused.json()["detail"]

    pacer = LocalLeadership(campaign_id, "api-test-pacer")
    assert pacer.acquire()
    try:
        [callback] = op.http.get(f"/agents/{agent['id']}/callbacks", headers=op.headers()).json()
        assert callback["dialable"] is True
        # another client's operator cannot see the agent, let alone dial for it
        other = operator_for(tenant_b)
        assert other.http.post(dial_url, headers=other.headers()).status_code == 404
        dialed = op.http.post(dial_url, headers=op.headers())
    finally:
        pacer.release()
    assert dialed.status_code == 200, dialed.text
    assert dialed.json()["agent"]["state"] == "dialing"
    assert dialed.json()["transition"]["action"] == "dial"
    with system_session() as session:
        audited = session.exec(
            select(AuditEvent).where(AuditEvent.action == "agent.callbacks.list")
        ).all()
    assert len(audited) == 2
    assert {a.client_id for a in audited} == {tenant_a.client_id}
