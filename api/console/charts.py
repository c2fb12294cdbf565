"""Small inline SVG charts drawn on the server: no chart library, nothing to download.

Each function returns markup safe to put in a template; labels are escaped. Bars carry a
``<title>`` so a screen reader and a hover both tell the exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

__all__ = ["hbar_chart", "line_chart", "stacked_bar_chart"]

_COLOURS = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2")


def hbar_chart(
    items: Sequence[tuple[str, float]],
    *,
    width: int = 560,
    bar_height: int = 22,
    value_format: str = "{:,.0f}",
    title: str = "",
) -> Markup:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    if not items:
        return Markup("")
    label_w = min(220, max(60, 9 * max(len(label) for label, _ in items)))
    top = max(value for _, value in items) or 1.0
    plot_w = width - label_w - 70
    height = len(items) * (bar_height + 6) + 6
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (label, value) in enumerate(items):
        y = 6 + index * (bar_height + 6)
        w = max(1.0, plot_w * value / top) if value else 0.0
        text = value_format.format(value)
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
            f'font-size="13">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{colour}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + bar_height * 0.7:.1f}" '
            f'font-size="13">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value is escaped above


def line_chart(
    points: Sequence[tuple[str, float]],
    *,
    width: int = 560,
    height: int = 200,
    cap: float | None = None,
    title: str = "",
) -> Markup:
    """A line over labelled points; ``cap`` draws a dashed horizontal limit line."""
    if not points:
        return Markup("")
    values = [v for _, v in points] + ([cap] if cap is not None else [])
    top = max(values) * 1.15 or 1.0
    left, bottom, right = 40, 24, 10
    plot_w, plot_h = width - left - right, height - bottom - 10
    step = plot_w / max(1, len(points) - 1)

    def y_of(value: float) -> float:
        return 10 + plot_h * (1 - value / top)

    path = " ".join(
        f"{'M' if i == 0 else 'L'}{left + i * step:.1f},{y_of(v):.1f}"
        for i, (_, v) in enumerate(points)
    )
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - right}" y2="{10 + plot_h}" '
        'stroke="#9ca3af"/>',
        f'<path d="{path}" fill="none" stroke="#2563eb" stroke-width="2"/>',
    ]
    if cap is not None:
        parts.append(
            f'<line x1="{left}" y1="{y_of(cap):.1f}" x2="{width - right}" y2="{y_of(cap):.1f}" '
            'stroke="#dc2626" stroke-dasharray="6 4"/>'
        )
    for i, (label, _) in enumerate(points):
        if len(points) <= 12 or i % max(1, len(points) // 8) == 0:
            parts.append(
                f'<text x="{left + i * step:.1f}" y="{height - 6}" text-anchor="middle" '
                f'font-size="11">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value is escaped above


def stacked_bar_chart(
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    *,
    width: int = 640,
    bar_height: int = 24,
    title: str = "",
) -> Markup:
    """One 100 % bar per row, split into its series' shares (percentages), with a legend."""
    if not rows or not series:
        return Markup("")
    label_w = min(220, max(60, 9 * max(len(label) for label, _ in rows)))
    plot_w = width - label_w - 20
    legend_h = 22
    height = legend_h + len(rows) * (bar_height + 6) + 6
    parts = [
        f'<svg class="chart stacked" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    x = float(label_w)
    for index, name in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(
            f'<rect x="{x:.1f}" y="4" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16:.1f}" y="15" font-size="12">{escape(name)}</text>'
        )
        x += 28 + 8 * len(name)
    for index, (label, shares) in enumerate(rows):
        y = legend_h + 6 + index * (bar_height + 6)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
            f'font-size="13">{escape(label)}</text>'
        )
        left = float(label_w)
        for part, share in enumerate(shares):
            w = plot_w * max(0.0, share) / 100.0
            if w <= 0:
                continue
            colour = _COLOURS[part % len(_COLOURS)]
            name = series[part] if part < len(series) else ""
            parts.append(
                f'<rect x="{left:.1f}" y="{y}" width="{w:.1f}" height="{bar_height}" '
                f'fill="{colour}"><title>{escape(label)} · {escape(name)}: {share:.1f}%</title>'
                "</rect>"
            )
            left += w
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value is escaped above
