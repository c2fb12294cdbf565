"""Creating, finding, changing and (de)activating agents."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlmodel import Session, col, select

from core.errors import NotFound
from core.models import Client
from dialer.agent_service._common import (
    _A,
    _S,
    AgentBusy,
    AgentNotFound,
    ClientScope,
    DuplicateAgent,
    _locked_seat,
    _scope_strings,
    _store,
    _visible,
    agent_from_seat,
)
from dialer.agent_service.actions import apply_agent_action
from dialer.agent_service.commands import SignOut
from dialer.agents import Agent, AgentState
from dialer.models import AgentCreate, AgentSeat, AgentUpdate


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
            command=SignOut(reason="deactivated"),
            client_scope=client_scope,
        )
    seat.active = active
    session.add(seat)
    session.flush()
    return seat
