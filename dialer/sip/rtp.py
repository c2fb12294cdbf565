"""The gateway's minimal media: one RTP leg per SIP call, on aiortp, G.711 only.

A :class:`RtpLeg` is an RTP session on a local port that the gateway offered in its SDP; once
the far end's answer is known it is started towards the far end's address with the
negotiated payload type (PCMA 8 or PCMU 0). A leg can

* play a WAV file (8 kHz, mono, 16-bit) to the far end, paced at 20 ms a frame,
* relay what it receives to another leg (the callee ↔ agent bridge; G.711 is decoded and
  re-encoded, so the two legs may use different laws) or into a :class:`Mixer` (a three-way
  call: each leg hears the sum of the others),
* write what it receives to a WAV file, and
* report RFC 4733 digits and when it last heard a packet.

This is deliberately small, with the interface the gateway needs, so it can be swapped for
the media toolkit's relay (``dialer/sip/media.py``: mixing recorder, in-band DTMF, AMD)
without touching the signalling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import wave
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from aiortp import RTPSession

from dialer.sip.media import write_wav

log = logging.getLogger(__name__)

__all__ = [
    "CODECS",
    "FRAME_SAMPLES",
    "CallCapture",
    "Mixer",
    "PcmSink",
    "PortPool",
    "RtpLeg",
    "check_wav",
]


class PcmSink(Protocol):
    """Where a leg relays the 16-bit PCM frames it receives."""

    def send_pcm(self, pcm: bytes) -> None: ...


CODECS = {8: "PCMA", 0: "PCMU"}
"""G.711 payload types we offer, in our order of preference (European/Chinese trunks: PCMA)."""

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
_FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


def check_wav(path: Path) -> None:
    """Raise ValueError unless ``path`` is a WAV file the leg can play (8 kHz mono 16-bit)."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
    except (OSError, wave.Error, EOFError) as exc:
        raise ValueError(f"message file {path} cannot be read as WAV: {exc}") from exc
    if (rate, channels, width) != (SAMPLE_RATE, 1, 2):
        raise ValueError(
            f"message file {path} is {rate} Hz, {channels} channel(s), {8 * width}-bit; "
            "telephony needs 8000 Hz mono 16-bit: convert it with "
            f"`sox {path} -r 8000 -c 1 -b 16 out.wav`"
        )


class PortPool:
    """Even RTP ports handed out from ``[start, end)`` (RTCP takes the odd port above)."""

    def __init__(self, start: int, end: int) -> None:
        if start <= 0 or end <= start + 1:
            raise ValueError(f"RTP port range [{start}, {end}) is empty; give start < end")
        self._free = list(range(start + start % 2, end - 1, 2))
        self._used: set[int] = set()

    def take(self) -> int:
        """A free even port; raises RuntimeError when the range is exhausted."""
        if not self._free:
            raise RuntimeError(
                "no free RTP port left in the configured range; widen rtp_port_range"
            )
        port = self._free.pop(0)
        self._used.add(port)
        return port

    def give(self, port: int) -> None:
        """Return a port to the pool."""
        if port in self._used:
            self._used.discard(port)
            self._free.append(port)


class CallCapture:
    """A call's recording on one leg, both directions time-aligned in a two-channel WAV: left
    what the far end said, right what it heard (everything sent to it: agents, prompts, hold
    music, an outside party), so a reviewer hears both sides and can tell them apart.

    Received frames are placed by their RTP timestamps from the first one's arrival (jitter
    does not smear them; a jump of over a second, a new stream, is re-anchored at its
    arrival); sent frames follow each other from when they were sent, re-placed at the wall
    clock when a gap of over three frames opens (silence is kept as silence)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._started = time.monotonic()
        self._anchor: tuple[int, int] | None = None  # (sample offset, RTP timestamp)
        self._said: list[tuple[int, bytes]] = []
        self._heard: list[tuple[int, bytes]] = []
        self._next_sent = 0

    def _now(self) -> int:
        return round((time.monotonic() - self._started) * SAMPLE_RATE)

    def received(self, pcm: bytes, timestamp: int) -> None:
        now = self._now()
        offset = now
        if self._anchor is not None:
            offset = self._anchor[0] + (timestamp - self._anchor[1]) % 2**32
        if self._anchor is None or abs(offset - now) > SAMPLE_RATE:
            self._anchor = (now, timestamp)
            offset = now
        self._said.append((offset, pcm))

    def sent(self, pcm: bytes) -> None:
        now = self._now()
        offset = self._next_sent if abs(now - self._next_sent) <= 3 * FRAME_SAMPLES else now
        self._heard.append((offset, pcm))
        self._next_sent = offset + len(pcm) // 2

    def write(self) -> float:
        """Write the WAV; its length in seconds."""
        frames = self._said + self._heard
        length = max((offset + len(pcm) // 2 for offset, pcm in frames), default=0)
        channels = np.zeros((length, 2), dtype="<i2")
        for column, placed in ((0, self._said), (1, self._heard)):
            for offset, pcm in placed:
                samples = np.frombuffer(pcm, dtype="<i2")
                channels[offset : offset + samples.size, column] = samples
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(self.path, channels)
        return length / SAMPLE_RATE


class RtpLeg:
    """One RTP session of a call leg; all methods run on the gateway's event loop."""

    def __init__(self, host: str, port: int, *, symmetric: bool = False) -> None:
        self.host = host
        self.port = port
        # symmetric RTP (NAT): send to where the far end's packets come from, not only to the
        # address its SDP gave (a phone behind NAT announces a private one)
        self.symmetric = symmetric
        self.session: RTPSession | None = None
        self.payload_type: int | None = None
        self.on_dtmf: Callable[[str], None] | None = None
        self.relay: PcmSink | None = None
        # a listener on what the far end sends (answer and beep detection), 16-bit PCM frames
        self.on_pcm: Callable[[bytes], None] | None = None
        # the call recording (both directions), and once the leg closed: (path, seconds)
        self.capture: CallCapture | None = None
        self.captured: tuple[Path, float] | None = None
        self.first_sent_at: float | None = None  # time.monotonic() of the first packet sent
        self.last_received_at: float | None = None
        self.received_frames = 0
        self._recording: list[bytes] | None = None
        self._record_path: Path | None = None
        self._player: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """True once the far end's address and codec are known."""
        return self.session is not None

    async def start(self, remote: tuple[str, int], payload_type: int) -> None:
        """Open the session towards ``remote`` with ``payload_type`` (8 PCMA or 0 PCMU)."""
        if payload_type not in CODECS:
            raise ValueError(f"payload type {payload_type} is not G.711 (0 PCMU or 8 PCMA)")
        if self.session is not None:
            self.session.update_remote(remote)
            return
        self.payload_type = payload_type
        self.session = await RTPSession.create(
            local_addr=(self.host, self.port),
            remote_addr=remote,
            payload_type=payload_type,
            jitter_prefetch=2,
            symmetric_rtp=self.symmetric,
        )
        self.session.on_audio = self._on_audio
        self.session.on_dtmf = self._on_dtmf

    def _on_audio(self, pcm: bytes, timestamp: int) -> None:
        self.last_received_at = time.monotonic()
        self.received_frames += 1
        if self._recording is not None:
            self._recording.append(pcm)
        if self.relay is not None:
            self.relay.send_pcm(pcm)
        if self.on_pcm is not None:
            self.on_pcm(pcm)
        if self.capture is not None:
            self.capture.received(pcm, timestamp)

    def _on_dtmf(self, digit: str, duration: int) -> None:
        self.last_received_at = time.monotonic()
        if self.on_dtmf is not None:
            self.on_dtmf(digit)

    def send_pcm(self, pcm: bytes) -> None:
        """Send one frame of 16-bit PCM (encoded with the leg's codec)."""
        if self.session is None:
            return
        if self.first_sent_at is None:
            self.first_sent_at = time.monotonic()
        self.session.send_audio_pcm_auto(pcm)
        if self.capture is not None:
            self.capture.sent(pcm)

    def send_dtmf(self, digits: str) -> None:
        """Send RFC 4733 telephone events, one per digit."""
        if self.session is None:
            return
        for digit in digits:
            self.session.send_dtmf(digit)

    def play(self, path: Path, done: Callable[[], None], *, loop: bool = False) -> None:
        """Play a WAV file to the far end (replacing a message already playing); ``done``
        runs when the last frame is sent or the leg closes. With ``loop`` it starts again
        at its end until :meth:`stop_playing` (music on hold)."""
        self.stop_playing()
        self._player = asyncio.get_running_loop().create_task(self._play(path, done, loop))

    def stop_playing(self) -> None:
        """Stop the message being played, if any."""
        if self._player is not None:
            self._player.cancel()
            self._player = None

    async def _play(self, path: Path, done: Callable[[], None], loop: bool = False) -> None:
        try:
            with wave.open(str(path), "rb") as wav:
                start = time.monotonic()
                sent = 0
                while True:
                    frame = wav.readframes(FRAME_SAMPLES)
                    if not frame and loop and sent:
                        wav.rewind()
                        continue
                    if not frame:
                        break
                    if len(frame) < 2 * FRAME_SAMPLES:
                        frame += b"\x00" * (2 * FRAME_SAMPLES - len(frame))
                    self.send_pcm(frame)
                    sent += 1
                    # absolute schedule: no drift from the loop's wake-up latency
                    delay = start + sent * _FRAME_S - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
        finally:
            done()

    def record(self, path: Path) -> None:
        """Write what the far end sends to ``path`` (a WAV) when the leg closes."""
        self._recording = []
        self._record_path = path

    async def close(self) -> None:
        """Stop playing, write the recording, close the session."""
        self.stop_playing()
        self.relay = None
        self.on_pcm = None
        if self._recording is not None and self._record_path is not None:
            write_wav(self._record_path, np.frombuffer(b"".join(self._recording), dtype="<i2"))
            self._recording = None
        if self.capture is not None:
            capture, self.capture = self.capture, None
            try:
                self.captured = (capture.path, capture.write())
            except OSError as exc:  # a full disk must not take the call's ending with it
                log.error("the recording %s could not be written: %s", capture.path, exc)
        if self.session is not None:
            session, self.session = self.session, None
            with contextlib.suppress(OSError, RuntimeError):
                await session.close()


class Mixer:
    """A conference of legs: every 20 ms each leg is sent the sum of what the others sent
    (clipped to 16 bits), so on a three-way call everyone hears everyone but themselves.
    Each leg's relay is its own input of the mixer; runs on the gateway's event loop."""

    def __init__(self, legs: list[RtpLeg]) -> None:
        self.legs = list(legs)
        self._inputs: dict[int, deque[bytes]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        for leg in self.legs:
            self._join(leg)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, leg: RtpLeg) -> None:
        """Another leg joins the conference."""
        self.legs.append(leg)
        self._join(leg)

    def _join(self, leg: RtpLeg) -> None:
        frames: deque[bytes] = deque(maxlen=5)  # at most 100 ms behind
        self._inputs[id(leg)] = frames
        leg.relay = _MixerInput(frames)

    def stop(self) -> None:
        """End the conference: the legs relay nothing until bridged again."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for leg in self.legs:
            if isinstance(leg.relay, _MixerInput):
                leg.relay = None
        self._inputs.clear()

    async def _run(self) -> None:
        start = time.monotonic()
        ticks = 0
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int32)
        while True:
            frames = {
                key: (
                    np.frombuffer(queue.popleft(), dtype="<i2").astype(np.int32)
                    if queue
                    else silence
                )
                for key, queue in self._inputs.items()
            }
            total = sum(frames.values(), silence)
            for leg in self.legs:
                own = frames.get(id(leg), silence)
                mixed = np.clip(total - own, -32768, 32767).astype("<i2")
                leg.send_pcm(mixed.tobytes())
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * _FRAME_S - time.monotonic()))


class _MixerInput:
    def __init__(self, frames: deque[bytes]) -> None:
        self.frames = frames

    def send_pcm(self, pcm: bytes) -> None:
        size = 2 * FRAME_SAMPLES
        if len(pcm) != size:  # a far end with another packet time: one 20 ms frame of it
            pcm = pcm[:size].ljust(size, b"\x00")
        self.frames.append(pcm)
