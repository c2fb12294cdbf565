"""The figures of the contract reports, computed from plain rows (pure: no database, no clock).

Definitions, stated once and used by every report:

- a *dial* is a call attempt that was dialed (``dialed_at`` set); every call belongs to the
  interval in which it was dialed, in the client's time zone;
- *answered*: the far end picked up (``answered_at`` set), person or machine;
- a *human contact*: the call reached an agent (``agent_connected_at`` set) or was classed
  ``contact`` (agentless campaigns);
- a *valid call* (有效通話): a human contact whose talk time is **over** the threshold
  (default 15 s; exactly 15 s is not valid);
- *abandoned*: a person answered and no agent came (the attempt's ``abandoned`` flag);
  abandon rate = abandoned ÷ (human contacts + abandoned), the live-answered calls;
- *speed to agent*: ``agent_connected_at − answered_at``, averaged over connected calls;
  average talk and wrap-up are over human contacts that have them;
- *occupancy*: time busy with calls (dialing, previewing, talking, hold, consult, conference,
  wrap-up) ÷ (that + time ready), from the agent state log.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from reports.periods import Interval, bucket_start, split_by_bucket

__all__ = [
    "BUSY_STATES",
    "TALK_STATES",
    "AgentHourRow",
    "AttributeRow",
    "CallRow",
    "LevelRow",
    "StateSpan",
    "agent_hours",
    "attribute_rows",
    "is_contact",
    "is_valid",
    "occupancy_by_bucket",
    "service_level",
    "totals",
]

TALK_STATES = frozenset({"dialing", "previewing", "on_call", "on_hold", "consulting", "conference"})
BUSY_STATES = TALK_STATES | {"wrap_up"}
_SIGNED_IN = frozenset({"signed_in", "ready", "not_ready", "wrap_up"}) | TALK_STATES


@dataclass(frozen=True)
class CallRow:
    """One call attempt with the lead attributes the reports group by."""

    attempt_id: uuid.UUID
    campaign_id: uuid.UUID
    attempt_no: int
    dialed_at: datetime
    answered_at: datetime | None = None
    agent_connected_at: datetime | None = None
    ended_at: datetime | None = None
    talk_s: float | None = None
    wrap_s: float | None = None
    abandoned: bool = False
    converted: bool = False
    outcome: str | None = None
    disposition: str | None = None
    agent_id: str | None = None
    skill_group: str | None = None
    caller_id: str | None = None
    number: str = ""
    recording_ref: str | None = None
    region: str = ""
    carrier: str = ""
    line_type: str = ""
    virtual_operator: bool = False


@dataclass(frozen=True)
class StateSpan:
    """An agent in one state from ``start`` to ``end``."""

    agent_code: str
    state: str
    reason: str | None
    start: datetime
    end: datetime


def is_contact(row: CallRow) -> bool:
    return row.agent_connected_at is not None or row.outcome == "contact"


def is_valid(row: CallRow, valid_s: float) -> bool:
    return is_contact(row) and row.talk_s is not None and row.talk_s > valid_s


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class LevelRow:
    """Service-level figures of one interval (or a total)."""

    start: datetime | None
    dials: int = 0
    answered: int = 0
    human_contacts: int = 0
    valid_calls: int = 0
    abandoned: int = 0
    conversions: int = 0
    abandon_rate: float | None = None
    asa_s: float | None = None
    avg_talk_s: float | None = None
    avg_wrap_s: float | None = None
    occupancy: float | None = None
    _speeds: list[float] = field(default_factory=list, repr=False)
    _talks: list[float] = field(default_factory=list, repr=False)
    _wraps: list[float] = field(default_factory=list, repr=False)

    def add(self, row: CallRow, valid_s: float) -> None:
        self.dials += 1
        self.answered += row.answered_at is not None
        self.abandoned += row.abandoned
        self.conversions += row.converted
        if is_contact(row):
            self.human_contacts += 1
            self.valid_calls += is_valid(row, valid_s)
            if row.talk_s is not None:
                self._talks.append(row.talk_s)
            if row.wrap_s is not None:
                self._wraps.append(row.wrap_s)
        if row.agent_connected_at is not None and row.answered_at is not None:
            self._speeds.append((row.agent_connected_at - row.answered_at).total_seconds())

    def finish(self, occupancy: float | None) -> LevelRow:
        self.abandon_rate = _ratio(self.abandoned, self.human_contacts + self.abandoned)
        self.asa_s = _mean(self._speeds)
        self.avg_talk_s = _mean(self._talks)
        self.avg_wrap_s = _mean(self._wraps)
        self.occupancy = occupancy
        return self


def occupancy_by_bucket(
    spans: Iterable[StateSpan], tz: ZoneInfo, interval: Interval
) -> dict[datetime, float]:
    """Occupancy of the agents' logged time per interval (intervals with ready or busy time)."""
    busy: dict[datetime, float] = defaultdict(float)
    ready: dict[datetime, float] = defaultdict(float)
    for span in spans:
        if span.state not in BUSY_STATES and span.state != "ready":
            continue
        target = busy if span.state in BUSY_STATES else ready
        for key, seconds in split_by_bucket(span.start, span.end, tz, interval):
            target[key] += seconds
    return {
        key: busy[key] / (busy[key] + ready[key])
        for key in set(busy) | set(ready)
        if busy[key] + ready[key] > 0
    }


def service_level(
    calls: Iterable[CallRow],
    spans: Sequence[StateSpan],
    tz: ZoneInfo,
    interval: Interval,
    valid_s: float,
) -> list[LevelRow]:
    """One row per interval that had calls, in time order."""
    rows: dict[datetime, LevelRow] = {}
    for call in calls:
        key = bucket_start(call.dialed_at, tz, interval)
        rows.setdefault(key, LevelRow(start=key)).add(call, valid_s)
    occupancy = occupancy_by_bucket(spans, tz, interval)
    return [rows[key].finish(occupancy.get(key)) for key in sorted(rows)]


def totals(calls: Iterable[CallRow], spans: Sequence[StateSpan], valid_s: float) -> LevelRow:
    """The same figures over the whole selection."""
    row = LevelRow(start=None)
    for call in calls:
        row.add(call, valid_s)
    busy = sum((s.end - s.start).total_seconds() for s in spans if s.state in BUSY_STATES)
    ready = sum((s.end - s.start).total_seconds() for s in spans if s.state == "ready")
    return row.finish(_ratio(busy, busy + ready))


@dataclass
class AgentHourRow:
    """One agent in one local hour (坐席服務時段分析)."""

    agent_code: str
    start: datetime
    signed_in_s: float = 0.0
    ready_s: float = 0.0
    talk_s: float = 0.0
    wrap_s: float = 0.0
    not_ready_s: float = 0.0
    not_ready_by_reason: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    valid_calls: int = 0
    valid_per_hour: float | None = None
    target: float = 18.0
    meets_target: bool | None = None


def agent_hours(
    calls: Iterable[CallRow],
    spans: Iterable[StateSpan],
    tz: ZoneInfo,
    valid_s: float,
    target: float,
    interval: Interval = Interval.hour,
) -> list[AgentHourRow]:
    """Per agent per hour: time by state and reason, calls, valid calls per signed-in hour."""
    rows: dict[tuple[str, datetime], AgentHourRow] = {}

    def row_for(code: str, key: datetime) -> AgentHourRow:
        return rows.setdefault((code, key), AgentHourRow(agent_code=code, start=key, target=target))

    for span in spans:
        if span.state not in _SIGNED_IN:
            continue
        for key, seconds in split_by_bucket(span.start, span.end, tz, interval):
            row = row_for(span.agent_code, key)
            row.signed_in_s += seconds
            if span.state == "ready":
                row.ready_s += seconds
            elif span.state == "wrap_up":
                row.wrap_s += seconds
            elif span.state == "not_ready":
                row.not_ready_s += seconds
                reason = span.reason or "unspecified"
                row.not_ready_by_reason[reason] = row.not_ready_by_reason.get(reason, 0) + seconds
            elif span.state in TALK_STATES:
                row.talk_s += seconds
    for call in calls:
        if call.agent_id is None or not is_contact(call):
            continue
        row = row_for(call.agent_id, bucket_start(call.dialed_at, tz, interval))
        row.calls += 1
        row.valid_calls += is_valid(call, valid_s)
    for row in rows.values():
        if row.signed_in_s > 0:
            row.valid_per_hour = row.valid_calls / (row.signed_in_s / 3600)
            row.meets_target = row.valid_per_hour >= target
    return [rows[k] for k in sorted(rows, key=lambda k: (k[1], k[0]))]


DIMENSIONS: dict[str, Callable[[CallRow, ZoneInfo], str]] = {
    "region": lambda c, _tz: c.region or "—",
    "carrier": lambda c, _tz: c.carrier or "—",
    "line_type": lambda c, _tz: c.line_type or "—",
    "virtual_operator": lambda c, _tz: "yes" if c.virtual_operator else "no",
    "time_of_day": lambda c, tz: f"{c.dialed_at.astimezone(tz).hour:02d}:00",
    "attempt_no": lambda c, _tz: f"{c.attempt_no:02d}",
}


@dataclass
class AttributeRow:
    """Outcomes of the calls sharing one value of one attribute (來電屬性分析)."""

    dimension: str
    value: str
    dials: int = 0
    answered: int = 0
    human_contacts: int = 0
    valid_calls: int = 0
    abandoned: int = 0
    conversions: int = 0
    contact_rate: float | None = None
    valid_rate: float | None = None
    conversion_rate: float | None = None


def attribute_rows(
    calls: Sequence[CallRow], tz: ZoneInfo, valid_s: float, dimensions: Sequence[str] = ()
) -> list[AttributeRow]:
    """Rows per dimension (region, carrier, line type, virtual operator, hour, attempt no.)."""
    out: list[AttributeRow] = []
    for dimension in dimensions or tuple(DIMENSIONS):
        key_of = DIMENSIONS[dimension]
        groups: dict[str, AttributeRow] = {}
        for call in calls:
            value = key_of(call, tz)
            row = groups.setdefault(value, AttributeRow(dimension=dimension, value=value))
            row.dials += 1
            row.answered += call.answered_at is not None
            row.abandoned += call.abandoned
            row.conversions += call.converted
            if is_contact(call):
                row.human_contacts += 1
                row.valid_calls += is_valid(call, valid_s)
        for value in sorted(groups):
            row = groups[value]
            row.contact_rate = _ratio(row.human_contacts, row.dials)
            row.valid_rate = _ratio(row.valid_calls, row.dials)
            row.conversion_rate = _ratio(row.conversions, row.human_contacts)
            out.append(row)
    return out
