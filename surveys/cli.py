"""``pilotdial survey ...`` commands: AAPOR rates from counts, questionnaire validation.

``register(app)`` adds a ``survey`` sub-app to the project's Typer app:

* ``pilotdial survey rates COUNTS.csv [--e 0.5] [--json]``: AAPOR rates from a ``code,count``
  CSV; JSON keys ``RR1`` … ``CON3``, ``e`` and ``e_method``.
* ``pilotdial survey validate FILE [--json] [--ivr]``: check a questionnaire (YAML, JSON or
  XLSForm ``.xlsx``) as publishing would. Exit code 0 when publishable, 1 when it has errors,
  2 when the file cannot be read at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from surveys.aapor import compute_rates, parse_counts_csv
from surveys.exceptions import RatesInputError, SurveyError
from surveys.ivr import ivr_problems
from surveys.schema import Questionnaire, load_questionnaire
from surveys.validation import Problem, Severity, validate_questionnaire
from surveys.xlsform import import_xlsform

__all__ = ["register"]

_RATE_KEYS = [
    "RR1", "RR2", "RR3", "RR4", "RR5", "RR6",
    "COOP1", "COOP2", "COOP3", "COOP4",
    "REF1", "REF2", "REF3",
    "CON1", "CON2", "CON3",
]  # fmt: skip


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def rates(
    counts_csv: Annotated[
        Path, typer.Argument(help="CSV with header 'code,count'; codes I,P,R,NC,O,UH,UO,NE.")
    ],
    e: Annotated[
        float | None,
        typer.Option("--e", help="Eligible share of unknown cases; default: estimated."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Compute AAPOR RR1–RR6, COOP1–4, REF1–3 and CON1–3 from disposition counts."""
    try:
        text = counts_csv.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(f"{counts_csv} does not exist; pass the path of a code,count CSV") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {counts_csv}: {exc}; save it as UTF-8 text") from None
    try:
        result = compute_rates(parse_counts_csv(text), e=e)
    except RatesInputError as exc:
        raise _fail(f"{counts_csv}: {exc}") from None
    data = result.model_dump()
    if as_json:
        typer.echo(json.dumps({key: data[key] for key in [*_RATE_KEYS, "e", "e_method"]}))
        return
    table = Table(title="AAPOR outcome rates")
    table.add_column("rate")
    table.add_column("value", justify="right")
    for key in _RATE_KEYS:
        value = data[key]
        table.add_row(key, "undefined" if value is None else f"{value:.4f}")
    e_text = "undefined" if result.e is None else f"{result.e:.4f}"
    table.add_row("e", f"{e_text} ({result.e_method})")
    Console().print(table)


def _load(path: Path) -> tuple[Questionnaire, list[Problem]]:
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        imported = import_xlsform(path)
        return imported.questionnaire, imported.all_problems()
    questionnaire = load_questionnaire(path)
    return questionnaire, validate_questionnaire(questionnaire)


def validate(
    path: Annotated[Path, typer.Argument(help="Questionnaire: .yaml, .yml, .json or .xlsx.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print problems as JSON.")] = False,
    ivr: Annotated[bool, typer.Option("--ivr", help="Also check it can run by keypad.")] = False,
) -> None:
    """Validate a questionnaire as publishing would; exit 1 if it has errors."""
    if not path.exists():
        raise _fail(f"{path} does not exist; pass the questionnaire file")
    try:
        questionnaire, problems = _load(path)
    except SurveyError as exc:
        raise _fail(f"{path}: {exc}") from None
    if ivr:
        problems += ivr_problems(questionnaire)
    errors = [p for p in problems if p.severity == Severity.ERROR]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "questionnaire": questionnaire.id,
                    "publishable": not errors,
                    "problems": [p.model_dump(mode="json") for p in problems],
                },
                ensure_ascii=False,
            )
        )
    else:
        for problem in problems:
            typer.echo(problem.describe(), err=problem.severity == Severity.ERROR)
        verdict = "publishable" if not errors else f"not publishable: {len(errors)} error(s)"
        typer.echo(f"{questionnaire.id}: {verdict}, {len(problems) - len(errors)} warning(s)")
    if errors:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the ``survey`` command group to the project CLI."""
    survey = typer.Typer(
        help="Questionnaires and AAPOR survey outcome rates.", no_args_is_help=True
    )
    survey.command("rates")(rates)
    survey.command("validate")(validate)
    app.add_typer(survey, name="survey")
