"""The attended live loop (dialer/attended/) driving the SIP gateway end to end, on real
PostgreSQL, in real time: a five-lead pilot against SIPp callees (the number decides what each
does, scenarios/pilot.xml) with one agent whose phone is a baresip softphone."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sip.sip_peers import (
    PILOT_NUMBERS,
    Baresip,
    MakeGateway,
    StartSipp,
    agent_desk,
    sip_pilot,
    tone,
)
from sqlmodel import select

from campaigns.models import AttemptStatus, CallAttempt
from core.db import system_session, tenant_session
from dialer.attended import AttendedConfig, run_attended
from dialer.gateway import RealTimeClock
from dialer.leadership import LocalLeadership

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def live(pg_url: str, pg_engine: Any, configure: Callable[..., None]) -> None:
    configure(database_url=pg_url)


def test_a_small_pilot_over_sip_gets_every_disposition_right(
    live: None,
    sipp: StartSipp,
    make_gateway: MakeGateway,
    baresip: Baresip,
    tmp_path: Path,
) -> None:
    numbers = PILOT_NUMBERS
    client_id, campaign_id, seat_id = sip_pilot(baresip.address)

    peer = sipp("pilot.xml", calls=5)
    clock = RealTimeClock()
    harbour = tone(tmp_path / "safe-harbour.wav", 440.0, 1.0)
    gw = make_gateway(peer.port, messages={"safe_harbour": harbour})
    gw.clock = clock.seconds  # stamp events on the loop's own time line

    def sleep(seconds: float) -> None:
        agent_desk(seat_id)
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


def test_preview_over_sip_places_the_agents_own_calls(
    live: None,
    sipp: StartSipp,
    make_gateway: MakeGateway,
    baresip: Baresip,
) -> None:
    """A preview campaign over SIP: the agent is shown each lead and dials it; the answered
    one is bridged to the agent's phone and dispositioned, the busy one (486) is an attempt
    whose dial fails back to the agent; both numbers are dialed once, by the SIP gateway."""
    from dialer import agent_service as svc
    from dialer.agents import AgentAction, AgentState
    from dialer.models import AgentStateLog

    numbers = PILOT_NUMBERS[:2]  # answers and waits for our BYE; busy
    client_id, campaign_id, seat_id = sip_pilot(baresip.address, numbers=numbers, mode="preview")
    peer = sipp("pilot.xml", calls=2)
    clock = RealTimeClock()
    gw = make_gateway(peer.port)
    gw.clock = clock.seconds

    def sleep(seconds: float) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
            if seat.state is AgentState.PREVIEWING:
                svc.apply_agent_action(session=session, agent_id=seat_id, command=svc.Dial())
        agent_desk(seat_id)
        time.sleep(min(seconds, 0.05))

    result = run_attended(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, f"sip-{uuid.uuid4().hex[:6]}"),
        gateway=gw,
        config=AttendedConfig(duration_s=15.0, tick_s=0.25, hopper_backoff_s=60.0),
        clock=clock,
        sleep=sleep,
    )

    with tenant_session([client_id]) as session:
        attempts = list(
            session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        )
    by_number = {a.number_dialed: a for a in attempts}
    assert sorted(by_number) == numbers
    assert len(attempts) == 2
    answered, busy = by_number[numbers[0]], by_number[numbers[1]]
    assert answered.disposition == "sale"
    assert answered.agent_id == "S001"
    assert answered.agent_connected_at is not None
    assert busy.disposition == "busy"
    assert result.connected == 1
    assert result.abandoned == 0
    with system_session() as session:
        actions = [
            e.action
            for e in session.exec(
                select(AgentStateLog).where(AgentStateLog.agent_seat_id == seat_id)
            )
        ]
    assert actions.count(AgentAction.OFFER_PREVIEW) >= 2
    assert AgentAction.CALL_FAILED in actions  # the busy call, back to the agent
    assert peer.wait() == 0, peer.errors()
    assert baresip.invites() == 1  # the agent's phone was called once, at the start
