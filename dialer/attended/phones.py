"""Agents' phone legs in an attended run.

The run calls each signed-in agent's phone once (``connect_agent_phone``, at the seat's
``phone_uri``, or ``sim:<agent code>``) and releases it at sign-out and when the run ends.
Once the gateway reports legs, only agents whose leg is connected get calls. A leg that
fails, is unreachable or hangs up puts the agent in ``phone_lost`` (the cause as the reason);
a call bridged to that agent is dropped (:meth:`dialer.attended.calls.CallHandler.drop`).
"""

from __future__ import annotations

import logging

from sqlmodel import select

from dialer.agent_service import list_agents, phone_lost
from dialer.agents import AgentState
from dialer.attended.calls import CallHandler
from dialer.attended.state import Phase, RunContext
from dialer.exceptions import GatewayError
from dialer.gateway import AgentLegEvent, AgentLegState
from dialer.models import AgentSeat

__all__ = ["AgentPhones"]

log = logging.getLogger("dialer.attended")


class AgentPhones:
    """The phone legs the run asked for and what the gateway said of them."""

    def __init__(self, ctx: RunContext, calls: CallHandler) -> None:
        self.ctx = ctx
        self.calls = calls
        # by agent code: the legs asked for (address), and the state the gateway reported
        self.phones: dict[str, str] = {}
        self.legs: dict[str, AgentLegState] = {}
        self.legs_reported = False

    def sync(self, now: float) -> None:
        """Call the phone of each signed-in agent once; release those of signed-out agents."""
        ctx = self.ctx
        with ctx.session() as session:
            seats = list_agents(
                session=session, client_scope=[ctx.client_id], skill_group=ctx.info.skill_group
            )
        for seat in seats:
            code = seat.agent_code
            if seat.state is AgentState.SIGNED_OUT:
                if code in self.phones:
                    self.release(code, now)
            elif seat.state is not AgentState.PHONE_LOST and code not in self.phones:
                address = seat.phone_uri or f"sim:{code}"
                self.phones[code] = address
                try:
                    ctx.gateway.connect_agent_phone(code, address, now=now)
                except GatewayError as exc:
                    self._lose(code, AgentLegState.FAILED, str(exc), now, None, now)

    def release(self, code: str, now: float) -> None:
        self.phones.pop(code, None)
        self.legs.pop(code, None)
        try:
            self.ctx.gateway.release_agent_phone(code, now=now)
        except GatewayError as exc:
            log.warning("could not release the phone of agent %s: %s", code, exc)

    def release_all(self, now: float) -> None:
        for code in list(self.phones):
            self.release(code, now)

    def routable(self, code: str) -> bool:
        """Whether calls may be bridged to the agent's phone: once the gateway reports legs,
        only to a connected one (a gateway that never does is trusted to bridge anyway)."""
        return not self.legs_reported or self.legs.get(code) is AgentLegState.CONNECTED

    def on_leg(self, event: AgentLegEvent, now: float) -> None:
        self.legs_reported = True
        if event.state is AgentLegState.CONNECTED:
            if event.agent_id in self.phones:
                self.legs[event.agent_id] = AgentLegState.CONNECTED
            return
        if event.agent_id not in self.phones:
            return  # released already (signed out): nothing is lost
        self._lose(event.agent_id, event.state, event.cause, event.at_s, event.call_id, now)

    def _lose(
        self,
        code: str,
        state: AgentLegState,
        cause: str,
        at: float,
        call_id: str | None,
        now: float,
    ) -> None:
        """The agent's phone is gone: the agent to ``phone_lost``, its call finished."""
        ctx = self.ctx
        self.phones.pop(code, None)
        self.legs.pop(code, None)
        ctx.result.phones_lost += 1
        reason = f"phone {state.value.replace('_', ' ')}: {cause}" if cause else None
        reason = reason or f"phone {state.value.replace('_', ' ')}"
        log.warning("agent %s lost the phone leg (%s)", code, reason)
        bridged = ctx.calls.get(call_id) if call_id is not None else None
        if bridged is None or bridged.agent_code != code:
            bridged = next(
                (c for c in ctx.in_phase(Phase.CONNECTED) if c.agent_code == code),
                None,
            )
        with ctx.session() as session:
            seat_id = session.exec(select(AgentSeat.id).where(AgentSeat.agent_code == code)).first()
            if seat_id is not None:
                phone_lost(session=session, agent_id=seat_id, reason=reason, at=ctx.at(at))
        if bridged is not None and bridged.phase is Phase.CONNECTED:
            self.calls.drop(bridged, at, now)
