"""Symmetric RTP for peers behind NAT: a leg sends where the far end's packets come from.

A phone or trunk behind NAT announces a private address in its SDP; its packets arrive from
the NAT's public one. The far end here is a UDP socket whose SDP address (192.0.2.1,
TEST-NET-1) is unreachable: with ``symmetric`` the leg latches onto the source of its first
packet and our audio reaches it; without, our audio goes to the announced address and is lost.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from sip.sip_peers import free_port

from dialer.sip.rtp import FRAME_SAMPLES, RtpLeg


def _rtp(seq: int, ssrc: int = 0x1234) -> bytes:
    """One 20 ms PCMA packet of silence (0xD5)."""
    return struct.pack("!BBHII", 0x80, 8, seq, seq * FRAME_SAMPLES, ssrc) + b"\xd5" * 160


async def _exchange(symmetric: bool) -> int:
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.setblocking(False)
    leg = RtpLeg("127.0.0.1", free_port(pair=True), symmetric=symmetric)
    await leg.start(("192.0.2.1", 40000), 8)  # what the far end's SDP announced
    try:
        loop = asyncio.get_running_loop()
        for seq in range(5):  # the far end speaks first, from its real (NATed) address
            far.sendto(_rtp(seq), ("127.0.0.1", leg.port))
            await asyncio.sleep(0.02)
        for _ in range(10):
            leg.send_pcm(b"\x00\x10" * FRAME_SAMPLES)
            await asyncio.sleep(0.02)
        received = 0
        deadline = loop.time() + 0.5
        while loop.time() < deadline:
            try:
                data = far.recv(2048)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            if data[1] & 0x7F == 8:  # our audio, not RTCP
                received += 1
        return received
    finally:
        await leg.close()
        far.close()


@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric RTP", "SDP address only"])
def test_a_far_end_behind_nat_gets_our_audio_only_with_symmetric_rtp(symmetric: bool) -> None:
    received = asyncio.run(_exchange(symmetric))
    print(f"\n[nat, symmetric={symmetric}] our packets at the far end: {received} of 10")
    if symmetric:
        assert received >= 8
    else:
        assert received == 0
