"""API keys: generated at random, shown once, stored hashed; callers as principals; throttling.

A key reads ``pd_<prefix>_<secret>``. The prefix is public and indexed so a request finds its
key row with one lookup; the whole key is checked against its stored SHA-256 with a
constant-time comparison. The secret is 32 random bytes, so a fast hash is as safe as a slow
one, and a wrong secret for a real prefix costs exactly what an unknown prefix costs (a
comparison against a dummy digest): no timing signal, no argon2 CPU to burn. Keys made before
the SHA-256 column existed are verified once with argon2 and gain their SHA-256 then.

A verified key is remembered for :data:`KEY_CACHE_SECONDS` (by its SHA-256, never the key
itself), so a busy client costs no key query per request. Revoking a key, creating a client or
granting one forgets every remembered key in that process at once; other API processes stop
accepting a revoked key within :data:`KEY_CACHE_SECONDS`. A client a remembered key does not
name is always looked up again before the request is refused.

:class:`FailureThrottle` counts failed authentications per address and per key prefix in a
sliding window (per process: with N API processes the limits are N times looser).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from core.db import utcnow
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.models import STAFF_ROLES, ApiKey, ApiKeyGrant, Client, Role

__all__ = [
    "FailureThrottle",
    "Principal",
    "authenticate",
    "create_api_key",
    "forget_verified_keys",
    "key_prefix",
    "remembered",
    "require_role",
    "suppression_key",
]

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_KEY_RE = re.compile(r"^pd_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{32,64})$")
_DUMMY_DIGEST = hashlib.sha256(b"pilotdial: no key has this digest").hexdigest()
_TOUCH_SECONDS = 60.0  # last_used_at is written at most once a minute per key
KEY_CACHE_SECONDS = 2.0  # how long another process may still accept a revoked key
_KEY_CACHE_SIZE = 4096


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


@dataclass(frozen=True)
class _Verified:
    key_id: uuid.UUID
    name: str
    role: Role
    granted: frozenset[uuid.UUID]
    all_clients: bool
    until: float  # time.monotonic() after which the key is checked again


_verified: dict[str, _Verified] = {}
_verified_lock = threading.Lock()


def forget_verified_keys() -> None:
    """Check every key against the database again (a key, client or grant changed)."""
    with _verified_lock:
        _verified.clear()


def _remember(digest: str, verified: _Verified) -> None:
    with _verified_lock:
        if len(_verified) >= _KEY_CACHE_SIZE:
            now = time.monotonic()
            for stale in [d for d, v in _verified.items() if v.until <= now]:
                del _verified[stale]
            if len(_verified) >= _KEY_CACHE_SIZE:
                _verified.clear()
        _verified[digest] = verified


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
        secret_sha256=_digest(plain),
        name=name,
        role=role,
        all_clients=all_clients,
    )
    session.add(key)
    session.flush()
    for client_id in client_ids:
        session.add(ApiKeyGrant(api_key_id=key.id, client_id=client_id))
    session.flush()
    forget_verified_keys()
    return key, plain


def _digest(plain_key: str) -> str:
    return hashlib.sha256(plain_key.encode()).hexdigest()


def key_prefix(plain_key: str) -> str | None:
    """The public prefix of a well-formed key (what throttling counts failures by)."""
    match = _KEY_RE.match(plain_key.strip())
    return match.group(1) if match else None


def _secret_matches(session: Session, key: ApiKey, plain_key: str, *, slow_allowed: bool) -> bool:
    digest = _digest(plain_key)
    if key.secret_sha256 is not None:
        return hmac.compare_digest(key.secret_sha256, digest)
    if not slow_allowed:  # a legacy key under throttling: no argon2 for a guess
        return False
    try:
        _hasher.verify(key.secret_hash, plain_key)
    except (VerificationError, InvalidHashError):
        return False
    key.secret_sha256 = digest  # verified once with argon2: constant-cost from now on
    session.add(key)
    return True


def authenticate(
    *,
    session: Session,
    plain_key: str,
    selected_client: uuid.UUID | None = None,
    slow_allowed: bool = True,
) -> Principal | None:
    """The principal for a presented key, or None if it is unknown, wrong or revoked.

    ``slow_allowed=False`` (the prefix is being throttled) refuses keys that would need an
    argon2 verification; keys with a SHA-256 are checked as always.
    """
    plain_key = plain_key.strip()
    match = _KEY_RE.match(plain_key)
    if not match:
        return None
    digest = _digest(plain_key)
    verified = _verified.get(digest)
    if not _fresh(verified, selected_client):
        verified = _verify(session, match.group(1), plain_key, slow_allowed=slow_allowed)
        if verified is None:
            return None
        _remember(digest, verified)
    assert verified is not None
    return _principal(verified, selected_client)


def remembered(plain_key: str, *, selected_client: uuid.UUID | None = None) -> Principal | None:
    """The principal of a key verified within :data:`KEY_CACHE_SECONDS`, without the database.

    None means "not known": call :func:`authenticate`, which decides.
    """
    verified = _verified.get(_digest(plain_key.strip()))
    if not _fresh(verified, selected_client):
        return None
    assert verified is not None
    return _principal(verified, selected_client)


def _fresh(verified: _Verified | None, selected_client: uuid.UUID | None) -> bool:
    return (
        verified is not None
        and verified.until > time.monotonic()
        and (selected_client is None or selected_client in verified.granted)
    )


def _principal(verified: _Verified, selected_client: uuid.UUID | None) -> Principal:
    scope = verified.granted
    if selected_client is not None:
        # Choosing a client you have no access to looks exactly like an unknown client.
        if selected_client not in verified.granted:
            raise NotFound(f"client {selected_client} does not exist")
        scope = frozenset({selected_client})
    return Principal(
        key_id=verified.key_id,
        name=verified.name,
        role=verified.role,
        client_ids=verified.granted,
        all_clients=verified.all_clients,
        scope=scope,
    )


def _verify(
    session: Session, prefix: str, plain_key: str, *, slow_allowed: bool
) -> _Verified | None:
    """The key row's verdict on a presented key (one lookup by its public prefix)."""
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None or key.revoked_at is not None:
        hmac.compare_digest(_DUMMY_DIGEST, _digest(plain_key))  # the same work as a real key
        return None
    if not _secret_matches(session, key, plain_key, slow_allowed=slow_allowed):
        return None
    now = utcnow()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > _TOUCH_SECONDS:
        key.last_used_at = now
        session.add(key)
    if session.dirty:
        session.commit()
    if key.all_clients:
        granted = frozenset(session.exec(select(Client.id)).all())
    else:
        granted = frozenset(
            session.exec(select(ApiKeyGrant.client_id).where(ApiKeyGrant.api_key_id == key.id))
        )
    return _Verified(
        key_id=key.id,
        name=key.name,
        role=key.role,
        granted=granted,
        all_clients=key.all_clients,
        until=time.monotonic() + KEY_CACHE_SECONDS,
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


class FailureThrottle:
    """Failed attempts per key (address or prefix) in a sliding window; bounded memory.

    Thread-safe: the API authenticates on its thread pool.
    """

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: it may now)."""
        with self._lock:
            now = self.clock()
            failures = self._recent(key, now)
            if failures is None or len(failures) < self.limit:
                return 0.0
            return max(failures[-self.limit] + self.window_s - now, 0.001)

    def failed(self, key: str) -> None:
        """Count one failure for ``key``."""
        with self._lock:
            now = self.clock()
            if len(self._failures) >= self.max_keys:
                for stale in list(self._failures):
                    self._recent(stale, now)
                while len(self._failures) >= self.max_keys:  # still full: forget the oldest
                    del self._failures[next(iter(self._failures))]
            failures = self._recent(key, now) or self._failures.setdefault(key, deque())
            failures.append(now)
            while len(failures) > self.limit:
                failures.popleft()
