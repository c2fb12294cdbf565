"""An agentless survey campaign dialed by the live pacer: IVR interviews land in the surveys
tables, and every answered call's attempt carries the interview's disposition."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from survey_builders import sample_document

ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def test_pacer_runs_ivr_interviews_into_the_survey_tables(
    pg_url: str, pg_engine: Any, configure: Any
) -> None:
    from campaigns.models import (
        AttemptStatus,
        BatchCreate,
        CallAttempt,
        CampaignCreate,
        CampaignStatus,
        Lead,
        LeadList,
        ListStatus,
    )
    from campaigns.service import create_batch, create_campaign, transition_campaign
    from core.admin import create_client
    from core.db import system_session, tenant_session
    from dialer.leadership import LocalLeadership
    from dialer.pacer import PacerConfig, run_pacer
    from surveys.models import Interview
    from surveys.service import create_questionnaire, parse_document, publish_version

    configure(database_url=pg_url)
    with system_session() as session:
        client_id = create_client(session=session, name="IVR").id
    with tenant_session([client_id]) as session:
        version = create_questionnaire(
            session=session,
            client_id=client_id,
            document=parse_document(sample_document(id=f"ivr_{uuid.uuid4().hex[:6]}")),
        )
        publish_version(session=session, version_id=version.id)
        lead_list = LeadList(
            client_id=client_id, name="l", filename="l.csv", status=ListStatus.ready
        )
        session.add(lead_list)
        session.flush()
        for i in range(60):
            session.add(
                Lead(
                    client_id=client_id,
                    list_id=lead_list.id,
                    row_number=i + 2,
                    phone_e164=f"+86139{i:08d}",
                    phone_type="mobile",
                    phone_region="CN",
                    phone_timezones=["Asia/Shanghai"],
                    attributes={
                        "customer_name": f"客戶{i}",
                        "region": ("north", "south", "east", "west")[i % 4],
                        "product": "智慧電表",
                    },
                )
            )
        session.flush()
        campaign = create_campaign(
            session=session,
            client_id=client_id,
            campaign_in=CampaignCreate(
                name="ivr survey",
                kind="survey",
                questionnaire_version_id=version.id,
                list_ids=[lead_list.id],
                calling_windows=ALL_DAY,
                pacing_mode="agentless",
                max_attempts=2,
            ),
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=60, seed=4))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        campaign_id = campaign.id

    result = run_pacer(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, "test"),
        clock_start=datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
        config=PacerConfig(agents=6, duration_s=3 * 3600, answer_probability=0.5, seed=5),
    )
    assert result.dials > 0
    assert result.interviews_not_stored == 0
    assert result.interviews_stored > 0

    with tenant_session([client_id]) as session:
        interviews = session.exec(select(Interview)).all()
        assert len(interviews) == result.interviews_stored
        statuses = {i.status.value for i in interviews}
        assert statuses & {"completed", "not_eligible", "broken_off"}
        attempt_ids = {str(a.id) for a in session.exec(select(CallAttempt)).all()}
        # each interview belongs to one of the campaign's call attempts
        assert {i.call_id for i in interviews} <= attempt_ids
        open_attempts = session.exec(
            select(func.count())
            .select_from(CallAttempt)
            .where(CallAttempt.status == AttemptStatus.started)
        ).one()
        assert open_attempts == 0
        completes = session.exec(
            select(func.count())
            .select_from(CallAttempt)
            .where(CallAttempt.disposition == "complete")
        ).one()
        assert completes == sum(1 for i in interviews if i.status.value == "completed")
