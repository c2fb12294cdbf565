"""Client A's key can never read, list, change or delete client B's objects: always 404.

The test walks every route the app has. A route with path parameters must have a factory
below that creates a client-B object for each parameter, so a new route cannot escape the
check: it fails here until someone says how to make its objects.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from survey_builders import interview_for, questionnaire_for, version_for

from helpers import Tenant

PUBLIC_ROUTES = {"/healthz", "/readyz"}


def _job_for(tenant: Tenant) -> dict[str, str]:
    response = tenant.http.post("/jobs/summary", headers=tenant.headers())
    assert response.status_code == 202, response.text
    return {"job_id": response.json()["id"]}


def _list_for(tenant: Tenant) -> dict[str, str]:
    from core.queue import drain_embedded

    response = tenant.http.post(
        "/lists",
        headers=tenant.headers(),
        files={"file": ("b.csv", b"name,phone\nb,13812345678\n", "text/csv")},
    )
    assert response.status_code == 202, response.text
    drain_embedded()
    return {"list_id": response.json()["id"]}


def _suppression_entry_for(tenant: Tenant) -> dict[str, str]:
    added = tenant.http.post(
        "/suppression", headers=tenant.headers(), json={"numbers": ["13912345678"]}
    )
    assert added.status_code == 200, added.text
    entries = tenant.http.get("/suppression", headers=tenant.headers()).json()
    return {"entry_id": entries[0]["id"]}


def _campaign_objects_for(tenant: Tenant) -> dict[str, str]:
    """A campaign with a one-lead list and a pilot batch, written through the services."""
    from sqlmodel import select

    from campaigns.models import (
        BatchCreate,
        CampaignCreate,
        CampaignLead,
        Lead,
        LeadList,
        ListStatus,
    )
    from campaigns.service import create_batch, create_campaign, list_dispositions
    from core.db import tenant_session

    with tenant_session([tenant.client_id]) as session:
        lead_list = LeadList(
            client_id=tenant.client_id, name="l", filename="l.csv", status=ListStatus.ready
        )
        session.add(lead_list)
        session.flush()
        lead = Lead(
            client_id=tenant.client_id,
            list_id=lead_list.id,
            row_number=2,
            phone_e164="+8613812345678",
            phone_timezones=["Asia/Shanghai"],
        )
        session.add(lead)
        session.flush()
        campaign = create_campaign(
            session=session,
            client_id=tenant.client_id,
            campaign_in=CampaignCreate(name="b", list_ids=[lead_list.id]),
        )
        batch = create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=1))
        disposition = list_dispositions(session=session, campaign_id=campaign.id)[0]
        attempt = _recorded_attempt(session, campaign.id, lead.id, tenant.client_id)
        campaign_lead = session.exec(
            select(CampaignLead.id).where(CampaignLead.campaign_id == campaign.id)
        ).one()
        ids = {
            "campaign_lead_id": str(campaign_lead),
            "attempt_id": str(attempt),
            "campaign_id": str(campaign.id),
            "batch_id": str(batch.id),
            "disposition_id": str(disposition.id),
            "lead_id": str(lead.id),
        }
    return ids


def _recorded_attempt(
    session: Any, campaign_id: uuid.UUID, lead_id: uuid.UUID, client_id: uuid.UUID
) -> uuid.UUID:
    """A call attempt of the campaign with a (tiny) recording."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from campaigns.models import CallAttempt
    from dialer.recordings import store_recording
    from dialer.sip.media import write_wav

    attempt = CallAttempt(
        client_id=client_id,
        campaign_id=campaign_id,
        lead_id=lead_id,
        attempt_no=1,
        idempotency_key=f"iso-{uuid.uuid4().hex}",
        number_dialed="+8613812345678",
    )
    session.add(attempt)
    session.flush()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "call.wav"
        write_wav(path, np.zeros(800, dtype=np.int16))
        store_recording(session=session, attempt=attempt, path=path, duration_s=0.1)
    return attempt.id


def _agent_for(tenant: Tenant) -> dict[str, str]:
    """An agent serving only this client, on one of its calls (the pop holds its lead data)."""
    from core.db import system_session
    from dialer.agent_service import GoReady, SignIn, apply_agent_action, create_agent, pop_call
    from dialer.gateway import CallParameters
    from dialer.models import AgentCreate

    with system_session() as session:
        seat = create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=f"iso{uuid.uuid4().hex[:6]}",
                name="b agent",
                skill_groups=["sales"],
                client_ids=[tenant.client_id],
            ),
        )
        for command in (SignIn(), GoReady()):
            apply_agent_action(session=session, agent_id=seat.id, command=command)
        pop_call(
            session=session,
            agent_id=seat.id,
            client_id=tenant.client_id,
            attempt_id=uuid.uuid4(),
            lead={"id": "b-lead", "name": "b"},
            params=CallParameters("+862155550000", "+8613812345678", skill_group="sales"),
            script=None,
        )
        return {"agent_id": str(seat.id)}


def _feasibility_run_for(tenant: Tenant) -> dict[str, str]:
    """A finished feasibility report of client B (made through the service)."""
    import numpy as np

    from core.db import tenant_session
    from core.queue import drain_embedded
    from feasibility.service import create_run
    from feasibility.synthetic import dial_leads, make_lead_list

    synthetic = make_lead_list(400, seed=1)
    attempts = dial_leads(synthetic, np.arange(60), max_attempts=3, seed=1)
    with tenant_session([tenant.client_id]) as session:
        run = create_run(
            session=session,
            client_id=tenant.client_id,
            attempts=attempts.to_dict(orient="records"),
            leads=synthetic.leads.to_dict(orient="records"),
        )
        run_id = str(run.id)
    drain_embedded()
    return {"run_id": run_id}


def _report_objects_for(tenant: Tenant) -> dict[str, str]:
    """A generated report, a statement and an outage of client B (reports domain)."""
    from datetime import UTC, date, datetime

    from core.audit import Actor
    from core.db import tenant_session
    from reports.availability import OutageIn, record_outage
    from reports.models import ContractKind
    from reports.statements import ContractIn, generate_statement, set_contract

    report = tenant.http.post(
        "/reports",
        headers=tenant.headers(),
        json={"kind": "detail", "period": "day", "start": "2026-11-02", "fmt": "csv"},
    )
    assert report.status_code == 201, report.text
    campaign_id = uuid.UUID(_campaign_objects_for(tenant)["campaign_id"])
    with tenant_session([tenant.client_id]) as session:
        set_contract(
            session=session,
            campaign_id=campaign_id,
            contract_in=ContractIn(starts_on=date(2026, 10, 1)),
        )
        statement = generate_statement(
            session=session,
            client_id=tenant.client_id,
            contract=ContractKind.service,
            month=date(2026, 10, 1),
            campaign_id=campaign_id,
            actor=Actor(name="b"),
        )
        outage = record_outage(
            session=session,
            outage_in=OutageIn(
                started_at=datetime(2026, 11, 2, tzinfo=UTC), client_id=tenant.client_id
            ),
            actor=Actor(name="b"),
        )
        return {
            "report_id": report.json()["id"],
            "statement_id": str(statement.id),
            "outage_id": str(outage.id),
        }


# parameter name -> builder of client-B objects: returns {param: id, ...}
OBJECT_FACTORIES: dict[str, Callable[[Tenant], dict[str, str]]] = {
    "job_id": _job_for,
    "list_id": _list_for,
    "entry_id": _suppression_entry_for,
    "questionnaire_id": questionnaire_for,
    "version_id": version_for,
    "interview_id": interview_for,
    "campaign_id": _campaign_objects_for,
    "batch_id": _campaign_objects_for,
    "disposition_id": _campaign_objects_for,
    "lead_id": _campaign_objects_for,
    "attempt_id": _campaign_objects_for,
    "campaign_lead_id": _campaign_objects_for,
    "agent_id": _agent_for,
    "run_id": _feasibility_run_for,
    "report_id": _report_objects_for,
    "statement_id": _report_objects_for,
    "outage_id": _report_objects_for,
}


@dataclass(frozen=True)
class Route:
    path: str
    methods: frozenset[str]


def _routes(app: Any) -> list[Route]:
    """Every documented route (the OpenAPI schema is the stable inventory across versions)."""
    paths = app.openapi()["paths"]
    routes = [
        Route(path, frozenset(m.upper() for m in ops))
        for path, ops in paths.items()
        if path not in PUBLIC_ROUTES
    ]
    assert len(routes) >= 10, "the route inventory looks empty: the test would check nothing"
    return routes


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: ids[m.group(1)], path)


def test_every_route_hides_other_clients_objects(
    api: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    from core.queue import drain_embedded

    routes = _routes(api.app)
    params = {p for r in routes for p in re.findall(r"\{(\w+)", r.path)}
    missing = params - set(OBJECT_FACTORIES)
    assert not missing, f"add OBJECT_FACTORIES entries for route parameters {missing}"

    b_ids: dict[str, str] = {}
    # one call per distinct factory, so nested ids (a campaign's batch) belong together
    for factory in dict.fromkeys(OBJECT_FACTORIES[name] for name in sorted(params)):
        b_ids.update(factory(tenant_b))
    drain_embedded()
    secrets = {str(tenant_b.client_id), *b_ids.values()}

    # A's client key and A's staff (operator) key alike get 404 for B's objects
    checked = 0
    for caller in (tenant_a, _staff(tenant_a)):
        for route in routes:
            for method in route.methods - {"HEAD", "OPTIONS"}:
                url = _fill(route.path, b_ids)
                response = caller.http.request(method, url, headers=caller.headers(), json={})
                if "{" in route.path:
                    assert response.status_code == 404, (method, route.path, response.text)
                    assert response.json()["type"].endswith("/not-found")
                # whatever A gets back never mentions B's objects (the problem's `instance`
                # is A's own request path, so it is left out)
                body = response.text
                if response.headers.get("content-type", "").startswith("application/problem+json"):
                    problem = response.json()
                    problem.pop("instance", None)
                    body = json.dumps(problem)
                leaked = [s for s in secrets if s in body]
                assert not leaked, (method, route.path, leaked)
                checked += 1
    assert checked >= 2 * len(routes)

    # and B's objects are still intact and visible to B (staff-only routes, such as agents,
    # with B's operator key; streams asked to return what is pending and close)
    b_staff = _staff(tenant_b)
    for route in routes:
        if "GET" in route.methods and "{" in route.path:
            url = _fill(route.path, b_ids) + (
                "?once=true"
                if route.path.endswith(("/events", "/stream"))
                else OWNER_QUERY.get(route.path, "")
            )
            response = tenant_b.http.get(url, headers=tenant_b.headers())
            if response.status_code == 403:
                response = b_staff.http.get(url, headers=b_staff.headers())
            assert response.status_code == 200, (route.path, response.text)


#: Query strings the owner's call needs where a route has required inputs of its own.
OWNER_QUERY = {
    # a fresh client has no past campaigns to take the rates from
    "/campaigns/{campaign_id}/pilot-plan": "?contact_rate=0.4&valid_call_share=0.75",
}


def _staff(tenant: Tenant) -> Tenant:
    """An operator key granted only this tenant's client."""
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role

    with system_session() as session:
        _key, plain = issue_key(
            session=session,
            name="operator",
            role=Role.operator,
            client_refs=[str(tenant.client_id)],
        )
    return Tenant(client_id=tenant.client_id, key=plain, http=tenant.http)


def test_unknown_ids_and_foreign_ids_look_the_same(
    api: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    foreign = _job_for(tenant_b)["job_id"]
    unknown = str(uuid.uuid4())
    r1 = tenant_a.http.get(f"/jobs/{foreign}", headers=tenant_a.headers())
    r2 = tenant_a.http.get(f"/jobs/{unknown}", headers=tenant_a.headers())
    assert r1.status_code == r2.status_code == 404
    assert r1.json()["title"] == r2.json()["title"]
