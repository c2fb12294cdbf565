"""Monthly statements (對帳單) as versioned documents.

Lifecycle: ``draft`` (recomputed on every regenerate) → ``issued`` (frozen: its content never
changes) → ``confirmed`` (by the client, or *deemed* confirmed 5 working days after issue) or
``disputed`` → ``paid``. A correction is a new draft version that supersedes the old one when
it is issued. Dates from the service contract 第九條2: issued by the 5th of the next month,
paid by the 20th; late interest per day 0.05 % (service) or 3 ‰ (seat lease).
"""

from __future__ import annotations

import calendar
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from campaigns.models import Campaign
from core.audit import Actor, record_audit
from core.db import get_or_404, utcnow
from core.models import Client
from reports.availability import outage_minutes_for
from reports.billing import (
    LATE_INTEREST,
    AvailabilityMode,
    Calculation,
    SeatInput,
    days_late,
    fen,
    late_interest,
    money,
    ramp_month,
    seat_lease_calculation,
    service_calculation,
    to_fen,
    unit_price_for,
)
from reports.data import Selection, load_calls
from reports.document import Column, ColumnKind, Document, Section
from reports.exceptions import ReportInputError, StatementLocked, StatementTransition
from reports.figures import is_valid
from reports.holiday_calendar import add_working_days, statutory_holidays
from reports.i18n import t
from reports.models import (
    AdjustmentKind,
    ContractKind,
    SeatLease,
    ServiceContract,
    Statement,
    StatementAdjustment,
    StatementStatus,
)
from reports.periods import local_midnight, month_start, next_month, zone
from reports.prices import ramp_prices
from reports.service import get_profile

__all__ = [
    "AdjustmentIn",
    "ContractIn",
    "SeatLeaseIn",
    "add_adjustment",
    "add_seat_lease",
    "confirm_statement",
    "correct_statement",
    "deem_confirmations",
    "dispute_statement",
    "generate_statement",
    "issue_statement",
    "list_statements",
    "pay_statement",
    "set_contract",
    "statement_document",
]

SEATS_SUBJECT = "seats"
_NEXT: dict[StatementStatus, tuple[StatementStatus, ...]] = {
    StatementStatus.draft: (StatementStatus.issued,),
    StatementStatus.issued: (
        StatementStatus.confirmed,
        StatementStatus.disputed,
        StatementStatus.superseded,
    ),
    StatementStatus.confirmed: (StatementStatus.paid, StatementStatus.superseded),
    StatementStatus.disputed: (StatementStatus.confirmed, StatementStatus.superseded),
    StatementStatus.paid: (),
    StatementStatus.superseded: (),
}


class ContractIn(BaseModel):
    """A campaign's service contract: its first month, agents and any price overrides."""

    starts_on: date
    agents: int = Field(default=25, ge=1, le=10_000)
    prices: dict[str, str] = Field(default_factory=dict, description='{"1": "1.68", …}')


class SeatLeaseIn(BaseModel):
    seat_kind: str = Field(description="inbound or inbound_outbound")
    seats: int = Field(ge=1, le=100_000)
    monthly_fee: str
    active_from: date
    active_to: date | None = None


class AdjustmentIn(BaseModel):
    """A quality-inspection bonus or penalty entered by the supervisor."""

    campaign_id: uuid.UUID
    month: date
    kind: AdjustmentKind
    amount: str
    reason: str = Field(min_length=1, max_length=500)


def set_contract(
    *, session: Session, campaign_id: uuid.UUID, contract_in: ContractIn
) -> ServiceContract:
    """Create or replace the campaign's service contract terms."""
    campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    for key, value in contract_in.prices.items():
        if key not in {"1", "2", "3"}:
            raise ReportInputError("prices are keyed by ramp month: 1, 2 or 3 (3 = from month 3)")
        if money(value, f"price of month {key}") <= 0:
            raise ReportInputError("a unit price must be positive")
    contract = session.exec(
        select(ServiceContract).where(ServiceContract.campaign_id == campaign_id)
    ).first()
    if contract is None:
        contract = ServiceContract(
            client_id=campaign.client_id, campaign_id=campaign_id, starts_on=contract_in.starts_on
        )
    contract.starts_on = contract_in.starts_on
    contract.agents = contract_in.agents
    contract.prices = dict(contract_in.prices)
    session.add(contract)
    session.flush()
    return contract


def add_seat_lease(*, session: Session, client_id: uuid.UUID, lease_in: SeatLeaseIn) -> SeatLease:
    from reports.models import SeatKind

    try:
        kind = SeatKind(lease_in.seat_kind)
    except ValueError:
        raise ReportInputError("seat_kind must be inbound or inbound_outbound") from None
    if money(lease_in.monthly_fee, "monthly_fee") <= 0:
        raise ReportInputError("monthly_fee must be positive")
    if lease_in.active_to is not None and lease_in.active_to < lease_in.active_from:
        raise ReportInputError("active_to is before active_from")
    lease = SeatLease(
        client_id=client_id,
        seat_kind=kind,
        seats=lease_in.seats,
        monthly_fee=str(money(lease_in.monthly_fee)),
        active_from=lease_in.active_from,
        active_to=lease_in.active_to,
    )
    session.add(lease)
    session.flush()
    return lease


def add_adjustment(
    *, session: Session, adjustment_in: AdjustmentIn, actor: Actor
) -> StatementAdjustment:
    campaign: Campaign = get_or_404(session, Campaign, adjustment_in.campaign_id, what="campaign")
    amount = money(adjustment_in.amount)
    if amount <= 0:
        raise ReportInputError("the amount is positive; the kind says bonus or penalty")
    row = StatementAdjustment(
        client_id=campaign.client_id,
        campaign_id=campaign.id,
        month=month_start(adjustment_in.month),
        kind=adjustment_in.kind,
        amount=str(fen(amount)),
        reason=adjustment_in.reason,
        entered_by=actor.name,
    )
    session.add(row)
    session.flush()
    return row


# --------------------------------------------------------------------------- calculation


def _service(
    session: Session, client_id: uuid.UUID, campaign_id: uuid.UUID, month: date, now: datetime
) -> Calculation:
    profile = get_profile(session, client_id)
    contract = session.exec(
        select(ServiceContract).where(ServiceContract.campaign_id == campaign_id)
    ).first()
    if contract is None:
        raise ReportInputError(
            "the campaign has no service contract yet; set its start month first "
            "(PUT /campaigns/{id}/contract or `pilotdial statement contract`)"
        )
    tz = zone(profile.timezone)
    start, end = local_midnight(month, tz), local_midnight(next_month(month), tz)
    calls = load_calls(
        session, Selection(client_id=client_id, start=start, end=end, campaign_id=campaign_id)
    )
    holidays = statutory_holidays(profile.holiday_country, month.year)
    holiday_days = {d for d in holidays if d.month == month.month}
    regular = holiday = 0
    worked_holidays: set[date] = set()
    for call in calls:
        if not is_valid(call, profile.valid_call_s):
            continue
        local_day = call.dialed_at.astimezone(tz).date()
        if local_day in holiday_days:
            holiday += 1
            worked_holidays.add(local_day)
        else:
            regular += 1
    n = ramp_month(contract.starts_on, month)
    prices, source = ramp_prices(session, campaign_id)
    adjustments = session.exec(
        select(StatementAdjustment)
        .where(StatementAdjustment.campaign_id == campaign_id, StatementAdjustment.month == month)
        .order_by(col(StatementAdjustment.created_at))
    ).all()
    lang = profile.language
    calc = service_calculation(
        ramp=n,
        unit_price=unit_price_for(prices, n),
        valid_calls_regular=regular,
        valid_calls_holiday=holiday,
        adjustments=[(a.kind.value, money(a.amount), a.reason) for a in adjustments],
        holiday_multiplier=money(contract.holiday_multiplier),
        vat_rate=money(contract.vat_rate),
        labels={"regular": t("valid_calls_line", lang), "holiday": t("holiday_line", lang)},
    )
    # the contract: a month with statutory holidays not worked lowers the target
    not_worked = sorted(d for d in holiday_days if d not in worked_holidays and d.weekday() < 5)
    target = contract.agents * 3132 - contract.agents * 144 * len(not_worked)
    calc.details.update(
        {
            "price_source": source,
            "agents": contract.agents,
            "monthly_target": target,
            "holidays_worked": [d.isoformat() for d in sorted(worked_holidays)],
            "holidays_not_worked": [d.isoformat() for d in not_worked],
            "valid_call_threshold_s": profile.valid_call_s,
            "timezone": profile.timezone,
        }
    )
    return calc


def _seat_lease(
    session: Session, client_id: uuid.UUID, month: date, mode: AvailabilityMode, now: datetime
) -> Calculation:
    profile = get_profile(session, client_id)
    days = calendar.monthrange(month.year, month.month)[1]
    last = month.replace(day=days)
    leases = session.exec(select(SeatLease).where(SeatLease.client_id == client_id)).all()
    seats = []
    for lease in leases:
        first_active = max(lease.active_from, month)
        last_active = min(lease.active_to or last, last)
        active = (last_active - first_active).days + 1
        if active > 0:
            seats.append(
                SeatInput(lease.seat_kind.value, lease.seats, money(lease.monthly_fee), active)
            )
    if not seats:
        raise ReportInputError(f"the client has no seats leased in {month:%Y-%m}")
    minutes, outages = outage_minutes_for(session, client_id, month, now)
    lang = profile.language
    calc = seat_lease_calculation(
        month=month,
        seats=seats,
        outage_minutes=minutes.quantize(Decimal("0.01")),
        mode=mode,
        labels={"inbound": t("inbound", lang), "inbound_outbound": t("inbound_outbound", lang)},
    )
    calc.details["outages"] = [
        {
            "id": str(o.id),
            "started_at": o.started_at.isoformat(),
            "ended_at": None if o.ended_at is None else o.ended_at.isoformat(),
            "scope": o.scope,
            "planned": o.planned,
            "external": o.external,
            "cause": o.cause,
        }
        for o in outages
    ]
    return calc


def _apply(statement: Statement, calc: Calculation) -> None:
    statement.lines = [line.as_json() for line in calc.lines]
    statement.calculation = calc.details
    statement.subtotal_fen = to_fen(calc.subtotal)
    statement.deduction_fen = to_fen(calc.deduction)
    statement.net_fen = to_fen(calc.net)
    statement.vat_fen = to_fen(calc.vat)
    statement.total_fen = to_fen(calc.total)


def _latest(
    session: Session, client_id: uuid.UUID, contract: ContractKind, subject: str, month: date
) -> Statement | None:
    return session.exec(
        select(Statement)
        .where(
            Statement.client_id == client_id,
            Statement.contract == contract,
            Statement.subject == subject,
            Statement.month == month,
        )
        .order_by(col(Statement.version).desc())
        .limit(1)
    ).first()


def _log(statement: Statement, status: StatementStatus, actor: Actor, at: datetime) -> None:
    statement.status_log = [
        *statement.status_log,
        {"status": status.value, "by": actor.name, "at": at.isoformat()},
    ]


def generate_statement(
    *,
    session: Session,
    client_id: uuid.UUID,
    contract: ContractKind,
    month: date,
    actor: Actor,
    campaign_id: uuid.UUID | None = None,
    availability_mode: AvailabilityMode = AvailabilityMode.whole_points,
    now: datetime | None = None,
) -> Statement:
    """Compute the month's statement into its draft (a new version 1, or the open draft)."""
    now = now or utcnow()
    month = month_start(month)
    get_or_404(session, Client, client_id, what="client")
    if contract is ContractKind.service:
        if campaign_id is None:
            raise ReportInputError("a service-contract statement is per campaign: give campaign_id")
        campaign: Campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
        client_id = campaign.client_id
        calc = _service(session, client_id, campaign_id, month, now)
        subject = str(campaign_id)
    else:
        calc = _seat_lease(session, client_id, month, availability_mode, now)
        subject = SEATS_SUBJECT
    latest = _latest(session, client_id, contract, subject, month)
    if latest is not None and latest.status is not StatementStatus.draft:
        raise StatementLocked(
            f"the {month:%Y-%m} statement is already {latest.status.value} (v{latest.version}); "
            "an issued statement never changes: make a correction (a new version) instead",
            extra={"statement_id": str(latest.id)},
        )
    statement = latest or _new_statement(client_id, contract, subject, campaign_id, month, 1)
    _apply(statement, calc)
    session.add(statement)
    session.flush()
    record_audit(
        session,
        client_id=client_id,
        actor=actor,
        action="statement.generate",
        object_type="statement",
        object_id=statement.id,
        detail={"month": month.isoformat(), "version": statement.version},
    )
    return statement


def _new_statement(
    client_id: uuid.UUID,
    contract: ContractKind,
    subject: str,
    campaign_id: uuid.UUID | None,
    month: date,
    version: int,
) -> Statement:
    following = next_month(month)
    return Statement(
        client_id=client_id,
        contract=contract,
        subject=subject,
        campaign_id=campaign_id,
        month=month,
        version=version,
        issue_by=following.replace(day=5),
        due_on=following.replace(day=20),
        late_interest_per_day=str(LATE_INTEREST[contract.value]),
    )


def _step(statement: Statement, target: StatementStatus) -> None:
    allowed = _NEXT[statement.status]
    if target not in allowed:
        raise StatementTransition(
            f"a {statement.status.value} statement cannot become {target.value}",
            allowed=[s.value for s in allowed],
        )
    statement.status = target


def issue_statement(
    *, session: Session, statement: Statement, actor: Actor, now: datetime | None = None
) -> Statement:
    """Freeze the draft and send it: the client has 5 working days to confirm or dispute."""
    now = now or utcnow()
    _step(statement, StatementStatus.issued)
    profile = get_profile(session, statement.client_id)
    issued_day = now.astimezone(zone(profile.timezone)).date()
    statement.issued_at = now
    statement.confirm_by = add_working_days(profile.holiday_country, issued_day, 5)
    _log(statement, StatementStatus.issued, actor, now)
    if statement.supersedes_id is not None:
        previous = session.get(Statement, statement.supersedes_id)
        if previous is not None and StatementStatus.superseded in _NEXT[previous.status]:
            previous.status = StatementStatus.superseded
            _log(previous, StatementStatus.superseded, actor, now)
            session.add(previous)
    session.add(statement)
    session.flush()
    return statement


def confirm_statement(
    *, session: Session, statement: Statement, actor: Actor, now: datetime | None = None
) -> Statement:
    now = now or utcnow()
    _step(statement, StatementStatus.confirmed)
    statement.confirmed_at = now
    _log(statement, StatementStatus.confirmed, actor, now)
    session.add(statement)
    session.flush()
    return statement


def dispute_statement(
    *,
    session: Session,
    statement: Statement,
    reason: str,
    actor: Actor,
    now: datetime | None = None,
) -> Statement:
    now = now or utcnow()
    if statement.confirm_by is not None and now.date() > statement.confirm_by:
        raise StatementTransition(
            f"the confirmation period ended on {statement.confirm_by}; the statement is deemed "
            "confirmed",
            allowed=[StatementStatus.paid.value],
        )
    _step(statement, StatementStatus.disputed)
    statement.disputed_at = now
    statement.dispute_reason = reason
    _log(statement, StatementStatus.disputed, actor, now)
    session.add(statement)
    session.flush()
    return statement


def deem_confirmations(session: Session, now: datetime | None = None) -> list[Statement]:
    """Issued statements past their confirmation date become (deemed) confirmed."""
    now = now or utcnow()
    due = session.exec(
        select(Statement).where(
            Statement.status == StatementStatus.issued, col(Statement.confirm_by) < now.date()
        )
    ).all()
    for statement in due:
        statement.status = StatementStatus.confirmed
        statement.deemed_confirmed = True
        statement.confirmed_at = now
        _log(
            statement,
            StatementStatus.confirmed,
            Actor(name="deemed (no reply in 5 working days)"),
            now,
        )
        session.add(statement)
    session.flush()
    return list(due)


def pay_statement(
    *,
    session: Session,
    statement: Statement,
    paid_on: date,
    actor: Actor,
    now: datetime | None = None,
) -> Statement:
    """Record the payment; paid after the 20th, the late interest is computed and stored."""
    now = now or utcnow()
    # paying an issued statement accepts it
    if statement.status is StatementStatus.issued:
        confirm_statement(session=session, statement=statement, actor=actor, now=now)
    _step(statement, StatementStatus.paid)
    total = Decimal(statement.total_fen) / 100
    interest = late_interest(
        total, statement.due_on, paid_on, money(statement.late_interest_per_day)
    )
    statement.paid_on = paid_on
    statement.late_interest_fen = to_fen(interest)
    statement.paid_fen = statement.total_fen + statement.late_interest_fen
    _log(statement, StatementStatus.paid, actor, now)
    session.add(statement)
    session.flush()
    return statement


def correct_statement(
    *,
    session: Session,
    statement: Statement,
    actor: Actor,
    availability_mode: AvailabilityMode = AvailabilityMode.whole_points,
    now: datetime | None = None,
) -> Statement:
    """A new draft version, recomputed from today's data; the old one stays as issued until
    the correction is issued."""
    now = now or utcnow()
    if statement.status in {
        StatementStatus.draft,
        StatementStatus.paid,
        StatementStatus.superseded,
    }:
        raise StatementTransition(
            f"a {statement.status.value} statement is not corrected "
            + (
                "(edit the draft: regenerate it)"
                if statement.status is StatementStatus.draft
                else ""
            ),
            allowed=[s.value for s in _NEXT[statement.status]],
        )
    latest = _latest(
        session, statement.client_id, statement.contract, statement.subject, statement.month
    )
    if latest is not None and latest.id != statement.id:
        raise StatementTransition(
            f"version {latest.version} already exists; correct the newest version",
            allowed=[],
        )
    if statement.contract is ContractKind.service:
        assert statement.campaign_id is not None
        calc = _service(session, statement.client_id, statement.campaign_id, statement.month, now)
    else:
        calc = _seat_lease(session, statement.client_id, statement.month, availability_mode, now)
    new = _new_statement(
        statement.client_id,
        statement.contract,
        statement.subject,
        statement.campaign_id,
        statement.month,
        statement.version + 1,
    )
    new.supersedes_id = statement.id
    _apply(new, calc)
    session.add(new)
    session.flush()
    record_audit(
        session,
        client_id=statement.client_id,
        actor=actor,
        action="statement.correct",
        object_type="statement",
        object_id=new.id,
        detail={"supersedes": str(statement.id), "version": new.version},
    )
    return new


# --------------------------------------------------------------------------- document


def list_statements(
    *, session: Session, month: date | None = None, limit: int | None = None
) -> list[Statement]:
    """The session's clients' statements, every version, newest month and version first."""
    stmt = select(Statement).order_by(col(Statement.month).desc(), col(Statement.version).desc())
    if month is not None:
        stmt = stmt.where(Statement.month == month.replace(day=1))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def statement_document(
    session: Session, statement: Statement, *, language: str | None = None
) -> Document:
    """The statement as a report document (HTML / XLSX through the report renderers)."""
    profile = get_profile(session, statement.client_id)
    client: Client = get_or_404(session, Client, statement.client_id, what="client")
    lang = language or profile.language
    K = ColumnKind
    lines = Section(
        key="lines",
        title=t("statement", lang),
        columns=[
            Column("label", t("line_item", lang)),
            Column("quantity", t("quantity", lang), K.float),
            Column("unit_price", t("unit_price", lang), K.money),
            Column("amount", t("amount", lang), K.money),
        ],
        rows=[
            {
                "label": line["label"],
                "quantity": float(line["quantity"]),
                "unit_price": Decimal(line["unit_price"]),
                "amount": Decimal(line["amount"]),
            }
            for line in statement.lines
        ],
    )
    money_rows: list[tuple[str, int]] = [("subtotal", statement.subtotal_fen)]
    if statement.contract is ContractKind.seat_lease:
        money_rows.append(("deduction", -statement.deduction_fen))
    money_rows += [
        ("net", statement.net_fen),
        ("vat", statement.vat_fen),
        ("total", statement.total_fen),
    ]
    totals = Section(
        key="totals",
        title=t("total", lang),
        columns=[
            Column("label", t("line_item", lang)),
            Column("amount", t("amount", lang), K.money),
        ],
        rows=[
            {
                "label": t(key, lang)
                + (
                    f" ({Decimal(statement.calculation.get('vat_rate', '0.06')) * 100:g} %)"
                    if key == "vat"
                    else ""
                ),
                "amount": Decimal(value) / 100,
            }
            for key, value in money_rows
        ],
    )
    calc_rows = [
        {"label": key, "value": _plain(value)}
        for key, value in statement.calculation.items()
        if key != "outages"
    ]
    calc_rows += [
        {"label": t("issue_by", lang), "value": statement.issue_by.isoformat()},
        {"label": t("confirm_by", lang), "value": _plain(statement.confirm_by)},
        {"label": t("due_on", lang), "value": statement.due_on.isoformat()},
        {
            "label": t("late_interest", lang),
            "value": f"{Decimal(statement.late_interest_per_day) * 100:g} %",
        },
    ]
    calculation = Section(
        key="calculation",
        title=t("availability", lang) if statement.contract is ContractKind.seat_lease else "Σ",
        columns=[Column("label", t("line_item", lang)), Column("value", t("value", lang))],
        rows=calc_rows,
    )
    facts = [
        (t("client", lang), profile.display_name or client.name),
        (t("period", lang), f"{statement.month:%Y-%m}"),
        (t("version", lang), f"v{statement.version} · {statement.status.value}"),
    ]
    return Document(
        kind="statement",
        title=f"{t('statement', lang)} {statement.month:%Y-%m}",
        client_name=profile.display_name or client.name,
        period_label=f"{statement.month:%Y-%m}",
        timezone=profile.timezone,
        language=lang,
        generated_at=utcnow(),
        sections=[lines, totals, calculation],
        logo_data_uri=profile.logo_data_uri,
        facts=facts,
    )


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def days_overdue(statement: Statement, today: date) -> int:
    return days_late(statement.due_on, today) if statement.paid_on is None else 0
