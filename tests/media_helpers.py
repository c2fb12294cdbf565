"""Audio for the media tests: tones, DTMF, espeak-ng prompts, and what a peer heard."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from dialer.sip.media import SAMPLE_RATE, Codec, MediaSession, decode, encode, load_audio

T = TypeVar("T")

RTP_PORTS = (20000, 39999)


def tone(freq: float, seconds: float, *, level: float = 0.3, rate: int = SAMPLE_RATE) -> Any:
    """A sine as int16 samples."""
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


def band_level(samples: Any, freq: float, *, width: float = 40.0) -> float:
    """The share of the signal's energy within ``width`` Hz of ``freq``."""
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data)) ** 2
    freqs = np.fft.rfftfreq(len(data), 1 / SAMPLE_RATE)
    total = spectrum.sum()
    return float(spectrum[np.abs(freqs - freq) <= width].sum() / total) if total else 0.0


def g711(samples: Any, codec: Codec = Codec.PCMA) -> Any:
    """The samples after a trip through G.711."""
    return decode(encode(samples, codec), codec)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; .ci/run installs it (apt-get install {tool})")
    return path


def sox(*args: str) -> None:
    subprocess.run([need("sox"), *args], check=True, capture_output=True)


def espeak(text: str, path: Path, *, voice: str = "en-us", speed: int = 160) -> Any:
    """``text`` spoken by espeak-ng, as 8 kHz samples (the WAV stays at ``path``)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        [need("espeak-ng"), "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    sox(str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path))
    return load_audio(path)


def dtmf_wav(digits: str, path: Path) -> Path:
    """``digits`` as in-band DTMF made by sox (100 ms tones, 100 ms gaps)."""
    pairs = {
        "1": (697, 1209), "2": (697, 1336), "3": (697, 1477),
        "4": (770, 1209), "5": (770, 1336), "6": (770, 1477),
        "7": (852, 1209), "8": (852, 1336), "9": (852, 1477),
        "*": (941, 1209), "0": (941, 1336), "#": (941, 1477),
    }  # fmt: skip
    parts = []
    for i, digit in enumerate(digits):
        low, high = pairs[digit]
        part = path.with_name(f"{path.stem}-{i}.wav")
        sox("-n", "-r", "8000", "-c", "1", "-b", "16", str(part),
            "synth", "0.1", "sine", str(low), "sine", str(high), "remix", "1,2",
            "gain", "-9", "pad", "0", "0.1")  # fmt: skip
        parts.append(str(part))
    sox(*parts, str(path))
    return path


def run(coro_factory: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """Run an async test body on a fresh loop, with a generous watchdog."""

    async def body() -> T:
        return await asyncio.wait_for(coro_factory(), timeout=timeout_s)  # type: ignore[arg-type]

    return asyncio.run(body())


async def pair(codec: Codec, **kw: Any) -> tuple[Any, Any]:
    """Two legs on 127.0.0.1 sending to each other with ``codec`` (one RTP link)."""
    a = await MediaSession.open("127.0.0.1", RTP_PORTS, codec, **kw)
    b = await MediaSession.open("127.0.0.1", RTP_PORTS, codec, **kw)
    a.set_remote("127.0.0.1", b.local_port, codec.payload_type)
    b.set_remote("127.0.0.1", a.local_port, codec.payload_type)
    return a, b


class Heard:
    """Everything a leg received, in order."""

    def __init__(self, session: MediaSession) -> None:
        self.frames: list[Any] = []
        session.on_audio(lambda samples, _at: self.frames.append(samples))

    @property
    def samples(self) -> Any:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)
