"""The simulated-agents pacer keeps failure causes' meaning too, on real PostgreSQL: the
same mapping as the live loop (:func:`dialer.dialing.failure_disposition`), and a refusing
trunk stops the run with a reason the operator can act on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from campaign_builders import make_campaign, make_list
from sqlmodel import select

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
from dialer.leadership import LocalLeadership, PacerHealth
from dialer.live import live_snapshot
from dialer.pacer import PacerConfig, PacerResult, run_pacer


@pytest.fixture
def live(pg_url: str, pg_engine: Any, configure: Callable[..., None]) -> None:
    configure(database_url=pg_url)


def _campaign(leads: int) -> tuple[uuid.UUID, uuid.UUID]:
    with system_session() as session:
        client_id = create_client(session=session, name=f"f{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(
            session, client_id, numbers=[f"+86137{i:08d}" for i in range(leads)]
        )
        campaign = make_campaign(
            session, client_id, [lead_list.id], max_attempts=3, pacing_mode="progressive"
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return client_id, campaign.id


def _run(client_id: uuid.UUID, campaign_id: uuid.UUID, causes: dict[str, float]) -> PacerResult:
    return run_pacer(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, f"t-{uuid.uuid4().hex[:6]}"),
        clock_start=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        config=PacerConfig(
            agents=2,
            duration_s=600,
            answer_probability=0.0,
            machine_probability=0.0,
            failure_probability=0.95,
            failure_causes=causes,
            seed=3,
        ),
    )


def _attempts(client_id: uuid.UUID, campaign_id: uuid.UUID) -> list[CallAttempt]:
    with tenant_session([client_id]) as session:
        return list(session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)))


def test_invalid_numbers_are_closed_and_declines_retried(live: None) -> None:
    client_id, campaign_id = _campaign(leads=40)
    result = _run(client_id, campaign_id, {"invalid_number": 1.0, "declined": 1.0})
    attempts = _attempts(client_id, campaign_id)
    assert result.dials == len(attempts) > 10
    assert all(a.status is AttemptStatus.finished for a in attempts)
    by_code: dict[str | None, int] = {}
    for attempt in attempts:
        by_code[attempt.disposition] = by_code.get(attempt.disposition, 0) + 1
    assert set(by_code) <= {"invalid_number", "declined", "busy"}
    assert by_code.get("invalid_number", 0) > 0
    assert by_code.get("declined", 0) > 0
    with tenant_session([client_id]) as session:
        leads = {
            lead.lead_id: lead
            for lead in session.exec(
                select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
            )
        }
    for attempt in attempts:
        lead = leads[attempt.lead_id]
        if attempt.disposition == "invalid_number":
            assert lead.state is LeadState.final
            assert lead.final_disposition == "invalid_number"
        elif attempt.disposition == "declined":
            assert lead.final_disposition is None
            assert lead.state is LeadState.scheduled


def test_a_refusing_trunk_stops_the_simulated_run_and_says_why(live: None) -> None:
    client_id, campaign_id = _campaign(leads=40)
    result = _run(client_id, campaign_id, {"trunk_refused": 1.0})
    assert result.stopped_because == (
        "trunk refused: SIP 403 Forbidden; check the trunk credentials"
    )
    attempts = _attempts(client_id, campaign_id)
    assert 1 <= len(attempts) <= 4  # the launches of the first seconds, nothing after
    assert all(a.status is AttemptStatus.finished for a in attempts)
    refused = [a for a in attempts if a.disposition != "busy"]
    assert refused
    assert {a.disposition for a in refused} == {"network_failure"}


def test_the_live_metrics_say_why_the_last_run_stopped(live: None) -> None:
    client_id, campaign_id = _campaign(leads=40)
    result = _run(client_id, campaign_id, {"trunk_refused": 1.0})
    now = datetime.now(UTC)
    with tenant_session([client_id]) as session:
        # the run's job record, as the run-control service writes it when the run ends,
        # beside an older run of this campaign and a newer one of another campaign
        for finished, campaign, reason in (
            (now - timedelta(hours=1), str(campaign_id), "paused by the operator"),
            (now, str(campaign_id), result.stopped_because),
            (now + timedelta(seconds=1), str(uuid.uuid4()), "out of leads"),
        ):
            session.add(
                JobRecord(
                    client_id=client_id,
                    kind="pacer",
                    handler="dialer.run_control:pace_stored",
                    params={"campaign_id": campaign},
                    status=JobStatus.succeeded,
                    result={"stopped_because": reason},
                    finished_at=finished,
                )
            )
    with tenant_session([client_id]) as session:
        snapshot = live_snapshot(
            session=session,
            client_id=client_id,
            campaign_id=campaign_id,
            now=now,
            health=lambda _: PacerHealth(None, None, None),
        )
    assert snapshot["pacer"]["stopped_because"] == (
        "trunk refused: SIP 403 Forbidden; check the trunk credentials"
    )
