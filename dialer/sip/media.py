"""The media relay: RTP legs, prompts, bridges, recordings, hold, DTMF and answer detection.

Everything here is asyncio on one event loop (the gateway's), on top of aiortp 0.8.0 (RTP,
RTCP, jitter buffer, RFC 4733, G.711 tables) and numpy. All use of aiortp is in this module.

The API the SIP gateway codes against::

    session = await MediaSession.open("127.0.0.1", (20000, 29999), Codec.PCMA,
                                      inband_dtmf=False, symmetric=False)  # symmetric: NAT
    session.local_port                      # even; RTCP on local_port + 1; put it in the SDP
    session.set_remote(ip, port, payload_type)  # from the peer's SDP: 8 PCMA, 0 PCMU
    await session.play("prompt.wav")        # 20 ms frames, paced; any PCM WAV, resampled
    session.stop_playing()                  # barge in / cancel a prompt
    session.send_dtmf("5")                  # RFC 4733, payload type 101
    unsubscribe = session.on_dtmf(lambda digit, how: ...)  # how: "rfc4733" or "inband"
    unsubscribe = session.on_audio(lambda samples, at: ...)  # decoded 8 kHz int16 frames

    bridge = Bridge(callee, agent)          # relays both ways, transcodes PCMA <-> PCMU
    bridge.start(); bridge.hold(callee, "moh.wav"); bridge.unhold(); bridge.stop()

    recorder = Recorder(path)               # one mixed WAV per call, both legs time-aligned
    recorder.attach(callee, agent)          # what each party says, plus prompts we play
    info = await recorder.stop()            # RecordingInfo(path, duration_s, size, sha256)

    verdict = await detect_answer(callee, AmdSettings())  # default policy: pass to an agent
    await leave_message(callee, "message.wav")  # after the machine's beep (wait_for_beep)
    await session.close()

    session.stats                           # aiortp's packets, loss, jitter (RTP units)

``MediaError`` is raised for what cannot be done as asked (a file that is not a PCM WAV, no
free port in the range, a payload type other than 0/8, DTMF before ``set_remote``).

Design notes:

- Arrival-driven relay: a frame received on one leg is decoded, handed to the listeners and,
  through a bridge, re-encoded with the other leg's codec and sent at once; no per-call timer
  runs, so idle legs cost nothing. G.711 decode then encode with the same law gives back the
  same bytes, so an untranscoded bridge loses nothing.
- A leg's output is owned by one source at a time: while a prompt (or music on hold) plays,
  bridged audio to that leg is dropped.
- Time alignment in the recorder: each leg's frames are placed by their RTP timestamp
  relative to the arrival of the leg's first frame, so jitter does not smear the mix; a late
  frame (over 1 s) is dropped rather than written out of place.
- Recordings are WAV (8 kHz, 16-bit, mono). OGG/Opus is not done: no maintained pure Python
  encoder is a dependency of ours. ``dialer.recordings.store_recording`` keeps the file.
- Capacity (``benchmarks/media_relay.py``, 2 shared cores, load average about 4): 200 bridged,
  transcoded and recorded call pairs in one process at 2.4 ms of CPU per call-second (about
  half a core), 0.2 % loss (each stream's last frame, by construction), 10 ms jitter.

Answering-machine detection (:class:`AnswerDetector`) is a cadence heuristic on 20 ms frame
energies: a long first utterance (over ``greeting_max_s``) or many words is a machine; a short
greeting followed by ``after_greeting_silence_s`` of silence is a human; nothing heard within
``initial_silence_s`` is unknown. The default policy (:attr:`AmdPolicy.pass_all`) runs no
detection and passes every answer to an agent, because a human taken for a machine is an
abandoned call under the rules. Measured by ``benchmarks/media_relay.py --amd`` on 40 espeak-ng
prompts (20 "hello" + silence, 20 long greetings + beep; four voices, three speeds, G.711,
background noise), with the default :class:`AmdSettings`::

                      said human  said machine  unknown
    human prompts         20           0           0
    machine prompts        4          16           0       (accuracy 90 %)
    beep found after the machine greetings: 20 of 20; false beeps on the human ones: 0

The four misses are all the shortest greeting ("Leave a message."), as short as a human
hello: cadence alone cannot tell them apart (a shorter ``greeting_max_s`` of 1.2 s starts
calling "Hello, speaking." a machine). Re-run the benchmark after changing the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import random
import socket
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from aiortp import RTPSession
from aiortp.codecs import get_codec

__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "TELEPHONE_EVENT_PT",
    "AmdPolicy",
    "AmdSettings",
    "AmdVerdict",
    "AnswerDetector",
    "BeepDetector",
    "Bridge",
    "Codec",
    "DtmfDetector",
    "MediaError",
    "MediaSession",
    "Recorder",
    "RecordingInfo",
    "decode",
    "detect_answer",
    "encode",
    "leave_message",
    "load_audio",
    "wait_for_beep",
    "write_wav",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
TELEPHONE_EVENT_PT = 101

Samples = npt.NDArray[np.int16]
AudioListener = Callable[[Samples, float], None]
DtmfListener = Callable[[str, str], None]


class MediaError(Exception):
    """A media operation that cannot be done as asked (bad file, no free port, bad SDP)."""


class Codec(StrEnum):
    """The G.711 laws we offer: PCMA (A-law, Europe and China) and PCMU (µ-law)."""

    PCMA = "PCMA"
    PCMU = "PCMU"

    @property
    def payload_type(self) -> int:
        """The static RTP payload type (RFC 3551)."""
        return 8 if self is Codec.PCMA else 0

    @classmethod
    def from_payload_type(cls, payload_type: int) -> Codec:
        """The codec of a static payload type; anything else is a MediaError."""
        for codec in cls:
            if codec.payload_type == payload_type:
                return codec
        raise MediaError(
            f"RTP payload type {payload_type} is not offered; use 8 (PCMA) or 0 (PCMU)"
        )


_CODECS = {codec: get_codec(codec.payload_type) for codec in Codec}


def encode(samples: Samples, codec: Codec) -> bytes:
    """16-bit samples to G.711 bytes (aiortp's lookup tables; ``audioop`` is gone in 3.13)."""
    return _CODECS[codec].encode(samples.astype("<i2", copy=False).tobytes())


def decode(payload: bytes, codec: Codec) -> Samples:
    """G.711 bytes to 16-bit samples."""
    return np.frombuffer(_CODECS[codec].decode(payload), dtype="<i2").astype(np.int16)


# --------------------------------------------------------------------------- audio files


def load_audio(path: Path | str) -> Samples:
    """A PCM WAV as 8 kHz mono 16-bit samples (channels averaged, resampled if needed)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise MediaError(
            f"{path} is not a readable PCM WAV ({exc}); convert it with "
            "`sox in.any -r 8000 -c 1 -b 16 out.wav`"
        ) from exc
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        as_int = (
            bytes3[:, 0].astype(np.int32)
            | (bytes3[:, 1].astype(np.int32) << 8)
            | (bytes3[:, 2].astype(np.int32) << 16)
        )
        data = np.where(as_int >= 1 << 23, as_int - (1 << 24), as_int).astype(np.float64) / 256
    else:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly

        divisor = gcd(rate, SAMPLE_RATE)
        data = resample_poly(data, SAMPLE_RATE // divisor, rate // divisor)
    return np.clip(np.round(data), -32768, 32767).astype(np.int16)


def write_wav(path: Path | str, samples: npt.NDArray[Any]) -> None:
    """Write 8 kHz 16-bit samples as a WAV file: mono from a 1-D array, one channel per column
    of a 2-D one. Written beside it and renamed, so no reader (another process) sees half a
    file."""
    target = Path(path)
    data = np.asarray(samples).astype("<i2")
    staged = target.with_suffix(f".{os.getpid()}.part")
    with wave.open(str(staged), "wb") as wav:
        wav.setnchannels(1 if data.ndim == 1 else data.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(data.tobytes())
    staged.replace(target)


def _frames(samples: Samples) -> list[Samples]:
    padded = np.zeros(-(-len(samples) // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(samples)] = samples
    return list(padded.reshape(-1, FRAME_SAMPLES))


# --------------------------------------------------------------------------- RTP legs


def _port_is_free(ip: str, port: int) -> bool:
    """Both the RTP port and its RTCP neighbour can be bound right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        sockets[0].bind((ip, port))
        sockets[1].bind((ip, port + 1))
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()
    return True


class MediaSession:
    """One RTP stream (a leg of a call) on a local port, with its codec and listeners."""

    def __init__(self, rtp: RTPSession, local_ip: str, local_port: int, codec: Codec) -> None:
        self._rtp = rtp
        self.local_ip = local_ip
        self.local_port = local_port
        self.codec = codec
        self.remote: tuple[str, int] | None = None
        self._audio_listeners: list[AudioListener] = []
        self._prompt_listeners: list[AudioListener] = []
        self._dtmf_listeners: list[DtmfListener] = []
        self._timestamp = random.getrandbits(32)
        self._playing: asyncio.Task[float] | None = None
        self._inband: DtmfDetector | None = None
        self._symmetric = False
        self._loop = asyncio.get_running_loop()
        self.frames_received = 0
        self.frames_sent = 0
        self.last_timestamp = 0  # RTP timestamp of the frame being handed to listeners
        self.sent_timestamp = 0  # RTP timestamp of the last frame sent
        self.closed = False
        rtp.on_audio = self._received
        rtp.on_dtmf = self._received_rfc4733

    @classmethod
    async def open(
        cls,
        local_ip: str = "127.0.0.1",
        port_range: tuple[int, int] = (20000, 29999),
        codec: Codec = Codec.PCMA,
        *,
        inband_dtmf: bool = False,
        symmetric: bool = False,
    ) -> MediaSession:
        """Bind a leg on an even port of ``port_range`` (RTCP on the next one).

        ``symmetric``: send to wherever the peer's RTP comes from (RFC 4961; a peer behind
        NAT), even before :meth:`set_remote`. ``inband_dtmf``: also listen for DTMF tones in
        the audio; turn it on only when the peer's SDP has no telephone-event, or a peer that
        sends both would have each digit reported twice.
        """
        first, last = port_range
        if not 1024 <= first < last <= 65534:
            raise MediaError(f"RTP port range {port_range} must be within 1024..65534, low first")
        evens = list(range(first + first % 2, last, 2))
        start = random.randrange(len(evens))  # parallel gateways rarely race for one port
        for port in evens[start:] + evens[:start]:
            if not _port_is_free(local_ip, port):
                continue
            try:
                rtp = await RTPSession.create(
                    local_addr=(local_ip, port),
                    # aiortp wants a peer at bind time; nothing is sent before set_remote
                    remote_addr=(local_ip, 9),
                    payload_type=codec.payload_type,
                    dtmf_payload_type=TELEPHONE_EVENT_PT,
                    jitter_prefetch=1,
                    skip_audio_gaps=True,
                    plc=False,
                    symmetric_rtp=symmetric,
                )
            except OSError:
                continue  # taken between the check and the bind
            session = cls(rtp, local_ip, port, codec)
            session._symmetric = symmetric
            if inband_dtmf:
                session._inband = DtmfDetector()
            return session
        raise MediaError(f"no free RTP port pair in {first}..{last} on {local_ip}; widen the range")

    def set_remote(self, ip: str, port: int, payload_type: int | None = None) -> None:
        """Where to send, from the peer's SDP; ``payload_type`` switches the codec (0 or 8)."""
        if not 0 < port < 65536:
            raise MediaError(f"remote RTP port {port} is not a port number")
        if payload_type is not None:
            self.codec = Codec.from_payload_type(payload_type)
            _switch_codec(self._rtp, self.codec)
        self.remote = (ip, port)
        self._rtp.update_remote((ip, port))

    # -- listening

    def on_audio(self, listener: AudioListener) -> Callable[[], None]:
        """Call ``listener(samples, at)`` for each decoded frame received; returns unsubscribe."""
        return _subscribe(self._audio_listeners, listener)

    def on_prompt(self, listener: AudioListener) -> Callable[[], None]:
        """Call ``listener(samples, at)`` for each frame of a prompt played to this leg."""
        return _subscribe(self._prompt_listeners, listener)

    def on_dtmf(self, listener: DtmfListener) -> Callable[[], None]:
        """Call ``listener(digit, how)`` per digit, ``how`` being "rfc4733" or "inband"."""
        return _subscribe(self._dtmf_listeners, listener)

    def _received(self, pcm: bytes, timestamp: int) -> None:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        at = self._loop.time()
        if self._symmetric:  # aiortp has latched the source address of this packet
            self.remote = self._rtp._remote_addr
        self.frames_received += 1
        self.last_timestamp = timestamp
        for listener in list(self._audio_listeners):
            listener(samples, at)
        if self._inband is not None:
            for digit in self._inband.feed(samples):
                self._dtmf(digit, "inband")

    def _received_rfc4733(self, digit: str, duration: int) -> None:
        self._dtmf(digit, "rfc4733")

    def _dtmf(self, digit: str, how: str) -> None:
        for listener in list(self._dtmf_listeners):
            listener(digit, how)

    # -- sending

    @property
    def playing(self) -> bool:
        """True while a prompt or music owns this leg's output."""
        return self._playing is not None and not self._playing.done()

    def send_frame(self, samples: Samples) -> None:
        """Send one frame now, encoded with this leg's codec (dropped before set_remote)."""
        if self.remote is None or self.closed:
            return
        self._rtp.send_audio(encode(samples, self.codec), self._timestamp)
        self.sent_timestamp = self._timestamp
        self._timestamp = (self._timestamp + len(samples)) & 0xFFFFFFFF
        self.frames_sent += 1

    def forward(self, samples: Samples) -> None:
        """Bridged audio: sent unless a prompt owns the leg."""
        if not self.playing:
            self.send_frame(samples)

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        """Send one digit as RFC 4733 telephone events."""
        if self.remote is None or self.closed:
            raise MediaError("the leg has no remote address yet; call set_remote first")
        try:
            self._rtp.send_dtmf(digit, duration_ms, timestamp=self._timestamp)
        except ValueError as exc:
            raise MediaError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)") from exc
        self._timestamp = (self._timestamp + duration_ms * SAMPLE_RATE // 1000) & 0xFFFFFFFF

    async def play(self, audio: Path | str | Samples, *, loop: bool = False) -> float:
        """Stream a WAV (or samples) in paced 20 ms frames; returns the seconds played.

        A new ``play`` or :meth:`stop_playing` ends the previous one; ``loop`` repeats until
        stopped (music on hold).
        """
        samples = audio if isinstance(audio, np.ndarray) else load_audio(audio)
        self.stop_playing()
        task = asyncio.ensure_future(self._play(_frames(samples), loop))
        self._playing = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _play(self, frames: list[Samples], loop: bool) -> float:
        sent = 0
        start = self._loop.time()
        try:
            while frames:
                for frame in frames:
                    # absolute deadlines: a late wake-up never accumulates drift
                    delay = start + sent * FRAME_S - self._loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    self.send_frame(frame)
                    at = self._loop.time()
                    for listener in list(self._prompt_listeners):
                        listener(frame, at)
                    sent += 1
                if not loop:
                    break
        except asyncio.CancelledError:
            pass
        return sent * FRAME_S

    def stop_playing(self) -> None:
        """Stop the prompt or music playing to this leg, if any."""
        if self._playing is not None and not self._playing.done():
            self._playing.cancel()
        self._playing = None

    @property
    def stats(self) -> dict[str, Any]:
        """aiortp's RTP statistics (packets, loss, jitter) plus our frame counts."""
        result = dict(self._rtp.stats)
        result.update(frames_received=self.frames_received, frames_sent=self.frames_sent)
        return result

    async def close(self) -> None:
        """Stop playing and release the ports."""
        if self.closed:
            return
        self.closed = True
        self.stop_playing()
        self._audio_listeners.clear()
        self._prompt_listeners.clear()
        self._dtmf_listeners.clear()
        await self._rtp.close()


def _switch_codec(rtp: RTPSession, codec: Codec) -> None:
    """Change a bound session's codec both ways (the answer's SDP may pick the other law).

    aiortp 0.8.0 fixes the payload type and the decoder when the session is created and has no
    public way to change them; this is the one place that reaches into its attributes.
    """
    rtp._payload_type = codec.payload_type
    rtp._codec = _CODECS[codec]
    if rtp._sender is not None:
        rtp._sender._payload_type = codec.payload_type


def _subscribe(listeners: list[Any], listener: Any) -> Callable[[], None]:
    listeners.append(listener)

    def unsubscribe() -> None:
        with contextlib.suppress(ValueError):
            listeners.remove(listener)

    return unsubscribe


# --------------------------------------------------------------------------- bridge and hold


class Bridge:
    """Relay audio between two legs both ways; each leg re-encodes with its own codec."""

    def __init__(self, leg_a: MediaSession, leg_b: MediaSession) -> None:
        self.leg_a = leg_a
        self.leg_b = leg_b
        self._unsubscribe: list[Callable[[], None]] = []
        self._held: MediaSession | None = None
        self._music: asyncio.Task[float] | None = None

    @property
    def transcoding(self) -> bool:
        """True when the legs use different G.711 laws."""
        return self.leg_a.codec is not self.leg_b.codec

    def start(self) -> None:
        """Start relaying (idempotent)."""
        if self._unsubscribe:
            return
        self._unsubscribe = [
            self.leg_a.on_audio(lambda samples, _at: self._relay(samples, self.leg_b)),
            self.leg_b.on_audio(lambda samples, _at: self._relay(samples, self.leg_a)),
        ]

    def _relay(self, samples: Samples, to: MediaSession) -> None:
        if self._held is None:  # on hold neither party hears the other
            to.forward(samples)

    def hold(self, leg: MediaSession, music: Path | str | Samples | None = None) -> None:
        """Put ``leg`` on hold: it hears ``music`` (looped) or silence, the other leg silence."""
        if leg is not self.leg_a and leg is not self.leg_b:
            raise MediaError("hold names a leg of this bridge")
        self.unhold()
        self._held = leg
        if music is not None:
            self._music = asyncio.ensure_future(leg.play(music, loop=True))

    def unhold(self) -> None:
        """End the hold: stop the music, relay again."""
        if self._held is not None:
            self._held.stop_playing()
        if self._music is not None:
            self._music.cancel()
        self._held = None
        self._music = None

    @property
    def on_hold(self) -> MediaSession | None:
        """The leg on hold, if any."""
        return self._held

    def stop(self) -> None:
        """Stop relaying (the legs stay open)."""
        self.unhold()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []


# --------------------------------------------------------------------------- recorder


@dataclass(frozen=True)
class RecordingInfo:
    """A finished recording file."""

    path: Path
    duration_s: float
    size_bytes: int
    sha256: str
    format: str = "wav"


class Recorder:
    """Mix the legs of one call, time-aligned, into one 8 kHz mono WAV, written as it goes."""

    #: how far behind real time the mix is written; later frames are dropped
    LAG_S = 1.0

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._wav: wave.Wave_write | None = None
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._written = 0  # samples written to the file
        self._mix = np.zeros(0, dtype=np.int32)  # samples from _written on
        # (leg, direction) -> (position of the stream's first frame, its RTP timestamp)
        self._anchors: dict[tuple[int, str], tuple[int, int]] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.dropped_late = 0

    def attach(self, *legs: MediaSession) -> Recorder:
        """Record what each leg's far party says and the prompts played to it."""
        if self._wav is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in stop()
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(SAMPLE_RATE)
            self._flusher = asyncio.ensure_future(self._flush_periodically())
        for leg in legs:
            self._unsubscribe.append(leg.on_audio(functools.partial(self._heard, leg)))
            self._unsubscribe.append(leg.on_prompt(functools.partial(self._prompt, leg)))
        return self

    def _position(self, at: float) -> int:
        return round((at - self._t0) * SAMPLE_RATE)

    def _heard(self, leg: MediaSession, samples: Samples, at: float) -> None:
        self._place((id(leg), "in"), leg.last_timestamp, samples, at)

    def _prompt(self, leg: MediaSession, samples: Samples, at: float) -> None:
        self._place((id(leg), "out"), leg.sent_timestamp, samples, at)

    def _place(self, key: tuple[int, str], timestamp: int, samples: Samples, at: float) -> None:
        """Put a frame where its RTP timestamp says, counted from its stream's first frame."""
        arrival = max(0, self._position(at) - len(samples))
        anchor = self._anchors.get(key)
        if anchor is not None:
            position = anchor[0] + ((timestamp - anchor[1]) & 0xFFFFFFFF)
            if abs(position - arrival) > SAMPLE_RATE:  # new stream or clock jump: re-anchor
                anchor = None
        if anchor is None:
            self._anchors[key] = (arrival, timestamp)
            position = arrival
        self._add(position, samples)

    def _add(self, position: int, samples: Samples) -> None:
        offset = position - self._written
        if offset < 0:
            self.dropped_late += 1
            return
        end = offset + len(samples)
        if end > len(self._mix):
            grown = np.zeros(max(end, 2 * len(self._mix)), dtype=np.int32)
            grown[: len(self._mix)] = self._mix
            self._mix = grown
        self._mix[offset:end] += samples

    def _flush(self, upto: int) -> None:
        count = upto - self._written
        if count <= 0 or self._wav is None:
            return
        chunk = np.zeros(count, dtype=np.int32)
        available = min(count, len(self._mix))
        chunk[:available] = self._mix[:available]
        self._wav.writeframes(np.clip(chunk, -32768, 32767).astype("<i2").tobytes())
        self._mix = self._mix[available:].copy()
        self._written = upto

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.LAG_S / 2)
            self._flush(self._position(self._loop.time() - self.LAG_S))

    async def stop(self) -> RecordingInfo:
        """Detach, write what is left and close the file."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._wav is None:
            raise MediaError("the recorder was never attached to a leg")
        self._flush(max(self._written + len(self._mix), self._position(self._loop.time())))
        self._wav.close()
        self._wav = None
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return RecordingInfo(
            path=self.path,
            duration_s=self._written / SAMPLE_RATE,
            size_bytes=self.path.stat().st_size,
            sha256=digest.hexdigest(),
        )


# --------------------------------------------------------------------------- DTMF in band

_LOW = (697.0, 770.0, 852.0, 941.0)
_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYS = ("123A", "456B", "789C", "*0#D")


def _tone_powers(block: npt.NDArray[np.float64], basis: npt.NDArray[np.complex128]) -> Any:
    """Power of ``block`` at each tone: what the Goertzel recurrence computes, as one product."""
    return np.abs(basis @ block) ** 2


class DtmfDetector:
    """In-band DTMF (Goertzel on the eight tones) for peers that do not send RFC 4733.

    A block of 205 samples (25.6 ms) holds a digit when the strongest low and high tones each
    stand ``dominance_db`` over the rest of their group, the pair carries ``min_tone_ratio``
    of the block's energy (speech does not), the twist is within limits and the level over
    ``min_level_dbfs``; a digit is reported after two such blocks, once until it stops.
    """

    BLOCK = 205

    def __init__(
        self,
        *,
        min_level_dbfs: float = -36.0,
        normal_twist_db: float = 8.0,
        reverse_twist_db: float = 4.0,
        dominance_db: float = 6.0,
        min_tone_ratio: float = 0.6,
    ) -> None:
        self._pending = np.zeros(0, dtype=np.float64)
        n = np.arange(self.BLOCK)
        self._basis = np.exp(-2j * np.pi * np.outer(np.array(_LOW + _HIGH), n) / SAMPLE_RATE)
        self._min_power = (10 ** (min_level_dbfs / 20) * 32768) ** 2 * self.BLOCK**2 / 4
        self._normal_twist = 10 ** (normal_twist_db / 10)
        self._reverse_twist = 10 ** (reverse_twist_db / 10)
        self._dominance = 10 ** (dominance_db / 10)
        self._min_tone_ratio = min_tone_ratio
        self._candidate: str | None = None
        self._reported: str | None = None

    def feed(self, samples: Samples) -> list[str]:
        """Digits that started in these samples."""
        self._pending = np.concatenate([self._pending, samples.astype(np.float64)])
        digits: list[str] = []
        while len(self._pending) >= self.BLOCK:
            block, self._pending = self._pending[: self.BLOCK], self._pending[self.BLOCK :]
            digit = self._block_digit(block)
            if digit is not None and digit == self._candidate and digit != self._reported:
                digits.append(digit)
                self._reported = digit
            if digit is None and self._candidate is None:
                self._reported = None  # two quiet blocks: the same key may come again
            self._candidate = digit
        return digits

    def _block_digit(self, block: npt.NDArray[np.float64]) -> str | None:
        power = _tone_powers(block, self._basis)
        low, high = power[:4], power[4:]
        li, hi = int(np.argmax(low)), int(np.argmax(high))
        low_peak, high_peak = float(low[li]), float(high[hi])
        if low_peak < self._min_power or high_peak < self._min_power:
            return None
        if high_peak > low_peak * self._normal_twist or low_peak > high_peak * self._reverse_twist:
            return None
        if any(i != li and low[i] * self._dominance > low_peak for i in range(4)):
            return None
        if any(i != hi and high[i] * self._dominance > high_peak for i in range(4)):
            return None
        # a pure tone's Goertzel power is N^2 A^2 / 4, the block's energy N A^2 / 2
        energy = float(np.dot(block, block))
        if (low_peak + high_peak) * 2 / self.BLOCK < self._min_tone_ratio * energy:
            return None
        return _KEYS[li][hi]


# --------------------------------------------------------------------------- answer detection


class AmdPolicy(StrEnum):
    """What the gateway does with an answer."""

    pass_all = "pass_all"  # noqa: S105 - no detection: every answer goes to an agent (the default)
    detect = "detect"  # machines are hung up on (or left a message, see leave_message)


class AmdVerdict(StrEnum):
    """The detector's answer; the values are those of ``campaigns.models.AmdResult``."""

    human = "human"
    machine = "machine"
    unknown = "unknown"
    not_used = "not_used"


@dataclass(frozen=True)
class AmdSettings:
    """The cadence heuristic's thresholds; the defaults were measured on the test prompts."""

    policy: AmdPolicy = AmdPolicy.pass_all
    leave_message: bool = False  # with detect: wait for the beep, then play the message
    speech_dbfs: float = -40.0  # a frame louder than this (and 12 dB over the floor) is voice
    initial_silence_s: float = 3.5  # nothing heard for this long: unknown
    greeting_max_s: float = 1.6  # a first utterance longer than this: machine
    after_greeting_silence_s: float = 0.75  # silence after a short greeting: human
    word_gap_s: float = 0.25  # a pause shorter than this stays inside one word
    max_words: int = 4  # more separate words in the greeting: machine
    total_s: float = 5.0  # undecided after this long: unknown


@dataclass
class AnswerDetector:
    """Feed 20 ms frames of the callee's audio; :attr:`verdict` is set once decided."""

    settings: AmdSettings = field(default_factory=AmdSettings)
    verdict: AmdVerdict | None = None
    elapsed_s: float = 0.0
    _speech_s: float = 0.0
    _silence_s: float = 0.0
    _words: int = 0
    _in_word: bool = False
    _heard: bool = False
    _floor: float = 0.0

    def feed(self, samples: Samples) -> AmdVerdict | None:
        """Take one frame; returns the verdict once there is one."""
        if self.verdict is not None:
            return self.verdict
        s = self.settings
        duration = len(samples) / SAMPLE_RATE
        self.elapsed_s += duration
        level = _dbfs(samples)
        if self._floor == 0.0:
            self._floor = level
        voiced = level > s.speech_dbfs and level > self._floor + 12.0
        if not voiced:  # track the noise floor on quiet frames only
            self._floor = min(self._floor * 0.95 + level * 0.05, max(level, self._floor))
        if voiced:
            if not self._in_word and (not self._heard or self._silence_s >= s.word_gap_s):
                self._words += 1
            self._heard = True
            self._in_word = True
            self._speech_s += duration + (self._silence_s if self._silence_s < s.word_gap_s else 0)
            self._silence_s = 0.0
        else:
            self._silence_s += duration
            if self._silence_s >= s.word_gap_s:
                self._in_word = False
        if not self._heard:
            if self.elapsed_s >= s.initial_silence_s:
                self.verdict = AmdVerdict.unknown
        elif self._speech_s > s.greeting_max_s or self._words > s.max_words:
            self.verdict = AmdVerdict.machine
        elif self._silence_s >= s.after_greeting_silence_s:
            self.verdict = AmdVerdict.human
        if self.verdict is None and self.elapsed_s >= s.total_s:
            self.verdict = AmdVerdict.unknown
        return self.verdict


def _dbfs(samples: Samples) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
    return 20.0 * float(np.log10(max(rms, 1.0) / 32768.0))


class BeepDetector:
    """A machine's beep: one steady tone (300-2500 Hz) holding most of the energy for
    ``min_s``; :meth:`feed` returns True on the first quiet frame after it (speak now)."""

    def __init__(self, *, min_s: float = 0.15, min_dbfs: float = -35.0, purity: float = 0.6):
        self._min_frames = max(1, round(min_s / FRAME_S))
        self._min_dbfs = min_dbfs
        self._purity = purity
        self._run = 0
        self._freq = 0.0
        self.heard = False
        self.tone_hz: float | None = None

    def feed(self, samples: Samples) -> bool:
        """True once the beep has been heard and has ended."""
        tone = self._tone(samples)
        if tone is not None and (self._run == 0 or abs(tone - self._freq) <= 60.0):
            self._run += 1
            self._freq = tone
            if self._run >= self._min_frames:
                self.heard = True
                self.tone_hz = tone
            return False
        ended = self.heard
        self._run = 1 if tone is not None else 0
        self._freq = tone or 0.0
        return ended

    def _tone(self, samples: Samples) -> float | None:
        if len(samples) < 64 or _dbfs(samples) < self._min_dbfs:
            return None
        data = samples.astype(np.float64) * np.hanning(len(samples))
        spectrum = np.abs(np.fft.rfft(data, n=1024)) ** 2
        freqs = np.fft.rfftfreq(1024, 1 / SAMPLE_RATE)
        band = (freqs >= 300) & (freqs <= 2500)
        peak = int(np.argmax(np.where(band, spectrum, 0.0)))
        near = spectrum[max(0, peak - 6) : peak + 7].sum()
        if near < self._purity * spectrum.sum():
            return None
        return float(freqs[peak])


async def detect_answer(session: MediaSession, settings: AmdSettings) -> AmdVerdict:
    """Listen to an answered leg until the detector decides (``not_used`` under pass_all)."""
    if settings.policy is AmdPolicy.pass_all:
        return AmdVerdict.not_used
    detector = AnswerDetector(settings)
    decided: asyncio.Future[AmdVerdict] = asyncio.get_running_loop().create_future()

    def listen(samples: Samples, _at: float) -> None:
        verdict = detector.feed(samples)
        if verdict is not None and not decided.done():
            decided.set_result(verdict)

    unsubscribe = session.on_audio(listen)
    try:
        # a leg that sends nothing at all is undecided after the total time too
        return await asyncio.wait_for(decided, timeout=settings.total_s + 1.0)
    except TimeoutError:
        return AmdVerdict.unknown
    finally:
        unsubscribe()


async def wait_for_beep(session: MediaSession, *, timeout_s: float = 30.0) -> bool:
    """Wait for a machine's beep to end (True) or the timeout (False)."""
    detector = BeepDetector()
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def listen(samples: Samples, _at: float) -> None:
        if detector.feed(samples) and not done.done():
            done.set_result(True)

    unsubscribe = session.on_audio(listen)
    try:
        return await asyncio.wait_for(done, timeout=timeout_s)
    except TimeoutError:
        return False
    finally:
        unsubscribe()


async def leave_message(
    session: MediaSession, message: Path | str | Samples, *, beep_timeout_s: float = 30.0
) -> float:
    """Wait for a machine's beep to end, then play ``message``; the seconds played (0: no beep)."""
    if not await wait_for_beep(session, timeout_s=beep_timeout_s):
        return 0.0
    return await session.play(message)
