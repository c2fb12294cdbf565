"""``pilotdial recordings``: the expired call recordings, shown or purged from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]

recordings_app = typer.Typer(help="Call recordings: purge the expired ones.", no_args_is_help=True)


@recordings_app.command("purge")
def purge_command(
    dry_run: Annotated[
        bool, typer.Option(help="Show what would be deleted, delete nothing")
    ] = False,
) -> None:
    """Delete every recording past its campaign's retention (file and row), and list them."""
    from core.db import get_engine, system_session
    from core.migrate import check_schema_current, import_all_models
    from dialer.recordings import purge_expired

    import_all_models()
    check_schema_current(get_engine())
    with system_session() as session:
        report = purge_expired(session=session, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {report.count} expired recording(s), {report.size_bytes:,} bytes")
    for attempt_id in report.attempt_ids:
        typer.echo(f"  attempt {attempt_id}")


def register(app: typer.Typer) -> None:
    """Add ``pilotdial recordings`` to the main command."""
    app.add_typer(recordings_app, name="recordings")
