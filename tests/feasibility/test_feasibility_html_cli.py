"""HTML report (self-contained, deterministic) and the ``pilotdial feasibility`` command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from feasibility.cli import register
from feasibility.html import render_html
from feasibility.report import FeasibilityReport, build_report
from feasibility.synthetic import SyntheticList


@pytest.fixture(scope="module")
def report(synthetic_list: SyntheticList, pilot_attempts: pd.DataFrame) -> FeasibilityReport:
    return build_report(pilot_attempts, synthetic_list.leads, seed=1, draws=200)


def test_html_is_self_contained_with_three_charts(report: FeasibilityReport) -> None:
    page = render_html(report)
    assert page.count("<svg") >= 3
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert "@page" in page  # print styles for PDF
    assert "1.34" in page
    assert "1.68" in page
    assert render_html(report) == page


@pytest.fixture(scope="module")
def csv_files(
    tmp_path_factory: pytest.TempPathFactory,
    synthetic_list: SyntheticList,
    pilot_attempts: pd.DataFrame,
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("csv")
    pilot_attempts.to_csv(folder / "attempts.csv", index=False)
    synthetic_list.leads.to_csv(folder / "leads.csv", index=False)
    return folder / "attempts.csv", folder / "leads.csv"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "feasibility" a subcommand
        """Nothing."""

    return app


def test_cli_json_and_html(csv_files: tuple[Path, Path], tmp_path: Path) -> None:
    attempts, leads = csv_files
    (tmp_path / "t.json").write_text('{"conversions": 100, "seats": 10, "deadline_days": 5}')
    html = tmp_path / "r.html"
    result = CliRunner().invoke(
        _app(),
        [
            "feasibility",
            "--attempts",
            str(attempts),
            "--leads",
            str(leads),
            "--targets",
            str(tmp_path / "t.json"),
            "--max-attempts",
            "4",
            "--seed",
            "3",
            "--json",
            "--html",
            str(html),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["projection"]["max_attempts"] == 4
    assert data["seed"] == 3
    assert data["targets"]["conversions"] == 100
    assert "<svg" in html.read_text()


def test_cli_summary_text(csv_files: tuple[Path, Path]) -> None:
    attempts, leads = csv_files
    result = CliRunner().invoke(
        _app(),
        ["feasibility", "--attempts", str(attempts), "--leads", str(leads), "--draws", "200"],
    )
    assert result.exit_code == 0, result.output
    assert "Verdict:" in result.stdout
    assert "month 1 1.68, month 2 1.49, steady 1.34, holiday 4.02" in result.stdout


def test_cli_bad_input_exits_2_with_one_line(csv_files: tuple[Path, Path], tmp_path: Path) -> None:
    attempts, leads = csv_files
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(attempts)
    frame.loc[0, "disposition"] = "hung_up"
    frame.to_csv(bad, index=False)
    result = CliRunner().invoke(
        _app(), ["feasibility", "--attempts", str(bad), "--leads", str(leads)]
    )
    assert result.exit_code == 2
    assert "unknown disposition" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "c.json").write_text('{"vat_rate": 2}')
    result = CliRunner().invoke(
        _app(),
        [
            "feasibility",
            "--attempts",
            str(attempts),
            "--leads",
            str(leads),
            "--costs",
            str(tmp_path / "c.json"),
        ],
    )
    assert result.exit_code == 2
    assert "vat_rate" in result.stderr
