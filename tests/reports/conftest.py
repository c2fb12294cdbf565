"""Builders for the reports tests: a generated month of calls and agent state logs.

The month is November 2026 for a client in America/New_York (DST ends on Sunday 1 November at
02:00, so 01:00–02:00 happens twice) and a campaign that dials 22:00–02:00 local every night,
across midnight. Nights run from 31 October to 1 December so both month ends are crossed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from campaign_builders import make_campaign, make_client, make_list
from sqlmodel import Session

from campaigns.models import AttemptStatus, CallAttempt, OutcomeClass
from dialer.agents import AgentAction, AgentState
from dialer.models import AgentSeat, AgentStateLog
from reports.models import ReportProfile

TZ_NAME = "America/New_York"
TZ = ZoneInfo(TZ_NAME)
AGENTS = ("A01", "A02", "A03")
REGIONS = ("Beijing", "Shanghai", "Guangdong")
CARRIERS = ("China Mobile", "China Unicom", "China Telecom")


@dataclass
class Month:
    client_id: uuid.UUID
    campaign_id: uuid.UUID
    numbers: list[str]


def _local(day: date, hh: int, mm: int, fold: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=TZ).replace(fold=fold).astimezone(UTC)


def _log(
    session: Session, seat: AgentSeat, seq: int, at: datetime, to: AgentState, reason: str | None
) -> None:
    session.add(
        AgentStateLog(
            agent_seat_id=seat.id,
            seq=seq,
            from_state=AgentState.SIGNED_OUT,
            to_state=to,
            action=AgentAction.GO_NOT_READY if to is AgentState.NOT_READY else AgentAction.GO_READY,
            reason=reason,
            at=at,
        )
    )


def build_month(session: Session, seed: int = 3) -> Month:
    rng = random.Random(seed)
    client_id = make_client(session, "Nightly")
    session.add(ReportProfile(client_id=client_id, timezone=TZ_NAME, language="en"))
    nights = [date(2026, 10, 31) + timedelta(days=i) for i in range(32)]
    per_night = 14
    _list, leads = make_list(session, client_id, count=len(nights) * per_night)
    for i, lead in enumerate(leads):
        lead.phone_region_desc = REGIONS[i % 3]
        lead.phone_carrier = CARRIERS[rng.randrange(3)]
        lead.phone_type = "mobile" if i % 4 else "fixed_line"
        lead.virtual_operator = i % 7 == 0
        session.add(lead)
    campaign = make_campaign(session, client_id, [_list.id], skill_group="night")
    lead_iter = iter(leads)
    for night in nights:
        for _ in range(per_night):
            lead = next(lead_iter)
            # 22:00 to 01:59 local; on the DST night half the 01:xx calls are in the second 01:00
            minute = rng.randrange(240)
            day = night if minute < 120 else night + timedelta(days=1)
            hh, mm = (22 + minute // 60) % 24, minute % 60
            fold = rng.randrange(2) if (day == date(2026, 11, 1) and hh == 1) else 0
            dialed = _local(day, hh, mm, fold) + timedelta(seconds=rng.randrange(60))
            answered = dialed + timedelta(seconds=8) if rng.random() < 0.6 else None
            connected = None
            talk = wrap = None
            abandoned = False
            outcome = OutcomeClass.no_answer
            if answered is not None:
                roll = rng.random()
                if roll < 0.1:
                    outcome = OutcomeClass.machine
                elif roll < 0.18:
                    outcome, abandoned = OutcomeClass.abandoned, True
                else:
                    outcome = OutcomeClass.contact
                    connected = answered + timedelta(seconds=rng.choice((0.5, 1.0, 2.5)))
                    talk = rng.choice((5.0, 15.0, 15.1, 42.0, 90.5, 180.0))
                    wrap = rng.choice((None, 10.0, 25.0))
            session.add(
                CallAttempt(
                    client_id=client_id,
                    campaign_id=campaign.id,
                    lead_id=lead.id,
                    attempt_no=rng.randrange(1, 5),
                    idempotency_key=f"k{lead.id}",
                    status=AttemptStatus.finished,
                    number_dialed=lead.phone_e164,
                    caller_id="+862155550000",
                    agent_id=None if connected is None else rng.choice(AGENTS),
                    skill_group="night",
                    dialed_at=dialed,
                    answered_at=answered,
                    agent_connected_at=connected,
                    ended_at=dialed + timedelta(seconds=60),
                    outcome=outcome,
                    disposition=outcome.value,
                    talk_s=talk,
                    wrap_s=wrap,
                    abandoned=abandoned,
                    converted=connected is not None and rng.random() < 0.2,
                    recording_ref=None if connected is None else f"rec/{lead.id}.wav",
                )
            )
    for code in AGENTS:
        seat = AgentSeat(
            agent_code=code,
            name=code,
            skill_groups=["night"],
            client_ids=[str(client_id)],
        )
        session.add(seat)
        session.flush()
        seq = 0
        for night in nights:
            steps = [
                (_local(night, 21, 55), AgentState.SIGNED_IN, None),
                (_local(night, 21, 56), AgentState.READY, None),
                (_local(night, 22, 30), AgentState.ON_CALL, None),
                (_local(night, 22, 41), AgentState.WRAP_UP, None),
                (_local(night, 22, 43), AgentState.READY, None),
                (_local(night, 23, 30), AgentState.NOT_READY, "break"),
                (_local(night, 23, 45), AgentState.READY, None),
                (_local(night + timedelta(days=1), 0, 50), AgentState.NOT_READY, "training"),
                (_local(night + timedelta(days=1), 1, 20), AgentState.READY, None),
                (_local(night + timedelta(days=1), 2, 5), AgentState.SIGNED_OUT, None),
            ]
            for at, state, reason in steps:
                seq += 1
                _log(session, seat, seq, at, state, reason)
    session.flush()
    return Month(
        client_id=client_id, campaign_id=campaign.id, numbers=[lead.phone_e164 for lead in leads]
    )


@pytest.fixture(scope="module")
def month_db(pg_url: str) -> Iterator[tuple[Session, Month]]:
    """One generated month per test module, in a transaction rolled back at the end."""
    from core import db as core_db

    engine = core_db.get_engine(pg_url)
    connection = engine.connect()
    trans = connection.begin()
    sess = Session(bind=connection, join_transaction_mode="create_savepoint")
    yield sess, build_month(sess)
    sess.close()
    trans.rollback()
    connection.close()


@pytest.fixture
def month(month_db: tuple[Session, Month]) -> Month:
    return month_db[1]
