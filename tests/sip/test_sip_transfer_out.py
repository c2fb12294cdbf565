"""Transfer out to an outside number over SIP: Kamailio as the trunk, real peers on each leg.

The trunk is a Kamailio proxy: the callee's number is not registered there, so its INVITE goes
on to a SIPp callee echoing RTP; the outside number (1001) is a baresip phone registered to it,
playing a 1 kHz tone. The agent is a baresip phone on a 600 Hz tone. After the agent transfers
the call out, the callee and the outside party hear each other through our relay (the callee
echoes the outside party's tone, the outside party hears its own tone come back) and the agent
hears neither; the outside party hanging up ends the callee's leg too.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sip.conftest import AGENT_TONE_S
from sip.sip_peers import (
    CALLER,
    Baresip,
    Kamailio,
    MakeGateway,
    StartSipp,
    bridged_call,
    energy_at,
    need,
    read_wav,
    request,
    rtp_range,
    tone,
    wait_for,
)

from dialer.exceptions import GatewayError
from dialer.gateway import HangupParty, HungUp, TransferOutFailed, TransferredOut

OUTSIDE = "1001"  # the outside party's number: baresip registers as 1001
OUTSIDE_TONE_S = 8.0  # baresip hangs up when its file runs out


@pytest.fixture
def trunk(sipp: StartSipp, tmp_path: Path) -> tuple[int, int]:
    """A SIPp callee echoing RTP behind a Kamailio trunk: (trunk port, SIPp port)."""
    need("kamailio", "kamailio")
    callee = sipp("answer_echo.xml")
    proxy = Kamailio(tmp_path, fallback=callee.port).start()
    yield proxy.port, callee.port
    proxy.stop()


def _outside_phone(tmp_path: Path, trunk_port: int, seconds: float) -> Baresip:
    need("baresip", "baresip-core")
    home = tmp_path / "outside"
    home.mkdir()
    source = tone(home / "outside-1000.wav", 1000.0, seconds)
    return Baresip(home, source, registrar=trunk_port).start()


def test_a_call_transferred_out_joins_the_callee_and_the_outside_party_and_frees_the_agent(
    make_gateway: MakeGateway, trunk: tuple[int, int], baresip: Baresip, tmp_path: Path
) -> None:
    trunk_port, _ = trunk
    outside = _outside_phone(tmp_path, trunk_port, OUTSIDE_TONE_S)
    try:
        gw = make_gateway(trunk_port, record_dir=tmp_path, rtp_port_range=rtp_range(3))
        call_id, events = bridged_call(gw, baresip.address)
        time.sleep(1.0)  # the agent and the callee talk
        with pytest.raises(GatewayError, match="not a number"):
            gw.transfer_out(call_id, "sip:evil@example.com", now=gw.clock())
        gw.transfer_out(call_id, OUTSIDE, now=gw.clock())
        with pytest.raises(GatewayError, match="not connected to an agent"):
            gw.hold(call_id, now=gw.clock())  # the agent has left it
        wait_for(gw, lambda es: any(isinstance(e, TransferredOut) for e in es), into=events)
        out = next(e for e in events if isinstance(e, TransferredOut))
        assert out.number == OUTSIDE
        assert out.agent_id is None
        assert out.callee_number == request().params.callee_number
        # the outside party's tone runs out: it hangs up, and the callee's leg goes with it
        wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events, timeout=20)
        hung = next(e for e in events if isinstance(e, HungUp))
        assert hung.by is HangupParty.AGENT  # our side (the outside party) hung up
        gw.release_agent_phone("S001", now=gw.clock())
        time.sleep(0.5)
        transferred_s = hung.at_s - out.at_s
        print(f"\n[transfer out] connected {transferred_s:.1f} s until the outside BYE")
        assert transferred_s == pytest.approx(OUTSIDE_TONE_S, abs=2.0)
        # the callee echoes what reaches it: the outside party's 1 kHz, through our relay
        callee_sent = read_wav(tmp_path / f"{call_id}.wav")
        assert energy_at(callee_sent[-16000:-4000], 1000.0) > 0.5
        outside_sent = read_wav(tmp_path / f"{call_id}-outside.wav")
        assert energy_at(outside_sent[-16000:-4000], 1000.0) > 0.5
        outside.stop(signal.SIGTERM)
        heard_outside = outside.heard()
        # the outside party heard its own tone come back through the callee, never the agent
        assert energy_at(heard_outside, 1000.0) > 0.5
        assert energy_at(heard_outside, 600.0) < 0.05
        # and the agent never heard the outside party
        baresip.stop(signal.SIGTERM)
        assert energy_at(baresip.heard(), 1000.0) < 0.05
        # the outside INVITE went through the trunk with the campaign's caller id
        log = outside.log()
        assert f"From: <sip:{CALLER}@127.0.0.1>" in log
        assert f"P-Asserted-Identity: <sip:{CALLER}@127.0.0.1>" in log
    finally:
        outside.stop()
    assert AGENT_TONE_S > OUTSIDE_TONE_S


def test_an_outside_number_that_does_not_answer_is_cancelled_and_the_callee_kept(
    make_gateway: MakeGateway, trunk: tuple[int, int], baresip: Baresip, tmp_path: Path
) -> None:
    trunk_port, callee_port = trunk
    outside = _outside_phone(tmp_path, trunk_port, 60.0)
    outside.stop(signal.SIGKILL)  # registered, then gone: its INVITE is never answered
    gw = make_gateway(
        trunk_port, record_dir=tmp_path, rtp_port_range=rtp_range(3), transfer_ring_timeout_s=2.0
    )
    call_id, events = bridged_call(gw, baresip.address)
    time.sleep(1.0)  # the agent and the callee talk
    began = time.monotonic()
    gw.transfer_out(call_id, OUTSIDE, now=gw.clock())
    wait_for(
        gw, lambda es: any(isinstance(e, TransferOutFailed) for e in es), into=events, timeout=15
    )
    failed = next(e for e in events if isinstance(e, TransferOutFailed))
    waited = time.monotonic() - began
    print(f"\n[transfer out, no answer] {failed.reason!r} after {waited:.1f} s")
    assert failed.number == OUTSIDE
    assert waited < 12.0
    assert not any(isinstance(e, HungUp) for e in events)  # the callee is still there
    time.sleep(1.0)
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
    wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)
    time.sleep(0.3)
    # meanwhile the callee heard the hold music (its echo: the chime's notes, not silence)
    callee_sent = read_wav(tmp_path / f"{call_id}.wav")
    tail = callee_sent[-8000:]
    assert max(energy_at(tail, 523.25), energy_at(tail, 392.0)) > 0.2
    assert callee_port > 0
