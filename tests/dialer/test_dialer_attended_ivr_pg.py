"""An agentless survey campaign dialed by the live loop (no agents) on real PostgreSQL, in fake
time: a person's answer is interviewed by the IVR at once (prompts played, keys collected one
prompt at a time), the interview lands in the survey tables and the attempt carries the
disposition its end means; a callee who hangs up mid-interview is a partial."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import select
from survey_builders import agentless_campaign

from campaigns.models import AttemptStatus, CallAttempt
from core.db import tenant_session
from dialer.attended import AttendedConfig, LiveDialingUnavailable, run_attended
from dialer.distributions import Fixed
from dialer.leadership import LocalLeadership
from dialer.respondents import RespondentPrompt, RespondentReply
from dialer.simgateway import GatewayProfile, ProbabilitySchedule, SimulatedGateway

from helpers import FakeClock

pytestmark = pytest.mark.postgres


@pytest.fixture
def live(pg_url: str, pg_engine: Any, configure: Callable[..., None]) -> None:
    configure(database_url=pg_url)


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
