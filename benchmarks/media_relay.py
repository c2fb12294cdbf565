"""Media relay benchmark: bridged and recorded call pairs in one process, and the AMD's accuracy.

    python benchmarks/media_relay.py                 # 1 (baseline), 50, 100, 200 pairs
    python benchmarks/media_relay.py --pairs 1 50 --seconds 10
    python benchmarks/media_relay.py --amd           # confusion matrix on espeak-ng prompts

Relay: each pair is a callee and an agent endpoint (raw UDP RTP, 20 ms PCMA/PCMU frames sent
by a separate load-generator process) and two legs of ours in this process, bridged (one leg
PCMU, one PCMA: every frame is transcoded) and recorded to WAV. The relay process's CPU time
is measured (``time.process_time``, which includes the kernel's loopback delivery done inside
``sendto``), divided by the call-seconds relayed. Loss "in" is what the relay's legs did not
deliver, "end to end" what did not come back to the generators through the bridge; jitter "in"
is aiortp's RFC 3550 estimate at the relay, "back" the generators' (which includes their own
scheduling lag). Each stream loses its last frame by construction: the jitter buffer hands a
frame on when the next one arrives (0.2 % of a 10 s stream).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from dialer.sip.media import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AmdSettings,
    AmdVerdict,
    AnswerDetector,
    BeepDetector,
    Bridge,
    Codec,
    MediaSession,
    Recorder,
    decode,
    encode,
    load_audio,
)

# --------------------------------------------------------------------------- load generator


async def _generate(pairs: list[tuple[int, int]], seconds: float) -> dict[str, Any]:
    """Send 20 ms frames to every relay port; count and time what comes back."""
    loop = asyncio.get_running_loop()
    tone = (np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / SAMPLE_RATE) * 8000).astype(
        np.int16
    )
    payloads = {Codec.PCMU: encode(tone, Codec.PCMU), Codec.PCMA: encode(tone, Codec.PCMA)}
    received: dict[int, list[tuple[float, int]]] = {}

    class Endpoint(asyncio.DatagramProtocol):
        def __init__(self, key: int) -> None:
            self.key = key
            received[key] = []

        def datagram_received(self, data: bytes, addr: Any) -> None:
            if len(data) >= 12 and data[1] & 0x7F in (0, 8):
                received[self.key].append((loop.time(), struct.unpack("!I", data[4:8])[0]))

    endpoints = []
    for i, (port_a, port_b) in enumerate(pairs):
        for j, (port, codec) in enumerate(((port_a, Codec.PCMU), (port_b, Codec.PCMA))):
            transport, _ = await loop.create_datagram_endpoint(
                lambda key=2 * i + j: Endpoint(key), local_addr=("127.0.0.1", 0)
            )
            endpoints.append((transport, port, codec, 0x1000 + 2 * i + j))
    frames = round(seconds / 0.02)
    start = loop.time() + 0.05
    for n in range(frames):
        await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
        for transport, port, codec, ssrc in endpoints:
            header = struct.pack(
                "!BBHII", 0x80, codec.payload_type, n & 0xFFFF, n * FRAME_SAMPLES, ssrc
            )
            transport.sendto(header + payloads[codec], ("127.0.0.1", port))
    # read what is still coming back before closing (a busy generator lags behind)
    last, quiet_since = -1, loop.time()
    while loop.time() - quiet_since < 1.0 and loop.time() - start < seconds + 20:
        await asyncio.sleep(0.1)
        now_count = sum(len(v) for v in received.values())
        if now_count != last:
            last, quiet_since = now_count, loop.time()
    for transport, *_ in endpoints:
        transport.close()
    got = sum(len(v) for v in received.values())
    expected = frames * len(endpoints)
    jitters = []
    for arrivals in received.values():
        jitter = 0.0
        for (t0, ts0), (t1, ts1) in itertools.pairwise(arrivals):
            d = abs((t1 - t0) - (ts1 - ts0) / SAMPLE_RATE)
            jitter += (d - jitter) / 16
        jitters.append(jitter * 1000)
    return {
        "generator_cpu_share": time.process_time() / (loop.time() - start + 0.05),
        "expected": expected,
        "received": got,
        "jitter_ms_mean": float(np.mean(jitters)) if jitters else 0.0,
    }


def _generator_main() -> None:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(_generate([tuple(p) for p in spec["pairs"]], spec["seconds"]))
    print(json.dumps(result))


# --------------------------------------------------------------------------- relay

GENERATORS = 2  # load-generator processes (one Python process cannot feed 400 streams)


async def _relay(pairs: int, seconds: float, directory: Path) -> dict[str, Any]:
    legs: list[tuple[MediaSession, MediaSession]] = []
    for _ in range(pairs):
        leg_a = await MediaSession.open("127.0.0.1", (40000, 59999), Codec.PCMU, symmetric=True)
        leg_b = await MediaSession.open("127.0.0.1", (40000, 59999), Codec.PCMA, symmetric=True)
        legs.append((leg_a, leg_b))
    ports = [(a.local_port, b.local_port) for a, b in legs]
    generators = []
    for g in range(GENERATORS):
        generator = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--generator",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert generator.stdin is not None
        spec = {"pairs": ports[g::GENERATORS], "seconds": seconds}
        generator.stdin.write(json.dumps(spec).encode())
        generator.stdin.close()
        generators.append(generator)
    # the generators' endpoints are learned from their first packet (symmetric RTP)
    bridges: list[Bridge] = []
    recorders: list[Recorder] = []
    for leg_a, leg_b in legs:
        bridge = Bridge(leg_a, leg_b)
        bridge.start()
        bridges.append(bridge)
        recorders.append(Recorder(directory / f"call-{len(recorders)}.wav").attach(leg_a, leg_b))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outputs = [json.loads(await g.stdout.read()) for g in generators if g.stdout is not None]
    for g in generators:
        await g.wait()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    relay_jitter_ms = [leg.stats.get("jitter", 0) / 8 for pair in legs for leg in pair]
    sizes = 0
    for recorder in recorders:
        sizes += (await recorder.stop()).size_bytes
    for bridge in bridges:
        bridge.stop()
    for leg_a, leg_b in legs:
        await leg_a.close()
        await leg_b.close()
    outputs = [o for o in outputs if o["expected"]]
    result: dict[str, Any] = {
        "expected": sum(o["expected"] for o in outputs),
        "received": sum(o["received"] for o in outputs),
        "jitter_ms_mean": float(np.mean([o["jitter_ms_mean"] for o in outputs])),
        "generator_cpu_share": sum(o["generator_cpu_share"] for o in outputs),
        "relay_jitter_ms": float(np.mean(relay_jitter_ms)),
    }
    inbound = sum(leg.frames_received for pair in legs for leg in pair)
    call_seconds = pairs * seconds
    result.update(
        pairs=pairs,
        cpu_s=cpu,
        wall_s=wall,
        cpu_ms_per_call_s=1000 * cpu / call_seconds,
        cpu_share=cpu / wall,
        recorded_mb=sizes / 1e6,
        loss=1 - result["received"] / result["expected"],
        # what the relay itself got: loss before the relay is the generator's or the kernel's
        inbound_loss=1 - inbound / result["expected"],
    )
    return result


def relay_benchmark(pair_counts: list[int], seconds: float) -> None:
    print(f"media relay: bridged + recorded call pairs, {seconds:.0f} s of media each")
    print(
        "pairs  cpu ms/call-s  cpu share  loss (in / end to end)  jitter ms (in / back)  "
        "recorded MB  generator cpu"
    )
    baseline = None
    with tempfile.TemporaryDirectory() as tmp:
        for pairs in pair_counts:
            r = asyncio.run(_relay(pairs, seconds, Path(tmp)))
            baseline = baseline or r["cpu_ms_per_call_s"]
            print(
                f"{pairs:5d}  {r['cpu_ms_per_call_s']:13.2f}  {r['cpu_share']:9.2f}  "
                f"{r['inbound_loss']:7.2%} / {r['loss']:7.2%}      "
                f"{r['relay_jitter_ms']:7.2f} / {r['jitter_ms_mean']:6.2f}"
                f"       {r['recorded_mb']:8.1f}       {r['generator_cpu_share']:5.2f}"
                f"   (x{r['cpu_ms_per_call_s'] / baseline:.2f} of the 1-pair cost per call-s)"
            )
            for wav in Path(tmp).glob("*.wav"):
                wav.unlink()


# --------------------------------------------------------------------------- AMD accuracy

HUMAN = [
    "Hello?",
    "Hello.",
    "Yes?",
    "Hi, who is this?",
    "Hello, speaking.",
]
MACHINE = [
    "Hi, you have reached John and Mary. We cannot come to the phone right now, "
    "please leave a message after the tone.",
    "Thank you for calling. Nobody is available to take your call. Please leave your name "
    "and number and we will call you back.",
    "The person you are calling is not available. Please leave a message after the beep.",
    "Hello, this is Wang Wei. I am away from my desk at the moment. Leave a message.",
    "Leave a message.",
]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-us+f3"]
SPEEDS = [140, 170, 200]


def _speak(text: str, voice: str, speed: int, path: Path) -> Any:
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)],
        check=True,
        capture_output=True,
    )
    return load_audio(path)


def amd_prompts(directory: Path) -> list[tuple[str, Any]]:
    """20 human-like and 20 machine-like answers: (truth, 8 kHz samples)."""
    rng = np.random.default_rng(12)
    prompts = []
    for truth, texts in (("human", HUMAN), ("machine", MACHINE)):
        for i in range(20):
            text = texts[i % len(texts)]
            voice, speed = VOICES[i % len(VOICES)], SPEEDS[(i // len(VOICES)) % len(SPEEDS)]
            speech = _speak(text, voice, speed, directory / f"{truth}-{i}.wav")
            lead = np.zeros(int(SAMPLE_RATE * rng.uniform(0.2, 0.8)), dtype=np.int16)
            if truth == "human":
                tail = np.zeros(SAMPLE_RATE * 3, dtype=np.int16)
            else:
                gap = np.zeros(int(SAMPLE_RATE * rng.uniform(0.3, 0.7)), dtype=np.int16)
                t = np.arange(int(SAMPLE_RATE * 0.5)) / SAMPLE_RATE
                freq = rng.choice([850.0, 1000.0, 1400.0])
                beep = (np.sin(2 * np.pi * freq * t) * 9000).astype(np.int16)
                tail = np.concatenate([gap, beep, np.zeros(SAMPLE_RATE, dtype=np.int16)])
            audio = np.concatenate([lead, speech, tail]).astype(np.float64)
            audio += rng.normal(0, 60, len(audio))  # a quiet line's hiss
            audio = np.clip(audio, -32768, 32767).astype(np.int16)
            prompts.append((truth, decode(encode(audio, Codec.PCMA), Codec.PCMA)))
    return prompts


def classify(samples: Any, settings: AmdSettings) -> tuple[AmdVerdict, bool]:
    """The detector's verdict and whether a beep was found, frame by frame."""
    detector, beeps = AnswerDetector(settings), BeepDetector()
    verdict: AmdVerdict | None = None
    beep = False
    for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = samples[start : start + FRAME_SAMPLES]
        verdict = verdict or detector.feed(frame)
        beep = beep or beeps.feed(frame)
    return verdict or AmdVerdict.unknown, beep


def amd_benchmark() -> None:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install {tool}")
    settings = AmdSettings()
    with tempfile.TemporaryDirectory() as tmp:
        prompts = amd_prompts(Path(tmp))
    matrix = {t: dict.fromkeys(("human", "machine", "unknown"), 0) for t in ("human", "machine")}
    beeps = {"human": 0, "machine": 0}
    for truth, samples in prompts:
        verdict, beep = classify(samples, settings)
        matrix[truth][verdict.value] += 1
        beeps[truth] += beep
    print(f"answering-machine detection on {len(prompts)} espeak-ng prompts, {settings}")
    print("                  said human  said machine  unknown")
    for truth in ("human", "machine"):
        row = matrix[truth]
        print(
            f"{truth + ' prompts':16s}  {row['human']:10d}  {row['machine']:12d}  "
            f"{row['unknown']:7d}"
        )
    total = sum(matrix[t][t] for t in matrix)
    print(f"accuracy {total / len(prompts):.0%}; beeps found: machine {beeps['machine']} of 20, ")
    print(f"human (false beeps) {beeps['human']} of 20")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1, 50, 100, 200])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--amd", action="store_true", help="AMD accuracy instead of the relay")
    parser.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generator:
        _generator_main()
    elif args.amd:
        amd_benchmark()
    else:
        os.nice(0)
        relay_benchmark(args.pairs, args.seconds)


if __name__ == "__main__":
    main()
