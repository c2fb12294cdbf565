"""Request dependencies: the authenticated principal and a session scoped to its clients."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Header, HTTPException, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from core.audit import Actor
from core.db import scope_session
from core.security import FailureThrottle, Principal, authenticate, key_prefix, remembered
from core.settings import Settings

__all__ = ["AuthThrottle", "CurrentActor", "CurrentPrincipal", "SessionDep"]


class AuthThrottle:
    """Failed authentications per client address and per key prefix (``app.state``).

    An address over its limit gets 429 for every key; a prefix over its limit gets 429 for
    wrong secrets only, so nobody can lock a client out by guessing at its (public) prefix.
    """

    def __init__(self, settings: Settings) -> None:
        window = settings.auth_failure_window_s
        self.by_address = FailureThrottle(limit=settings.auth_failures_per_ip, window_s=window)
        self.by_prefix = FailureThrottle(limit=settings.auth_failures_per_key, window_s=window)


def _too_many(wait_s: float) -> HTTPException:
    return HTTPException(
        429,
        "too many failed authentications; wait for Retry-After seconds, then send a valid key",
        headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
    )


async def _request_session(request: Request) -> AsyncIterator[Session]:
    """The request's one session: authentication and the route share its connection.

    It commits when the route succeeds, right after the route (``scope="function"``), before
    the response is sent, and rolls back when it fails. One connection per request (not one
    for the key and one for the route) is what lets ``check_capacity`` size the pool for the
    requests admitted at once. Made on the event loop (a new session does no I/O until used)
    and ended in one threadpool hop: a sync generator costs a hop to enter and one to leave.
    """
    # unscoped until get_principal scopes it to the caller's clients
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    except BaseException:
        with anyio.CancelScope(shield=True):  # a client gone away still frees its connection
            await run_in_threadpool(_end_session, session, commit=False)
        raise
    if session.in_transaction():
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_end_session, session, commit=True)
    else:
        session.close()  # never used: no connection to give back


def _end_session(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


_RequestSession = Annotated[Session, Depends(_request_session, scope="function")]


def _cookie_principal(
    request: Request, session: Session, selected_client: uuid.UUID | None
) -> Principal | None:
    """The console user of a read (GET/HEAD) that carries a console session cookie.

    Only safe methods: a request that changes something must come with an API key or through
    the console's CSRF-checked forms, so a cross-site page cannot act with a user's cookie.
    """
    from api.console.web import COOKIE, SAFE_METHODS
    from core.users import UserRole, principal_for, session_user

    token = request.cookies.get(COOKIE)
    if not token or request.method not in SAFE_METHODS:
        return None
    found = session_user(session=session, token=token)
    if found is None:
        return None
    user = found[0]
    # An agent's API role is the operator's (to drive its seat), but through the API its
    # cookie reaches only its own seat's event stream: no exports, no other agents.
    if user.role is UserRole.agent and request.url.path != f"/agents/{user.agent_id}/events":
        return None
    return principal_for(session=session, user=user, selected_client=selected_client)


async def get_principal(
    request: Request,
    session: _RequestSession,
    # documented as the OpenAPI security schemes (api/openapi.py), not as parameters
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_pilotdial_client: Annotated[uuid.UUID | None, Header()] = None,
) -> Principal:
    """Authenticate ``Authorization: Bearer <key>`` (or ``X-API-Key``; a console session
    cookie for reads).

    Async so that a key verified moments ago (:func:`core.security.remembered`) costs no
    thread; anything that needs the database runs in the threadpool.
    """
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:]
    remembered_principal = (
        remembered(key, selected_client=x_pilotdial_client)
        if key and not _address_throttled(request)
        else None
    )
    if remembered_principal is not None:
        scope_session(session, remembered_principal.scope)
        return remembered_principal
    return await run_in_threadpool(_principal, request, session, key, x_pilotdial_client)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _address_throttled(request: Request) -> float:
    throttle: AuthThrottle = request.app.state.auth_throttle
    return throttle.by_address.retry_after(_address(request))


def _principal(
    request: Request, session: Session, key: str | None, selected_client: uuid.UUID | None
) -> Principal:
    if not key and (user := _cookie_principal(request, session, selected_client)):
        scope_session(session, user.scope)
        return user
    if not key:
        raise HTTPException(
            401,
            "missing API key: send `Authorization: Bearer pd_…`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = _address(request)
    prefix = key_prefix(key)
    if wait := _address_throttled(request):
        raise _too_many(wait)
    prefix_wait = throttle.by_prefix.retry_after(prefix) if prefix else 0.0
    principal = authenticate(
        session=session,
        plain_key=key,
        selected_client=selected_client,
        slow_allowed=not prefix_wait,
    )
    if principal is None:
        throttle.by_address.failed(address)
        if prefix:
            throttle.by_prefix.failed(prefix)
        if prefix_wait:
            raise _too_many(prefix_wait)
        raise HTTPException(
            401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    scope_session(session, principal.scope)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_session(session: _RequestSession, principal: CurrentPrincipal) -> Session:
    """The request's session, which sees only the caller's clients."""
    return session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_actor(principal: CurrentPrincipal) -> Actor:
    """The caller as recorded in the audit log."""
    return Actor(name=principal.name, key_id=principal.key_id)


CurrentActor = Annotated[Actor, Depends(get_actor)]
