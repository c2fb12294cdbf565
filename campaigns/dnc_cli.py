"""``pilotdial dnc``: a client's (or the house-wide) do-not-call list from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

__all__ = ["register"]

dnc_app = typer.Typer(help="Do-not-call lists (stored as keyed hashes, shown masked).")

ClientOpt = Annotated[str | None, typer.Option(help="Client id or slug (omit with --house-wide)")]
HouseOpt = Annotated[bool, typer.Option(help="The house-wide list, for every client")]


def _target(client: str | None, house_wide: bool) -> tuple[object, str, list[object]]:
    from core.admin import find_client
    from core.db import get_engine, system_session
    from core.migrate import check_schema_current

    check_schema_current(get_engine())
    if house_wide == (client is not None):
        typer.echo("pilotdial: name one --client, or --house-wide", err=True)
        raise typer.Exit(code=2)
    if client is None:
        return None, "CN", []
    with system_session() as session:
        found = find_client(session=session, ref=client)
        return found.id, found.default_region, [found.id]


@contextmanager
def _session(scope: list[object]) -> Iterator[Session]:
    """The client's scoped session, or a system session for the house-wide list."""
    from core.db import system_session, tenant_session

    with tenant_session(scope) if scope else system_session() as session:  # type: ignore[arg-type]
        yield session


def _report(change: object) -> None:
    data = change.as_dict()  # type: ignore[attr-defined]
    typer.echo(
        f"accepted {data['accepted']}, already present {data['already_present']}, "
        f"not found {data['not_found']}, rejected {len(data['rejected'])}"
    )
    for item in data["rejected"][:20]:
        typer.echo(f"  rejected {item}", err=True)


@dnc_app.command("add")
def add(
    numbers: Annotated[list[str], typer.Argument(help="Numbers in any format the cleaner reads")],
    client: ClientOpt = None,
    house_wide: HouseOpt = False,
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add numbers to a do-not-call list."""
    from campaigns.suppression import add_numbers

    client_id, region, scope = _target(client, house_wide)
    with _session(scope) as session:
        change = add_numbers(
            session=session,
            client_id=client_id,  # type: ignore[arg-type]
            numbers=numbers,
            region=region,
            source="cli",
            reason=reason,
        )
    _report(change)


@dnc_app.command("remove")
def remove(
    numbers: Annotated[list[str], typer.Argument()],
    client: ClientOpt = None,
    house_wide: HouseOpt = False,
) -> None:
    """Remove numbers from a do-not-call list."""
    from campaigns.suppression import remove_numbers

    client_id, region, scope = _target(client, house_wide)
    with _session(scope) as session:
        change = remove_numbers(
            session=session,
            client_id=client_id,  # type: ignore[arg-type]
            numbers=numbers,
            region=region,
        )
    _report(change)


@dnc_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    client: ClientOpt = None,
    house_wide: HouseOpt = False,
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add every number of a CSV with a phone column, or of a one-number-a-line file."""
    from campaigns.suppression import import_dnc_file

    client_id, region, scope = _target(client, house_wide)
    with _session(scope) as session:
        change = import_dnc_file(
            session=session,
            client_id=client_id,  # type: ignore[arg-type]
            path=path,
            region=region,
            source="cli",
            reason=reason,
        )
    _report(change)


@dnc_app.command("list")
def list_entries(
    client: ClientOpt = None,
    house_wide: HouseOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
) -> None:
    """Show a list's entries, masked (the plain numbers are not stored)."""
    from sqlmodel import col, select

    from campaigns.models import GlobalSuppressionEntry, SuppressionEntry

    _client_id, _region, scope = _target(client, house_wide)
    model: Any = SuppressionEntry if scope else GlobalSuppressionEntry
    with _session(scope) as session:
        rows = session.exec(select(model).order_by(col(model.created_at).desc()).limit(limit)).all()
        for row in rows:
            typer.echo(f"{row.masked:<20} {row.source:<12} {row.created_at:%Y-%m-%d %H:%M}")
    typer.echo(f"{len(rows)} entries shown", err=True)


def register(app: typer.Typer) -> None:
    """Add ``pilotdial dnc`` to the main command."""
    app.add_typer(dnc_app, name="dnc")
