"""The attended live loop (dialer/attended/) driving the SIP gateway end to end, on real
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
from sip.sip_peers import (
    PILOT_NUMBERS,
    Baresip,
    MakeGateway,
    StartSipp,
    agent_desk,
    energy_at,
    read_wav,
    ready_agent,
    rtp_range,
    sip_pilot,
    tone,
)
from sqlmodel import select

from campaigns.models import AttemptStatus, CallAttempt
from core.db import system_session, tenant_session
from dialer.attended import AttendedConfig, AttendedResult, run_attended
from dialer.gateway import RealTimeClock
from dialer.leadership import LocalLeadership

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def run_live(
    client_id: uuid.UUID,
    campaign_id: uuid.UUID,
    gw: Any,
    clock: RealTimeClock,
    sleep: Callable[[float], None],
    *,
    duration_s: float,
) -> AttendedResult:
    """The live loop over the SIP gateway in real time, ticking every 0.25 s."""
    return run_attended(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, f"sip-{uuid.uuid4().hex[:6]}"),
        gateway=gw,
        config=AttendedConfig(duration_s=duration_s, tick_s=0.25, hopper_backoff_s=60.0),
        clock=clock,
        sleep=sleep,
    )


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

    result = run_live(client_id, campaign_id, gw, clock, sleep, duration_s=20.0)

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

    result = run_live(client_id, campaign_id, gw, clock, sleep, duration_s=15.0)

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


def test_a_consultation_and_three_way_call_over_sip_hand_the_call_to_the_colleague(
    live: None,
    sipp: StartSipp,
    make_gateway: MakeGateway,
    baresip: Baresip,
    tmp_path: Path,
) -> None:
    """The live loop over SIP with two agents' baresip phones: S001 takes the call, consults
    S002 (the callee on hold), makes it a three-way call (the gateway's mix), and leaves; S002
    keeps the call and dispositions it. One number dialed once, each phone called once."""
    from dialer import agent_service as svc
    from dialer.agents import AgentState, TransferKind, TransferTarget

    workdir = tmp_path / "B"
    workdir.mkdir()
    second = Baresip(workdir, tone(workdir / "agent-1000.wav", 1000.0, 180.0)).start()
    try:
        numbers = PILOT_NUMBERS[:1]  # answers and waits for our BYE
        client_id, campaign_id, first = sip_pilot(baresip.address, numbers=numbers)
        colleague = ready_agent(client_id, "S002", second.address)
        peer = sipp("pilot.xml", calls=1)
        clock = RealTimeClock()
        recordings = tmp_path / "recordings"
        recordings.mkdir()
        gw = make_gateway(peer.port, rtp_port_range=rtp_range(4), record_dir=recordings)
        gw.clock = clock.seconds
        steps: list[str] = []

        def desks() -> None:
            now = datetime.now(UTC)
            with system_session() as session:
                a = svc.get_agent(session=session, agent_id=first)
                b = svc.get_agent(session=session, agent_id=colleague)
                a_for = (now - a.state_since).total_seconds()
                b_for = (now - b.state_since).total_seconds()
                command: svc.AgentCommand | None = None
                who = first
                if a.state is AgentState.ON_CALL and not steps and a_for >= 2.0:
                    command = svc.InternalCall(target=TransferTarget(TransferKind.AGENT, "S002"))
                    steps.append("consult")
                elif a.state is AgentState.CONSULTING and b.state is AgentState.ON_CALL:
                    if a_for >= 1.0:
                        command = svc.ThreeWay()
                        steps.append("three_way")
                elif a.state is AgentState.CONFERENCE and a_for >= 2.0:
                    command = svc.HangUp()
                    steps.append("left")
                elif a.state is AgentState.WRAP_UP:
                    command = svc.FinishWrap()
                elif "left" in steps and b.state is AgentState.ON_CALL and b_for >= 7.0:
                    command, who = svc.HangUp(disposition="sale"), colleague
                    steps.append("colleague hung up")
                elif b.state is AgentState.WRAP_UP and "colleague hung up" in steps:
                    command, who = svc.FinishWrap(), colleague
                if command is not None:
                    svc.apply_agent_action(session=session, agent_id=who, command=command)

        def sleep(seconds: float) -> None:
            desks()
            time.sleep(min(seconds, 0.05))

        result = run_live(client_id, campaign_id, gw, clock, sleep, duration_s=20.0)
    finally:
        second.stop()

    with tenant_session([client_id]) as session:
        [attempt] = session.exec(
            select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
        ).all()
    assert steps[:4] == ["consult", "three_way", "left", "colleague hung up"]
    assert (attempt.agent_id, attempt.disposition) == ("S002", "sale")
    assert attempt.hangup_cause == "caller"  # our side hung up, at the colleague's hang-up
    assert result.transfers == 1
    assert result.abandoned == 0
    assert peer.wait() == 0, peer.errors()
    assert baresip.invites() == 1
    assert second.invites() == 1
    # the call's recording: S001 alone, then both agents mixed (the three-way call), then S002
    [wav] = list(recordings.glob("*.wav"))
    samples = read_wav(wav)
    heard = []
    for start in range(0, len(samples) - 1600, 1600):  # 0.2 s windows
        chunk = samples[start : start + 1600]
        tones = frozenset(f for f in (600.0, 1000.0) if energy_at(chunk, f) > 0.2)
        if tones and (not heard or heard[-1] != tones):
            heard.append(tones)
    alone_a, both, alone_b = frozenset({600.0}), frozenset({600.0, 1000.0}), frozenset({1000.0})
    assert alone_a in heard, heard
    assert both in heard, heard
    assert alone_b in heard, heard
    last_b = len(heard) - 1 - heard[::-1].index(alone_b)
    assert heard.index(alone_a) < heard.index(both) < last_b, heard


def test_an_agent_hands_a_sip_callee_back_to_the_ivr(
    live: None,
    sipp: StartSipp,
    make_gateway: MakeGateway,
    baresip: Baresip,
    tmp_path: Path,
) -> None:
    """人工轉自動 over SIP: the callee is bridged to the agent's baresip phone, the agent hands
    them to the IVR after 3 s; the gateway speaks the questions (espeak-ng), the SIPp callee
    keys its answers (RFC 4733), the interview is stored completed and the attempt is
    ``complete``; the agent's phone leg stays up, free for the next call."""
    from sip.sip_peers import need
    from survey_builders import agentless_campaign

    from campaigns.models import Campaign
    from campaigns.models import PacingMode as CampaignPacingMode
    from dialer import agent_service as svc
    from dialer.agents import AgentState
    from dialer.sip.speech import Speech
    from surveys.models import Interview

    need("espeak-ng", "espeak-ng")
    client_id, campaign_id = agentless_campaign(["+8613900000001"], lines=1)
    with tenant_session([client_id]) as session:  # a survey run by agents
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.pacing_mode = CampaignPacingMode.progressive
        campaign.skill_group = "sales"
        session.add(campaign)
    seat_id = ready_agent(client_id, "I001", baresip.address)
    # the callee keys 1 (likes tea) 6 s after answering, then 4 2 # (42), 2.5 s apart
    peer = sipp("ivr_keys.xml", calls=1, echo=False, first_ms="6000", then_ms="2500")
    clock = RealTimeClock()
    gw = make_gateway(peer.port, speech=Speech(cache_dir=tmp_path / "speech"))
    gw.clock = clock.seconds
    handed: list[float] = []

    def sleep(seconds: float) -> None:
        now = datetime.now(UTC)
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
            elapsed = (now - seat.state_since).total_seconds()
            if seat.state is AgentState.ON_CALL and elapsed >= 3.0 and not handed:
                svc.apply_agent_action(session=session, agent_id=seat_id, command=svc.HandToIvr())
                handed.append(clock.seconds())
            elif seat.state is AgentState.WRAP_UP and elapsed >= 0.5:
                svc.apply_agent_action(session=session, agent_id=seat_id, command=svc.FinishWrap())
        time.sleep(min(seconds, 0.05))

    result = run_live(client_id, campaign_id, gw, clock, sleep, duration_s=25.0)

    assert handed
    with tenant_session([client_id]) as session:
        [attempt] = session.exec(
            select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
        ).all()
        [interview] = session.exec(select(Interview)).all()
    assert attempt.disposition == "complete"
    assert attempt.agent_id == "I001"
    assert interview.call_id == str(attempt.id)
    assert interview.status.value == "completed"
    answers = {name: stored["value"] for name, stored in interview.state["answers"].items()}
    assert answers == {"likes": "yes", "age": 42}
    assert result.interviews_stored == 1
    assert peer.wait() == 0, peer.errors()  # our BYE after the IVR's goodbye
    assert baresip.invites() == 1
