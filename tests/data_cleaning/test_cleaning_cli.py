"""The ``pilotdial clean`` command, run through Typer's CliRunner."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import typer
from typer.testing import CliRunner

from data_cleaning.cli import register

WriteText = Callable[..., Path]
WriteXlsx = Callable[..., Path]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps Typer in multi-command mode
        """Do nothing."""

    return app


def _run(*args: str) -> object:
    return CliRunner().invoke(_app(), ["clean", *map(str, args)])


def _outputs(directory: Path) -> tuple[Path, Path, Path]:
    return directory / "CLEANED.csv", directory / "REJECTS.csv", directory / "REPORT.json"


def test_clean_gbk_csv_with_dnc(write_text: WriteText, tmp_path: Path) -> None:
    source = write_text(
        "客户.csv",
        [
            ["客户", "联系电话", "备注"],
            ["王芳", "138 0013 8000", "=HYPERLINK()"],
            ["李强", "+86 139-0013-9000", ""],
            ["张伟", "13800138000", ""],
            ["赵敏", "电话待补", ""],
            ["刘洋", "(010) 6552 9988 分机 7", ""],
        ],
        encoding="gbk",
    )
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("13900139000\n")
    cleaned, rejects, report = _outputs(tmp_path)
    result = _run(source, "--out", cleaned, "--rejects", rejects, "--report", report, "--dnc", dnc)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with cleaned.open(encoding="utf-8", newline="") as handle:
        kept = list(csv.DictReader(handle))
    assert list(kept[0]) == [
        "客户",
        "联系电话",
        "备注",
        "phone_e164",
        "phone_type",
        "phone_region",
        "phone_timezone",
        "phone_extension",
        "phone_carrier",
        "phone_alternates",
    ]
    assert [(k["客户"], k["phone_e164"], k["phone_extension"]) for k in kept] == [
        ("王芳", "+8613800138000", ""),
        ("刘洋", "+861065529988", "7"),
    ]
    assert kept[1]["phone_type"] == "fixed_line"
    assert kept[1]["phone_timezone"] == "Asia/Shanghai"
    with rejects.open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["客户"], r["reject_reason"], r["duplicate_of_row"]) for r in rejected] == [
        ("李强", "dnc", ""),
        ("张伟", "duplicate", "2"),
        ("赵敏", "not_a_number", ""),
    ]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert list(data) == [
        "rows_in",
        "rows_out",
        "invalid",
        "duplicates",
        "dnc_suppressed",
        "by_reason",
        "by_type",
        "by_region",
        "by_timezone",
        "multi_number_cells",
        "elapsed_s",
    ]
    assert (
        data["rows_in"],
        data["rows_out"],
        data["invalid"],
        data["duplicates"],
        data["dnc_suppressed"],
    ) == (5, 2, 1, 1, 1)


def test_clean_xlsx_named_sheet_with_explicit_column(write_xlsx: WriteXlsx, tmp_path: Path) -> None:
    source = write_xlsx(
        "leads.xlsx",
        {
            "封面": [["x"]],
            "名单": [["号码A", "号码B"], ["abc", 13800138000], ["x", "+852 2123 4567"]],
        },
    )
    cleaned, rejects, report = _outputs(tmp_path)
    result = _run(
        source,
        "--out",
        cleaned,
        "--rejects",
        rejects,
        "--report",
        report,
        "--sheet",
        "名单",
        "--phone-column",
        "号码B",
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    data = json.loads(report.read_text())
    assert data["rows_out"] == 2
    assert data["by_timezone"] == {"Asia/Shanghai": 1, "Asia/Hong_Kong": 1}


def test_bad_input_exits_2_with_a_message_and_writes_nothing(
    write_text: WriteText, tmp_path: Path
) -> None:
    source = write_text("names.csv", [["name", "city"], ["王芳", "北京"]])
    cleaned, rejects, report = _outputs(tmp_path)
    result = _run(source, "--out", cleaned, "--rejects", rejects, "--report", report)
    assert result.exit_code == 2
    assert "no phone column found" in result.output  # type: ignore[attr-defined]
    assert "--phone-column" in result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    assert not cleaned.exists()
    assert not rejects.exists()
    assert not report.exists()

    ragged = write_text("ragged.csv", [["phone", "name"], ["13800138000"]])
    result = _run(ragged, "--out", cleaned, "--rejects", rejects, "--report", report)
    assert result.exit_code == 2
    assert "--allow-ragged" in result.output  # type: ignore[attr-defined]
    assert not cleaned.exists()
    assert list(tmp_path.glob("*.part")) == []

    for args, message in [
        (["--region", "XX"], "unknown region"),
        (["--exclude-type", "fax"], "unknown number type"),
        (["--encoding", "klingon"], "unknown encoding"),
    ]:
        result = _run(source, "--out", cleaned, "--rejects", rejects, "--report", report, *args)
        assert result.exit_code == 2
        assert message in result.output  # type: ignore[attr-defined]

    missing = _run(
        tmp_path / "nope.csv", "--out", cleaned, "--rejects", rejects, "--report", report
    )
    assert missing.exit_code == 2
    assert "check the path" in missing.output  # type: ignore[attr-defined]
