"""Test builders shared across the suite (importable because pyproject puts tests/ on the path)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Tenant:
    """A client with an API key, and an HTTP client that sends it."""

    client_id: uuid.UUID
    key: str
    http: Any

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_tenant(http: Any, name: str, role: str = "client", region: str = "CN") -> Tenant:
    """Create a client and a key through the admin service, bound to ``http``."""
    from core.admin import create_client, issue_key
    from core.db import system_session
    from core.models import Role

    with system_session() as sess:
        client = create_client(
            session=sess, name=name, default_region=region, slug=f"{name}-{uuid.uuid4().hex[:6]}"
        )
        _key, plain = issue_key(
            session=sess, name=f"{name} key", role=Role(role), client_refs=[str(client.id)]
        )
    return Tenant(client_id=client.id, key=plain, http=http)
