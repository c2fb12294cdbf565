"""Frequencies, cross-tabs, the completion funnel and the exports."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

import pyreadstat
import pytest
from openpyxl import load_workbook

from surveys.engine import InterviewEngine, InterviewState, InterviewStatus
from surveys.exports import (
    choice_codes,
    data_dictionary,
    data_dictionary_csv,
    export_csv,
    export_sav,
    export_xlsx,
)
from surveys.quotas import InMemoryQuotaCounter
from surveys.results import (
    ResponseRecord,
    completion_funnel,
    cross_tab,
    frequencies,
    record_from_state,
)
from surveys.schema import Choice, Questionnaire

PLANS = [
    # (region, age, satisfaction, nps, channel, reasons, stop)
    ("north", 25, "5", 9, "app", None, None),
    ("north", 40, "2", 3, "web", (["price", "other"], "太吵"), None),
    ("south", 60, "4", 8, "store", None, None),
    ("south", 33, "1", 0, "web", (["quality"], None), "suspend"),
    ("north", 16, None, None, None, None, None),  # screened out at age
    ("south", 50, "98", 6, "refused", None, "break"),
]


def run(engine: InterviewEngine, now: datetime, index: int, plan: tuple) -> InterviewState:  # type: ignore[type-arg]
    region, age, satisfaction, nps, channel, reasons, stop = plan
    counter = InMemoryQuotaCounter()
    state = engine.start(
        interview_id=f"r{index}",
        respondent_key=f"lead-{index}",
        now=now,
        attributes={"customer_name": "陳", "region": region, "product": "電表"},
    )
    for name, value in [("greeting", None), ("consent", "1"), ("used_recently", "1"), ("age", age)]:
        state = engine.answer(state, name, value)
    if state.status != InterviewStatus.IN_PROGRESS:
        return state
    state = engine.answer(engine.answer(state, "satisfaction", satisfaction), "nps", nps)
    if reasons is not None:
        state = engine.answer(state, "reasons", reasons[0], other_text=reasons[1])
    if stop == "suspend":
        return engine.suspend(state)
    state = engine.answer(state, "channel", channel)
    if stop == "break":
        return engine.break_off(state)
    if state.current == "improve":
        state = engine.answer(state, "improve", "更便宜")
    state = engine.answer(state, "thanks")
    return engine.complete(state, quota_counter=counter)


@pytest.fixture(scope="module")
def records(sample_engine: InterviewEngine) -> list[ResponseRecord]:
    now = datetime(2026, 3, 2, 10, 0)
    return [
        record_from_state(sample_engine, run(sample_engine, now, i, plan))
        for i, plan in enumerate(PLANS)
    ]


def test_records_capture_the_outcomes(records: list[ResponseRecord]) -> None:
    assert [r.status for r in records] == [
        InterviewStatus.COMPLETED,
        InterviewStatus.COMPLETED,
        InterviewStatus.COMPLETED,
        InterviewStatus.SUSPENDED,
        InterviewStatus.NOT_ELIGIBLE,
        InterviewStatus.BROKEN_OFF,
    ]
    assert records[3].stopped_at == "channel"
    assert 0 < records[3].progress < 1


def test_frequencies(sample: Questionnaire, records: list[ResponseRecord]) -> None:
    table = frequencies(sample, records, "satisfaction", language="en")
    assert (table.base, table.missing) == (5, 1)
    by_value = {row.value: row for row in table.rows}
    assert [row.value for row in table.rows] == ["1", "2", "3", "4", "5", "98"]
    assert by_value["3"].count == 0
    assert by_value["98"].label == "Don't know"
    assert by_value["5"].percent == pytest.approx(20.0)
    reasons = frequencies(sample, records, "reasons")
    assert reasons.base == 2
    assert {r.value: r.count for r in reasons.rows if r.count} == {
        "price": 1,
        "other": 1,
        "quality": 1,
    }
    assert sum(r.percent for r in reasons.rows) == pytest.approx(150.0)
    completed = frequencies(sample, records, "nps", statuses=[InterviewStatus.COMPLETED])
    assert completed.base == 3
    assert len(completed.rows) == 11


def test_cross_tab(sample: Questionnaire, records: list[ResponseRecord]) -> None:
    table = cross_tab(sample, records, "nps_group", "region")
    assert table.column_values == ["north", "south"]
    grid = {
        (r, c): table.counts[i][j]
        for i, r in enumerate(table.row_values)
        for j, c in enumerate(table.column_values)
    }
    assert grid[("promoter", "north")] == 1
    assert grid[("detractor", "north")] == 1
    assert grid[("passive", "south")] == 1
    assert grid[("detractor", "south")] == 2
    assert table.total == 5
    assert table.column_totals == [2, 3]
    percents = table.column_percents()
    assert sum(row[1] for row in percents) == pytest.approx(100.0)


def test_completion_funnel(sample: Questionnaire, records: list[ResponseRecord]) -> None:
    steps = {s.question: s for s in completion_funnel(sample, records)}
    assert steps["greeting"].reached == 6
    assert steps["age"].reached == 6
    assert steps["age"].screened_out == 1
    assert steps["satisfaction"].reached == 5
    assert steps["channel"].broke_off == 1  # the suspended partial
    assert steps["improve"].broke_off == 1  # the break-off left while 'improve' was open
    assert steps["thanks"].reached == 3


def test_choice_codes_rule() -> None:
    numeric = [Choice(value="1", label="a"), Choice(value="2", label="b")]
    named = [Choice(value="x", label="a"), Choice(value="y", label="b", code=9)]
    assert choice_codes(numeric) == {"1": 1, "2": 2}
    assert choice_codes(named) == {"x": 1, "y": 9}


def test_csv_codes_and_labels(sample: Questionnaire, records: list[ResponseRecord]) -> None:
    codes = list(csv.DictReader(io.StringIO(export_csv(sample, records))))
    labels = list(
        csv.DictReader(io.StringIO(export_csv(sample, records, labels=True, language="en")))
    )
    assert codes[1]["satisfaction"] == "2"
    assert labels[1]["satisfaction"] == "Dissatisfied"
    assert codes[1]["reasons_price"] == "1"
    assert codes[1]["reasons_quality"] == "0"
    assert codes[1]["reasons_other"] == "1"
    assert codes[1]["reasons_specify"] == "太吵"
    assert codes[0]["reasons_price"] == ""  # not asked is empty, not 0
    assert codes[0]["age_band"] == "18_34"
    assert codes[4]["status"] == "not_eligible"
    assert codes[4]["satisfaction"] == ""
    assert codes[0]["region"] == "north"


def test_xlsx_has_responses_and_dictionary(
    sample: Questionnaire, records: list[ResponseRecord], tmp_path: Path
) -> None:
    path = tmp_path / "out.xlsx"
    path.write_bytes(export_xlsx(sample, records, labels=True))
    workbook = load_workbook(path, read_only=True)
    assert workbook.sheetnames == ["responses", "dictionary"]
    rows = list(workbook["responses"].iter_rows(values_only=True))
    header = rows[0]
    assert len(rows) == len(records) + 1
    assert rows[1][header.index("satisfaction")] == "非常滿意"
    assert rows[1][header.index("nps")] == 9
    workbook.close()


def test_sav_has_variable_and_value_labels(
    sample: Questionnaire, records: list[ResponseRecord], tmp_path: Path
) -> None:
    path = tmp_path / "out.sav"
    export_sav(sample, records, path, language="en")
    frame, meta = pyreadstat.read_sav(str(path))
    assert len(frame) == len(records)
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["nps"].startswith("From 0 to 10")
    assert meta.variable_value_labels["satisfaction"][5.0] == "Very satisfied"
    assert meta.variable_value_labels["reasons_price"] == {0.0: "not selected", 1.0: "selected"}
    assert frame["satisfaction"].tolist()[:3] == [5.0, 2.0, 4.0]
    assert frame["channel"].tolist()[0] == 3.0  # code of "app"


def test_data_dictionary(sample: Questionnaire) -> None:
    variables = {v.name: v for v in data_dictionary(sample, language="en")}
    assert variables["reasons_specify"].kind == "string"
    assert variables["reasons_other"].kind == "numeric"
    assert len(variables) == len(data_dictionary(sample))
    assert variables["nps"].value_labels == {"0": "Not at all likely", "10": "Extremely likely"}
    assert "greeting" not in variables  # notes have no data
    text = data_dictionary_csv(sample)
    assert text.splitlines()[0] == "variable,label,kind,question,question_type,values"


def test_sav_read_back_by_pyreadstat_keeps_missing_formats_and_measures(
    sample: Questionnaire, records: list[ResponseRecord], tmp_path: Path
) -> None:
    path = tmp_path / "out.sav"
    export_sav(sample, records, path, language="zh-Hant", version_number=1)
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    # "Don't know" (98) is user-missing where it occurs, in the export's language.
    assert meta.missing_ranges["satisfaction"] == [{"lo": 98.0, "hi": 98.0}]
    assert meta.variable_value_labels["satisfaction"][98.0] == "不知道"
    assert meta.variable_value_labels["reasons_price"] == {0.0: "未選", 1.0: "已選"}
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["reasons_specify"].endswith("其他（請說明）")
    assert meta.original_variable_types["age"] == "F3.0"
    assert meta.original_variable_types["satisfaction"] == "F2.0"
    assert meta.original_variable_types["started_at"] == "DATETIME20"
    assert meta.variable_measure["age"] == "scale"
    assert meta.variable_measure["nps"] == "ordinal"
    assert meta.variable_measure["satisfaction"] == "nominal"
    assert frame["version"].tolist() == [1.0] * len(records)  # the number, not a hash
    assert frame["respondent_key"].tolist()[0] == "lead-0"
    assert frame["duration_seconds"].notna().all()


def _pspp(sav: Path, syntax: str) -> str:
    import shutil
    import subprocess

    pspp = shutil.which("pspp")
    if pspp is None:
        pytest.fail("pspp is not installed: apt-get install -y pspp (.ci/run does it)")
    script = sav.with_suffix(".sps")
    script.write_text(f"GET FILE='{sav}'.\n{syntax}\n", encoding="utf-8")
    out = sav.with_suffix(".txt")
    done = subprocess.run(
        [pspp, "-O", "format=txt", "-o", str(out), str(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_text(encoding="utf-8")


def test_pspp_reads_labels_missing_values_and_the_right_mean(
    sample: Questionnaire, records: list[ResponseRecord], tmp_path: Path
) -> None:
    """PSPP counted 不知道 (98) as a valid satisfaction and reported a mean of 22.00 on these
    records (110 / 5); with 98 user-missing the mean of the four real answers is 3.00."""
    path = tmp_path / "responses.sav"
    export_sav(sample, records, path, language="zh-Hant", version_number=1)
    text = _pspp(
        path,
        "DISPLAY DICTIONARY /VARIABLES=satisfaction age.\n"
        "DESCRIPTIVES VARIABLES=satisfaction age /STATISTICS=MEAN.",
    )
    assert "98[a]|不知道" in text  # the value label, in the export's language, user-missing
    assert re.search(r"\|satisfaction\s*\|F2\.0\s*\|98\s*\|", text)  # missing values: 98
    assert re.search(r"\|age\s*\|\s*\d+\|.*\|Scale\s*\|", text)
    descriptives = text[text.rindex("Descriptive Statistics") :]
    # PSPP names variables by their (zh-Hant) label in this table.
    row = next(line for line in descriptives.splitlines() if "滿意程度" in line)
    n, mean = re.findall(r"\|\s*(\d+)\s*\|\s*(-?\d+\.\d+)\|", row)[0]
    assert (int(n), float(mean)) == (4, 3.0)  # not 5 and 22.00


def test_xlsx_never_alters_answers_and_csv_guards_formulas(sample: Questionnaire) -> None:
    """``-2+3`` or ``=SUM(A1)`` typed as an answer: XLSX keeps it as a text cell, unchanged
    (no apostrophe); CSV cannot mark text, so it keeps the documented ``'`` guard."""
    from surveys.engine import StoredAnswer

    record = ResponseRecord(
        interview_id="x",
        questionnaire_id=sample.id,
        version="h",
        status=InterviewStatus.COMPLETED,
        language="en",
        answers={"improve": StoredAnswer(value="-2+3"), "age": StoredAnswer(value=40)},
        attributes={"customer_name": "=SUM(A1)", "region": "north", "product": "p"},
    )
    book = load_workbook(io.BytesIO(export_xlsx(sample, [record])))
    sheet = book["responses"]
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, sheet[2], strict=True))
    assert (row["improve"].value, row["improve"].data_type) == ("-2+3", "s")
    assert (row["customer_name"].value, row["customer_name"].data_type) == ("=SUM(A1)", "s")
    assert row["age"].value == 40
    lines = list(csv.DictReader(io.StringIO(export_csv(sample, [record]))))
    assert lines[0]["improve"] == "'-2+3"
    assert lines[0]["customer_name"] == "'=SUM(A1)"
