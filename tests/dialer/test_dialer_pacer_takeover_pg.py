"""The simulated-agent pacer's dialing day, measured from when it holds the lease.

A killed pacer's replacement (no double dials, no lost attempts, redials only after the dead
pacer's lease) is tested through run control's supervisors in
``test_dialer_run_supervisor_pg.py``; the RQ pacer jobs that test once drove are gone.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

SPEED = 60.0  # simulated seconds per wall-clock second
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


def test_the_live_panel_shows_a_running_pacers_simulated_agents(
    pg_url: str, pg_engine: Any, configure: Any
) -> None:
    """A run with simulated agents has no seats: the live metrics show the agents it reports
    with its heartbeat while it leads, and the seats (none) once it has let go."""
    import threading

    from core.admin import create_client
    from core.db import system_session, tenant_session
    from dialer.leadership import LocalLeadership
    from dialer.live import live_snapshot
    from dialer.pacer import PacerConfig, run_pacer

    configure(database_url=pg_url)
    with system_session() as session:
        client_id = create_client(session=session, name="Panel").id
    campaign_id = _campaign(client_id, leads=300)
    leadership = LocalLeadership(campaign_id, "panel")
    config = PacerConfig(agents=5, duration_s=12 * SPEED, speed=SPEED, seed=2)
    runner = threading.Thread(
        target=run_pacer,
        kwargs={
            "client_id": client_id,
            "campaign_id": campaign_id,
            "leadership": leadership,
            "clock_start": datetime.now(UTC),
            "config": config,
        },
    )

    def panel() -> dict[str, Any]:
        with tenant_session([client_id]) as session:
            snapshot = live_snapshot(
                session=session,
                client_id=client_id,
                campaign_id=campaign_id,
                now=datetime.now(UTC),
                health=LocalLeadership.health,
            )
        agents: dict[str, Any] = snapshot["agents"]
        return agents

    assert panel()["simulated"] is False
    runner.start()
    seen: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and runner.is_alive():
            agents = panel()
            if agents["simulated"]:
                seen.append(agents)
                if agents["talking"] > 0 and len(seen) >= 3:
                    break
            time.sleep(0.3)
    finally:
        runner.join(timeout=60)
    assert seen, "the running pacer's agents never reached the live panel"
    for agents in seen:
        buckets = ("ready", "talking", "wrap_up", "not_ready", "signed_out")
        assert sum(agents[b] for b in buckets) == 5
        assert agents["list"] == []
    assert any(a["talking"] > 0 for a in seen)
    assert not runner.is_alive()
    after = panel()
    assert after["simulated"] is False  # the run let go: back to the seats
    assert after["ready"] == after["talking"] == 0
