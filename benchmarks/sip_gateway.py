"""SIP gateway benchmark: concurrent calls with media in one gateway process, on 127.0.0.1.

For each concurrency level N (and a 1-call baseline in the same run) a SIPp callee answers N
calls at once with RTP echo (tests/sip/scenarios/answer_echo.xml); as soon as the gateway's
Answered event is polled the benchmark plays the safe-harbour WAV (``--hold`` seconds of
tone) on that call, the callee echoes it back, and after the hold every call is hung up.

Figures per level:

* answered: calls answered out of N, and SIPp's verdict (every call followed its scenario);
* 200 OK → Answered polled (p50/p99): from the gateway processing the 200 OK to the dial
  loop's ``poll`` returning the event (polled every 10 ms, as a busy loop would);
* 200 OK → first safe-harbour RTP packet (p50/p99): the 2-second safe-harbour clock's real
  cost, here with the message started at once (the loop waits its grace period first);
* echo fps: frames per second and call heard back from the callee (50 = full 20 ms media);
* all up s: from the first originate to the last Answered polled;
* CPU per call-second: the gateway process's CPU time during the hold (all threads) divided
  by N x hold seconds, and its ratio to the 1-call baseline.

With ``--bridge`` every answer is bridged instead to an agent's persistent leg (a second SIPp
answering as N agent phones, each talking with SIPp's G.711 pcap): 200 OK → ConnectedToAgent
polled, and 200 OK → the first agent packet relayed to the callee; CPU then covers both legs
and the relay.

    .venv/bin/python benchmarks/sip_gateway.py [--levels 50,100,200] [--hold 5] [--bridge]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sip.sip_peers import Sipp, free_port, tone  # noqa: E402

from dialer.gateway import (  # noqa: E402
    AgentLegEvent,
    Answered,
    CallParameters,
    ConnectedToAgent,
    HungUp,
    OriginateRequest,
)
from dialer.sip.gateway import SipGateway, SipGatewayConfig, SipTrunk  # noqa: E402


def free_range(size: int) -> tuple[int, int]:
    """A run of ``size`` free UDP ports (even start)."""
    for start in range(21000, 60000 - size, 500):
        try:
            socks = []
            for port in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return (start, start + size)
    raise RuntimeError("no free port range")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_level(n: int, hold: float, workdir: Path, bridge: bool) -> dict[str, float]:
    agents: Sipp | None = None
    if bridge:
        agents = Sipp(
            "agent_pcap.xml",
            free_port(),
            free_port(pair=True),
            {"codec": "8", "pause_ms": "100"},
            workdir,
            calls=n,
            echo=False,
            extra=["-l", str(n + 10)],
            timeout_s=120,
        ).start()
    peer = Sipp(
        "answer_echo.xml",
        free_port(),
        free_port(pair=True),
        {"codec": "8", "pause_ms": "100"},
        workdir,
        calls=n,
        extra=["-l", str(n + 10)],
        timeout_s=120,
    ).start()
    message = tone(workdir / f"hold-{n}.wav", 1000.0, hold + 1.0)
    start = time.monotonic()
    gw = SipGateway(
        SipGatewayConfig(
            trunk=SipTrunk("127.0.0.1", peer.port),
            rtp_port_range=free_range(4 * n + 8),
            messages={"safe_harbour": message},
            session_expires_s=None,
        ),
        clock=lambda: time.monotonic() - start,
    )
    polled: dict[str, float] = {}
    bridged: dict[str, float] = {}
    first_out: dict[str, float] = {}
    try:
        if agents is not None:
            for i in range(n):
                gw.connect_agent_phone(f"A{i}", f"sip:agent{i}@127.0.0.1:{agents.port}", now=0.0)
            up = 0
            deadline = time.monotonic() + 30
            while up < n and time.monotonic() < deadline:
                up += sum(1 for e in gw.poll(gw.clock()) if isinstance(e, AgentLegEvent))
                time.sleep(0.01)
            time.sleep(0.5)  # the phones are talking (their pcap) before any call is bridged
        free_agents = [f"A{i}" for i in range(n)]
        calls = [
            gw.originate(
                OriginateRequest(
                    "bench", f"lead{i}", f"att{i}",
                    CallParameters("+862155550000", f"+86139{i:08d}"),
                ),
                now=0.0,
            )
            for i in range(n)
        ]  # fmt: skip
        deadline = time.monotonic() + 30
        while len(polled) < n and time.monotonic() < deadline:
            for event in gw.poll(gw.clock()):
                if isinstance(event, Answered):
                    polled[event.call_id] = time.monotonic()
                    if bridge:
                        gw.connect_to_agent(
                            event.call_id,
                            agent_id=free_agents.pop(),
                            skill_group=None,
                            now=gw.clock(),
                        )
                    else:
                        gw.play_message(event.call_id, "safe_harbour", now=gw.clock())
                elif isinstance(event, ConnectedToAgent):
                    bridged[event.call_id] = time.monotonic()
            time.sleep(0.01)
        deadline = time.monotonic() + 10
        while bridge and len(bridged) < len(polled) and time.monotonic() < deadline:
            for event in gw.poll(gw.clock()):
                if isinstance(event, ConnectedToAgent):
                    bridged[event.call_id] = time.monotonic()
            time.sleep(0.01)
        all_answered = time.monotonic() - start
        legs = [lead.leg for lead in gw._calls.values()]
        heard0 = sum(leg.received_frames for leg in legs)
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        time.sleep(hold)
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        heard = sum(leg.received_frames for leg in legs) - heard0  # echoed frames decoded
        for call_id, lead in gw._calls.items():
            if lead.leg.first_sent_at is not None:
                first_out[call_id] = lead.leg.first_sent_at  # first packet the callee got
        for call_id in polled:
            gw.hang_up(call_id, now=gw.clock())
        ended = 0
        deadline = time.monotonic() + 20
        while ended < len(polled) and time.monotonic() < deadline:
            ended += sum(1 for e in gw.poll(gw.clock()) if isinstance(e, HungUp))
            time.sleep(0.01)
        sipp_ok = peer.wait(30) == 0
        if agents is not None:
            for i in range(n):
                gw.release_agent_phone(f"A{i}", now=gw.clock())
            sipp_ok = agents.wait(30) == 0 and sipp_ok
    finally:
        gw.close()
        peer.stop()
        if agents is not None:
            agents.stop()
    answered_at = {c: gw.timings[c]["answered"] for c in polled if c in gw.timings}
    if bridge:  # 200 OK → ConnectedToAgent polled, 200 OK → first agent packet to the callee
        to_event = [bridged[c] - t for c, t in answered_at.items() if c in bridged]
        to_audio = [first_out[c] - t for c, t in answered_at.items() if c in first_out]
    else:  # 200 OK → Answered polled, 200 OK → first safe-harbour packet
        to_event = [polled[c] - t for c, t in answered_at.items()]
        to_audio = [
            gw.timings[c]["message"] - t
            for c, t in answered_at.items()
            if "message" in gw.timings[c]
        ]
    return {
        "n": n,
        "answered": len(polled),
        "calls": len(calls),
        "sipp_ok": float(sipp_ok),
        "event_p50": pct(to_event, 0.5),
        "event_p99": pct(to_event, 0.99),
        "audio_p50": pct(to_audio, 0.5),
        "audio_p99": pct(to_audio, 0.99),
        "cpu_per_call_s": cpu / (max(1, len(polled)) * wall),
        "cpu_share": cpu / wall,
        "all_answered_s": all_answered,
        "echo_fps": heard / (max(1, len(polled)) * wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,100,200")
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument(
        "--bridge",
        action="store_true",
        help="bridge every answer to an agent leg (SIPp phones talking) instead of the message",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_level(n, args.hold, Path(tmp), args.bridge) for n in [1, *levels]]
    base = rows[0]["cpu_per_call_s"]
    mode = "bridged to agent legs" if args.bridge else "safe-harbour message"
    event, audio = ("200→bridged", "200→agent audio") if args.bridge else ("200→event", "200→audio")
    print(
        f"SIP gateway, one process, RTP echo callees on 127.0.0.1, {mode}, hold {args.hold:.0f} s"
    )
    print(
        f"{'calls':>6} {'answered':>9} {'SIPp':>5} {event + ' p50/p99 ms':>22} "
        f"{audio + ' p50/p99 ms':>22} {'CPU ms/call-s':>14} {'vs 1 call':>9} {'CPU %':>6} "
        f"{'echo fps':>8} {'all up s':>8}"
    )
    for row in rows:
        print(
            f"{row['n']:>6.0f} {row['answered']:>9.0f} {'ok' if row['sipp_ok'] else 'FAIL':>5} "
            f"{1000 * row['event_p50']:>10.1f}/{1000 * row['event_p99']:<11.1f} "
            f"{1000 * row['audio_p50']:>10.1f}/{1000 * row['audio_p99']:<11.1f} "
            f"{1000 * row['cpu_per_call_s']:>14.2f} {row['cpu_per_call_s'] / base:>9.2f} "
            f"{100 * row['cpu_share']:>6.0f} {row['echo_fps']:>8.1f} {row['all_answered_s']:>8.2f}"
        )
    worst = max(r["audio_p99"] for r in rows)
    what = "agent audio at the callee" if args.bridge else "safe-harbour audio"
    print(f"{what} p99 over all levels: {worst:.3f} s (target ≤ 2 s)")


if __name__ == "__main__":
    main()
