"""AAPOR final dispositions and outcome rates, with DOMAIN.md's worked example."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveys.aapor import (
    AaporDisposition,
    CallResult,
    OutcomeCounts,
    compute_rates,
    count_dispositions,
    estimate_e,
    final_disposition,
    parse_counts_csv,
)
from surveys.engine import InterviewStatus
from surveys.exceptions import RatesInputError

WORKED = OutcomeCounts(I=5, P=3, R=2, NC=1, O=2, UH=1, UO=1, NE=1)


def test_worked_example_from_domain_md() -> None:
    rates = compute_rates(WORKED, e=0.5)
    assert pytest.approx(1 / 3) == rates.RR1
    assert pytest.approx(5 / 14) == rates.RR3
    assert pytest.approx(5 / 13) == rates.RR5
    assert pytest.approx(5 / 12) == rates.COOP1
    assert pytest.approx(1 / 7) == rates.REF2
    assert pytest.approx(4 / 5) == rates.CON1
    assert (rates.e, rates.e_method) == (0.5, "given")


def test_every_rate_of_the_worked_example() -> None:
    r = compute_rates(WORKED, e=0.5)
    # Denominators: all 15, with e 14, known-eligible 13; contacted (I+P)+R+O = 12.
    expected = {
        "RR2": 8 / 15,
        "RR4": 8 / 14,
        "RR6": 8 / 13,
        "COOP2": 8 / 12,
        "COOP3": 5 / 10,
        "COOP4": 8 / 10,
        "REF1": 2 / 15,
        "REF3": 2 / 13,
        "CON2": 12 / 14,
        "CON3": 12 / 13,
    }
    for key, value in expected.items():
        assert getattr(r, key) == pytest.approx(value), key


def test_e_is_estimated_by_the_stated_default() -> None:
    rates = compute_rates(WORKED)
    assert rates.e == pytest.approx(13 / 14)
    assert rates.e_method.startswith("proportional")
    assert pytest.approx(5 / (13 + 13 / 14 * 2)) == rates.RR3


def test_undefined_rates_are_none_not_zero() -> None:
    rates = compute_rates(OutcomeCounts(UH=4))
    assert rates.RR1 == 0.0
    assert rates.RR5 is None
    assert rates.COOP1 is None
    assert rates.e is None
    assert rates.RR3 is None
    assert estimate_e(OutcomeCounts()) is None
    no_unknown = compute_rates(OutcomeCounts(I=2, R=2))
    assert no_unknown.e == 1.0
    assert pytest.approx(0.5) == no_unknown.RR3
    empty = compute_rates(OutcomeCounts())
    assert all(value is None for key, value in empty.model_dump().items() if key != "e_method")


def test_bad_e_is_rejected() -> None:
    with pytest.raises(RatesInputError, match="between 0 and 1"):
        compute_rates(WORKED, e=1.5)


counts = st.builds(
    OutcomeCounts, **{k: st.integers(0, 500) for k in ("I", "P", "R", "NC", "O", "UH", "UO", "NE")}
)


@given(counts, st.floats(0, 1))
def test_rate_identities(c: OutcomeCounts, e: float) -> None:
    r = compute_rates(c, e=e)
    if r.RR1 is not None and r.CON1 is not None and r.COOP1 is not None:
        assert pytest.approx(r.CON1 * r.COOP1) == r.RR1
    if r.RR1 is not None and r.RR3 is not None and r.RR5 is not None:
        assert r.RR1 <= r.RR3 + 1e-12
        assert r.RR3 <= r.RR5 + 1e-12
    for value in r.model_dump().values():
        if isinstance(value, float):
            assert 0.0 <= value <= 1.0


class TestFinalDisposition:
    def test_interview_outcomes_decide_first(self) -> None:
        calls = [CallResult.NO_ANSWER, CallResult.ANSWERED]
        assert final_disposition(calls, interview_status=InterviewStatus.COMPLETED) == "1.1"
        assert final_disposition(calls, interview_status=InterviewStatus.NOT_ELIGIBLE) == "4.70"
        assert final_disposition(calls, interview_status=InterviewStatus.QUOTA_FULL) == "4.80"

    def test_partial_or_break_off_by_progress(self) -> None:
        status = InterviewStatus.SUSPENDED
        assert final_disposition([], interview_status=status, interview_progress=0.6) == "1.2"
        assert final_disposition([], interview_status=status, interview_progress=0.3) == "2.12"
        assert (
            final_disposition(
                [],
                interview_status=InterviewStatus.BROKEN_OFF,
                interview_progress=0.3,
                partial_threshold=0.25,
            )
            == AaporDisposition.PARTIAL
        )

    @pytest.mark.parametrize(
        ("calls", "expected"),
        [
            ([], "3.11"),
            ([CallResult.BUSY, CallResult.BUSY], "3.12"),
            ([CallResult.BUSY, CallResult.NO_ANSWER], "3.13"),
            ([CallResult.NO_ANSWER, CallResult.ANSWERING_MACHINE], "3.14"),
            ([CallResult.REFUSED, CallResult.NO_ANSWER], "2.11"),
            ([CallResult.CALLBACK, CallResult.NO_ANSWER], "2.21"),
            ([CallResult.NO_ANSWER, CallResult.NON_WORKING], "4.30"),
            ([CallResult.FAX_DATA], "4.20"),
            ([CallResult.LANGUAGE_BARRIER], "2.33"),
        ],
    )
    def test_most_informative_call_wins(self, calls: list[CallResult], expected: str) -> None:
        assert final_disposition(calls) == expected

    def test_counting_into_families(self) -> None:
        counted = count_dispositions(
            [
                AaporDisposition.COMPLETE,
                AaporDisposition.BREAK_OFF,
                AaporDisposition.REFUSAL,
                AaporDisposition.QUOTA_FILLED,
                AaporDisposition.ANSWERING_MACHINE_UNKNOWN,
            ]
        )
        assert counted == OutcomeCounts(I=1, R=2, NE=1, UH=1)


class TestCountsCsv:
    def test_parse(self) -> None:
        text = "\ufeffcode,count\nI,5\nP,3\nR,2\nnc,1\nO,2\nUH,1\nUO,1\nNE,1\nI,0\n"
        assert parse_counts_csv(text) == WORKED

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("", "empty"),
            ("kind,n\nI,1\n", "header"),
            ("code,count\nX,1\n", "line 2: unknown code 'X'"),
            ("code,count\nI,1.5\n", "not a whole number"),
            ("code,count\nI,-1\n", "negative"),
            ("code,count\nI\n", "expected"),
        ],
    )
    def test_errors(self, text: str, needle: str) -> None:
        with pytest.raises(RatesInputError, match=needle):
            parse_counts_csv(text)
