"""Live pacing metrics under a running attended campaign, on real PostgreSQL, in fake time.

The attended loop dials for real agent seats on the simulated gateway (agents are scripted
"desks" acting through the agent service, as in ``test_dialer_attended_pg``). While it runs, a
probe takes :func:`dialer.live.live_snapshot` at the loop's fake time and checks every figure
against an independent SQL count of the tables at that moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from campaign_builders import make_campaign as make_campaign_row
from campaign_builders import make_list

from campaigns.models import BatchCreate, CampaignStatus
from campaigns.service import create_batch, transition_campaign
from core.admin import create_client
from core.db import get_engine, system_session, tenant_session
from dialer import agent_service as svc
from dialer.agents import AgentState
from dialer.attended import AttendedConfig, run_attended
from dialer.distributions import Fixed
from dialer.leadership import LocalLeadership
from dialer.live import live_snapshot
from dialer.models import AgentCreate
from dialer.simgateway import GatewayProfile, ProbabilitySchedule, SimulatedGateway

from helpers import FakeClock

TALK_STATES = ("previewing", "dialing", "on_call", "on_hold", "consulting", "conference")


@pytest.fixture
def live(pg_url: str, pg_engine: Any, configure: Callable[..., None]) -> None:
    configure(database_url=pg_url)


@dataclass
class Desk:
    """A scripted agent: talks ``talk_s``, hangs up with a disposition, wraps ``wrap_s``."""

    seat_id: uuid.UUID
    talk_s: float
    wrap_s: float

    def __call__(self, now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=self.seat_id)
            elapsed = (now - seat.state_since).total_seconds()
            if seat.state is AgentState.ON_CALL and elapsed >= self.talk_s:
                svc.apply_agent_action(
                    session=session,
                    agent_id=self.seat_id,
                    command=svc.HangUp(disposition="sale"),
                    at=now,
                )
            elif seat.state is AgentState.WRAP_UP and elapsed >= self.wrap_s:
                svc.apply_agent_action(
                    session=session, agent_id=self.seat_id, command=svc.FinishWrap(), at=now
                )


def make_campaign(leads: int) -> tuple[uuid.UUID, uuid.UUID]:
    with system_session() as session:
        client_id = create_client(session=session, name=f"live{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(
            session, client_id, numbers=[f"+86137{i:08d}" for i in range(leads)]
        )
        campaign = make_campaign_row(
            session,
            client_id,
            [lead_list.id],
            name="live",
            max_attempts=3,
            pacing_mode="power",
            pacing_params={"ratio": 2.5},
            skill_group="sales",
            caller_id="+862155550000",
            abandon_rate_cap=0.2,
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=3))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return client_id, campaign.id


def make_agent(client_id: uuid.UUID, clock: FakeClock, code: str, *, ready: bool) -> uuid.UUID:
    with system_session() as session:
        seat = svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=code, name=f"座席{code}", skill_groups=["sales"], client_ids=[client_id]
            ),
        )
        svc.apply_agent_action(
            session=session, agent_id=seat.id, command=svc.SignIn(), at=clock.now
        )
        if ready:
            svc.apply_agent_action(
                session=session, agent_id=seat.id, command=svc.GoReady(), at=clock.now
            )
        return seat.id


def gateway(seed: int) -> SimulatedGateway:
    profile = GatewayProfile(
        answer_probability=ProbabilitySchedule.constant(0.6),
        machine_probability=0.0,
        busy_probability=0.1,
        failure_probability=0.0,
        ring_time=Fixed(4.0),
        talk_time=Fixed(3600.0),  # the desks hang up
        message_time=Fixed(3.0),
    )
    return SimulatedGateway(profile, seed=seed)


# --------------------------------------------------------------------------- the SQL


def _one(sql: str, **params: Any) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def expected(campaign_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """Every figure of the snapshot, counted by hand-written SQL on the raw tables."""
    c = str(campaign_id)
    in_flight = _one(
        "select count(*) from callattempt where campaign_id = :c and status = 'started'", c=c
    )
    talking = _talking(c)  # from the seats, not from the pop events
    connected = _one(
        "select count(*) from callattempt a where a.campaign_id = :c and a.status = 'started'"
        " and exists (select 1 from agentevent e where e.attempt_id = a.id"
        " and e.kind = 'call_connected')",
        c=c,
    )
    waiting = _one(  # answered (noted as it happens), no agent has taken it yet
        "select count(*) from callattempt a where a.campaign_id = :c and a.status = 'started'"
        " and a.answered_at is not null and not exists (select 1 from agentevent e"
        " where e.attempt_id = a.id and e.kind = 'call_connected')",
        c=c,
    )
    agents: dict[str, int] = {}
    with get_engine().connect() as conn:
        for state, count in conn.execute(
            sa.text("select state, count(*) from agentseat group by state")
        ):
            agents[state] = int(count)
    ready = agents.get("ready", 0)
    talking_agents = sum(agents.get(s, 0) for s in TALK_STATES)
    wrap = agents.get("wrap_up", 0)
    window_start = now - timedelta(days=30)
    zone = ZoneInfo("Asia/Shanghai")
    day = now.astimezone(zone).date()
    day_start = datetime.combine(day, time(), tzinfo=zone)
    day_end = day_start + timedelta(days=1)
    live_answer = (
        "campaign_id = :c and amd_result = 'human'"
        " and (abandoned or agent_connected_at is not null)"
    )
    answered_window = _one(
        f"select count(*) from callattempt where {live_answer}"
        " and ended_at >= :s and ended_at <= :n",
        c=c,
        s=window_start,
        n=now,
    )
    abandoned_window = _one(
        f"select count(*) from callattempt where {live_answer} and abandoned"
        " and ended_at >= :s and ended_at <= :n",
        c=c,
        s=window_start,
        n=now,
    )
    attempts_today = _one(
        "select count(*) from callattempt where campaign_id = :c"
        " and dialed_at >= :a and dialed_at < :b",
        c=c,
        a=day_start,
        b=day_end,
    )
    answered_today = _one(
        "select count(*) from callattempt where campaign_id = :c"
        " and dialed_at >= :a and dialed_at < :b and answered_at is not null",
        c=c,
        a=day_start,
        b=day_end,
    )
    valid_today = _one(
        "select count(*) from callattempt where campaign_id = :c"
        " and dialed_at >= :a and dialed_at < :b"
        " and (agent_connected_at is not null or outcome = 'contact') and talk_s > 15",
        c=c,
        a=day_start,
        b=day_end,
    )
    callable_now = _one(
        "select count(*) from campaignlead l join campaign k on k.id = l.campaign_id"
        " where l.campaign_id = :c and l.state in ('new', 'scheduled')"
        " and (l.next_attempt_at is null or l.next_attempt_at <= :n)"
        " and l.attempts < k.max_attempts and l.batch_id is not null",
        c=c,
        n=now,
    )
    callbacks = _one(
        "select count(*) from campaignlead where campaign_id = :c and callback_at is not null"
        " and state <> 'final'",
        c=c,
    )
    callbacks_due = _one(
        "select count(*) from campaignlead where campaign_id = :c and callback_at <= :n"
        " and state <> 'final'",
        c=c,
        n=now,
    )
    at_work = ready + talking_agents + wrap
    return {
        "calls": {
            "in_flight": in_flight,
            "talking": talking,
            "waiting_for_agent": waiting,
            "ringing": in_flight - connected - waiting,
        },
        "agents": {
            "ready": ready,
            "talking": talking_agents,
            "wrap_up": wrap,
            "not_ready": agents.get("not_ready", 0) + agents.get("signed_in", 0),
            "signed_out": agents.get("signed_out", 0),
        },
        "dial_level": in_flight / at_work if at_work else None,
        "abandon": (answered_window, abandoned_window),
        "today": {
            "attempts": attempts_today,
            "answered": answered_today,
            "valid_calls": valid_today,
        },
        "hopper": {
            "callable_now": callable_now,
            "callbacks_scheduled": callbacks,
            "callbacks_due": callbacks_due,
        },
    }


def _talking(c: str) -> int:
    """In-flight attempts an agent is on: a seat in a call state whose soft-phone holds it."""
    placeholders = ", ".join(f"'{s}'" for s in TALK_STATES)
    return _one(
        "select count(*) from callattempt a join agentseat s"
        " on cast(s.snapshot as jsonb) ->> 'call_id' = replace(cast(a.id as text), '-', '')"
        f" where a.campaign_id = :c and a.status = 'started' and s.state in ({placeholders})",
        c=c,
    )


@dataclass
class Probe:
    """Takes a snapshot every ``every_s`` of fake time and checks it against the SQL."""

    client_id: uuid.UUID
    campaign_id: uuid.UUID
    holder: str
    every_s: float = 7.0
    next_at: datetime | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, now: datetime) -> None:
        if self.next_at is not None and now < self.next_at:
            return
        self.next_at = now + timedelta(seconds=self.every_s)
        with tenant_session([self.client_id]) as session:
            snap = live_snapshot(
                session=session, client_id=self.client_id, campaign_id=self.campaign_id, now=now
            )
        check(snap, expected(self.campaign_id, now), now)
        assert snap["pacer"]["leader"] == self.holder
        assert snap["pacer"]["healthy"] is True
        self.seen.append(snap)


def check(snap: dict[str, Any], want: dict[str, Any], now: datetime) -> None:
    assert snap["at"] == now.isoformat().replace("+00:00", "Z")
    assert snap["state"] == "piloting"
    assert snap["calls"] == want["calls"]
    assert snap["agents"]["simulated"] is False  # real seats
    agents = {k: v for k, v in snap["agents"].items() if k not in ("list", "simulated")}
    assert agents == want["agents"]
    assert len(snap["agents"]["list"]) == sum(want["agents"].values())
    assert snap["pacing"] == {
        "mode": "power",
        "dial_level": want["dial_level"],
        "dial_ratio_setting": 2.5,
    }
    answered, abandoned = want["abandon"]
    abandon = snap["abandon"]
    assert (abandon["answered"], abandon["abandoned"]) == (answered, abandoned)
    assert abandon["rate"] == (abandoned / answered if answered else None)
    assert (abandon["rule"], abandon["window"], abandon["cap"]) == ("fcc", "30d", 0.2)
    today = {k: snap["today"][k] for k in ("attempts", "answered", "valid_calls")}
    assert today == want["today"]
    attempts = want["today"]["attempts"]
    assert snap["answer_rate_today"] == (want["today"]["answered"] / attempts if attempts else None)
    assert snap["hopper"] == want["hopper"]


def test_live_snapshot_matches_the_tables_while_the_campaign_dials(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=40)
    clock = FakeClock()
    seats = [make_agent(client_id, clock, f"L{i:03d}", ready=True) for i in range(3)]
    make_agent(client_id, clock, "L900", ready=False)  # signed in, never ready
    clock.desks.extend(Desk(seat, talk_s=20.0 + 5 * i, wrap_s=3.0) for i, seat in enumerate(seats))
    holder = f"live-test-{uuid.uuid4().hex[:6]}"
    probe = Probe(client_id, campaign_id, holder)
    clock.desks.append(probe)

    result = run_attended(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, holder),
        gateway=gateway(seed=5),
        config=AttendedConfig(duration_s=150, drain_limit_s=60),
        clock=clock,
        sleep=clock.sleep,
    )

    assert result.dials > 10
    assert len(probe.seen) > 10
    # the run went through the states the live view shows
    assert any(s["calls"]["talking"] > 0 for s in probe.seen)
    assert any(s["calls"]["ringing"] > 0 for s in probe.seen)
    # answered calls no agent has yet are counted as they wait, not only once they end
    assert any(s["calls"]["waiting_for_agent"] > 0 for s in probe.seen)
    assert any(s["agents"]["wrap_up"] > 0 for s in probe.seen)
    assert any(s["abandon"]["abandoned"] > 0 for s in probe.seen)
    assert any(s["today"]["valid_calls"] > 0 for s in probe.seen)
    assert probe.seen[-1]["today"]["attempts"] > probe.seen[0]["today"]["attempts"]

    # after the run: nothing in flight, and the pacer is gone but remembered
    with tenant_session([client_id]) as session:
        after = live_snapshot(
            session=session, client_id=client_id, campaign_id=campaign_id, now=clock.now
        )
    check(after, expected(campaign_id, clock.now), clock.now)
    assert after["calls"]["in_flight"] == 0
    assert after["today"]["attempts"] == result.dials
    assert after["pacer"]["leader"] is None
    assert after["pacer"]["healthy"] is False
    assert after["pacer"]["last_holder"] == holder
    assert after["pacer"]["last_heartbeat"] is not None


def test_another_clients_campaign_is_not_found(live: None) -> None:
    from core.errors import NotFound

    client_id, campaign_id = make_campaign(leads=1)
    other, _ = make_campaign(leads=1)
    now = datetime.now(UTC)
    for scope, asked_for in (([other], other), ([client_id], other)):
        with tenant_session(scope) as session, pytest.raises(NotFound):
            live_snapshot(session=session, client_id=asked_for, campaign_id=campaign_id, now=now)
