"""The ``pilotdial clean`` command: clean a lead list into CLEANED/REJECTS/REPORT files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from data_cleaning.models import CleaningOptions
    from data_cleaning.pipeline import CleaningRun
    from data_cleaning.suppression import NumberSet

__all__ = ["register"]

_DEFAULT_MAX_MB = 4096


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def clean(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="CSV, TSV or XLSX lead list.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write CLEANED.csv.")],
    rejects: Annotated[Path, typer.Option("--rejects", help="Where to write REJECTS.csv.")],
    report: Annotated[Path, typer.Option("--report", help="Where to write REPORT.json.")],
    phone_column: Annotated[
        str | None, typer.Option("--phone-column", help="Phone column name (else detected).")
    ] = None,
    region: Annotated[str, typer.Option("--region", help="Default region of the numbers.")] = "CN",
    dnc: Annotated[
        list[Path] | None,
        typer.Option(
            "--dnc", help="Do-not-call list: CSV with a phone column, or a number a line."
        ),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="utf-8, gbk, gb18030 or big5 (else detected).")
    ] = None,
    sheet: Annotated[
        str | None, typer.Option("--sheet", help="XLSX sheet (else the first).")
    ] = None,
    exclude_type: Annotated[
        list[str] | None,
        typer.Option("--exclude-type", help="Reject numbers of this type (e.g. toll_free)."),
    ] = None,
    language: Annotated[
        str, typer.Option("--language", help="Language of region and carrier names (en, zh).")
    ] = "en",
    allow_ragged: Annotated[
        bool, typer.Option("--allow-ragged", help="Pad short rows, keep surplus cells.")
    ] = False,
    max_size_mb: Annotated[
        int, typer.Option("--max-size-mb", help="Refuse inputs bigger than this.")
    ] = _DEFAULT_MAX_MB,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default: up to 2).")
    ] = None,
) -> None:
    """Clean a lead list: normalise, deduplicate, suppress do-not-call numbers, enrich."""
    # Imported here, not at the top: `pilotdial clean --help` needs none of it.
    from data_cleaning.exceptions import DataCleaningError
    from data_cleaning.models import CleaningOptions, NumberType
    from data_cleaning.suppression import NumberSet, load_dnc_file

    excluded: set[NumberType] = set()
    for name in exclude_type or []:
        try:
            excluded.add(NumberType(name.strip().lower()))
        except ValueError:
            known = ", ".join(t.value for t in NumberType)
            raise _fail(f"unknown number type {name!r}: use one of {known}") from None
    options = CleaningOptions(
        default_region=region,
        excluded_types=frozenset(excluded),
        phone_column=phone_column,
        encoding=encoding,
        sheet=sheet,
        allow_ragged=allow_ragged,
        max_input_bytes=max_size_mb * 2**20,
        language=language,
        workers=workers,
    )
    # The CLI keeps nothing: the do-not-call numbers are held for this run only, as integers
    # (a binary search per chunk instead of an HMAC per number).
    suppression = NumberSet()
    try:
        for path in dnc or []:
            loaded = load_dnc_file(path, None, default_region=region)
            assert isinstance(loaded.suppression, NumberSet)
            suppression.update(loaded.suppression)
            if loaded.rejected:
                typer.echo(
                    f"warning: {path.name}: {len(loaded.rejected)} line(s) are not valid numbers "
                    f"and were ignored (first: row {loaded.rejected[0][0]})",
                    err=True,
                )
        run = _run_with_progress(input_path, out, rejects, report, options, suppression)
    except DataCleaningError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(f"{error.filename or ''}: {error.strerror}; check the path") from None
    result = run.report
    if result.ragged_rows:
        shown = ", ".join(str(n) for n in run.ragged_examples[:5])
        typer.echo(
            f"warning: {result.ragged_rows} ragged row(s) were padded or had surplus cells kept "
            f"(rows {shown}{', ...' if result.ragged_rows > 5 else ''})",
            err=True,
        )
    typer.echo(
        f"{result.rows_in} rows in: {result.rows_out} kept, {result.invalid} invalid, "
        f"{result.duplicates} duplicates, {result.dnc_suppressed} on do-not-call lists "
        f"({result.elapsed_s:.1f} s)",
        err=True,
    )
    if result.cells_split:
        dropped = sum(result.alternates_dropped.values())
        typer.echo(
            f"{result.cells_split} phone cell(s) held several numbers: the first valid one is "
            f"the lead's, {result.alternates_kept} other(s) kept in phone_alternates, "
            f"{dropped} dropped (see multi_number_cells in the report)",
            err=True,
        )


def _run_with_progress(
    input_path: Path,
    out: Path,
    rejects: Path,
    report: Path,
    options: CleaningOptions,
    suppression: NumberSet,
) -> CleaningRun:
    from data_cleaning.models import CleaningProgress
    from data_cleaning.writers import clean_to_files

    if not sys.stderr.isatty():
        return clean_to_files(input_path, out, rejects, report, options, suppression)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("cleaning {task.fields[rows]:,} rows"),
        BarColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("clean", total=1.0, rows=0)

        def update(state: CleaningProgress) -> None:
            bar.update(task, completed=state.fraction or 0.0, rows=state.rows_done)

        return clean_to_files(
            input_path, out, rejects, report, options, suppression, progress=update
        )


def register(app: typer.Typer) -> None:
    """Add the ``clean`` command to the ``pilotdial`` Typer app."""
    app.command("clean")(clean)
