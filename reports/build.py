"""Turning figures into report documents: the five contract reports and the periodic roll-up,
in the client's language, time zone, masking and template (pure: rows in, a Document out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from reports.document import Chart, Column, ColumnKind, Document, Kpi, Section
from reports.exceptions import ReportInputError
from reports.figures import (
    AgentHourRow,
    CallRow,
    LevelRow,
    StateSpan,
    agent_hours,
    attribute_rows,
    service_level,
    totals,
)
from reports.i18n import t
from reports.periods import Interval, Period, PeriodKind

__all__ = [
    "REPORT_KINDS",
    "SECTION_KEYS",
    "ReportOptions",
    "build_document",
    "mask_number",
]

REPORT_KINDS = ("service_level", "agent_hours", "detail", "attributes", "periodic")
SECTION_KEYS = ("summary", "service_level", "agent_hours", "agent_summary", "detail", "attributes")
DEFAULT_PERIODIC_SECTIONS = ("summary", "service_level", "agent_summary", "attributes")

K = ColumnKind
_LEVEL_COLUMNS = (
    ("interval", K.datetime),
    ("utc_offset", K.text),
    ("dials", K.int),
    ("answered", K.int),
    ("human_contacts", K.int),
    ("valid_calls", K.int),
    ("abandoned", K.int),
    ("abandon_rate", K.pct),
    ("asa_s", K.seconds),
    ("avg_talk_s", K.seconds),
    ("avg_wrap_s", K.seconds),
    ("occupancy", K.pct),
    ("conversions", K.int),
)
_AGENT_COLUMNS = (
    ("agent", K.text),
    ("hour", K.datetime),
    ("utc_offset", K.text),
    ("signed_in_s", K.seconds),
    ("ready_s", K.seconds),
    ("talk_s", K.seconds),
    ("wrap_s", K.seconds),
    ("not_ready_s", K.seconds),
    ("not_ready_reasons", K.text),
    ("calls", K.int),
    ("valid_calls", K.int),
    ("valid_per_hour", K.float),
    ("target", K.float),
    ("meets_target", K.bool),
)
_DETAIL_COLUMNS = (
    ("time", K.datetime),
    ("agent", K.text),
    ("skill_group", K.text),
    ("caller", K.text),
    ("callee", K.text),
    ("attempt_no", K.int),
    ("duration_s", K.seconds),
    ("disposition", K.text),
    ("recording", K.text),
)
_ATTRIBUTE_COLUMNS = (
    ("dimension", K.text),
    ("value", K.text),
    ("dials", K.int),
    ("answered", K.int),
    ("human_contacts", K.int),
    ("valid_calls", K.int),
    ("abandoned", K.int),
    ("conversions", K.int),
    ("contact_rate", K.pct),
    ("valid_rate", K.pct),
    ("conversion_rate", K.pct),
)


def mask_number(number: str | None, mode: str) -> str:
    """A phone number as the client wants it shown: middle digits, all but the last 4, or not."""
    if not number:
        return ""
    if mode == "none":
        return number
    digits = [i for i, ch in enumerate(number) if ch.isdigit()]
    if mode == "last4":
        hidden = set(digits[:-4])
    else:  # middle: keep the country code and first 3 national digits, and the last 4
        keep_head = 5 if number.startswith("+86") else 3
        hidden = set(digits[keep_head:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(number))


@dataclass(frozen=True)
class ReportOptions:
    """How one client wants its reports: language, zone, masking, thresholds, template."""

    language: str = "zh-Hans"
    timezone: str = "Asia/Shanghai"
    number_mask: str = "middle"
    valid_call_s: int = 15
    target_per_hour: float = 18.0
    abandon_target: float = 0.03
    client_name: str = ""
    logo_data_uri: str | None = None
    sections: tuple[str, ...] = ()
    columns: dict[str, list[str]] = field(default_factory=dict)
    campaign_label: str | None = None
    target_valid_calls: int | None = None  # agents × 144 × working days, if a contract says


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None)


def _offset(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%z")[:3] + ":" + at.astimezone(tz).strftime("%z")[3:]


def _columns(
    spec: Sequence[tuple[str, ColumnKind]], key: str, options: ReportOptions
) -> list[Column]:
    columns = [Column(name, t(name, options.language), kind) for name, kind in spec]
    chosen = options.columns.get(key)
    if not chosen:
        return columns
    by_key = {c.key: c for c in columns}
    unknown = [name for name in chosen if name not in by_key]
    if unknown:
        raise ReportInputError(
            f"template columns {unknown} do not exist in section {key!r}; "
            f"choose from {sorted(by_key)}"
        )
    return [by_key[name] for name in chosen]


def _level_dict(row: LevelRow, tz: ZoneInfo) -> dict[str, Any]:
    values = asdict(row)
    for private in ("_speeds", "_talks", "_wraps", "start"):
        values.pop(private, None)
    if row.start is not None:
        values["interval"] = _local(row.start, tz)
        values["utc_offset"] = _offset(row.start, tz)
    return values


def _service_level_section(
    calls: Sequence[CallRow],
    spans: Sequence[StateSpan],
    tz: ZoneInfo,
    interval: Interval,
    options: ReportOptions,
) -> Section:
    lang = options.language
    rows = [
        _level_dict(r, tz) for r in service_level(calls, spans, tz, interval, options.valid_call_s)
    ]
    spec: tuple[tuple[str, ColumnKind], ...] = _LEVEL_COLUMNS
    if interval in {Interval.day, Interval.month}:
        # whole local days or months: a date, and no UTC offset to tell repeated hours apart
        spec = (("interval", K.date), *(c for c in _LEVEL_COLUMNS[2:]))
        for row in rows:
            row["interval"] = row["interval"].date()
    total = _level_dict(totals(calls, spans, options.valid_call_s), tz)
    total["interval"] = t("totals", lang)
    return Section(
        key="service_level",
        title=t("service_level", lang),
        columns=_columns(spec, "service_level", options),
        rows=rows,
        totals=total,
        chart=Chart(
            title=t("service_level", lang),
            x_key="interval",
            series=(
                ("dials", t("dials", lang)),
                ("valid_calls", t("valid_calls", lang)),
                ("human_contacts", t("human_contacts", lang)),
            ),
        ),
        note=t("definitions", lang, valid_s=options.valid_call_s, tz=options.timezone),
    )


def _agent_dict(row: AgentHourRow, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "agent": row.agent_code,
        "hour": _local(row.start, tz),
        "utc_offset": _offset(row.start, tz),
        "signed_in_s": row.signed_in_s,
        "ready_s": row.ready_s,
        "talk_s": row.talk_s,
        "wrap_s": row.wrap_s,
        "not_ready_s": row.not_ready_s,
        "not_ready_reasons": "; ".join(
            f"{reason} {seconds:.0f}s"
            for reason, seconds in sorted(row.not_ready_by_reason.items())
        ),
        "calls": row.calls,
        "valid_calls": row.valid_calls,
        "valid_per_hour": row.valid_per_hour,
        "target": row.target,
        "meets_target": row.meets_target,
    }


def _agent_hours_section(
    calls: Sequence[CallRow], spans: Sequence[StateSpan], tz: ZoneInfo, options: ReportOptions
) -> Section:
    lang = options.language
    rows = agent_hours(calls, spans, tz, options.valid_call_s, options.target_per_hour)
    return Section(
        key="agent_hours",
        title=t("agent_hours", lang),
        columns=_columns(_AGENT_COLUMNS, "agent_hours", options),
        rows=[_agent_dict(r, tz) for r in rows],
    )


def _agent_summary_section(
    calls: Sequence[CallRow], spans: Sequence[StateSpan], tz: ZoneInfo, options: ReportOptions
) -> Section:
    lang = options.language
    merged: dict[str, dict[str, Any]] = {}
    for row in agent_hours(calls, spans, tz, options.valid_call_s, options.target_per_hour):
        acc = merged.setdefault(
            row.agent_code,
            {"agent": row.agent_code, "signed_in_s": 0.0, "talk_s": 0.0, "wrap_s": 0.0}
            | {"not_ready_s": 0.0, "calls": 0, "valid_calls": 0, "ready_s": 0.0},
        )
        for key in ("signed_in_s", "ready_s", "talk_s", "wrap_s", "not_ready_s"):
            acc[key] += getattr(row, key)
        acc["calls"] += row.calls
        acc["valid_calls"] += row.valid_calls
    rows = []
    for acc in merged.values():
        hours = acc["signed_in_s"] / 3600
        acc["valid_per_hour"] = acc["valid_calls"] / hours if hours else None
        acc["target"] = options.target_per_hour
        acc["meets_target"] = (
            None
            if acc["valid_per_hour"] is None
            else acc["valid_per_hour"] >= options.target_per_hour
        )
        rows.append(acc)
    spec = tuple(
        c for c in _AGENT_COLUMNS if c[0] not in {"hour", "utc_offset", "not_ready_reasons"}
    )
    return Section(
        key="agent_summary",
        title=t("agent_summary", lang),
        columns=_columns(spec, "agent_summary", options),
        rows=rows,
        chart=Chart(
            title=t("valid_per_hour", lang),
            x_key="agent",
            series=(("valid_per_hour", t("valid_per_hour", lang)), ("target", t("target", lang))),
        ),
    )


def _detail_section(calls: Sequence[CallRow], tz: ZoneInfo, options: ReportOptions) -> Section:
    lang = options.language
    rows = [
        {
            "time": _local(c.dialed_at, tz),
            "agent": c.agent_id or "",
            "skill_group": c.skill_group or "",
            "caller": mask_number(c.caller_id, options.number_mask),
            "callee": mask_number(c.number, options.number_mask),
            "attempt_no": c.attempt_no,
            "duration_s": c.talk_s or 0.0,
            "disposition": c.disposition or c.outcome or "",
            "recording": c.recording_ref or "",
        }
        for c in calls
    ]
    return Section(
        key="detail",
        title=t("detail", lang),
        columns=_columns(_DETAIL_COLUMNS, "detail", options),
        rows=rows,
    )


def _attributes_section(calls: Sequence[CallRow], tz: ZoneInfo, options: ReportOptions) -> Section:
    lang = options.language
    rows = []
    for row in attribute_rows(calls, tz, options.valid_call_s):
        values = asdict(row)
        values["dimension"] = t(row.dimension, lang)
        rows.append(values)
    return Section(
        key="attributes",
        title=t("attributes", lang),
        columns=_columns(_ATTRIBUTE_COLUMNS, "attributes", options),
        rows=rows,
    )


def _kpis(
    calls: Sequence[CallRow], spans: Sequence[StateSpan], options: ReportOptions
) -> list[Kpi]:
    lang = options.language
    total = totals(calls, spans, options.valid_call_s)
    signed_in = sum(
        (s.end - s.start).total_seconds() for s in spans if s.state not in {"signed_out"}
    )
    kpis = []
    if signed_in > 0:
        per_hour = total.valid_calls / (signed_in / 3600)
        kpis.append(
            Kpi(
                t("kpi_valid_per_hour", lang),
                f"{per_hour:.2f}",
                f"≥ {options.target_per_hour:g}",
                per_hour >= options.target_per_hour,
            )
        )
    if options.target_valid_calls:
        kpis.append(
            Kpi(
                t("kpi_valid_calls", lang),
                f"{total.valid_calls:,}",
                f"≥ {options.target_valid_calls:,}",
                total.valid_calls >= options.target_valid_calls,
            )
        )
    else:
        kpis.append(Kpi(t("kpi_valid_total", lang), f"{total.valid_calls:,}", "—", None))
    if total.abandon_rate is not None:
        kpis.append(
            Kpi(
                t("kpi_abandon_rate", lang),
                f"{total.abandon_rate:.2%}",
                f"≤ {options.abandon_target:.0%}",
                total.abandon_rate <= options.abandon_target,
            )
        )
    return kpis


def _summary_section(kpis: Sequence[Kpi], options: ReportOptions) -> Section:
    lang = options.language
    columns = [
        Column("kpi", t("kpi", lang)),
        Column("actual", t("actual", lang)),
        Column("target", t("target", lang)),
        Column("status", t("status", lang)),
    ]
    rows = [
        {
            "kpi": k.label,
            "actual": k.actual,
            "target": k.target,
            "status": "—" if k.met is None else t("ok" if k.met else "not_ok", lang),
        }
        for k in kpis
    ]
    return Section(key="summary", title=t("summary", lang), columns=columns, rows=rows)


def build_document(
    *,
    kind: str,
    period: Period,
    interval: Interval,
    calls: Sequence[CallRow],
    spans: Sequence[StateSpan],
    options: ReportOptions,
    generated_at: datetime,
) -> Document:
    """The report ``kind`` (one of REPORT_KINDS) over ``period``."""
    if kind not in REPORT_KINDS:
        raise ReportInputError(f"report kind must be one of {', '.join(REPORT_KINDS)}")
    tz = ZoneInfo(options.timezone)
    lang = options.language
    kpis = _kpis(calls, spans, options)
    builders = {
        "summary": lambda: _summary_section(kpis, options),
        "service_level": lambda: _service_level_section(calls, spans, tz, interval, options),
        "agent_hours": lambda: _agent_hours_section(calls, spans, tz, options),
        "agent_summary": lambda: _agent_summary_section(calls, spans, tz, options),
        "detail": lambda: _detail_section(calls, tz, options),
        "attributes": lambda: _attributes_section(calls, tz, options),
    }
    if kind == "periodic":
        chosen = options.sections or DEFAULT_PERIODIC_SECTIONS
        unknown = [s for s in chosen if s not in builders]
        if unknown:
            raise ReportInputError(
                f"template sections {unknown} do not exist; choose from {list(SECTION_KEYS)}"
            )
        sections = [builders[s]() for s in chosen]
        title = f"{t('period_' + period.kind.value, lang)}{t('periodic', lang)}"
        if lang == "en":
            title = f"{t('period_' + period.kind.value, lang)} {t('periodic', lang).lower()}"
    else:
        sections = [builders[kind]()]
        title = t(kind, lang)
    facts = [
        (t("client", lang), options.client_name),
        (t("period", lang), period.label),
        (t("timezone", lang), options.timezone),
    ]
    if options.campaign_label:
        facts.append((t("campaign", lang), options.campaign_label))
    return Document(
        kind=kind,
        title=title,
        client_name=options.client_name,
        period_label=period.label,
        timezone=options.timezone,
        language=lang,
        generated_at=generated_at,
        sections=sections,
        logo_data_uri=options.logo_data_uri,
        kpis=kpis if kind == "periodic" else [],
        facts=facts,
    )


def periodic_interval(kind: PeriodKind) -> Interval:
    """Daily rows for a week or month, monthly rows for longer roll-ups."""
    if kind in {PeriodKind.quarter, PeriodKind.half, PeriodKind.year}:
        return Interval.month
    return Interval.day
