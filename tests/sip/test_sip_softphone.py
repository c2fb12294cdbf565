"""Soft-phone functions on a real call through our media relay: hold with music, a three-way
call, a transfer to another agent (the call parameters follow the call).

The callee is SIPp echoing RTP, so what it sends back (our recording of it) is what it heard.
Agent A's phone (baresip) plays 600 Hz, agent B's 1000 Hz, the hold music is 400 Hz: the
recording must go through the phases A → music → A → A+B → B, in that order, and the
phones must have heard each other while they shared the call.
"""

from __future__ import annotations

import time
from pathlib import Path

from sip.sip_peers import (
    Baresip,
    MakeGateway,
    StartSipp,
    energy_at,
    need,
    read_wav,
    request,
    rtp_range,
    tone,
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

TONES = {"A": 600.0, "B": 1000.0, "music": 400.0}


def _phases(samples: list[int], window: int = 1600) -> list[frozenset[str]]:
    """Which tones each 0.2 s of ``samples`` holds, consecutive repeats collapsed."""
    found: list[frozenset[str]] = []
    for start in range(0, len(samples) - window, window):
        chunk = samples[start : start + window]
        if max(abs(x) for x in chunk) < 1000:
            continue  # silence between phases
        heard = frozenset(name for name, f in TONES.items() if energy_at(chunk, f) > 0.2)
        if heard and (not found or found[-1] != heard):
            found.append(heard)
    return found


def _in_order(seen: list[frozenset[str]], expected: list[set[str]]) -> bool:
    position = 0
    for phase in seen:
        if position < len(expected) and phase == expected[position]:
            position += 1
    return position == len(expected)


def test_hold_three_way_and_transfer_on_a_real_call(
    sipp: StartSipp, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    need("baresip", "baresip-core")
    phones = {}
    for name in ("A", "B"):
        workdir = tmp_path / name
        workdir.mkdir()
        phones[name] = Baresip(workdir, tone(workdir / "tone.wav", TONES[name], 180.0)).start()
    try:
        peer = sipp("answer_echo.xml", calls=2)
        music = tone(tmp_path / "music.wav", TONES["music"], 3.0)
        gw = make_gateway(
            peer.port, record_dir=tmp_path, hold_music=music, rtp_port_range=rtp_range(4)
        )
        for name, phone in phones.items():
            gw.connect_agent_phone(name, phone.address, now=0.0)
        wait_for(
            gw,
            lambda es: (
                sum(isinstance(e, AgentLegEvent) and e.state is AgentLegState.CONNECTED for e in es)
                == 2
            ),
        )
        events: list[GatewayEvent] = []
        call_id = gw.originate(request(), now=gw.clock())
        wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es), into=events)
        gw.connect_to_agent(call_id, agent_id="A", skill_group="sales", now=gw.clock())
        time.sleep(1.5)
        gw.hold(call_id, now=gw.clock())
        time.sleep(1.5)
        gw.unhold(call_id, now=gw.clock())
        time.sleep(1.5)
        gw.conference(call_id, agent_id="B", now=gw.clock())
        time.sleep(2.0)
        gw.transfer_to_agent(call_id, agent_id="B", skill_group="support", now=gw.clock())
        time.sleep(1.5)
        gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
        wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)
        connected = [e for e in events if isinstance(e, ConnectedToAgent)]
        assert [(e.agent_id, e.skill_group) for e in connected] == [
            ("A", "sales"),
            ("B", "support"),  # the transfer: the new agent's parameters ...
        ]
        assert connected[1].callee_number == connected[0].callee_number  # ... the same call
        assert connected[1].caller_number == connected[0].caller_number
        hung = next(e for e in events if isinstance(e, HungUp))
        assert hung.agent_id == "B"
        time.sleep(0.3)
        seen = _phases(read_wav(tmp_path / f"{call_id}.wav"))
        expected = [{"A"}, {"music"}, {"A"}, {"A", "B"}, {"B"}]
        assert _in_order(seen, expected), seen
        # after the transfer, agent A is free: a new call can go to A
        second = gw.originate(request(), now=gw.clock())
        wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es))
        gw.connect_to_agent(second, agent_id="A", skill_group="sales", now=gw.clock())
        wait_for(gw, lambda es: any(isinstance(e, ConnectedToAgent) for e in es))
        gw.hang_up(second, now=gw.clock())
        for name in phones:
            gw.release_agent_phone(name, now=gw.clock())
        time.sleep(0.5)
    finally:
        for phone in phones.values():
            phone.stop()
    # on the three-way call each phone heard the other one
    assert any(energy_at(c, TONES["A"]) > 0.2 for c in _chunks(phones["B"].heard()))
    assert any(energy_at(c, TONES["B"]) > 0.2 for c in _chunks(phones["A"].heard()))


def _chunks(samples: list[int], size: int = 1600) -> list[list[int]]:
    return [samples[i : i + size] for i in range(0, len(samples) - size, size)]
