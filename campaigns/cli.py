"""``pilotdial campaign …`` and ``pilotdial attempts import``: operators' commands.

The CLI talks to the database directly through the services, in a system session (it is run
by the outsourcer's staff on the server), and records who did what in the audit log.
"""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlmodel import Session

from campaigns.lifecycle import ACTIONS, RUN_CONTROL_ACTIONS, run_control_target
from campaigns.models import BatchCreate, BatchKind, CampaignCreate, CampaignKind, CampaignStatus
from core.audit import Actor, record_audit
from core.errors import PilotdialError

__all__ = ["register"]

campaign_app = typer.Typer(
    help="Campaigns: create, pilot, lifecycle, lead states.", no_args_is_help=True
)
attempts_app = typer.Typer(help="Call attempts: import pilot results.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"pilotdial: {message}", err=True)
    return typer.Exit(code=2)


def _actor() -> Actor:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return Actor(name=f"cli:{user}")


@contextmanager
def _session() -> Iterator[Session]:
    """A system session on a current schema; domain errors become one line and exit 2."""
    from core.db import get_engine, system_session
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
        raise _fail(f"{where}: {first.get('msg', 'invalid')}".lstrip(": ")) from None


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _fail(
            f"{what} {value!r} is not an id; copy it from `pilotdial campaign list`"
        ) from None


def _load(session: Session, campaign_ref: str) -> Any:
    from campaigns.service import get_campaign

    return get_campaign(session=session, campaign_id=_uuid(campaign_ref, "campaign"))


@campaign_app.command("create")
def create(
    client: Annotated[str, typer.Option(help="Client id or slug")],
    name: Annotated[str, typer.Option(help="Campaign name")],
    list_id: Annotated[list[str], typer.Option("--list", help="Lead list id; repeatable")],
    kind: Annotated[CampaignKind, typer.Option(help="sales or survey")] = CampaignKind.sales,
    questionnaire_version: Annotated[
        str | None, typer.Option(help="Published questionnaire version id (survey campaigns)")
    ] = None,
    settings: Annotated[
        Path | None,
        typer.Option(
            help="JSON file with settings: calling_windows, max_attempts, ...", exists=False
        ),
    ] = None,
) -> None:
    """Create a draft campaign on ready lead lists and print its id."""
    from campaigns.service import create_campaign
    from core.admin import find_client

    extra: dict[str, Any] = {}
    if settings is not None:
        try:
            extra = json.loads(settings.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"--settings {settings}: cannot read JSON ({exc})") from None
        if not isinstance(extra, dict):
            raise _fail(f"--settings {settings}: the file must hold a JSON object")
    with _session() as session:
        owner = find_client(session=session, ref=client)
        body = CampaignCreate.model_validate(
            {
                **extra,
                "name": name,
                "kind": kind,
                "questionnaire_version_id": questionnaire_version,
                "list_ids": [_uuid(v, "list") for v in list_id],
            }
        )
        campaign = create_campaign(session=session, client_id=owner.id, campaign_in=body)
        record_audit(
            session,
            client_id=owner.id,
            actor=_actor(),
            action="campaign.create",
            object_type="campaign",
            object_id=campaign.id,
        )
    typer.echo(
        f"created campaign {campaign.name!r} id={campaign.id} status={campaign.status.value}"
    )


@campaign_app.command("list")
def list_(
    client: Annotated[str, typer.Option(help="Client id or slug")],
    status: Annotated[CampaignStatus | None, typer.Option(help="Only this status")] = None,
) -> None:
    """List a client's campaigns."""
    from campaigns.service import list_campaigns
    from core.admin import find_client
    from core.db import scope_session

    with _session() as session:
        owner = find_client(session=session, ref=client)
        scope_session(session, [owner.id])
        rows = list_campaigns(session=session, status=status, limit=10_000)
        for c in rows:
            typer.echo(f"{c.id}  {c.status.value:<10} {c.kind.value:<6} {c.name}")
    if not rows:
        typer.echo("no campaigns", err=True)


@campaign_app.command("show")
def show(campaign: Annotated[str, typer.Argument(help="Campaign id")]) -> None:
    """Show a campaign's settings, batches and lead states as JSON."""
    from campaigns.service import campaign_public, lead_state_counts, list_batches

    with _session() as session:
        row = _load(session, campaign)
        data = campaign_public(session=session, campaign=row).model_dump(mode="json")
        data["batches"] = [
            b.model_dump(mode="json", exclude={"client_id"})
            for b in list_batches(session=session, campaign_id=row.id)
        ]
        data["lead_states"] = lead_state_counts(session=session, campaign_id=row.id)
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@campaign_app.command("pilot")
def pilot(
    campaign: Annotated[str, typer.Argument(help="Campaign id")],
    size: Annotated[int, typer.Option(min=1, help="How many leads to sample")],
    stratify_by: Annotated[
        str | None, typer.Option(help="region, phone_type, carrier or a list column")
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed to redraw a sample exactly")] = None,
) -> None:
    """Draw a pilot batch (a reproducible random sample) and print its id and seed."""
    from campaigns.service import create_batch

    with _session() as session:
        row = _load(session, campaign)
        batch = create_batch(
            session=session,
            campaign=row,
            batch_in=BatchCreate(
                kind=BatchKind.pilot, size=size, stratify_by=stratify_by, seed=seed
            ),
        )
    typer.echo(
        f"pilot batch {batch.id}: {batch.size} of {batch.population} leads, seed {batch.seed}"
        + (f", stratified by {batch.stratify_by}" if batch.stratify_by else "")
    )


@campaign_app.command("full-batch")
def full_batch(campaign: Annotated[str, typer.Argument(help="Campaign id")]) -> None:
    """Release the full batch: every lead not in the pilot, plus unfinished pilot leads."""
    from campaigns.service import create_batch

    with _session() as session:
        row = _load(session, campaign)
        batch = create_batch(
            session=session, campaign=row, batch_in=BatchCreate(kind=BatchKind.full)
        )
    typer.echo(f"full batch {batch.id}: {batch.size} leads")


def _action_command(action: str, target: CampaignStatus) -> Callable[[str], None]:
    def command(campaign: Annotated[str, typer.Argument(help="Campaign id")]) -> None:
        from campaigns.deals import refuse_deal_move
        from campaigns.service import transition_campaign

        with _session() as session:
            row = _load(session, campaign)
            previous = row.status
            refuse_deal_move(target)
            # pause, resume and stop keep the campaign's phase (a pilot pauses as a pilot)
            goal = (
                run_control_target(action, row.status) if action in RUN_CONTROL_ACTIONS else target
            )
            transition_campaign(session=session, campaign=row, target=goal, actor=_actor())
        typer.echo(f"campaign {row.id}: {previous.value} → {row.status.value}")

    command.__doc__ = f"Move a campaign to {target.value} ({action})."
    return command


@campaign_app.command("leads")
def leads(
    campaign: Annotated[str, typer.Argument(help="Campaign id")],
) -> None:
    """Count the campaign's leads per state."""
    from campaigns.service import lead_state_counts

    with _session() as session:
        row = _load(session, campaign)
        counts = lead_state_counts(session=session, campaign_id=row.id)
    for state, count in counts.items():
        typer.echo(f"{state:<12} {count}")


@campaign_app.command("export-attempts")
def export_attempts(
    campaign: Annotated[str, typer.Argument(help="Campaign id")],
    out: Annotated[Path, typer.Option(help="CSV file to write")],
) -> None:
    """Write every call attempt of a campaign to CSV (formula-safe cells)."""
    import shutil

    from campaigns.attempts import export_attempts_csv

    with _session() as session:
        row = _load(session, campaign)
        handle, count = export_attempts_csv(session=session, campaign_id=row.id)
        record_audit(
            session,
            client_id=row.client_id,
            actor=_actor(),
            action="campaign.attempts.export",
            object_type="campaign",
            object_id=row.id,
            detail={"rows": count, "file": str(out)},
        )
        with handle, out.open("wb") as target:
            shutil.copyfileobj(handle, target)
    typer.echo(f"wrote {count} attempts to {out}")


@attempts_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="CSV: lead_id or phone, attempt_no, started_at, ...")
    ],
    campaign: Annotated[str, typer.Option(help="Campaign id")],
    batch: Annotated[str | None, typer.Option(help="Batch id (default: latest pilot)")] = None,
) -> None:
    """Import pilot attempts from another dialer: all rows or none."""
    from campaigns.attempts import import_attempts_csv
    from campaigns.exceptions import AttemptsImportError

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        with _session() as session:
            row = _load(session, campaign)
            try:
                result = import_attempts_csv(
                    session=session,
                    campaign=row,
                    data=data,
                    batch_id=_uuid(batch, "batch") if batch else None,
                )
            except AttemptsImportError as exc:
                for error in exc.errors:
                    typer.echo(f"{file}:{error['line']}: {error['message']}", err=True)
                raise
            record_audit(
                session,
                client_id=row.client_id,
                actor=_actor(),
                action="campaign.attempts.import",
                object_type="campaign",
                object_id=row.id,
                detail={"attempts": result.attempts, "file": str(file)},
            )
    except typer.Exit:
        raise
    typer.echo(
        f"imported {result.attempts} attempts for {result.leads} leads "
        f"({result.leads_added} added to batch {result.batch_id})"
    )


for _action, _target in ACTIONS.items():
    campaign_app.command(_action)(_action_command(_action, _target))


def register(app: typer.Typer) -> None:
    """Add ``campaign`` and ``attempts`` command groups to the ``pilotdial`` app."""
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(attempts_app, name="attempts")


if __name__ == "__main__":  # pragma: no cover
    root = typer.Typer()
    register(root)
    sys.exit(root())
