"""The live metrics API: snapshot, SSE stream woken by commits, tenancy, audit, OpenAPI.

The stream tests read a real uvicorn server with httpx, with the stream's periodic refresh
pushed out to two minutes: an event that arrives within the read deadline after a commit can
only have been woken by it (Redis pub/sub with PostgreSQL, in process on the embedded SQLite
default). The agent soft-phone stream is checked the same way.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from campaign_builders import make_campaign, make_list
from redis import Redis
from sqlmodel import select

from campaigns.hopper import lease_leads, record_attempt_start
from campaigns.models import BatchCreate, CampaignStatus
from campaigns.service import create_batch, transition_campaign
from core.admin import issue_key
from core.db import system_session, tenant_session
from core.models import AuditEvent, Role
from dialer import agent_service as svc
from dialer.models import AgentCreate

from helpers import Tenant, live_server, make_tenant

READ_DEADLINE_S = 30.0
MIN_INTERVAL_WAIT_S = 0.5


def dialing_campaign(client_id: uuid.UUID, leads: int = 3) -> uuid.UUID:
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, leads)
        campaign = make_campaign(
            session, client_id, [lead_list.id], skill_group="sales", pacing_mode="progressive"
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return campaign.id


def start_one_attempt(client_id: uuid.UUID, campaign_id: uuid.UUID) -> uuid.UUID:
    """Lease a lead and write its attempt row, in one commit (as a dial loop does)."""
    now = datetime.now(UTC)
    with tenant_session([client_id]) as session:
        [lease] = lease_leads(
            session=session, campaign_id=campaign_id, now=now, limit=1, worker_id="test"
        )
        attempt, created = record_attempt_start(
            session=session, lease_token=lease.lease_token, idempotency_key="k1", now=now
        )
        assert created
        return attempt.id


def make_agent(client_id: uuid.UUID) -> uuid.UUID:
    with system_session() as session:
        seat = svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=f"V{uuid.uuid4().hex[:6]}",
                name="李娜",
                skill_groups=["sales"],
                client_ids=[client_id],
            ),
        )
        for command in (svc.SignIn(), svc.GoReady()):
            svc.apply_agent_action(session=session, agent_id=seat.id, command=command)
        return seat.id


def operator_key(client_id: uuid.UUID) -> str:
    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="ops", role=Role.operator, client_refs=[str(client_id)]
        )
    return plain


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Events of a streaming response as {event, id, data}; comments and retry skipped."""
    fields: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
            continue
        if line.startswith(":") or line.startswith("retry:"):
            continue
        name, _, value = line.partition(": ")
        fields[name] = json.loads(value) if name == "data" else value


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(params=["postgres+redis", "sqlite-embedded"])
def server(
    request: pytest.FixtureRequest,
    configure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str | None]]:
    """A uvicorn server on the backend; the streams' periodic refresh set to 2 minutes."""
    from api.main import create_app
    from api.routes import agents, live

    if request.param == "postgres+redis":
        database_url = request.getfixturevalue("pg_url")
        request.getfixturevalue("pg_engine")  # tables emptied afterwards
        redis_url: str | None = request.getfixturevalue("redis_url")
    else:
        database_url, redis_url = request.getfixturevalue("sqlite_url"), None
    configure(database_url=database_url, redis_url=redis_url)
    monkeypatch.setattr(live, "MAX_INTERVAL_S", 120.0)
    monkeypatch.setattr(agents, "RECHECK_SECONDS", 120.0)
    monkeypatch.setattr(agents, "KEEPALIVE_SECONDS", 120.0)
    with live_server(create_app()) as base:
        yield base, redis_url


def subscriber_listening(redis_url: str | None) -> Callable[[], bool]:
    """Whether this process's wake-up subscriber listens (always, without Redis)."""
    if redis_url is None:
        return lambda: True
    redis = Redis.from_url(redis_url)
    return lambda: int(redis.pubsub_numpat()) >= 1


def test_stream_sends_at_once_and_is_woken_by_a_new_attempt(
    server: tuple[str, str | None],
) -> None:
    base, redis_url = server
    tenant = make_tenant(None, "live")
    campaign_id = dialing_campaign(tenant.client_id)
    timeout = httpx.Timeout(10.0, read=READ_DEADLINE_S)
    with (
        httpx.Client(base_url=base, timeout=timeout) as http,
        http.stream(
            "GET", f"/campaigns/{campaign_id}/live/stream", headers=tenant.headers()
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        first = next(events)
        assert first["event"] == "live"
        assert first["data"]["campaign_id"] == str(campaign_id)
        assert first["data"]["today"]["attempts"] == 0
        assert first["data"]["calls"]["in_flight"] == 0
        assert first["data"]["hopper"]["callable_now"] == 3
        wait_for(subscriber_listening(redis_url), "the wake-up subscriber")

        start_one_attempt(tenant.client_id, campaign_id)

        # the refresh is 2 minutes away: only the commit's wake-up can bring this in time
        second = next(events)
        assert second["event"] == "live"
        assert second["data"]["today"]["attempts"] == 1
        assert second["data"]["calls"]["in_flight"] == 1
        assert second["data"]["calls"]["ringing"] == 1
        assert second["data"]["hopper"]["callable_now"] == 2


def test_agent_stream_is_woken_by_the_agents_action(server: tuple[str, str | None]) -> None:
    base, redis_url = server
    tenant = make_tenant(None, "softphone")
    seat_id = make_agent(tenant.client_id)
    headers = {"Authorization": f"Bearer {operator_key(tenant.client_id)}"}
    timeout = httpx.Timeout(10.0, read=READ_DEADLINE_S)
    with (
        httpx.Client(base_url=base, timeout=timeout) as http,
        http.stream("GET", f"/agents/{seat_id}/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        events = sse_events(response)
        snapshot = next(events)
        assert snapshot["event"] == "snapshot"
        assert snapshot["data"]["agent"]["state"] == "ready"
        wait_for(subscriber_listening(redis_url), "the wake-up subscriber")

        with system_session() as session:
            svc.apply_agent_action(
                session=session, agent_id=seat_id, command=svc.GoNotReady(reason="break")
            )

        changed = next(events)
        assert changed["event"] == "state_changed"
        assert changed["data"]["to"] == "not_ready"
        assert int(changed["id"]) == int(snapshot["id"]) + 1


# --------------------------------------------------------------------------- through the app


def test_live_snapshot_route_and_agent_list_visibility(tenant_a: Tenant) -> None:
    campaign_id = dialing_campaign(tenant_a.client_id)
    seat_id = make_agent(tenant_a.client_id)
    response = tenant_a.http.get(f"/campaigns/{campaign_id}/live", headers=tenant_a.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "piloting"
    assert body["pacing"] == {"mode": "progressive", "dial_level": 0.0, "dial_ratio_setting": 1.0}
    assert body["agents"]["ready"] == 1
    assert body["agents"]["list"] == []  # a client key does not see the outsourcer's staff
    assert body["abandon"]["rate"] is None  # no live answer yet
    assert body["answer_rate_today"] is None
    assert body["pacer"] == {
        "leader": None,
        "last_heartbeat": None,
        "last_holder": None,
        "healthy": False,
        "stopped_because": None,
    }
    ops = {"Authorization": f"Bearer {operator_key(tenant_a.client_id)}"}
    listed = tenant_a.http.get(f"/campaigns/{campaign_id}/live", headers=ops).json()
    [agent] = listed["agents"]["list"]
    assert agent["agent_id"] == str(seat_id)
    assert agent["state"] == "ready"
    assert agent["name"] == "李娜"


def test_another_clients_campaign_is_404(tenant_a: Tenant, tenant_b: Tenant) -> None:
    campaign_b = dialing_campaign(tenant_b.client_id)
    for url in (f"/campaigns/{campaign_b}/live", f"/campaigns/{campaign_b}/live/stream?once=1"):
        response = tenant_a.http.get(url, headers=tenant_a.headers())
        assert response.status_code == 404, url
        assert response.headers["content-type"].startswith("application/problem+json")
    with system_session() as session:
        audited = session.exec(
            select(AuditEvent).where(AuditEvent.action == "campaign.live.stream")
        ).all()
    assert audited == []  # nothing was streamed, nothing is audited


def test_opening_a_stream_is_audited(tenant_a: Tenant) -> None:
    campaign_id = dialing_campaign(tenant_a.client_id)
    seat_id = make_agent(tenant_a.client_id)
    ops = {"Authorization": f"Bearer {operator_key(tenant_a.client_id)}"}
    response = tenant_a.http.get(
        f"/campaigns/{campaign_id}/live/stream?once=true", headers=tenant_a.headers()
    )
    assert response.status_code == 200
    [event] = [block for block in response.text.split("\n\n") if block.strip()]
    assert event.startswith("event: live\ndata: {")
    assert tenant_a.http.get(f"/agents/{seat_id}/events?once=true", headers=ops).status_code == 200
    with system_session() as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.client_id == tenant_a.client_id)
        ).all()
    by_action = {row.action: row for row in rows}
    live_row = by_action["campaign.live.stream"]
    assert live_row.object_id == str(campaign_id)
    assert live_row.actor_name == "alpha key"
    agent_row = by_action["agent.events.stream"]
    assert agent_row.object_id == str(seat_id)
    assert agent_row.actor_name == "ops"


def test_routes_are_documented(tenant_a: Tenant) -> None:
    schema = tenant_a.http.get("/openapi.json").json()
    live = schema["paths"]["/campaigns/{campaign_id}/live"]["get"]["responses"]["200"]
    assert live["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LiveMetrics"
    }
    stream = schema["paths"]["/campaigns/{campaign_id}/live/stream"]["get"]["responses"]
    item = stream["200"]["content"]["text/event-stream"]["itemSchema"]["properties"]
    assert item["data"]["contentSchema"] == {"$ref": "#/components/schemas/LiveMetrics"}
    metrics = schema["components"]["schemas"]["LiveMetrics"]["properties"]
    assert set(metrics) == {
        "campaign_id",
        "state",
        "at",
        "pacing",
        "calls",
        "agents",
        "abandon",
        "answer_rate_today",
        "hopper",
        "today",
        "pacer",
    }


def test_open_streams_do_not_take_the_admission_slots(
    configure: Callable[..., None], pg_url: str, pg_engine: Any, redis_url: str
) -> None:
    """An operator's console keeps streams open for hours: with one admission slot and two
    streams open, short requests are still answered at once (before: the first stream held
    the only slot, the second stream and every request waited, then got 503)."""
    from api.main import create_app

    configure(
        database_url=pg_url,
        redis_url=redis_url,
        api_max_in_flight="1",
        api_queue_timeout_s="3",
        db_pool_size="4",
        db_max_overflow="0",
    )
    tenant = make_tenant(None, "streams")
    campaign_id = dialing_campaign(tenant.client_id)
    timeout = httpx.Timeout(10.0, read=READ_DEADLINE_S)
    with (
        live_server(create_app()) as base,
        httpx.Client(base_url=base, timeout=timeout) as http,
        http.stream(
            "GET", f"/campaigns/{campaign_id}/live/stream", headers=tenant.headers()
        ) as first,
        http.stream(
            "GET", f"/campaigns/{campaign_id}/live/stream", headers=tenant.headers()
        ) as second,
    ):
        assert first.status_code == 200, first.read()
        assert second.status_code == 200, second.read()
        assert next(sse_events(first))["event"] == "live"
        assert next(sse_events(second))["event"] == "live"
        for _ in range(5):
            answer = http.get(f"/campaigns/{campaign_id}/live", headers=tenant.headers())
            assert answer.status_code == 200, answer.text


def test_viewers_of_one_campaign_share_one_snapshot_per_wake_up(
    configure: Callable[..., None],
    pg_url: str,
    pg_engine: Any,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two open streams of one campaign, woken by one commit, cost one snapshot between them
    (before: one each); both still see the commit, and another client's key is still 404."""
    from api.main import create_app
    from api.routes import live

    configure(database_url=pg_url, redis_url=redis_url)
    monkeypatch.setattr(live, "MAX_INTERVAL_S", 120.0)
    computed: list[uuid.UUID] = []
    real_snapshot = live.live_snapshot

    def counting_snapshot(**kwargs: Any) -> dict[str, Any]:
        computed.append(kwargs["campaign_id"])
        return real_snapshot(**kwargs)

    monkeypatch.setattr(live, "live_snapshot", counting_snapshot)
    tenant, other = make_tenant(None, "share-a"), make_tenant(None, "share-b")
    campaign_id = dialing_campaign(tenant.client_id)
    timeout = httpx.Timeout(10.0, read=READ_DEADLINE_S)
    url = f"/campaigns/{campaign_id}/live/stream"
    with (
        live_server(create_app()) as base,
        httpx.Client(base_url=base, timeout=timeout) as http,
        http.stream("GET", url, headers=tenant.headers()) as first,
        http.stream("GET", url, headers=tenant.headers()) as second,
    ):
        assert first.status_code == 200, first.read()
        assert second.status_code == 200, second.read()
        events = [sse_events(first), sse_events(second)]
        assert [next(e)["data"]["calls"]["in_flight"] for e in events] == [0, 0]
        wait_for(subscriber_listening(redis_url), "the wake-up subscriber")
        # an earlier wake-up (the subscriber re-reads once subscribed) has been served
        time.sleep(MIN_INTERVAL_WAIT_S)
        computed.clear()
        start_one_attempt(tenant.client_id, campaign_id)
        for stream in events:
            assert any(event["data"]["calls"]["in_flight"] == 1 for event in stream)
        assert computed == [campaign_id]
        stranger = http.get(f"{url}?once=1", headers=other.headers())
        assert stranger.status_code == 404, stranger.text
        assert computed == [campaign_id]
