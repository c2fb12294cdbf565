"""Client and key administration used by the CLI and the demo."""

from __future__ import annotations

import re
import uuid

from sqlmodel import Session, select

from core.errors import Conflict, InvalidInput, NotFound
from core.models import ApiKey, Client, Role
from core.security import create_api_key, forget_verified_keys

__all__ = ["create_client", "find_client", "issue_key", "revoke_key"]


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or f"client-{uuid.uuid4().hex[:8]}"


def create_client(
    *, session: Session, name: str, default_region: str = "CN", slug: str | None = None
) -> Client:
    """Create a tenant; the slug must be unique."""
    name = name.strip()
    if not name:
        raise InvalidInput("a client needs a non-empty name")
    slug = slug or _slugify(name)
    if session.exec(select(Client).where(Client.slug == slug)).first() is not None:
        raise Conflict(f"a client with slug {slug!r} already exists; choose another --slug")
    client = Client.model_validate(
        {"name": name, "default_region": default_region.upper(), "slug": slug}
    )
    session.add(client)
    session.flush()
    forget_verified_keys()  # all-client keys remembered without it see it at once
    return client


def find_client(*, session: Session, ref: str) -> Client:
    """A client by id or slug."""
    client: Client | None = None
    try:
        client = session.get(Client, uuid.UUID(ref))
    except ValueError:
        client = session.exec(select(Client).where(Client.slug == ref)).first()
    if client is None:
        raise NotFound(f"no client {ref!r}; list them with `pilotdial admin list-clients`")
    return client


def issue_key(
    *,
    session: Session,
    name: str,
    role: Role,
    client_refs: list[str],
    all_clients: bool = False,
) -> tuple[ApiKey, str]:
    """Create a key for clients named by id or slug; returns the row and the plain key."""
    ids = [find_client(session=session, ref=ref).id for ref in client_refs]
    return create_api_key(
        session=session, name=name, role=role, client_ids=ids, all_clients=all_clients
    )


def revoke_key(*, session: Session, prefix: str) -> ApiKey:
    """Revoke a key by its public prefix."""
    from core.db import utcnow

    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None:
        raise NotFound(f"no key with prefix {prefix!r}")
    key.revoked_at = utcnow()
    session.add(key)
    forget_verified_keys()
    return key
