"""Agents and skill groups, for operators and supervisors: list, create, edit, deactivate
agents; each skill group with its members and the campaigns it serves; membership changes.

Everything goes through :mod:`dialer.agent_service` with the user's clients as the scope, as
the API's ``/agents`` routes do (an agent serving none of the user's clients: 404; an edit only
adds or removes the user's own clients). A skill group is a name on agents and campaigns, not
a table, so the groups page is built from the agents the user may see.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.console.pages_client import _clients
from api.console.web import Console, ConsoleDep
from api.routes.agents import AGENT_ROLES
from campaigns import service as campaign_service
from core.errors import InvalidInput
from core.security import require_role
from core.users import UserRole
from dialer import agent_service
from dialer.models import AgentCreate, AgentSeat, AgentUpdate

router = APIRouter()

MANAGERS = (UserRole.operator, UserRole.supervisor)


def _scope(console: Console) -> Collection[uuid.UUID] | None:
    return None if console.principal.all_clients else console.principal.scope


def _check(console: Console) -> None:
    console.require(*MANAGERS)
    require_role(console.principal, *AGENT_ROLES)


def _problems(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors by form field (the first one of each)."""
    found: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        found.setdefault(field, str(error["msg"]).removeprefix("Value error, "))
    return found


def _groups(raw: str) -> list[str]:
    return [g.strip() for g in raw.replace("，", ",").split(",") if g.strip()]


def _client_ids(raw: list[str]) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(c) for c in raw if c]
    except ValueError as exc:
        raise InvalidInput(f"a client in the form is not an id: {exc}") from exc


def _wrap(raw: str) -> float | None:
    if not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise InvalidInput(f"the wrap-up limit {raw!r} is not a number of seconds") from exc


def _agents_page(
    console: Console,
    *,
    group: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    scope = _scope(console)
    seats = agent_service.list_agents(
        session=console.session, client_scope=scope, skill_group=group or None
    )
    clients = _clients(console)
    return console.render(
        "agents.html",
        status_code=status,
        agents=[(seat, agent_service.agent_public(seat, scope)) for seat in seats],
        client_names={c.id: c.name for c in clients},
        clients=clients,
        group=group,
        errors=errors or {},
        form=form or {},
    )


@router.get("/agents")
def agents_page(console: ConsoleDep, group: str = "") -> Response:
    """Agents serving your clients (工號, name, skill groups, state) and the new-agent form."""
    _check(console)
    return _agents_page(console, group=group)


@router.post("/agents")
def agent_create(
    console: ConsoleDep,
    agent_code: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    skill_groups: Annotated[str, Form()] = "",
    client_ids: Annotated[list[str] | None, Form()] = None,
    wrap_limit_s: Annotated[str, Form()] = "",
) -> Response:
    """Create a signed-out agent; a problem is shown at its field (422)."""
    _check(console)
    form = {"agent_code": agent_code, "name": name, "skill_groups": skill_groups}
    try:
        chosen = _client_ids(client_ids or [])
        agent_in = AgentCreate(
            agent_code=agent_code.strip(),
            name=name.strip(),
            skill_groups=_groups(skill_groups),
            client_ids=chosen or [console.acting_client(None)],
            wrap_limit_s=_wrap(wrap_limit_s),
        )
        with console.session.begin_nested():
            agent_service.create_agent(
                session=console.session, agent_in=agent_in, client_scope=_scope(console)
            )
    except ValidationError as exc:
        return _agents_page(console, errors=_problems(exc), form=form, status=422)
    except agent_service.DuplicateAgent:
        message = f"agent code {agent_code!r} is already taken; choose another 工號"
        return _agents_page(console, errors={"agent_code": message}, form=form, status=409)
    except InvalidInput as exc:
        return _agents_page(console, errors={"form": console.describe(exc)}, form=form, status=422)
    return RedirectResponse("/console/agents", status_code=303)


def _seat(console: Console, agent_id: uuid.UUID) -> AgentSeat:
    """The agent, found first (404 for one serving none of the user's clients), then roles."""
    seat = agent_service.get_agent(
        session=console.session, agent_id=agent_id, client_scope=_scope(console)
    )
    _check(console)
    return seat


def _agent_page(
    console: Console,
    seat: AgentSeat,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    scope = _scope(console)
    return console.render(
        "agent_edit.html",
        status_code=status,
        seat=seat,
        agent=agent_service.agent_public(seat, scope),
        clients=_clients(console),
        errors=errors or {},
    )


@router.get("/agents/{agent_id}")
def agent_page(console: ConsoleDep, agent_id: uuid.UUID) -> Response:
    """One agent's settings: name, skill groups, clients, wrap-up limit; deactivate."""
    return _agent_page(console, _seat(console, agent_id))


@router.post("/agents/{agent_id}")
def agent_update(
    console: ConsoleDep,
    agent_id: uuid.UUID,
    name: Annotated[str, Form()] = "",
    skill_groups: Annotated[str, Form()] = "",
    client_ids: Annotated[list[str] | None, Form()] = None,
    wrap_limit_s: Annotated[str, Form()] = "",
) -> Response:
    """Save an agent's settings (only your clients are added or removed)."""
    seat = _seat(console, agent_id)
    try:
        wrap = _wrap(wrap_limit_s)
        update = AgentUpdate(
            name=name.strip() or None,
            skill_groups=_groups(skill_groups),
            client_ids=_client_ids(client_ids or []),
            wrap_limit_s=wrap,
            clear_wrap_limit=wrap is None,
        )
        with console.session.begin_nested():
            agent_service.update_agent(
                session=console.session,
                agent_id=seat.id,
                agent_in=update,
                client_scope=_scope(console),
            )
    except ValidationError as exc:
        return _agent_page(console, seat, errors=_problems(exc), status=422)
    except InvalidInput as exc:
        return _agent_page(console, seat, errors={"form": console.describe(exc)}, status=422)
    return RedirectResponse(f"/console/agents/{seat.id}", status_code=303)


@router.post("/agents/{agent_id}/deactivate")
def agent_deactivate(console: ConsoleDep, agent_id: uuid.UUID) -> Response:
    """Deactivate an agent: signed out now, no sign-in until reactivated (409 on a call)."""
    seat = _seat(console, agent_id)
    try:
        with console.session.begin_nested():
            agent_service.set_agent_active(
                session=console.session, agent_id=seat.id, active=False,
                client_scope=_scope(console),
            )  # fmt: skip
    except agent_service.AgentBusy as exc:
        return _agent_page(console, seat, errors={"form": console.describe(exc)}, status=409)
    return RedirectResponse(f"/console/agents/{seat.id}", status_code=303)


@router.post("/agents/{agent_id}/activate")
def agent_activate(console: ConsoleDep, agent_id: uuid.UUID) -> Response:
    """Reactivate a deactivated agent (it may sign in again)."""
    seat = _seat(console, agent_id)
    agent_service.set_agent_active(
        session=console.session, agent_id=seat.id, active=True, client_scope=_scope(console)
    )
    return RedirectResponse(f"/console/agents/{seat.id}", status_code=303)


# --------------------------------------------------------------------------- skill groups


def _skill_groups_page(
    console: Console, *, error: str | None = None, status: int = 200
) -> Response:
    scope = _scope(console)
    seats = agent_service.list_agents(session=console.session, client_scope=scope)
    members: dict[str, list[AgentSeat]] = {}
    for seat in seats:
        for group in seat.skill_groups:
            members.setdefault(group, []).append(seat)
    served: dict[str, list[Any]] = {}
    for campaign in campaign_service.list_campaigns(session=console.session, limit=500):
        if campaign.skill_group:
            served.setdefault(campaign.skill_group, []).append(campaign)
            members.setdefault(campaign.skill_group, [])
    return console.render(
        "skill_groups.html",
        status_code=status,
        groups=sorted(members.items()),
        served=served,
        agents=seats,
        error=error,
    )


@router.get("/skill-groups")
def skill_groups_page(console: ConsoleDep) -> Response:
    """Skill groups (技能組): members, the campaigns each serves, add or remove a member."""
    _check(console)
    return _skill_groups_page(console)


def _membership(console: Console, agent_id: str, group: str, *, add: bool) -> Response:
    _check(console)
    try:
        seat = agent_service.get_agent(
            session=console.session, agent_id=uuid.UUID(agent_id), client_scope=_scope(console)
        )
    except ValueError:
        return _skill_groups_page(console, error="choose an agent from the list", status=422)
    group = group.strip()
    groups = list(seat.skill_groups)
    if add and group not in groups:
        groups.append(group)
    if not add:
        groups = [g for g in groups if g != group]
    try:
        update = AgentUpdate(skill_groups=groups)
    except ValidationError as exc:
        return _skill_groups_page(console, error="; ".join(_problems(exc).values()), status=422)
    agent_service.update_agent(
        session=console.session, agent_id=seat.id, agent_in=update, client_scope=_scope(console)
    )
    return RedirectResponse("/console/skill-groups", status_code=303)


@router.post("/skill-groups/members")
def skill_group_add(
    console: ConsoleDep,
    agent_id: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
) -> Response:
    """Put an agent into a skill group (a new name makes a new group)."""
    if not group.strip():
        _check(console)
        return _skill_groups_page(console, error="name the skill group", status=422)
    return _membership(console, agent_id, group, add=True)


@router.post("/skill-groups/members/remove")
def skill_group_remove(
    console: ConsoleDep,
    agent_id: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
) -> Response:
    """Take an agent out of a skill group."""
    return _membership(console, agent_id, group, add=False)
