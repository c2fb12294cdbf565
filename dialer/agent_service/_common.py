"""What the agent_service modules share: errors, client scopes, the seat snapshot and its API
shapes, the seat lock, and the writers of state-log rows and stream events."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from core.db import utcnow
from core.errors import Conflict, NotFound
from dialer.agents import CALL_STATES, Agent, AgentAction, AgentState, AgentTransition
from dialer.exceptions import AgentError, DialerError
from dialer.models import (
    AgentEvent,
    AgentEventKind,
    AgentPublic,
    AgentSeat,
    AgentStateLog,
    AgentStateLogPublic,
)

ClientScope = Collection[uuid.UUID] | None

_S = AgentState
_A = AgentAction
_CALL_STATES = CALL_STATES
# States that still belong to the call's client (the agent may schedule its callback).
_CLIENT_STATES = _CALL_STATES | {_S.WRAP_UP, _S.PREVIEWING}


class AgentNotFound(DialerError, NotFound):
    """The agent does not exist, or serves none of the caller's clients."""

    code = "not-found"
    title = "Not found"


class DuplicateAgent(DialerError, Conflict):
    """Another agent already has this 工號 (agent code)."""

    code = "duplicate-agent"
    title = "Agent code already used"


class AgentInactive(DialerError, Conflict):
    """The agent was deactivated: it cannot sign in until an operator reactivates it."""

    code = "agent-inactive"
    title = "Agent deactivated"


class AgentBusy(DialerError, Conflict):
    """The agent is on a call or wrapping one up: it cannot be deactivated now."""

    code = "agent-busy"
    title = "Agent on a call"


class CallbackNotDialable(DialerError, Conflict):
    """A callback that may not be dialed by hand now (not due, window closed, dialer's)."""

    code = "callback-not-dialable"
    title = "Callback not dialable now"


class NoDialerCall(DialerError, Conflict):
    """The agent is on no dialer call (nor in its wrap-up): there is nothing to disposition."""

    code = "no-dialer-call"
    title = "No dialer call to disposition"


class DispositionClosed(DialerError, Conflict):
    """The call attempt was already completed: its disposition can no longer change."""

    code = "disposition-closed"
    title = "Call already dispositioned"


# --------------------------------------------------------------------------- snapshots


def agent_from_seat(seat: AgentSeat) -> Agent:
    """The pure state machine stored in the seat's snapshot."""
    snap = seat.snapshot
    if not snap:
        return Agent(
            seat.agent_code,
            tuple(seat.skill_groups),
            since_s=seat.state_since.timestamp(),
            wrap_limit_s=seat.wrap_limit_s,
        )
    return Agent(
        agent_id=snap["agent_id"],
        skill_groups=tuple(snap["skill_groups"]),
        state=AgentState(snap["state"]),
        since_s=float(snap["since_s"]),
        reason=snap.get("reason"),
        call_id=snap.get("call_id"),
        lead_id=snap.get("lead_id"),
        wrap_limit_s=snap.get("wrap_limit_s"),
        wrap_deadline_s=snap.get("wrap_deadline_s"),
    )


def _store(seat: AgentSeat, agent: Agent) -> None:
    seat.snapshot = {
        "agent_id": agent.agent_id,
        "skill_groups": list(agent.skill_groups),
        "state": agent.state.value,
        "since_s": agent.since_s,
        "reason": agent.reason,
        "call_id": agent.call_id,
        "lead_id": agent.lead_id,
        "wrap_limit_s": agent.wrap_limit_s,
        "wrap_deadline_s": agent.wrap_deadline_s,
    }
    seat.state = agent.state
    seat.state_reason = agent.reason
    seat.state_since = _dt(agent.since_s)
    seat.skill_groups = list(agent.skill_groups)
    seat.wrap_limit_s = agent.wrap_limit_s
    seat.wrap_deadline = None if agent.wrap_deadline_s is None else _dt(agent.wrap_deadline_s)


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _scope_strings(client_scope: ClientScope) -> frozenset[str] | None:
    return None if client_scope is None else frozenset(str(c) for c in client_scope)


def _visible(seat: AgentSeat, scope: frozenset[str] | None) -> bool:
    return scope is None or not scope.isdisjoint(seat.client_ids)


def agent_public(seat: AgentSeat, client_scope: ClientScope = None) -> AgentPublic:
    """The API shape of an agent (only the clients in ``client_scope`` are listed)."""
    scope = _scope_strings(client_scope)
    agent = agent_from_seat(seat)
    return AgentPublic(
        id=seat.id,
        agent_code=seat.agent_code,
        name=seat.name,
        skill_groups=list(seat.skill_groups),
        client_ids=[uuid.UUID(c) for c in seat.client_ids if scope is None or c in scope],
        state=seat.state,
        state_reason=seat.state_reason,
        state_since=seat.state_since,
        allowed_actions=sorted(agent.allowed),
        call_id=agent.call_id if _call_visible(seat.current_client_id, scope) else None,
        wrap_limit_s=seat.wrap_limit_s,
        wrap_deadline=seat.wrap_deadline,
        last_seq=seat.last_seq,
        active=seat.active,
        created_at=seat.created_at,
        phone_uri=seat.phone_uri,
    )


def _call_visible(client_id: uuid.UUID | None, scope: frozenset[str] | None) -> bool:
    return scope is None or client_id is None or str(client_id) in scope


def log_public(entry: AgentStateLog, client_scope: ClientScope = None) -> AgentStateLogPublic:
    """The API shape of a state-log entry; another client's call details are left out."""
    visible = _call_visible(entry.client_id, _scope_strings(client_scope))
    return AgentStateLogPublic(
        seq=entry.seq,
        from_state=entry.from_state,
        to_state=entry.to_state,
        action=entry.action,
        reason=entry.reason if visible else None,
        client_id=entry.client_id if visible else None,
        call_id=entry.call_id if visible else None,
        lead_id=entry.lead_id if visible else None,
        details=dict(entry.details) if visible else {},
        at=entry.at,
    )


# --------------------------------------------------------------------------- lock, log, events


def _locked_seat(session: Session, agent_id: uuid.UUID, client_scope: ClientScope) -> AgentSeat:
    """The seat, re-read under a lock held until the transaction ends."""
    stmt = (
        select(AgentSeat).where(AgentSeat.id == agent_id).execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    else:
        # SQLite has no row locks: a no-op write takes the database write lock first, so the
        # read below cannot be stale by the time we write.
        table = AgentSeat.__table__  # type: ignore[attr-defined]
        session.execute(
            sa.update(table).where(table.c.id == agent_id).values(last_seq=table.c.last_seq)
        )
    seat = session.exec(stmt).first()
    if seat is None or not _visible(seat, _scope_strings(client_scope)):
        raise AgentNotFound("agent does not exist; check the id (GET /agents lists yours)")
    return seat


def _moment(agent: Agent, at: datetime | None) -> float:
    if at is None:
        return max(utcnow().timestamp(), agent.since_s)
    if at.tzinfo is None:
        raise AgentError("the action time has no timezone; pass an aware datetime (UTC)")
    return at.timestamp()


def _next_seq(seat: AgentSeat) -> int:
    seat.last_seq += 1
    return seat.last_seq


def _log(
    session: Session,
    seat: AgentSeat,
    transition: AgentTransition,
    *,
    client_id: uuid.UUID | None,
    details: Mapping[str, Any] | None = None,
) -> AgentStateLog:
    entry = AgentStateLog(
        agent_seat_id=seat.id,
        seq=_next_seq(seat),
        from_state=transition.previous_state,
        to_state=transition.state,
        action=transition.action,
        reason=transition.reason,
        client_id=client_id,
        call_id=transition.call_id if transition.call_id is not None else transition.agent.call_id,
        lead_id=transition.agent.lead_id,
        details=dict(details or {}),
        at=_dt(transition.at_s),
    )
    _store(seat, transition.agent)
    if transition.state not in _CLIENT_STATES:
        seat.current_client_id = None
    session.add(entry)
    return entry


def _expire(session: Session, seat: AgentSeat, now_s: float) -> AgentStateLog | None:
    transition = agent_from_seat(seat).expire_wrap(now_s)
    if transition is None:
        return None
    return _log(session, seat, transition, client_id=seat.current_client_id)


def _event(
    session: Session,
    seat: AgentSeat,
    *,
    client_id: uuid.UUID,
    kind: AgentEventKind,
    call_id: str | None,
    attempt_id: uuid.UUID | None,
    payload: dict[str, Any],
) -> AgentEvent:
    event = AgentEvent(
        client_id=client_id,
        agent_seat_id=seat.id,
        seq=_next_seq(seat),
        kind=kind,
        call_id=call_id,
        attempt_id=attempt_id,
        payload=payload,
    )
    session.add(event)
    return event
