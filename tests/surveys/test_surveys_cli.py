"""The ``survey`` CLI commands, through a Typer app of our own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from surveys.cli import register


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root."""

    register(app)
    return app


def counts_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "counts.csv"
    path.write_text(text, encoding="utf-8")
    return path


WORKED = "code,count\nI,5\nP,3\nR,2\nNC,1\nO,2\nUH,1\nUO,1\nNE,1\n"


def test_rates_json(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["survey", "rates", str(counts_file(tmp_path, WORKED)), "--e", "0.5", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data)[:16] == [
        "RR1",
        "RR2",
        "RR3",
        "RR4",
        "RR5",
        "RR6",
        "COOP1",
        "COOP2",
        "COOP3",
        "COOP4",
        "REF1",
        "REF2",
        "REF3",
        "CON1",
        "CON2",
        "CON3",
    ]
    assert data["RR1"] == pytest.approx(1 / 3)
    assert data["RR3"] == pytest.approx(5 / 14)
    assert data["CON1"] == pytest.approx(0.8)
    assert data["e"] == 0.5


def test_rates_estimates_e_and_prints_a_table(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["survey", "rates", str(counts_file(tmp_path, WORKED))])
    assert result.exit_code == 0, result.output
    assert "RR1" in result.stdout
    assert "0.3333" in result.stdout
    assert "proportional" in result.stdout


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        ("code,count\nZZ,1\n", [], "unknown code 'ZZ'"),
        (WORKED, ["--e", "2"], "between 0 and 1"),
    ],
)
def test_rates_bad_input_exits_2(
    app: typer.Typer, tmp_path: Path, content: str, args: list[str], needle: str
) -> None:
    result = CliRunner().invoke(
        app, ["survey", "rates", str(counts_file(tmp_path, content)), *args]
    )
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.output


def test_rates_missing_file(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["survey", "rates", str(tmp_path / "none.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_validate_sample(app: typer.Typer, sample_path: Path) -> None:
    result = CliRunner().invoke(app, ["survey", "validate", str(sample_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == {"questionnaire": "customer_satisfaction", "publishable": True, "problems": []}


def test_validate_reports_errors_and_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "id: bad\ntitle: Bad\nlanguages: [en]\nquestions:\n"
        "  - {name: a, type: integer, label: A}\n"
        "  - {name: b, type: text, label: B, relevant: '${a} >'}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["survey", "validate", str(path)])
    assert result.exit_code == 1
    assert "error in question b, relevant, character" in result.stderr
    assert "not publishable: 1 error(s)" in result.stdout


def test_validate_unreadable_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "id: x\nquestions: [{name: q, type: slider, label: Q}]\ntitle: T\nlanguages: [en]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["survey", "validate", str(path)])
    assert result.exit_code == 2
    assert "questions[0] (name=q).type" in result.stderr


def test_validate_xlsform_reports_rows(app: typer.Typer, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "survey"
    for row in (["type", "name", "label"], ["integer", "age", "Age"], ["image", "pic", "Photo"]):
        sheet.append(row)
    path = tmp_path / "form.xlsx"
    book.save(path)
    result = CliRunner().invoke(app, ["survey", "validate", str(path), "--json"])
    # A photo cannot be taken on the phone: kept as "not asked", a warning at its row.
    assert result.exit_code == 0
    (problem,) = json.loads(result.stdout)["problems"]
    assert (problem["sheet"], problem["row"], problem["column"], problem["code"]) == (
        "survey",
        3,
        "A",
        "not_asked_by_phone",
    )
