"""A real telephony gateway: SIP to a trunk, RTP media, agents' persistent phone legs.

:class:`SipGateway` implements :class:`dialer.gateway.TelephonyGateway`. It runs its own
asyncio loop in a thread (signalling in :mod:`dialer.sip._ua`, media in
:mod:`dialer.sip.rtp`); the dial loop's requests are thread-safe and return at once, and what
happens arrives as events stamped with the ``clock`` given at construction (the caller's
"now", so events compare with the times the loop passes in) and returned by :meth:`poll`.

Calls: an INVITE to the trunk with the campaign's caller id in From and P-Asserted-Identity
(an empty caller id is refused, never "anonymous"), PCMA and PCMU offered with RFC 4733
telephone-events, a Session-Expires (RFC 4028) asked for, digest credentials answered once.
180/183 are :class:`Ringing` (a 183's SDP starts early media), a CANCEL goes out when the
request's ``timeout_s`` passes, and final responses keep their meaning (:func:`outcome_for`).
A 200 OK is :class:`Answered` at once with ``kind=HUMAN`` under the default answer policy
(``SipGatewayConfig.amd``: ``pass_all``, every answer to an agent: a person taken for a machine
is an abandoned call under the rules). With ``detect`` the callee's audio goes through the
media toolkit's :class:`~dialer.sip.media.AnswerDetector` and :class:`Answered` comes with its
verdict (``unknown`` counts as a person); ``media_answer_s`` is the 200 OK either way, so the
safe-harbour clock starts there. A call that ends, or that the loop hangs up, while it is being
listened to is reported answered first (a person may have picked up: never a silent drop). With
``leave_message`` a message played to a machine waits for its beep
(:class:`~dialer.sip.media.BeepDetector`, 30 s at most; no beep, nothing played).

Agents: :meth:`SipGateway.connect_agent_phone` calls the agent's SIP URI once and keeps the
leg; :meth:`SipGateway.connect_to_agent` relays RTP between the callee and that leg (no
re-INVITE, the agent's phone never rings again) and reports :class:`ConnectedToAgent`.

Transfer out (:meth:`SipGateway.transfer_out`): a second INVITE through the trunk to the outside
number, with the call's caller id; the callee hears the hold music until it answers, then our
relay bridges the two legs (recorded as ``<call_id>-outside.wav`` beside the callee's when
``record_dir`` is set), and either party's BYE ends both.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosipua import SdpMessage, build_sdp

from dialer.exceptions import GatewayError, UnknownCall
from dialer.gateway import (
    AgentLegEvent,
    AgentLegState,
    Answered,
    AnswerKind,
    Busy,
    CallEvent,
    CallParameters,
    ConnectedToAgent,
    DtmfReceived,
    Failed,
    FailureCause,
    GatewayEvent,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    RecordingReady,
    Ringing,
    TransferOutFailed,
    TransferredOut,
    outside_number,
    with_agent,
)
from dialer.sip._ua import BYE_WAIT_S, SipEndpoint, UacCall, UacHandlers
from dialer.sip.media import (
    AmdPolicy,
    AmdSettings,
    AmdVerdict,
    AnswerDetector,
    BeepDetector,
    write_wav,
)
from dialer.sip.rtp import CODECS, CallCapture, Mixer, PortPool, RtpLeg, check_wav
from dialer.sip.speech import Speech, SpeechError

__all__ = ["SipGateway", "SipGatewayConfig", "SipTrunk", "outcome_for"]

log = logging.getLogger(__name__)

_DTMF = set("0123456789*#ABCD")


@dataclass(frozen=True)
class SipTrunk:
    """Where calls go. The password is never logged nor shown in ``repr``."""

    host: str
    port: int = 5060
    transport: str = "udp"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    domain: str | None = None  # the host part of From/To/Request-URI; default: host

    def __post_init__(self) -> None:
        if self.transport not in ("udp", "tcp"):
            raise ValueError(f"trunk transport must be 'udp' or 'tcp', got {self.transport!r}")
        if (self.username is None) != (self.password is None):
            raise ValueError("give both the trunk's username and password, or neither")

    @classmethod
    def from_env(cls, prefix: str = "PILOTDIAL_SIP_TRUNK_") -> SipTrunk:
        """The trunk from ``<prefix>HOST``, ``PORT``, ``TRANSPORT``, ``USERNAME``,
        ``PASSWORD`` and ``DOMAIN`` (only HOST is required)."""
        host = os.environ.get(prefix + "HOST")
        if not host:
            raise ValueError(f"set {prefix}HOST to the SIP trunk's host (e.g. sip.carrier.net)")
        return cls(
            host=host,
            port=int(os.environ.get(prefix + "PORT", "5060")),
            transport=os.environ.get(prefix + "TRANSPORT", "udp").lower(),
            username=os.environ.get(prefix + "USERNAME") or None,
            password=os.environ.get(prefix + "PASSWORD") or None,
            domain=os.environ.get(prefix + "DOMAIN") or None,
        )

    @property
    def address(self) -> tuple[str, int]:
        """The trunk's (host, port)."""
        return (self.host, self.port)

    @property
    def uri_host(self) -> str:
        """The host part of the URIs we send."""
        return self.domain or self.host


@dataclass(frozen=True)
class SipGatewayConfig:
    """How a :class:`SipGateway` binds and behaves; times are seconds."""

    trunk: SipTrunk
    local_host: str = "127.0.0.1"
    sip_port: int = 0  # 0: any free port (UDP); a TCP trunk needs a fixed one
    rtp_port_range: tuple[int, int] = (20000, 30000)
    messages: Mapping[str, Path] = field(default_factory=dict)
    session_expires_s: int | None = 1800
    cancel_grace_s: float = 4.0  # after CANCEL, wait this long for the 487 at most
    agent_answer_timeout_s: float = 20.0
    # no RTP from an agent's phone for this long: the leg is lost (None: never checked)
    agent_media_timeout_s: float | None = None
    record_dir: Path | None = None  # callee audio of each call, <call_id>.wav
    # each answered call recorded, both sides (<call_id>-call.wav; RecordingReady after it
    # ends); None: no call recordings
    call_recording_dir: Path | None = None
    # speaks a message that has a text but no WAV (IVR questions); None: WAVs only
    speech: Speech | None = field(default_factory=Speech)
    hold_music: Path | None = None  # what a held callee hears (None: a soft two-note chime)
    # answering-machine detection (default: none, every answer passed to an agent)
    amd: AmdSettings = field(default_factory=AmdSettings)
    beep_timeout_s: float = 30.0  # leave_message: a machine's beep awaited this long at most
    transfer_ring_timeout_s: float = 30.0  # a transfer out unanswered this long: CANCEL
    # symmetric RTP, for phones and trunks behind NAT: each leg sends to where the far end's
    # packets come from (latched by aiortp), not only to the address in its SDP
    symmetric_rtp: bool = False

    def __post_init__(self) -> None:
        for message_id, path in self.messages.items():
            try:
                check_wav(Path(path))
            except ValueError as exc:
                raise ValueError(f"message {message_id!r}: {exc}") from exc


def _write_chime(path: Path) -> Path:
    """A soft two-note chime every two seconds (8 kHz mono), the default music on hold."""
    import numpy as np

    rate = 8000
    t = np.arange(int(0.4 * rate)) / rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)
    notes = [np.sin(2 * np.pi * f * t) * fade for f in (523.25, 392.0)]
    gap = np.zeros(int(0.6 * rate))
    signal = np.concatenate([notes[0], gap[: rate // 10], notes[1], gap, gap])
    write_wav(path, (signal * 0.15 * 32767).astype("<i2"))  # atomic: workers share it
    return path


def outcome_for(
    status: int, reason: str, *, ringing: bool, after_auth: bool
) -> tuple[type[CallEvent], FailureCause | None, str]:
    """The event (and failure cause) a final SIP response means; see FailureCause."""
    detail = f"SIP {status} {reason}".strip()
    if status in (486, 600):
        return Busy, None, detail
    if status in (480, 487) or (status == 408 and ringing):
        return NoAnswer, None, detail
    if status in (404, 410, 484, 604):
        return Failed, FailureCause.INVALID_NUMBER, detail
    if status in (500, 503, 408):
        return Failed, FailureCause.CONGESTION, detail
    if status == 403 or status in (401, 407):
        if status != 403:
            detail += " after our credentials" if after_auth else " (no credentials configured)"
        return Failed, FailureCause.TRUNK_REFUSED, detail
    if status == 603:
        return Failed, FailureCause.DECLINED, detail
    return Failed, FailureCause.UNKNOWN, detail


@dataclass
class _Lead:
    call_id: str
    request: OriginateRequest
    params: CallParameters
    leg: RtpLeg
    originated_at: float
    ua: UacCall | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    answered_mono: float | None = None
    state: str = "dialing"  # dialing, ringing, answered, ended
    timed_out: bool = False
    hung_up_by: HangupParty | None = None  # hang_up() before the answer
    agent_id: str | None = None
    timer: asyncio.TimerHandle | None = None
    others: list[str] = field(default_factory=list)  # further agents on a three-way call
    held: bool = False
    mixer: Mixer | None = None
    # answering-machine detection: the verdict (None: not reached, or not run) and, while
    # listening, what reports the answer (with "unknown" when cut short)
    amd: AmdVerdict | None = None
    decide: Callable[[AmdVerdict], None] | None = None
    outside: _Outside | None = None  # the leg of a transfer out


@dataclass
class _Outside:
    """The outside party a call is transferred to: its own trunk call and RTP leg."""

    number: str
    leg: RtpLeg
    ua: UacCall | None = None
    state: str = "calling"  # calling, connected, ended
    timer: asyncio.TimerHandle | None = None


@dataclass
class _AgentLeg:
    agent_id: str
    address: str
    leg: RtpLeg
    ua: UacCall | None = None
    state: str = "calling"  # calling, connected, ended
    call_id: str | None = None  # the lead call bridged to it
    timer: asyncio.TimerHandle | None = None


class SipGateway:
    """The SIP trunk gateway (see the module docstring); use as a context manager or
    :meth:`close` it."""

    def __init__(self, config: SipGatewayConfig, *, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self._events: list[GatewayEvent] = []
        self._arrived = threading.Event()  # set when an event is queued (see wait)
        self._calls: dict[str, _Lead] = {}
        self._agents: dict[str, _AgentLeg] = {}
        self._chime: Path | None = None
        self._ports = PortPool(*config.rtp_port_range)
        self._seq = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]
        #: time.monotonic() of each call's 200 OK and of its first safe-harbour packet
        self.timings: dict[str, dict[str, float]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sip")
        self._thread.start()
        self.endpoint = SipEndpoint(
            host=config.local_host, port=config.sip_port, transport=config.trunk.transport
        )
        self._agent_endpoint = (
            SipEndpoint(host=config.local_host, port=0, transport="udp")
            if config.trunk.transport == "tcp"
            else self.endpoint
        )
        try:
            self._run(self.endpoint.start())
            if self._agent_endpoint is not self.endpoint:
                self._run(self._agent_endpoint.start())
            if config.agent_media_timeout_s is not None:
                self._run(self._start_watchdog())
        except BaseException:
            self._stop_loop()
            raise
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def _run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def sip_address(self) -> tuple[str, int]:
        """The (host, port) our SIP endpoint listens on."""
        return self.endpoint.local_addr

    def close(self) -> None:
        """Hang up everything, stop the loop."""
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            for lead in list(self._calls.values()):
                self._end_lead(lead, send=True)
            for agent in list(self._agents.values()):
                self._end_agent(agent, send=True, event=None)
            await asyncio.sleep(0.05)
            await self.endpoint.stop()
            if self._agent_endpoint is not self.endpoint:
                await self._agent_endpoint.stop()

        with contextlib.suppress(Exception):
            self._run(shutdown())
        self._stop_loop()

    def __enter__(self) -> SipGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ---------------------------------------------------------------------------

    def _emit(self, event: GatewayEvent) -> None:
        with self._lock:
            self._events.append(event)
        self._arrived.set()

    def wait(self, timeout_s: float) -> None:
        """Sleep up to ``timeout_s``, waking as soon as an event arrives: the dial loop's
        sleep, so an answer is routed at once instead of at the loop's next tick."""
        if self._arrived.wait(max(0.0, timeout_s)):
            self._arrived.clear()

    def _event(self, event_type: type[CallEvent], lead: _Lead, /, **extra: Any) -> None:
        request = lead.request
        self._emit(
            event_type(
                call_id=lead.call_id,
                at_s=self.clock(),
                params=lead.params,
                campaign_id=request.campaign_id,
                lead_id=request.lead_id,
                attempt_id=request.attempt_id,
                **extra,
            )
        )

    def next_event_time(self) -> float | None:
        """When the oldest queued event was stamped (``None``: nothing queued)."""
        with self._lock:
            return min((e.at_s for e in self._events), default=None)

    def poll(self, until: float) -> list[GatewayEvent]:
        """Events stamped at or before ``until``, oldest first; each is returned once."""
        with self._lock:
            due = [e for e in self._events if e.at_s <= until]
            self._events = [e for e in self._events if e.at_s > until]
        return sorted(due, key=lambda e: e.at_s)

    # -- requests (any thread) --------------------------------------------------------------

    def _lead(self, call_id: str) -> _Lead:
        with self._lock:
            lead = self._calls.get(call_id)
        if lead is None or lead.state == "ended":
            raise UnknownCall(
                f"no call {call_id!r} in progress; it has ended or was never placed here"
            )
        return lead

    def _answered(self, call_id: str, doing: str) -> _Lead:
        lead = self._lead(call_id)
        if lead.state != "answered":
            raise GatewayError(
                f"call {call_id} is {lead.state}, not answered; {doing} once answered"
            )
        return lead

    def originate(self, request: OriginateRequest, *, now: float) -> str:
        """INVITE the callee through the trunk; returns our call id."""
        caller = request.params.caller_number.strip()
        if not caller:
            raise GatewayError(
                "the call has no caller number; set the campaign's caller_id (calls are never "
                "sent as anonymous)"
            )
        callee = request.params.callee_number.strip()
        if not callee:
            raise GatewayError("the call has no callee number to dial")
        if self._closed:
            raise GatewayError("the SIP gateway is closed")
        call_id = f"sip-{self._prefix}-{next(self._seq)}"
        lead = _Lead(
            call_id=call_id,
            request=request,
            params=request.params,
            leg=self._new_leg(),
            originated_at=self.clock(),
        )
        if self.config.record_dir is not None:  # early media included
            lead.leg.record(self.config.record_dir / f"{call_id}.wav")
        with self._lock:
            self._calls[call_id] = lead
        self._loop.call_soon_threadsafe(self._spawn, self._dial(lead))
        return call_id

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        """CANCEL a ringing call (no event) or BYE an answered one (:class:`HungUp`)."""
        lead = self._lead(call_id)
        self._loop.call_soon_threadsafe(self._hang_up, lead, by)

    def connect_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        """Relay the answered call's RTP to the agent's persistent leg."""
        lead = self._answered(call_id, "connect it to an agent")
        if lead.agent_id is not None:
            raise GatewayError(f"call {call_id} is already connected to agent {lead.agent_id!r}")
        with self._lock:
            agent = self._agents.get(agent_id)
        if agent is None or agent.state != "connected":
            raise GatewayError(
                f"agent {agent_id!r} has no connected phone leg; call connect_agent_phone "
                "at sign-in and wait for its CONNECTED event"
            )
        if agent.call_id is not None:
            raise GatewayError(f"agent {agent_id!r} is already bridged to call {agent.call_id}")
        lead.agent_id = agent_id
        agent.call_id = call_id
        lead.params = with_agent(lead.params, agent_id, skill_group)
        self._loop.call_soon_threadsafe(self._bridge, lead, agent)

    def play_message(
        self,
        call_id: str,
        message_id: str,
        *,
        now: float,
        expect_dtmf: bool = False,
        text: str | None = None,
        language: str | None = None,
    ) -> None:
        """Play the WAV configured for ``message_id``, else speak ``text`` in ``language``
        (:mod:`dialer.sip.speech`); :class:`MessageFinished` at its end. The callee's keys
        arrive as :class:`DtmfReceived` events whether or not ``expect_dtmf`` is set."""
        lead = self._answered(call_id, "play messages")
        path = self.config.messages.get(message_id)
        if path is None and text and self.config.speech is not None:
            try:
                path = self.config.speech.render(text, language)
            except SpeechError as exc:
                raise GatewayError(f"message {message_id!r}: {exc}") from exc
        if path is None:
            known = ", ".join(sorted(self.config.messages)) or "none"
            raise GatewayError(
                f"no WAV configured for message {message_id!r} (configured: {known}) and no "
                "text to speak; add it to SipGatewayConfig.messages"
            )
        self._loop.call_soon_threadsafe(self._play, lead, message_id, Path(path))

    def send_dtmf(self, call_id: str, digits: str, *, now: float) -> None:
        """Send RFC 4733 digits to the callee."""
        lead = self._answered(call_id, "send DTMF")
        if not digits or any(d not in _DTMF for d in digits):
            raise GatewayError(f"DTMF digits must be 0-9, *, # or A-D, got {digits!r}")
        self._loop.call_soon_threadsafe(lead.leg.send_dtmf, digits)

    # -- soft-phone functions on a bridged call ------------------------------------------------

    def _bridged_lead(self, call_id: str, doing: str) -> _Lead:
        lead = self._answered(call_id, doing)
        if lead.agent_id is None:
            raise GatewayError(
                f"call {call_id} is not connected to an agent; {doing} once an agent has it"
            )
        return lead

    def _free_agent(self, agent_id: str, call_id: str) -> _AgentLeg:
        """The agent's connected leg, free or already on ``call_id`` (caller holds the lock)."""
        agent = self._agents.get(agent_id)
        if agent is None or agent.state != "connected":
            raise GatewayError(
                f"agent {agent_id!r} has no connected phone leg; call connect_agent_phone "
                "at sign-in and wait for its CONNECTED event"
            )
        if agent.call_id is not None and agent.call_id != call_id:
            raise GatewayError(f"agent {agent_id!r} is already bridged to call {agent.call_id}")
        return agent

    def hold(self, call_id: str, *, now: float) -> None:
        """The callee hears the hold music; the agents' phones hear nothing from the callee
        and send nothing to it."""
        lead = self._bridged_lead(call_id, "put it on hold")
        self._loop.call_soon_threadsafe(self._hold, lead)

    def unhold(self, call_id: str, *, now: float) -> None:
        """Stop the music; the callee and the call's agents hear each other again."""
        lead = self._bridged_lead(call_id, "take it off hold")
        self._loop.call_soon_threadsafe(self._unhold, lead)

    def transfer_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        """Relay the call to another agent's leg; the agents who had it are free again."""
        lead = self._bridged_lead(call_id, "transfer it")
        with self._lock:
            if agent_id == lead.agent_id and not lead.others:
                raise GatewayError(f"call {call_id} is already with agent {agent_id!r}")
            agent = self._free_agent(agent_id, call_id)
            for old_id in [lead.agent_id, *lead.others]:
                old = self._agents.get(old_id) if old_id else None
                if old is not None and old_id != agent_id and old.call_id == call_id:
                    old.call_id = None
                    old_leg = old.leg
                    self._loop.call_soon_threadsafe(setattr, old_leg, "relay", None)
            agent.call_id = call_id
            lead.agent_id = agent_id
            lead.others = []
            lead.params = with_agent(lead.params, agent_id, skill_group)
        self._loop.call_soon_threadsafe(self._reroute, lead, True)

    def detach_agents(self, call_id: str, *, now: float) -> None:
        """The call stays up with no agent (the IVR takes it): the relay to the agents'
        legs ends, the hold music stops, and the agents are free for their next calls."""
        lead = self._bridged_lead(call_id, "hand it to the IVR")
        with self._lock:
            self._free_agents_of(lead)
        self._loop.call_soon_threadsafe(self._detach, lead)

    def _free_agents_of(self, lead: _Lead) -> None:
        """The call's agents' legs are free again, relaying nothing (caller holds the lock)."""
        for agent_id in [lead.agent_id, *lead.others]:
            agent = self._agents.get(agent_id) if agent_id else None
            if agent is not None and agent.call_id == lead.call_id:
                agent.call_id = None
                self._loop.call_soon_threadsafe(setattr, agent.leg, "relay", None)
        lead.agent_id = None
        lead.others = []

    def transfer_out(self, call_id: str, number: str, *, now: float) -> None:
        """INVITE ``number`` through the trunk with the call's caller id; the callee hears
        the hold music meanwhile and the agents' legs are free at once. When it answers our
        relay bridges the callee to it (:class:`TransferredOut`); busy, no answer (after
        ``transfer_ring_timeout_s``, then CANCEL) or a refusal is :class:`TransferOutFailed`,
        the callee still on hold. Either party hanging up afterwards ends both legs: the
        call's :class:`HungUp` is ``CALLEE`` when the callee hung up, ``AGENT`` (our side)
        when the outside party did."""
        number = outside_number(number)
        lead = self._bridged_lead(call_id, "transfer it out")
        if lead.outside is not None and lead.outside.state != "ended":
            raise GatewayError(f"call {call_id} is already being transferred out")
        outside = _Outside(number, self._new_leg())
        with self._lock:
            self._free_agents_of(lead)
            lead.params = with_agent(lead.params, None, None)
            lead.outside = outside
        self._loop.call_soon_threadsafe(self._start_transfer_out, lead, outside)

    def _start_transfer_out(self, lead: _Lead, outside: _Outside) -> None:
        if lead.state != "answered":
            self._end_outside(outside, send=False)
            return
        self._unroute(lead)
        lead.held = False
        self._hold(lead)  # music while the outside number rings
        if self.config.record_dir is not None:
            outside.leg.record(self.config.record_dir / f"{lead.call_id}-outside.wav")
        self._spawn(self._dial_outside(lead, outside))

    async def _dial_outside(self, lead: _Lead, outside: _Outside) -> None:
        handlers = UacHandlers(
            answered=lambda sdp: self._spawn(self._outside_answered(lead, outside, sdp)),
            failed=lambda status, reason, after_auth: self._outside_failed(
                lead, outside, status, reason, after_auth
            ),
            timed_out=lambda: self._outside_failed(
                lead, outside, 408, "no response (timer B)", False
            ),
            remote_bye=lambda: self._outside_hung_up(lead, outside),
            expired=lambda: self._outside_hung_up(lead, outside),
        )
        try:
            outside.ua = await self._invite(
                lead.params.caller_number, outside.number, outside.leg, handlers
            )
        except OSError as exc:
            self._outside_failed(lead, outside, 503, f"trunk: {exc}", False)
            return
        if outside.state == "ended":  # the call ended while we were sending the INVITE
            outside.ua.cancel()
            return
        outside.timer = self._loop.call_later(
            self.config.transfer_ring_timeout_s, self._outside_ring_timeout, lead, outside
        )

    def _outside_ring_timeout(self, lead: _Lead, outside: _Outside) -> None:
        if outside.state == "calling" and outside.ua is not None:
            outside.ua.cancel()  # the 487 reports it as no answer
            # a proxy may sit on the CANCEL until its own timer fires: stop waiting
            outside.timer = self._loop.call_later(
                self.config.cancel_grace_s,
                self._outside_failed, lead, outside, 487, "no final after CANCEL", False,
            )  # fmt: skip

    async def _outside_answered(
        self, lead: _Lead, outside: _Outside, sdp: SdpMessage | None
    ) -> None:
        if outside.timer is not None:
            outside.timer.cancel()
        if outside.state != "calling" or lead.state != "answered":
            self._end_outside(outside, send=True)
            return
        outside.state = "connected"
        await self._start_leg(outside.leg, sdp)
        if lead.state != "answered":  # the callee hung up meanwhile
            self._end_outside(outside, send=True)
            return
        lead.held = False
        lead.leg.stop_playing()
        lead.leg.relay = outside.leg
        outside.leg.relay = lead.leg
        self.timings.setdefault(lead.call_id, {})["transferred_out"] = time.monotonic()
        self._event(TransferredOut, lead, number=outside.number)

    def _outside_failed(
        self, lead: _Lead, outside: _Outside, status: int, reason: str, after_auth: bool
    ) -> None:
        if outside.timer is not None:
            outside.timer.cancel()
        if outside.state == "ended":
            return
        self._end_outside(outside, send=False)
        if lead.state != "answered" or lead.outside is not outside:
            return
        kind, _cause, detail = outcome_for(status, reason, ringing=True, after_auth=after_auth)
        said = {Busy: "busy", NoAnswer: "no answer"}.get(kind, detail)
        log.info("call %s: transfer out to %s failed: %s", lead.call_id, outside.number, said)
        self._event(TransferOutFailed, lead, number=outside.number, reason=said)

    def _outside_hung_up(self, lead: _Lead, outside: _Outside) -> None:
        """The outside party ended the call: the callee is hung up too."""
        if outside.state == "ended":
            return
        self._end_outside(outside, send=False)
        if lead.state == "answered" and lead.outside is outside:
            self._end_lead(lead, send=True)
            self._finish(lead, HangupParty.AGENT, ended=True)

    def _end_outside(self, outside: _Outside, *, send: bool) -> None:
        if outside.state == "ended":
            return
        was_connected = outside.state == "connected"
        outside.state = "ended"
        if outside.timer is not None:
            outside.timer.cancel()
        if send and outside.ua is not None:
            if was_connected or outside.ua.answered:
                outside.ua.bye()
            else:
                outside.ua.cancel()
        outside.leg.relay = None
        self._spawn(self._close_leg(outside.leg))

    def _detach(self, lead: _Lead) -> None:
        if lead.mixer is not None:
            lead.mixer.stop()
            lead.mixer = None
        lead.leg.relay = None
        if lead.held:
            lead.held = False
            lead.leg.stop_playing()

    def conference(self, call_id: str, *, agent_id: str, now: float) -> None:
        """Mix another agent into the call: a three-way call."""
        lead = self._bridged_lead(call_id, "add an agent to it")
        with self._lock:
            if agent_id == lead.agent_id or agent_id in lead.others:
                raise GatewayError(f"agent {agent_id!r} is already on call {call_id}")
            agent = self._free_agent(agent_id, call_id)
            agent.call_id = call_id
            lead.others.append(agent_id)
        self._loop.call_soon_threadsafe(self._reroute, lead, False)

    def _call_agents(self, lead: _Lead) -> list[_AgentLeg]:
        with self._lock:
            found = [self._agents.get(a) for a in [lead.agent_id, *lead.others] if a]
        return [a for a in found if a is not None and a.call_id == lead.call_id]

    def _unroute(self, lead: _Lead) -> None:
        if lead.mixer is not None:
            lead.mixer.stop()
            lead.mixer = None
        lead.leg.relay = None
        for agent in self._call_agents(lead):
            agent.leg.relay = None

    def _route(self, lead: _Lead) -> None:
        agents = [a for a in self._call_agents(lead) if a.state == "connected"]
        if lead.held or lead.state != "answered" or not agents:
            return
        if len(agents) == 1:
            lead.leg.relay = agents[0].leg
            agents[0].leg.relay = lead.leg
        else:
            lead.mixer = Mixer([lead.leg, *(a.leg for a in agents)])
            lead.mixer.start()

    def _hold(self, lead: _Lead) -> None:
        if lead.state != "answered" or lead.held:
            return
        lead.held = True
        self._unroute(lead)
        lead.leg.play(self._music(), lambda: None, loop=True)

    def _unhold(self, lead: _Lead) -> None:
        if lead.state != "answered" or not lead.held:
            return
        lead.held = False
        lead.leg.stop_playing()
        self._route(lead)

    def _reroute(self, lead: _Lead, announce: bool) -> None:
        if lead.state != "answered":
            return
        lead.held = False
        lead.leg.stop_playing()
        self._unroute(lead)
        self._route(lead)
        if announce:
            self._event(ConnectedToAgent, lead)

    def _music(self) -> Path:
        if self.config.hold_music is not None:
            return self.config.hold_music
        if self._chime is None:
            self._chime = _write_chime(Path(tempfile.gettempdir()) / "pilotdial-hold-chime.wav")
        return self._chime

    def connect_agent_phone(self, agent_id: str, address: str, *, now: float) -> None:
        """INVITE the agent's phone (a SIP URI) once; the outcome is an AgentLegEvent."""
        address = address.strip()
        if not address.startswith(("sip:", "sips:")):
            raise GatewayError(
                f"agent {agent_id!r}: phone address {address!r} is not a SIP URI; give e.g. "
                "sip:1001@10.0.0.5:5060"
            )
        with self._lock:
            existing = self._agents.get(agent_id)
            if existing is not None and existing.state != "ended":
                return
        agent = _AgentLeg(agent_id, address, self._new_leg())
        with self._lock:
            self._agents[agent_id] = agent
        self._loop.call_soon_threadsafe(self._spawn, self._call_agent(agent))

    def release_agent_phone(self, agent_id: str, *, now: float) -> None:
        """BYE (or CANCEL) the agent's leg; unknown agents are ignored."""
        with self._lock:
            agent = self._agents.pop(agent_id, None)
        if agent is not None:
            self._loop.call_soon_threadsafe(self._end_agent, agent, True, None)

    def end_left_calls(self, handles: Sequence[str], *, now: float) -> list[bool]:
        """BYE the calls a dead process's SIP gateway left up (their :class:`Answered`
        handles: the dialogs) from our endpoint, all at once; True for each call we sent the
        BYE of (RFC 3261 §15.1.1: the session is over for us once the BYE is sent; it is
        retransmitted until the far end answers, for up to ``BYE_WAIT_S``). A handle of
        another kind, or of a transport our endpoint does not speak, is not ours (False).

        The far end should answer at our Via (§18.2.2); some answer where the dialog came
        from (SIPp does), the dead process's address, so no answer is not taken as failure."""

        async def end_all() -> list[bool]:
            return list(await asyncio.gather(*(self._end_left(handle) for handle in handles)))

        if not handles:
            return []
        ended: list[bool] = self._run(end_all(), timeout=BYE_WAIT_S + 5)
        return ended

    async def _end_left(self, handle: str) -> bool:
        try:
            left = json.loads(handle)
        except ValueError:
            return False
        if not isinstance(left, dict) or left.get("kind") != "sip":
            return False
        dialog = left.get("dialog")
        if not isinstance(dialog, dict) or dialog.get("transport") != (
            "tcp" if self.endpoint.reliable else "udp"
        ):
            return False
        call_id = dialog.get("call_id")
        elapsed = time.time() - float(left.get("answered_epoch", 0.0))
        try:
            status = await self.endpoint.bye_dialog(dialog, elapsed_s=elapsed)
        except (OSError, KeyError, TypeError, ValueError) as exc:
            log.warning("could not end the call %s left up: %s", call_id, exc)
            return False
        log.info(
            "ended call %s, left up by a dead process (%s)",
            call_id, f"{status} to our BYE" if status else "our BYE unanswered here",
        )  # fmt: skip
        return True

    def _handle_of(self, lead: _Lead) -> str | None:
        """The answered call's dialog, for :meth:`end_left_calls` in another process."""
        if lead.ua is None:
            return None
        refresh = self.config.session_expires_s
        record = lead.ua.dialog_record(refresh_s=None if not refresh else refresh / 2)
        return json.dumps({"kind": "sip", "answered_epoch": time.time(), "dialog": record})

    # -- the loop's side --------------------------------------------------------------------

    def _new_leg(self) -> RtpLeg:
        """An RTP leg on a free port of the range (GatewayError when none is left)."""
        try:
            port = self._ports.take()
        except RuntimeError as exc:
            raise GatewayError(str(exc)) from exc
        return RtpLeg(self.config.local_host, port, symmetric=self.config.symmetric_rtp)

    async def _close_leg(self, leg: RtpLeg) -> None:
        """Close a leg (writing its recordings) and give its port back."""
        await leg.close()
        self._ports.give(leg.port)

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        task.add_done_callback(_log_failure)

    def _offer(self, leg: RtpLeg) -> SdpMessage:
        sdp = build_sdp(self.config.local_host, leg.port, 8, "PCMA")
        audio = sdp.audio
        assert audio is not None
        audio.formats = [*(str(pt) for pt in CODECS), "101"]
        audio.attributes["rtpmap"] = [
            *(f"{pt} {name}/8000" for pt, name in CODECS.items()),
            "101 telephone-event/8000",
        ]
        return sdp

    @staticmethod
    def _media_of(sdp: SdpMessage | None) -> tuple[tuple[str, int], int] | None:
        if sdp is None or sdp.rtp_address is None or sdp.audio is None:
            return None
        for fmt in sdp.audio.formats:
            if fmt.isdigit() and int(fmt) in CODECS:
                return sdp.rtp_address, int(fmt)
        return None

    async def _start_leg(self, leg: RtpLeg, sdp: SdpMessage | None) -> bool:
        media = self._media_of(sdp)
        if media is None:
            return False
        await leg.start(*media)
        return True

    async def _invite(
        self, caller_number: str, number: str, leg: RtpLeg, handlers: UacHandlers
    ) -> UacCall:
        """INVITE ``number`` through the trunk, presenting ``caller_number`` in From and
        P-Asserted-Identity, our ``leg`` in the SDP offer, the trunk's credentials ready."""
        trunk = self.config.trunk
        host = trunk.uri_host
        caller_uri = f"sip:{caller_number}@{host}"
        auth = None
        if trunk.username is not None and trunk.password is not None:
            auth = (trunk.username, trunk.password)
        return await self.endpoint.invite(
            from_uri=caller_uri,
            to_uri=f"sip:{number}@{host}",
            remote_addr=trunk.address,
            sdp=self._offer(leg),
            headers={"P-Asserted-Identity": f"<{caller_uri}>"},
            handlers=handlers,
            auth=auth,
            session_expires=self.config.session_expires_s,
        )

    async def _dial(self, lead: _Lead) -> None:
        handlers = UacHandlers(
            provisional=lambda status, reason, sdp: self._spawn(
                self._on_provisional(lead, status, sdp)
            ),
            answered=lambda sdp: self._spawn(self._on_answered(lead, sdp)),
            failed=lambda status, reason, after_auth: self._on_failed(
                lead, status, reason, after_auth
            ),
            timed_out=lambda: self._on_failed(lead, 408, "no response (timer B)", False),
            remote_bye=lambda: self._on_remote_bye(lead),
            expired=lambda: self._on_expired(lead),
        )
        try:
            lead.ua = await self._invite(
                lead.params.caller_number, lead.params.callee_number, lead.leg, handlers
            )
        except OSError as exc:
            lead.state = "ended"
            self._release(lead)
            self._event(Failed, lead, cause=FailureCause.CONGESTION, detail=f"trunk: {exc}")
            return
        if lead.hung_up_by is not None:
            lead.ua.cancel()
            return
        lead.timer = self._loop.call_later(lead.request.timeout_s, self._ring_timeout, lead)

    async def _on_provisional(self, lead: _Lead, status: int, sdp: SdpMessage | None) -> None:
        if lead.state == "dialing":
            lead.state = "ringing"
            lead.ringing_at = self.clock()
            if lead.hung_up_by is None and not lead.timed_out:
                self._event(Ringing, lead)
        if sdp is not None and not lead.leg.started:
            await self._start_leg(lead.leg, sdp)  # early media (183)

    async def _on_answered(self, lead: _Lead, sdp: SdpMessage | None) -> None:
        mono = time.monotonic()
        at = self.clock()
        if lead.timer is not None:
            lead.timer.cancel()
        if lead.hung_up_by is not None or lead.timed_out or lead.state == "ended":
            self._end_lead(lead, send=True)
            return
        lead.state = "answered"
        lead.answered_at = at
        lead.answered_mono = mono
        self.timings.setdefault(lead.call_id, {})["answered"] = mono
        await self._start_leg(lead.leg, sdp)
        if self.config.call_recording_dir is not None:
            lead.leg.capture = CallCapture(
                self.config.call_recording_dir / f"{lead.call_id}-call.wav"
            )
        lead.leg.on_dtmf = lambda digit: self._event(DtmfReceived, lead, digits=digit)
        ring = max(
            0.0, at - (lead.ringing_at if lead.ringing_at is not None else lead.originated_at)
        )
        if self.config.amd.policy is AmdPolicy.detect:
            self._detect(lead, ring, at)
            return
        self._event(
            Answered, lead, kind=AnswerKind.HUMAN, ring_time_s=ring, media_answer_s=at,
            handle=self._handle_of(lead),
        )  # fmt: skip

    def _detect(self, lead: _Lead, ring: float, answered_at: float) -> None:
        """Listen to the callee until the detector decides (or its time is up: unknown),
        then report the answer with the verdict; unknown counts as a person."""
        import numpy as np

        settings = self.config.amd
        detector = AnswerDetector(settings)

        def decide(verdict: AmdVerdict) -> None:
            if lead.decide is not decide:
                return  # decided already
            lead.decide = None
            lead.leg.on_pcm = None
            timer.cancel()
            if lead.state != "answered":
                return  # ended some other way (closed, session expired): nothing to report
            lead.amd = verdict
            kind = AnswerKind.MACHINE if verdict is AmdVerdict.machine else AnswerKind.HUMAN
            log.info("call %s: answer detection says %s", lead.call_id, verdict.value)
            self._event(
                Answered, lead, kind=kind, ring_time_s=ring, media_answer_s=answered_at,
                handle=self._handle_of(lead),
            )  # fmt: skip

        def listen(pcm: bytes) -> None:
            verdict = detector.feed(np.frombuffer(pcm, dtype="<i2"))
            if verdict is not None:
                decide(verdict)

        lead.decide = decide
        lead.leg.on_pcm = listen
        # the detector decides within total_s of audio; no audio at all is unknown too
        timer = self._loop.call_later(settings.total_s + 0.5, decide, AmdVerdict.unknown)

    def _answer_now(self, lead: _Lead) -> None:
        """Report a call being listened to as answered now (it is ending): a person may
        have picked up, so it is never dropped without its answer counted."""
        if lead.decide is not None:
            lead.decide(AmdVerdict.unknown)

    def _on_failed(self, lead: _Lead, status: int, reason: str, after_auth: bool) -> None:
        if lead.timer is not None:
            lead.timer.cancel()
        if lead.state == "ended":
            return
        lead.state = "ended"
        self._release(lead)
        if lead.hung_up_by is not None:
            return  # hung up by the loop before the answer: no event
        if lead.timed_out:
            self._event(NoAnswer, lead)
            return
        kind, cause, detail = outcome_for(
            status, reason, ringing=lead.ringing_at is not None, after_auth=after_auth
        )
        if cause is None:
            self._event(kind, lead)
        else:
            if cause.stops_trunk:
                log.error("the SIP trunk refused call %s: %s", lead.call_id, detail)
            self._event(kind, lead, cause=cause, detail=detail)

    def _ring_timeout(self, lead: _Lead) -> None:
        if lead.state in ("dialing", "ringing") and lead.ua is not None:
            lead.timed_out = True
            lead.ua.cancel()
            # the 487 normally ends it; if the trunk never answers the CANCEL, stop waiting
            lead.timer = self._loop.call_later(
                self.config.cancel_grace_s, self._on_failed, lead, 487, "no final after CANCEL",
                False,
            )  # fmt: skip

    def _on_expired(self, lead: _Lead) -> None:
        if lead.state == "answered":  # the session timer's BYE is already sent
            self._finish(lead, HangupParty.SYSTEM)

    def _on_remote_bye(self, lead: _Lead) -> None:
        if lead.state != "answered":
            return
        self._answer_now(lead)
        self._finish(lead, HangupParty.CALLEE)

    def _hang_up(self, lead: _Lead, by: HangupParty) -> None:
        if lead.state == "answered":
            self._answer_now(lead)
            self._end_lead(lead, send=True)
            self._finish(lead, by, ended=True)
        elif lead.state in ("dialing", "ringing"):
            lead.hung_up_by = by
            if lead.ua is not None:
                lead.ua.cancel()
            if lead.timer is not None:
                lead.timer.cancel()  # the ring timeout: no second CANCEL
            lead.timer = self._loop.call_later(
                self.config.cancel_grace_s, self._on_failed, lead, 487, "cancelled", False
            )

    def _finish(self, lead: _Lead, by: HangupParty, *, ended: bool = False) -> None:
        talk = 0.0
        at = self.clock()
        if lead.answered_at is not None:
            talk = max(0.0, at - lead.answered_at)
        if not ended:
            self._end_lead(lead, send=False)
        self._event(HungUp, lead, by=by, talk_time_s=talk)

    def _end_lead(self, lead: _Lead, *, send: bool) -> None:
        if lead.timer is not None:
            lead.timer.cancel()
        if send and lead.ua is not None:
            if lead.state == "answered" or lead.ua.answered:
                lead.ua.bye()
            else:
                lead.ua.cancel()
        lead.state = "ended"
        if lead.outside is not None:
            self._end_outside(lead.outside, send=True)
        if lead.mixer is not None:
            lead.mixer.stop()
            lead.mixer = None
        with self._lock:
            agents = [self._agents.get(a) for a in [lead.agent_id, *lead.others] if a]
        for agent in agents:
            if agent is not None and agent.call_id == lead.call_id:
                agent.call_id = None
                agent.leg.relay = None
        self._release(lead)

    def _release(self, lead: _Lead) -> None:
        with self._lock:
            self._calls.pop(lead.call_id, None)

        async def close() -> None:
            await self._close_leg(lead.leg)
            if lead.leg.captured is not None:
                path, seconds = lead.leg.captured
                self._event(RecordingReady, lead, path=str(path), duration_s=seconds)

        self._spawn(close())

    def _bridge(self, lead: _Lead, agent: _AgentLeg) -> None:
        if lead.state != "answered" or agent.state != "connected":
            # the call or the phone went away in the meantime: the agent's leg stays free
            if agent.call_id == lead.call_id:
                agent.call_id = None
            return
        lead.leg.stop_playing()
        lead.leg.relay = agent.leg
        agent.leg.relay = lead.leg
        self._event(ConnectedToAgent, lead)

    def _play(self, lead: _Lead, message_id: str, path: Path) -> None:
        if lead.state != "answered":
            return

        def done() -> None:
            if lead.state == "answered":
                self._event(MessageFinished, lead, message_id=message_id)

        if lead.amd is AmdVerdict.machine and self.config.amd.leave_message:
            self._after_the_beep(lead, lambda: self._start_playing(lead, path, done), done)
            return
        self._start_playing(lead, path, done)

    def _start_playing(self, lead: _Lead, path: Path, done: Callable[[], None]) -> None:
        if lead.state != "answered":
            return
        lead.leg.first_sent_at = None
        lead.leg.play(path, done)
        self._loop.call_soon(self._note_first_packet, lead)

    def _after_the_beep(
        self, lead: _Lead, play: Callable[[], None], give_up: Callable[[], None]
    ) -> None:
        """Run ``play`` when the machine's beep has ended; ``give_up`` (nothing played) when
        no beep comes within ``beep_timeout_s``."""
        import numpy as np

        detector = BeepDetector()

        def listen(pcm: bytes) -> None:
            if detector.feed(np.frombuffer(pcm, dtype="<i2")):
                lead.leg.on_pcm = None
                timer.cancel()
                self.timings.setdefault(lead.call_id, {})["beep_ended"] = time.monotonic()
                play()

        def no_beep() -> None:
            lead.leg.on_pcm = None
            log.info("call %s: no beep from the machine; no message left", lead.call_id)
            give_up()

        lead.leg.on_pcm = listen
        timer = self._loop.call_later(self.config.beep_timeout_s, no_beep)

    def _note_first_packet(self, lead: _Lead) -> None:
        if lead.leg.first_sent_at is not None:
            self.timings.setdefault(lead.call_id, {})["message"] = lead.leg.first_sent_at
        elif lead.state == "answered":
            self._loop.call_later(0.005, self._note_first_packet, lead)

    # -- agents -----------------------------------------------------------------------------

    async def _call_agent(self, agent: _AgentLeg) -> None:
        uri = agent.address
        target = uri.split(":", 1)[1].split(";", 1)[0]
        hostport = target.rsplit("@", 1)[-1]
        host, _, port = hostport.partition(":")
        local = self._agent_endpoint.local_addr
        handlers = UacHandlers(
            answered=lambda sdp: self._spawn(self._agent_answered(agent, sdp)),
            failed=lambda status, reason, _auth: self._agent_failed(agent, status, reason),
            timed_out=lambda: self._end_agent(
                agent, send=False, event=(AgentLegState.UNREACHABLE, "no response from phone")
            ),
            remote_bye=lambda: self._end_agent(
                agent, send=False, event=(AgentLegState.HUNG_UP, "the phone hung up")
            ),
            expired=lambda: self._end_agent(
                agent, send=False, event=(AgentLegState.UNREACHABLE, "session timer expired")
            ),
        )
        try:
            agent.ua = await self._agent_endpoint.invite(
                from_uri=f"sip:pilotdial@{local[0]}:{local[1]}",
                to_uri=uri,
                remote_addr=(host, int(port or 5060)),
                sdp=self._offer(agent.leg),
                headers={},
                handlers=handlers,
                session_expires=self.config.session_expires_s,
                display_name="Pilotdial",
            )
        except (OSError, ValueError) as exc:
            self._end_agent(agent, send=False, event=(AgentLegState.UNREACHABLE, str(exc)))
            return
        agent.timer = self._loop.call_later(
            self.config.agent_answer_timeout_s, self._agent_timeout, agent
        )

    async def _agent_answered(self, agent: _AgentLeg, sdp: SdpMessage | None) -> None:
        if agent.timer is not None:
            agent.timer.cancel()
        if agent.state != "calling":
            return
        if not await self._start_leg(agent.leg, sdp):
            self._end_agent(
                agent, send=True, event=(AgentLegState.FAILED, "the phone offered no G.711")
            )
            return
        agent.state = "connected"
        agent.leg.last_received_at = time.monotonic()
        self._emit(AgentLegEvent(agent.agent_id, self.clock(), AgentLegState.CONNECTED))

    def _agent_failed(self, agent: _AgentLeg, status: int, reason: str) -> None:
        state = AgentLegState.UNREACHABLE if status in (404, 408, 480) else AgentLegState.FAILED
        self._end_agent(agent, send=False, event=(state, f"SIP {status} {reason}"))

    def _agent_timeout(self, agent: _AgentLeg) -> None:
        if agent.state == "calling":
            self._end_agent(
                agent, send=True, event=(AgentLegState.UNREACHABLE, "the phone did not answer")
            )

    def _end_agent(
        self, agent: _AgentLeg, send: bool, event: tuple[AgentLegState, str] | None
    ) -> None:
        if agent.state == "ended":
            return
        if agent.timer is not None:
            agent.timer.cancel()
        if send and agent.ua is not None:
            if agent.ua.answered:
                agent.ua.bye()
            else:
                agent.ua.cancel()
        agent.state = "ended"
        bridged = agent.call_id
        with self._lock:
            if self._agents.get(agent.agent_id) is agent:
                del self._agents[agent.agent_id]
            lead = self._calls.get(bridged) if bridged else None
        if lead is not None:
            lead.leg.relay = None
        if event is not None:
            self._emit(AgentLegEvent(agent.agent_id, self.clock(), event[0], event[1], bridged))

        self._spawn(self._close_leg(agent.leg))

    async def _start_watchdog(self) -> None:
        self._spawn(self._watch_agent_media())

    async def _watch_agent_media(self) -> None:
        limit = self.config.agent_media_timeout_s
        assert limit is not None
        while True:
            await asyncio.sleep(min(0.5, limit / 2))
            now = time.monotonic()
            for agent in list(self._agents.values()):
                heard = agent.leg.last_received_at
                if agent.state == "connected" and heard is not None and now - heard > limit:
                    self._end_agent(
                        agent,
                        send=True,
                        event=(AgentLegState.UNREACHABLE, f"no audio from the phone for {limit}s"),
                    )


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("SIP gateway task failed", exc_info=task.exception())
