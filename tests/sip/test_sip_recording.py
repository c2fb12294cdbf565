"""Call recordings over SIP: both sides of a real call, time-aligned, reported after it ends.

The callee is SIPp playing its G.711 speech recording (no echo), the agent a baresip phone on a
600 Hz tone: the recording's left channel (what the callee said) holds the speech and not the
tone, its right channel (what the callee heard) the agent's tone, and it lasts as long as the
call did.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
from sip.sip_peers import (
    Baresip,
    MakeGateway,
    StartSipp,
    bridged_call,
    energy_at,
    request,
    wait_for,
)

from dialer.gateway import Answered, HangupParty, HungUp, RecordingReady


def _channels(path: Path) -> tuple[list[int], list[int], int]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return samples[:, 0].tolist(), samples[:, 1].tolist(), rate


def test_a_bridged_call_is_recorded_both_sides_and_reported_after_its_hang_up(
    sipp: StartSipp, make_gateway: MakeGateway, baresip: Baresip, tmp_path: Path
) -> None:
    peer = sipp("agent_pcap.xml", echo=False)  # answers, then speaks until our BYE
    spool = tmp_path / "spool"
    gw = make_gateway(peer.port, call_recording_dir=spool)
    call_id, events = bridged_call(gw, baresip.address)
    time.sleep(4.0)
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
    wait_for(gw, lambda es: any(isinstance(e, RecordingReady) for e in es), into=events)
    hung = next(e for e in events if isinstance(e, HungUp))
    ready = next(e for e in events if isinstance(e, RecordingReady))
    assert events.index(hung) < events.index(ready)  # reported once the call is over
    assert (ready.call_id, ready.attempt_id) == (call_id, request().attempt_id)
    path = Path(ready.path)
    assert path.parent == spool
    callee, heard, rate = _channels(path)
    print(f"\n[recording] {ready.duration_s:.2f} s for a call of {hung.talk_time_s:.2f} s")
    assert rate == 8000
    assert abs(ready.duration_s - hung.talk_time_s) < 0.5
    assert len(callee) == len(heard) == round(ready.duration_s * rate)
    middle = slice(rate, len(heard) - rate // 2)
    # right: what the callee heard, the agent's tone; left: the callee's speech, not the tone
    assert energy_at(heard[middle], 600.0) > 0.5
    assert energy_at(callee[middle], 600.0) < 0.1
    assert float(np.sqrt(np.mean(np.square(np.asarray(callee[middle], dtype=float))))) > 300
    assert peer.wait() == 0, peer.errors()


def test_no_recording_is_made_when_none_is_asked_for(
    sipp: StartSipp, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    peer = sipp("answer_echo.xml")
    gw = make_gateway(peer.port)
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es))
    time.sleep(0.5)
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
    wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)
    time.sleep(0.5)
    events.extend(gw.poll(gw.clock()))
    assert not any(isinstance(e, RecordingReady) for e in events)
