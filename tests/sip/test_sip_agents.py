"""Agents' persistent phone legs on a real softphone (baresip, auto-answer) and the bridge.

The callee is SIPp echoing RTP, the agent's phone plays a 600 Hz tone: the tone reaching the
callee (our recording of what the callee sends back) shows agent → callee through our relay,
and the phone hearing it back shows callee → agent.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from sip.sip_peers import (
    Baresip,
    MakeGateway,
    StartSipp,
    energy_at,
    read_wav,
    request,
    wait_for,
)

from dialer.gateway import (
    AgentLegEvent,
    AgentLegState,
    Answered,
    ConnectedToAgent,
    GatewayEvent,
    HangupParty,
    HungUp,
)


def leg_events(events: list[GatewayEvent]) -> list[AgentLegEvent]:
    return [e for e in events if isinstance(e, AgentLegEvent)]


def test_the_agent_leg_connects_once_and_the_bridge_carries_audio_both_ways(
    sipp: StartSipp, make_gateway: MakeGateway, baresip: Baresip, tmp_path: Path
) -> None:
    peer = sipp("answer_echo.xml", calls=2, codec="0")  # the callee speaks PCMU, the phone PCMA
    gw = make_gateway(peer.port, record_dir=tmp_path)
    gw.connect_agent_phone("S001", baresip.address, now=0.0)
    gw.connect_agent_phone("S001", baresip.address, now=0.0)  # again: a no-op
    events = wait_for(gw, lambda es: bool(leg_events(es)))
    assert [(e.agent_id, e.state) for e in leg_events(events)] == [
        ("S001", AgentLegState.CONNECTED)
    ]
    for _ in range(2):  # two calls in a row on the same persistent leg
        events = []
        call_id = gw.originate(request(), now=gw.clock())
        wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es), into=events)
        gw.connect_to_agent(call_id, agent_id="S001", skill_group="sales", now=gw.clock())
        wait_for(gw, lambda es: any(isinstance(e, ConnectedToAgent) for e in es), into=events)
        connected = next(e for e in events if isinstance(e, ConnectedToAgent))
        assert connected.agent_id == "S001"
        assert connected.skill_group == "sales"
        time.sleep(1.5)
        gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
        wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)
        hung = next(e for e in events if isinstance(e, HungUp))
        assert hung.by is HangupParty.AGENT
        assert hung.agent_id == "S001"
        time.sleep(0.2)
        callee_sent = read_wav(tmp_path / f"{call_id}.wav")
        assert energy_at(callee_sent[-4000:], 600.0) > 0.5  # the callee heard the agent
    assert peer.wait() == 0, peer.errors()
    assert baresip.invites() == 1  # the agent's phone was called once, never rung again
    gw.release_agent_phone("S001", now=gw.clock())
    time.sleep(0.5)
    baresip.stop()
    heard = baresip.heard()
    assert max(abs(x) for x in heard) > 3000  # the phone heard sound, not only silence
    assert energy_at(heard, 600.0) > 0.5  # and it was its own tone back from the callee


def test_an_agent_phone_that_quits_is_hung_up(make_gateway: MakeGateway, baresip: Baresip) -> None:
    gw = make_gateway(5060)
    gw.connect_agent_phone("S002", baresip.address, now=0.0)
    wait_for(gw, lambda es: bool(leg_events(es)))
    baresip.stop(signal.SIGTERM)  # the softphone quits: it sends BYE
    [lost] = leg_events(wait_for(gw, lambda es: bool(leg_events(es))))
    assert lost.state is AgentLegState.HUNG_UP
    assert lost.agent_id == "S002"


def test_a_killed_agent_phone_is_unreachable_after_its_audio_stops(
    make_gateway: MakeGateway, baresip: Baresip
) -> None:
    gw = make_gateway(5060, agent_media_timeout_s=1.0)
    gw.connect_agent_phone("S003", baresip.address, now=0.0)
    [up] = leg_events(wait_for(gw, lambda es: bool(leg_events(es))))
    assert up.state is AgentLegState.CONNECTED
    baresip.stop(signal.SIGKILL)  # no BYE: only the silence tells
    [lost] = leg_events(wait_for(gw, lambda es: bool(leg_events(es))))
    assert lost.state is AgentLegState.UNREACHABLE
    assert "no audio" in lost.cause


def test_a_phone_registered_to_kamailio_is_reached_and_released_through_the_proxy(
    sipp: StartSipp, make_gateway: MakeGateway, registered_phone: Baresip, tmp_path: Path
) -> None:
    peer = sipp("answer_echo.xml")
    gw = make_gateway(peer.port, record_dir=tmp_path)
    gw.connect_agent_phone("S004", registered_phone.address, now=0.0)
    [up] = leg_events(wait_for(gw, lambda es: bool(leg_events(es))))
    assert up.state is AgentLegState.CONNECTED
    events: list[GatewayEvent] = []
    call_id = gw.originate(request(), now=gw.clock())
    wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es), into=events)
    gw.connect_to_agent(call_id, agent_id="S004", skill_group="sales", now=gw.clock())
    wait_for(gw, lambda es: any(isinstance(e, ConnectedToAgent) for e in es), into=events)
    time.sleep(1.0)
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
    wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)
    time.sleep(0.2)
    assert energy_at(read_wav(tmp_path / f"{call_id}.wav")[-4000:], 600.0) > 0.5
    gw.release_agent_phone("S004", now=gw.clock())
    deadline = time.monotonic() + 5
    while "BYE sip:1001" not in registered_phone.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = registered_phone.log()
    # the phone answered with its own Contact behind the proxy's Record-Route: our ACK and
    # BYE went through Kamailio to that Contact (the adapter's fix 4)
    assert "Record-Route: <sip:127.0.0.1:" in log
    assert "ACK sip:1001-" in log
    assert "BYE sip:1001-" in log
    assert peer.wait() == 0, peer.errors()
