"""Agentless interviews on real calls: an :class:`~dialer.ivr.IvrDriver` over any gateway.

The simulator runs its IVR calls inside its own event loop, where a simulated caller keys a
whole answer at once. On a real line the caller presses one key at a time and the gateway
reports each (:class:`~dialer.gateway.DtmfReceived`, RFC 4733 or in-band), so
:class:`IvrCalls` collects the keys of the current prompt until the answer is complete: the
prompt's terminator (``#``) pressed, as many digits as it takes, or a pause longer than
``inter_digit_timeout_s`` after the first key. Keys pressed while a prompt is still playing
count (callers who know the menu barge in). The goodbye is played and the call hung up; a
caller who hangs up breaks the interview off. The prompts are spoken by the gateway
(``play_message`` with the question's text and language), so no recording is needed.

A dial loop hands an answered call to :meth:`IvrCalls.start` (an agentless campaign, or an
agent's hand-back to the IVR 人工轉自動), passes every gateway event to
:meth:`IvrCalls.handle` and calls :meth:`IvrCalls.tick` on its ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialer.exceptions import GatewayError
from dialer.gateway import (
    CallEvent,
    DtmfReceived,
    GatewayEvent,
    HangupParty,
    HungUp,
    MessageFinished,
    TelephonyGateway,
)
from dialer.ivr import IvrDriver, IvrTurn, play_turn

__all__ = ["IvrCalls"]


@dataclass
class _Call:
    turn: IvrTurn
    keys: str = ""
    last_key_s: float | None = None


@dataclass
class IvrCalls:
    """The IVR calls of one dial loop on one gateway."""

    gateway: TelephonyGateway
    driver: IvrDriver
    inter_digit_timeout_s: float = 4.0
    _calls: dict[str, _Call] = field(default_factory=dict)

    def start(self, call_id: str, lead_id: str, attempt_id: str, now: float) -> None:
        """Interview the (answered) call: its first prompt is played now."""
        self._play(call_id, self.driver.start(call_id, lead_id, attempt_id, now), now)

    def handle(self, event: GatewayEvent, now: float) -> bool:
        """Apply a gateway event; True when it belonged to an IVR call."""
        if not isinstance(event, CallEvent):
            return False  # an agent-leg event
        call_id = event.call_id
        call = self._calls.get(call_id)
        if call is None:
            return False
        if isinstance(event, HungUp):
            self._calls.pop(call_id, None)
            if not call.turn.over:
                self.driver.hang_up(call_id, event.at_s)
        elif isinstance(event, MessageFinished):
            if call.turn.over and event.message_id == call.turn.message_id:
                self._calls.pop(call_id, None)
                self.gateway.hang_up(call_id, now=now, by=HangupParty.SYSTEM)
        elif isinstance(event, DtmfReceived) and call.turn.expect_dtmf:
            for key in event.digits:
                self._key(call_id, call, key, event.at_s)
                if call_id not in self._calls or not call.turn.expect_dtmf:
                    break
        return True

    def tick(self, now: float) -> None:
        """Submit answers whose caller stopped keying for ``inter_digit_timeout_s``."""
        for call_id, call in list(self._calls.items()):
            waited = call.last_key_s is not None and now - call.last_key_s >= (
                self.inter_digit_timeout_s
            )
            if call.keys and waited:
                self._submit(call_id, call, now)

    @property
    def active(self) -> int:
        """Calls being interviewed now."""
        return len(self._calls)

    def _key(self, call_id: str, call: _Call, key: str, at: float) -> None:
        turn = call.turn
        call.last_key_s = at
        if turn.terminator is not None and key == turn.terminator:
            call.keys += key
            self._submit(call_id, call, at)
            return
        call.keys += key
        digits = len(call.keys)
        if turn.terminator is None and digits >= max(1, turn.max_digits):
            self._submit(call_id, call, at)
        elif turn.terminator is not None and digits > max(1, turn.max_digits):
            self._submit(call_id, call, at)  # more keys than any valid answer: say so now

    def _submit(self, call_id: str, call: _Call, at: float) -> None:
        keys, call.keys, call.last_key_s = call.keys, "", None
        self._play(call_id, self.driver.respond(call_id, keys, at), at)

    def _play(self, call_id: str, turn: IvrTurn, now: float) -> None:
        self._calls[call_id] = _Call(turn)
        try:
            play_turn(self.gateway, call_id, turn, now)
        except GatewayError:
            if not turn.over or turn.text:
                raise
            # a goodbye with nothing to say (a broken-off interview) and no recording
            self._calls.pop(call_id, None)
            self.gateway.hang_up(call_id, now=now, by=HangupParty.SYSTEM)
