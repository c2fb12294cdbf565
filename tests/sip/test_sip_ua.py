"""The adapter's fixes to aiosipua 0.7.1 (dialer/sip/_ua.py), each against a raw UDP peer.

Fixes 1 (ACK for non-2xx) and 3 (CANCEL keeps the dialog; a crossing answer gets ACK + BYE)
are also checked by SIPp, whose scenarios fail without them (test_sip_gateway.py).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiosipua import SipMessage, SipRequest, SipResponse, UdpSipTransport, build_sdp

from dialer.sip._ua import SipEndpoint, UacHandlers


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 15))


class Peer:
    """A raw UDP socket that reads SIP messages and answers by hand."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.addr: tuple[str, int] = self.sock.getsockname()

    async def recv(self) -> tuple[SipRequest | SipResponse, tuple[str, int]]:
        loop = asyncio.get_running_loop()
        data, source = await loop.sock_recvfrom(self.sock, 65535)
        return SipMessage.parse(data), source

    async def recv_request(self, method: str) -> tuple[SipRequest, tuple[str, int]]:
        while True:
            message, source = await self.recv()
            if isinstance(message, SipRequest) and message.method == method:
                return message, source

    def reply(
        self, request: SipRequest, source: tuple[str, int], status: str, **extra: str
    ) -> None:
        lines = [f"SIP/2.0 {status}"]
        for via in request.headers.get("via"):
            lines.append(f"Via: {via}")
        lines.append(f"From: {request.headers.get_first('from')}")
        to = request.headers.get_first("to") or ""
        lines.append(f"To: {to}" + ("" if "tag=" in to else ";tag=peer1"))
        lines.append(f"Call-ID: {request.call_id}")
        lines.append(f"CSeq: {request.headers.get_first('cseq')}")
        if status.startswith("2") and "Contact" not in extra:
            lines.append(f"Contact: <sip:peer@127.0.0.1:{self.addr[1]}>")
        for name, value in extra.items():
            lines.append(f"{name.replace('_', '-')}: {value}")
        body = ""
        if status.startswith("200") and request.method == "INVITE":
            body = (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
            )
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), source)

    def close(self) -> None:
        self.sock.close()


async def invite(
    endpoint: SipEndpoint, peer: Peer, handlers: UacHandlers, session_expires: int | None = None
) -> Any:
    return await endpoint.invite(
        from_uri="sip:+862155550000@127.0.0.1",
        to_uri="sip:+8613900000001@127.0.0.1",
        remote_addr=peer.addr,
        sdp=build_sdp("127.0.0.1", 30000, 8, "PCMA"),
        headers={"P-Asserted-Identity": "<sip:+862155550000@127.0.0.1>"},
        handlers=handlers,
        session_expires=session_expires,
    )


def test_fix2_an_unanswered_invite_is_retransmitted_with_the_same_branch() -> None:
    async def scenario() -> None:
        endpoint = SipEndpoint(host="127.0.0.1")
        await endpoint.start()
        peer = Peer()
        try:
            await invite(endpoint, peer, UacHandlers())
            first, _ = await peer.recv_request("INVITE")
            again, _ = await peer.recv_request("INVITE")  # we said nothing: resent
            assert again.via[0].branch == first.via[0].branch
            assert again.cseq is not None
            assert again.cseq.seq == 1
            assert first.headers.get_first("p-asserted-identity") == (
                "<sip:+862155550000@127.0.0.1>"
            )
        finally:
            peer.close()
            await endpoint.stop()

    run(scenario)


def test_fix1_a_busy_is_acked_in_the_invite_transaction() -> None:
    async def scenario() -> None:
        endpoint = SipEndpoint(host="127.0.0.1")
        await endpoint.start()
        peer = Peer()
        failed: list[tuple[int, str]] = []
        try:
            await invite(endpoint, peer, UacHandlers(failed=lambda s, r, a: failed.append((s, r))))
            request, source = await peer.recv_request("INVITE")
            peer.reply(request, source, "486 Busy Here")
            ack, _ = await peer.recv_request("ACK")
            assert ack.via[0].branch == request.via[0].branch  # same transaction
            assert ack.uri == request.uri
            assert "tag=peer1" in (ack.headers.get_first("to") or "")
            assert ack.headers.get_first("cseq") == "1 ACK"
            assert failed == [(486, "Busy Here")]
        finally:
            peer.close()
            await endpoint.stop()

    run(scenario)


@pytest.mark.parametrize("record_route", [True, False])
def test_fix4_the_answers_contact_and_record_route_steer_ack_and_bye(record_route: bool) -> None:
    async def scenario() -> None:
        endpoint = SipEndpoint(host="127.0.0.1")
        await endpoint.start()
        proxy, callee = Peer(), Peer()
        answered: list[bool] = []
        try:
            call = await invite(
                endpoint, proxy, UacHandlers(answered=lambda sdp: answered.append(True))
            )
            request, source = await proxy.recv_request("INVITE")
            contact = f"<sip:callee@127.0.0.1:{callee.addr[1]}>"
            extra = {"Contact": contact}
            if record_route:
                extra["Record_Route"] = f"<sip:127.0.0.1:{proxy.addr[1]};lr>"
            proxy.reply(request, source, "200 OK", **extra)
            hop = proxy if record_route else callee
            ack, _ = await hop.recv_request("ACK")
            assert ack.uri == f"sip:callee@127.0.0.1:{callee.addr[1]}"  # the Contact
            routes = ack.headers.get("route")
            assert routes == ([f"<sip:127.0.0.1:{proxy.addr[1]};lr>"] if record_route else [])
            assert answered == [True]
            call.bye()
            bye, _ = await hop.recv_request("BYE")
            assert bye.uri == ack.uri
            assert bye.headers.get("route") == routes
        finally:
            proxy.close()
            callee.close()
            await endpoint.stop()

    run(scenario)


def test_fix3_cancel_keeps_the_dialog_so_the_487_is_acked() -> None:
    async def scenario() -> None:
        endpoint = SipEndpoint(host="127.0.0.1")
        await endpoint.start()
        peer = Peer()
        failed: list[int] = []
        try:
            call = await invite(
                endpoint, peer, UacHandlers(failed=lambda s, r, a: failed.append(s))
            )
            request, source = await peer.recv_request("INVITE")
            peer.reply(request, source, "180 Ringing")
            await asyncio.sleep(0.05)
            call.cancel()
            cancel, _ = await peer.recv_request("CANCEL")
            assert cancel.via[0].branch == request.via[0].branch
            peer.reply(cancel, source, "200 OK")
            peer.reply(request, source, "487 Request Terminated")
            ack, _ = await peer.recv_request("ACK")
            assert ack.via[0].branch == request.via[0].branch
            assert failed == [487]
        finally:
            peer.close()
            await endpoint.stop()

    run(scenario)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the assert only fails on Python 3.11")
def test_fix5_the_library_udp_transport_asserts_on_python_311_and_ours_does_not() -> None:
    async def errors_when_starting(make: Callable[[], Awaitable[None]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        loop.set_exception_handler(lambda _loop, context: seen.append(context.get("exception")))
        await make()
        await asyncio.sleep(0.05)
        loop.set_exception_handler(None)
        return seen

    async def scenario() -> None:
        plain = UdpSipTransport(local_addr=("127.0.0.1", 0))
        seen = await errors_when_starting(plain.start)
        await plain.stop()
        assert any(isinstance(e, AssertionError) for e in seen)  # the gap is real
        endpoint = SipEndpoint(host="127.0.0.1")
        assert await errors_when_starting(endpoint.start) == []
        assert endpoint.local_addr[1] != 0
        await endpoint.stop()

    run(scenario)


@pytest.mark.parametrize("refresher", ["uac", "uas"])
def test_session_timers_refresh_as_refresher_and_end_a_silent_session(refresher: str) -> None:
    async def scenario() -> None:
        endpoint = SipEndpoint(host="127.0.0.1")
        await endpoint.start()
        peer = Peer()
        expired: list[bool] = []
        try:
            handlers = UacHandlers(expired=lambda: expired.append(True))
            await invite(endpoint, peer, handlers, session_expires=1800)
            request, source = await peer.recv_request("INVITE")
            assert request.headers.get_first("session-expires") == "1800"
            # the trunk grants a (test-sized) 2 s interval and names the refresher
            peer.reply(
                request,
                source,
                "200 OK",
                Session_Expires=f"2;refresher={refresher}",
                Allow="INVITE, ACK, BYE, CANCEL, UPDATE",
            )
            await peer.recv_request("ACK")
            if refresher == "uac":  # we refresh: a bodyless UPDATE in the dialog
                update, _ = await peer.recv_request("UPDATE")
                assert update.headers.get_first("session-expires") == "2;refresher=uac"
                assert expired == []
            else:  # the trunk should refresh and does not: the session is dead, we BYE
                await peer.recv_request("BYE")
                await asyncio.sleep(0.01)
                assert expired == [True]
        finally:
            peer.close()
            await endpoint.stop()

    run(scenario)
