"""Request dependencies: the authenticated principal and a session scoped to its clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlmodel import Session

from core.audit import Actor
from core.db import scope_session, system_session
from core.security import Principal, authenticate

__all__ = ["CurrentActor", "CurrentPrincipal", "SessionDep"]


def get_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    x_pilotdial_client: Annotated[uuid.UUID | None, Header()] = None,
) -> Principal:
    """Authenticate ``Authorization: Bearer <key>`` (or ``X-API-Key``)."""
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:]
    if not key:
        raise HTTPException(
            401,
            "missing API key: send `Authorization: Bearer pd_…`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with system_session(request.app.state.engine) as session:
        principal = authenticate(session=session, plain_key=key, selected_client=x_pilotdial_client)
    if principal is None:
        raise HTTPException(
            401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_session(request: Request, principal: CurrentPrincipal) -> Iterator[Session]:
    """A session that sees only the caller's clients; commits when the route succeeds."""
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        scope_session(session, principal.scope)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# scope="function": commit before the response is sent, so a client never reads stale data.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_actor(principal: CurrentPrincipal) -> Actor:
    """The caller as recorded in the audit log."""
    return Actor(name=principal.name, key_id=principal.key_id)


CurrentActor = Annotated[Actor, Depends(get_actor)]
