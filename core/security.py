"""API keys: generated at random, shown once, stored as argon2id hashes; callers as principals.

A key reads ``pd_<prefix>_<secret>``. The prefix is public and indexed so a request finds its
key row with one lookup; the whole key is verified against the argon2 hash. A verified key's
SHA-256 is cached in process for a minute so the argon2 cost is paid once per key, not once per
request; revocation is still read from the database on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from core.db import utcnow
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.models import STAFF_ROLES, ApiKey, ApiKeyGrant, Client, Role

__all__ = [
    "Principal",
    "authenticate",
    "create_api_key",
    "require_role",
    "suppression_key",
]

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_KEY_RE = re.compile(r"^pd_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{32,64})$")
_verified: dict[uuid.UUID, tuple[bytes, float]] = {}
_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a key, its role and the clients it may act for."""

    key_id: uuid.UUID
    name: str
    role: Role
    client_ids: frozenset[uuid.UUID]
    all_clients: bool = False
    scope: frozenset[uuid.UUID] = field(default_factory=frozenset)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def acting_client(self) -> uuid.UUID:
        """The one client a create acts for; ambiguous staff scopes must pick one."""
        if len(self.scope) == 1:
            return next(iter(self.scope))
        raise InvalidInput(
            "this key can act for several clients; choose one with the X-Pilotdial-Client header"
        )


def create_api_key(
    *,
    session: Session,
    name: str,
    role: Role,
    client_ids: list[uuid.UUID],
    all_clients: bool = False,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plain key, which is never stored or shown again."""
    if role is Role.client and (len(client_ids) != 1 or all_clients):
        raise InvalidInput("a client key belongs to exactly one client; pass one --client")
    if all_clients and role is not Role.admin:
        raise InvalidInput("only admin keys may see every client")
    if not client_ids and not all_clients:
        raise InvalidInput("grant the key at least one client (--client), or --all-clients")
    for client_id in client_ids:
        if session.get(Client, client_id) is None:
            raise NotFound(f"client {client_id} does not exist")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    plain = f"pd_{prefix}_{secret}"
    key = ApiKey(
        prefix=prefix,
        secret_hash=_hasher.hash(plain),
        name=name,
        role=role,
        all_clients=all_clients,
    )
    session.add(key)
    session.flush()
    for client_id in client_ids:
        session.add(ApiKeyGrant(api_key_id=key.id, client_id=client_id))
    session.flush()
    return key, plain


def authenticate(
    *, session: Session, plain_key: str, selected_client: uuid.UUID | None = None
) -> Principal | None:
    """The principal for a presented key, or None if it is unknown, wrong or revoked."""
    match = _KEY_RE.match(plain_key.strip())
    if not match:
        return None
    key = session.exec(select(ApiKey).where(ApiKey.prefix == match.group(1))).first()
    if key is None or key.revoked_at is not None:
        return None
    digest = hashlib.sha256(plain_key.encode()).digest()
    cached = _verified.get(key.id)
    if not (cached and hmac.compare_digest(cached[0], digest) and cached[1] > time.monotonic()):
        try:
            _hasher.verify(key.secret_hash, plain_key)
        except (VerificationError, InvalidHashError):
            return None
        _verified[key.id] = (digest, time.monotonic() + _CACHE_SECONDS)
        key.last_used_at = utcnow()
        session.add(key)
        session.commit()
    if key.all_clients:
        granted = frozenset(session.exec(select(Client.id)).all())
    else:
        granted = frozenset(
            session.exec(select(ApiKeyGrant.client_id).where(ApiKeyGrant.api_key_id == key.id))
        )
    scope = granted
    if selected_client is not None:
        # Choosing a client you have no access to looks exactly like an unknown client.
        if selected_client not in granted:
            raise NotFound(f"client {selected_client} does not exist")
        scope = frozenset({selected_client})
    return Principal(
        key_id=key.id,
        name=key.name,
        role=key.role,
        client_ids=granted,
        all_clients=key.all_clients,
        scope=scope,
    )


def require_role(principal: Principal, *roles: Role) -> None:
    """Refuse callers whose role is not among ``roles`` (admin always passes)."""
    if principal.role is Role.admin or principal.role in roles:
        return
    allowed = ", ".join(sorted(r.value for r in roles))
    raise PermissionDenied(f"this action needs one of the roles: {allowed}")


def suppression_key(secret: str) -> bytes:
    """The HMAC key for suppression-list hashes, derived from the secret key."""
    return hmac.new(secret.encode(), b"pilotdial-suppression-v1", hashlib.sha256).digest()
