"""Every figure of the reports, recomputed here independently from the raw rows (plain SQL,
minute-by-minute sampling of the agent log) for a generated month in a DST zone with a
campaign that dials across midnight."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlmodel import Session

from reports.render import render
from reports.service import ReportRequest, build_report

TZ = ZoneInfo("America/New_York")  # the month built in conftest.py
Month = Any
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
VALID_S = 15


@pytest.fixture
def session(month_db: tuple[Session, Any], request: pytest.FixtureRequest) -> Session:
    """This module's tests share one generated month (built once, rolled back at the end)."""
    request.node.user_properties.append(("backend", "postgres"))
    return month_db[0]


def _calls(session: Session, month: Month) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.text(
            "select a.dialed_at, a.answered_at, a.agent_connected_at, a.talk_s, a.wrap_s, "
            "a.abandoned, a.converted, a.outcome, a.agent_id, a.attempt_no, a.number_dialed, "
            "l.phone_region_desc, l.phone_carrier, l.phone_type, l.virtual_operator "
            "from callattempt a join lead l on l.id = a.lead_id where a.client_id = :c"
        ),
        {"c": month.client_id},
    ).mappings()
    out = []
    for row in rows:
        local = row["dialed_at"].astimezone(TZ)
        if (local.year, local.month) == (2026, 11):  # the client's November, nothing else
            out.append(dict(row))
    return out


def _hour_key(at: datetime) -> tuple[str, str]:
    local = at.astimezone(TZ)
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:00"), f"{offset[:3]}:{offset[3:]}"


def _report(session: Session, month: Month, **kw: Any) -> Any:
    request = ReportRequest(period="month", start="2026-11-15", **kw)
    return build_report(session=session, client_id=month.client_id, request=request, now=NOW)


def _contact(row: dict[str, Any]) -> bool:
    return row["agent_connected_at"] is not None or row["outcome"] == "contact"


def _expected_levels(calls: list[dict[str, Any]], key_of: Any) -> dict[Any, dict[str, Any]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in calls:
        groups[key_of(row["dialed_at"])].append(row)
    expected = {}
    for key, rows in groups.items():
        contacts = [r for r in rows if _contact(r)]
        abandoned = sum(r["abandoned"] for r in rows)
        speeds = [
            (r["agent_connected_at"] - r["answered_at"]).total_seconds()
            for r in rows
            if r["agent_connected_at"] and r["answered_at"]
        ]
        talks = [r["talk_s"] for r in contacts if r["talk_s"] is not None]
        wraps = [r["wrap_s"] for r in contacts if r["wrap_s"] is not None]
        expected[key] = {
            "dials": len(rows),
            "answered": sum(r["answered_at"] is not None for r in rows),
            "human_contacts": len(contacts),
            "valid_calls": sum(1 for r in contacts if (r["talk_s"] or 0) > VALID_S),
            "abandoned": abandoned,
            "abandon_rate": abandoned / (len(contacts) + abandoned)
            if contacts or abandoned
            else None,
            "asa_s": sum(speeds) / len(speeds) if speeds else None,
            "avg_talk_s": sum(talks) / len(talks) if talks else None,
            "avg_wrap_s": sum(wraps) / len(wraps) if wraps else None,
            "conversions": sum(r["converted"] for r in rows),
        }
    return expected


def _minutes(session: Session) -> dict[tuple[str, tuple[str, str]], dict[str, float]]:
    """Agent seconds by (agent, local hour) and state, by sampling every logged minute."""
    log = session.execute(
        sa.text(
            "select s.agent_code, l.to_state, l.reason, l.at from agentstatelog l "
            "join agentseat s on s.id = l.agent_seat_id order by s.agent_code, l.at"
        )
    ).all()
    start = datetime(2026, 11, 1, tzinfo=TZ).astimezone(UTC)
    end = datetime(2026, 12, 1, tzinfo=TZ).astimezone(UTC)
    out: dict[tuple[str, tuple[str, str]], dict[str, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    for (code, state, reason, at), nxt in zip(log, [*log[1:], None], strict=True):
        stop = nxt[3] if nxt is not None and nxt[0] == code else end
        minute = at
        while minute < stop:
            if start <= minute < end and state != "signed_out":
                bucket = out[(code, _hour_key(minute))]
                bucket["total"] += 60
                bucket[state] += 60
                if state == "not_ready":
                    bucket[f"reason:{reason}"] += 60
            minute += timedelta(minutes=1)
    return out


@pytest.mark.postgres
def test_service_level_per_hour_matches_the_rows(session: Session, month: Month) -> None:
    calls = _calls(session, month)
    built = _report(session, month, kind="service_level", interval="hour")
    section = built.document.sections[0]
    got = {(r["interval"].strftime("%Y-%m-%d %H:00"), r["utc_offset"]): r for r in section.rows}
    expected = _expected_levels(calls, _hour_key)
    assert set(got) == set(expected)
    # the repeated 01:00 of 1 November is two rows, one per UTC offset
    assert ("2026-11-01 01:00", "-04:00") in got
    assert ("2026-11-01 01:00", "-05:00") in got
    for key, want in expected.items():
        for name, value in want.items():
            assert got[key][name] == pytest.approx(value), (key, name)
    minutes = _minutes(session)
    for key, row in got.items():
        busy = sum(
            v
            for (code, hour), states in minutes.items()
            if hour == key
            for s, v in states.items()
            if s in {"on_call", "wrap_up"}
        )
        ready = sum(states["ready"] for (code, hour), states in minutes.items() if hour == key)
        assert row["occupancy"] == (pytest.approx(busy / (busy + ready)) if busy + ready else None)
    assert section.totals is not None
    assert section.totals["dials"] == len(calls)
    assert section.totals["valid_calls"] == sum(e["valid_calls"] for e in expected.values())


@pytest.mark.postgres
def test_days_split_at_local_midnight_and_the_month_ends_are_local(
    session: Session, month: Month
) -> None:
    calls = _calls(session, month)
    section = _report(session, month, kind="service_level", interval="day").document.sections[0]
    got = {r["interval"]: r for r in section.rows}
    expected = _expected_levels(calls, lambda at: at.astimezone(TZ).date())
    assert set(got) == set(expected)
    assert min(got) == date(2026, 11, 1)
    assert max(got) == date(2026, 11, 30)
    for day, want in expected.items():
        assert got[day]["dials"] == want["dials"]
        assert got[day]["valid_calls"] == want["valid_calls"]
    # the 15-minute view has the same calls
    quarter = _report(session, month, kind="service_level", interval="15min").document.sections[0]
    assert sum(r["dials"] for r in quarter.rows) == len(calls)
    assert all(r["interval"].minute in {0, 15, 30, 45} for r in quarter.rows)


@pytest.mark.postgres
def test_agent_hours_match_the_state_log_and_the_calls(session: Session, month: Month) -> None:
    calls = _calls(session, month)
    section = _report(session, month, kind="agent_hours").document.sections[0]
    minutes = _minutes(session)
    valid: dict[tuple[str, tuple[str, str]], int] = defaultdict(int)
    handled: dict[tuple[str, tuple[str, str]], int] = defaultdict(int)
    for row in calls:
        if row["agent_id"] and _contact(row):
            handled[(row["agent_id"], _hour_key(row["dialed_at"]))] += 1
            valid[(row["agent_id"], _hour_key(row["dialed_at"]))] += (row["talk_s"] or 0) > VALID_S
    got = {
        (r["agent"], (r["hour"].strftime("%Y-%m-%d %H:00"), r["utc_offset"])): r
        for r in section.rows
    }
    assert len(got) == len(section.rows) == len(set(minutes) | set(handled))
    assert ("A01", ("2026-11-01 01:00", "-04:00")) in got
    assert ("A01", ("2026-11-01 01:00", "-05:00")) in got
    for (code, hour), states in minutes.items():
        row = got[(code, hour)]
        assert row["signed_in_s"] == states["total"], (code, hour, dict(states), row)
        assert row["ready_s"] == states["ready"]
        assert row["talk_s"] == states["on_call"]
        assert row["wrap_s"] == states["wrap_up"]
        assert row["not_ready_s"] == states["not_ready"]
        if states["reason:break"]:
            assert f"break {states['reason:break']:.0f}s" in row["not_ready_reasons"]
        assert row["valid_calls"] == valid[(code, hour)]
        assert row["calls"] == handled[(code, hour)]
        assert row["valid_per_hour"] == pytest.approx(
            valid[(code, hour)] / (states["total"] / 3600)
        )
        assert row["meets_target"] == (row["valid_per_hour"] >= 18)


@pytest.mark.postgres
def test_detail_masks_numbers_and_attributes_add_up(session: Session, month: Month) -> None:
    calls = _calls(session, month)
    built = _report(session, month, kind="detail", fmt="csv")
    detail = built.document.sections[0]
    assert len(detail.rows) == len(calls)
    shown = {r["callee"] for r in detail.rows}
    assert not shown & set(month.numbers)  # never a full number
    assert all(c.startswith("+86138") and "****" in c for c in shown)
    assert {c[-4:] for c in shown} == {r["number_dialed"][-4:] for r in calls}
    text = render(built.document, "csv").decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text)))) == len(calls) + 1

    attributes = _report(session, month, kind="attributes").document.sections[0]
    by_dim: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in attributes.rows:
        by_dim[row["dimension"]][row["value"]] = row
    assert set(by_dim) == {
        "Region",
        "Carrier",
        "Line type",
        "Virtual operator",
        "Time of day",
        "Attempt no.",
    }
    for region in ("Beijing", "Shanghai", "Guangdong"):
        mine = [r for r in calls if r["phone_region_desc"] == region]
        assert by_dim["Region"][region]["dials"] == len(mine)
        assert by_dim["Region"][region]["valid_calls"] == sum(
            1 for r in mine if _contact(r) and (r["talk_s"] or 0) > VALID_S
        )
    for dim in by_dim.values():
        assert sum(r["dials"] for r in dim.values()) == len(calls)
    hours = {r["dialed_at"].astimezone(TZ).hour for r in calls}
    assert set(by_dim["Time of day"]) == {f"{h:02d}:00" for h in hours}
    assert hours <= {22, 23, 0, 1}


@pytest.mark.postgres
def test_periodic_month_in_xlsx_and_html(session: Session, month: Month) -> None:
    calls = _calls(session, month)
    built = _report(session, month, kind="periodic", fmt="xlsx")
    doc = built.document
    assert [s.key for s in doc.sections] == [
        "summary",
        "service_level",
        "agent_summary",
        "attributes",
    ]
    daily = doc.sections[1]
    assert len(daily.rows) == 30
    assert sum(r["dials"] for r in daily.rows) == len(calls)
    book = load_workbook(io.BytesIO(render(doc, "xlsx")))
    assert book.sheetnames[0] == "Info"
    assert len(book.sheetnames) == 1 + len(doc.sections)
    sheet = book[book.sheetnames[2]]
    assert sheet.freeze_panes == "A2"
    assert isinstance(sheet["A2"].value, datetime)
    assert isinstance(sheet["C2"].value, int)
    assert sheet["G2"].number_format == "0.00%"
    page = render(doc, "html").decode()
    assert page.count("<svg") == 2
    assert "<script" not in page
    assert 'src="http' not in page
    assert 'href="http' not in page
    assert "@page" in page
