"""The media relay on real UDP RTP between aiortp endpoints on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from media_helpers import RTP_PORTS, Heard, band_level, dtmf_wav, pair, run, tone

from dialer.sip.media import (
    SAMPLE_RATE,
    Bridge,
    Codec,
    MediaError,
    MediaSession,
    Recorder,
    decode,
    encode,
    load_audio,
)


def _wav(path: Path, samples: Any, rate: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        data = np.repeat(samples, channels) if channels > 1 else samples
        wav.writeframes(data.astype("<i2").tobytes())
    return path


@pytest.mark.parametrize("codec", list(Codec))
def test_g711_round_trip_is_close_and_idempotent(codec: Codec) -> None:
    samples = tone(440, 0.1)
    once = decode(encode(samples, codec), codec)
    assert np.corrcoef(samples, once)[0, 1] > 0.999
    # a bridge re-encodes with the same law: nothing more is lost
    assert encode(once, codec) == encode(samples, codec)
    # PCMA and PCMU are different laws
    assert encode(samples, Codec.PCMA) != encode(samples, Codec.PCMU)


def test_a_wav_played_on_a_leg_arrives_at_the_peer(tmp_path: Path) -> None:
    # 16 kHz stereo on disk: resampled to 8 kHz mono on the way
    original = tone(440, 1.0, rate=16000)
    path = _wav(tmp_path / "prompt.wav", original, 16000, channels=2)
    expected = load_audio(path)
    assert len(expected) == SAMPLE_RATE

    async def body() -> tuple[float, Any, int]:
        sender, peer = await pair(Codec.PCMA)
        heard = Heard(peer)
        played = await sender.play(path)
        sender.send_dtmf("1")  # pushes the last audio frame out of the jitter buffer
        await asyncio.sleep(0.2)
        sent = sender.frames_sent
        await sender.close()
        await peer.close()
        return played, heard.samples, sent

    played, heard, sent = run(body)
    assert played == pytest.approx(1.0)
    assert sent == 50  # 20 ms frames
    assert len(heard) >= 49 * 160
    assert band_level(heard, 440) > 0.95
    n = min(len(heard), len(expected))
    assert np.corrcoef(heard[:n].astype(float), expected[:n].astype(float))[0, 1] > 0.95


def test_bridge_carries_audio_both_ways_and_transcodes(tmp_path: Path) -> None:
    async def body() -> tuple[Any, Any, bool]:
        callee, leg_a = await pair(Codec.PCMU)  # the trunk speaks µ-law
        agent, leg_b = await pair(Codec.PCMA)  # the agent's phone A-law
        bridge = Bridge(leg_a, leg_b)
        bridge.start()
        agent_heard, callee_heard = Heard(agent), Heard(callee)
        await asyncio.gather(callee.play(tone(440, 1.0)), agent.play(tone(1000, 1.0)))
        await asyncio.sleep(0.2)
        bridge.stop()
        for leg in (callee, leg_a, agent, leg_b):
            await leg.close()
        return agent_heard.samples, callee_heard.samples, bridge.transcoding

    agent_heard, callee_heard, transcoding = run(body)
    assert transcoding
    assert len(agent_heard) >= 45 * 160
    assert len(callee_heard) >= 45 * 160
    assert band_level(agent_heard, 440) > 0.9  # the agent hears the callee
    assert band_level(agent_heard, 1000) < 0.05
    assert band_level(callee_heard, 1000) > 0.9  # and the callee the agent
    assert band_level(callee_heard, 440) < 0.05


def test_recorder_mixes_both_legs_time_aligned(tmp_path: Path) -> None:
    path = tmp_path / "calls" / "call.wav"

    async def body() -> Any:
        callee, leg_a = await pair(Codec.PCMA)
        agent, leg_b = await pair(Codec.PCMU)
        bridge = Bridge(leg_a, leg_b)
        bridge.start()
        recorder = Recorder(path).attach(leg_a, leg_b)
        await callee.play(tone(440, 1.0))  # first the callee speaks,
        await agent.play(tone(1000, 1.0))  # then the agent answers
        await asyncio.sleep(0.1)
        info = await recorder.stop()
        bridge.stop()
        for leg in (callee, leg_a, agent, leg_b):
            await leg.close()
        return info

    info = run(body)
    assert info.path == path
    assert info.size_bytes == path.stat().st_size
    mixed = load_audio(path)
    assert info.duration_s == pytest.approx(len(mixed) / SAMPLE_RATE)
    assert 1.9 <= info.duration_s <= 3.0
    assert band_level(mixed, 440) > 0.3
    assert band_level(mixed, 1000) > 0.3
    # in order: the 440 Hz second comes before the 1000 Hz one
    onset = int(np.argmax(np.abs(mixed) > 3000))
    first, second = mixed[onset : onset + 7000], mixed[onset + 9000 : onset + 16000]
    assert band_level(first, 440) > 0.9
    assert band_level(second, 1000) > 0.9


def test_recorder_records_prompts_played_to_a_leg(tmp_path: Path) -> None:
    # a sweep, so the recording lines up with the file at one lag only
    t = np.arange(int(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
    sweep = (np.sin(2 * np.pi * (300 * t + 1800 * t**2)) * 9000).astype(np.int16)

    async def body() -> Any:
        leg, callee = await pair(Codec.PCMA)
        recorder = Recorder(tmp_path / "r.wav").attach(leg)
        await leg.play(sweep)  # the safe-harbour message, say
        info = await recorder.stop()
        await leg.close()
        await callee.close()
        return info

    recorded = load_audio(run(body).path).astype(float)
    lag = int(np.argmax(np.correlate(recorded, sweep.astype(float), mode="valid")))
    aligned = recorded[lag : lag + len(sweep)]
    assert np.corrcoef(aligned, sweep.astype(float))[0, 1] > 0.98


def test_hold_plays_music_to_one_leg_and_mutes_the_other() -> None:
    async def body() -> tuple[Any, int, Any]:
        callee, leg_a = await pair(Codec.PCMA)
        agent, leg_b = await pair(Codec.PCMA)
        bridge = Bridge(leg_a, leg_b)
        bridge.start()
        callee_heard, agent_heard = Heard(callee), Heard(agent)
        bridge.hold(leg_a, tone(600, 0.3))  # looped until unhold
        assert bridge.on_hold is leg_a
        await callee.play(tone(440, 1.0))  # the callee talks on hold: the agent hears nothing
        agent_frames_on_hold = len(agent_heard.frames)
        bridge.unhold()
        await callee.play(tone(440, 0.4))
        await asyncio.sleep(0.1)
        bridge.stop()
        for leg in (callee, leg_a, agent, leg_b):
            await leg.close()
        return callee_heard.samples, agent_frames_on_hold, agent_heard.samples

    callee_heard, agent_frames_on_hold, agent_heard = run(body)
    assert len(callee_heard) >= 40 * 160
    assert band_level(callee_heard, 600) > 0.9  # music on hold, looped past its 0.3 s
    assert agent_frames_on_hold == 0
    assert band_level(agent_heard, 440) > 0.9  # relayed again after unhold


def test_rfc4733_digits_are_received() -> None:
    async def body() -> list[tuple[str, str]]:
        phone, leg = await pair(Codec.PCMA)
        digits: list[tuple[str, str]] = []
        leg.on_dtmf(lambda digit, how: digits.append((digit, how)))
        for digit in "1290*#":
            phone.send_dtmf(digit)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        with pytest.raises(MediaError, match="not a DTMF digit"):
            phone.send_dtmf("x")
        await phone.close()
        await leg.close()
        return digits

    assert run(body) == [(d, "rfc4733") for d in "1290*#"]


def test_inband_digits_are_detected(tmp_path: Path) -> None:
    path = dtmf_wav("147*2580369#", tmp_path / "digits.wav")

    async def body() -> list[tuple[str, str]]:
        phone, leg = await pair(Codec.PCMU, inband_dtmf=True)
        digits: list[tuple[str, str]] = []
        leg.on_dtmf(lambda digit, how: digits.append((digit, how)))
        await phone.play(path)
        await phone.play(tone(440, 0.2))  # flushes the last digit through the jitter buffer
        await asyncio.sleep(0.2)
        await phone.close()
        await leg.close()
        return digits

    assert run(body) == [(d, "inband") for d in "147*2580369#"]


def test_ports_come_from_the_range_and_bad_input_is_explained() -> None:
    async def body() -> None:
        sessions = [await MediaSession.open("127.0.0.1", (31000, 31010)) for _ in range(3)]
        ports = {s.local_port for s in sessions}
        assert len(ports) == 3
        assert all(p % 2 == 0 and 31000 <= p < 31010 for p in ports)
        with pytest.raises(MediaError, match="payload type 18"):
            sessions[0].set_remote("127.0.0.1", 4000, 18)
        with pytest.raises(MediaError, match=r"within 1024\.\.65534"):
            await MediaSession.open("127.0.0.1", (80, 90))
        lonely = await MediaSession.open("127.0.0.1", (31100, 31110))
        with pytest.raises(MediaError, match="no remote address"):
            lonely.send_dtmf("1")
        await lonely.close()
        for session in sessions:
            await session.close()

    run(body)


def test_a_file_that_is_not_a_wav_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "prompt.mp3"
    path.write_bytes(b"ID3\x03not a wav")
    with pytest.raises(MediaError, match=r"sox in\.any -r 8000"):
        load_audio(path)


def test_the_answer_may_switch_the_law_both_ways() -> None:
    expected = tone(440, 0.6)

    async def body() -> tuple[Any, Any]:
        leg = await MediaSession.open("127.0.0.1", RTP_PORTS, Codec.PCMA)  # offered PCMA first
        phone = await MediaSession.open("127.0.0.1", RTP_PORTS, Codec.PCMU)
        leg.set_remote("127.0.0.1", phone.local_port, 0)  # the answer picked PCMU
        phone.set_remote("127.0.0.1", leg.local_port, 0)
        assert leg.codec is Codec.PCMU
        heard_by_leg, heard_by_phone = Heard(leg), Heard(phone)
        await asyncio.gather(phone.play(expected), leg.play(expected))
        phone.send_dtmf("1")
        leg.send_dtmf("1")
        await asyncio.sleep(0.2)
        await leg.close()
        await phone.close()
        return heard_by_leg.samples, heard_by_phone.samples

    for heard in run(body):
        n = min(len(heard), len(expected))
        assert n >= 29 * 160
        assert np.corrcoef(heard[:n].astype(float), expected[:n].astype(float))[0, 1] > 0.99


def test_symmetric_rtp_answers_where_the_peer_sends_from() -> None:
    async def body() -> Any:
        leg = await MediaSession.open("127.0.0.1", RTP_PORTS, Codec.PCMA, symmetric=True)
        phone = await MediaSession.open("127.0.0.1", RTP_PORTS, Codec.PCMA)
        phone.set_remote("127.0.0.1", leg.local_port, 8)  # the leg never learns it from SDP
        echo = leg.on_audio(lambda samples, _at: leg.send_frame(samples))
        heard = Heard(phone)
        await phone.play(tone(1000, 0.5))
        await asyncio.sleep(0.2)
        echo()
        await leg.close()
        await phone.close()
        return heard.samples

    heard = run(body)
    assert len(heard) >= 20 * 160
    assert band_level(heard, 1000) > 0.95


SIPP_PCAPS = Path("/usr/share/sip-tester")


def _rtp_payloads(pcap: Path) -> list[tuple[int, int, bytes]]:
    """(payload type, marker, payload) of each RTP packet of a classic Ethernet pcap."""
    data = pcap.read_bytes()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4
    packets, offset = [], 24
    while offset < len(data):
        length = struct.unpack("<I", data[offset + 8 : offset + 12])[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        ip = frame[14:]
        rtp = ip[(ip[0] & 15) * 4 + 8 :]
        packets.append((rtp[1] & 0x7F, rtp[1] >> 7, rtp[12:]))
    return packets


def test_sipp_s_rfc4733_packets_are_understood() -> None:
    """The telephone-events SIPp plays (its own pcaps, not aiortp's encoder) come out as digits."""
    pcaps = [SIPP_PCAPS / f"dtmf_2833_{digit}.pcap" for digit in "0123456789"]
    if not pcaps[0].exists():
        pytest.fail("SIPp's pcaps are missing; .ci/run installs them (apt-get install sip-tester)")

    async def body() -> list[tuple[str, str]]:
        leg = await MediaSession.open("127.0.0.1", RTP_PORTS, Codec.PCMA)
        digits: list[tuple[str, str]] = []
        leg.on_dtmf(lambda digit, how: digits.append((digit, how)))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        seq = 1000
        for n, pcap in enumerate(pcaps):
            for payload_type, marker, payload in _rtp_payloads(pcap):
                # one stream: our sequence numbers and timestamps, SIPp's events
                header = struct.pack(
                    "!BBHII", 0x80, marker << 7 | payload_type, seq, 8000 * (n + 1), 0xC0FFEE
                )
                sender.sendto(header + payload, ("127.0.0.1", leg.local_port))
                seq += 1
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)
        sender.close()
        await leg.close()
        return digits

    assert run(body) == [(d, "rfc4733") for d in "0123456789"]
