"""The pacer supervisors of `pilotdial worker`, on real PostgreSQL and Redis: a dialing campaign
is adopted by a live worker, and when that worker is killed another adopts it within 10 s,
marks the dead run failed, and dials on with the stored settings; nothing is dialed twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from campaign_builders import make_campaign, make_list
from redis import Redis
from sqlmodel import col, select

from helpers import SUPERVISOR
from helpers import wait_until as _wait


def test_a_live_worker_adopts_a_campaign_whose_pacer_died(
    pg_url: str, pg_engine: Any, redis_url: str, configure: Any, tmp_path: Path
) -> None:
    from campaigns.models import (
        AttemptStatus,
        BatchCreate,
        CallAttempt,
        Campaign,
        CampaignStatus,
    )
    from campaigns.service import create_batch, transition_campaign
    from core.admin import create_client
    from core.db import system_session, tenant_session
    from core.models import JobRecord, JobStatus
    from dialer.leadership import pacer_key
    from dialer.run_control import PacerSettings, control_campaign, start_dialing

    configure(database_url=pg_url, redis_url=redis_url)
    with system_session() as session:
        client_id = create_client(session=session, name="Adopt").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, 400)
        campaign = make_campaign(session, client_id, [lead_list.id], pacing_mode="progressive")
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=400, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        campaign_id = campaign.id
    first = start_dialing(
        client_id=client_id,
        campaign_id=campaign_id,
        settings=PacerSettings(agents=3, speed=60, answer_probability=0.4, seed=3),
    )
    assert first.status is JobStatus.queued  # with Redis, a worker's supervisor takes it

    redis = Redis.from_url(redis_url)
    journal_key = f"pilotdial:originates:{campaign_id}"
    env = dict(os.environ.items())
    logs = [(tmp_path / f"{name}.log").open("wb") for name in ("a", "b")]
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(log: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        procs.append(proc)
        return proc

    def job(job_id: uuid.UUID) -> JobRecord:
        with system_session() as session:
            record = session.get(JobRecord, job_id)
            assert record is not None
            return record

    try:
        worker_a = spawn(logs[0])
        _wait(lambda: job(first.id).status is JobStatus.running, "a worker to take the run")
        _wait(lambda: redis.llen(journal_key) >= 6, "the adopted campaign to dial")
        holder_a = redis.get(pacer_key(campaign_id))
        assert holder_a is not None
        spawn(logs[1])  # a standby
        b_log = tmp_path / "b.log"
        _wait(lambda: b"looks for campaigns" in b_log.read_bytes(), "the standby to start")
        assert redis.get(pacer_key(campaign_id)) == holder_a  # it does not take A's campaign
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(timeout=10)
        dials_at_kill = redis.llen(journal_key)
        adopted_s = _wait(
            lambda: redis.get(pacer_key(campaign_id)) not in (None, holder_a),
            "the standby to adopt the campaign",
            30,
        )
        assert adopted_s <= 10.0, f"took {adopted_s:.1f} s to adopt the campaign"
        _wait(lambda: redis.llen(journal_key) > dials_at_kill + 3, "the new pacer to dial")
        dead = job(first.id)
        assert dead.status is JobStatus.failed
        assert dead.error is not None
        assert "adopted by" in dead.error
        with system_session() as session:
            runs = session.exec(
                select(JobRecord)
                .where(JobRecord.kind == "pacer", JobRecord.id != first.id)
                .order_by(col(JobRecord.created_at))
            ).all()
        # the adopting run; on a loaded machine a standby may lose the lease for a moment and
        # adopt again: each earlier run is then over, never two dialing at once
        assert runs
        second = runs[-1]
        earlier = [(r.status, r.error, r.result) for r in runs[:-1]]
        assert all(status is not JobStatus.running for status, _, _ in earlier), earlier
        assert second.params["settings"]["speed"] == 60  # the stored settings
        control_campaign(client_id=client_id, campaign_id=campaign_id, action="stop")
        _wait(lambda: job(second.id).status is JobStatus.succeeded, "the run to stop", 90)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for log in logs:
            log.close()
    result = job(second.id).result
    assert result is not None
    assert result["stopped_because"] == "stopped: the pilot is finished"
    assert result["orphans_found"] >= 1

    journal = [value.decode() for value in redis.lrange(journal_key, 0, -1)]
    assert len(journal) == len(set(journal))  # never dialed twice
    with system_session() as session:
        attempts = {
            str(a.id): a
            for a in session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        }
    assert set(journal) <= set(attempts)  # every originate has its attempt row
    by_b = [attempts[i] for i in journal[dials_at_kill:]]
    assert by_b
    assert all(a.status is AttemptStatus.finished and a.disposition for a in by_b)
    # per lead: attempts numbered without gaps and within the limit, across both pacers
    with system_session() as session:
        limit = session.get(Campaign, campaign_id).max_attempts  # type: ignore[union-attr]
    per_lead: dict[uuid.UUID, list[CallAttempt]] = {}
    for attempt in attempts.values():
        per_lead.setdefault(attempt.lead_id, []).append(attempt)
    for lead_attempts in per_lead.values():
        numbers = sorted(a.attempt_no for a in lead_attempts)
        assert numbers == list(range(1, len(lead_attempts) + 1))
        assert len(lead_attempts) <= limit


def test_sigterm_drains_a_workers_pacers(
    pg_url: str, pg_engine: Any, redis_url: str, configure: Any, tmp_path: Path
) -> None:
    """SIGTERM to a worker's pacer supervisor: its pacer stops dialing, every call in progress
    ends with its real outcome, the lease is released and the run says why it ended."""
    from campaigns.models import (
        AttemptStatus,
        BatchCreate,
        CallAttempt,
        CampaignLead,
        CampaignStatus,
        LeadState,
    )
    from campaigns.service import create_batch, transition_campaign
    from core.admin import create_client
    from core.db import system_session, tenant_session
    from core.models import JobRecord, JobStatus
    from dialer.leadership import pacer_key
    from dialer.run_control import DRAINED, PacerSettings, start_dialing

    configure(database_url=pg_url, redis_url=redis_url)
    with system_session() as session:
        client_id = create_client(session=session, name="Drain").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, 400)
        campaign = make_campaign(session, client_id, [lead_list.id], pacing_mode="progressive")
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=400, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        campaign_id = campaign.id
    run = start_dialing(
        client_id=client_id,
        campaign_id=campaign_id,
        settings=PacerSettings(agents=3, speed=60, answer_probability=0.4, seed=3),
    )
    redis = Redis.from_url(redis_url)
    journal_key = f"pilotdial:originates:{campaign_id}"

    def job() -> JobRecord:
        with system_session() as session:
            record = session.get(JobRecord, run.id)
            assert record is not None
            return record

    main = f"from dialer.run_control import _supervisor_main; _supervisor_main({os.getpid()})"
    with (tmp_path / "worker.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", main], stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(lambda: redis.llen(journal_key) >= 6, "the worker's pacer to dial")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    record = job()
    assert record.status is JobStatus.succeeded, record.error
    assert record.result is not None
    assert record.result["stopped_because"] == DRAINED
    assert redis.get(pacer_key(campaign_id)) is None  # the lease is free for another worker
    with tenant_session([client_id]) as session:
        attempts = session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        assert all(a.status is AttemptStatus.finished and a.disposition for a in attempts)
        leased = session.exec(
            select(CampaignLead).where(
                CampaignLead.campaign_id == campaign_id,
                col(CampaignLead.state) == LeadState.in_progress,
            )
        ).all()
        assert leased == []
