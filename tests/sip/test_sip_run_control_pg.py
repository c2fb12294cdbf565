"""Run control dialing through the SIP gateway (setting ``gateway=sip``), on real PostgreSQL:
a live-agent pilot started with POST-equivalent ``start_dialing`` calls SIPp callees over the
trunk from the environment, the agent's phone (baresip) is called once by the loop, and every
attempt ends with the disposition its SIP answer means."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sip.sip_peers import (
    PILOT_NUMBERS,
    Baresip,
    StartSipp,
    agent_desk,
    rtp_range,
    sip_pilot,
    sip_settings,
    tone,
)
from sqlmodel import select

from campaigns.models import AttemptStatus, CallAttempt
from core.db import system_session, tenant_session
from core.models import JobRecord, JobStatus
from dialer.attended import AgentsMode
from dialer.run_control import PacerSettings, control_campaign, start_dialing

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def attempts_of(client_id: uuid.UUID, campaign_id: uuid.UUID) -> list[CallAttempt]:
    with tenant_session([client_id]) as session:
        return list(session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)))


def stop_and_wait(client_id: uuid.UUID, campaign_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """Stop the campaign and wait (up to 30 s) for its run to end; it must have succeeded."""
    control_campaign(client_id=client_id, campaign_id=campaign_id, action="stop")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with system_session() as session:
            record = session.get(JobRecord, run_id)
            assert record is not None
            if record.status in (JobStatus.succeeded, JobStatus.failed):
                break
        time.sleep(0.1)
    assert record.status is JobStatus.succeeded, record.error


def test_run_control_dials_a_pilot_through_the_sip_gateway(
    pg_url: str,
    pg_engine: Any,
    configure: Callable[..., None],
    sipp: StartSipp,
    baresip: Baresip,
    tmp_path: Path,
) -> None:
    peer = sipp("pilot.xml", calls=5)
    messages = tmp_path / "messages"
    messages.mkdir()
    tone(messages / "safe_harbour.wav", 440.0, 1.0)
    low, high = rtp_range()
    configure(
        database_url=pg_url,
        gateway="sip",
        sip_port="0",
        sip_rtp_port_min=str(low),
        sip_rtp_port_max=str(high),
        sip_messages_dir=str(messages),
        sip_trunk_host="127.0.0.1",
        sip_trunk_port=str(peer.port),
    )
    numbers = PILOT_NUMBERS
    client_id, campaign_id, seat_id = sip_pilot(baresip.address)

    run = start_dialing(
        client_id=client_id,
        campaign_id=campaign_id,
        settings=PacerSettings(agents_mode=AgentsMode.LIVE),
    )

    def attempts() -> list[CallAttempt]:
        return attempts_of(client_id, campaign_id)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the agent's desk: talk 3 s, then "sale"; wrap 0.5 s
        agent_desk(seat_id)
        done = attempts()
        if len(done) == 5 and all(a.status is AttemptStatus.finished for a in done):
            break
        time.sleep(0.1)
    stop_and_wait(client_id, campaign_id, run.id)
    by_number = {a.number_dialed: a for a in attempts()}
    assert sorted(by_number) == numbers  # each lead dialed once, no number twice
    assert by_number[numbers[0]].disposition == "sale"
    assert by_number[numbers[0]].agent_id == "S001"
    assert by_number[numbers[1]].disposition == "busy"
    assert by_number[numbers[2]].disposition == "invalid_number"  # SIP 404: final
    assert by_number[numbers[3]].disposition == "no_answer"
    assert by_number[numbers[4]].hangup_cause == "callee"
    assert peer.wait() == 0, peer.errors()
    assert baresip.invites() == 1  # the agent's phone rang once, when the run started


def test_an_agentless_survey_runs_over_the_sip_trunk_under_run_control(
    pg_url: str,
    pg_engine: Any,
    configure: Callable[..., None],
    sipp: StartSipp,
    tmp_path: Path,
) -> None:
    """An agentless survey started like any pacer (``agents_mode`` live, ``gateway=sip``): the
    SIPp callee answers and keys its answers (RFC 4733) to the questions the gateway speaks
    (espeak-ng), the interview is stored completed, the attempt is ``complete``."""
    from sip.sip_peers import need
    from survey_builders import agentless_campaign

    from surveys.models import Interview

    need("espeak-ng", "espeak-ng")
    peer = sipp("ivr_keys.xml", calls=1, echo=False, first_ms="1500", then_ms="2500")
    configure(database_url=pg_url, **sip_settings(peer, data_dir=str(tmp_path / "data")))
    client_id, campaign_id = agentless_campaign(["+8613900000001"], lines=1)

    run = start_dialing(
        client_id=client_id,
        campaign_id=campaign_id,
        settings=PacerSettings(agents_mode=AgentsMode.LIVE),
    )

    def attempts() -> list[CallAttempt]:
        return attempts_of(client_id, campaign_id)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = attempts()
        if done and all(a.status is AttemptStatus.finished for a in done):
            break
        time.sleep(0.2)
    stop_and_wait(client_id, campaign_id, run.id)
    [attempt] = attempts()
    assert attempt.disposition == "complete"
    assert attempt.hangup_cause == "system"  # the goodbye hung up
    with tenant_session([client_id]) as session:
        [interview] = session.exec(select(Interview)).all()
    assert interview.call_id == str(attempt.id)
    assert interview.status.value == "completed"
    answers = {name: stored["value"] for name, stored in interview.state["answers"].items()}
    assert answers == {"likes": "yes", "age": 42}
    assert peer.wait() == 0, peer.errors()  # SIPp saw our BYE after the goodbye
