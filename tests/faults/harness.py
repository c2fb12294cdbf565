"""Fault-test harness: loopback proxies in front of PostgreSQL and Redis, a real
`pilotdial worker` pointed at them, and the audit of a campaign's attempts afterwards.

The test process itself talks to the services directly (its checks must not suffer the
outage); only the code under test goes through the proxies. Like every test on real services,
these skip locally when PostgreSQL or Redis is missing and fail the run under ``CI=true``
(``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faults.proxy import TcpProxy
from redis import Redis
from sqlalchemy.engine import make_url

from helpers import wait_until as wait_for  # noqa: F401  (the fault tests import it from here)

ROOT = Path(__file__).resolve().parents[2]
#: The simulated-agent pacing every dialing scenario uses (as the supervisor tests do).
SPEED = 60.0
#: Every fault test: real services, and one xdist worker for them all (each spawns processes
#: and cuts proxies of its own; two at once would only slow each other down).
MARKS = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.xdist_group("faults")]


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[TcpProxy]:
    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    from redis.connection import parse_url

    parts = parse_url(redis_url)
    proxy = TcpProxy(str(parts.get("host", "127.0.0.1")), int(parts.get("port", 6379))).start()
    yield proxy
    proxy.stop()


def via(proxy: TcpProxy, url: str) -> str:
    """``url`` (PostgreSQL or Redis) with its host and port replaced by the proxy's."""
    if url.startswith("redis"):
        scheme, rest = url.split("://", 1)
        path = rest.split("/", 1)[1] if "/" in rest else "0"
        return f"{scheme}://{proxy.url_netloc}/{path}"
    return (
        make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )


class Worker:
    """A real `pilotdial worker` (forking RQ worker and its pacer supervisor) in a process."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from core.cli import main; main()", "worker"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the teardown ends the supervisor too
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """spawn_worker(database_url=..., redis_url=...): a worker on those (proxied) URLs."""
    workers: list[Worker] = []

    def _spawn(*, database_url: str, redis_url: str, name: str = "worker") -> Worker:
        env = dict(os.environ)
        env.update(
            PILOTDIAL_DATABASE_URL=database_url,
            PILOTDIAL_REDIS_URL=redis_url,
            PILOTDIAL_LOG_LEVEL="INFO",
        )
        worker = Worker(tmp_path / f"{name}.log", env)
        workers.append(worker)
        return worker

    yield _spawn
    for worker in workers:
        worker.stop()


# --------------------------------------------------------------------------- campaigns


def dialing_campaign(leads: int = 400) -> tuple[uuid.UUID, uuid.UUID]:
    """A piloting progressive campaign with a batch of ``leads``; (client id, campaign id)."""
    from campaign_builders import make_campaign, make_list

    from campaigns.models import BatchCreate, CampaignStatus
    from campaigns.service import create_batch, transition_campaign
    from core.admin import create_client
    from core.db import system_session, tenant_session

    with system_session() as session:
        client_id = create_client(session=session, name=f"Faults {uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, leads)
        campaign = make_campaign(session, client_id, [lead_list.id], pacing_mode="progressive")
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return client_id, campaign.id


def journal_key(campaign_id: uuid.UUID) -> str:
    return f"pilotdial:originates:{campaign_id}"


def pacer_runs(campaign_id: uuid.UUID) -> list[Any]:
    from sqlmodel import col, select

    from core.db import system_session
    from core.models import JobRecord

    with system_session() as session:
        runs = session.exec(
            select(JobRecord).where(JobRecord.kind == "pacer").order_by(col(JobRecord.created_at))
        ).all()
    return [r for r in runs if r.params.get("campaign_id") == str(campaign_id)]


def runs_over(campaign_id: uuid.UUID) -> bool:
    from core.models import JobStatus

    return all(
        r.status not in (JobStatus.queued, JobStatus.running) for r in pacer_runs(campaign_id)
    )


# --------------------------------------------------------------------------- the audit


@dataclass
class Audit:
    """What the attempts table and the originate journal say after a fault."""

    attempts: int = 0
    journal: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    #: the same originate journaled twice, (lead, attempt_no) or a lease token dialed twice
    duplicates: list[str] = field(default_factory=list)
    #: a number dialed while an earlier call to it was still going on (wall-clock estimate)
    concurrent_same_number: list[str] = field(default_factory=list)
    #: journaled originates without their attempt row
    lost: list[str] = field(default_factory=list)
    #: attempts still `started`
    left_started: list[str] = field(default_factory=list)

    def figures(self) -> str:
        return (
            f"attempts={self.attempts} journal={self.journal} statuses={self.statuses} "
            f"duplicates={len(self.duplicates)} concurrent_same_number="
            f"{len(self.concurrent_same_number)} lost={len(self.lost)} "
            f"left_started={len(self.left_started)}"
        )

    def assert_clean(self) -> None:
        assert not self.duplicates, self.duplicates[:5]
        assert not self.concurrent_same_number, self.concurrent_same_number[:5]
        assert not self.lost, self.lost[:5]
        assert not self.left_started, self.left_started[:5]


def audit_attempts(redis: Redis[bytes], campaign_id: uuid.UUID, *, speed: float = SPEED) -> Audit:
    """0 duplicates, 0 lost, none left `started`: measured, for the test to assert."""
    from sqlmodel import select

    from campaigns.models import AttemptStatus, CallAttempt
    from core.db import system_session

    with system_session() as session:
        attempts = list(
            session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        )
    journal = [v.decode() for v in redis.lrange(journal_key(campaign_id), 0, -1)]
    audit = Audit(attempts=len(attempts), journal=len(journal))
    audit.statuses = dict(Counter(a.status.value for a in attempts))
    audit.duplicates += [f"journal {k} x{n}" for k, n in Counter(journal).items() if n > 1]
    by_try = Counter((a.lead_id, a.attempt_no) for a in attempts)
    audit.duplicates += [f"lead {k[0]} attempt {k[1]} x{n}" for k, n in by_try.items() if n > 1]
    by_lease = Counter(a.lease_token for a in attempts if a.lease_token is not None)
    audit.duplicates += [f"lease {k} x{n}" for k, n in by_lease.items() if n > 1]
    ids = {str(a.id) for a in attempts}
    audit.lost = [entry for entry in journal if entry not in ids]
    audit.left_started = [str(a.id) for a in attempts if a.status is AttemptStatus.started]
    # created_at is the wall clock at the dial; a call lasts (ended - dialed) / speed of wall
    # time. A call whose end is unknown is taken to last its whole lease (300 s simulated).
    by_number: dict[str, list[CallAttempt]] = defaultdict(list)
    for attempt in attempts:
        by_number[attempt.number_dialed].append(attempt)
    for number, calls in by_number.items():
        calls.sort(key=lambda a: a.created_at)
        for earlier, later in itertools.pairwise(calls):
            if earlier.ended_at is not None and earlier.dialed_at is not None:
                lasted = (earlier.ended_at - earlier.dialed_at).total_seconds() / speed
            else:
                lasted = 300.0 / speed
            if (later.created_at - earlier.created_at).total_seconds() < lasted:
                audit.concurrent_same_number.append(f"{number}: {earlier.id} and {later.id}")
    return audit
