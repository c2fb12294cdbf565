"""Statements from the database: valid calls of the month at the ramp price, a holiday worked at
3×, supervisor lines, versioning (issued never changes), deemed confirmation, late interest,
and the seat lease with counted and not-counted outages."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from campaign_builders import make_campaign, make_client, make_list
from sqlmodel import Session

from campaigns.models import AttemptStatus, CallAttempt, OutcomeClass
from core.audit import Actor
from reports.availability import OutageIn, record_health, record_outage
from reports.billing import AvailabilityMode
from reports.exceptions import StatementLocked, StatementTransition
from reports.models import AdjustmentKind, ContractKind, StatementStatus
from reports.render import render
from reports.statements import (
    AdjustmentIn,
    ContractIn,
    SeatLeaseIn,
    add_adjustment,
    add_seat_lease,
    confirm_statement,
    correct_statement,
    deem_confirmations,
    dispute_statement,
    generate_statement,
    issue_statement,
    pay_statement,
    set_contract,
    statement_document,
)

SH = ZoneInfo("Asia/Shanghai")
ME = Actor(name="test")


def _valid_calls(session: Session, client_id: uuid.UUID, days: dict[date, int]) -> uuid.UUID:
    """A campaign with ``n`` valid calls on each given day (plus one 15.0 s call, not valid)."""
    total = sum(days.values()) + 1
    lead_list, leads = make_list(session, client_id, count=total)
    campaign = make_campaign(session, client_id, [lead_list.id])
    it = iter(leads)
    for day, n in days.items():
        for i in range(n + (1 if day == min(days) else 0)):
            lead = next(it)
            at = datetime(day.year, day.month, day.day, 10, 0, tzinfo=SH) + timedelta(seconds=i)
            session.add(
                CallAttempt(
                    client_id=client_id,
                    campaign_id=campaign.id,
                    lead_id=lead.id,
                    attempt_no=1,
                    idempotency_key=f"s{lead.id}",
                    status=AttemptStatus.finished,
                    number_dialed=lead.phone_e164,
                    dialed_at=at,
                    answered_at=at,
                    agent_connected_at=at,
                    outcome=OutcomeClass.contact,
                    talk_s=15.0 if i == n else 30.0,
                )
            )
    session.flush()
    return campaign.id


@pytest.mark.postgres
def test_service_statement_with_a_holiday_and_its_versions(session: Session) -> None:
    client_id = make_client(session, "Svc")
    # October 2026: 1 Oct is a statutory holiday; 3 valid calls on it, 10 on 9 Oct
    campaign_id = _valid_calls(session, client_id, {date(2026, 10, 9): 10, date(2026, 10, 1): 3})
    set_contract(
        session=session,
        campaign_id=campaign_id,
        contract_in=ContractIn(starts_on=date(2026, 9, 20), agents=25),
    )
    add_adjustment(
        session=session,
        adjustment_in=AdjustmentIn(
            campaign_id=campaign_id,
            month=date(2026, 10, 1),
            kind=AdjustmentKind.penalty,
            amount="2.00",
            reason="QA",
        ),
        actor=ME,
    )
    stmt = generate_statement(
        session=session,
        client_id=client_id,
        contract=ContractKind.service,
        month=date(2026, 10, 17),
        campaign_id=campaign_id,
        actor=ME,
    )
    lines = {line["key"]: line for line in stmt.lines}
    assert stmt.calculation["ramp_month"] == 2  # September was month 1
    assert lines["valid_calls"]["quantity"] == "10"
    assert lines["valid_calls"]["amount"] == "14.90"
    assert lines["holiday_valid_calls"]["quantity"] == "3"
    assert lines["holiday_valid_calls"]["unit_price"] == "4.47"
    assert lines["holiday_valid_calls"]["amount"] == "13.41"
    assert lines["penalty"]["amount"] == "-2.00"
    assert stmt.net_fen == 2631
    assert stmt.vat_fen == 158  # 26.31 × 6 % = 1.5786
    assert stmt.total_fen == 2789
    assert "2026-10-01" in stmt.calculation["holidays_worked"]
    assert stmt.issue_by == date(2026, 11, 5)
    assert stmt.due_on == date(2026, 11, 20)

    issued_at = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    issue_statement(session=session, statement=stmt, actor=ME, now=issued_at)
    assert stmt.confirm_by == date(2026, 11, 10)  # 5 working days after Tue 3 Nov
    # an issued statement never changes: not its lines, not a regenerate
    nested = session.begin_nested()
    stmt.total_fen = 1
    with pytest.raises(StatementLocked):
        session.flush()
    nested.rollback()
    session.refresh(stmt)
    assert stmt.total_fen == 2789
    with pytest.raises(StatementLocked), session.begin_nested():
        generate_statement(
            session=session,
            client_id=client_id,
            contract=ContractKind.service,
            month=date(2026, 10, 1),
            campaign_id=campaign_id,
            actor=ME,
        )
    dispute_statement(
        session=session, statement=stmt, reason="count", actor=ME, now=issued_at + timedelta(days=1)
    )
    v2 = correct_statement(session=session, statement=stmt, actor=ME)
    assert v2.version == 2
    assert v2.status is StatementStatus.draft
    assert v2.supersedes_id == stmt.id
    issue_statement(session=session, statement=v2, actor=ME, now=issued_at + timedelta(days=2))
    assert stmt.status is StatementStatus.superseded
    assert stmt.total_fen == 2789  # the old version is kept as it was
    # nobody answered in 5 working days: deemed confirmed; paid 10 days late: interest
    deemed = deem_confirmations(session, now=datetime(2026, 11, 13, 1, 0, tzinfo=UTC))
    assert [s.id for s in deemed] == [v2.id]
    assert v2.deemed_confirmed
    pay_statement(session=session, statement=v2, paid_on=date(2026, 11, 30), actor=ME)
    assert v2.late_interest_fen == 14  # 27.89 × 0.05 % × 10 days = 0.139
    assert v2.paid_fen == 2789 + 14
    with pytest.raises(StatementTransition):
        confirm_statement(session=session, statement=v2, actor=ME)
    page = render(statement_document(session, v2, language="zh-Hant"), "html").decode()
    assert "對帳單" in page
    assert "27.89" in page


@pytest.mark.postgres
def test_seat_lease_statement_applies_the_availability_tier(session: Session) -> None:
    client_id = make_client(session, "Lease")
    add_seat_lease(
        session=session,
        client_id=client_id,
        lease_in=SeatLeaseIn(
            seat_kind="inbound", seats=10, monthly_fee="600", active_from=date(2026, 1, 1)
        ),
    )
    start = datetime(2026, 11, 10, 0, 0, tzinfo=SH)
    # counted: 1 000 min by hand + 512 min pacer down (health check), overlapping by 100 min
    record_outage(
        session=session,
        outage_in=OutageIn(started_at=start, ended_at=start + timedelta(minutes=1000)),
        actor=ME,
    )
    pacer_down = start + timedelta(minutes=900)
    record_health(session=session, component="pacer:x", healthy=False, now=pacer_down)
    record_health(
        session=session,
        component="pacer:x",
        healthy=True,
        now=pacer_down + timedelta(minutes=612),
    )
    # not counted: announced maintenance, a carrier fault, another client's outage
    later = start + timedelta(days=5)
    record_outage(
        session=session,
        outage_in=OutageIn(
            started_at=later,
            ended_at=later + timedelta(hours=6),
            planned=True,
            announced_at=later - timedelta(days=2),
        ),
        actor=ME,
    )
    record_outage(
        session=session,
        outage_in=OutageIn(
            started_at=later, ended_at=later + timedelta(hours=9), external=True, cause="carrier"
        ),
        actor=ME,
    )
    other = make_client(session, "Other")
    record_outage(
        session=session,
        outage_in=OutageIn(started_at=later, ended_at=later + timedelta(days=9), client_id=other),
        actor=ME,
    )
    stmt = generate_statement(
        session=session,
        client_id=client_id,
        contract=ContractKind.seat_lease,
        month=date(2026, 11, 1),
        actor=ME,
    )
    assert stmt.calculation["outage_minutes"] == "1512.00"
    assert stmt.calculation["availability_percent"] == "96.5000"
    assert stmt.subtotal_fen == 600_000
    assert stmt.deduction_fen == 6_000  # whole points: 1 % off
    assert stmt.net_fen == 594_000
    assert stmt.vat_fen == 35_640
    pro = generate_statement(
        session=session,
        client_id=client_id,
        contract=ContractKind.seat_lease,
        month=date(2026, 11, 1),
        actor=ME,
        availability_mode=AvailabilityMode.pro_rata,
    )
    assert pro.id == stmt.id  # still the draft, recomputed
    assert pro.deduction_fen == 9_000  # 1.5 % off
    assert pro.calculation["rule"].endswith("(pro rata)")
    assert stmt.late_interest_per_day == "0.003"
