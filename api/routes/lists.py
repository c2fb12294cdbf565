"""Lead lists: upload (cleaned in the background), status and progress, report, downloads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import File, Form, Query, Request, UploadFile, status
from fastapi.responses import StreamingResponse
from sqlmodel import col, select

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.downloads import content_disposition
from api.router import Router
from api.views import list_view
from campaigns.lists import (
    LeadListPublic,
    LeadPublic,
    create_list_from_upload,
    delete_list,
    list_leads,
)
from campaigns.models import Lead, LeadList
from core.audit import record_audit
from core.db import get_or_404
from core.errors import Conflict, PayloadTooLarge
from core.files import stream_file
from core.models import Client, Role
from core.security import require_role
from core.validation import MAX_OFFSET, PlainText

router = Router(prefix="/lists", tags=["lead lists"])

UPLOAD_CHUNK = 1024 * 1024


def _check_declared_size(request: Request) -> None:
    limit = request.app.state.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(
            f"the upload is {int(declared):,} bytes, over the {limit:,}-byte limit; split the "
            "list or ask an operator to raise PILOTDIAL_MAX_UPLOAD_BYTES",
            extra={"limit_bytes": limit},
        )


def _read_chunks(upload: UploadFile) -> Iterator[bytes]:
    while chunk := upload.file.read(UPLOAD_CHUNK):
        yield chunk


@router.post("", response_model=LeadListPublic, status_code=status.HTTP_202_ACCEPTED)
def upload_list(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="CSV (any common encoding), TSV or XLSX")],
    name: Annotated[PlainText | None, Form(max_length=200)] = None,
    region: Annotated[
        str | None,
        Form(
            pattern=r"^([A-Za-z]{2})?$",
            description="Default region (ISO 3166, e.g. CN, HK); the client's if empty",
        ),
    ] = None,
    phone_column: Annotated[PlainText | None, Form(max_length=200)] = None,
    encoding: Annotated[
        PlainText | None, Form(max_length=40, description="Override detection, e.g. gbk, big5")
    ] = None,
    sheet: Annotated[
        PlainText | None, Form(max_length=31, description="XLSX sheet name; the first if empty")
    ] = None,
    excluded_types: Annotated[
        PlainText, Form(max_length=500, description="Comma-separated number types")
    ] = "",
    allow_ragged: Annotated[bool, Form()] = False,
    dedupe_against: Annotated[list[uuid.UUID] | None, Form()] = None,
) -> LeadList:
    """Upload a lead list; it is cleaned in the background (watch ``GET /lists/{id}``)."""
    require_role(principal, Role.client, Role.operator)
    _check_declared_size(request)
    client_id = principal.acting_client()
    client = session.get(Client, client_id)
    default_region = region or (client.default_region if client else "CN")
    return create_list_from_upload(
        session=session,
        client_id=client_id,
        filename=file.filename or "upload.csv",
        chunks=_read_chunks(file),
        name=name,
        region=default_region,
        phone_column=phone_column or None,
        encoding=encoding or None,
        sheet=sheet or None,
        excluded_types=[excluded_types] if excluded_types else [],
        allow_ragged=allow_ragged,
        dedupe_against=dedupe_against or [],
    )


@router.get("", response_model=list[LeadListPublic])
def list_lists(
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[LeadListPublic]:
    """The client's lead lists, newest first."""
    stmt = select(LeadList).order_by(col(LeadList.created_at).desc()).limit(limit)
    return [list_view(lead_list, principal) for lead_list in session.exec(stmt)]


@router.get("/{list_id}", response_model=LeadListPublic)
def get_list(
    list_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> LeadListPublic:
    """Status, progress (rows done / total) and, once ready, the cleaning report."""
    lead_list: LeadList = get_or_404(session, LeadList, list_id, what="lead list")
    return list_view(lead_list, principal)


@router.get("/{list_id}/report")
def get_report(list_id: uuid.UUID, session: SessionDep) -> dict[str, Any]:
    """The cleaning report: every input row accounted for, by reason, type, region, zone."""
    lead_list: LeadList = get_or_404(session, LeadList, list_id, what="lead list")
    if lead_list.report is None:
        raise Conflict(
            f"the list is {lead_list.status.value}; the report exists once it is ready",
            extra={"list_status": lead_list.status.value},
        )
    return lead_list.report


#: ``?bom=true``: a UTF-8 byte-order mark first, so Excel (zh-CN) opens the file as UTF-8.
BomQuery = Annotated[
    bool,
    Query(
        description="Start the file with a UTF-8 byte-order mark, for Excel (which otherwise "
        "reads UTF-8 CSV as the system code page and garbles Chinese). Off for programs."
    ),
]


def _with_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield b"\xef\xbb\xbf"
    yield from chunks


def _download(
    session: Any,
    actor: Any,
    lead_list: LeadList,
    file_id: uuid.UUID | None,
    kind: str,
    *,
    bom: bool = False,
) -> StreamingResponse:
    if file_id is None:
        raise Conflict(f"the list is {lead_list.status.value}; downloads exist once it is ready")
    record_audit(
        session,
        client_id=lead_list.client_id,
        actor=actor,
        action=f"export_{kind}",
        object_type="lead_list",
        object_id=lead_list.id,
    )
    filename = f"{lead_list.name.rsplit('.', 1)[0]}-{kind}.csv"
    chunks = stream_file(lead_list.client_id, file_id)
    return StreamingResponse(
        _with_bom(chunks) if bom else chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition(filename)},
    )


@router.get("/{list_id}/cleaned.csv", response_class=StreamingResponse)
def download_cleaned(
    list_id: uuid.UUID, session: SessionDep, actor: CurrentActor, bom: BomQuery = False
) -> StreamingResponse:
    """The kept rows with phone_e164, type, region, time zone, extension, carrier (audited)."""
    lead_list: LeadList = get_or_404(session, LeadList, list_id, what="lead list")
    return _download(session, actor, lead_list, lead_list.cleaned_file_id, "cleaned", bom=bom)


@router.get("/{list_id}/rejects.csv", response_class=StreamingResponse)
def download_rejects(
    list_id: uuid.UUID, session: SessionDep, actor: CurrentActor, bom: BomQuery = False
) -> StreamingResponse:
    """Every rejected row with its reason and, for duplicates, the row it repeats (audited)."""
    lead_list: LeadList = get_or_404(session, LeadList, list_id, what="lead list")
    return _download(session, actor, lead_list, lead_list.rejects_file_id, "rejects", bom=bom)


@router.get("/{list_id}/leads", response_model=list[LeadPublic])
def get_leads(
    list_id: uuid.UUID,
    session: SessionDep,
    actor: CurrentActor,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
) -> list[Lead]:
    """A page of the list's cleaned leads (audited)."""
    leads = list_leads(session=session, list_id=list_id, limit=limit, offset=offset)
    lead_list: LeadList = get_or_404(session, LeadList, list_id, what="lead list")
    record_audit(
        session,
        client_id=lead_list.client_id,
        actor=actor,
        action="read_leads",
        object_type="lead_list",
        object_id=list_id,
        detail={"offset": offset, "returned": len(leads)},
    )
    return leads


@router.delete("/{list_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_list(list_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> None:
    """Delete the list, its leads and files for good."""
    require_role(principal, Role.client, Role.operator)
    delete_list(session=session, list_id=list_id)
