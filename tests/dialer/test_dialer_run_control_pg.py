"""Run control as a service, on real PostgreSQL, embedded default (pacers in process).

A piloting or running campaign dials with its stored pacer settings until it is paused,
stopped or out of leads; pause, resume and stop work in both phases; every attempt in flight
at pause or stop ends with its real outcome; settings edited while dialing take effect on the
next run; and a pacer that dials on does not hold up a list-cleaning job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from campaign_builders import make_campaign, make_list, run_campaign
from sqlmodel import col, func, select

from campaigns.models import (
    AttemptStatus,
    BatchCreate,
    CallAttempt,
    CampaignLead,
    CampaignStatus,
    LeadState,
)
from campaigns.service import create_batch, transition_campaign
from core.admin import issue_key
from core.db import system_session, tenant_session
from core.models import JobRecord, JobStatus, Role

from helpers import Tenant, make_tenant

FAST = {"agents": 3, "speed": 120, "answer_probability": 0.5, "seed": 2}


@pytest.fixture
def op(app_factory: Callable[..., Any], pg_url: str, pg_engine: Any) -> Tenant:
    http = app_factory(pg_url)  # pg_engine: the tables are emptied after the test
    tenant = make_tenant(http, "runs")
    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="ops", role=Role.operator, client_refs=[str(tenant.client_id)]
        )
    return Tenant(client_id=tenant.client_id, key=plain, http=http)


def _campaign(op: Tenant, *, phase: str, leads: int = 300, **settings: Any) -> uuid.UUID:
    with tenant_session([op.client_id]) as session:
        lead_list, _ = make_list(session, op.client_id, leads)
        campaign = make_campaign(
            session, op.client_id, [lead_list.id], pacing_mode="progressive", **settings
        )
        if phase == "pilot":
            create_batch(
                session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=1)
            )
            transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        else:
            run_campaign(session, campaign, pilot_size=1)
        return campaign.id


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _attempts(op: Tenant, campaign_id: uuid.UUID) -> list[CallAttempt]:
    with tenant_session([op.client_id]) as session:
        rows = session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        return list(rows)


def _job(job_id: str) -> JobRecord:
    with system_session() as session:
        record = session.get(JobRecord, uuid.UUID(job_id))
        assert record is not None
        return record


def _finished(job_id: str) -> JobRecord | None:
    record = _job(job_id)
    return record if record.status in {JobStatus.succeeded, JobStatus.failed} else None


def _leased(op: Tenant, campaign_id: uuid.UUID) -> int:
    with tenant_session([op.client_id]) as session:
        return int(
            session.exec(
                select(func.count()).where(
                    CampaignLead.campaign_id == campaign_id,
                    col(CampaignLead.state) == LeadState.in_progress,
                )
            ).one()
        )


def _all_disposed(op: Tenant, campaign_id: uuid.UUID) -> None:
    attempts = _attempts(op, campaign_id)
    assert attempts
    open_ = [(a.status, a.disposition) for a in attempts if a.status is not AttemptStatus.finished]
    assert open_ == [], "attempts left without their outcome"
    assert all(a.disposition for a in attempts)


def _next_run(campaign_id: uuid.UUID, after: uuid.UUID) -> JobRecord | None:
    """The campaign's pacer run other than ``after`` (the one that ended), once it exists."""
    with system_session() as session:
        rows = session.exec(
            select(JobRecord).where(JobRecord.kind == "pacer", JobRecord.id != after)
        ).all()
    return next((r for r in rows if r.params["campaign_id"] == str(campaign_id)), None)


def _post(op: Tenant, path: str, **body: Any) -> Any:
    return op.http.post(path, json=body or None, headers=op.headers())


@pytest.mark.parametrize(
    ("phase", "paused", "stopped"),
    [("pilot", "pilot_paused", "pilot_done"), ("full", "paused", "completed")],
)
def test_pause_resume_stop_in_each_phase(op: Tenant, phase: str, paused: str, stopped: str) -> None:
    campaign_id = _campaign(op, phase=phase)
    started = _post(op, f"/campaigns/{campaign_id}/pacer", **FAST)
    assert started.status_code == 202, started.text
    first = started.json()["id"]
    try:
        _wait(lambda: len(_attempts(op, campaign_id)) >= 6, "the pacer to dial")
        # starting again while it dials returns the same run
        again = _post(op, f"/campaigns/{campaign_id}/pacer", **FAST)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == first

        response = _post(op, f"/campaigns/{campaign_id}/pause")
        assert response.status_code == 200, response.text
        assert response.json()["campaign"]["status"] == paused
        assert response.json()["run"] is None
        run = _wait(lambda: _finished(first), "the paused run to end")
        assert run.status is JobStatus.succeeded, run.error
        assert run.result is not None
        assert run.result["stopped_because"] == "paused by the operator"
        assert run.progress_unit == "seconds of dialing"
        assert run.progress_total is None  # not "28799/28799": a run has no fixed length
        _all_disposed(op, campaign_id)
        assert _leased(op, campaign_id) == 0
        dialed_while_running = len(_attempts(op, campaign_id))
        # a second pause is refused, naming what applies
        again = _post(op, f"/campaigns/{campaign_id}/pause")
        assert again.status_code == 409
        assert "cannot pause" in again.json()["detail"]

        response = _post(op, f"/campaigns/{campaign_id}/resume")
        assert response.status_code == 200, response.text
        dialing = "piloting" if phase == "pilot" else "running"
        assert response.json()["campaign"]["status"] == dialing
        second = response.json()["run"]["id"]
        assert second != first
        # resumed with the stored settings: nothing re-sent
        assert response.json()["run"]["params"]["settings"]["agents"] == FAST["agents"]
        assert response.json()["run"]["params"]["settings"]["speed"] == FAST["speed"]
        _wait(
            lambda: len(_attempts(op, campaign_id)) > dialed_while_running + 3,
            "the resumed campaign to dial again",
        )
    finally:
        response = _post(op, f"/campaigns/{campaign_id}/stop")
    assert response.status_code == 200, response.text
    assert response.json()["campaign"]["status"] == stopped
    run = _wait(lambda: _finished(second), "the stopped run to end")
    assert run.status is JobStatus.succeeded, run.error
    assert run.result is not None
    assert run.result["stopped_because"].startswith("stopped: ")
    _all_disposed(op, campaign_id)
    assert _leased(op, campaign_id) == 0  # stop released every lease
    assert _post(op, f"/campaigns/{campaign_id}/resume").status_code == 409


def test_settings_edited_while_dialing_take_effect(op: Tenant) -> None:
    campaign_id = _campaign(op, phase="pilot")
    first = _post(op, f"/campaigns/{campaign_id}/pacer", **FAST).json()["id"]
    try:
        _wait(lambda: len(_attempts(op, campaign_id)) >= 3, "the pacer to dial")
        bad = op.http.patch(
            f"/campaigns/{campaign_id}/pacer", json={"agents": 0}, headers=op.headers()
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["field"] == "agents"
        stored = op.http.get(f"/campaigns/{campaign_id}/pacer", headers=op.headers()).json()
        assert stored["settings"]["agents"] == FAST["agents"]  # nothing half stored

        edited = op.http.patch(
            f"/campaigns/{campaign_id}/pacer", json={"agents": 6}, headers=op.headers()
        )
        assert edited.status_code == 200, edited.text
        assert edited.json() == {
            "settings": {**edited.json()["settings"], "agents": 6},
            "active": True,
        }
        run = _wait(lambda: _finished(first), "the run to end on the change")
        assert run.result is not None
        assert run.result["stopped_because"] == "pacing settings changed"

        following = _wait(lambda: _next_run(campaign_id, run.id), "the next run")
        assert following.params["settings"]["agents"] == 6
        before = len(_attempts(op, campaign_id))
        _wait(lambda: len(_attempts(op, campaign_id)) > before, "the next run to dial")
    finally:
        assert _post(op, f"/campaigns/{campaign_id}/stop").status_code == 200
    _wait(lambda: _finished(str(following.id)), "the last run to end")
    _all_disposed(op, campaign_id)


def test_a_pacing_mode_change_while_dialing_starts_a_run_with_it(op: Tenant) -> None:
    """The campaign's own pacing fields (as the console's pacing form and PATCH /campaigns
    edit them) apply while it dials: the run ends on the change and the next one uses it."""
    campaign_id = _campaign(op, phase="pilot")
    first = _post(op, f"/campaigns/{campaign_id}/pacer", **FAST).json()["id"]
    following: JobRecord | None = None
    try:
        _wait(lambda: len(_attempts(op, campaign_id)) >= 3, "the pacer to dial")
        changed = op.http.patch(
            f"/campaigns/{campaign_id}",
            json={"pacing_mode": "power", "pacing_params": {"ratio": 1.5}},
            headers=op.headers(),
        )
        assert changed.status_code == 200, changed.text
        run = _wait(lambda: _finished(first), "the run to end on the change")
        assert run.result is not None
        assert run.result["stopped_because"] == "pacing settings changed"

        following = _wait(lambda: _next_run(campaign_id, run.id), "the next run")
        before = len(_attempts(op, campaign_id))
        _wait(lambda: len(_attempts(op, campaign_id)) > before, "the next run to dial")
    finally:
        assert _post(op, f"/campaigns/{campaign_id}/stop").status_code == 200
    assert following is not None
    _wait(lambda: _finished(str(following.id)), "the last run to end")
    _all_disposed(op, campaign_id)


def test_a_run_ends_when_the_campaign_is_out_of_leads(op: Tenant) -> None:
    campaign_id = _campaign(op, phase="full", leads=8, max_attempts=1)
    started = _post(op, f"/campaigns/{campaign_id}/pacer", agents=2, seed=4)  # as fast as it goes
    assert started.status_code == 202, started.text
    run = _wait(lambda: _finished(started.json()["id"]), "the run to end")
    assert run.status is JobStatus.succeeded, run.error
    assert run.result is not None
    assert run.result["stopped_because"] == "out of leads"
    _all_disposed(op, campaign_id)
    stored = op.http.get(f"/campaigns/{campaign_id}/pacer", headers=op.headers()).json()
    assert stored["active"] is False  # not restarted by itself
    response = op.http.get(f"/campaigns/{campaign_id}", headers=op.headers())
    assert response.json()["status"] == "running"  # the operator completes it


def test_a_dialing_pacer_does_not_delay_list_cleaning(op: Tenant) -> None:
    """Two open-ended pacers used to hold both threads of the embedded job pool."""
    campaigns = [_campaign(op, phase="pilot", name=f"c{i}") for i in range(2)]
    runs = []
    try:
        for campaign_id in campaigns:
            response = _post(op, f"/campaigns/{campaign_id}/pacer", agents=2, speed=30, seed=1)
            assert response.status_code == 202, response.text
            runs.append(response.json()["id"])
        _wait(lambda: all(_job(r).status is JobStatus.running for r in runs), "both pacers")
        upload = op.http.post(
            "/lists",
            headers=op.headers(),
            files={"file": ("l.csv", b"name,phone\na,13812345678\nb,13912345678\n", "text/csv")},
        )
        assert upload.status_code == 202, upload.text
        list_id = upload.json()["id"]

        def cleaned() -> bool:
            body = op.http.get(f"/lists/{list_id}", headers=op.headers()).json()
            return body["status"] in {"ready", "failed"}

        _wait(cleaned, "the list to be cleaned while the pacers dial", timeout_s=60)
        assert op.http.get(f"/lists/{list_id}", headers=op.headers()).json()["status"] == "ready"
        assert all(_job(r).status is JobStatus.running for r in runs)  # still dialing
    finally:
        for campaign_id in campaigns:
            _post(op, f"/campaigns/{campaign_id}/stop")
    for run_id in runs:
        _wait(lambda run_id=run_id: _finished(run_id), "the pacers to stop")


def test_shutdown_drains_and_a_restart_resumes_dialing(op: Tenant) -> None:
    """`pilotdial serve` on the embedded default: at shutdown its pacers finish their calls
    and end saying so; started again, the campaigns that were dialing dial again."""
    from dialer.run_control import DRAINED, drain_pacers, resume_embedded_pacers

    campaign_id = _campaign(op, phase="pilot")
    first = _post(op, f"/campaigns/{campaign_id}/pacer", **FAST).json()["id"]
    ours: list[uuid.UUID] = []
    try:
        _wait(lambda: len(_attempts(op, campaign_id)) >= 6, "the pacer to dial")
        assert drain_pacers(60.0) == 0
        run = _wait(lambda: _finished(first), "the drained run to end")
        assert run.status is JobStatus.succeeded, run.error
        assert run.result is not None
        assert run.result["stopped_because"] == DRAINED
        _all_disposed(op, campaign_id)  # calls in progress ended with their real outcome
        assert _leased(op, campaign_id) == 0
        drained = len(_attempts(op, campaign_id))
        time.sleep(1.0)
        assert len(_attempts(op, campaign_id)) == drained  # nothing dials until the restart

        # a run the stopped process left `running` (killed, not drained) is closed, saying so
        with system_session() as session:
            leftover = JobRecord(
                client_id=op.client_id,
                kind="pacer",
                handler="dialer.run_control:pace_stored",
                params={"campaign_id": str(campaign_id), "settings": {}},
                status=JobStatus.running,
            )
            session.add(leftover)
            session.flush()
            leftover_id = str(leftover.id)
        started = resume_embedded_pacers()
        ours = [
            job_id
            for job_id in started
            if _job(str(job_id)).params["campaign_id"] == str(campaign_id)
        ]
        assert len(ours) == 1
        closed = _job(leftover_id)
        assert closed.status is JobStatus.failed
        assert closed.error is not None
        assert "restarted" in closed.error
        resumed = _job(str(ours[0]))
        assert resumed.params["settings"]["agents"] == FAST["agents"]  # the stored settings
        _wait(lambda: len(_attempts(op, campaign_id)) > drained + 3, "dialing after the restart")
    finally:
        assert _post(op, f"/campaigns/{campaign_id}/stop").status_code == 200
    if ours:
        _wait(lambda: _finished(str(ours[0])), "the resumed run to stop")
    _all_disposed(op, campaign_id)


def test_a_bad_abandon_guard_or_risk_is_refused_naming_it(op: Tenant) -> None:
    campaign_id = _campaign(op, phase="pilot", leads=5)
    path = f"/campaigns/{campaign_id}/pacer"
    for change, field in [
        ({"abandon_guard": "reckless"}, "abandon_guard"),
        ({"abandon_guard": None}, "abandon_guard"),
        ({"abandon_risk": 0}, "abandon_risk"),
        ({"abandon_risk": 0.9}, "abandon_risk"),
        ({"abandon_risk": "often"}, "abandon_risk"),
        ({"abandon_guard": "statistical", "abandon_risk": -0.01}, "abandon_risk"),
    ]:
        bad = op.http.patch(path, json=change, headers=op.headers())
        assert bad.status_code == 422, (change, bad.text)
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["field"] == field, (change, bad.json())
        assert field in bad.json()["detail"]
    stored = op.http.get(path, headers=op.headers()).json()
    assert stored["settings"] is None  # nothing half stored

    good = op.http.patch(
        path, json={"abandon_guard": "statistical", "abandon_risk": 0.02}, headers=op.headers()
    )
    assert good.status_code == 200, good.text
    settings = op.http.get(path, headers=op.headers()).json()["settings"]
    assert (settings["abandon_guard"], settings["abandon_risk"]) == ("statistical", 0.02)
    assert op.http.get(path, headers=op.headers()).json()["active"] is False
