"""Self-contained HTML rendering of a feasibility report.

Charts are drawn with matplotlib to inline SVG (no scripts, no fonts or files fetched), the page
has print styles for A4, so sales can send the file as it is or print it to PDF. SVG ids are
salted with the report digest, so the same report renders to the same bytes.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from feasibility.report import FeasibilityReport

__all__ = [
    "attempts_chart",
    "attempts_figure",
    "projection_chart",
    "projection_figure",
    "render_html",
    "segments_chart",
]

BLUE = "#1f5fa8"
GREY = "#8a8f98"
ORANGE = "#d9822b"


def _svg(figure: Figure, salt: str) -> str:
    buffer = io.StringIO()
    with (
        matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}),
        warnings.catch_warnings(),
    ):
        # Text stays text in the SVG (svg.fonttype none), so the reader's browser draws CJK
        # labels with its own fonts; matplotlib only measures them with a Latin font here.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        figure.savefig(
            buffer,
            format="svg",
            bbox_inches="tight",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _integer_ticks(axis: Axes, keys: list[int]) -> None:
    """Whole-number ticks, at most 8: 15 labels on a 3-inch axis ran into "1011121314"."""
    if len(keys) <= 8:
        axis.set_xticks(keys)
    else:
        axis.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    if len(keys) == 1:
        axis.set_xlim(keys[0] - 0.5, keys[0] + 0.5)


def attempts_chart(report: FeasibilityReport) -> str:
    """SVG: cumulative reach by attempt (model band, geometric, pilot observed)."""
    return _svg(attempts_figure(report), report.inputs_digest[:16] + "curve")


def attempts_figure(report: FeasibilityReport) -> Figure:
    """The attempts-curve figure (for the SVG, and for tests of its layout)."""
    figure, axis = plt.subplots(figsize=(6.4, 3.2))
    points = report.attempts_curve
    k = [p.attempt for p in points]
    axis.fill_between(
        k,
        [p.cumulative_low * 100 for p in points],
        [p.cumulative_high * 100 for p in points],
        color=BLUE,
        alpha=0.15,
        label="model P10-P90",
    )
    axis.plot(
        k,
        [p.cumulative_contact * 100 for p in points],
        color=BLUE,
        marker="o",
        markersize=3,
        label="beta-geometric (heterogeneous leads)",
    )
    axis.plot(
        k,
        [p.cumulative_geometric * 100 for p in points],
        color=GREY,
        linestyle="--",
        label="plain geometric",
    )
    observed = [
        (p.attempt, p.observed_cumulative * 100)
        for p in points
        if p.observed_cumulative is not None
    ]
    if observed:
        xs = [x for x, _ in observed]
        ys = [y for _, y in observed]
        axis.scatter(xs, ys, color=ORANGE, zorder=3, s=14, label="pilot observed")
    axis.axvline(report.recommended_max_attempts, color=ORANGE, linewidth=0.8, linestyle=":")
    _integer_ticks(axis, k)
    axis.set_xlabel("attempts per lead")
    axis.set_ylabel("leads reached, %")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    return figure


def segments_chart(report: FeasibilityReport) -> str:
    """SVG: conversion per contact by level, raw interval and pooled estimate, per attribute."""
    tables = report.segments[:4]
    if not tables:
        return ""
    rows = [
        (f"{t.attribute}={lvl.level}", lvl) for t in tables for lvl in t.levels if lvl.leads > 0
    ]
    figure, axes = plt.subplots(1, 2, figsize=(7.2, 0.28 * len(rows) + 0.9), sharey=True)
    labels = [name for name, _ in rows]
    positions = list(range(len(rows)))[::-1]
    for axis, what in zip(axes, ("contact", "conversion"), strict=True):
        for y, (_, level) in zip(positions, rows, strict=True):
            pooled = level.contact_pooled if what == "contact" else level.conversion_pooled
            axis.plot([pooled.low * 100, pooled.high * 100], [y, y], color=GREY, linewidth=2)
            axis.plot(pooled.estimate * 100, y, "o", color=BLUE, markersize=4)
        overall = report.contact_rate if what == "contact" else report.conversion_rate
        axis.axvline(overall.estimate * 100, color=ORANGE, linewidth=0.8, linestyle=":")
        axis.set_xlabel(f"{what} rate, % (pooled estimate and its 90% interval)", fontsize=7)
        axis.grid(alpha=0.3, axis="x")
        axis.set_xlim(left=0)
    axes[0].set_yticks(positions)
    axes[0].set_yticklabels(labels, fontsize=7)
    return _svg(figure, report.inputs_digest[:16] + "segments")


def projection_chart(report: FeasibilityReport) -> str:
    """SVG: projection fan, P10-P90 of conversions and contacts by attempts allowed."""
    return _svg(projection_figure(report), report.inputs_digest[:16] + "projection")


def projection_figure(report: FeasibilityReport) -> Figure:
    """The projection-fan figure (for the SVG, and for tests of its layout)."""
    figure, axes = plt.subplots(1, 2, figsize=(7.2, 2.8))
    fan = report.projection_by_attempts
    keys = [p.max_attempts for p in fan]
    for axis, what in zip(axes, ("contacts", "conversions"), strict=True):
        bands = [getattr(p, what) for p in fan]
        axis.fill_between(
            keys,
            [b.p10 for b in bands],
            [b.p90 for b in bands],
            color=BLUE,
            alpha=0.2,
            label="P10-P90",
        )
        axis.plot(keys, [b.p50 for b in bands], color=BLUE, marker="o", markersize=3, label="P50")
        for marker in sorted({report.max_attempts, report.recommended_max_attempts}):
            axis.axvline(marker, color=GREY, linewidth=0.8, linestyle=":")
        if what == "conversions" and report.targets.conversions is not None:
            wanted = report.targets.conversions - report.pilot.leads_converted
            axis.axhline(wanted, color=ORANGE, linestyle="--", linewidth=1, label="still wanted")
        _integer_ticks(axis, keys)
        axis.set_xlabel("max attempts per lead")
        axis.set_title(f"{what}, rest of list", fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return figure


def _environment() -> jinja2.Environment:
    source = (Path(__file__).parent / "templates" / "report.html.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["pct"] = lambda v, d=1: "-" if v is None else f"{v * 100:.{d}f}%"
    environment.filters["num"] = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
    environment.globals["template_source"] = source
    return environment


def render_html(report: FeasibilityReport) -> str:
    """Render the report as one self-contained HTML page with inline SVG charts."""
    environment = _environment()
    template = environment.from_string(environment.globals["template_source"])  # type: ignore[arg-type]
    return template.render(
        report=report,
        charts={
            "attempts": attempts_chart(report),
            "segments": segments_chart(report),
            "projection": projection_chart(report),
        },
    )
