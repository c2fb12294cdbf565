"""The dial path through a PostgreSQL outage (cut at a loopback proxy): leasing and starting
dial nothing while the database is away, and a call's end is stored once it is back instead
of being lost or ending the run."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from faults.harness import MARKS, dialing_campaign, via
from faults.proxy import TcpProxy
from sqlmodel import select

pytestmark = MARKS


class _Counters:
    dials = completed = late_completions = suppressed_at_dial = 0


def test_a_calls_end_is_stored_after_a_database_outage(
    pg_url: str, pg_engine: Any, pg_proxy: TcpProxy, configure: Any
) -> None:
    from campaigns.hopper import AttemptOutcome
    from campaigns.models import AttemptStatus, CallAttempt
    from core.db import system_session
    from dialer.dialing import DialPath

    configure(database_url=pg_url)
    client_id, campaign_id = dialing_campaign(leads=4)
    configure(database_url=via(pg_proxy, pg_url), db_pool_timeout_s="1")
    counters = _Counters()
    path = DialPath(
        client_id=client_id,
        campaign_id=campaign_id,
        worker_id=f"w-{uuid.uuid4().hex[:6]}",
        lease_seconds=120,
        counters=counters,
    )
    now = datetime.now(UTC)
    [started] = path.start(path.lease(1, now), now)
    assert counters.dials == 1

    pg_proxy.cut()
    assert path.lease(2, now) == []  # the database is away: nothing leased, nothing raised
    restore = threading.Timer(2.0, pg_proxy.restore)
    restore.start()
    began = time.monotonic()
    outcome = AttemptOutcome(disposition="no_answer", ended_at=now + timedelta(seconds=20))
    assert path.complete(started.attempt_id, outcome, now + timedelta(seconds=21))
    restore.join()
    assert time.monotonic() - began >= 1.5  # it waited for the database, then stored the end
    assert counters.completed == 1
    assert started.attempt_id not in path.in_flight

    configure(database_url=pg_url)
    with system_session() as session:
        attempt = session.exec(
            select(CallAttempt).where(CallAttempt.id == started.attempt_id)
        ).one()
    assert attempt.status is AttemptStatus.finished
    assert attempt.disposition == "no_answer"
