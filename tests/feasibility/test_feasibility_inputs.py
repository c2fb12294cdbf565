"""Input validation: clear errors for bad data, explicit warnings for weak data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from feasibility.exceptions import CostError, InputError
from feasibility.inputs import (
    Costs,
    attempts_from_records,
    costs_warnings,
    leads_from_records,
    load_costs,
    load_targets,
    read_attempts_csv,
    read_leads_csv,
    validate_inputs,
)

MakeAttempts = Callable[[list[tuple[str, int, str, float, int]]], pd.DataFrame]

LEADS = pd.DataFrame({"lead_id": ["a", "b", "c"], "region": ["n", "s", "n"]})


def test_attempts_for_unknown_leads_are_an_error(make_attempts: MakeAttempts) -> None:
    attempts = make_attempts([("a", 1, "contact", 30, 0), ("zz", 1, "busy", 0, 0)])
    with pytest.raises(InputError, match=r"not in the lead list.*'zz'"):
        validate_inputs(attempts, LEADS)


def test_unknown_disposition_lists_the_allowed_ones(make_attempts: MakeAttempts) -> None:
    attempts = make_attempts([("a", 1, "hung_up", 0, 0)])
    with pytest.raises(InputError, match=r"'hung_up'.*allowed: abandoned, busy"):
        validate_inputs(attempts, LEADS)


def test_negative_talk_time_is_an_error(make_attempts: MakeAttempts) -> None:
    attempts = make_attempts([("a", 1, "contact", -4, 0)])
    with pytest.raises(InputError, match="negative talk_s"):
        validate_inputs(attempts, LEADS)


def test_conversion_without_contact_is_an_error(make_attempts: MakeAttempts) -> None:
    attempts = make_attempts([("a", 1, "no_answer", 0, 1)])
    with pytest.raises(InputError, match="converted but not a contact"):
        validate_inputs(attempts, LEADS)


def test_repeated_attempt_numbers_and_missing_columns(make_attempts: MakeAttempts) -> None:
    attempts = make_attempts([("a", 1, "busy", 0, 0), ("a", 1, "busy", 0, 0)])
    with pytest.raises(InputError, match="repeat a"):
        validate_inputs(attempts, LEADS)
    with pytest.raises(InputError, match="lack the column"):
        validate_inputs(attempts.drop(columns=["talk_s"]), LEADS)
    with pytest.raises(InputError, match="more than once"):
        validate_inputs(attempts.iloc[:1], pd.concat([LEADS, LEADS]))
    with pytest.raises(InputError, match="no pilot attempts"):
        validate_inputs([], LEADS)


def test_zero_contacts_and_zero_conversions_are_warned_not_raised(
    make_attempts: MakeAttempts,
) -> None:
    no_contact = make_attempts([("a", 1, "no_answer", 0, 0), ("b", 1, "busy", 0, 0)])
    assert any("reached no one" in w for w in validate_inputs(no_contact, LEADS).warnings)
    no_sale = make_attempts([("a", 1, "contact", 40, 0)])
    assert any("no conversions" in w for w in validate_inputs(no_sale, LEADS).warnings)


def test_records_and_csv_give_the_same_frames(tmp_path: Path) -> None:
    rows = [
        {
            "lead_id": "a",
            "attempt_no": 1,
            "started_at": "2026-01-05T09:00:00Z",
            "disposition": "no_answer",
            "talk_s": 0,
            "converted": 0,
        },
        {
            "lead_id": "a",
            "attempt_no": 2,
            "started_at": "2026-01-06T09:00:00Z",
            "disposition": "CONTACT",
            "talk_s": 61.5,
            "converted": 1,
        },
    ]
    leads = [{"lead_id": "a", "age": 30}, {"lead_id": "b", "age": 41}]
    from_records = validate_inputs(attempts_from_records(rows), leads_from_records(leads))
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(leads).to_csv(tmp_path / "l.csv", index=False)
    from_csv = validate_inputs(
        read_attempts_csv(tmp_path / "a.csv"), read_leads_csv(tmp_path / "l.csv")
    )
    pd.testing.assert_frame_equal(from_records.attempts, from_csv.attempts)
    assert list(from_records.attempts["disposition"]) == ["no_answer", "contact"]


def test_missing_files_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_attempts_csv(tmp_path / "missing.csv")
    (tmp_path / "c.json").write_text('{"agent_monthly_cost": 0}')
    with pytest.raises(CostError, match="agent_monthly_cost"):
        load_costs(tmp_path / "c.json")
    (tmp_path / "t.json").write_text('{"conversions": 10, "seets": 3}')
    with pytest.raises(CostError, match="seets"):
        load_targets(tmp_path / "t.json")


def test_odd_costs_are_warned() -> None:
    assert costs_warnings(Costs()) == []
    warnings = " ".join(costs_warnings(Costs(management_coefficient=0.9, margin=-0.1)))
    assert "below 1" in warnings
    assert "negative" in warnings
