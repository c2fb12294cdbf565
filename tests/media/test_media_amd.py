"""Answering-machine and beep detection on espeak-ng prompts, offline and over RTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from media_helpers import Heard, band_level, espeak, g711, pair, run, tone

from dialer.sip.media import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AmdPolicy,
    AmdSettings,
    AmdVerdict,
    AnswerDetector,
    BeepDetector,
    Codec,
    DtmfDetector,
    detect_answer,
    leave_message,
    wait_for_beep,
)

GREETING = (
    "Hi, you have reached the Li family. We cannot take your call right now, "
    "please leave a message after the tone."
)
DETECT = AmdSettings(policy=AmdPolicy.detect)


def _silence(seconds: float) -> Any:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def _answer(speech: Any, *, beep: bool) -> Any:
    tail = [_silence(0.4), tone(1000, 0.5), _silence(1.0)] if beep else [_silence(3.0)]
    return g711(np.concatenate([_silence(0.3), speech, *tail]))


def _verdict(samples: Any) -> AmdVerdict | None:
    detector = AnswerDetector(DETECT)
    for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        if detector.feed(samples[start : start + FRAME_SAMPLES]) is not None:
            break
    return detector.verdict


def _beep_ends(samples: Any) -> float | None:
    detector = BeepDetector()
    for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        if detector.feed(samples[start : start + FRAME_SAMPLES]):
            return start / SAMPLE_RATE
    return None


@pytest.mark.parametrize(("text", "voice"), [("Hello?", "en-us"), ("Yes, hello.", "en-gb")])
def test_a_short_hello_then_silence_is_a_human(tmp_path: Path, text: str, voice: str) -> None:
    samples = _answer(espeak(text, tmp_path / "h.wav", voice=voice), beep=False)
    assert _verdict(samples) is AmdVerdict.human
    assert _beep_ends(samples) is None


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 170), ("en-gb-scotland", 140)])
def test_a_long_greeting_then_a_beep_is_a_machine(tmp_path: Path, voice: str, speed: int) -> None:
    speech = espeak(GREETING, tmp_path / "m.wav", voice=voice, speed=speed)
    samples = _answer(speech, beep=True)
    assert _verdict(samples) is AmdVerdict.machine
    # the message starts once the beep is over, not during the greeting
    ends = _beep_ends(samples)
    beep_end = (0.3 * SAMPLE_RATE + len(speech)) / SAMPLE_RATE + 0.9
    assert ends is not None
    assert beep_end - 0.05 <= ends <= beep_end + 0.1  # to a 20 ms frame


def test_nothing_heard_is_unknown() -> None:
    assert _verdict(g711(_silence(5.0))) is AmdVerdict.unknown


SPEECH = [
    GREETING,
    "Good morning, I would like to ask about my bill",
    "One two three four five six seven eight nine zero",
    "Please hold the line while I transfer you",
]


@pytest.mark.parametrize("voice", ["en-us", "en-gb", "en-us+f3", "cmn"])
def test_speech_is_not_an_inband_digit(tmp_path: Path, voice: str) -> None:
    for i, text in enumerate(SPEECH):
        speech = g711(espeak(text, tmp_path / f"s{i}.wav", voice=voice, speed=170))
        assert DtmfDetector().feed(speech) == [], text


def test_over_rtp_the_default_policy_passes_every_answer_and_detect_finds_the_machine(
    tmp_path: Path,
) -> None:
    greeting = np.concatenate(
        [espeak(GREETING, tmp_path / "g.wav"), _silence(0.4), tone(1000, 0.5), _silence(0.4)]
    )

    async def body() -> tuple[AmdVerdict, AmdVerdict, float, Any, bool]:
        machine, leg = await pair(Codec.PCMA)
        default = await detect_answer(leg, AmdSettings())
        tape = Heard(machine)
        playing = asyncio.ensure_future(machine.play(greeting))
        verdict = await detect_answer(leg, DETECT)
        frames_before_beep = len(tape.frames)
        left = await leave_message(leg, tone(700, 0.5), beep_timeout_s=15)
        await playing
        await machine.play(_silence(0.1))  # flushes the last frame through the jitter buffer
        no_beep = await wait_for_beep(leg, timeout_s=0.5)  # nothing more comes
        await machine.close()
        await leg.close()
        return default, verdict, left, tape.samples, frames_before_beep == 0 and not no_beep

    default, verdict, left, tape, quiet_until_the_beep = run(body)
    assert default is AmdVerdict.not_used
    assert verdict is AmdVerdict.machine
    assert left == pytest.approx(0.5)
    assert band_level(tape, 700) > 0.9  # the machine taped our message
    assert quiet_until_the_beep
