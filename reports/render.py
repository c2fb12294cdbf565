"""Rendering a :class:`~reports.document.Document`: XLSX, self-contained HTML, CSV.

- XLSX (openpyxl): one sheet per section, real numbers and dates with number formats, the
  header row frozen and filtered, a cover sheet with the facts and KPIs.
- HTML: one file, no external resources: inline CSS and inline SVG charts, print rules so a
  browser's "Save as PDF" gives clean A4 landscape pages (headers repeat, rows don't split).
- CSV: one section (the per-call detail), UTF-8 with BOM so Excel opens Chinese correctly;
  cells a spreadsheet would run as formulas are neutralised.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from data_cleaning.writers import neutralise_row
from reports.document import Chart, Column, ColumnKind, Document, Section
from reports.exceptions import ReportInputError

__all__ = ["FORMATS", "render", "svg_chart", "to_csv", "to_html", "to_xlsx"]

FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}

_NUMBER_FORMATS = {
    ColumnKind.int: "#,##0",
    ColumnKind.float: "0.00",
    ColumnKind.pct: "0.00%",
    ColumnKind.seconds: "#,##0.0",
    ColumnKind.datetime: "yyyy-mm-dd hh:mm",
    ColumnKind.date: "yyyy-mm-dd",
    ColumnKind.money: "#,##0.00",
}


def _cell_text(value: Any, kind: ColumnKind, language: str) -> str:
    if value is None:
        return "—"
    if kind is ColumnKind.pct and isinstance(value, int | float):
        return f"{value:.2%}"
    if kind is ColumnKind.int and isinstance(value, int | float):
        return f"{value:,.0f}"
    if kind in (ColumnKind.float,) and isinstance(value, int | float):
        return f"{value:,.2f}"
    if kind is ColumnKind.seconds and isinstance(value, int | float):
        return f"{value:,.1f}"
    if kind is ColumnKind.money:
        return f"{float(value):,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool) or kind is ColumnKind.bool:
        yes, no = ("✓", "✗")
        return yes if value else no
    return str(value)


# --------------------------------------------------------------------------- XLSX


def _sheet_name(title: str, used: set[str]) -> str:
    name = "".join(ch for ch in title if ch not in "[]:*?/\\")[:28] or "Sheet"
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name[:25]} {n}", n + 1
    used.add(candidate)
    return candidate


def _xlsx_value(value: Any, kind: ColumnKind) -> Any:
    if value is None:
        return None
    if kind is ColumnKind.money:
        return float(value)
    if kind is ColumnKind.bool and isinstance(value, bool):
        return "✓" if value else "✗"
    return value


def to_xlsx(doc: Document) -> bytes:
    """The document as a workbook: a cover sheet, then one sheet per section."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    cover = book.active
    cover.title = "Info"
    cover.append([doc.title])
    cover["A1"].font = Font(bold=True, size=14)
    for label, value in doc.facts:
        cover.append([label, value])
    cover.append(["Generated (UTC)", doc.generated_at.replace(tzinfo=None)])
    cover.cell(row=cover.max_row, column=2).number_format = "yyyy-mm-dd hh:mm"
    if doc.kpis:
        cover.append([])
        for kpi in doc.kpis:
            cover.append([kpi.label, kpi.actual, kpi.target])
    cover.column_dimensions["A"].width = 32
    cover.column_dimensions["B"].width = 40
    header_fill = PatternFill("solid", fgColor="1F4E79")
    used = {"Info"}
    for section in doc.sections:
        sheet = book.create_sheet(_sheet_name(section.title, used))
        sheet.append([c.label for c in section.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True, color="FFFFFF")
            cell.fill = header_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        rows = list(section.rows)
        if section.totals is not None:
            rows.append(section.totals)
        for row in rows:
            sheet.append([_xlsx_value(row.get(c.key), c.kind) for c in section.columns])
        for index, column in enumerate(section.columns, start=1):
            letter = get_column_letter(index)
            fmt = _NUMBER_FORMATS.get(column.kind)
            if fmt:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = fmt
            width = 18 if column.kind is ColumnKind.datetime else max(10, len(column.label) + 4)
            sheet.column_dimensions[letter].width = min(width, 40)
        if section.totals is not None:
            for cell in sheet[sheet.max_row]:
                cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        if section.columns:
            last = get_column_letter(len(section.columns))
            sheet.auto_filter.ref = f"A1:{last}{max(1, len(section.rows) + 1)}"
        if section.note:
            sheet.append([])
            sheet.append([section.note])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- CSV


def to_csv(section: Section, language: str) -> bytes:
    """One section as CSV (UTF-8 with BOM), values as plain text in the report's units."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.label for c in section.columns])
    for row in section.rows:
        cells = []
        for c in section.columns:
            value = row.get(c.key)
            if isinstance(value, datetime):
                cells.append(value.strftime("%Y-%m-%d %H:%M:%S"))
            elif value is None:
                cells.append("")
            elif c.kind is ColumnKind.bool:
                cells.append("1" if value else "0")
            else:
                cells.append(str(value))
        writer.writerow(neutralise_row(cells))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --------------------------------------------------------------------------- SVG charts

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))


def _x_label(value: Any) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.strftime("%m-%d")
    if isinstance(value, datetime):
        if value.hour == 0 and value.minute == 0:
            return value.strftime("%m-%d")
        return value.strftime("%m-%d %H:%M")
    return str(value)


def svg_chart(chart: Chart, rows: Sequence[dict[str, Any]], width: int = 960) -> str:
    """Bars for the first series, lines with markers for the others, with axes and a legend."""
    height, left, right, top, bottom = 300, 56, 16, 34, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [r for r in rows if r.get(chart.x_key) is not None]
    if not points:
        return ""
    values = [float(r.get(key) or 0) for r in points for key, _label in chart.series]
    top_value = _nice_max(max(values) if values else 1.0)
    n = len(points)
    slot = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{html.escape(chart.title)}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#444">{value:,.4g}</text>'
        )

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * (value / top_value)

    bar_key = chart.series[0][0]
    bar_w = max(1.0, slot * 0.7)
    for index, row in enumerate(points):
        value = float(row.get(bar_key) or 0)
        x = left + index * slot + (slot - bar_w) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{y_of(value):.1f}" width="{bar_w:.1f}" '
            f'height="{top + plot_h - y_of(value):.1f}" fill="{_PALETTE[0]}" opacity="0.85">'
            f"<title>{html.escape(_x_label(row[chart.x_key]))}: {value:,.4g}</title></rect>"
        )
    for series_index, (key, _label) in enumerate(chart.series[1:], start=1):
        color = _PALETTE[series_index % len(_PALETTE)]
        coords = [
            (left + i * slot + slot / 2, y_of(float(r.get(key) or 0))) for i, r in enumerate(points)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        if n <= 60:
            parts.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in coords
            )
    step = max(1, math.ceil(n / 16))
    for index in range(0, n, step):
        x = left + index * slot + slot / 2
        label = html.escape(_x_label(points[index][chart.x_key]))
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" font-size="10" fill="#444" '
            f'text-anchor="end" transform="rotate(-35 {x:.1f} {top + plot_h + 14})">{label}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="#444"/>'
    )
    legend_x = left
    for series_index, (_key, label) in enumerate(chart.series):
        color = _PALETTE[series_index % len(_PALETTE)]
        parts.append(
            f'<rect x="{legend_x}" y="10" width="12" height="12" fill="{color}"/>'
            f'<text x="{legend_x + 16}" y="20" font-size="12" fill="#222">'
            f"{html.escape(label)}</text>"
        )
        legend_x += 28 + sum(13 if ord(ch) > 0x2E80 else 7 for ch in label)
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- HTML

_CSS = """
@page { size: A4 landscape; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue",
  Arial, sans-serif; color: #222; margin: 24px; font-size: 13px; }
header { display: flex; align-items: center; gap: 16px; border-bottom: 3px solid #1f4e79;
  padding-bottom: 8px; margin-bottom: 12px; }
header img { max-height: 56px; max-width: 200px; }
h1 { font-size: 22px; margin: 0; color: #1f4e79; }
h2 { font-size: 16px; color: #1f4e79; margin: 22px 0 8px; border-left: 4px solid #1f4e79;
  padding-left: 8px; break-after: avoid; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.facts dt { font-weight: 600; color: #555; }
dl.facts dd { margin: 0; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.kpi { border: 1px solid #ccd; border-radius: 6px; padding: 8px 12px; min-width: 180px; }
.kpi .v { font-size: 20px; font-weight: 700; }
.kpi.met { border-color: #2ca02c; } .kpi.missed { border-color: #d62728; }
.kpi .t { color: #666; font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-size: 12px; }
thead { display: table-header-group; }
th { background: #1f4e79; color: #fff; font-weight: 600; padding: 4px 6px; text-align: left; }
td { border-bottom: 1px solid #e3e3e3; padding: 3px 6px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr { break-inside: avoid; }
tr.total td { font-weight: 700; border-top: 2px solid #1f4e79; }
tbody tr:nth-child(even) td { background: #f6f8fb; }
.note { color: #555; font-size: 11px; margin: 4px 0 10px; }
.chart { max-width: 100%; break-inside: avoid; margin: 6px 0; }
section { break-inside: auto; }
footer { color: #777; font-size: 11px; margin-top: 18px; border-top: 1px solid #ccc;
  padding-top: 6px; }
@media print { body { margin: 0; } .chart { page-break-inside: avoid; } }
"""

_NUMERIC = {
    ColumnKind.int,
    ColumnKind.float,
    ColumnKind.pct,
    ColumnKind.seconds,
    ColumnKind.money,
}


def _table(section: Section, language: str, limit: int | None) -> str:
    head = "".join(f"<th>{html.escape(c.label)}</th>" for c in section.columns)
    body: list[str] = []
    rows = section.rows if limit is None else section.rows[:limit]

    def row_html(row: dict[str, Any], cls: str = "") -> str:
        cells = "".join(
            f'<td class="{"n" if c.kind in _NUMERIC else ""}">'
            f"{html.escape(_cell_text(row.get(c.key), c.kind, language))}</td>"
            for c in section.columns
        )
        return f'<tr class="{cls}">{cells}</tr>'

    body.extend(row_html(r) for r in rows)
    if section.totals is not None:
        body.append(row_html(section.totals, "total"))
    more = ""
    if limit is not None and len(section.rows) > limit:
        more = (
            f'<p class="note">{limit:,} of {len(section.rows):,} rows shown; '
            "the XLSX and CSV have them all.</p>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def to_html(doc: Document, *, row_limit: int | None = 2000) -> str:
    """The document as one self-contained HTML page (inline CSS and SVG; no network)."""
    lang_attr = {"zh-Hans": "zh-Hans", "zh-Hant": "zh-Hant", "en": "en"}[doc.language]
    logo = (
        f'<img src="{html.escape(doc.logo_data_uri)}" alt="">'
        if doc.logo_data_uri and doc.logo_data_uri.startswith("data:image/")
        else ""
    )
    facts = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>" for label, value in doc.facts
    )
    kpis = "".join(
        f'<div class="kpi {"" if k.met is None else ("met" if k.met else "missed")}">'
        f'<div class="t">{html.escape(k.label)}</div><div class="v">{html.escape(k.actual)}</div>'
        f'<div class="t">{html.escape(k.target)}</div></div>'
        for k in doc.kpis
    )
    sections = []
    for section in doc.sections:
        chart = svg_chart(section.chart, section.rows) if section.chart and section.rows else ""
        note = f'<p class="note">{html.escape(section.note)}</p>' if section.note else ""
        sections.append(
            f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>'
            f"{chart}{_table(section, doc.language, row_limit)}{note}</section>"
        )
    generated = doc.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<!DOCTYPE html><html lang="{lang_attr}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(doc.title)} · {html.escape(doc.client_name)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<header>{logo}<div><h1>{html.escape(doc.title)}</h1>"
        f'<dl class="facts">{facts}</dl></div></header>'
        f"{f'<div class=kpis>{kpis}</div>' if kpis else ''}"
        f"{''.join(sections)}"
        f"<footer>Pilotdial · {html.escape(generated)}</footer></body></html>"
    )


def render(doc: Document, fmt: str) -> bytes:
    """The document in ``fmt`` (xlsx, html or csv; csv is the first section only)."""
    if fmt == "xlsx":
        return to_xlsx(doc)
    if fmt == "html":
        return to_html(doc).encode("utf-8")
    if fmt == "csv":
        if not doc.sections:
            raise ReportInputError("this report has no section to write as CSV")
        return to_csv(doc.sections[0], doc.language)
    raise ReportInputError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def column_keys(columns: Sequence[Column]) -> list[str]:
    return [c.key for c in columns]
