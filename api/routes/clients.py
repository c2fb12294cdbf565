"""The caller's clients and audit trail."""

from __future__ import annotations

from datetime import datetime

from fastapi import Query
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from api.router import Router
from core.models import AuditEvent, Client, ClientPublic, Role
from core.security import require_role

router = Router(tags=["clients"])


@router.get("/clients", response_model=list[ClientPublic])
def list_my_clients(session: SessionDep, principal: CurrentPrincipal) -> list[Client]:
    """The clients this key may act for."""
    stmt = select(Client).where(col(Client.id).in_(principal.scope)).order_by(Client.name)
    return list(session.exec(stmt))


@router.get("/audit", response_model=list[AuditEvent])
def list_audit_events(
    session: SessionDep,
    principal: CurrentPrincipal,
    since: datetime | None = None,
    object_id: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[AuditEvent]:
    """Who read or exported this client's data (admins and the client itself)."""
    require_role(principal, Role.client)
    stmt = select(AuditEvent).order_by(col(AuditEvent.at).desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    return list(session.exec(stmt))
