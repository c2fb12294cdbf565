"""Dispositions of dialer calls, given by the agent on the call or in its wrap-up."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlmodel import Session, col, select

from campaigns.models import AttemptStatus, CallAttempt, Disposition
from dialer.agent_service._common import (
    _CALL_STATES,
    _S,
    ClientScope,
    DispositionClosed,
    NoDialerCall,
    _call_visible,
    _dt,
    _expire,
    _locked_seat,
    _moment,
    _scope_strings,
    agent_from_seat,
)
from dialer.agents import Agent
from dialer.exceptions import AgentError
from dialer.models import (
    AgentDisposition,
    AgentDispositionPublic,
    AgentEvent,
    AgentEventKind,
    AgentSeat,
)


def _dialer_call(
    session: Session, seat: AgentSeat, agent: Agent
) -> tuple[AgentEvent, CallAttempt] | None:
    """The pop and attempt of the dialer call the agent is on or wrapping up, if any."""
    if agent.call_id is None or agent.state not in _CALL_STATES | {_S.WRAP_UP}:
        return None
    event = session.exec(
        select(AgentEvent)
        .where(
            AgentEvent.agent_seat_id == seat.id,
            AgentEvent.kind == AgentEventKind.CALL_CONNECTED,
            AgentEvent.call_id == agent.call_id,
            col(AgentEvent.attempt_id).is_not(None),
        )
        .order_by(col(AgentEvent.seq).desc())
        .limit(1)
    ).first()
    if event is None or event.attempt_id is None:
        return None
    attempt = session.get(CallAttempt, event.attempt_id)
    return None if attempt is None else (event, attempt)


def _no_dialer_call(seat: AgentSeat, agent: Agent) -> NoDialerCall:
    return NoDialerCall(
        f"agent {seat.agent_code!r} is {agent.state.value} and on no dialer call: a "
        "disposition is given on the call or in its wrap-up (a manual call has none)",
        extra={"state": agent.state.value},
    )


def _check_disposition(
    session: Session, attempt: CallAttempt, code: str, callback_at: datetime | None
) -> Disposition:
    """The campaign's disposition ``code``; agents cannot claim the dialer's own abandons."""
    if attempt.status is AttemptStatus.finished:
        raise DispositionClosed(
            f"the call was already completed as {attempt.disposition!r}; its disposition "
            "cannot change any more",
            extra={"disposition": attempt.disposition},
        )
    vocabulary = {
        d.code: d
        for d in session.exec(
            select(Disposition).where(Disposition.campaign_id == attempt.campaign_id)
        )
        if not d.abandoned
    }
    allowed = sorted(vocabulary)
    found = vocabulary.get(code)
    if found is None:
        raise AgentError(
            f"disposition {code!r} is not one of this campaign's codes; use one of "
            f"{', '.join(allowed)}",
            extra={"field": "disposition", "allowed": allowed},
        )
    if callback_at is not None and not found.callback:
        callbacks = sorted(c for c, d in vocabulary.items() if d.callback)
        raise AgentError(
            f"callback_at goes with a callback disposition ({', '.join(callbacks) or 'none'}), "
            f"not with {code!r}",
            extra={"field": "callback_at", "allowed": callbacks},
        )
    return found


def _store_disposition(
    session: Session,
    seat: AgentSeat,
    dialer_call: tuple[AgentEvent, CallAttempt],
    *,
    disposition: str | None,
    callback_at: datetime | None,
    note: str | None,
    at_s: float,
    callback_to_group: bool | None = None,
) -> AgentDisposition:
    event, attempt = dialer_call
    row = session.exec(
        select(AgentDisposition).where(AgentDisposition.attempt_id == attempt.id)
    ).first()
    if row is None:
        row = AgentDisposition(
            client_id=attempt.client_id,
            attempt_id=attempt.id,
            agent_seat_id=seat.id,
            agent_code=seat.agent_code,
            call_id=event.call_id or "",
        )
    if row.applied_at is not None:
        raise DispositionClosed(
            f"the call was already completed as {attempt.disposition!r}; its disposition "
            "cannot change any more"
        )
    if disposition is not None:
        row.disposition = disposition
    if callback_at is not None:
        row.callback_at = callback_at
    if callback_to_group is not None:
        row.callback_to_group = callback_to_group
    if note is not None:
        row.note = note
    row.agent_seat_id = seat.id
    row.agent_code = seat.agent_code
    row.submitted_at = _dt(at_s)
    session.add(row)
    return row


def submit_disposition(
    *,
    session: Session,
    agent_id: uuid.UUID,
    disposition: str,
    callback_at: datetime | None = None,
    note: str | None = None,
    at: datetime | None = None,
    client_scope: ClientScope = None,
    callback_to_group: bool = False,
) -> AgentDisposition:
    """Disposition the dialer call the agent is on or wrapping up (the state does not change).

    Raises NoDialerCall (no such call), AgentError (a code outside the campaign's vocabulary,
    naming the allowed ones; a callback time with a code that is no callback) or
    DispositionClosed (the loop already completed the attempt). May be given again, until the
    dial loop applies it when the call and its wrap-up are over.
    """
    seat = _locked_seat(session, agent_id, client_scope)
    scope = _scope_strings(client_scope)
    at_s = _moment(agent_from_seat(seat), at)
    _expire(session, seat, at_s)
    agent = agent_from_seat(seat)
    if not _call_visible(seat.current_client_id, scope):
        raise AgentError(
            f"agent {seat.agent_code!r} is on a call for a client this key cannot act for"
        )
    dialer_call = _dialer_call(session, seat, agent)
    if dialer_call is None:
        raise _no_dialer_call(seat, agent)
    if callback_at is not None:
        if callback_at.tzinfo is None:
            raise AgentError(
                "callback_at has no timezone; send it with an offset, e.g. +08:00",
                extra={"field": "callback_at"},
            )
        if callback_at.timestamp() <= at_s:
            raise AgentError("callback_at must be in the future", extra={"field": "callback_at"})
    checked = _check_disposition(session, dialer_call[1], disposition, callback_at)
    row = _store_disposition(
        session,
        seat,
        dialer_call,
        disposition=checked.code,
        callback_at=callback_at,
        note=note,
        at_s=at_s,
        callback_to_group=callback_to_group if callback_at is not None else None,
    )
    session.add(seat)
    session.flush()
    return row


def disposition_public(row: AgentDisposition) -> AgentDispositionPublic:
    """The API shape of a stored disposition."""
    return AgentDispositionPublic(
        attempt_id=row.attempt_id,
        call_id=row.call_id,
        agent_code=row.agent_code,
        disposition=row.disposition,
        callback_at=row.callback_at,
        callback_to_group=row.callback_to_group,
        note=row.note,
        submitted_at=row.submitted_at,
        applied=row.applied_at is not None,
    )


def dispositions_for(
    *, session: Session, attempt_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, AgentDisposition]:
    """The agents' dispositions of these attempts (those given so far), by attempt id."""
    if not attempt_ids:
        return {}
    rows = session.exec(
        select(AgentDisposition).where(col(AgentDisposition.attempt_id).in_(list(attempt_ids)))
    )
    return {row.attempt_id: row for row in rows}
