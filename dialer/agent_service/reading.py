"""Reading an agent's stream, current pop and state log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from dialer.agent_service._common import _S, ClientScope, agent_from_seat, log_public
from dialer.agents import AgentAction, allowed_actions
from dialer.models import AgentEvent, AgentEventKind, AgentSeat, AgentStateLog


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of an agent's event stream (an AgentEvent or a state change)."""

    seq: int
    kind: AgentEventKind
    client_id: uuid.UUID | None
    payload: dict[str, Any]
    at: datetime


def _state_entry(entry: AgentStateLog, client_scope: ClientScope) -> StreamEntry:
    public = log_public(entry, client_scope)
    return StreamEntry(
        seq=entry.seq,
        kind=AgentEventKind.STATE_CHANGED,
        client_id=None,
        payload={
            "from": public.from_state.value,
            "to": public.to_state.value,
            "action": public.action.value,
            "reason": public.reason,
            "call_id": public.call_id,
            "allowed_actions": sorted(a.value for a in allowed_actions(entry.to_state)),
            "at": entry.at.isoformat(),
        },
        at=entry.at,
    )


def events_after(
    *,
    session: Session,
    agent_id: uuid.UUID,
    after_seq: int,
    limit: int = 100,
    client_scope: ClientScope = None,
) -> list[StreamEntry]:
    """The agent's stream entries with ``seq > after_seq``, oldest first, at most ``limit``.

    Pops come from AgentEvent through the session's tenancy filter, so a tenant-scoped session
    never sees another client's pops; state changes carry no client data (another client's
    call id is left out, using ``client_scope``).
    """
    events = session.exec(
        select(AgentEvent)
        .where(AgentEvent.agent_seat_id == agent_id, AgentEvent.seq > after_seq)
        .order_by(col(AgentEvent.seq))
        .limit(limit)
    ).all()
    logs = session.exec(
        select(AgentStateLog)
        .where(AgentStateLog.agent_seat_id == agent_id, AgentStateLog.seq > after_seq)
        .order_by(col(AgentStateLog.seq))
        .limit(limit)
    ).all()
    entries = [
        StreamEntry(e.seq, e.kind, e.client_id, dict(e.payload), e.created_at) for e in events
    ] + [_state_entry(entry, client_scope) for entry in logs]
    entries.sort(key=lambda e: e.seq)
    return entries[:limit]


def current_pop(*, session: Session, seat: AgentSeat) -> AgentEvent | None:
    """The pop of the call (or preview) the agent is on, if the session may see it; while the
    agent dials the lead they previewed, its preview (the call's own pop comes on answer)."""
    agent = agent_from_seat(seat)
    call_id = agent.call_id
    lead_state = seat.state is _S.PREVIEWING
    if call_id is None and not lead_state:
        return None
    stmt = (
        select(AgentEvent)
        .where(
            AgentEvent.agent_seat_id == seat.id,
            col(AgentEvent.kind).in_(
                [AgentEventKind.CALL_CONNECTED, AgentEventKind.PREVIEW_OFFERED]
            ),
        )
        .order_by(col(AgentEvent.seq).desc())
        .limit(1)
    )
    event = session.exec(stmt).first()
    if event is None:
        return None
    if call_id is not None and event.call_id != call_id and not lead_state:
        lead = event.payload.get("lead") or {}
        previewed = (
            seat.state is _S.DIALING
            and event.kind is AgentEventKind.PREVIEW_OFFERED
            and agent.lead_id is not None
            and str(lead.get("id")) == agent.lead_id
        )
        if not previewed:
            return None
    return event


def last_logged(
    *, session: Session, agent_id: uuid.UUID, call_id: str, action: AgentAction | None = None
) -> AgentStateLog | None:
    """The agent's last logged transition on the call ``call_id`` (of ``action``, if given):
    how they left it, where they transferred it, what they dialed."""
    stmt = select(AgentStateLog).where(
        AgentStateLog.agent_seat_id == agent_id, AgentStateLog.call_id == call_id
    )
    if action is not None:
        stmt = stmt.where(AgentStateLog.action == action)
    return session.exec(stmt.order_by(col(AgentStateLog.seq).desc()).limit(1)).first()


def state_log(
    *,
    session: Session,
    agent_id: uuid.UUID,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[AgentStateLog]:
    """The agent's transitions in ``[since, until)``, oldest first."""
    stmt = select(AgentStateLog).where(AgentStateLog.agent_seat_id == agent_id)
    if since is not None:
        stmt = stmt.where(AgentStateLog.at >= since)
    if until is not None:
        stmt = stmt.where(AgentStateLog.at < until)
    return list(session.exec(stmt.order_by(col(AgentStateLog.seq)).limit(limit)))
