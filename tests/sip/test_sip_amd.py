"""Answering-machine detection on real calls: the SIP gateway listens to the callee's RTP.

The callees are baresip phones answering a trunk INVITE and speaking espeak-ng prompts:
a person's short "Hello?" then silence, and an answering machine's long greeting, its beep and
silence. With ``amd.policy = detect`` the gateway reports the answer with the detector's
verdict (the 200 OK stays the answer time), and with ``leave_message`` a message played to the
machine starts after its beep. Under the default policy nothing is listened to.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from media_helpers import espeak, tone
from sip.sip_peers import Baresip, MakeGateway, energy_at, need, request, wait_for

from dialer.gateway import (
    Answered,
    AnswerKind,
    GatewayEvent,
    HangupParty,
    HungUp,
    MessageFinished,
)
from dialer.sip.gateway import SipGateway
from dialer.sip.media import SAMPLE_RATE, AmdPolicy, AmdSettings, write_wav

GREETING = (
    "Hi, you have reached the Li family. We cannot take your call right now, "
    "please leave a message after the tone."
)
LEAD_IN_S = 0.3
BEEP_GAP_S = 0.4
BEEP_S = 0.5
MESSAGE_HZ = 440.0


def _silence(seconds: float) -> Any:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def _callee(tmp_path: Path, samples: Any, name: str) -> Baresip:
    """A baresip phone that answers the trunk's INVITE and sends ``samples`` then silence
    (baresip ends its call when the file runs out: the silence outlasts the test)."""
    need("baresip", "baresip-core")
    source = tmp_path / f"{name}.wav"
    write_wav(source, np.concatenate([samples, _silence(40.0)]))
    workdir = tmp_path / name
    workdir.mkdir()
    return Baresip(workdir, source, user=request().params.callee_number).start()


def _answered(events: list[GatewayEvent]) -> Answered:
    [answered] = [e for e in events if isinstance(e, Answered)]
    return answered


def _dial(gw: SipGateway, kind: AnswerKind) -> tuple[str, list[GatewayEvent], float]:
    """Call the phone until it answers as ``kind``: (call id, events, seconds listened)."""
    call_id = gw.originate(request(), now=0.0)
    events = wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es), timeout=20)
    answered = _answered(events)
    assert answered.kind is kind
    assert answered.media_answer_s is not None
    return call_id, events, answered.at_s - answered.media_answer_s


@pytest.fixture
def person(tmp_path: Path) -> Any:
    speech = espeak("Hello?", tmp_path / "hello.wav")
    phone = _callee(tmp_path, np.concatenate([_silence(LEAD_IN_S), speech]), "person")
    yield phone
    phone.stop()


@pytest.fixture
def machine(tmp_path: Path) -> Any:
    speech = espeak(GREETING, tmp_path / "greeting.wav")
    samples = np.concatenate(
        [_silence(LEAD_IN_S), speech, _silence(BEEP_GAP_S), tone(1000.0, BEEP_S)]
    )
    phone = _callee(tmp_path, samples, "machine")
    phone.greeting_s = len(speech) / SAMPLE_RATE  # type: ignore[attr-defined]
    yield phone
    phone.stop()


DETECT = AmdSettings(policy=AmdPolicy.detect, leave_message=True)


def test_a_person_saying_hello_is_reported_a_person_soon_after_the_200_ok(
    make_gateway: MakeGateway, person: Baresip
) -> None:
    gw = make_gateway(person.port, amd=DETECT)
    call_id, events, listened = _dial(gw, AnswerKind.HUMAN)
    print(f"\n[amd, person] verdict after {listened:.2f} s of listening")
    # the hello (under a second) and the detector's 0.75 s of silence after it
    assert 0.5 < listened < 3.0, listened
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
    wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)


def test_a_machine_is_reported_a_machine_and_its_message_starts_after_the_beep(
    make_gateway: MakeGateway, machine: Baresip, tmp_path: Path
) -> None:
    message = tmp_path / "message.wav"
    write_wav(message, tone(MESSAGE_HZ, 1.5))
    gw = make_gateway(machine.port, amd=DETECT, messages={"machine_message": message})
    call_id, events, listened = _dial(gw, AnswerKind.MACHINE)
    greeting_s = machine.greeting_s  # type: ignore[attr-defined]
    # decided inside the greeting (a first utterance over 1.6 s), long before its end
    assert listened < greeting_s, (listened, greeting_s)
    gw.play_message(call_id, "machine_message", now=gw.clock())
    wait_for(
        gw, lambda es: any(isinstance(e, MessageFinished) for e in es), into=events, timeout=30
    )
    timings = gw.timings[call_id]
    beep_end = timings["beep_ended"] - timings["answered"]
    started = timings["message"] - timings["answered"]
    expected = LEAD_IN_S + greeting_s + BEEP_GAP_S + BEEP_S
    print(
        f"\n[amd, machine] verdict after {listened:.2f} s; beep over at {beep_end:.2f} s "
        f"(sent until {expected:.2f} s); message from {started:.2f} s"
    )
    assert expected - 0.3 <= beep_end <= expected + 0.6, (beep_end, expected)
    assert beep_end <= started <= beep_end + 0.2
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.SYSTEM)
    wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)
    time.sleep(0.5)
    # what the machine recorded (the frames it received: we sent nothing while listening
    # and waiting for the beep): the whole message
    heard = machine.heard()
    assert len(heard) / SAMPLE_RATE == pytest.approx(1.5, abs=0.25)
    assert energy_at(heard, MESSAGE_HZ) > 0.5


def test_without_detection_a_machine_is_passed_on_at_once_as_a_person(
    make_gateway: MakeGateway, machine: Baresip
) -> None:
    gw = make_gateway(machine.port)  # the default: pass every answer to an agent
    call_id, events, listened = _dial(gw, AnswerKind.HUMAN)
    assert listened == pytest.approx(0.0, abs=0.05)
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.AGENT)
    wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), into=events)


def test_a_callee_hanging_up_while_listened_to_is_answered_first_never_dropped_silently(
    make_gateway: MakeGateway, machine: Baresip
) -> None:
    gw = make_gateway(machine.port, amd=DETECT)
    call_id = gw.originate(request(), now=0.0)
    deadline = time.monotonic() + 15
    while "answered" not in gw.timings.get(call_id, {}):  # the 200 OK, before any verdict
        assert time.monotonic() < deadline, "no answer"
        time.sleep(0.02)
    gw.hang_up(call_id, now=gw.clock(), by=HangupParty.SYSTEM)
    events = wait_for(gw, lambda es: any(isinstance(e, HungUp) for e in es), timeout=10)
    kinds = [type(e).__name__ for e in events if isinstance(e, Answered | HungUp)]
    assert kinds == ["Answered", "HungUp"], kinds
    assert _answered(events).kind is AnswerKind.HUMAN  # unknown: counted as a person


@pytest.mark.parametrize(
    ("detection", "amd_policy", "expected"),
    [
        (False, "hang_up", (AmdPolicy.pass_all, False)),
        (True, "hang_up", (AmdPolicy.detect, False)),
        (True, "leave_message", (AmdPolicy.detect, True)),
    ],
)
def test_a_campaigns_answer_detection_setting_reaches_the_sip_gateway(
    configure: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    detection: bool,
    amd_policy: str,
    expected: tuple[AmdPolicy, bool],
) -> None:
    import uuid

    from dialer.gateway import RealTimeClock
    from dialer.run_control import PacerSettings, live_gateway

    configure(database_url=f"sqlite:///{tmp_path / 'x.db'}", gateway="sip", sip_port="0")
    monkeypatch.setenv("PILOTDIAL_SIP_TRUNK_HOST", "127.0.0.1")
    settings = PacerSettings(agents_mode="live", answer_detection=detection, amd_policy=amd_policy)
    gateway, _sleep, close = live_gateway(uuid.uuid4(), settings, RealTimeClock())
    try:
        assert isinstance(gateway, SipGateway)
        amd = gateway.config.amd
        assert (amd.policy, amd.leave_message) == expected
    finally:
        close()
