"""CLI commands of the dialer: ``pilotdial simulate``.

``core.cli`` builds the Typer app and calls :func:`register`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dialer.exceptions import DialerError
from dialer.pacing import PacingPolicy, load_policy
from dialer.scenario import parse_scenario
from dialer.simulator import Simulation, SimulationResult

__all__ = ["register"]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _print_table(result: SimulationResult) -> None:
    rows = [
        ("policy", result.policy),
        ("agents", str(result.agents)),
        ("simulated hours", f"{result.duration_s / 3600:.2f}"),
        ("dials", str(result.dials)),
        ("live answers", str(result.live_answers)),
        ("machine answers", str(result.machine_answers)),
        ("no answers", str(result.no_answers)),
        ("busy", str(result.busy)),
        ("failed", str(result.failed)),
        ("abandoned", str(result.abandoned)),
        ("abandon rate", f"{100 * result.abandon_rate:.2f} %"),
        ("occupancy", f"{100 * result.occupancy:.1f} %"),
        ("mean agent idle between calls", f"{result.agent_idle_mean_s:.1f} s"),
        ("contacts per agent hour", f"{result.contacts_per_agent_hour:.2f}"),
    ]
    if result.mode == "agentless":
        rows.append(("interviews completed", str(result.interviews_completed)))
        rows.append(("interviews broken off", str(result.interviews_broken_off)))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        typer.echo(f"{label:<{width}}  {value}")


def simulate_command(
    scenario_path: Annotated[
        Path, typer.Argument(metavar="SCENARIO.json", help="Scenario file (JSON object).")
    ],
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            metavar="MODULE:CLASS",
            help="Pacing policy to use instead of the mode's built-in one.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Simulate one campaign day with the simulated gateway and print its figures."""
    try:
        text = scenario_path.read_text(encoding="utf-8")
    except OSError as error:
        raise _fail(f"cannot read {scenario_path}: {error.strerror or error}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(
            f"{scenario_path} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg})"
        ) from None
    try:
        scenario = parse_scenario(raw)
        chosen: PacingPolicy | None = load_policy(policy) if policy else None
    except DialerError as error:
        raise _fail(error.message) from None
    simulation = Simulation(scenario, chosen)
    if sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as progress:
            task = progress.add_task("simulating", total=scenario.duration_s)
            result = simulation.run(lambda now: progress.update(task, completed=now))
    else:
        result = simulation.run()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_table(result)


def register(app: typer.Typer) -> None:
    """Add the dialer's commands to the ``pilotdial`` app."""
    app.command("simulate")(simulate_command)
