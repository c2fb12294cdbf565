"""Do-not-call lists: the client's own (and the house-wide one for admins), stored hashed."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Form, Query, UploadFile
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from api.router import Router
from campaigns.models import GlobalSuppressionEntry, SuppressionEntry
from campaigns.suppression import add_numbers, import_dnc_file, remove_numbers
from core.db import get_or_404
from core.models import Client, Role
from core.security import require_role
from core.validation import MAX_OFFSET, PlainText, Region

router = Router(prefix="/suppression", tags=["do-not-call"])


class NumbersIn(BaseModel):
    numbers: list[Annotated[PlainText, Field(max_length=64)]] = Field(
        min_length=1, max_length=100_000
    )
    region: Region | None = Field(default=None, description="Default region; the client's if empty")
    reason: PlainText | None = Field(default=None, max_length=500)
    house_wide: bool = Field(default=False, description="The global list (admins only)")


class SuppressionPublic(BaseModel):
    id: uuid.UUID
    masked: str
    source: str
    reason: str | None = None


def _target(session: Any, principal: Any, house_wide: bool) -> tuple[uuid.UUID | None, str]:
    client_id = principal.acting_client()
    client = session.get(Client, client_id)
    region = client.default_region if client else "CN"
    if house_wide:
        require_role(principal, Role.admin)
        return None, region
    return client_id, region


@router.post("")
def add_to_list(
    body: NumbersIn, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Add numbers (any format the cleaner accepts); says what was added, present or rejected."""
    client_id, region = _target(session, principal, body.house_wide)
    change = add_numbers(
        session=session,
        client_id=client_id,
        numbers=body.numbers,
        region=body.region or region,
        source="api",
        reason=body.reason,
    )
    return change.as_dict()


@router.post("/remove")
def remove_from_list(
    body: NumbersIn, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Remove numbers; says how many were removed and how many were not on the list."""
    client_id, region = _target(session, principal, body.house_wide)
    change = remove_numbers(
        session=session, client_id=client_id, numbers=body.numbers, region=body.region or region
    )
    return change.as_dict()


@router.post("/upload")
def upload_list(
    session: SessionDep,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="CSV with a phone column, or one number a line")],
    region: Annotated[str | None, Form(pattern=r"^([A-Za-z]{2})?$")] = None,
    reason: Annotated[PlainText | None, Form(max_length=500)] = None,
    house_wide: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Add every number of a do-not-call file; rejected lines come back with line numbers."""
    client_id, default_region = _target(session, principal, house_wide)
    suffix = Path(file.filename or "dnc.csv").suffix or ".csv"
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        while chunk := file.file.read(1024 * 1024):
            tmp.write(chunk)
        tmp.flush()
        change = import_dnc_file(
            session=session,
            client_id=client_id,
            path=Path(tmp.name),
            region=region or default_region,
            reason=reason,
        )
    return change.as_dict()


@router.get("", response_model=list[SuppressionPublic])
def list_entries(
    session: SessionDep,
    principal: CurrentPrincipal,
    house_wide: bool = False,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
) -> list[Any]:
    """The list, masked (numbers are stored only as keyed hashes)."""
    if house_wide:
        require_role(principal, Role.operator)
    model = GlobalSuppressionEntry if house_wide else SuppressionEntry
    stmt = select(model).order_by(col(model.created_at).desc()).offset(offset).limit(limit)
    return list(session.exec(stmt))


@router.delete("/{entry_id}", status_code=204)
def delete_entry(entry_id: uuid.UUID, session: SessionDep) -> None:
    """Remove one entry of the client's list."""
    entry = get_or_404(session, SuppressionEntry, entry_id, what="suppression entry")
    session.delete(entry)
