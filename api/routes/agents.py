"""The agent soft-phone: agents, actions, state log, and the server-sent-events pop stream.

Agents are the outsourcer's staff, so only operator and admin keys see or drive them (a
client key gets 404 for agents serving none of its clients and 403 otherwise). An agent is
visible to a key granted at least one of the clients the agent serves; pops on the stream go
through the key's tenant-scoped session, so another client's pop is never shown.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import Depends, Header, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.router import Router
from api.streams import stream_reads
from core.audit import Actor, record_audit
from core.db import tenant_session
from core.errors import InvalidInput
from core.models import Role
from core.security import Principal, require_role
from core.wakeups import channel, subscribe
from dialer import agent_service as service
from dialer.agents import AgentState, TransferTarget, next_state
from dialer.exceptions import AgentError
from dialer.models import (
    AgentActionRequest,
    AgentActionResult,
    AgentCreate,
    AgentDispositionPublic,
    AgentPublic,
    AgentSeat,
    AgentStateLogPublic,
    AgentUpdate,
    DispositionRequest,
    ScheduledCallbackPublic,
)

router = Router(prefix="/agents", tags=["agents"])

AGENT_ROLES = (Role.operator,)  # admin always passes
#: A stream re-reads at least this often even without a wake-up (one may have been lost).
RECHECK_SECONDS = 15.0
KEEPALIVE_SECONDS = 15.0
BATCH = 200


def _scope(principal: Principal) -> Collection[uuid.UUID] | None:
    """Which clients' agents the caller sees (None: every agent, for all-client admins)."""
    return None if principal.all_clients else principal.scope


def _seat(agent_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> AgentSeat:
    """The agent in the path, resolved before the body is validated.

    Existence first (404 for agents serving none of the caller's clients), then the role
    (403): a role check is never used to hide whether something exists.
    """
    seat = service.get_agent(session=session, agent_id=agent_id, client_scope=_scope(principal))
    require_role(principal, *AGENT_ROLES)
    return seat


SeatDep = Annotated[AgentSeat, Depends(_seat)]


@router.post("", response_model=AgentPublic, status_code=status.HTTP_201_CREATED)
def create_agent(
    body: AgentCreate, session: SessionDep, principal: CurrentPrincipal
) -> AgentPublic:
    """Create a signed-out agent for some of your clients."""
    require_role(principal, *AGENT_ROLES)
    try:
        seat = service.create_agent(session=session, agent_in=body, client_scope=_scope(principal))
    except service.DuplicateAgent as exc:
        # 工號 are unique across the house: the holder may serve another client, whose agent id
        # (and existence) is none of the caller's business
        raise service.DuplicateAgent(
            f"agent code {body.agent_code!r} is already taken; choose another 工號"
        ) from exc
    return service.agent_public(seat, _scope(principal))


@router.get("", response_model=list[AgentPublic])
def list_agents(
    session: SessionDep,
    principal: CurrentPrincipal,
    skill_group: str | None = None,
    state: AgentState | None = None,
) -> list[AgentPublic]:
    """Agents serving your clients, by 工號; filter by skill group or state."""
    require_role(principal, *AGENT_ROLES)
    scope = _scope(principal)
    seats = service.list_agents(
        session=session, client_scope=scope, skill_group=skill_group, state=state
    )
    return [service.agent_public(seat, scope) for seat in seats]


@router.get("/{agent_id}", response_model=AgentPublic)
def get_agent(seat: SeatDep, principal: CurrentPrincipal) -> AgentPublic:
    """One agent: state, reason, since when, and the actions allowed now."""
    return service.agent_public(seat, _scope(principal))


@router.patch("/{agent_id}", response_model=AgentPublic)
def update_agent(
    seat: SeatDep, body: AgentUpdate, session: SessionDep, principal: CurrentPrincipal
) -> AgentPublic:
    """Change an agent's name, skill groups, clients or wrap-up time limit."""
    seat = service.update_agent(
        session=session, agent_id=seat.id, agent_in=body, client_scope=_scope(principal)
    )
    return service.agent_public(seat, _scope(principal))


@router.post("/{agent_id}/actions", response_model=AgentActionResult)
def act(
    seat: SeatDep, body: AgentActionRequest, session: SessionDep, principal: CurrentPrincipal
) -> AgentActionResult:
    """Apply a soft-phone action; 409 with ``allowed`` when the agent's state forbids it, 422
    naming the field for a detail the action does not take (e.g. ``transfer`` with hold).

    On a dialer call, ``disposition`` (with hang_up, finish_wrap, go_not_ready or
    schedule_callback) records the call's outcome: one of the campaign's codes (422 naming
    them otherwise). A callback scheduled on a dialer call is written to the campaign lead
    when the dial loop completes the call.
    """
    scope = _scope(principal)
    try:
        command = service.command_for(
            body.action,
            reason=body.reason,
            target=None
            if body.transfer is None
            else TransferTarget(body.transfer.kind, body.transfer.target),
            callback_at=body.callback_at,
            to_group=body.callback_to == "group",
            call_id=body.call_id,
            lead_id=body.lead_id,
            client_id=body.client_id,
            number=body.number,
            disposition=body.disposition,
        )
    except AgentError:
        # An action the agent's state forbids answers with the allowed ones first, whatever
        # details it carries (422 for a detail only once the action itself is possible).
        next_state(seat.state, body.action, agent_id=seat.agent_code)
        raise
    outcome = service.apply_agent_action(
        session=session, agent_id=seat.id, command=command, client_scope=scope
    )
    return AgentActionResult(
        agent=service.agent_public(outcome.seat, scope),
        transition=service.log_public(outcome.log, scope),
        callback=outcome.callback_public(),
        disposition=None
        if outcome.disposition is None
        else service.disposition_public(outcome.disposition),
    )


@router.get("/{agent_id}/callbacks", response_model=list[ScheduledCallbackPublic])
def list_callbacks(
    seat: SeatDep, session: SessionDep, actor: CurrentActor, limit: int = Query(200, ge=1, le=1000)
) -> list[ScheduledCallbackPublic]:
    """The agent's open callbacks (scheduled to this 工號, in campaigns not stopped), soonest
    first, in your clients' campaigns; audited, as they carry lead data."""
    found = service.scheduled_callbacks(session=session, seat=seat, limit=limit)
    for client_id in sorted({c.campaign.client_id for c in found}):
        record_audit(
            session,
            client_id=client_id,
            actor=actor,
            action="agent.callbacks.list",
            object_type="agent",
            object_id=seat.id,
            detail={"agent_code": seat.agent_code},
        )
    return [
        ScheduledCallbackPublic(
            campaign_lead_id=c.campaign_lead.id,
            campaign_id=c.campaign.id,
            campaign=c.campaign.name,
            client_id=c.campaign.client_id,
            lead_id=c.lead.id,
            phone=c.lead.phone_e164,
            attributes=dict(c.lead.attributes),
            callback_at=c.campaign_lead.callback_at or c.campaign_lead.updated_at,
            zones=list(c.zones),
            attempts=c.campaign_lead.attempts,
            due=c.due,
            callable_now=c.callable_now,
            dialer_calls_it=c.dialer_calls_it,
            pacer_live=c.pacer_live,
            dialable=c.due and c.callable_now and c.pacer_live,
        )
        for c in found
    ]


@router.post(
    "/{agent_id}/callbacks/{campaign_lead_id}/dial",
    response_model=AgentActionResult,
    responses={409: {"description": "not due, window closed, or no pacer dials the campaign"}},
)
def dial_callback(
    seat: SeatDep, campaign_lead_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> AgentActionResult:
    """Dial a due callback of the agent's now: the agent goes to ``dialing`` and the
    campaign's pacer places the call within a second, by every rule a dial follows (calling
    window, attempt limit, do-not-call), and puts the answer through to the agent; the
    attempt is recorded like any other. 409 (nothing changed) before its time, outside the
    calling window, on a do-not-call number, or when no pacer dials the campaign for agents;
    404 for a callback that is not this agent's."""
    scope = _scope(principal)
    outcome = service.dial_callback(
        session=session, agent_id=seat.id, campaign_lead_id=campaign_lead_id, client_scope=scope
    )
    return AgentActionResult(
        agent=service.agent_public(outcome.seat, scope),
        transition=service.log_public(outcome.log, scope),
    )


@router.post(
    "/{agent_id}/disposition",
    response_model=AgentDispositionPublic,
    responses={
        409: {"description": "the agent is on no dialer call, or it was already completed"},
        422: {"description": "a code outside the campaign's dispositions (lists the allowed)"},
    },
)
def disposition(
    seat: SeatDep, body: DispositionRequest, session: SessionDep, principal: CurrentPrincipal
) -> AgentDispositionPublic:
    """Disposition the dialer call the agent is on or wrapping up (its state is unchanged).

    The code must be one of the campaign's dispositions; ``callback_at`` goes with a callback
    code (e.g. ``callback_requested``) and becomes the lead's callback, for this agent. The
    dial loop completes the call attempt with it once the call is over; until then it may be
    changed, afterwards 409.
    """
    row = service.submit_disposition(
        session=session,
        agent_id=seat.id,
        disposition=body.disposition,
        callback_at=body.callback_at,
        callback_to_group=body.callback_to == "group",
        note=body.note,
        client_scope=_scope(principal),
    )
    return service.disposition_public(row)


@router.get("/{agent_id}/state-log", response_model=list[AgentStateLogPublic])
def get_state_log(
    seat: SeatDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=1000, ge=1, le=10000),
) -> list[AgentStateLogPublic]:
    """Every transition (from, to, action, reason, time) in ``[since, until)``, oldest first."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} has no timezone; add an offset such as Z or +08:00")
    entries = service.state_log(
        session=session, agent_id=seat.id, since=since, until=until, limit=limit
    )
    return [service.log_public(entry, _scope(principal)) for entry in entries]


# --------------------------------------------------------------------------- event stream


def sse_message(
    *, data: dict[str, Any], event: str | None = None, event_id: int | None = None
) -> str:
    """One server-sent event (JSON data on a single line), framed by FastAPI's SSE encoder."""
    return format_sse_event(
        data_str=json.dumps(data, ensure_ascii=False, default=str),
        event=event,
        id=None if event_id is None else str(event_id),
    ).decode()


def _entry_message(entry: service.StreamEntry) -> str:
    data = {
        "seq": entry.seq,
        "kind": entry.kind.value,
        "client_id": None if entry.client_id is None else str(entry.client_id),
        "at": entry.at.isoformat(),
        **entry.payload,
    }
    return sse_message(data=data, event=entry.kind.value, event_id=entry.seq)


async def _never_woken(timeout_s: float) -> bool:
    await anyio.sleep(timeout_s)
    return False


async def sse_stream(
    fetch: Callable[[int], list[service.StreamEntry]],
    is_disconnected: Callable[[], Awaitable[bool]],
    *,
    after_seq: int,
    wait: Callable[[float], Awaitable[bool]] = _never_woken,
    next_deadline: Callable[[], float | None] = lambda: None,
    recheck_s: float = RECHECK_SECONDS,
    keepalive_s: float = KEEPALIVE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    """Read ``fetch(after_seq)`` (in a worker thread) and yield events until disconnect.

    Between reads it waits for a wake-up (``wait(timeout)``, True when the agent's rows
    changed), for the agent's next deadline (``next_deadline()``, a clock time: a timed
    wrap-up ends), or ``recheck_s`` at most, in case a wake-up was lost. A comment line goes
    out after ``keepalive_s`` without events, so proxies keep the connection open and the
    client notices a dead one.
    """
    last_seq = after_seq
    last_sent = clock()
    while not await is_disconnected():
        entries = await stream_reads(fetch, last_seq)
        for entry in entries:
            yield _entry_message(entry)
            last_seq = entry.seq
        if entries:
            last_sent = clock()
            if len(entries) >= BATCH:
                continue
        elif clock() - last_sent >= keepalive_s:
            yield format_sse_event(comment="keep-alive").decode()
            last_sent = clock()
        wake_at = min(last_sent + keepalive_s, clock() + recheck_s)
        deadline = next_deadline()
        if deadline is not None:
            wake_at = min(wake_at, deadline)
        await wait(max(0.0, wake_at - clock()))


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    """Where a stream resumes: the browser's ``Last-Event-ID`` when it reconnects (the newest
    it has), else ``?after=`` (the page's own starting point), else now."""
    if last_event_id is None or not last_event_id.strip():
        return after
    try:
        value = int(last_event_id.strip())
    except ValueError:
        raise InvalidInput(
            f"Last-Event-ID {last_event_id!r} is not an event id; send the id of the last "
            "event received (a whole number)"
        ) from None
    if value < 0:
        raise InvalidInput("Last-Event-ID cannot be negative")
    return value


def _snapshot(session: Session, seat: AgentSeat, scope: Collection[uuid.UUID] | None) -> str:
    pop = service.current_pop(session=session, seat=seat)
    data = {
        "agent": service.agent_public(seat, scope).model_dump(mode="json"),
        "pop": None if pop is None else {"seq": pop.seq, "kind": pop.kind.value, **pop.payload},
    }
    return sse_message(data=data, event="snapshot", event_id=seat.last_seq)


@router.get(
    "/{agent_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def agent_events(
    seat: SeatDep,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    once: bool = Query(default=False, description="send what is pending, then close"),
    after: int | None = Query(default=None, ge=0, description="resume after this event id"),
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The soft-phone stream (server-sent events): pops with lead data, call parameters and
    script, call ends and state changes; ``id`` is the event's sequence number. Woken by
    the agent's committed changes (no polling); opening the stream is audited for each of
    the agent's clients the key may see.

    Resumes after ``Last-Event-ID`` (or ``?after=``); a fresh connection starts with a
    ``snapshot`` event (the agent's state and the pop of its current call). ``?once=true``
    returns what is pending and closes, for curl and tests.
    """
    agent_id = seat.id
    scope = _scope(principal)
    resume = _resume_point(last_event_id, after)
    service.expire_wrap_ups(session=session, agent_id=agent_id)
    _audit_stream(session, seat, principal, actor, once=once)
    first: list[str] = [format_sse_event(retry=2000).decode()]
    if resume is None:
        first.append(_snapshot(session, seat, scope))
        resume = seat.last_seq
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    if once:
        pending = service.events_after(
            session=session, agent_id=agent_id, after_seq=resume, limit=10_000, client_scope=scope
        )
        text = "".join(first + [_entry_message(entry) for entry in pending])
        return StreamingResponse(iter([text]), media_type="text/event-stream", headers=headers)

    engine: Engine = request.app.state.engine
    tenant_scope = frozenset(principal.scope)
    wrap_deadline: list[float | None] = [None]

    def fetch(after_seq: int) -> list[service.StreamEntry]:
        # Each read has its own short session with the caller's tenancy scope: the request's
        # session is closed once the response starts.
        with tenant_session(tenant_scope, engine) as read_session:
            service.expire_wrap_ups(session=read_session, agent_id=agent_id)
            current = read_session.get(AgentSeat, agent_id)
            deadline = None if current is None else current.wrap_deadline
            # on the stream's clock (monotonic), a little after the deadline itself
            wrap_deadline[0] = (
                None
                if deadline is None
                else time.monotonic() + (deadline - datetime.now(UTC)).total_seconds() + 0.05
            )
            return service.events_after(
                session=read_session,
                agent_id=agent_id,
                after_seq=after_seq,
                limit=BATCH,
                client_scope=scope,
            )

    async def body() -> AsyncIterator[str]:
        for message in first:
            yield message
        with subscribe([channel("agent", agent_id)]) as waiter:
            async for message in sse_stream(
                fetch,
                request.is_disconnected,
                after_seq=resume,
                wait=waiter.wait,
                next_deadline=lambda: wrap_deadline[0],
                recheck_s=RECHECK_SECONDS,
                keepalive_s=KEEPALIVE_SECONDS,
            ):
                yield message

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def _audit_stream(
    session: Session, seat: AgentSeat, principal: Principal, actor: Actor, *, once: bool
) -> None:
    """One audit row per client whose pops (lead data) this stream may show."""
    served = {uuid.UUID(c) for c in seat.client_ids}
    for client_id in sorted(served & principal.scope, key=str):
        record_audit(
            session,
            client_id=client_id,
            actor=actor,
            action="agent.events.stream",
            object_type="agent",
            object_id=seat.id,
            detail={"agent_code": seat.agent_code, "once": once},
        )
