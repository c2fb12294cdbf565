"""Call recordings: one attempt's file, a month's list, a month's archive (downloads audited)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query
from fastapi.responses import StreamingResponse

from api.deps import CurrentActor, SessionDep
from api.downloads import content_disposition
from api.router import Router
from campaigns.models import Campaign
from core.audit import record_audit
from core.db import get_or_404
from dialer.recordings import (
    Recording,
    RecordingPublic,
    archive_chunks,
    get_attempt_recording,
    list_recordings,
    month_range,
    recording_chunks,
)

router = Router(prefix="/campaigns", tags=["recordings"])

MonthQuery = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="YYYY-MM (UTC); the current month if omitted",
        examples=["2026-11"],
    ),
]


@router.get("/{campaign_id}/attempts/{attempt_id}/recording", response_class=StreamingResponse)
def download_recording(
    campaign_id: uuid.UUID, attempt_id: uuid.UUID, session: SessionDep, actor: CurrentActor
) -> StreamingResponse:
    """The call's recording, both parties mixed (audited)."""
    recording = get_attempt_recording(
        session=session, campaign_id=campaign_id, attempt_id=attempt_id
    )
    record_audit(
        session,
        client_id=recording.client_id,
        actor=actor,
        action="download_recording",
        object_type="call_attempt",
        object_id=attempt_id,
        detail={"recording_id": str(recording.id), "size_bytes": recording.size_bytes},
    )
    return StreamingResponse(
        recording_chunks(recording),
        media_type="audio/wav" if recording.format == "wav" else "application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(f"{attempt_id}.{recording.format}"),
            "Content-Length": str(recording.size_bytes),
        },
    )


@router.get("/{campaign_id}/recordings", response_model=list[RecordingPublic])
def get_recordings(
    campaign_id: uuid.UUID, session: SessionDep, month: MonthQuery = None
) -> list[Recording]:
    """The campaign's recordings made in a month, oldest first."""
    return list_recordings(session=session, campaign_id=campaign_id, month=month)


@router.get("/{campaign_id}/recordings/archive", response_class=StreamingResponse)
def download_archive(
    campaign_id: uuid.UUID, session: SessionDep, actor: CurrentActor, month: MonthQuery = None
) -> StreamingResponse:
    """A month's recordings as one ZIP, streamed (audited)."""
    recordings = list_recordings(session=session, campaign_id=campaign_id, month=month)
    start, _ = month_range(month)
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    record_audit(
        session,
        client_id=campaign.client_id,
        actor=actor,
        action="download_recordings_archive",
        object_type="campaign",
        object_id=campaign_id,
        detail={"month": f"{start:%Y-%m}", "recordings": len(recordings)},
    )
    # the rows are read now; the bytes stream from their own sessions after this one closes
    for recording in recordings:
        session.expunge(recording)
    return StreamingResponse(
        archive_chunks(recordings),
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition(f"recordings-{start:%Y-%m}.zip"),
        },
    )
