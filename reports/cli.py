"""``pilotdial report …``, ``pilotdial statement …`` and ``pilotdial outage …``: staff commands.

They run on the server in a system session through the same services as the API, and record
who did what in the audit log. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlmodel import Session

    from core.audit import Actor

__all__ = ["register"]

report_app = typer.Typer(help="Contract reports: generate, list, schedule.", no_args_is_help=True)
statement_app = typer.Typer(
    help="Monthly statements (對帳單): contract, compute, issue, confirm, pay.",
    no_args_is_help=True,
)
outage_app = typer.Typer(help="Platform outages (availability).", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"pilotdial: {message}", err=True)
    return typer.Exit(code=2)


def _actor() -> Actor:
    from core.audit import Actor

    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return Actor(name=f"cli:{user}")


@contextmanager
def _session() -> Iterator[Session]:
    from pydantic import ValidationError

    from core.db import get_engine, system_session
    from core.errors import PilotdialError
    from core.migrate import check_schema_current

    try:
        check_schema_current(get_engine())
        with system_session() as session:
            yield session
    except PilotdialError as exc:
        raise _fail(exc.message) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise _fail(f"{where}: {first.get('msg')}") from None


def _client_id(session: Session, ref: str) -> uuid.UUID:
    from core.admin import find_client

    return find_client(session=session, ref=ref).id


@report_app.command("generate")
def report_generate(
    client: Annotated[str, typer.Option(help="Client id or slug")],
    start: Annotated[str, typer.Option(help="A day inside the period, YYYY-MM-DD")],
    kind: Annotated[
        str, typer.Option(help="service_level, agent_hours, detail, attributes, periodic")
    ] = "service_level",
    period: Annotated[
        str, typer.Option(help="day, week, month, quarter, half, year, custom")
    ] = "month",
    end: Annotated[str | None, typer.Option(help="custom: last day")] = None,
    interval: Annotated[str, typer.Option(help="15min, hour, day, month")] = "hour",
    campaign: Annotated[str | None, typer.Option(help="Campaign id")] = None,
    skill_group: Annotated[str | None, typer.Option()] = None,
    fmt: Annotated[str, typer.Option("--format", help="xlsx, html or csv")] = "xlsx",
    language: Annotated[str | None, typer.Option(help="zh-Hans, zh-Hant or en")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the file here")] = None,
) -> None:
    """Generate a report into the client's download area (and optionally to a file)."""
    from core.files import iter_file
    from reports.service import ReportRequest, generate_report

    with _session() as session:
        request = ReportRequest.model_validate(
            {
                "kind": kind,
                "period": period,
                "start": start,
                "end": end,
                "interval": interval,
                "campaign_id": campaign,
                "skill_group": skill_group,
                "fmt": fmt,
                "language": language,
            }
        )
        doc = generate_report(
            session=session, client_id=_client_id(session, client), request=request, actor=_actor()
        )
        if out is not None:
            out.write_bytes(b"".join(iter_file(session, doc.file_id)))
    typer.echo(f"report {doc.id} {doc.filename} ({doc.summary.get('sections')})")


@report_app.command("list")
def report_list(client: Annotated[str, typer.Option(help="Client id or slug")]) -> None:
    """List a client's generated reports."""
    from core.db import scope_session
    from reports.service import list_reports

    with _session() as session:
        client_id = _client_id(session, client)
        scope_session(session, [client_id])
        for doc in list_reports(session):
            typer.echo(f"{doc.id}  {doc.created_at:%Y-%m-%d %H:%M}  {doc.kind:<14} {doc.filename}")


@report_app.command("schedule-tick")
def report_schedule_tick() -> None:
    """Deliver every weekly report that is due (run from cron or the RQ job every few minutes)."""
    from reports.service import run_schedules
    from reports.statements import deem_confirmations

    with _session() as session:
        made = run_schedules(session)
        deemed = deem_confirmations(session)
    typer.echo(
        f"{len(made)} scheduled report(s) delivered; {len(deemed)} statement(s) deemed confirmed"
    )


@statement_app.command("contract")
def statement_contract(
    campaign: Annotated[str, typer.Option(help="Campaign id")],
    starts_on: Annotated[str, typer.Option(help="First day of service, YYYY-MM-DD")],
    agents: Annotated[int, typer.Option()] = 25,
    price: Annotated[list[str] | None, typer.Option(help="MONTH=PRICE, e.g. 3=1.30")] = None,
) -> None:
    """Set a campaign's service contract (month 1 for the ramp prices, agents, overrides)."""
    from reports.statements import ContractIn, set_contract

    prices = dict(p.split("=", 1) for p in price or [] if "=" in p)
    with _session() as session:
        contract = set_contract(
            session=session,
            campaign_id=uuid.UUID(campaign),
            contract_in=ContractIn(
                starts_on=date.fromisoformat(starts_on), agents=agents, prices=prices
            ),
        )
    typer.echo(f"contract {contract.id}: from {contract.starts_on}, {contract.agents} agents")


@statement_app.command("generate")
def statement_generate(
    client: Annotated[str, typer.Option(help="Client id or slug")],
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    contract: Annotated[str, typer.Option(help="service or seat_lease")] = "service",
    campaign: Annotated[str | None, typer.Option(help="Campaign id (service contract)")] = None,
    pro_rata: Annotated[bool, typer.Option(help="Availability deduction pro rata")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the statement as HTML here")] = None,
) -> None:
    """Compute the month's draft statement and print its totals."""
    from reports.billing import AvailabilityMode
    from reports.models import ContractKind
    from reports.render import render
    from reports.statements import generate_statement, statement_document

    with _session() as session:
        statement = generate_statement(
            session=session,
            client_id=_client_id(session, client),
            contract=ContractKind(contract),
            month=date.fromisoformat(f"{month}-01"),
            campaign_id=uuid.UUID(campaign) if campaign else None,
            availability_mode=AvailabilityMode.pro_rata
            if pro_rata
            else AvailabilityMode.whole_points,
            actor=_actor(),
        )
        if out is not None:
            out.write_bytes(render(statement_document(session, statement), "html"))
    typer.echo(
        f"statement {statement.id} v{statement.version} {statement.status.value}: net "
        f"{statement.net_fen / 100:.2f} + VAT {statement.vat_fen / 100:.2f} = "
        f"{statement.total_fen / 100:.2f} CNY"
    )


@statement_app.command("issue")
def statement_issue(statement_id: str) -> None:
    """Issue a draft statement (frozen from then on)."""
    _lifecycle(statement_id, "issue")


@statement_app.command("confirm")
def statement_confirm(statement_id: str) -> None:
    """Record the client's confirmation."""
    _lifecycle(statement_id, "confirm")


@statement_app.command("correct")
def statement_correct(statement_id: str) -> None:
    """Make a correction: a new draft version."""
    _lifecycle(statement_id, "correct")


@statement_app.command("pay")
def statement_pay(
    statement_id: str, paid_on: Annotated[str, typer.Option(help="YYYY-MM-DD")]
) -> None:
    """Record the payment (late interest if after the due date)."""
    _lifecycle(statement_id, "pay", paid_on=date.fromisoformat(paid_on))


def _lifecycle(statement_id: str, action: str, paid_on: date | None = None) -> None:
    from core.db import get_or_404
    from reports.models import Statement
    from reports.statements import (
        confirm_statement,
        correct_statement,
        issue_statement,
        pay_statement,
    )

    with _session() as session:
        statement: Statement = get_or_404(
            session, Statement, uuid.UUID(statement_id), what="statement"
        )
        actor = _actor()
        if action == "issue":
            result = issue_statement(session=session, statement=statement, actor=actor)
        elif action == "confirm":
            result = confirm_statement(session=session, statement=statement, actor=actor)
        elif action == "correct":
            result = correct_statement(session=session, statement=statement, actor=actor)
        else:
            assert paid_on is not None
            result = pay_statement(
                session=session, statement=statement, paid_on=paid_on, actor=actor
            )
    typer.echo(f"statement {result.id} v{result.version}: {result.status.value}")


@outage_app.command("record")
def outage_record(
    started_at: Annotated[str, typer.Option(help="ISO time with zone")],
    ended_at: Annotated[str | None, typer.Option(help="ISO time with zone")] = None,
    scope: Annotated[str, typer.Option()] = "platform",
    cause: Annotated[str, typer.Option()] = "",
    planned: Annotated[bool, typer.Option()] = False,
    announced_at: Annotated[str | None, typer.Option(help="planned: when it was announced")] = None,
    external: Annotated[bool, typer.Option(help="fault outside the platform")] = False,
    client: Annotated[str | None, typer.Option(help="only this client was affected")] = None,
) -> None:
    """Record an outage by hand."""
    from reports.availability import OutageIn, record_outage

    with _session() as session:
        outage = record_outage(
            session=session,
            outage_in=OutageIn.model_validate(
                {
                    "started_at": started_at,
                    "ended_at": ended_at,
                    "scope": scope,
                    "cause": cause,
                    "planned": planned,
                    "announced_at": announced_at,
                    "external": external,
                    "client_id": _client_id(session, client) if client else None,
                }
            ),
            actor=_actor(),
        )
    typer.echo(f"outage {outage.id} recorded")


@outage_app.command("availability")
def outage_availability(
    client: Annotated[str, typer.Option(help="Client id or slug")],
    month: Annotated[str, typer.Option(help="YYYY-MM")],
) -> None:
    """Show a month's counted outage minutes, availability and tier."""
    from reports.availability import outage_minutes_for
    from reports.billing import availability_percent, availability_tier

    day = date.fromisoformat(f"{month}-01")
    with _session() as session:
        minutes, outages = outage_minutes_for(
            session, _client_id(session, client), day, datetime.now(UTC)
        )
    pct = availability_percent(minutes, day)
    tier = availability_tier(pct)
    typer.echo(f"{len(outages)} outage(s), {minutes:.1f} counted minutes: {pct} % — {tier.rule}")


def register(app: typer.Typer) -> None:
    """Add the report, statement and outage commands to ``pilotdial``."""
    app.add_typer(report_app, name="report")
    app.add_typer(statement_app, name="statement")
    app.add_typer(outage_app, name="outage")
