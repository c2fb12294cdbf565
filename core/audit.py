"""The audit trail: who read or exported which client data, and when."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from core.logging import request_id_var
from core.models import AuditEvent

__all__ = ["Actor", "record_audit"]


@dataclass(frozen=True)
class Actor:
    """Who did something: an API key, a CLI user or a background job."""

    name: str
    key_id: uuid.UUID | None = None


def record_audit(
    session: Session,
    *,
    client_id: uuid.UUID,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event in the caller's transaction."""
    event = AuditEvent(
        client_id=client_id,
        actor_key_id=actor.key_id,
        actor_name=actor.name,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=detail or {},
        request_id=request_id_var.get(),
    )
    session.add(event)
    return event
