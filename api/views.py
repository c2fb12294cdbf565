"""Role-based views: what a client key sees of records that also hold internal data.

Staff keys (operator, sales, researcher, admin) see records as stored. A client key sees the
same records without what is the outsourcer's own business: the exception text of an internal
failure (it may name hosts, paths, SQL), who on the staff recorded an outage, and the settings
of staff-run jobs (a pacer run's simulation parameters). Feasibility reports have their own view
in ``api/routes/feasibility.py``.
"""

from __future__ import annotations

from typing import Any

from campaigns.lists import LeadListPublic
from campaigns.models import LeadList
from core.models import JobPublic, JobRecord
from core.security import Principal

__all__ = ["INTERNAL_PREFIX", "job_view", "list_view", "outage_view", "private_error"]

INTERNAL_PREFIX = "internal error"
STAFF_JOB_KINDS = frozenset({"pacer"})


def private_error(error: str | None, principal: Principal, *, reference: str) -> str | None:
    """An internal failure's text for staff; a client key reads that it failed, and where to ask."""
    if error is None or principal.is_staff or not error.startswith(INTERNAL_PREFIX):
        return error
    return f"{INTERNAL_PREFIX} on our side; quote {reference} to support"


def job_view(job: JobRecord, principal: Principal) -> JobPublic:
    """A job as the caller may see it."""
    view = JobPublic.model_validate(job, from_attributes=True)
    if principal.is_staff:
        return view
    return view.model_copy(
        update={
            "error": private_error(job.error, principal, reference=f"job {job.id}"),
            "params": {} if job.kind in STAFF_JOB_KINDS else view.params,
        }
    )


def list_view(lead_list: LeadList, principal: Principal) -> LeadListPublic:
    """A lead list as the caller may see it."""
    view = LeadListPublic.model_validate(lead_list, from_attributes=True)
    if principal.is_staff:
        return view
    reference = f"list {lead_list.id}"
    return view.model_copy(
        update={"error": private_error(lead_list.error, principal, reference=reference)}
    )


def outage_view(outage: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """An outage as the caller may see it (the recording staff member is internal)."""
    if principal.is_staff:
        return outage
    return {key: value for key, value in outage.items() if key != "recorded_by"}
