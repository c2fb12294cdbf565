"""Agents on the database: create and find them, apply soft-phone actions, pop calls.

The pure :class:`dialer.agents.Agent` is the single source of truth for state: every change
loads the seat's snapshot, applies one action, and stores the result (state columns, snapshot,
one :class:`AgentStateLog` row). The seat row is locked first (``SELECT … FOR UPDATE`` on
PostgreSQL; a no-op ``UPDATE`` that takes SQLite's write lock), so two API processes acting on
one agent serialise and the per-agent sequence numbers stay gap-free and ordered by commit.

Services are keyword-only and only flush; the caller owns the transaction. ``client_scope``
(the caller's clients, ``None`` for trusted code) hides agents that serve none of them, and
hides call details (lead, call id, transfer number) of other clients' calls in the state log.
Timestamps default to now, but never earlier than the agent's last change, because API
processes on different machines read slightly different clocks; an explicit ``at`` is
checked strictly.

Dialer calls (popped by :mod:`dialer.attended` with their call attempt) take a disposition:
with ``hang_up`` / ``finish_wrap`` / ``go_not_ready`` / ``schedule_callback`` or through
:func:`submit_disposition`, validated against the campaign's codes and stored as an
:class:`AgentDisposition` row in the same transaction as the action. The dial loop, in
another process, applies it to the attempt when the call is over: the database is the only
channel between the two. :func:`far_end_hung_up` is the loop's side: the callee hung up.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from campaigns.compliance import check_manual_dial
from campaigns.lifecycle import DIALING_STATUSES, FINAL_STATUSES
from campaigns.models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignLead,
    Disposition,
    Lead,
    LeadState,
    PacingMode,
)
from campaigns.rules import candidate_zones, is_callable_at, parse_holidays, parse_windows
from core.db import utcnow
from core.errors import Conflict, NotFound
from core.models import Client
from dialer.agents import (
    Agent,
    AgentAction,
    AgentState,
    AgentTransition,
    CallbackRequest,
    TransferKind,
    TransferTarget,
    allowed_actions,
)
from dialer.exceptions import AgentError, DialerError
from dialer.gateway import CallParameters, with_agent
from dialer.models import (
    AgentCreate,
    AgentDisposition,
    AgentDispositionPublic,
    AgentEvent,
    AgentEventKind,
    AgentPublic,
    AgentSeat,
    AgentStateLog,
    AgentStateLogPublic,
    AgentUpdate,
    CallbackPublic,
)

__all__ = [
    "DISPOSITION_ACTIONS",
    "ActionOutcome",
    "AgentBusy",
    "AgentInactive",
    "AgentNotFound",
    "CallbackNotDialable",
    "DispositionClosed",
    "DuplicateAgent",
    "NoDialerCall",
    "ScheduledCallback",
    "StreamEntry",
    "agent_from_seat",
    "agent_public",
    "apply_agent_action",
    "create_agent",
    "current_pop",
    "dial_callback",
    "disposition_public",
    "dispositions_for",
    "events_after",
    "expire_wrap_ups",
    "far_end_hung_up",
    "get_agent",
    "list_agents",
    "log_public",
    "offer_preview",
    "phone_lost",
    "pop_call",
    "post_event",
    "ready_agents",
    "scheduled_callbacks",
    "set_agent_active",
    "state_log",
    "submit_disposition",
    "update_agent",
]

ClientScope = Collection[uuid.UUID] | None

_S = AgentState
_A = AgentAction
_CALL_STATES = frozenset({_S.DIALING, _S.ON_CALL, _S.ON_HOLD, _S.CONSULTING, _S.CONFERENCE})
# States that still belong to the call's client (the agent may schedule its callback).
_CLIENT_STATES = _CALL_STATES | {_S.WRAP_UP, _S.PREVIEWING}
_NUMBER_RE = re.compile(r"^\+?[0-9*#]{3,32}$")


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


#: Actions that may carry the disposition of the dialer call the agent is on or wrapping up.
DISPOSITION_ACTIONS = frozenset(
    {AgentAction.HANG_UP, AgentAction.FINISH_WRAP, AgentAction.GO_NOT_READY,
     AgentAction.SCHEDULE_CALLBACK}
)  # fmt: skip


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


# --------------------------------------------------------------------------- CRUD


def _check_clients(
    session: Session, client_ids: Collection[uuid.UUID], client_scope: ClientScope
) -> list[str]:
    result: list[str] = []
    for client_id in client_ids:
        in_scope = client_scope is None or client_id in client_scope
        if not in_scope or session.get(Client, client_id) is None:
            raise NotFound(f"client {client_id} does not exist")
        if str(client_id) not in result:
            result.append(str(client_id))
    return result


def create_agent(
    *, session: Session, agent_in: AgentCreate, client_scope: ClientScope = None
) -> AgentSeat:
    """Create a signed-out agent; its clients must exist and lie within ``client_scope``."""
    existing = session.exec(
        select(AgentSeat.id).where(AgentSeat.agent_code == agent_in.agent_code)
    ).first()
    if existing is not None:
        raise DuplicateAgent(
            f"agent code {agent_in.agent_code!r} is already used by agent {existing}; "
            "choose another 工號"
        )
    seat = AgentSeat(
        agent_code=agent_in.agent_code,
        name=agent_in.name,
        client_ids=_check_clients(session, agent_in.client_ids, client_scope),
        wrap_limit_s=agent_in.wrap_limit_s,
        phone_uri=agent_in.phone_uri,
    )
    _store(
        seat,
        Agent(
            agent_in.agent_code,
            tuple(agent_in.skill_groups),
            since_s=seat.state_since.timestamp(),
            wrap_limit_s=agent_in.wrap_limit_s,
        ),
    )
    session.add(seat)
    session.flush()
    return seat


def list_agents(
    *,
    session: Session,
    client_scope: ClientScope = None,
    skill_group: str | None = None,
    state: AgentState | None = None,
) -> list[AgentSeat]:
    """Agents serving a client in ``client_scope``, by 工號; optionally one group or state."""
    stmt = select(AgentSeat).order_by(col(AgentSeat.agent_code))
    if state is not None:
        stmt = stmt.where(AgentSeat.state == state)
    scope = _scope_strings(client_scope)
    return [
        seat
        for seat in session.exec(stmt)
        if _visible(seat, scope) and (skill_group is None or skill_group in seat.skill_groups)
    ]


def get_agent(
    *, session: Session, agent_id: uuid.UUID, client_scope: ClientScope = None
) -> AgentSeat:
    """One agent; raises AgentNotFound if it is unknown or serves none of the caller's clients."""
    seat = session.get(AgentSeat, agent_id)
    if seat is None or not _visible(seat, _scope_strings(client_scope)):
        raise AgentNotFound("agent does not exist; check the id (GET /agents lists yours)")
    return seat


def update_agent(
    *,
    session: Session,
    agent_id: uuid.UUID,
    agent_in: AgentUpdate,
    client_scope: ClientScope = None,
) -> AgentSeat:
    """Change an agent's name, skill groups, clients or wrap-up limit.

    Only the clients inside ``client_scope`` can be added or removed; the agent's other clients
    are kept, so an operator for one client cannot take an agent away from another.
    """
    seat = _locked_seat(session, agent_id, client_scope)
    agent = agent_from_seat(seat)
    if agent_in.name is not None:
        seat.name = agent_in.name
    if agent_in.phone_uri is not None:
        seat.phone_uri = agent_in.phone_uri
    if agent_in.client_ids is not None:
        wanted = _check_clients(session, agent_in.client_ids, client_scope)
        scope = _scope_strings(client_scope)
        kept = [c for c in seat.client_ids if scope is not None and c not in scope]
        seat.client_ids = kept + [c for c in wanted if c not in kept]
    groups = agent.skill_groups
    if agent_in.skill_groups is not None:
        groups = tuple(agent_in.skill_groups)
    wrap_limit = agent.wrap_limit_s
    if agent_in.clear_wrap_limit:
        wrap_limit = None
    elif agent_in.wrap_limit_s is not None:
        wrap_limit = agent_in.wrap_limit_s
    _store(
        seat,
        Agent(
            agent.agent_id,
            groups,
            agent.state,
            agent.since_s,
            agent.reason,
            agent.call_id,
            agent.lead_id,
            wrap_limit,
            agent.wrap_deadline_s,
        ),
    )
    session.add(seat)
    session.flush()
    return seat


def set_agent_active(
    *,
    session: Session,
    agent_id: uuid.UUID,
    active: bool,
    client_scope: ClientScope = None,
) -> AgentSeat:
    """Deactivate an agent (signed out first; refused while on or wrapping up a call) or
    reactivate it. A deactivated agent keeps its history but cannot sign in."""
    seat = _locked_seat(session, agent_id, client_scope)
    if not active and seat.active and seat.state is not _S.SIGNED_OUT:
        if _A.SIGN_OUT not in agent_from_seat(seat).allowed:
            raise AgentBusy(
                f"agent {seat.agent_code!r} is {seat.state.value}; deactivate it once the call "
                "and its wrap-up are over"
            )
        apply_agent_action(
            session=session,
            agent_id=seat.id,
            action=_A.SIGN_OUT,
            reason="deactivated",
            client_scope=client_scope,
        )
    seat.active = active
    session.add(seat)
    session.flush()
    return seat


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


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """An applied action: the seat after it, its log entry, and any scheduled callback.

    ``expired`` holds the log entry of a timed wrap-up that ended before the action.
    """

    seat: AgentSeat
    log: AgentStateLog
    callback: CallbackRequest | None = None
    client_id: uuid.UUID | None = None
    expired: AgentStateLog | None = None
    events: list[AgentEvent] = field(default_factory=list)
    disposition: AgentDisposition | None = None

    def callback_public(self) -> CallbackPublic | None:
        """The callback in API shape, if the action scheduled one."""
        if self.callback is None:
            return None
        return CallbackPublic(
            lead_id=self.callback.lead_id,
            callback_at=_dt(self.callback.callback_at_s),
            agent_code=self.callback.agent_id,
            note=self.callback.note,
            client_id=self.client_id,
        )


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


def _check_target(session: Session, target: TransferTarget, seat: AgentSeat) -> None:
    if target.kind is TransferKind.EXTERNAL and not _NUMBER_RE.match(target.target):
        raise AgentError(
            f"{target.target!r} is not a phone number; give 3-32 digits, optionally with a "
            "leading +"
        )
    if target.kind is TransferKind.AGENT:
        if target.target == seat.agent_code:
            raise AgentError("an agent cannot transfer or consult to itself; pick another 工號")
        found = session.exec(
            select(AgentSeat.id).where(AgentSeat.agent_code == target.target)
        ).first()
        if found is None:
            raise AgentError(f"no agent has the 工號 {target.target!r}; check the code")


def _call_client(
    seat: AgentSeat, client_id: uuid.UUID | None, scope: frozenset[str] | None
) -> uuid.UUID:
    """The client a manual call is made for: given, or the agent's only client."""
    if client_id is None:
        candidates = [c for c in seat.client_ids if scope is None or c in scope]
        if len(candidates) != 1:
            raise AgentError(
                f"agent {seat.agent_code!r} serves {len(candidates)} of your clients; say which "
                "client the call is for with client_id"
            )
        return uuid.UUID(candidates[0])
    if str(client_id) not in seat.client_ids or (scope is not None and str(client_id) not in scope):
        raise AgentError(
            f"agent {seat.agent_code!r} does not take calls for client {client_id}; add the "
            "client to the agent first"
        )
    return client_id


def apply_agent_action(
    *,
    session: Session,
    agent_id: uuid.UUID,
    action: AgentAction,
    at: datetime | None = None,
    reason: str | None = None,
    transfer: TransferTarget | None = None,
    callback_at: datetime | None = None,
    call_id: str | None = None,
    lead_id: str | None = None,
    client_id: uuid.UUID | None = None,
    number: str | None = None,
    client_scope: ClientScope = None,
    disposition: str | None = None,
    callback_to_group: bool = False,
) -> ActionOutcome:
    """Apply one soft-phone action under the seat's row lock and log it.

    Raises IllegalTransition (lists the allowed actions) or AgentError (a missing detail). A
    timed wrap-up whose deadline passed is finished first (logged with reason
    ``wrap_timeout``). Leaving a call writes a ``call_ended`` event for the call's client.
    ``disposition`` (with one of :data:`DISPOSITION_ACTIONS`) dispositions the dialer call the
    agent is on or wrapping up, as :func:`submit_disposition` does; a callback scheduled on a
    dialer call is stored with it, for the dial loop to write to the campaign lead.
    """
    seat = _locked_seat(session, agent_id, client_scope)
    if action is _A.SIGN_IN and not seat.active:
        raise AgentInactive(
            f"agent {seat.agent_code!r} is deactivated; an operator reactivates it on the "
            "console's agents page"
        )
    scope = _scope_strings(client_scope)
    agent = agent_from_seat(seat)
    at_s = _moment(agent, at)
    expired = _expire(session, seat, at_s)
    agent = agent_from_seat(seat)

    details: dict[str, Any] = {}
    call_client = seat.current_client_id
    # Details are validated only when the state machine would accept the action at all, so
    # an illegal action always answers with the allowed ones.
    if action is _A.DIAL and action in agent.allowed:
        if agent.state is not _S.PREVIEWING:
            call_client = _call_client(seat, client_id, scope)
            if number is None or not number.strip():
                raise AgentError(
                    "a manual call needs the number to dial (e.g. +86 139 1234 5678)",
                    extra={"field": "number"},
                )
            # the checks every dial gets: read as the cleaner reads it, never a DNC number
            client = session.get(Client, call_client)
            number = check_manual_dial(
                session=session,
                client_id=call_client,
                number=number,
                region=client.default_region if client is not None else "CN",
            )
        call_id = call_id or uuid.uuid4().hex
        if number is not None:
            details["number"] = number
    if transfer is not None and action in (_A.TRANSFER, _A.INTERNAL_CALL):
        if action in agent.allowed:
            _check_target(session, transfer, seat)
        details["target"] = {"kind": transfer.kind.value, "target": transfer.target}
    if action is _A.CONNECT and call_client is None and client_id is not None:
        call_client = _call_client(seat, client_id, scope)
    callback_at_s: float | None = None
    if callback_at is not None:
        if callback_at.tzinfo is None:
            raise AgentError("callback_at has no timezone; send it with an offset, e.g. +08:00")
        callback_at_s = callback_at.timestamp()
        details["callback_at"] = callback_at.astimezone(UTC).isoformat()
    if (
        call_client is not None
        and scope is not None
        and str(call_client) not in scope
        and agent.state in _CLIENT_STATES
    ):
        # Another client's call: a key without that client may not handle it.
        raise AgentError(
            f"agent {seat.agent_code!r} is on a call for a client this key cannot act for"
        )

    dialer_call: tuple[AgentEvent, CallAttempt] | None = None
    if action in agent.allowed and (disposition is not None or action is _A.SCHEDULE_CALLBACK):
        if disposition is not None and action not in DISPOSITION_ACTIONS:
            names = ", ".join(sorted(a.value for a in DISPOSITION_ACTIONS))
            raise AgentError(
                f"a disposition goes with {names} (or POST /agents/{{id}}/disposition), "
                f"not with {action.value!r}",
                extra={"field": "disposition"},
            )
        dialer_call = _dialer_call(session, seat, agent)
        if disposition is not None:
            if dialer_call is None:
                raise _no_dialer_call(seat, agent)
            _check_disposition(session, dialer_call[1], disposition, callback_at)
            details["disposition"] = disposition

    transition = agent.apply(
        action,
        at_s=at_s,
        reason=reason,
        call_id=call_id,
        lead_id=lead_id,
        transfer=transfer,
        callback_at_s=callback_at_s,
    )
    seat.current_client_id = call_client
    if transition.callback is not None:
        details["callback_lead_id"] = transition.callback.lead_id
    stored: AgentDisposition | None = None
    if dialer_call is not None:
        callback = transition.callback
        stored = _store_disposition(
            session,
            seat,
            dialer_call,
            disposition=disposition,
            callback_at=None if callback is None else _dt(callback.callback_at_s),
            note=None if callback is None else callback.note or None,
            at_s=at_s,
            callback_to_group=None if callback is None else callback_to_group,
        )
    entry = _log(session, seat, transition, client_id=call_client, details=details)
    events: list[AgentEvent] = []
    ended = transition.previous_state in _CALL_STATES and transition.state not in _CALL_STATES
    if ended and call_client is not None:
        events.append(
            _event(
                session,
                seat,
                client_id=call_client,
                kind=AgentEventKind.CALL_ENDED,
                call_id=transition.call_id,
                attempt_id=None,
                payload={
                    "call_id": transition.call_id,
                    "lead_id": transition.agent.lead_id,
                    "action": action.value,
                    "reason": reason,
                    "ended_at": _dt(at_s).isoformat(),
                    **details,
                },
            )
        )
    session.add(seat)
    session.flush()
    return ActionOutcome(seat, entry, transition.callback, call_client, expired, events, stored)


# --------------------------------------------------------------------------- dispositions


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


def far_end_hung_up(
    *, session: Session, agent_id: uuid.UUID, call_id: str, at: datetime | None = None
) -> ActionOutcome | None:
    """The callee hung up: the agent still on ``call_id`` goes to wrap-up (reason
    ``callee_hung_up``). None if the agent had already left that call (it hung up first).

    ``at`` comes from the gateway's clock, so it is never taken as earlier than the agent's
    last change.
    """
    seat = _locked_seat(session, agent_id, None)
    agent = agent_from_seat(seat)
    if agent.call_id != call_id or agent.state not in _CALL_STATES:
        return None
    moment = None if at is None else max(at, _dt(agent.since_s))
    return apply_agent_action(
        session=session,
        agent_id=agent_id,
        action=_A.HANG_UP,
        at=moment,
        reason="callee_hung_up",
    )


def phone_lost(
    *, session: Session, agent_id: uuid.UUID, reason: str, at: datetime | None = None
) -> ActionOutcome | None:
    """The agent's phone leg is gone (failed, unreachable, hung up): the agent goes to
    ``phone_lost`` with ``reason`` (what the network said), takes no calls and reconnects
    with the ``reconnect_phone`` action. None if the agent is signed out or already there.

    ``at`` comes from the gateway's clock, so it is never taken as earlier than the agent's
    last change.
    """
    seat = _locked_seat(session, agent_id, None)
    agent = agent_from_seat(seat)
    if agent.state in (_S.SIGNED_OUT, _S.PHONE_LOST):
        return None
    moment = None if at is None else max(at, _dt(agent.since_s))
    return apply_agent_action(
        session=session,
        agent_id=agent_id,
        action=_A.PHONE_LOST,
        at=moment,
        reason=reason[:200] or "phone lost",
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


# --------------------------------------------------------------------------- reading


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
    """The pop of the call (or preview) the agent is on, if the session may see it."""
    call_id = agent_from_seat(seat).call_id
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
        return None
    return event


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


# --------------------------------------------------------------------------- callbacks


@dataclass(frozen=True)
class ScheduledCallback:
    """One open callback an agent scheduled to itself, with what its page shows."""

    campaign_lead: CampaignLead
    lead: Lead
    campaign: Campaign
    zones: tuple[str, ...]
    due: bool
    # the campaign's calling window is open in every zone of the number now
    callable_now: bool
    # the dial loop calls this lead itself at its time and puts it through to the agent
    dialer_calls_it: bool


def scheduled_callbacks(
    *, session: Session, seat: AgentSeat, now: datetime | None = None, limit: int = 200
) -> list[ScheduledCallback]:
    """The open callbacks scheduled to ``seat`` in campaigns not stopped or cancelled, soonest
    first (the session's tenancy filter hides other clients' leads)."""
    now = now or utcnow()
    rows = session.exec(
        select(CampaignLead, Lead, Campaign)
        .join(Lead, col(Lead.id) == col(CampaignLead.lead_id))
        .join(Campaign, col(Campaign.id) == col(CampaignLead.campaign_id))
        .where(
            CampaignLead.callback_agent == seat.agent_code,
            col(CampaignLead.callback_at).is_not(None),
            col(CampaignLead.state).in_([LeadState.new, LeadState.scheduled]),
            col(Campaign.status).not_in(FINAL_STATUSES),  # a stopped campaign calls nobody
        )
        .order_by(col(CampaignLead.callback_at))
        .limit(limit)
    ).all()
    result = []
    for row, lead, campaign in rows:
        zones = candidate_zones(row.zones_key, campaign.fallback_timezone or "UTC")
        windows = parse_windows(campaign.calling_windows)
        holidays = parse_holidays(campaign.holidays)
        result.append(
            ScheduledCallback(
                campaign_lead=row,
                lead=lead,
                campaign=campaign,
                zones=zones,
                due=row.callback_at is not None and row.callback_at <= now,
                callable_now=is_callable_at(now, zones, windows, holidays),
                dialer_calls_it=campaign.status in DIALING_STATUSES
                and campaign.pacing_mode is not PacingMode.preview,
            )
        )
    return result


def dial_callback(
    *,
    session: Session,
    agent_id: uuid.UUID,
    campaign_lead_id: uuid.UUID,
    now: datetime | None = None,
    client_scope: ClientScope = None,
) -> ActionOutcome:
    """Dial a due callback of the agent's by hand, through the soft-phone's manual dial
    (:func:`apply_agent_action` ``dial``: the number read as the cleaner reads it, never a
    do-not-call number). Refused before its time, outside the campaign's calling window, and
    while the dial loop dials the campaign (it calls the lead itself and connects the agent)."""
    now = now or utcnow()
    seat = get_agent(session=session, agent_id=agent_id, client_scope=client_scope)
    found = next(
        (
            c
            for c in scheduled_callbacks(session=session, seat=seat, now=now)
            if c.campaign_lead.id == campaign_lead_id
        ),
        None,
    )
    if found is None:
        raise NotFound("no open callback of yours with this id; the list shows your callbacks")
    if found.dialer_calls_it:
        raise CallbackNotDialable(
            "the dialer calls this lead itself when the callback is due and puts it through "
            "to you; wait for the call"
        )
    if not found.due:
        raise CallbackNotDialable("the callback is not due yet; dial it at the agreed time")
    if not found.callable_now:
        raise CallbackNotDialable(
            "the campaign's calling window is closed for this number now ("
            + ", ".join(found.zones)
            + "); call back when it opens"
        )
    return apply_agent_action(
        session=session,
        agent_id=seat.id,
        action=_A.DIAL,
        number=found.lead.phone_e164,
        client_id=found.campaign_lead.client_id,
        lead_id=str(found.lead.id),
        client_scope=client_scope,
    )
