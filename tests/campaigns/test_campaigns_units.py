"""Pure rules, sampling and lifecycle; pilot reproducibility and the feasibility feed on PostgreSQL;
the CLI."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from campaign_builders import make_campaign, make_client, make_list
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select
from typer.testing import CliRunner

from campaigns.exceptions import IllegalTransition
from campaigns.lifecycle import check_transition
from campaigns.models import BatchCreate, BatchKind, CampaignLead, CampaignStatus
from campaigns.rules import (
    DispositionRule,
    candidate_zones,
    decide_after_attempt,
    is_callable_at,
    parse_windows,
    zones_key,
)
from campaigns.sampling import allocate_proportional, simple_sample, stratified_sample
from campaigns.service import create_batch

WEEKDAY_9_TO_20 = parse_windows(
    {d: [["09:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
)


# --------------------------------------------------------------------------- rules


def test_window_follows_daylight_saving_in_the_leads_zone() -> None:
    ny = ("America/New_York",)
    # 2025-03-10 is the Monday after US DST started: 09:30 EDT is 13:30 UTC, not 14:30
    assert is_callable_at(datetime(2025, 3, 10, 13, 30, tzinfo=UTC), ny, WEEKDAY_9_TO_20)
    assert not is_callable_at(datetime(2025, 3, 10, 12, 30, tzinfo=UTC), ny, WEEKDAY_9_TO_20)
    # Friday 19:59 local is in, 20:00 is out; Saturday is closed
    assert is_callable_at(datetime(2025, 3, 14, 23, 59, tzinfo=UTC), ny, WEEKDAY_9_TO_20)
    assert not is_callable_at(datetime(2025, 3, 15, 0, 0, tzinfo=UTC), ny, WEEKDAY_9_TO_20)


def test_several_or_unknown_zones_use_the_fallback_and_the_strictest_window() -> None:
    assert candidate_zones(zones_key(["Asia/Shanghai"]), "Europe/London") == ("Asia/Shanghai",)
    assert candidate_zones(zones_key([]), "Europe/London") == ("Europe/London",)
    assert candidate_zones(zones_key(["Bogus/Zone"]), "Europe/London") == ("Europe/London",)
    both = candidate_zones(zones_key(["America/New_York", "America/Los_Angeles"]), "UTC")
    assert both == ("America/Los_Angeles", "America/New_York", "UTC")
    # 17:00 UTC Monday: 13:00 New York, 10:00 Los Angeles, 17:00 UTC: all inside
    assert is_callable_at(datetime(2025, 6, 2, 17, 0, tzinfo=UTC), both, WEEKDAY_9_TO_20)
    # 14:00 UTC: 07:00 in Los Angeles is too early even though New York is open
    assert not is_callable_at(datetime(2025, 6, 2, 14, 0, tzinfo=UTC), both, WEEKDAY_9_TO_20)


def test_holidays_are_local_dates() -> None:
    holidays = {date(2025, 10, 1)}
    zone = ("Asia/Shanghai",)
    # 2025-09-30 17:00 UTC is already 01:00 on the holiday in Shanghai
    open_all = parse_windows({d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed")})
    assert not is_callable_at(datetime(2025, 9, 30, 17, 0, tzinfo=UTC), zone, open_all, holidays)
    assert is_callable_at(datetime(2025, 9, 30, 15, 0, tzinfo=UTC), zone, open_all, holidays)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mon": [["9:00", "20:00"]]}, "HH:MM"),
        ({"mon": [["20:00", "09:00"]]}, "ends before it starts"),
        ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"monday": []}, "unknown weekday"),
    ],
)
def test_bad_windows_say_what_is_wrong(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_windows(raw)


def test_retry_rules_limits_callbacks_and_the_ofcom_gap() -> None:
    end = datetime(2025, 1, 6, 10, tzinfo=UTC)
    busy = DispositionRule(code="busy", retry_delay_minutes=15, max_attempts=2)
    kwargs: dict[str, Any] = {"ended_at": end, "abandoned": False, "ofcom": False}
    d = decide_after_attempt(
        rule=busy, attempts_made=1, max_attempts=5, same_disposition_count=1, **kwargs
    )
    assert not d.final
    assert d.next_attempt_at == end + timedelta(minutes=15)
    d = decide_after_attempt(
        rule=busy, attempts_made=2, max_attempts=5, same_disposition_count=2, **kwargs
    )
    assert d.final
    d = decide_after_attempt(
        rule=busy, attempts_made=5, max_attempts=5, same_disposition_count=1, **kwargs
    )
    assert d.final
    callback = DispositionRule(code="cb", callback=True)
    at = end + timedelta(hours=3)
    d = decide_after_attempt(
        rule=callback,
        attempts_made=1,
        max_attempts=5,
        same_disposition_count=1,
        callback_at=at,
        **kwargs,
    )
    assert d.next_attempt_at == at
    abandoned = DispositionRule(code="abandoned", abandoned=True, retry_delay_minutes=60)
    kwargs["ofcom"] = True
    d = decide_after_attempt(
        rule=abandoned, attempts_made=1, max_attempts=5, same_disposition_count=1, **kwargs
    )
    assert d.next_attempt_at == end + timedelta(hours=72)
    dnc = DispositionRule(code="dnc", dnc=True)
    assert decide_after_attempt(
        rule=dnc, attempts_made=1, max_attempts=5, same_disposition_count=1, **kwargs
    ).final


def test_lifecycle_refuses_illegal_moves_with_the_allowed_states() -> None:
    check_transition(CampaignStatus.paused, CampaignStatus.running)
    with pytest.raises(IllegalTransition) as info:
        check_transition(CampaignStatus.draft, CampaignStatus.running)
    assert info.value.allowed_next_states == ["piloting", "cancelled"]
    with pytest.raises(IllegalTransition) as info:
        check_transition(CampaignStatus.completed, CampaignStatus.cancelled)
    assert info.value.allowed_next_states == []
    for status in CampaignStatus:
        if status not in {CampaignStatus.completed, CampaignStatus.cancelled}:
            check_transition(status, CampaignStatus.cancelled)


# --------------------------------------------------------------------------- sampling


@given(
    sizes=st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 200), min_size=1),
    fraction=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_stratified_sample_is_proportional_reproducible_and_exact(
    sizes: dict[str, int], fraction: float, seed: int
) -> None:
    candidates = [(f"{k}{i}", k) for k, n in sizes.items() for i in range(n)]
    size = round(fraction * len(candidates))
    chosen, allocation = stratified_sample(candidates, size, seed)
    assert len(chosen) == len(set(chosen)) == size
    assert chosen == stratified_sample(candidates, size, seed)[0]
    per_stratum = Counter(item[0] for item in chosen)
    total = len(candidates)
    for k, n in sizes.items():
        assert per_stratum[k] == allocation.sample[k]
        assert abs(allocation.sample[k] - size * n / total) < 1  # largest remainder


def test_simple_sample_depends_on_the_seed_only() -> None:
    items = list(range(1000))
    assert simple_sample(items, 50, 7) == simple_sample(items, 50, 7)
    assert simple_sample(items, 50, 7) != simple_sample(items, 50, 8)
    assert allocate_proportional({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}


# --------------------------------------------------------------------------- database


@pytest.mark.postgres
def test_pilot_is_reproducible_from_its_seed_and_feeds_the_feasibility_model(
    session: Session,
) -> None:
    from campaigns.attempts import import_attempts_csv, lead_records, pilot_attempt_records
    from feasibility.inputs import validate_inputs

    client_id = make_client(session)
    lead_list, _leads = make_list(
        session,
        client_id,
        40,
        attributes=[{"city": "SH" if i % 4 else "BJ"} for i in range(40)],
    )
    picks = []
    for _ in range(2):
        campaign = make_campaign(session, client_id, [lead_list.id])
        batch = create_batch(
            session=session,
            campaign=campaign,
            batch_in=BatchCreate(size=8, stratify_by="city", seed=1234),
        )
        assert batch.strata == {
            "BJ": {"population": 10, "sample": 2},
            "SH": {"population": 30, "sample": 6},
        }
        picks.append(
            set(
                session.exec(
                    select(CampaignLead.lead_id).where(CampaignLead.campaign_id == campaign.id)
                )
            )
        )
    assert picks[0] == picks[1]
    assert len(picks[0]) == 8

    pilot = sorted(picks[1], key=str)
    rows = ["lead_id,attempt_no,started_at,disposition,talk_s,converted"]
    for i, lead_id in enumerate(pilot):
        rows.append(f"{lead_id},1,2025-03-03T02:00:00Z,no_answer,,")
        rows.append(f"{lead_id},2,2025-03-04T02:00:00Z,{'sale' if i % 2 else 'refused'},60,{i % 2}")
    import_attempts_csv(session=session, campaign=campaign, data="\n".join(rows) + "\n")
    records = pilot_attempt_records(session=session, campaign_id=campaign.id)
    assert len(records) == 16
    assert Counter(r["disposition"] for r in records) == {"no_answer": 8, "contact": 8}
    assert sum(r["converted"] for r in records) == 4
    lead_rows = lead_records(session=session, campaign_id=campaign.id)
    assert len(lead_rows) == 40
    assert sum(r["is_pilot"] for r in lead_rows) == 8
    assert {"city", "phone_type", "phone_region", "carrier"} <= set(lead_rows[0])
    inputs = validate_inputs(records, lead_rows)
    assert inputs.pilot_lead_ids == {str(x) for x in pilot}

    # the full batch later skips the pilot leads that reached a final disposition
    for target in ("piloting", "pilot_done", "quoted", "approved"):
        from campaigns.service import transition_campaign

        transition_campaign(session=session, campaign=campaign, target=CampaignStatus(target))
    full = create_batch(
        session=session, campaign=campaign, batch_in=BatchCreate(kind=BatchKind.full)
    )
    assert full.size == 40 - 8


# --------------------------------------------------------------------------- CLI


def test_cli_creates_pilots_moves_and_imports(
    configure: Any, sqlite_url: str, tmp_path: Path
) -> None:
    from campaigns.cli import register
    from core.db import system_session

    configure(database_url=sqlite_url)
    with system_session() as s:
        client_id = make_client(s, "Clio")
        lead_list, leads = make_list(s, client_id, 10)
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    r = runner.invoke(
        app,
        [
            "campaign",
            "create",
            "--client",
            str(client_id),
            "--name",
            "C",
            "--list",
            str(lead_list.id),
        ],
    )
    assert r.exit_code == 0, r.output
    campaign_id = r.output.split("id=")[1].split()[0]
    r = runner.invoke(app, ["campaign", "start-pilot", campaign_id])
    assert r.exit_code == 2
    assert "pilot batch" in r.output
    r = runner.invoke(app, ["campaign", "pilot", campaign_id, "--size", "3", "--seed", "5"])
    assert r.exit_code == 0
    assert "seed 5" in r.output
    r = runner.invoke(app, ["campaign", "start-pilot", campaign_id])
    assert r.exit_code == 0
    assert "draft → piloting" in r.output
    r = runner.invoke(app, ["campaign", "resume", campaign_id])
    assert r.exit_code == 2
    assert "allowed next: pilot_paused, pilot_done, cancelled" in r.output
    r = runner.invoke(app, ["campaign", "approve", campaign_id])
    assert r.exit_code == 2  # the deal is recorded with a quote, never by a plain move
    assert "POST /campaigns/{id}/approve" in r.output

    shown = json.loads(runner.invoke(app, ["campaign", "show", campaign_id]).output)
    assert shown["lead_states"]["new"] == 3
    with system_session() as s:
        pilot_leads = [str(x) for x in s.exec(select(CampaignLead.lead_id))]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "lead_id,attempt_no,started_at,disposition,talk_s,converted\n"
        f"{pilot_leads[0]},1,2025-03-03T02:00:00Z,busy,,0\n"
        f"{pilot_leads[1]},x,2025-03-03T02:00:00Z,busy,,0\n"
    )
    r = runner.invoke(app, ["attempts", "import", str(bad), "--campaign", campaign_id])
    assert r.exit_code == 2
    assert f"{bad}:3: attempt_no 'x'" in r.output
    good = tmp_path / "good.csv"
    good.write_text(
        "phone,attempt_no,started_at,disposition,talk_s,converted\n"
        f"{leads[0].phone_e164},1,2025-03-03T02:00:00Z,busy,,0\n"
    )
    r = runner.invoke(app, ["attempts", "import", str(good), "--campaign", campaign_id])
    assert r.exit_code == 0, r.output
    assert "imported 1 attempts" in r.output
    out = tmp_path / "attempts.csv"
    r = runner.invoke(app, ["campaign", "export-attempts", campaign_id, "--out", str(out)])
    assert r.exit_code == 0
    assert out.read_text().count("\n") == 2
