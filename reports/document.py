"""A report as data: titled sections of typed columns and rows, KPIs and charts.

Every output format (XLSX, HTML, CSV) renders this one shape, so the figures in the three are
the same by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["Chart", "Column", "ColumnKind", "Document", "Kpi", "Section"]


class ColumnKind(StrEnum):
    text = "text"
    int = "int"
    float = "float"
    pct = "pct"
    seconds = "seconds"
    datetime = "datetime"  # a naive local datetime (Excel has no time zones)
    date = "date"
    money = "money"
    bool = "bool"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: ColumnKind = ColumnKind.text


@dataclass(frozen=True)
class Chart:
    """A bar (first series) and line (the others) chart over one text or time column."""

    title: str
    x_key: str
    series: tuple[tuple[str, str], ...]  # (column key, label)
    kind: str = "bar"


@dataclass
class Section:
    key: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    chart: Chart | None = None
    note: str | None = None
    totals: dict[str, Any] | None = None


@dataclass(frozen=True)
class Kpi:
    label: str
    actual: str
    target: str
    met: bool | None


@dataclass
class Document:
    kind: str
    title: str
    client_name: str
    period_label: str
    timezone: str
    language: str
    generated_at: datetime
    sections: list[Section]
    logo_data_uri: str | None = None
    subtitle: str | None = None
    kpis: list[Kpi] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
