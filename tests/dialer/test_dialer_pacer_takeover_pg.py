"""The elected pacer on real PostgreSQL and Redis: a killed worker is replaced, nothing is
dialed twice and no attempt is lost.

Two real RQ worker processes (``SimpleWorker``, so SIGKILL really kills the pacer) each take a
pacer job for the same campaign. The first becomes the pacer and dials; the second waits for
the Redis lease. The first is killed mid-call; the second must take over within 10 s and
finish the day. The originate journal (written right before each originate) and the attempt
rows (written before the journal) are then checked against each other.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis
from sqlmodel import select

SPEED = 60.0  # simulated seconds per wall-clock second
LEASE_S = 300  # simulated seconds: a dead pacer's calls are released 5 wall seconds later
ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _campaign(client_id: uuid.UUID, leads: int) -> uuid.UUID:
    from campaigns.models import (
        BatchCreate,
        CampaignCreate,
        CampaignStatus,
        Lead,
        LeadList,
        ListStatus,
    )
    from campaigns.service import create_batch, create_campaign, transition_campaign
    from core.db import tenant_session

    with tenant_session([client_id]) as session:
        lead_list = LeadList(
            client_id=client_id, name="takeover", filename="t.csv", status=ListStatus.ready
        )
        session.add(lead_list)
        session.flush()
        for i in range(leads):
            session.add(
                Lead(
                    client_id=client_id,
                    list_id=lead_list.id,
                    row_number=i + 2,
                    phone_e164=f"+86138{i:08d}",
                    phone_type="mobile",
                    phone_region="CN",
                    phone_timezones=["Asia/Shanghai"],
                )
            )
        session.flush()
        campaign = create_campaign(
            session=session,
            client_id=client_id,
            campaign_in=CampaignCreate(
                name="takeover",
                list_ids=[lead_list.id],
                calling_windows=ALL_DAY,
                max_attempts=3,
                pacing_mode="predictive",
            ),
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return campaign.id


def _worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    code = (
        "from core.queue import run_worker; from core.settings import get_settings; "
        "from core.migrate import import_all_models; import_all_models(); "
        "run_worker(get_settings(), burst=True, simple=True)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _wait(predicate: Any, timeout_s: float, what: str | Any) -> float:
    """Wait for ``predicate``; ``what`` (or what it returns, when callable) names it."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout_s} s waiting for {what() if callable(what) else what}"
    )


def test_killed_pacer_is_replaced_without_double_dials_or_lost_attempts(
    pg_url: str, pg_engine: Any, redis_url: str, configure: Any, tmp_path: Path
) -> None:
    from campaigns.models import AttemptStatus, CallAttempt
    from core.admin import create_client
    from core.db import system_session
    from core.jobs import submit_job
    from core.models import JobRecord, JobStatus
    from dialer.leadership import pacer_key

    configure(database_url=pg_url, redis_url=redis_url)
    with system_session() as session:
        client_id = create_client(session=session, name="Takeover").id
    campaign_id = _campaign(client_id, leads=400)
    clock_start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    params = {
        "campaign_id": str(campaign_id),
        "config": {
            "agents": 4,
            # a day long enough for a loaded machine to reach the takeover
            "duration_s": 75 * SPEED,
            "answer_probability": 0.4,
            "speed": SPEED,
            "lease_seconds": LEASE_S,
            "seed": 3,
        },
        "clock_start": clock_start.isoformat(),
        "clock_wall_start": datetime.now(UTC).timestamp(),
        "acquire_timeout_s": 60,
    }
    first = submit_job(
        client_id=client_id, kind="pacer", handler="dialer.jobs:pace_campaign", params=params
    )
    second = submit_job(
        client_id=client_id, kind="pacer", handler="dialer.jobs:pace_campaign", params=params
    )

    env = dict(os.environ.items())
    redis = Redis.from_url(redis_url)
    journal_key = f"pilotdial:originates:{campaign_id}"
    log_a, log_b = (tmp_path / "a.log").open("wb"), (tmp_path / "b.log").open("wb")
    worker_a = _worker(env, log_a)
    worker_b: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: redis.llen(journal_key) >= 8, 60, "the first pacer to dial")
        holder_a = redis.get(pacer_key(campaign_id))
        assert holder_a is not None
        worker_b = _worker(env, log_b)
        # let B start and queue up behind the lease, then kill A mid-call
        _wait(lambda: _job_status(second.id) == JobStatus.running, 60, "the second pacer to start")
        time.sleep(1.0)
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(timeout=10)
        killed_at = time.monotonic()
        dials_at_kill = redis.llen(journal_key)
        takeover_s = _wait(
            lambda: redis.get(pacer_key(campaign_id)) not in (None, holder_a),
            15,
            lambda: f"another worker to take the pacer lease (second job: {_job_error(second.id)})",
        )
        assert takeover_s <= 10.0, f"took {takeover_s:.1f} s to replace the pacer"
        _wait(
            lambda: redis.llen(journal_key) > dials_at_kill,
            90,
            lambda: f"the new pacer to dial (second job: {_job_error(second.id)})",
        )
        assert worker_b.wait(timeout=240) == 0, (tmp_path / "b.log").read_text()[-2000:]
    finally:
        for proc in (worker_a, worker_b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        log_a.close()
        log_b.close()
    elapsed_after_kill = time.monotonic() - killed_at
    assert elapsed_after_kill > 0

    with system_session() as session:
        second_job = session.get(JobRecord, second.id)
        assert second_job is not None
        assert second_job.status is JobStatus.succeeded, second_job
        first_job = session.get(JobRecord, first.id)
        assert first_job is not None
        assert first_job.status is JobStatus.running
        attempts = session.exec(
            select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
        ).all()

    journal = [value.decode() for value in redis.lrange(journal_key, 0, -1)]
    # never double-dialed: each attempt originated once
    assert len(journal) == len(set(journal))
    # never lost: every originated call has its attempt row (written before originating)
    by_id = {str(a.id): a for a in attempts}
    assert set(journal) <= set(by_id)
    assert second_job.result is not None
    assert second_job.result["orphans_found"] >= 1, second_job.result

    per_lead: dict[uuid.UUID, list[CallAttempt]] = {}
    for attempt in attempts:
        per_lead.setdefault(attempt.lead_id, []).append(attempt)
    for lead_attempts in per_lead.values():
        lead_attempts.sort(key=lambda a: a.attempt_no)
        assert [a.attempt_no for a in lead_attempts] == list(range(1, len(lead_attempts) + 1))
        assert len(lead_attempts) <= 3
        for earlier, later in itertools.pairwise(lead_attempts):
            assert earlier.dialed_at is not None
            assert later.dialed_at is not None
            if earlier.status is AttemptStatus.finished:
                assert earlier.ended_at is not None
                assert earlier.ended_at <= later.dialed_at
            else:  # orphaned by the killed pacer: only redialed after its lease ran out
                assert later.dialed_at >= earlier.dialed_at + timedelta(seconds=LEASE_S)
    # the new pacer finished its own calls: nothing it started is left open
    b_started = [a for a in attempts if str(a.id) in journal[dials_at_kill:]]
    assert b_started
    unfinished = [
        (a.attempt_no, a.status, a.outcome, a.dialed_at, a.ended_at)
        for a in b_started
        if a.status is not AttemptStatus.finished
    ]
    assert not unfinished, (unfinished, second_job.result, (tmp_path / "b.log").read_text()[-3000:])


def _job_error(job_id: uuid.UUID) -> str:
    from core.db import system_session
    from core.models import JobRecord

    with system_session() as session:
        record = session.get(JobRecord, job_id)
        return "missing" if record is None else f"{record.status} {record.error} {record.result}"


def _job_status(job_id: uuid.UUID) -> Any:
    from core.db import system_session
    from core.models import JobRecord

    with system_session() as session:
        record = session.get(JobRecord, job_id)
        return record.status if record is not None else None


def test_a_pacer_that_gets_the_lease_after_the_day_is_over_ends_without_dialing(
    pg_url: str, pg_engine: Any, configure: Any
) -> None:
    """The day is measured from when the lease is held: a standby that gets it too late says
    so and lets go (before: the job failed with "scenario key 'duration_s' ... got 0.0")."""
    from campaigns.models import CallAttempt
    from core.admin import create_client
    from core.db import system_session
    from dialer.leadership import LocalLeadership
    from dialer.pacer import PacerConfig, run_pacer

    configure(database_url=pg_url)
    with system_session() as session:
        client_id = create_client(session=session, name="Late").id
    campaign_id = _campaign(client_id, leads=5)
    leadership = LocalLeadership(campaign_id, "late")
    result = run_pacer(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=leadership,
        clock_start=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        config=PacerConfig(agents=2, duration_s=40 * SPEED, speed=SPEED, seed=1),
        clock_wall_start=time.time() - 41.0,  # 41 wall seconds = 41 simulated minutes ago
    )
    assert result.stopped_because == "the dialing day is over"
    assert result.dials == 0
    assert leadership.current_holder() is None  # let go for the next day's pacer
    with system_session() as session:
        attempts = session.exec(
            select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
        ).all()
    assert attempts == []
