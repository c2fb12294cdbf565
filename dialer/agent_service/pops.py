"""The dial loop's side: pops (connected calls, previews), stream events, the far end hanging
up, a lost phone leg, expired wrap-ups and the ready agents of a skill group."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.db import utcnow
from dialer.agent_service._common import (
    _A,
    _CALL_STATES,
    _S,
    _dt,
    _event,
    _expire,
    _locked_seat,
    _log,
    _moment,
    agent_from_seat,
)
from dialer.agent_service.actions import ActionOutcome, apply_agent_action
from dialer.agent_service.commands import AgentCommand, HangUp, PhoneLost
from dialer.agents import Agent, AgentAction, AgentState
from dialer.exceptions import AgentError
from dialer.gateway import CallParameters, with_agent
from dialer.models import AgentEvent, AgentEventKind, AgentSeat, AgentStateLog


def dialer_action(
    *,
    session: Session,
    agent_id: uuid.UUID,
    command: AgentCommand,
    when: Callable[[Agent], bool],
    at: datetime | None = None,
) -> ActionOutcome | None:
    """A move the dial loop makes on an agent's behalf, applied under the seat's row lock
    only while ``when(agent)`` holds (the agent may have moved since the loop looked); None
    when it no longer does.

    ``at`` comes from the gateway's clock, so it is never taken as earlier than the agent's
    last change.
    """
    seat = _locked_seat(session, agent_id, None)
    agent = agent_from_seat(seat)
    if not when(agent):
        return None
    moment = None if at is None else max(at, _dt(agent.since_s))
    return apply_agent_action(session=session, agent_id=agent_id, command=command, at=moment)


def far_end_hung_up(
    *, session: Session, agent_id: uuid.UUID, call_id: str, at: datetime | None = None
) -> ActionOutcome | None:
    """The callee hung up: the agent still on ``call_id`` goes to wrap-up (reason
    ``callee_hung_up``). None if the agent had already left that call (it hung up first)."""
    return dialer_action(
        session=session,
        agent_id=agent_id,
        command=HangUp(reason="callee_hung_up"),
        when=lambda agent: agent.call_id == call_id and agent.state in _CALL_STATES,
        at=at,
    )


def phone_lost(
    *, session: Session, agent_id: uuid.UUID, reason: str, at: datetime | None = None
) -> ActionOutcome | None:
    """The agent's phone leg is gone (failed, unreachable, hung up): the agent goes to
    ``phone_lost`` with ``reason`` (what the network said), takes no calls and reconnects
    with the ``reconnect_phone`` action. None if the agent is signed out or already there."""
    return dialer_action(
        session=session,
        agent_id=agent_id,
        command=PhoneLost(reason=reason[:200] or "phone lost"),
        when=lambda agent: agent.state not in (_S.SIGNED_OUT, _S.PHONE_LOST),
        at=at,
    )


def post_event(
    *,
    session: Session,
    agent_id: uuid.UUID,
    client_id: uuid.UUID,
    kind: AgentEventKind,
    payload: Mapping[str, Any],
    call_id: str | None = None,
    attempt_id: uuid.UUID | None = None,
) -> AgentEvent:
    """Put one client's event on an agent's stream (``call_offered``, ``callback_due``)."""
    seat = _locked_seat(session, agent_id, None)
    if str(client_id) not in seat.client_ids:
        raise AgentError(f"agent {seat.agent_code!r} does not take calls for client {client_id}")
    event = _event(
        session,
        seat,
        client_id=client_id,
        kind=kind,
        call_id=call_id,
        attempt_id=attempt_id,
        payload=dict(payload),
    )
    session.add(seat)
    session.flush()
    return event


def _params_payload(params: CallParameters) -> dict[str, Any]:
    return {
        "agent_id": params.agent_id,
        "skill_group": params.skill_group,
        "caller_number": params.caller_number,
        "callee_number": params.callee_number,
    }


def _pop(
    *,
    session: Session,
    agent_id: uuid.UUID,
    client_id: uuid.UUID,
    attempt_id: uuid.UUID | None,
    lead: Mapping[str, Any],
    params: CallParameters,
    script: Mapping[str, Any] | None,
    at: datetime | None,
    call_id: str | None,
    action: AgentAction,
    kind: AgentEventKind,
) -> AgentEvent:
    seat = _locked_seat(session, agent_id, None)
    if str(client_id) not in seat.client_ids:
        raise AgentError(
            f"agent {seat.agent_code!r} does not take calls for client {client_id}; pick an "
            "agent serving the client"
        )
    if params.agent_id is not None and params.agent_id != seat.agent_code:
        raise AgentError(
            f"the call parameters name agent {params.agent_id!r} but the call is popped to "
            f"{seat.agent_code!r}"
        )
    if params.skill_group is not None and params.skill_group not in seat.skill_groups:
        raise AgentError(
            f"agent {seat.agent_code!r} is not in skill group {params.skill_group!r}; pick "
            "an agent from ready_agents(skill_group=...)"
        )
    params = with_agent(params, seat.agent_code, params.skill_group)
    agent = agent_from_seat(seat)
    at_s = _moment(agent, at)
    _expire(session, seat, at_s)
    agent = agent_from_seat(seat)
    raw_lead_id = lead.get("id", lead.get("lead_id"))
    lead_id = None if raw_lead_id is None else str(raw_lead_id)
    if call_id is None:
        # A call placed from a preview keeps the id given when dialling.
        call_id = agent.call_id or (attempt_id.hex if attempt_id else uuid.uuid4().hex)
    previewed_client = seat.current_client_id
    if (
        action is _A.CONNECT
        and agent.state is _S.DIALING
        and previewed_client not in (None, client_id)
    ):
        raise AgentError(
            f"agent {seat.agent_code!r} is dialling a call for another client; connect that call"
        )
    transition = agent.apply(action, at_s=at_s, call_id=call_id, lead_id=lead_id)
    seat.current_client_id = client_id
    _log(
        session,
        seat,
        transition,
        client_id=client_id,
        details={"attempt_id": str(attempt_id)} if attempt_id else {},
    )
    event = _event(
        session,
        seat,
        client_id=client_id,
        kind=kind,
        call_id=call_id,
        attempt_id=attempt_id,
        payload={
            "call_id": call_id,
            "attempt_id": None if attempt_id is None else str(attempt_id),
            "client_id": str(client_id),
            "lead": dict(lead),
            "params": _params_payload(params),
            "script": None if script is None else dict(script),
            "at": _dt(at_s).isoformat(),
        },
    )
    session.add(seat)
    session.flush()
    return event


def pop_call(
    *,
    session: Session,
    agent_id: uuid.UUID,
    client_id: uuid.UUID,
    attempt_id: uuid.UUID | None,
    lead: Mapping[str, Any],
    params: CallParameters,
    script: Mapping[str, Any] | None,
    at: datetime | None = None,
    call_id: str | None = None,
) -> AgentEvent:
    """Connect a call to the agent and write its ``call_connected`` pop.

    The pop carries the lead data, the call parameters (with the agent's 工號 filled in) and
    the script or questionnaire. The agent must be ready (or dialling, for a manual or preview
    call) and serve the client and skill group; otherwise IllegalTransition / AgentError, and
    nothing is written, so the dialer can offer the call to another agent.
    """
    return _pop(
        session=session,
        agent_id=agent_id,
        client_id=client_id,
        attempt_id=attempt_id,
        lead=lead,
        params=params,
        script=script,
        at=at,
        call_id=call_id,
        action=_A.CONNECT,
        kind=AgentEventKind.CALL_CONNECTED,
    )


def offer_preview(
    *,
    session: Session,
    agent_id: uuid.UUID,
    client_id: uuid.UUID,
    lead: Mapping[str, Any],
    params: CallParameters,
    script: Mapping[str, Any] | None,
    attempt_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> AgentEvent:
    """Show a ready agent a lead before dialling (preview mode): a ``preview_offered`` pop."""
    return _pop(
        session=session,
        agent_id=agent_id,
        client_id=client_id,
        attempt_id=attempt_id,
        lead=lead,
        params=params,
        script=script,
        at=at,
        call_id=None,
        action=_A.OFFER_PREVIEW,
        kind=AgentEventKind.PREVIEW_OFFERED,
    )


def expire_wrap_ups(
    *, session: Session, now: datetime | None = None, agent_id: uuid.UUID | None = None
) -> list[AgentStateLog]:
    """Finish every timed wrap-up whose deadline has passed (stamped at its deadline)."""
    moment = now or utcnow()
    stmt = select(AgentSeat.id).where(
        AgentSeat.state == AgentState.WRAP_UP,
        col(AgentSeat.wrap_deadline).is_not(None),
        col(AgentSeat.wrap_deadline) <= moment,
    )
    if agent_id is not None:
        stmt = stmt.where(AgentSeat.id == agent_id)
    entries: list[AgentStateLog] = []
    for seat_id in list(session.exec(stmt)):
        seat = _locked_seat(session, seat_id, None)
        entry = _expire(session, seat, moment.timestamp())
        if entry is not None:
            session.add(seat)
            entries.append(entry)
    session.flush()
    return entries


def ready_agents(
    *,
    session: Session,
    skill_group: str,
    client_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> list[AgentSeat]:
    """Ready agents of a skill group (optionally serving a client), longest-waiting first.

    Timed wrap-ups that are over are finished first, so those agents count as ready.
    """
    expire_wrap_ups(session=session, now=now)
    stmt = (
        select(AgentSeat)
        .where(AgentSeat.state == AgentState.READY)
        .order_by(col(AgentSeat.state_since), col(AgentSeat.agent_code))
    )
    return [
        seat
        for seat in session.exec(stmt)
        if skill_group in seat.skill_groups
        and (client_id is None or str(client_id) in seat.client_ids)
    ]
