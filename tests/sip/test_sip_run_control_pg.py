"""Run control dialing through the SIP gateway (setting ``gateway=sip``), on real PostgreSQL:
a live-agent pilot started with POST-equivalent ``start_dialing`` calls SIPp callees over the
trunk from the environment, the agent's phone (baresip) is called once by the loop, and every
attempt ends with the disposition its SIP answer means."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from campaign_builders import make_campaign, make_list
from sip.sip_peers import Baresip, StartSipp, rtp_range, tone
from sqlmodel import select

from campaigns.models import AttemptStatus, BatchCreate, CallAttempt, CampaignStatus
from campaigns.service import create_batch, transition_campaign
from core.admin import create_client
from core.db import system_session, tenant_session
from core.models import JobRecord, JobStatus
from dialer import agent_service as svc
from dialer.agents import AgentAction, AgentState
from dialer.attended import AgentsMode
from dialer.models import AgentCreate
from dialer.run_control import PacerSettings, control_campaign, start_dialing

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_run_control_dials_a_pilot_through_the_sip_gateway(
    pg_url: str,
    pg_engine: Any,
    configure: Callable[..., None],
    sipp: StartSipp,
    baresip: Baresip,
    tmp_path: Path,
) -> None:
    peer = sipp("pilot.xml", calls=5)
    messages = tmp_path / "messages"
    messages.mkdir()
    tone(messages / "safe_harbour.wav", 440.0, 1.0)
    low, high = rtp_range()
    configure(
        database_url=pg_url,
        gateway="sip",
        sip_port="0",
        sip_rtp_port_min=str(low),
        sip_rtp_port_max=str(high),
        sip_messages_dir=str(messages),
        sip_trunk_host="127.0.0.1",
        sip_trunk_port=str(peer.port),
    )
    numbers = [f"+861390000000{i}" for i in range(5)]
    with system_session() as session:
        client_id = create_client(session=session, name=f"c{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, numbers=numbers)
        campaign = make_campaign(
            session,
            client_id,
            [lead_list.id],
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
        seat_id = svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code="S001",
                name="座席",
                skill_groups=["sales"],
                client_ids=[client_id],
                phone_uri=baresip.address,
            ),
        ).id
        for action in (AgentAction.SIGN_IN, AgentAction.GO_READY):
            svc.apply_agent_action(
                session=session, agent_id=seat_id, action=action, at=datetime.now(UTC)
            )

    run = start_dialing(
        client_id=client_id,
        campaign_id=campaign_id,
        settings=PacerSettings(agents_mode=AgentsMode.LIVE),
    )

    def attempts() -> list[CallAttempt]:
        with tenant_session([client_id]) as session:
            return list(
                session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
            )

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the agent's desk: talk 3 s, then "sale"; wrap 0.5 s
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
        done = attempts()
        if len(done) == 5 and all(a.status is AttemptStatus.finished for a in done):
            break
        time.sleep(0.1)
    control_campaign(client_id=client_id, campaign_id=campaign_id, action="stop")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with system_session() as session:
            record = session.get(JobRecord, run.id)
            assert record is not None
            if record.status in (JobStatus.succeeded, JobStatus.failed):
                break
        time.sleep(0.1)
    assert record.status is JobStatus.succeeded, record.error
    by_number = {a.number_dialed: a for a in attempts()}
    assert sorted(by_number) == numbers  # each lead dialed once, no number twice
    assert by_number[numbers[0]].disposition == "sale"
    assert by_number[numbers[0]].agent_id == "S001"
    assert by_number[numbers[1]].disposition == "busy"
    assert by_number[numbers[2]].disposition == "invalid_number"  # SIP 404: final
    assert by_number[numbers[3]].disposition == "no_answer"
    assert by_number[numbers[4]].hangup_cause == "callee"
    assert peer.wait() == 0, peer.errors()
    assert baresip.invites() == 1  # the agent's phone rang once, when the run started
