"""Our one adapter over aiosipua 0.7.1: the only module that touches the library's internals.

The gateway (:mod:`dialer.sip.gateway`) talks to a :class:`SipEndpoint` and the
:class:`UacCall` values it returns; nothing else imports aiosipua. The library is used for
what it does well (message parsing and building, dialogs, digest credentials, PRACK, session
timers, answering in-dialog BYE/UPDATE) and fixed here, upstream-style, where 0.7.1 falls
short of RFC 3261 (each fix has its test in ``tests/sip/test_sip_ua.py``):

1. **ACK for non-2xx final responses** (§17.1.1.3): the library ACKs only 2xx, so a 486 or a
   401 is retransmitted by the far end for 32 s. We ACK every 3xx-6xx to our INVITEs, in the
   INVITE's transaction (same branch, the response's To tag), retransmissions included.
2. **INVITE retransmission over UDP** (Timer A/B, §17.1.1.2): the library sends an INVITE
   once. We resend it at T1, 2·T1, … (capped at T2) until any response arrives, and report
   a timeout after 64·T1 with no response at all.
3. **CANCEL keeps the dialog** (§9.1): the library forgets the call when it sends CANCEL, so
   the 487 is not ACKed and a 200 OK that crosses the CANCEL is dropped, leaving a ghost call
   at the far end. We keep tracking it: the 487 is ACKed, and a crossing 200 is ACKed then
   ended with BYE.
4. **The 200 OK's Contact and Record-Route** (§12.1.2): the library keeps sending in-dialog
   requests (ACK, BYE) to the INVITE's Request-URI without a route set, so calls through a
   proxy fail. We take the remote target from the answer's Contact, the route set from its
   Record-Route (reversed), and send to the first route or to the Contact.
5. **UDP under Python 3.11**: the library's datagram protocol asserts that the transport is
   an ``asyncio.DatagramTransport``, which the selector transport of Python 3.11 is not; our
   protocol subclass drops the assert.

**A dialog another process ends** (:meth:`UacCall.dialog_record`, :meth:`SipEndpoint.bye_dialog`):
an established call's dialog is written down as plain data when it is answered, so that if our
process dies with the call up, the next pacer's endpoint can send the BYE (RFC 3261 §15.1.1:
Call-ID, both tags, the remote target and route set identify the dialog, not the socket that set
it up), retransmitted over UDP (Timer E, §17.1.2.2) until a final response (for
:data:`BYE_WAIT_S`); a 481 means the far end has ended it already.

Smaller ones: the first INVITE goes out before the library adds Session-Expires to it (we
add it when the INVITE is built); a remote BYE leaves the library's session timer running (we
cancel it); an expired session (RFC 4028, no refresh) is reported to the owner; TCP
connections we opened are closed on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosipua import (
    Dialog,
    DialogState,
    OutgoingCall,
    SdpMessage,
    SipDigestAuth,
    SipRequest,
    SipResponse,
    SipUAC,
    SipUAS,
    TcpSipTransport,
    UdpSipTransport,
    parse_sdp,
    parse_uri,
    stringify_uri,
)
from aiosipua.transport import _UdpProtocol
from aiosipua.uac_responses import process_response

__all__ = ["T1", "T2", "SipEndpoint", "UacCall", "UacHandlers"]

#: How long :meth:`SipEndpoint.bye_dialog` waits for the far end's final response to its BYE.
BYE_WAIT_S = 4.0

log = logging.getLogger(__name__)

T1 = 0.5
T2 = 4.0


# --------------------------------------------------------------------------- transports


class _Py311UdpProtocol(_UdpProtocol):
    """Fix 5: the library's protocol without its Python ≥3.12-only isinstance assert."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._udp_transport = transport  # type: ignore[assignment]


@dataclass
class _UdpTransport(UdpSipTransport):
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Py311UdpProtocol(self), local_addr=self.local_addr
        )
        self._udp_transport = transport
        self.local_addr = transport.get_extra_info("sockname")[:2]


@dataclass
class _TcpTransport(TcpSipTransport):
    """TCP with our Via saying TCP (the library writes UDP into every Via it builds), and
    every connection we opened closed on stop (the library forgets one the peer closed
    without closing its writer)."""

    _opened: list[asyncio.StreamWriter] = field(default_factory=list, init=False, repr=False)

    async def connect(
        self, remote_addr: tuple[str, int]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await super().connect(remote_addr)
        self._opened.append(writer)
        return reader, writer

    async def stop(self) -> None:
        await super().stop()
        for writer in self._opened:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        self._opened.clear()

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(message, SipRequest):
            vias = message.headers.get("via")
            if vias and vias[0].startswith("SIP/2.0/UDP"):
                rest = vias[1:]
                message.headers.remove("Via")
                message.headers.append("Via", "SIP/2.0/TCP" + vias[0][len("SIP/2.0/UDP") :])
                for via in rest:
                    message.headers.append("Via", via)
        super().send(message, addr)


# --------------------------------------------------------------------------- calls


@dataclass
class UacHandlers:
    """What the owner of an outgoing call hears (all called on the endpoint's loop)."""

    provisional: Callable[[int, str, SdpMessage | None], None] = lambda s, r, sdp: None
    answered: Callable[[SdpMessage | None], None] = lambda sdp: None
    failed: Callable[[int, str, bool], None] = lambda status, reason, after_auth: None
    timed_out: Callable[[], None] = lambda: None
    remote_bye: Callable[[], None] = lambda: None
    expired: Callable[[], None] = lambda: None  # RFC 4028: no refresh came; we sent BYE


@dataclass
class UacCall:
    """One outgoing INVITE and its dialog, as the gateway sees it."""

    endpoint: SipEndpoint
    call: OutgoingCall
    handlers: UacHandlers
    cancelled: bool = False
    answered: bool = False
    ended: bool = False
    provisional_seen: bool = False
    last_response: SipResponse | None = None
    _retransmit: asyncio.Task[None] | None = field(default=None, repr=False)
    _responded: set[str] = field(default_factory=set, repr=False)

    @property
    def call_id(self) -> str:
        """The SIP Call-ID."""
        return self.call.call_id

    @property
    def dialog(self) -> Dialog:
        """The library's dialog (remote target and route set fixed by the adapter)."""
        return self.call.dialog

    def cancel(self) -> None:
        """CANCEL the pending INVITE; the 487 is ACKed, a crossing 200 gets ACK + BYE."""
        if self.answered or self.ended or self.cancelled:
            return
        self.cancelled = True
        uac = self.endpoint.uac
        if self.dialog.state is DialogState.EARLY:
            uac.send_cancel(self.call)
            # Fix 3: the library dropped the call; keep it so the 487 or a crossing 200
            # still finds its dialog.
            uac._calls[self.call_id] = self.call
            self.dialog.state = DialogState.EARLY

    def bye(self) -> None:
        """End the established dialog with BYE (no-op unless answered and not ended)."""
        if not self.answered or self.ended:
            return
        self.ended = True
        self._stop_retransmit()
        if self.dialog.state is DialogState.CONFIRMED:
            self.endpoint.uac.send_bye(self.dialog, self.call.remote_addr)
        self.endpoint._forget(self)

    def dialog_record(self, *, refresh_s: float | None) -> dict[str, Any]:
        """The established dialog as plain data (JSON-ready): what :meth:`SipEndpoint.bye_dialog`
        needs to end it from another process. ``refresh_s`` is how often a session refresh may
        add to our CSeq (half the session interval; ``None``: no session timer)."""
        dialog = self.dialog
        host, port = self.call.remote_addr
        return {
            "call_id": dialog.call_id,
            "local_tag": dialog.local_tag,
            "remote_tag": dialog.remote_tag,
            "local_uri": dialog.local_uri,
            "remote_uri": dialog.remote_uri,
            "remote_target": dialog.remote_target,
            "route_set": list(dialog.route_set),
            "cseq": dialog.local_cseq,
            "refresh_s": refresh_s,
            "next_hop": [host, port],
            "transport": "tcp" if self.endpoint.reliable else "udp",
        }

    def _stop_retransmit(self) -> None:
        if self._retransmit is not None:
            self._retransmit.cancel()
            self._retransmit = None


def _top_branch(message: SipRequest | SipResponse) -> str:
    vias = message.via
    return (vias[0].branch or "") if vias else ""


def _next_hop(target: str, route_set: list[str], default: tuple[str, int]) -> tuple[str, int]:
    """Where in-dialog requests go: the first route if any, else the remote target."""
    uri_text = route_set[0] if route_set else target
    uri_text = uri_text.strip()
    if uri_text.startswith("<"):
        uri_text = uri_text[1 : uri_text.index(">")]
    try:
        uri = parse_uri(uri_text)
    except (ValueError, IndexError):
        return default
    if not uri.host:
        return default
    return (uri.host, uri.port or 5060)


class _Uac(SipUAC):
    """The library's UAC with fixes 1-4 around its response processing."""

    def __init__(self, endpoint: SipEndpoint, transport: Any) -> None:
        super().__init__(transport)
        self.endpoint = endpoint
        self.next_session_expires: int | None = None

    def _build_invite(
        self, dialog: Dialog, *, sdp_offer: SdpMessage | None, user_agent: str | None
    ) -> SipRequest:
        # The library stamps Session-Expires on the first INVITE only after sending it.
        invite = super()._build_invite(dialog, sdp_offer=sdp_offer, user_agent=user_agent)
        if self.next_session_expires:
            invite.headers.set_single("Supported", "100rel, timer")
            invite.headers.set_single("Session-Expires", str(self.next_session_expires))
        return invite

    def handle_response(self, response: SipResponse, addr: tuple[str, int]) -> None:
        cseq = response.cseq
        if cseq is not None and cseq.method.upper() == "BYE" and response.status_code >= 200:
            waiting = self.endpoint._byes.get(_top_branch(response))
            if waiting is not None and not waiting.done():
                waiting.set_result(response.status_code)  # a BYE of bye_dialog answered
        if cseq is None or cseq.method.upper() != "INVITE":
            process_response(self, response, addr)
            return
        status = response.status_code
        branch = _top_branch(response)
        ours = self.endpoint._by_call_id.get(response.call_id or "")
        invite = self.endpoint._invites.get(branch)
        if ours is not None:
            ours.last_response = response
            ours._responded.add(branch)
            if invite is not None and ours.call.invite is invite:
                ours._stop_retransmit()
        if status >= 300 and invite is not None:
            self._ack_non_2xx(invite, response, addr)  # fix 1
        call = self._calls.get(response.call_id or "")
        if call is not None and 200 <= status < 300 and call.dialog.state is DialogState.EARLY:
            self._take_route(call, response)  # fix 4
        before = call.invite if call is not None else None
        process_response(self, response, addr)
        if ours is not None and call is not None and call.invite is not before:
            self.endpoint._sent_invite(ours)  # the library retried (auth, 422): retransmit it

    def _take_route(self, call: OutgoingCall, response: SipResponse) -> None:
        contacts = response.contact
        if contacts:
            call.dialog.remote_target = stringify_uri(contacts[0].uri)
        call.dialog.route_set = list(reversed(response.headers.get("record-route")))
        if not contacts and not call.dialog.route_set:
            return  # a 2xx without Contact (invalid): keep sending where the INVITE went
        call.remote_addr = _next_hop(
            call.dialog.remote_target or call.dialog.remote_uri,
            call.dialog.route_set,
            call.remote_addr,
        )

    def _ack_non_2xx(
        self, invite: SipRequest, response: SipResponse, addr: tuple[str, int]
    ) -> None:
        """ACK a 3xx-6xx in the INVITE's own transaction (RFC 3261 §17.1.1.3)."""
        ack = SipRequest(method="ACK", uri=invite.uri)
        top_via = invite.headers.get_first("via")
        if top_via:
            ack.headers.append("Via", top_via)
        for name in ("From", "Call-ID"):
            value = invite.headers.get_first(name)
            if value:
                ack.headers.set_single(name, value)
        to_value = response.headers.get_first("to")
        if to_value:
            ack.headers.set_single("To", to_value)
        seq = invite.cseq.seq if invite.cseq else 1
        ack.headers.set_single("CSeq", f"{seq} ACK")
        ack.headers.set_single("Max-Forwards", "70")
        for route in invite.headers.get("route"):
            ack.headers.append("Route", route)
        target = self.endpoint._invite_addr.get(_top_branch(invite), addr)
        self.transport.send(ack, target)


# --------------------------------------------------------------------------- endpoint


class SipEndpoint:
    """A SIP user agent on one local address: places calls, hears their fate."""

    def __init__(self, *, host: str, port: int = 0, transport: str = "udp") -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError(f"transport must be 'udp' or 'tcp', got {transport!r}")
        self.reliable = transport == "tcp"
        self.transport: UdpSipTransport | TcpSipTransport = (
            _TcpTransport(local_addr=(host, port))
            if self.reliable
            else _UdpTransport(local_addr=(host, port))
        )
        self.uac = _Uac(self, self.transport)
        self.uas = SipUAS(self.transport, uac=self.uac, user_agent="pilotdial")
        self.uas.on_bye = self._on_bye
        self.uas.on_invite = self._on_invite
        self._by_call_id: dict[str, UacCall] = {}
        self._byes: dict[str, asyncio.Future[int]] = {}  # bye_dialog's, by Via branch
        self._invites: dict[str, SipRequest] = {}
        self._invite_addr: dict[str, tuple[str, int]] = {}

    @property
    def local_addr(self) -> tuple[str, int]:
        """The bound (host, port)."""
        return self.transport.local_addr

    async def start(self) -> None:
        """Bind and listen."""
        await self.uas.start()
        if self.reliable and self.transport.local_addr[1] == 0:
            raise ValueError("a TCP endpoint needs an explicit local port (port=0 given)")

    async def stop(self) -> None:
        """Stop every timer and close the transport."""
        for ours in list(self._by_call_id.values()):
            ours._stop_retransmit()
        await self.uas.stop()

    async def invite(
        self,
        *,
        from_uri: str,
        to_uri: str,
        remote_addr: tuple[str, int],
        sdp: SdpMessage,
        headers: dict[str, str],
        handlers: UacHandlers,
        auth: tuple[str, str] | None = None,
        session_expires: int | None = None,
        display_name: str | None = None,
    ) -> UacCall:
        """Send an INVITE (retransmitted over UDP until a response) and track its call."""
        if isinstance(self.transport, TcpSipTransport) and remote_addr not in (
            self.transport._connections
        ):
            await self.transport.connect(remote_addr)
        self.uac.next_session_expires = session_expires
        try:
            call = self.uac.send_invite(
                from_uri,
                to_uri,
                remote_addr,
                sdp,
                extra_headers=headers,
                user_agent="pilotdial",
                auth=None if auth is None else SipDigestAuth(auth[0], auth[1]),
                session_expires=session_expires,
            )
        finally:
            self.uac.next_session_expires = None
        if display_name:
            tag = call.dialog.local_tag
            call.invite.headers.set_single(
                "From", f'"{display_name}" <{call.dialog.local_uri}>;tag={tag}'
            )
        ours = UacCall(endpoint=self, call=call, handlers=handlers)
        call.on_ringing = lambda c: self._on_provisional(ours)
        call.on_answer = lambda c: self._on_answer(ours)
        call.on_rejected = lambda c, status, reason: self._on_rejected(ours, status, reason)
        call.on_session_expired = lambda c: self._on_expired(ours)
        self._by_call_id[call.call_id] = ours
        self._sent_invite(ours)
        return ours

    async def bye_dialog(self, record: dict[str, Any], *, elapsed_s: float) -> int | None:
        """End a dialog another endpoint set up (:meth:`UacCall.dialog_record`, written
        ``elapsed_s`` ago) with a BYE from here; returns the far end's final status (200, or
        481 if it had ended the call already), ``None`` if it never answered.

        The CSeq is above any the other endpoint can have used since (one session refresh
        per ``refresh_s`` at most): a UAS rejects a lower one (§12.2.2), never a higher one.
        """
        refreshes = 0
        if record.get("refresh_s"):
            refreshes = int(max(0.0, elapsed_s) // float(record["refresh_s"])) + 1
        dialog = Dialog(
            call_id=str(record["call_id"]),
            local_tag=str(record["local_tag"]),
            remote_tag=str(record["remote_tag"]),
            local_uri=str(record["local_uri"]),
            remote_uri=str(record["remote_uri"]),
            remote_target=str(record["remote_target"] or ""),
            route_set=[str(route) for route in record["route_set"]],
            local_cseq=int(record["cseq"]) + refreshes,
            state=DialogState.CONFIRMED,
        )
        host, port = record["next_hop"]
        addr = (str(host), int(port))
        if isinstance(self.transport, TcpSipTransport) and addr not in self.transport._connections:
            await self.transport.connect(addr)
        bye = self.uac.send_bye(dialog, addr)
        branch = _top_branch(bye)
        answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._byes[branch] = answered
        interval, waited = T1, 0.0
        try:
            while waited < BYE_WAIT_S:
                step = min(interval, BYE_WAIT_S - waited)
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(answered), step)
                waited += step
                if not self.reliable:  # Timer E: retransmit until a final response
                    self.transport.send(bye, addr)
                    interval = min(interval * 2, T2)
            return None
        finally:
            self._byes.pop(branch, None)

    # -- internals --------------------------------------------------------------------------

    def _sent_invite(self, ours: UacCall) -> None:
        invite = ours.call.invite
        branch = _top_branch(invite)
        self._invites[branch] = invite
        self._invite_addr[branch] = ours.call.remote_addr
        ours._stop_retransmit()
        if not self.reliable:  # fix 2: Timer A/B over UDP
            ours._retransmit = asyncio.get_running_loop().create_task(
                self._retransmit(ours, invite, branch)
            )

    async def _retransmit(self, ours: UacCall, invite: SipRequest, branch: str) -> None:
        interval = T1
        waited = 0.0
        while waited < 64 * T1:
            await asyncio.sleep(interval)
            waited += interval
            if branch in ours._responded or ours.ended:
                return
            self.transport.send(invite, ours.call.remote_addr)
            interval = min(interval * 2, T2)
        if branch not in ours._responded and not ours.ended:
            ours.ended = True
            self.uac._calls.pop(ours.call_id, None)
            self._forget(ours)
            ours.handlers.timed_out()

    def _forget(self, ours: UacCall) -> None:
        self._by_call_id.pop(ours.call_id, None)
        for branch in [b for b, inv in self._invites.items() if inv.call_id == ours.call_id]:
            self._invites.pop(branch, None)
            self._invite_addr.pop(branch, None)

    def _on_provisional(self, ours: UacCall) -> None:
        ours.provisional_seen = True
        response = ours.last_response
        sdp: SdpMessage | None = None
        status, reason = 180, "Ringing"
        if response is not None:
            status, reason = response.status_code, response.reason_phrase
            if response.body and response.content_type == "application/sdp":
                sdp = parse_sdp(response.text)
        ours.handlers.provisional(status, reason, sdp)

    def _on_answer(self, ours: UacCall) -> None:
        ours._stop_retransmit()
        if ours.cancelled:
            # fix 3: the answer crossed our CANCEL: the library ACKed it; clear the ghost
            ours.answered = True
            self.uac.send_bye(ours.dialog, ours.call.remote_addr)
            ours.ended = True
            self._forget(ours)
            ours.handlers.failed(487, "Request Terminated (answer crossed CANCEL)", False)
            return
        ours.answered = True
        ours.handlers.answered(ours.call.sdp_answer)

    def _on_rejected(self, ours: UacCall, status: int, reason: str) -> None:
        ours._stop_retransmit()
        ours.ended = True
        self._forget(ours)
        ours.handlers.failed(status, reason, ours.call._auth_attempts > 0)

    def _on_expired(self, ours: UacCall) -> None:
        if ours.ended:
            return
        ours.ended = True
        self._forget(ours)
        ours.handlers.expired()

    def _on_bye(self, call: Any, request: SipRequest) -> None:
        ours = self._by_call_id.get(request.call_id or "")
        if ours is None or ours.ended:
            return
        # the library forgets the call on a remote BYE but leaves its session timer running
        ours.call._cancel_session_timer()
        ours.ended = True
        self._forget(ours)
        ours.handlers.remote_bye()

    def _on_invite(self, call: Any) -> None:
        # We never take incoming calls on this endpoint (agents are called, not calling).
        call.reject(403, "Forbidden")
