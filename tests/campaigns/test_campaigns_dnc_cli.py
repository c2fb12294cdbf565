"""``pilotdial dnc``: add, list (masked), import with line numbers, remove; scoped per client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from campaigns.dnc_cli import register
from core.admin import create_client
from core.db import system_session


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps sub-command names
    return app


def test_dnc_cli_round_trip(database_url: str, configure: Any, tmp_path: Path) -> None:
    configure(database_url=database_url)
    with system_session() as session:
        create_client(session=session, name="Acme", slug="acme")
        create_client(session=session, name="Other", slug="other")
    runner, app = CliRunner(), _app()

    added = runner.invoke(app, ["dnc", "add", "138 1234 5678", "junk", "--client", "acme"])
    assert added.exit_code == 0, added.output
    assert "accepted 1" in added.output

    dnc_file = tmp_path / "dnc.txt"
    dnc_file.write_text("13912345678\nnope\n")
    imported = runner.invoke(app, ["dnc", "import", str(dnc_file), "--client", "acme"])
    assert imported.exit_code == 0, imported.output
    assert "'line': '2'" in imported.output

    listed = runner.invoke(app, ["dnc", "list", "--client", "acme"])
    assert "+86138****5678" in listed.output
    assert "13812345678" not in listed.output
    other = runner.invoke(app, ["dnc", "list", "--client", "other"])
    assert "+86" not in other.output

    removed = runner.invoke(app, ["dnc", "remove", "+8613812345678", "--client", "acme"])
    assert "accepted 1" in removed.output
    both = runner.invoke(app, ["dnc", "list", "--client", "acme", "--house-wide"])
    assert both.exit_code == 2
