"""SipGateway against SIPp callees on 127.0.0.1: each final response keeps its meaning, and
SIPp's scenario (which checks our ACKs, CANCEL, BYE and digest) passes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from sip.sip_peers import (
    CALLER,
    MakeGateway,
    StartSipp,
    energy_at,
    free_port,
    read_wav,
    request,
    tone,
    wait_for,
)

from dialer.exceptions import GatewayError, UnknownCall
from dialer.gateway import (
    Answered,
    AnswerKind,
    Busy,
    CallParameters,
    DtmfReceived,
    Failed,
    FailureCause,
    GatewayEvent,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    Ringing,
    TelephonyGateway,
)
from dialer.sip.gateway import SipTrunk, outcome_for


def final_of(events: list[GatewayEvent]) -> bool:
    return any(isinstance(e, Busy | NoAnswer | Failed | HungUp) for e in events)


def test_the_gateway_implements_the_protocol(make_gateway: MakeGateway) -> None:
    gw = make_gateway(5060)
    assert isinstance(gw, TelephonyGateway)


def test_an_empty_caller_number_is_refused_never_sent_anonymous(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway(5060)
    bad = OriginateRequest("c", "l", "a", CallParameters("  ", "+8613900000001"))
    with pytest.raises(GatewayError, match="caller_id"):
        gw.originate(bad, now=0.0)
    with pytest.raises(UnknownCall):
        gw.hang_up("nope", now=0.0)


def test_the_password_is_not_in_the_trunks_repr() -> None:
    trunk = SipTrunk(host="sip.example", username="u", password="hunter2")
    assert "hunter2" not in repr(trunk)
    with pytest.raises(ValueError, match="both"):
        SipTrunk(host="x", username="u")


@pytest.mark.parametrize(
    ("status", "ringing", "event", "cause"),
    [
        (486, True, Busy, None),
        (600, False, Busy, None),
        (480, True, NoAnswer, None),
        (487, True, NoAnswer, None),
        (408, True, NoAnswer, None),
        (408, False, Failed, FailureCause.CONGESTION),
        (404, False, Failed, FailureCause.INVALID_NUMBER),
        (410, False, Failed, FailureCause.INVALID_NUMBER),
        (484, False, Failed, FailureCause.INVALID_NUMBER),
        (604, False, Failed, FailureCause.INVALID_NUMBER),
        (500, False, Failed, FailureCause.CONGESTION),
        (503, False, Failed, FailureCause.CONGESTION),
        (403, False, Failed, FailureCause.TRUNK_REFUSED),
        (401, False, Failed, FailureCause.TRUNK_REFUSED),
        (407, False, Failed, FailureCause.TRUNK_REFUSED),
        (603, False, Failed, FailureCause.DECLINED),
        (415, False, Failed, FailureCause.UNKNOWN),
    ],
)
def test_final_responses_keep_their_meaning(
    status: int, ringing: bool, event: type, cause: FailureCause | None
) -> None:
    kind, got_cause, detail = outcome_for(status, "X", ringing=ringing, after_auth=True)
    assert kind is event
    assert got_cause is cause
    assert detail.startswith(f"SIP {status}")


# --------------------------------------------------------------------------- with SIPp


@pytest.mark.parametrize(
    ("scenario", "status", "reason", "event", "cause"),
    [
        ("reject_after_ringing.xml", "486", "Busy Here", Busy, None),
        ("reject_after_ringing.xml", "480", "Temporarily Unavailable", NoAnswer, None),
        ("reject_after_ringing.xml", "408", "Request Timeout", NoAnswer, None),
        ("reject.xml", "404", "Not Found", Failed, FailureCause.INVALID_NUMBER),
        ("reject.xml", "484", "Address Incomplete", Failed, FailureCause.INVALID_NUMBER),
        ("reject.xml", "503", "Service Unavailable", Failed, FailureCause.CONGESTION),
        ("reject.xml", "603", "Decline", Failed, FailureCause.DECLINED),
        ("reject.xml", "403", "Forbidden", Failed, FailureCause.TRUNK_REFUSED),
    ],
)
def test_sipp_final_response_becomes_its_event_and_is_acked(
    sipp: StartSipp,
    make_gateway: MakeGateway,
    scenario: str,
    status: str,
    reason: str,
    event: type,
    cause: FailureCause | None,
) -> None:
    peer = sipp(scenario, status=status, reason=reason)
    gw = make_gateway(peer.port)
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, final_of)
    [last] = [e for e in events if isinstance(e, Busy | NoAnswer | Failed)]
    assert isinstance(last, event)
    assert last.call_id == call_id
    assert last.attempt_id == "att"
    assert last.caller_number == CALLER
    if cause is not None:
        assert isinstance(last, Failed)
        assert last.cause is cause
        assert last.detail == f"SIP {status} {reason}"
    ringing = [e for e in events if isinstance(e, Ringing)]
    assert len(ringing) == (1 if scenario == "reject_after_ringing.xml" else 0)
    assert peer.wait() == 0, peer.errors()  # SIPp saw our ACK
    with pytest.raises(UnknownCall):
        gw.hang_up(call_id, now=0.0)


def test_answer_then_our_bye_with_rtp_echo(
    sipp: StartSipp, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    peer = sipp("answer_echo.xml")
    message = tone(tmp_path / "hello.wav", 1000.0, 1.0)
    gw = make_gateway(peer.port, messages={"safe_harbour": message}, record_dir=tmp_path)
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es))
    [answered] = [e for e in events if isinstance(e, Answered)]
    assert answered.kind is AnswerKind.HUMAN
    assert answered.media_answer_s is not None
    assert answered.answer_time_s == answered.media_answer_s
    ringing = next(e for e in events if isinstance(e, Ringing))
    assert answered.ring_time_s == pytest.approx(answered.at_s - ringing.at_s, abs=0.05)
    gw.play_message(call_id, "safe_harbour", now=gw.clock())
    with pytest.raises(GatewayError, match="no WAV configured"):
        gw.play_message(call_id, "nope", now=gw.clock())
    wait_for(gw, lambda es: any(isinstance(e, MessageFinished) for e in es), into=events)
    time.sleep(0.2)
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
    wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)
    hung = next(e for e in events if isinstance(e, HungUp))
    assert hung.by is HangupParty.AGENT
    assert hung.talk_time_s > 1.0
    assert peer.wait() == 0, peer.errors()  # SIPp got our BYE
    time.sleep(0.2)
    # the callee echoed the message: what we heard back is the 1 kHz tone
    heard = read_wav(tmp_path / f"{call_id}.wav")
    assert len(heard) > 4000
    assert energy_at(heard, 1000.0) > 0.5
    assert energy_at(heard, 400.0) < 0.05


def test_callee_bye_is_hung_up_by_the_callee(sipp: StartSipp, make_gateway: MakeGateway) -> None:
    peer = sipp("callee_bye.xml", pause_ms="500")
    gw = make_gateway(peer.port)
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, final_of)
    hung = next(e for e in events if isinstance(e, HungUp))
    assert hung.call_id == call_id
    assert hung.by is HangupParty.CALLEE
    assert 0.3 < hung.talk_time_s < 5.0
    assert peer.wait() == 0, peer.errors()  # our 200 OK to the BYE arrived


def test_ring_timeout_cancels_and_acks_the_487(sipp: StartSipp, make_gateway: MakeGateway) -> None:
    peer = sipp("no_answer_cancel.xml")
    gw = make_gateway(peer.port)
    gw.originate(request(timeout_s=1.0), now=0.0)
    events = wait_for(gw, final_of)
    assert [type(e) for e in events] == [Ringing, NoAnswer]
    assert events[1].at_s >= 1.0
    assert peer.wait() == 0, peer.errors()  # CANCEL sent, 487 ACKed


def test_an_answer_crossing_the_cancel_is_acked_and_cleared_with_bye(
    sipp: StartSipp, make_gateway: MakeGateway
) -> None:
    peer = sipp("answer_crossing_cancel.xml")
    gw = make_gateway(peer.port)
    gw.originate(request(timeout_s=1.0), now=0.0)
    events = wait_for(gw, final_of)
    assert [type(e) for e in events] == [Ringing, NoAnswer]
    assert peer.wait() == 0, peer.errors()  # ACK then BYE: no ghost call


def test_hang_up_while_ringing_cancels_without_an_event(
    sipp: StartSipp, make_gateway: MakeGateway
) -> None:
    peer = sipp("no_answer_cancel.xml")
    gw = make_gateway(peer.port)
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, lambda es: any(isinstance(e, Ringing) for e in es))
    gw.hang_up(call_id, now=gw.clock())
    assert peer.wait() == 0, peer.errors()
    time.sleep(0.2)
    events += gw.poll(gw.clock())
    assert [type(e) for e in events] == [Ringing]


@pytest.mark.parametrize("scenario", ["digest.xml", "digest_407.xml"])
def test_digest_challenge_is_answered_once_and_checked_by_sipp(
    sipp: StartSipp, make_gateway: MakeGateway, scenario: str
) -> None:
    peer = sipp(scenario)
    gw = make_gateway(peer.port, username="trunkuser", password="s3cret")
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es))
    gw.hang_up(call_id, now=gw.clock())
    wait_for(gw, final_of, into=events)
    assert peer.wait() == 0, peer.errors()


def test_a_wrong_password_is_refused_by_the_trunk(
    sipp: StartSipp, make_gateway: MakeGateway
) -> None:
    peer = sipp("digest.xml")
    gw = make_gateway(peer.port, username="trunkuser", password="wrong")
    gw.originate(request(), now=0.0)
    events = wait_for(gw, final_of)
    [failed] = [e for e in events if isinstance(e, Failed)]
    assert failed.cause is FailureCause.TRUNK_REFUSED
    assert failed.cause.stops_trunk
    assert "403" in failed.detail
    assert peer.wait() == 0, peer.errors()


def test_a_challenge_without_credentials_is_trunk_refused(
    sipp: StartSipp, make_gateway: MakeGateway
) -> None:
    peer = sipp("reject.xml", status="401", reason="Unauthorized")
    gw = make_gateway(peer.port)
    gw.originate(request(), now=0.0)
    [failed] = [e for e in wait_for(gw, final_of) if isinstance(e, Failed)]
    assert failed.cause is FailureCause.TRUNK_REFUSED
    assert "no credentials" in failed.detail
    assert peer.wait() == 0, peer.errors()


def test_early_media_183_rings_and_dtmf_in_the_call_is_reported(
    sipp: StartSipp, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    peer = sipp("early_media.xml", echo=False)
    gw = make_gateway(peer.port, record_dir=tmp_path)
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, lambda es: any(isinstance(e, DtmfReceived) for e in es))
    kinds = [type(e) for e in events]
    assert kinds[:2] == [Ringing, Answered]  # the 183 rang
    digits = "".join(e.digits for e in events if isinstance(e, DtmfReceived))
    assert digits == "5"  # the early-media "1" came before the answer: not a keyed answer
    gw.hang_up(call_id, now=gw.clock())
    wait_for(gw, final_of, into=events)
    assert peer.wait() == 0, peer.errors()


def test_a_tcp_trunk_carries_the_call(sipp: StartSipp, make_gateway: MakeGateway) -> None:
    peer = sipp("callee_bye.xml", transport="t1", pause_ms="300")
    gw = make_gateway(peer.port, transport="tcp", sip_port=free_port(socket.SOCK_STREAM))
    gw.originate(request(), now=0.0)
    events = wait_for(gw, final_of)
    assert [type(e) for e in events] == [Ringing, Answered, HungUp]
    assert peer.wait() == 0, peer.errors()


def test_a_missing_peer_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from sip import sip_peers

    monkeypatch.setattr(sip_peers, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install sip-tester"):
        sip_peers.need("no-such-sipp-binary", "sip-tester")
    monkeypatch.setattr(sip_peers, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        sip_peers.need("no-such-sipp-binary", "sip-tester")
