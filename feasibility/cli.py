"""``pilotdial feasibility``: build a feasibility report and quote from pilot CSV files.

Prints a readable summary by default, the report as JSON with ``--json``, and writes a
self-contained HTML report with ``--html``. Bad input ends with a one-line message on stderr
and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from feasibility.exceptions import FeasibilityError
from feasibility.inputs import (
    Costs,
    Targets,
    load_costs,
    load_targets,
    read_attempts_csv,
    read_leads_csv,
)

__all__ = ["feasibility_command", "register", "summary_text"]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"pilotdial feasibility: {message}", err=True)
    return typer.Exit(code=2)


def summary_text(report: object) -> str:
    """A plain-text summary of a report for the terminal."""
    from feasibility.report import FeasibilityReport

    assert isinstance(report, FeasibilityReport)
    r = report
    p = r.projection
    q = r.quote
    lines = [
        f"Verdict: {r.verdict.value.replace('_', ' ').upper()}",
        *[f"  - {reason}" for reason in r.reasons],
        f"Pilot size: {r.sizing.advice}",
        "",
        f"Pilot: {r.pilot.leads} leads, {r.pilot.dials} dials, {r.pilot.leads_contacted} reached, "
        f"{r.pilot.leads_converted} converted",
        f"Contact rate {r.contact_rate.estimate:.1%} ({r.contact_rate.low:.1%}-"
        f"{r.contact_rate.high:.1%}); conversion per contact {r.conversion_rate.estimate:.1%} "
        f"({r.conversion_rate.low:.1%}-{r.conversion_rate.high:.1%})",
        f"Conversion model: {r.model.conversion_model.reason}",
        f"Recommended max attempts: {r.recommended_max_attempts} "
        f"({r.dials_per_lead_at_recommended:.2f} dials per lead)",
        "",
        f"Projection, {p.leads} leads at up to {p.max_attempts} attempts (P10 / P50 / P90):",
    ]
    for name in ("contacts", "conversions", "dials", "agent_hours"):
        band = getattr(p, name)
        lines.append(f"  {name:<12} {band.p10:>10,.0f} {band.p50:>10,.0f} {band.p90:>10,.0f}")
    ops = r.operations
    if ops.seats_needed is not None:
        lines.append(f"Seats for {ops.deadline_days:g} days: {ops.seats_needed} (P50)")
    if ops.days_needed is not None:
        lines.append(f"Days with {ops.seats_available} seats: {ops.days_needed:.1f} (P50)")
    c = q.per_valid_call
    lines += [
        "",
        f"Quote ({q.currency}, before {q.vat_rate:.0%} VAT), per valid call: month 1 "
        f"{c.month_1:.2f}, month 2 {c.month_2:.2f}, steady {c.steady:.2f}, holiday "
        f"{c.holiday:.2f} (cost-based {c.holiday_cost_based:.2f})",
    ]
    rec = q.recommended
    lines.append(
        f"Recommended ({rec.basis}): month 1 {rec.month_1:.2f}, month 2 {rec.month_2:.2f}, "
        f"steady {rec.steady:.2f} per valid call; why: {rec.reason}"
    )
    lines += [f"  not quoted: {alternative}" for alternative in rec.alternatives]
    pilot_price = q.pilot_based.per_valid_call
    if pilot_price.estimate is not None:
        lines.append(
            f"At the pilot's rate: {pilot_price.estimate:.2f} per valid call "
            f"({pilot_price.low:.2f}-{pilot_price.high:.2f})"
        )
    if q.per_conversion.estimate is not None:
        lines.append(
            f"Per conversion: {q.per_conversion.estimate:.2f}; per contact: "
            f"{q.per_contact.estimate:.2f}; per agent-hour: {q.per_agent_hour:.2f}"
        )
    lines += ["Caveats:", *[f"  - {caveat}" for caveat in q.caveats]]
    if r.warnings:
        lines += ["Warnings:", *[f"  - {warning}" for warning in r.warnings]]
    return "\n".join(lines)


def feasibility_command(
    attempts: Annotated[Path, typer.Option("--attempts", help="Pilot attempts CSV.")],
    leads: Annotated[Path, typer.Option("--leads", help="Full lead list CSV (with pilot leads).")],
    targets: Annotated[
        Path | None,
        typer.Option(
            "--targets",
            help="Targets JSON (conversions, deadline_days, seats, max_price, max_price_scheme).",
        ),
    ] = None,
    costs: Annotated[
        Path | None,
        typer.Option("--costs", help="Costs JSON; missing fields take the contract defaults."),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            min=1,
            help="Attempts per lead to project (default: the pilot's largest attempt_no).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same numbers).")] = 0,
    draws: Annotated[
        int, typer.Option("--draws", min=100, max=20000, help="Simulation draws.")
    ] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Feasibility report and quote from a pilot's attempts and the full lead list."""
    from feasibility.report import build_report

    try:
        target_model = load_targets(targets) if targets else Targets()
        cost_model = load_costs(costs) if costs else Costs()
        attempts_frame = read_attempts_csv(attempts)
        leads_frame = read_leads_csv(leads)
        if sys.stderr.isatty():
            from rich.progress import Progress, SpinnerColumn, TextColumn

            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), transient=True
            ) as progress:
                progress.add_task("fitting models and simulating the projection", total=None)
                report = build_report(
                    attempts_frame,
                    leads_frame,
                    targets=target_model,
                    costs=cost_model,
                    max_attempts=max_attempts,
                    seed=seed,
                )
        else:
            report = build_report(
                attempts_frame,
                leads_frame,
                targets=target_model,
                costs=cost_model,
                max_attempts=max_attempts,
                seed=seed,
            )
    except FeasibilityError as exc:
        raise _fail(str(exc)) from None
    if html is not None:
        from feasibility.html import render_html

        try:
            html.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            raise _fail(f"cannot write {str(html)!r}: {exc.strerror}") from None
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        typer.echo(summary_text(report))
        if html is not None:
            typer.echo(f"HTML report written to {html}")


def register(app: typer.Typer) -> None:
    """Add the ``feasibility`` command to the ``pilotdial`` app."""
    app.command("feasibility")(feasibility_command)
