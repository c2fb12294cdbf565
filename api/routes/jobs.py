"""Background jobs: state, progress and result."""

from __future__ import annotations

import uuid

from fastapi import Query, status
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from api.router import Router
from api.views import job_view
from core.db import get_or_404
from core.jobs import submit_job
from core.models import JobPublic, JobRecord

router = Router(prefix="/jobs", tags=["jobs"])


@router.post("/summary", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def start_summary_job(principal: CurrentPrincipal) -> JobPublic:
    """Count, in the background, everything the client owns (a health check for workers)."""
    job = submit_job(
        client_id=principal.acting_client(),
        kind="client_summary",
        handler="core.jobs:client_summary",
    )
    return job_view(job, principal)


@router.get("", response_model=list[JobPublic])
def list_jobs(
    session: SessionDep, principal: CurrentPrincipal, limit: int = Query(default=50, ge=1, le=500)
) -> list[JobPublic]:
    """The client's recent jobs, newest first (internal failure details for staff keys only)."""
    stmt = select(JobRecord).order_by(col(JobRecord.created_at).desc()).limit(limit)
    return [job_view(job, principal) for job in session.exec(stmt)]


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> JobPublic:
    """One job's status, progress and result (internal failure details for staff keys only)."""
    job: JobRecord = get_or_404(session, JobRecord, job_id, what="job")
    return job_view(job, principal)
