"""The agent screen: sign in to the seat, ready / not ready with a reason, the call pop (lead,
工號/技能組/主叫/被叫, script), hang up, disposition with the campaign's codes, callbacks.

Everything lives on the server (:mod:`dialer.agent_service`): a reload shows the same state
and pop. The page listens to the seat's event stream (``GET /agents/{id}/events``, the API's
route, with the session cookie) and reloads its phone panel when something happens; every
button has an access key, so an agent can work from the keyboard.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from api.console.web import Console, ConsoleDep
from campaigns import service as campaign_service
from campaigns.models import CallAttempt, Disposition
from core.errors import InvalidInput, NotFound
from core.users import UserRole
from dialer import agent_service
from dialer.agents import AgentAction, AgentState, TransferKind, TransferTarget
from dialer.models import AgentSeat

router = APIRouter()

#: The buttons of the soft-phone, in screen order, with their access keys.
BUTTONS: list[tuple[AgentAction, str]] = [
    (AgentAction.SIGN_IN, "i"),
    (AgentAction.GO_READY, "r"),
    (AgentAction.GO_NOT_READY, "n"),
    (AgentAction.DIAL, "c"),  # the previewed lead (a typed number has its own form)
    (AgentAction.SKIP_PREVIEW, "k"),
    (AgentAction.HOLD, "h"),
    (AgentAction.UNHOLD, "u"),
    (AgentAction.CANCEL_CONSULT, "b"),
    (AgentAction.THREE_WAY, "3"),
    (AgentAction.HAND_TO_IVR, "v"),
    (AgentAction.HANG_UP, "e"),
    (AgentAction.FINISH_WRAP, "w"),
    (AgentAction.RECONNECT_PHONE, "p"),
    (AgentAction.SIGN_OUT, "o"),
]
NOT_READY_REASONS = ("break", "lunch", "training", "meeting")


def _seat(console: Console) -> AgentSeat:
    console.require(UserRole.agent)
    if console.user.agent_id is None:
        raise NotFound("this user has no agent seat; an administrator sets it")
    return agent_service.get_agent(
        session=console.session,
        agent_id=console.user.agent_id,
        client_scope=None if console.principal.all_clients else console.principal.scope,
    )


def _dispositions(console: Console, pop: dict[str, Any] | None) -> list[Disposition]:
    attempt_id = (pop or {}).get("attempt_id")
    if not attempt_id:
        return []
    attempt = console.session.get(CallAttempt, uuid.UUID(attempt_id))
    if attempt is None:
        return []
    codes = campaign_service.list_dispositions(
        session=console.session, campaign_id=attempt.campaign_id
    )
    # the dialer's own abandon codes are not the agent's to give (the service refuses them)
    return [d for d in codes if not d.abandoned]


def _phone_context(console: Console) -> dict[str, Any]:
    seat = _seat(console)
    agent_service.expire_wrap_ups(session=console.session, agent_id=seat.id)
    scope = None if console.principal.all_clients else console.principal.scope
    public = agent_service.agent_public(seat, scope)
    event = agent_service.current_pop(session=console.session, seat=seat)
    pop = None if event is None else dict(event.payload)
    allowed = set(public.allowed_actions)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    log = agent_service.state_log(
        session=console.session, agent_id=seat.id, since=today, until=None, limit=10000
    )
    calls_today = sum(1 for e in log if e.action in (AgentAction.CONNECT, "connect"))
    return {
        "agent": public,
        # the stream resumes after what this page shows: an event between the render and the
        # stream's connection is replayed, not missed
        "stream_after": seat.last_seq,
        "pop": pop,
        "buttons": [
            (a, key)
            for a, key in BUTTONS
            if a in allowed and (a is not AgentAction.DIAL or public.state is AgentState.PREVIEWING)
        ],
        # a typed number: dialed by a campaign's pacer when it is a waiting lead of one
        "manual_dial": AgentAction.DIAL in allowed and public.state is not AgentState.PREVIEWING,
        "can_transfer": AgentAction.TRANSFER in allowed,
        "can_consult": AgentAction.INTERNAL_CALL in allowed
        and public.state is not AgentState.READY
        and public.state is not AgentState.NOT_READY,
        "allowed": allowed,
        "reasons": NOT_READY_REASONS,
        "dispositions": _dispositions(console, pop),
        "calls_today": calls_today,
        "callbacks_due": sum(
            1
            for c in agent_service.scheduled_callbacks(session=console.session, seat=seat)
            if c.due
        ),
    }


@router.get("/agent")
def agent_page(console: ConsoleDep) -> Response:
    """The agent's soft-phone screen."""
    return console.render("agent.html", **_phone_context(console))


@router.get("/agent/phone")
def agent_phone(console: ConsoleDep) -> Response:
    """The phone panel alone (reloaded by the page when the seat's stream has news)."""
    return console.render("agent_phone.html", **_phone_context(console))


@router.post("/agent/action")
def agent_action(
    console: ConsoleDep,
    action: Annotated[AgentAction, Form()],
    reason: Annotated[str, Form()] = "",
    target_kind: Annotated[Literal["agent", "skill_group", "external"], Form()] = "agent",
    target: Annotated[str, Form()] = "",
    number: Annotated[str, Form()] = "",
) -> Response:
    """Press a soft-phone button (409 lists what is allowed now): a transfer or consultation
    names its target (a 工號, a skill group or, to transfer out, an outside number), a manual
    call its number."""
    seat = _seat(console)
    where = TransferTarget(TransferKind(target_kind), target.strip()) if target.strip() else None
    agent_service.apply_agent_action(
        session=console.session,
        agent_id=seat.id,
        command=agent_service.command_for(
            action, reason=reason or None, target=where, number=number.strip() or None
        ),
        client_scope=None if console.principal.all_clients else console.principal.scope,
    )
    return RedirectResponse("/console/agent", status_code=303)


@router.get("/agent/callbacks")
def agent_callbacks(console: ConsoleDep) -> Response:
    """My callbacks: the open ones scheduled to me, soonest first, in the lead's time and mine;
    a due one is dialed through the soft-phone's manual dial when the dialer does not."""
    seat = _seat(console)
    callbacks = agent_service.scheduled_callbacks(session=console.session, seat=seat)
    public = agent_service.agent_public(
        seat, None if console.principal.all_clients else console.principal.scope
    )
    return console.render(
        "callbacks.html",
        agent=public,
        callbacks=callbacks,
        can_dial=AgentAction.DIAL in public.allowed_actions,
    )


@router.post("/agent/callbacks/dial")
def agent_callback_dial(
    console: ConsoleDep, campaign_lead_id: Annotated[uuid.UUID, Form()]
) -> Response:
    """Dial a due callback (refused before its time, outside the calling window, on a
    do-not-call number, or while the dialer calls the campaign itself)."""
    seat = _seat(console)
    agent_service.dial_callback(
        session=console.session,
        agent_id=seat.id,
        campaign_lead_id=campaign_lead_id,
        client_scope=None if console.principal.all_clients else console.principal.scope,
    )
    return RedirectResponse("/console/agent", status_code=303)


@router.post("/agent/disposition")
def agent_disposition(
    console: ConsoleDep,
    disposition: Annotated[str, Form()],
    callback_at: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    then: Annotated[str, Form()] = "",
    callback_to: Annotated[Literal["me", "group"], Form()] = "me",
) -> Response:
    """Disposition the call (optionally with a callback time), then hang up or finish wrap-up."""
    seat = _seat(console)
    scope = None if console.principal.all_clients else console.principal.scope
    when = None
    if callback_at.strip():
        try:
            when = datetime.fromisoformat(callback_at.strip())
        except ValueError as exc:
            raise InvalidInput(f"the callback time {callback_at!r} is not a date and time") from exc
        if when.tzinfo is None:
            from zoneinfo import ZoneInfo

            when = when.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    agent_service.submit_disposition(
        session=console.session,
        agent_id=seat.id,
        disposition=disposition,
        callback_at=when,
        callback_to_group=callback_to == "group",
        note=note or None,
        client_scope=scope,
    )
    if then in (AgentAction.HANG_UP.value, AgentAction.FINISH_WRAP.value):
        agent_service.apply_agent_action(
            session=console.session,
            agent_id=seat.id,
            command=agent_service.COMMANDS[AgentAction(then)](),
            client_scope=scope,
        )
    return RedirectResponse("/console/agent", status_code=303)
