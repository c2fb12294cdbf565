"""Benchmark: how long one live-metrics snapshot takes on a big campaign, against baselines.

Builds a campaign on a fresh PostgreSQL database (dropped afterwards): ``--leads`` leads,
``--attempts`` call attempts spread over the last 30 days (some today, a few in flight with
their agents' pops), ``--agents`` agent seats in every state. Then times, in the same run:

- ``count(*)`` of the campaign's attempts: the cheapest query that touches them all (baseline);
- the campaign's attempts grouped by status: a report-style aggregate over the same rows;
- :func:`dialer.live.live_snapshot` (every figure of ``GET /campaigns/{id}/live``).

Each is the median of ``--repeat`` runs after one warm-up; the snapshot's ratio to the count
is what to watch (a stream refreshes at most 4 times a second, so a snapshot well under
100 ms keeps one stream's database load small). Last, ``--viewers`` streams of one campaign
woken ``--wakeups`` times: snapshots computed and time per wake-up, each viewer computing its
own (before) against the streams' shared cache (after). Run:
``python benchmarks/live_metrics.py [--database-url postgresql://postgres@127.0.0.1/postgres]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from scratch_db import ADMIN_URL, scratch_database

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _median_ms(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm-up: plans, caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _populate(url: str, *, leads: int, attempts: int, agents: int, seed: int) -> tuple[Any, Any]:
    from campaigns.models import (
        AmdResult,
        AttemptStatus,
        Batch,
        BatchKind,
        CallAttempt,
        Campaign,
        CampaignLead,
        Lead,
        LeadList,
        LeadState,
        ListStatus,
        OutcomeClass,
        SamplingMethod,
    )
    from core.admin import create_client
    from core.db import get_engine, system_session
    from dialer.agents import AgentState
    from dialer.models import AgentEvent, AgentEventKind, AgentSeat

    rng = random.Random(seed)
    now = datetime.now(UTC)
    engine = get_engine(url)
    with system_session(engine) as session:
        client_id = create_client(session=session, name="bench", slug=f"bench-{seed}").id
        lead_list = LeadList(
            client_id=client_id, name="l", filename="l.csv", status=ListStatus.ready
        )
        campaign = Campaign(
            client_id=client_id,
            name="bench",
            skill_group="sales",
            status="running",
            calling_windows={day: [["00:00", "24:00"]] for day in WEEK},
        )
        session.add_all([lead_list, campaign])
        session.flush()
        batch = Batch(
            client_id=client_id,
            campaign_id=campaign.id,
            kind=BatchKind.full,
            sampling=SamplingMethod.all,
            size=leads,
        )
        session.add(batch)
        session.flush()
        ids = {
            "client": client_id,
            "list": lead_list.id,
            "campaign": campaign.id,
            "batch": batch.id,
        }

    lead_ids = [uuid.uuid4() for _ in range(leads)]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Lead.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": lead_id,
                    "client_id": ids["client"],
                    "list_id": ids["list"],
                    "row_number": i + 2,
                    "phone_e164": f"+86138{i:08d}",
                    "phone_timezones": ["Asia/Shanghai"],
                    "attributes": {},
                    "created_at": now,
                }
                for i, lead_id in enumerate(lead_ids)
            ],
        )
        states = [LeadState.new, LeadState.scheduled, LeadState.final]
        conn.execute(
            sa.insert(CampaignLead.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": uuid.uuid4(),
                    "client_id": ids["client"],
                    "campaign_id": ids["campaign"],
                    "lead_id": lead_id,
                    "batch_id": ids["batch"],
                    "phone_e164": f"+86138{i:08d}",
                    "zones_key": "Asia/Shanghai",
                    "state": rng.choice(states).value,
                    "attempts": 2,
                    "disposition_counts": {},
                    "callback_at": now + timedelta(hours=rng.choice([-1, 1]))
                    if i % 50 == 0
                    else None,
                    "next_attempt_at": now - timedelta(minutes=rng.randint(-600, 600)),
                    "created_at": now,
                    "updated_at": now,
                }
                for i, lead_id in enumerate(lead_ids)
            ],
        )
        per_lead: dict[uuid.UUID, int] = {}
        rows = []
        in_flight: list[uuid.UUID] = []
        for i in range(attempts):
            lead_id = lead_ids[i % leads]
            per_lead[lead_id] = per_lead.get(lead_id, 0) + 1
            started = i >= attempts - agents // 2  # the newest few are in flight
            dialed = now - timedelta(seconds=0 if started else rng.uniform(0, 30 * 86400))
            answered = rng.random() < 0.35
            human = answered and rng.random() < 0.85
            connected = human and rng.random() < 0.97
            attempt_id = uuid.uuid4()
            if started:
                in_flight.append(attempt_id)
            rows.append(
                {
                    "id": attempt_id,
                    "client_id": ids["client"],
                    "campaign_id": ids["campaign"],
                    "lead_id": lead_id,
                    "batch_id": ids["batch"],
                    "attempt_no": per_lead[lead_id],
                    "idempotency_key": f"k{i}",
                    "status": (AttemptStatus.started if started else AttemptStatus.finished).value,
                    "source": "dialer",
                    "number_dialed": "+8613800000000",
                    "dialed_at": dialed,
                    "answered_at": None if started or not answered else dialed,
                    "agent_connected_at": None if started or not connected else dialed,
                    "ended_at": None if started else dialed + timedelta(seconds=90),
                    "outcome": None
                    if started
                    else (OutcomeClass.contact if connected else OutcomeClass.no_answer).value,
                    "talk_s": None if started or not connected else rng.uniform(0, 300),
                    "abandoned": human and not connected and not started,
                    "converted": False,
                    "amd_result": None
                    if started
                    else (AmdResult.human if human else AmdResult.not_used).value,
                    "created_at": dialed,
                }
            )
        for start in range(0, len(rows), 10_000):
            conn.execute(
                sa.insert(CallAttempt.__table__),  # type: ignore[attr-defined]
                rows[start : start + 10_000],
            )
    agent_states = list(AgentState)
    with system_session(engine) as session:
        seats = []
        for i in range(agents):
            seat = AgentSeat(
                agent_code=f"B{i:04d}",
                name=f"agent {i}",
                skill_groups=["sales"],
                client_ids=[str(ids["client"])],
                state=agent_states[i % len(agent_states)],
                state_since=now - timedelta(seconds=rng.uniform(0, 3600)),
            )
            seats.append(seat)
        session.add_all(seats)
        session.flush()
        for n, attempt_id in enumerate(in_flight[: len(in_flight) // 2]):
            session.add(
                AgentEvent(
                    client_id=ids["client"],
                    agent_seat_id=seats[n].id,
                    seq=1,
                    kind=AgentEventKind.CALL_CONNECTED,
                    call_id=attempt_id.hex,
                    attempt_id=attempt_id,
                    payload={},
                )
            )
    # as autovacuum would leave it (VACUUM cannot run in a transaction)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return engine, ids


def _part_timings(engine: Any, ids: dict[str, Any], repeat: int) -> dict[str, float]:
    """Each group of the snapshot's queries on its own (where the time goes)."""
    from campaigns.models import Campaign
    from core.db import tenant_session
    from dialer import live

    now = datetime.now(UTC)
    out = {}
    with tenant_session([ids["client"]], engine) as session:
        campaign = session.get(Campaign, ids["campaign"])
        assert campaign is not None
        zone, valid_s = live._profile(session, ids["client"])
        day = live._local_day(now, zone)
        parts: dict[str, Callable[[], Any]] = {
            "calls in flight": lambda: live._calls(session, campaign.id),
            "agents": lambda: live._agents(session, campaign, now, with_list=True),
            "abandon window + today": lambda: live._abandon(session, campaign, now, day),
            "today": lambda: live._today(session, campaign.id, day, valid_s),
            "hopper": lambda: live._hopper(session, campaign.id, now),
        }
        for label, run in parts.items():
            out[label] = _median_ms(run, repeat)
    return out


def main() -> None:
    """Build the campaign, time the snapshot and the baselines, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=ADMIN_URL, help="an admin PostgreSQL URL")
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--wakeups", type=int, default=5)
    args = parser.parse_args()

    with scratch_database(args.database_url) as url:
        os.environ["PILOTDIAL_DATABASE_URL"] = url
        os.environ.pop("PILOTDIAL_REDIS_URL", None)  # the pacer's health from this process
        from core.db import dispose_engines, tenant_session
        from core.migrate import upgrade
        from dialer.live import live_snapshot

        upgrade(url)
        started = time.perf_counter()
        engine, ids = _populate(
            url, leads=args.leads, attempts=args.attempts, agents=args.agents, seed=args.seed
        )
        print(
            f"built {args.leads:,} leads, {args.attempts:,} attempts, {args.agents} agents "
            f"in {time.perf_counter() - started:.1f} s"
        )
        campaign = {"c": str(ids["campaign"])}

        def count() -> None:
            with engine.connect() as conn:
                conn.execute(
                    sa.text("select count(*) from callattempt where campaign_id = :c"), campaign
                ).scalar_one()

        def by_status() -> None:
            with engine.connect() as conn:
                conn.execute(
                    sa.text(
                        "select status, count(*), count(answered_at), sum(talk_s) "
                        "from callattempt where campaign_id = :c group by status"
                    ),
                    campaign,
                ).all()

        snap: dict[str, Any] = {}

        def snapshot() -> None:
            with tenant_session([ids["client"]], engine) as session:
                snap.update(
                    live_snapshot(
                        session=session,
                        client_id=ids["client"],
                        campaign_id=ids["campaign"],
                        now=datetime.now(UTC),
                    )
                )

        parts = _part_timings(engine, ids, args.repeat)
        base = _median_ms(count, args.repeat)
        group = _median_ms(by_status, args.repeat)
        live = _median_ms(snapshot, args.repeat)
        print(f"{'query':<34}{'median ms':>10}{'x count':>9}")
        for label, value in (
            ("count(*) of the attempts", base),
            ("attempts grouped by status", group),
            ("live_snapshot (all figures)", live),
        ):
            print(f"{label:<34}{value:>10.1f}{value / base:>9.1f}")
        for label, value in parts.items():
            print(f"  of which {label:<25}{value:>10.1f}{value / base:>9.1f}")
        print(
            f"snapshot: {snap['today']['attempts']:,} attempts today, "
            f"{snap['calls']['in_flight']} in flight, {snap['abandon']['answered']:,} live "
            f"answers in the window, {snap['hopper']['callable_now']:,} callable, "
            f"{len(snap['agents']['list'])} agents listed"
        )
        _viewers_figure(snapshot, viewers=args.viewers, wakeups=args.wakeups)
        dispose_engines()


def _viewers_figure(snapshot: Callable[[], None], *, viewers: int, wakeups: int) -> None:
    """Snapshots computed per second with ``viewers`` streams of one campaign, each woken
    ``wakeups`` times: every viewer computing its own (before) against the streams' shared
    cache (:class:`api.routes.live.SharedSnapshots`), threads as the streams' readers."""
    from concurrent.futures import ThreadPoolExecutor

    from api.routes.live import SharedSnapshots
    from core.settings import STREAM_READERS

    computed = [0]

    def compute() -> bytes:
        computed[0] += 1
        snapshot()
        return b""

    def run(shared: SharedSnapshots | None) -> tuple[int, float]:
        computed[0] = 0
        started = time.perf_counter()
        with ThreadPoolExecutor(STREAM_READERS) as pool:
            for _ in range(wakeups):
                woken_at = time.monotonic()
                reads = [
                    pool.submit(
                        compute if shared is None else shared.get,
                        *(() if shared is None else ((uuid.UUID(int=1), False), woken_at, compute)),
                    )
                    for _ in range(viewers)
                ]
                for read in reads:
                    read.result()
        return computed[0], time.perf_counter() - started

    for label, shared in (("each viewer its own", None), ("shared per wake-up", SharedSnapshots())):
        count, seconds = run(shared)
        print(
            f"{viewers} viewers x {wakeups} wake-ups, {label:<20}: {count} snapshots, "
            f"{count / seconds:.1f} snapshots/s, {seconds / wakeups * 1000:.0f} ms per wake-up"
        )


if __name__ == "__main__":
    main()
