"""An agentless interview on a real SIP call: the questions spoken by text-to-speech
(espeak-ng, Mandarin for a zh-Hans questionnaire), the caller's answers keyed as RFC 4733
digits by SIPp one key at a time, collected by :class:`dialer.ivr_calls.IvrCalls` and
applied by the survey engine; the goodbye hangs up."""

from __future__ import annotations

import time
import wave
from pathlib import Path

from sip.sip_peers import MakeGateway, StartSipp, need, request
from survey_builders import TEA_IVR

from dialer.gateway import Answered, DtmfReceived, GatewayEvent, HungUp, MessageFinished
from dialer.ivr import SurveyIvr
from dialer.ivr_calls import IvrCalls
from dialer.sip.speech import Speech
from surveys.engine import InterviewEngine, InterviewStatus
from surveys.schema import parse_questionnaire

QUESTIONNAIRE = TEA_IVR


def test_a_caller_answers_an_ivr_survey_by_keys_on_a_sip_call(
    sipp: StartSipp, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    need("espeak-ng", "espeak-ng")
    speech = Speech(cache_dir=tmp_path / "speech")
    peer = sipp("ivr_keys.xml", echo=False, first_ms="1500", then_ms="2500")
    gw = make_gateway(peer.port, speech=speech)
    driver = SurveyIvr(InterviewEngine(parse_questionnaire(QUESTIONNAIRE)), language="zh-Hans")
    ivr = IvrCalls(gw, driver)
    call_id = gw.originate(request(), now=0.0)
    events: list[GatewayEvent] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(isinstance(e, HungUp) for e in events):
        now = gw.clock()
        for event in gw.poll(now):
            events.append(event)
            if isinstance(event, Answered):
                ivr.start(event.call_id, "lead-1", "att-1", now)
            else:
                ivr.handle(event, now)
        ivr.tick(now)
        gw.wait(0.05)
    assert any(isinstance(e, HungUp) for e in events), [type(e).__name__ for e in events]
    keyed = "".join(e.digits for e in events if isinstance(e, DtmfReceived))
    assert keyed == "142#"  # one event per key, as a real line reports them
    [interview] = driver.finished()
    assert interview.outcome == "completed"
    assert interview.state.status is InterviewStatus.COMPLETED
    assert interview.state.answers["likes"].value == "yes"
    assert interview.state.answers["age"].value == 42
    # every prompt was spoken: the intro with the first question, the second, the goodbye
    played = [e.message_id for e in events if isinstance(e, MessageFinished)]
    assert played[-1] == "ivr-goodbye"
    spoken = sorted((tmp_path / "speech").glob("cmn-*.wav"))
    assert len(spoken) == 3
    for path in spoken:
        with wave.open(str(path)) as wav:
            assert wav.getframerate() == 8000
            assert wav.getnframes() > 8000 * 0.5  # at least half a second of speech
    assert not ivr.active
    assert peer.wait() == 0, peer.errors()  # SIPp saw our BYE after the goodbye
    del call_id


def test_speech_is_rendered_once_per_text_and_voice(tmp_path: Path) -> None:
    need("espeak-ng", "espeak-ng")
    speech = Speech(cache_dir=tmp_path)
    first = speech.render("您好", "zh-Hans")
    assert speech.render("  您好 ", "zh-Hans") == first  # same words: the same file
    assert speech.render("您好", "zh-Hant") == first  # Taiwan Mandarin: the same voice
    assert speech.render("Hello", "en") != first
    mtime = first.stat().st_mtime_ns
    speech.render("您好", "zh-Hans")
    assert first.stat().st_mtime_ns == mtime  # not rendered again
