"""Running and storing feasibility reports (database side; the maths is in ``report.py``)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlmodel import Session

from core.db import get_or_404, utcnow
from core.errors import InvalidInput
from core.files import iter_file, save_file
from core.jobs import JobContext, submit_job
from feasibility.client_quote import (
    LANGUAGES,
    ClientQuote,
    build_client_quote,
    render_client_quote_html,
)
from feasibility.exceptions import FeasibilityError
from feasibility.html import render_html
from feasibility.inputs import Costs, Targets
from feasibility.models import FeasibilityRun, RunStatus
from feasibility.report import FeasibilityReport, build_report

__all__ = ["create_run", "rerun", "run_feasibility_job"]


def _csv_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    frame = pd.DataFrame(list(records))
    return frame.to_csv(index=False).encode("utf-8")


def create_run(
    *,
    session: Session,
    client_id: uuid.UUID,
    attempts: Iterable[Mapping[str, Any]] | bytes,
    leads: Iterable[Mapping[str, Any]] | bytes,
    targets: dict[str, Any] | None = None,
    costs: dict[str, Any] | None = None,
    max_attempts: int | None = None,
    seed: int = 0,
    campaign_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    rerun_of: uuid.UUID | None = None,
) -> FeasibilityRun:
    """Store the inputs, commit, and queue the report job."""
    try:
        targets_model = Targets.model_validate(targets or {})
        costs_model = Costs.model_validate(costs or {})
    except ValueError as exc:
        raise InvalidInput(f"targets or costs are not valid: {exc}") from exc
    if max_attempts is not None and max_attempts < 1:
        raise InvalidInput("max_attempts must be at least 1")
    attempts_bytes = attempts if isinstance(attempts, bytes) else _csv_bytes(attempts)
    leads_bytes = leads if isinstance(leads, bytes) else _csv_bytes(leads)
    attempts_file = save_file(
        session,
        client_id=client_id,
        filename="attempts.csv",
        chunks=[attempts_bytes],
        content_type="text/csv",
    )
    leads_file = save_file(
        session,
        client_id=client_id,
        filename="leads.csv",
        chunks=[leads_bytes],
        content_type="text/csv",
    )
    run = FeasibilityRun(
        client_id=client_id,
        campaign_id=campaign_id,
        batch_id=batch_id,
        seed=seed,
        max_attempts=max_attempts,
        targets=targets_model.model_dump(mode="json"),
        costs=costs_model.model_dump(mode="json"),
        attempts_file_id=attempts_file.id,
        leads_file_id=leads_file.id,
        rerun_of=rerun_of,
    )
    session.add(run)
    session.flush()
    session.commit()  # the worker must see the run before the job starts
    job = submit_job(
        client_id=client_id,
        kind="feasibility",
        handler="feasibility.service:run_feasibility_job",
        params={"run_id": str(run.id)},
    )
    run.job_id = job.id
    session.add(run)
    session.flush()
    return run


def rerun(*, session: Session, run_id: uuid.UUID) -> FeasibilityRun:
    """Queue the same inputs, parameters and seed again (the result must be identical)."""
    old: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="feasibility report")
    if old.attempts_file_id is None or old.leads_file_id is None:
        raise InvalidInput("this report's input files were deleted; it cannot be re-run")
    attempts = b"".join(iter_file(session, old.attempts_file_id))
    leads = b"".join(iter_file(session, old.leads_file_id))
    return create_run(
        session=session,
        client_id=old.client_id,
        attempts=attempts,
        leads=leads,
        targets=old.targets,
        costs=old.costs,
        max_attempts=old.max_attempts,
        seed=old.seed,
        campaign_id=old.campaign_id,
        batch_id=old.batch_id,
        rerun_of=old.id,
    )


def run_feasibility_job(ctx: JobContext) -> dict[str, Any]:
    """Background job: fit the models, project, quote, render; store report and HTML."""
    run_id = uuid.UUID(ctx.params["run_id"])
    with ctx.session() as session:
        run: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="feasibility report")
        run.status = RunStatus.running
        session.add(run)
        if run.attempts_file_id is None or run.leads_file_id is None:
            raise InvalidInput("the report's input files were deleted; create a new report")
        attempts = pd.read_csv(
            io.BytesIO(b"".join(iter_file(session, run.attempts_file_id))), dtype={"lead_id": str}
        )
        leads = pd.read_csv(
            io.BytesIO(b"".join(iter_file(session, run.leads_file_id))), dtype={"lead_id": str}
        )
        params = (Targets.model_validate(run.targets), Costs.model_validate(run.costs))
        max_attempts, seed = run.max_attempts, run.seed
    ctx.progress(1, 3, unit="steps")
    try:
        report = build_report(
            attempts,
            leads,
            targets=params[0],
            costs=params[1],
            max_attempts=max_attempts,
            seed=seed,
        )
    except FeasibilityError as exc:
        with ctx.session() as session:
            failed: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="report")
            failed.status = RunStatus.failed
            failed.error = str(exc)
            failed.finished_at = utcnow()
            session.add(failed)
        raise InvalidInput(str(exc)) from exc
    ctx.progress(2, 3, unit="steps")
    html = render_html(report).encode("utf-8")
    with ctx.session() as session:
        done: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="report")
        stored = save_file(
            session,
            client_id=done.client_id,
            filename=f"feasibility-{run_id}.html",
            chunks=[html],
            content_type="text/html; charset=utf-8",
        )
        done.html_file_id = stored.id
        done.report = report.model_dump(mode="json")
        done.verdict = report.verdict.value
        done.status = RunStatus.ready
        done.finished_at = utcnow()
        session.add(done)
    return {"run_id": str(run_id), "verdict": report.verdict.value, "reasons": report.reasons}


def client_quote_for_run(
    *, session: Session, run_id: uuid.UUID, language: str
) -> tuple[ClientQuote, str]:
    """The client quote of a ready report and its HTML; the quote number derives from the run."""
    from core.errors import Conflict
    from core.models import Client

    run: FeasibilityRun = get_or_404(session, FeasibilityRun, run_id, what="feasibility report")
    if run.report is None or run.status is not RunStatus.ready:
        raise Conflict(f"the report is {run.status.value}; a quote exists once it is ready")
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    client = session.get(Client, run.client_id)
    report = FeasibilityReport.model_validate(run.report)
    issued = (run.finished_at or run.created_at).date()
    quote = build_client_quote(
        report,
        client_name=client.name if client is not None else "",
        quote_number=f"PD-{issued:%Y%m%d}-{run.id.hex[:6].upper()}",
        issue_date=issued,
        language=language,
    )
    return quote, render_client_quote_html(quote)
