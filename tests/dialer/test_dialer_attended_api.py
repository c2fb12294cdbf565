"""The live pacer and agent dispositions over the API (PostgreSQL and SQLite), problem+json."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from campaign_builders import make_campaign as make_campaign_row
from campaign_builders import make_list
from sqlmodel import select

from campaigns.hopper import AttemptOutcome, complete_attempt, lease_leads, record_attempt_start
from campaigns.models import (
    BatchCreate,
    CallAttempt,
    Campaign,
    CampaignStatus,
)
from campaigns.service import create_batch, transition_campaign
from core.admin import issue_key
from core.db import system_session, tenant_session
from core.models import Role
from dialer import agent_service as svc
from dialer.gateway import CallParameters
from dialer.models import AgentDisposition

from helpers import Tenant


def operator_for(tenant: Tenant) -> Tenant:
    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="ops", role=Role.operator, client_refs=[str(tenant.client_id)]
        )
    return Tenant(client_id=tenant.client_id, key=plain, http=tenant.http)


def make_campaign(
    tenant: Tenant,
    *,
    skill_group: str | None = "sales",
    mode: str = "progressive",
    caller_id: str | None = "+862155550000",
) -> uuid.UUID:
    with tenant_session([tenant.client_id]) as session:
        lead_list, _ = make_list(session, tenant.client_id, 3)
        campaign = make_campaign_row(
            session,
            tenant.client_id,
            [lead_list.id],
            name="live",
            skill_group=skill_group,
            pacing_mode=mode,
            caller_id=caller_id,
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=3, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return campaign.id


def create_agent(op: Tenant, *, group: str = "sales") -> str:
    response = op.http.post(
        "/agents",
        json={
            "agent_code": f"L{uuid.uuid4().hex[:6]}",
            "name": "座席",
            "skill_groups": [group],
            "client_ids": [str(op.client_id)],
        },
        headers=op.headers(),
    )
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


def action(op: Tenant, agent_id: str, name: str, **body: Any) -> Any:
    return op.http.post(
        f"/agents/{agent_id}/actions", json={"action": name, **body}, headers=op.headers()
    )


def start(op: Tenant, campaign_id: uuid.UUID, **body: Any) -> Any:
    return op.http.post(f"/campaigns/{campaign_id}/pacer", json=body, headers=op.headers())


def problem_of(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith("/" + slug), problem
    return problem


def test_live_pacer_start_is_validated(tenant_a: Tenant) -> None:
    from core.models import JobRecord
    from core.queue import drain_embedded

    op = operator_for(tenant_a)
    no_group = make_campaign(tenant_a, skill_group=None)
    problem = problem_of(start(op, no_group, agents_mode="live"), 409, "live-dialing-unavailable")
    assert "skill_group" in problem["detail"]
    assert problem["field"] == "skill_group"

    # never "anonymous": a campaign without the number its calls present is refused
    no_caller = make_campaign(tenant_a, caller_id=None)
    problem = problem_of(start(op, no_caller, agents_mode="live"), 409, "live-dialing-unavailable")
    assert problem["field"] == "caller_id"

    campaign_id = make_campaign(tenant_a)
    problem = problem_of(
        start(op, campaign_id, agents_mode="live"), 409, "live-dialing-unavailable"
    )
    assert "create agents" in problem["detail"]
    assert "sign them in" in problem["detail"]

    # an agent of another skill group does not count
    create_agent(op, group="service")
    problem_of(start(op, campaign_id, agents_mode="live"), 409, "live-dialing-unavailable")

    agent_id = create_agent(op)

    problem = problem_of(
        start(op, campaign_id, agents_mode="live", default_disposition="bogus"),
        422,
        "invalid-input",
    )
    assert problem["field"] == "default_disposition"
    assert "callback_requested" in problem["allowed"]
    problem = problem_of(start(op, campaign_id, agents_mode="live", speed=60), 422, "invalid-input")
    assert problem["field"] == "speed"
    problem = problem_of(start(op, campaign_id, agents_mode="robots"), 422, "invalid-input")
    assert "agents_mode" in problem["detail"]

    # client keys may not start pacers; another client's campaign does not exist
    assert start(tenant_a, campaign_id, agents_mode="live").status_code == 403

    # a signed-out agent is enough to start: nobody is ready, so nothing is dialed
    response = start(op, campaign_id, agents_mode="live", duration_s=1)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    drain_embedded()
    with system_session() as session:
        job = session.get(JobRecord, uuid.UUID(job_id))
    assert job is not None
    assert job.status.value == "succeeded", job.error
    assert job.result is not None
    assert job.result["agents_mode"] == "live"
    assert job.result["dials"] == 0
    assert job.params["settings"]["default_disposition"] == "callback_requested"
    assert job.result["stopped_because"] == "end of the requested duration"
    assert agent_id


def test_live_pacer_hides_other_clients_campaigns(tenant_a: Tenant, tenant_b: Tenant) -> None:
    op_a = operator_for(tenant_a)
    theirs = make_campaign(tenant_b)
    problem_of(start(op_a, theirs, agents_mode="live"), 404, "not-found")


def _dialer_call(tenant: Tenant, campaign_id: uuid.UUID, agent_id: str) -> uuid.UUID:
    """Lease a lead, write its attempt and pop it to the agent, as the live loop does."""
    now = datetime.now(UTC)
    with tenant_session([tenant.client_id]) as session:
        [lease] = lease_leads(
            session=session, campaign_id=campaign_id, now=now, limit=1, worker_id="test"
        )
        attempt, created = record_attempt_start(
            session=session,
            lease_token=lease.lease_token,
            idempotency_key=f"{lease.lease_token}:1",
            now=now,
        )
        assert created
        svc.pop_call(
            session=session,
            agent_id=uuid.UUID(agent_id),
            client_id=tenant.client_id,
            attempt_id=attempt.id,
            lead={"id": str(lease.lead_id)},
            params=CallParameters("+862155550000", lease.phone_e164, skill_group="sales"),
            script=None,
        )
        return attempt.id


def test_dispositions_are_validated_against_the_campaign(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    op = operator_for(tenant_a)
    campaign_id = make_campaign(tenant_a)
    agent_id = create_agent(op)
    assert action(op, agent_id, "sign_in").status_code == 200
    assert action(op, agent_id, "go_ready").status_code == 200
    url = f"/agents/{agent_id}/disposition"

    # no call yet: nothing to disposition
    response = op.http.post(url, json={"disposition": "sale"}, headers=op.headers())
    problem_of(response, 409, "no-dialer-call")
    problem_of(
        action(op, agent_id, "go_not_ready", reason="break", disposition="sale"),
        409,
        "no-dialer-call",
    )

    attempt_id = _dialer_call(tenant_a, campaign_id, agent_id)
    response = op.http.post(url, json={"disposition": "bogus"}, headers=op.headers())
    problem = problem_of(response, 422, "invalid-agent-action")
    assert problem["field"] == "disposition"
    assert "sale" in problem["allowed"]
    assert "abandoned" not in problem["allowed"]  # the dialer's own, never an agent's
    assert "sale" in problem["detail"]
    response = op.http.post(url, json={"disposition": "abandoned"}, headers=op.headers())
    problem_of(response, 422, "invalid-agent-action")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = op.http.post(
        url, json={"disposition": "sale", "callback_at": later}, headers=op.headers()
    )
    assert problem_of(response, 422, "invalid-agent-action")["field"] == "callback_at"
    response = op.http.post(url, json={}, headers=op.headers())
    problem_of(response, 422, "invalid-input")

    # a disposition on an action that takes none, or a bad code on hang-up: nothing changes
    problem = problem_of(
        action(op, agent_id, "hold", disposition="sale"), 422, "invalid-agent-action"
    )
    assert "hang_up" in problem["detail"]
    problem_of(action(op, agent_id, "hang_up", disposition="bogus"), 422, "invalid-agent-action")
    assert op.http.get(f"/agents/{agent_id}", headers=op.headers()).json()["state"] == "on_call"

    response = op.http.post(
        url,
        json={"disposition": "callback_requested", "callback_at": later, "note": "after 3 pm"},
        headers=op.headers(),
    )
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["attempt_id"] == str(attempt_id)
    assert stored["disposition"] == "callback_requested"
    assert stored["applied"] is False

    # another client's operator does not see the agent at all
    op_b = operator_for(tenant_b)
    response = op_b.http.post(url, json={"disposition": "sale"}, headers=op_b.headers())
    problem_of(response, 404, "not-found")

    # the agent changes its mind when hanging up: the last word counts
    response = action(op, agent_id, "hang_up", disposition="sale")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["agent"]["state"] == "wrap_up"
    assert body["disposition"]["disposition"] == "sale"
    with tenant_session([tenant_a.client_id]) as session:
        row = session.exec(
            select(AgentDisposition).where(AgentDisposition.attempt_id == attempt_id)
        ).one()
        assert row.disposition == "sale"
        assert row.callback_at is not None  # kept; only applied with a callback code

    # once the loop has completed the attempt, the disposition is closed
    with tenant_session([tenant_a.client_id]) as session:
        attempt = session.get(CallAttempt, attempt_id)
        assert attempt is not None
        complete_attempt(
            session=session,
            attempt_id=attempt_id,
            outcome=AttemptOutcome(disposition="sale", ended_at=datetime.now(UTC)),
            now=datetime.now(UTC),
        )
    response = op.http.post(url, json={"disposition": "refused"}, headers=op.headers())
    problem = problem_of(response, 409, "disposition-closed")
    assert problem["disposition"] == "sale"
    assert action(op, agent_id, "finish_wrap").status_code == 200
    problem_of(
        op.http.post(url, json={"disposition": "refused"}, headers=op.headers()),
        409,
        "no-dialer-call",
    )
    with tenant_session([tenant_a.client_id]) as session:
        assert session.get(Campaign, campaign_id) is not None


def test_disposition_route_is_documented(api: Any) -> None:
    paths = api.app.openapi()["paths"]
    operation = paths["/agents/{agent_id}/disposition"]["post"]
    assert "409" in operation["responses"]
    assert "422" in operation["responses"]
    action_schema = api.app.openapi()["components"]["schemas"]["AgentActionRequest"]
    assert "disposition" in action_schema["properties"]
    pacer = api.app.openapi()["components"]["schemas"]["PacerStart"]
    assert set(pacer["properties"]) >= {"agents_mode", "amd_policy", "default_disposition"}
