"""The attended live loop (dialer/attended.py) driving the SIP gateway end to end, on real
PostgreSQL, in real time: a five-lead pilot against SIPp callees (the number decides what each
does, scenarios/pilot.xml) with one agent whose phone is a baresip softphone."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from campaign_builders import make_campaign as make_campaign_row
from campaign_builders import make_list
from sip.sip_peers import Baresip, MakeGateway, StartSipp, tone
from sqlmodel import select

from campaigns.models import AttemptStatus, BatchCreate, CallAttempt, CampaignStatus
from campaigns.service import create_batch, transition_campaign
from core.admin import create_client
from core.db import system_session, tenant_session
from dialer import agent_service as svc
from dialer.agents import AgentAction, AgentState
from dialer.attended import AttendedConfig, run_attended
from dialer.leadership import LocalLeadership
from dialer.models import AgentCreate

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def live(pg_url: str, pg_engine: Any, configure: Callable[..., None]) -> None:
    configure(database_url=pg_url)


class LoopClock:
    """The loop's datetime clock, and the same instant as seconds since the loop started (the
    loop reads its clock first when it starts) for the gateway's event stamps."""

    def __init__(self) -> None:
        self.epoch: datetime | None = None

    def __call__(self) -> datetime:
        now = datetime.now(UTC)
        if self.epoch is None:
            self.epoch = now
        return now

    def seconds(self) -> float:
        if self.epoch is None:
            return 0.0
        return (datetime.now(UTC) - self.epoch).total_seconds()


def test_a_small_pilot_over_sip_gets_every_disposition_right(
    live: None,
    sipp: StartSipp,
    make_gateway: MakeGateway,
    baresip: Baresip,
    tmp_path: Path,
) -> None:
    numbers = [f"+861390000000{i}" for i in range(5)]
    with system_session() as session:
        client_id = create_client(session=session, name=f"c{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, numbers=numbers)
        campaign = make_campaign_row(
            session,
            client_id,
            [lead_list.id],
            name="sip pilot",
            max_attempts=3,
            pacing_mode="progressive",
            skill_group="sales",
            caller_id="+862155550000",
            max_ring_s=15,
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=5, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        campaign_id = campaign.id
    with system_session() as session:
        seat = svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code="S001",
                name="座席",
                skill_groups=["sales"],
                client_ids=[client_id],
                phone_uri=baresip.address,  # called once by the loop when the run starts
            ),
        )
        seat_id = seat.id
        svc.apply_agent_action(
            session=session, agent_id=seat_id, action=AgentAction.SIGN_IN, at=datetime.now(UTC)
        )
        svc.apply_agent_action(
            session=session, agent_id=seat_id, action=AgentAction.GO_READY, at=datetime.now(UTC)
        )

    peer = sipp("pilot.xml", calls=5)
    clock = LoopClock()
    harbour = tone(tmp_path / "safe-harbour.wav", 440.0, 1.0)
    gw = make_gateway(peer.port, messages={"safe_harbour": harbour})
    gw.clock = clock.seconds  # stamp events on the loop's own time line

    def desk() -> None:
        """The agent: hangs up 1.5 s into a call with "sale", finishes wrap-up after 0.5 s."""
        now = datetime.now(UTC)
        with system_session() as session:
            agent = svc.get_agent(session=session, agent_id=seat_id)
            elapsed = (now - agent.state_since).total_seconds()
            if agent.state is AgentState.ON_CALL and elapsed >= 3.0:
                svc.apply_agent_action(
                    session=session,
                    agent_id=seat_id,
                    action=AgentAction.HANG_UP,
                    at=now,
                    disposition="sale",
                )
            elif agent.state is AgentState.WRAP_UP and elapsed >= 0.5:
                svc.apply_agent_action(
                    session=session, agent_id=seat_id, action=AgentAction.FINISH_WRAP, at=now
                )

    def sleep(seconds: float) -> None:
        desk()
        time.sleep(min(seconds, 0.05))  # the loop sleeps to its next tick; wake for events

    result = run_attended(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, f"sip-{uuid.uuid4().hex[:6]}"),
        gateway=gw,
        config=AttendedConfig(duration_s=20.0, tick_s=0.25, hopper_backoff_s=60.0),
        clock=clock,
        sleep=sleep,
    )

    with tenant_session([client_id]) as session:
        attempts = list(
            session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        )
    by_number = {a.number_dialed: a for a in attempts}
    assert len(attempts) == 5  # every lead dialed once, no number twice
    assert sorted(by_number) == numbers
    assert all(a.status is AttemptStatus.finished for a in attempts)
    assert by_number[numbers[0]].disposition == "sale"  # the agent's disposition
    assert by_number[numbers[0]].agent_id == "S001"
    assert by_number[numbers[0]].hangup_cause == "caller"  # the agent hung up
    assert by_number[numbers[1]].disposition == "busy"
    # SIP 404: an invalid number, final (never retried), not a network failure
    assert by_number[numbers[2]].disposition == "invalid_number"
    assert by_number[numbers[3]].disposition == "no_answer"
    callee_left = by_number[numbers[4]]
    assert callee_left.hangup_cause == "callee"
    assert callee_left.agent_id == "S001"
    assert callee_left.disposition == "callback_requested"  # wrap-up without a code: default
    for answered in (by_number[numbers[0]], callee_left):
        assert answered.answered_at is not None
        assert answered.agent_connected_at is not None
        assert answered.abandoned is False
    assert result.dials == 5
    assert result.abandoned == 0
    assert peer.wait() == 0, peer.errors()  # every ACK and BYE where SIPp expected it
    assert baresip.invites() == 1  # the agent's phone rang once, when the loop called it
