"""Background jobs: state, progress and result."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from core.db import get_or_404
from core.jobs import submit_job
from core.models import JobPublic, JobRecord

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("/summary", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def start_summary_job(principal: CurrentPrincipal) -> JobRecord:
    """Count, in the background, everything the client owns (a health check for workers)."""
    return submit_job(
        client_id=principal.acting_client(),
        kind="client_summary",
        handler="core.jobs:client_summary",
    )


@router.get("", response_model=list[JobPublic])
def list_jobs(session: SessionDep, limit: int = Query(default=50, ge=1, le=500)) -> list[JobRecord]:
    """The client's recent jobs, newest first."""
    stmt = select(JobRecord).order_by(col(JobRecord.created_at).desc()).limit(limit)
    return list(session.exec(stmt))


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: uuid.UUID, session: SessionDep) -> JobRecord:
    """One job's status, progress and result."""
    job: JobRecord = get_or_404(session, JobRecord, job_id, what="job")
    return job
