"""An agentless survey campaign dialed by the live loop (no agents) on real PostgreSQL, in fake
time: a person's answer is interviewed by the IVR at once (prompts played, keys collected one
prompt at a time), the interview lands in the survey tables and the attempt carries the
disposition its end means; a callee who hangs up mid-interview is a partial."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from campaigns.models import AttemptStatus, CallAttempt
from core.db import system_session, tenant_session
from dialer.attended import AttendedConfig, LiveDialingUnavailable, run_attended
from dialer.distributions import Fixed
from dialer.leadership import LocalLeadership
from dialer.respondents import RespondentPrompt, RespondentReply
from dialer.simgateway import GatewayProfile, ProbabilitySchedule, SimulatedGateway

pytestmark = pytest.mark.postgres

ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
TEA = {
    "title": {"zh-Hans": "饮茶调查"},
    "languages": ["zh-Hans"],
    "intro": {"zh-Hans": "您好，这是一个简短的调查。"},
    "completed_message": {"zh-Hans": "谢谢您，再见。"},
    "choice_lists": {
        "yn": [
            {"value": "yes", "label": {"zh-Hans": "是"}},
            {"value": "no", "label": {"zh-Hans": "否"}},
        ]
    },
    "questions": [
        {"name": "likes", "type": "single_choice", "choices": "yn", "required": True,
         "label": {"zh-Hans": "您喜欢喝茶吗？"}},
        {"name": "age", "type": "integer", "min": 0, "max": 120, "required": True,
         "label": {"zh-Hans": "请输入您的年龄，以井号键结束。"}},
    ],
}  # fmt: skip


@pytest.fixture
def live(pg_url: str, pg_engine: Any, configure: Callable[..., None]) -> None:
    configure(database_url=pg_url)


def agentless_campaign(numbers: list[str]) -> tuple[uuid.UUID, uuid.UUID]:
    from campaign_builders import make_campaign, make_list

    from campaigns.models import BatchCreate, CampaignStatus
    from campaigns.service import create_batch, transition_campaign
    from core.admin import create_client
    from surveys.service import create_questionnaire, parse_document, publish_version

    with system_session() as session:
        client_id = create_client(session=session, name=f"ivr{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        document = parse_document({"id": f"tea_{uuid.uuid4().hex[:6]}", **TEA})
        version = create_questionnaire(session=session, client_id=client_id, document=document)
        publish_version(session=session, version_id=version.id)
        lead_list, _ = make_list(session, client_id, numbers=numbers)
        campaign = make_campaign(
            session,
            client_id,
            [lead_list.id],
            name="agentless",
            kind="survey",
            questionnaire_version_id=version.id,
            pacing_mode="agentless",
            pacing_params={"lines": 2},
            caller_id="+862155550000",
            max_attempts=2,
        )
        create_batch(
            session=session, campaign=campaign, batch_in=BatchCreate(size=len(numbers), seed=1)
        )
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return client_id, campaign.id


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def respondent(breaks_off: str) -> Callable[[RespondentPrompt], RespondentReply]:
    """Likes tea (1), is 42 (4 2 #); the lead whose number ends ``breaks_off`` hangs up at
    the second question."""
    numbers: dict[str, str] = {}

    def reply(prompt: RespondentPrompt) -> RespondentReply:
        callee = numbers.setdefault(prompt.call_id, prompt.params.callee_number)
        if prompt.prompt_index == 1:
            return RespondentReply("1", 2.0)
        if callee.endswith(breaks_off):
            return RespondentReply(None, 1.0)
        return RespondentReply("42#", 3.0)

    return reply


def test_an_agentless_survey_is_interviewed_by_the_ivr_on_the_live_loop(live: None) -> None:
    from surveys.models import Interview

    numbers = ["+8613900000001", "+8613900000002", "+8613900000003"]
    client_id, campaign_id = agentless_campaign(numbers)
    profile = GatewayProfile(
        answer_probability=ProbabilitySchedule.constant(1.0),
        machine_probability=0.0,
        busy_probability=0.0,
        failure_probability=0.0,
        ring_time=Fixed(2.0),
        talk_time=Fixed(3600.0),
        message_time=Fixed(3.0),
        respondent=respondent(breaks_off="3"),
    )
    clock = FakeClock()

    result = run_attended(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, "ivr-test"),
        gateway=SimulatedGateway(profile, seed=3),
        config=AttendedConfig(duration_s=90),
        clock=clock,
        sleep=clock.sleep,
    )

    assert result.dials == 3
    assert result.interviews_stored == 3
    assert result.interviews_not_stored == 0
    assert result.abandoned == 0
    with tenant_session([client_id]) as session:
        attempts = {
            a.number_dialed: a
            for a in session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        }
        interviews = {i.call_id: i for i in session.exec(select(Interview))}
    assert sorted(attempts) == numbers
    assert all(a.status is AttemptStatus.finished for a in attempts.values())
    assert attempts[numbers[0]].disposition == "complete"
    assert attempts[numbers[1]].disposition == "complete"
    assert attempts[numbers[2]].disposition == "partial"  # hung up at the second question
    assert attempts[numbers[0]].hangup_cause == "system"  # the goodbye hung up
    assert attempts[numbers[2]].hangup_cause == "callee"
    done = interviews[str(attempts[numbers[0]].id)]
    assert done.status.value == "completed"
    answers = {name: stored["value"] for name, stored in done.state["answers"].items()}
    assert answers == {"likes": "yes", "age": 42}
    assert interviews[str(attempts[numbers[2]].id)].status.value == "broken_off"
    # two lines at most: the third lead was dialed once a line was free
    dialed = sorted(a.dialed_at for a in attempts.values())
    assert dialed[2] >= min(a.ended_at for a in attempts.values() if a.ended_at)


def test_an_agentless_campaign_needs_a_questionnaire(live: None) -> None:
    from campaigns.models import Campaign
    from dialer.attended import check_live_campaign

    client_id, campaign_id = agentless_campaign(["+8613900000009"])
    with tenant_session([client_id]) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert check_live_campaign(session=session, campaign=campaign) == []  # no agents needed
        campaign.questionnaire_version_id = None
        with pytest.raises(LiveDialingUnavailable, match="questionnaire"):
            check_live_campaign(session=session, campaign=campaign)
        session.rollback()
