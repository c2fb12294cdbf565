"""Console users: accounts, passwords, sign-in sessions and login throttling.

People sign in to the browser console with a name and a password; machines keep API keys
(:mod:`core.security`). A user has a role, the clients it may act for (or every client, for
admins) and, for agents, the agent seat it is. Passwords are argon2id hashes made by the same
hasher as the keys. A signed-in browser holds a random session token in an HttpOnly cookie;
the database stores only its SHA-256, with the session's CSRF token, so a stolen database
cannot be replayed as a cookie and a sign-out or a disabled user ends every session at once.

Throttling: failed sign-ins are recorded per user name and per address; more than
:data:`MAX_FAILURES` of either within :data:`THROTTLE_WINDOW` refuses further tries (even the
right password) until the window has passed. Unknown names cost the same argon2 work as known
ones, so timing does not tell which names exist.

A signed-in user becomes a :class:`core.security.Principal`, so pages call the same service
functions, with the same tenant-scoped session, as the API.

Exceptions: :class:`LoginFailed` (wrong name or password, disabled user),
:class:`LoginThrottled` (too many failures), both :class:`core.errors.PilotdialError`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from core.db import UTCDateTime, str_enum, utcnow
from core.errors import Conflict, InvalidInput, NotFound, PilotdialError
from core.models import Client, Role
from core.security import Principal

__all__ = [
    "LOCALES",
    "MAX_FAILURES",
    "SESSION_LIFETIME",
    "THROTTLE_WINDOW",
    "ConsoleSession",
    "LoginAttempt",
    "LoginFailed",
    "LoginThrottled",
    "SignedIn",
    "User",
    "UserGrant",
    "UserRole",
    "change_password",
    "create_user",
    "csrf_matches",
    "end_session",
    "get_user",
    "list_users",
    "principal_for",
    "session_user",
    "set_disabled",
    "sign_in",
    "user_client_ids",
]

#: The console's languages (BCP 47 tags, as the catalogs under api/console/locale are named).
LOCALES = ("zh-Hans", "zh-Hant", "en")
MAX_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the name is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserRole(StrEnum):
    admin = "admin"
    operator = "operator"
    supervisor = "supervisor"
    sales = "sales"
    researcher = "researcher"
    agent = "agent"
    client_user = "client_user"


#: The API role whose permissions each console role has (services check API roles).
_API_ROLE: dict[UserRole, Role] = {
    UserRole.admin: Role.admin,
    UserRole.operator: Role.operator,
    UserRole.supervisor: Role.operator,
    UserRole.sales: Role.sales,
    UserRole.researcher: Role.researcher,
    UserRole.agent: Role.operator,
    UserRole.client_user: Role.client,
}


class LoginFailed(PilotdialError):
    code = "login-failed"
    title = "Sign-in failed"


class LoginThrottled(PilotdialError):
    code = "login-throttled"
    title = "Too many sign-in attempts"


class User(SQLModel, table=True):
    """A person who signs in to the console."""

    __tablename__ = "console_user"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(index=True, unique=True, min_length=2, max_length=80)
    display_name: str = Field(max_length=200)
    password_hash: str
    role: UserRole = Field(sa_type=str_enum(UserRole))
    all_clients: bool = False
    agent_id: uuid.UUID | None = Field(
        default=None, foreign_key="agentseat.id", ondelete="SET NULL"
    )
    locale: str = Field(default="zh-Hans", max_length=16)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    password_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserGrant(SQLModel, table=True):
    """A client a user may act for."""

    __tablename__ = "console_user_grant"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="console_user.id", index=True, ondelete="CASCADE")
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser: the SHA-256 of its cookie token and its CSRF token."""

    __tablename__ = "console_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: uuid.UUID = Field(foreign_key="console_user.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class LoginAttempt(SQLModel, table=True):
    """One failed sign-in, kept for throttling."""

    __tablename__ = "console_login_failure"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(index=True, max_length=80)
    address: str = Field(index=True, max_length=80)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


@dataclass(frozen=True)
class SignedIn:
    """A new sign-in: the cookie token (shown once) and the session's CSRF token."""

    user: User
    token: str
    csrf_token: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}"
        )


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: UserRole,
    display_name: str = "",
    client_ids: Collection[uuid.UUID] = (),
    all_clients: bool = False,
    agent_id: uuid.UUID | None = None,
    locale: str = "zh-Hans",
) -> User:
    """Create a user; client users act for exactly one client, agents need their seat."""
    username = username.strip()
    if not username:
        raise InvalidInput("the user name is empty")
    _check_password(password)
    if locale not in LOCALES:
        raise InvalidInput(f"locale {locale!r}: use one of {', '.join(LOCALES)}")
    if all_clients and role is not UserRole.admin:
        raise InvalidInput("only admins may act for every client")
    if role is UserRole.client_user and len(set(client_ids)) != 1:
        raise InvalidInput("a client user belongs to exactly one client; choose one")
    if not client_ids and not all_clients:
        raise InvalidInput("grant the user at least one client, or every client (admins)")
    if role is UserRole.agent and agent_id is None:
        raise InvalidInput("an agent user needs the agent seat (工號) it signs in to")
    if role is not UserRole.agent and agent_id is not None:
        raise InvalidInput("only agent users have an agent seat")
    if session.exec(select(User.id).where(User.username == username)).first() is not None:
        raise Conflict(f"the user name {username!r} is taken; choose another")
    for client_id in client_ids:
        if session.get(Client, client_id) is None:
            raise NotFound(f"client {client_id} does not exist")
    # core never imports the dialer: the seat is checked by its table (and its foreign key)
    seats = sa.table("agentseat", sa.column("id", sa.Uuid()))
    if (
        agent_id is not None
        and not session.execute(sa.select(seats.c.id).where(seats.c.id == agent_id)).first()
    ):
        raise NotFound(f"agent {agent_id} does not exist")
    user = User(
        username=username,
        display_name=display_name.strip() or username,
        password_hash=_hasher.hash(password),
        role=role,
        all_clients=all_clients,
        agent_id=agent_id,
        locale=locale,
    )
    session.add(user)
    session.flush()
    for client_id in dict.fromkeys(client_ids):
        session.add(UserGrant(user_id=user.id, client_id=client_id))
    session.flush()
    return user


def list_users(*, session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.exec(select(User).order_by(col(User.username))))


def get_user(*, session: Session, user_id: uuid.UUID) -> User:
    """One user, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no user with this id")
    return user


def user_client_ids(*, session: Session, user: User) -> frozenset[uuid.UUID]:
    """The clients the user may act for."""
    if user.all_clients:
        return frozenset(session.exec(select(Client.id)).all())
    return frozenset(session.exec(select(UserGrant.client_id).where(UserGrant.user_id == user.id)))


def _recent_failures(session: Session, column: Any, value: str) -> int:
    since = utcnow() - THROTTLE_WINDOW
    stmt = select(sa.func.count()).where(column == value, col(LoginAttempt.at) >= since)
    return int(session.exec(stmt).one())


def sign_in(*, session: Session, username: str, password: str, address: str) -> SignedIn:
    """Check the password and open a session; raises LoginThrottled or LoginFailed.

    A failure is recorded in the caller's transaction, which must be committed even though
    this raises (the console does), or throttling would count nothing.
    """
    username = username.strip()[:80]
    address = address[:80]
    if (
        _recent_failures(session, col(LoginAttempt.username), username) >= MAX_FAILURES
        or _recent_failures(session, col(LoginAttempt.address), address) >= MAX_FAILURES * 4
    ):
        raise LoginThrottled(
            f"too many failed sign-ins; wait {int(THROTTLE_WINDOW.total_seconds() // 60)} "
            "minutes or ask an administrator"
        )
    user = session.exec(select(User).where(User.username == username)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and user.disabled_at is None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        session.add(LoginAttempt(username=username, address=address))
        session.flush()
        raise LoginFailed("wrong user name or password")
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utcnow() + SESSION_LIFETIME,
        )
    )
    session.execute(sa.delete(LoginAttempt).where(col(LoginAttempt.username) == username))
    session.execute(  # the user's expired sessions are of no use to anyone
        sa.delete(ConsoleSession).where(
            col(ConsoleSession.user_id) == user.id, col(ConsoleSession.expires_at) <= utcnow()
        )
    )
    session.flush()
    return SignedIn(user=user, token=token, csrf_token=csrf)


def session_user(*, session: Session, token: str) -> tuple[User, ConsoleSession] | None:
    """The signed-in user of a cookie token, or None (unknown, expired, disabled)."""
    row = session.get(ConsoleSession, _token_hash(token))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user, row


def csrf_matches(row: ConsoleSession, presented: str | None) -> bool:
    """Whether a form's CSRF token is the session's (constant time)."""
    return presented is not None and hmac.compare_digest(row.csrf_token, presented)


def end_session(*, session: Session, token: str) -> None:
    """Sign out: the cookie's session is deleted."""
    session.execute(
        sa.delete(ConsoleSession).where(col(ConsoleSession.token_hash) == _token_hash(token))
    )


def change_password(*, session: Session, user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; every other session ends."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise InvalidInput("the current password is wrong") from None
    _check_password(new)
    user.password_hash = _hasher.hash(new)
    user.password_changed_at = utcnow()
    session.add(user)
    session.flush()


def set_disabled(*, session: Session, user: User, disabled: bool) -> None:
    """Disable a user (every session ends) or enable it again."""
    user.disabled_at = utcnow() if disabled else None
    session.add(user)
    if disabled:
        session.execute(sa.delete(ConsoleSession).where(col(ConsoleSession.user_id) == user.id))
    session.flush()


def principal_for(
    *, session: Session, user: User, selected_client: uuid.UUID | None = None
) -> Principal:
    """The user as the API's principal: its API role and clients (one, if it chose one)."""
    granted = user_client_ids(session=session, user=user)
    scope = granted
    if selected_client is not None:
        if selected_client not in granted:
            raise NotFound(f"client {selected_client} does not exist")
        scope = frozenset({selected_client})
    return Principal(
        key_id=user.id,
        name=f"user:{user.username}",
        role=_API_ROLE[user.role],
        client_ids=granted,
        all_clients=user.all_clients,
        scope=scope,
    )
