"""A campaign dialing on a real `pilotdial worker` while Redis or PostgreSQL goes away.

Each test puts a loopback proxy between the worker and the service, cuts it (every live
connection reset, new ones refused) while the worker's pacer dials, restores it, then stops
the campaign and audits the attempts table against the originate journal: no originate
journaled twice, no lead attempt or lease dialed twice, no number dialed while an earlier call
to it was still going on, no journaled originate without its attempt row, none left `started`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from faults.harness import (
    MARKS,
    SPEED,
    Worker,
    audit_attempts,
    dialing_campaign,
    journal_key,
    pacer_runs,
    runs_over,
    via,
    wait_for,
)
from faults.proxy import TcpProxy
from redis import Redis

pytestmark = MARKS


def _start(client_id: Any, campaign_id: Any) -> None:
    from dialer.run_control import PacerSettings, start_dialing

    start_dialing(
        client_id=client_id,
        campaign_id=campaign_id,
        settings=PacerSettings(agents=3, speed=SPEED, answer_probability=0.4, seed=3),
    )


def _stop_and_audit(
    redis: Redis[bytes], client_id: Any, campaign_id: Any, worker: Worker, label: str
) -> Any:
    from dialer.run_control import control_campaign

    control_campaign(client_id=client_id, campaign_id=campaign_id, action="stop")
    wait_for(lambda: runs_over(campaign_id), "every pacer run to end", 60)
    audit = audit_attempts(redis, campaign_id)
    runs = [
        (r.status.value, (r.result or {}).get("stopped_because"), r.error)
        for r in pacer_runs(campaign_id)
    ]
    print(f"\n[{label}] {audit.figures()} runs={runs}")
    assert worker.proc.poll() is None, f"the worker exited:\n{worker.log()[-3000:]}"
    return audit


def test_a_redis_cut_while_dialing_resumes_when_redis_returns(
    pg_url: str,
    pg_engine: Any,
    redis_url: str,
    redis_proxy: TcpProxy,
    configure: Any,
    spawn_worker: Callable[..., Worker],
) -> None:
    """First a 2 s Redis blip (the lease lives 6 s, renewed every 2 s): the pacer keeps its
    lease and its run, and dials on. Then a 12 s outage: the pacer loses its lease and
    finishes its calls; when Redis is back the worker (still running) adopts the campaign
    again and dials on."""
    from core.models import JobStatus
    from dialer.leadership import pacer_key

    configure(database_url=pg_url, redis_url=redis_url)
    client_id, campaign_id = dialing_campaign()
    _start(client_id, campaign_id)
    redis = Redis.from_url(redis_url)
    worker = spawn_worker(database_url=pg_url, redis_url=via(redis_proxy, redis_url))
    wait_for(lambda: redis.llen(journal_key(campaign_id)) >= 6, "the worker's pacer to dial")
    holder = redis.get(pacer_key(campaign_id))
    assert holder is not None
    with redis_proxy.outage(2.0):
        pass
    dials_after_blip = redis.llen(journal_key(campaign_id))
    wait_for(lambda: redis.llen(journal_key(campaign_id)) > dials_after_blip + 3, "dialing on")
    assert redis.get(pacer_key(campaign_id)) == holder  # the blip was ridden out
    assert [r.status for r in pacer_runs(campaign_id)] == [JobStatus.running]
    with redis_proxy.outage(12.0):
        time.sleep(1.0)
    restored = time.monotonic()
    dials_at_restore = redis.llen(journal_key(campaign_id))
    adopted_s = wait_for(
        lambda: redis.get(pacer_key(campaign_id)) is not None, "a pacer to lead again", 30
    )
    assert adopted_s <= 10.0, f"took {adopted_s:.1f} s after Redis returned to lead again"
    wait_for(
        lambda: redis.llen(journal_key(campaign_id)) > dials_at_restore + 3,
        "dialing to resume",
        30,
    )
    print(f"\n[redis cut] led again {time.monotonic() - restored:.1f} s after Redis returned")
    audit = _stop_and_audit(redis, client_id, campaign_id, worker, "redis blip 2 s, cut 12 s")
    first, *_ = pacer_runs(campaign_id)
    assert first.result is not None
    assert first.result["stopped_because"] == "leadership lost"  # by the cut, not the blip
    audit.assert_clean()


def test_a_postgres_cut_while_dialing_loses_and_repeats_nothing(
    pg_url: str,
    pg_engine: Any,
    redis_url: str,
    pg_proxy: TcpProxy,
    configure: Any,
    spawn_worker: Callable[..., Worker],
) -> None:
    """A 5 s PostgreSQL outage: the pacer rides it out or ends its run and is re-adopted;
    dialing resumes and the audit is clean."""
    configure(database_url=pg_url, redis_url=redis_url)
    client_id, campaign_id = dialing_campaign()
    _start(client_id, campaign_id)
    redis = Redis.from_url(redis_url)
    worker = spawn_worker(database_url=via(pg_proxy, pg_url), redis_url=redis_url)
    wait_for(lambda: redis.llen(journal_key(campaign_id)) >= 6, "the worker's pacer to dial")
    with pg_proxy.outage(5.0):
        time.sleep(1.0)
    dials_at_restore = redis.llen(journal_key(campaign_id))
    resumed_s = wait_for(
        lambda: redis.llen(journal_key(campaign_id)) > dials_at_restore + 3,
        "dialing to resume after PostgreSQL returned",
        30,
    )
    print(f"\n[pg cut] dialing resumed {resumed_s:.1f} s after PostgreSQL returned")
    audit = _stop_and_audit(redis, client_id, campaign_id, worker, "postgres cut 5 s")
    audit.assert_clean()
