"""Peak memory and CPU of reading upload bombs, with the limits and with them lifted.

Each bomb is built here, small on disk, and read in a fresh child process the way the upload
and the worker read it: an XLSForm through ``surveys.service.parse_upload`` (what
``POST /questionnaires/import`` does before storing), a lead list through
``data_cleaning.clean_table`` (what the worker runs). The child runs twice: once as the code
is ("limits") and once with the size, ratio, dimension, column and cell limits lifted in that
child ("lifted" — how the readers behaved before the limits; the bombs are scaled down so the
lifted run stays within a couple of minutes and a few GiB). Peak RSS and CPU come from
``wait4`` on each child; "over base" is the peak above a child that only imports the readers.

    .venv/bin/python benchmarks/upload_bombs.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

BOMBS = ("baseline", "xlsform_strings", "list_strings", "list_dimension", "csv_wide")


def _rewrite(data: bytes, member: str, replace: Callable[[bytes], bytes]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        contents = {info.filename: archive.read(info) for info in archive.infolist()}
    contents[member] = replace(contents[member])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, body in contents.items():
            archive.writestr(name, body)
    return out.getvalue()


def _shared_string_bomb(data: bytes, marker: str, text: bytes) -> bytes:
    """Turn every cell holding ``marker`` into a reference to one shared string, ``text``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        contents = {info.filename: archive.read(info) for info in archive.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    contents[sheet] = re.sub(
        rb'<c r="([A-Z]+[0-9]+)" t="inlineStr"><is><t>' + marker.encode() + rb"</t></is></c>",
        rb'<c r="\1" t="s"><v>0</v></c>',
        contents[sheet],
    )
    contents["xl/sharedStrings.xml"] = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        b'uniqueCount="1"><si><t>' + text + b"</t></si></sst>"
    )
    contents["[Content_Types].xml"] = contents["[Content_Types].xml"].replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, body in contents.items():
            archive.writestr(name, body)
    return out.getvalue()


def _workbook(rows: list[list[str]], title: str = "Sheet") -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def build(kind: str, scale: float, directory: Path) -> Path:
    """Write one bomb (or the baseline file) and return its path."""
    big = b"A" * int((8 << 20) * scale)
    if kind == "baseline":
        path = directory / "leads.csv"
        path.write_bytes(b"name,phone\nWang,13800138000\nLi,13900139000\n")
    elif kind == "xlsform_strings":
        # One 8 MiB shared string used as the label of 20 questions.
        rows = [["type", "name", "label"]] + [["text", f"q{i}", "BIGLABEL"] for i in range(20)]
        data = _shared_string_bomb(_workbook(rows, "survey"), "BIGLABEL", big)
        path = directory / "form.xlsx"
        path.write_bytes(data)
    elif kind == "list_strings":
        # One 8 MiB shared string in the note column of 50 leads.
        rows = [["name", "phone", "note"]] + [
            ["Wang", f"1380013{i:04d}", "BIGNOTE"] for i in range(50)
        ]
        data = _shared_string_bomb(_workbook(rows), "BIGNOTE", big)
        path = directory / "leads.xlsx"
        path.write_bytes(data)
    elif kind == "list_dimension":
        # Two real rows claiming 16,384 columns x (1,000 x scale) rows.
        rows = [["name", "phone"], ["Wang", "13800138000"]]
        claim = f'<dimension ref="A1:XFD{int(1000 * scale)}"'.encode()
        data = _rewrite(
            _workbook(rows),
            "xl/worksheets/sheet1.xml",
            lambda xml: re.sub(rb'<dimension ref="[^"]*"', claim, xml),
        )
        path = directory / "claimed.xlsx"
        path.write_bytes(data)
    elif kind == "csv_wide":
        columns = int(200_000 * scale)
        header = "phone," + ",".join(f"c{i}" for i in range(columns))
        leads = "\n".join(f"1380013{i:04d}," + "," * (columns - 1) for i in range(20))
        path = directory / "wide.csv"
        path.write_text(header + "\n" + leads + "\n")
    else:
        raise SystemExit(f"unknown bomb {kind!r}; one of {', '.join(BOMBS)}")
    return path


def _lift_limits() -> None:
    """Lift every size limit of the readers in this process (the behaviour before them)."""
    import data_cleaning.readers as readers
    import surveys.workbook as workbook

    huge = 1 << 62
    for name in (
        "MAX_INFLATED_BYTES",
        "MAX_INFLATE_RATIO",
        "MAX_COLUMNS",
        "MAX_SHEET_CELLS",
        "MAX_CELL_CHARS",
    ):
        setattr(readers, name, huge)
    setattr(readers, "_SAMPLE_BYTES", 1 << 28)  # noqa: B010  (the 1 MiB first-line check)
    setattr(readers, "_FIELD_LIMIT", 1 << 30)  # noqa: B010
    for name in (
        "MAX_INFLATED_BYTES",
        "MAX_INFLATE_RATIO",
        "MAX_ROWS",
        "MAX_COLUMNS",
        "MAX_CELLS",
        "MAX_CELL_CHARS",
    ):
        setattr(workbook, name, huge)


def child(kind: str, path: Path, lifted: bool) -> None:
    """Read one file as the upload or the worker would; print the outcome."""
    if lifted:
        _lift_limits()
    if kind == "baseline":  # what every child imports, without reading anything
        import surveys.service  # noqa: F401

        print("imports only")
        return
    try:
        if kind == "xlsform_strings":
            from surveys import service

            parsed = service.parse_upload(filename=path.name, data=path.read_bytes())
            stored = len(repr(parsed.questionnaire.model_dump()))
            print(f"accepted: {stored:,} characters of questionnaire to store")
        else:
            from data_cleaning import CleaningOptions, clean_table

            run = clean_table(path, CleaningOptions(phone_column="phone"))
            kept = sum(sum(len(v) for v in row.original.values()) for chunk in run for row in chunk)
            print(f"accepted: {kept:,} characters of lead data")
    except Exception as error:  # the outcome is what is measured
        print(f"refused ({type(error).__name__}): {str(error)[:110]}")


def _measure(kind: str, path: Path, lifted: bool) -> tuple[float, float, str]:
    command = [sys.executable, __file__, "--child", kind, str(path)]
    if lifted:
        command.append("--lifted")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read().strip()
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped by wait4
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="bomb size factor")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--lifted", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.lifted)
        return
    with tempfile.TemporaryDirectory(prefix="upload-bombs-") as directory:
        base_rss, _, _ = _measure("baseline", build("baseline", 1.0, Path(directory)), False)
        print(f"baseline child (imports only): {base_rss:,.0f} MiB peak RSS\n")
        print(
            f"{'bomb':<16} {'on disk':>9}  {'run':<7} {'peak MiB':>9} {'over base':>10} "
            f"{'CPU s':>7}  outcome"
        )
        for kind in BOMBS[1:]:
            path = build(kind, args.scale, Path(directory))
            size = path.stat().st_size
            figures = {}
            for lifted in (True, False):
                rss, cpu, outcome = _measure(kind, path, lifted)
                run = "lifted" if lifted else "limits"
                figures[run] = (rss, cpu)
                print(
                    f"{kind:<16} {size / 1024:>7,.0f}KB  {run:<7} {rss:>9,.0f} "
                    f"{rss - base_rss:>10,.0f} {cpu:>7.2f}  {outcome}"
                )
            (rss_lifted, cpu_lifted), (rss_limits, cpu_limits) = (
                figures["lifted"],
                figures["limits"],
            )
            print(
                f"{'':<16} {'':>9}  ratio lifted/limits: peak RSS {rss_lifted / rss_limits:,.1f}x, "
                f"CPU {cpu_lifted / max(cpu_limits, 0.01):,.1f}x\n"
            )


if __name__ == "__main__":
    main()
