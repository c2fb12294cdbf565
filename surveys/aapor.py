"""AAPOR final dispositions and outcome rates (Standard Definitions, telephone surveys).

:func:`final_disposition` maps a case's call attempts and interview state to an AAPOR final
disposition code; :func:`compute_rates` turns counts per family (I, P, R, NC, O, UH, UO, NE)
into RR1–RR6, COOP1–COOP4, REF1–REF3 and CON1–CON3::

    RR1 = I / ((I+P) + (R+NC+O) + (UH+UO))        RR2 = (I+P) / (same)
    RR3 = I / ((I+P) + (R+NC+O) + e(UH+UO))       RR4 = (I+P) / (same)
    RR5 = I / ((I+P) + (R+NC+O))                  RR6 = (I+P) / (same)
    COOP1 = I / ((I+P)+R+O)  COOP2 = (I+P) / ((I+P)+R+O)
    COOP3 = I / ((I+P)+R)    COOP4 = (I+P) / ((I+P)+R)
    REF1..3 = R / the RR1, RR3, RR5 denominators
    CON1..3 = ((I+P)+R+O) / the RR1, RR3, RR5 denominators

``e`` (the eligible share of unknown-eligibility cases) is given, or estimated by the
proportional default ``e = (I+P+R+NC+O) / (I+P+R+NC+O+NE)``; the method used is reported with
the rates. A rate whose denominator is zero is ``None`` (undefined), never 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from surveys.engine import InterviewStatus
from surveys.exceptions import RatesInputError

__all__ = [
    "DISPOSITION_FAMILY",
    "AaporDisposition",
    "CallResult",
    "DispositionFamily",
    "OutcomeCounts",
    "OutcomeRates",
    "compute_rates",
    "count_dispositions",
    "estimate_e",
    "final_disposition",
    "parse_counts_csv",
    "rates_from_mapping",
]


class DispositionFamily(StrEnum):
    """The eight families the rate formulas use."""

    I = "I"  # noqa: E741 - AAPOR's own name
    P = "P"
    R = "R"
    NC = "NC"
    O = "O"  # noqa: E741 - AAPOR's own name
    UH = "UH"
    UO = "UO"
    NE = "NE"


class AaporDisposition(StrEnum):
    """AAPOR final disposition codes for telephone surveys (the subset a dialer can tell)."""

    COMPLETE = "1.1"
    PARTIAL = "1.2"
    REFUSAL = "2.11"
    BREAK_OFF = "2.12"
    RESPONDENT_NEVER_AVAILABLE = "2.21"
    ANSWERING_MACHINE_HOUSEHOLD = "2.22"
    OTHER_ELIGIBLE = "2.30"
    LANGUAGE = "2.33"
    NOT_ATTEMPTED = "3.11"
    ALWAYS_BUSY = "3.12"
    NO_ANSWER = "3.13"
    ANSWERING_MACHINE_UNKNOWN = "3.14"
    CALL_BLOCKING = "3.15"
    TECHNICAL_PROBLEMS = "3.16"
    UNKNOWN_OTHER = "3.90"
    FAX_DATA_LINE = "4.20"
    NON_WORKING = "4.30"
    NON_RESIDENCE = "4.51"
    NO_ELIGIBLE_RESPONDENT = "4.70"
    QUOTA_FILLED = "4.80"


DISPOSITION_FAMILY: dict[AaporDisposition, DispositionFamily] = {
    AaporDisposition.COMPLETE: DispositionFamily.I,
    AaporDisposition.PARTIAL: DispositionFamily.P,
    AaporDisposition.REFUSAL: DispositionFamily.R,
    AaporDisposition.BREAK_OFF: DispositionFamily.R,
    AaporDisposition.RESPONDENT_NEVER_AVAILABLE: DispositionFamily.NC,
    AaporDisposition.ANSWERING_MACHINE_HOUSEHOLD: DispositionFamily.NC,
    AaporDisposition.OTHER_ELIGIBLE: DispositionFamily.O,
    AaporDisposition.LANGUAGE: DispositionFamily.O,
    AaporDisposition.NOT_ATTEMPTED: DispositionFamily.UH,
    AaporDisposition.ALWAYS_BUSY: DispositionFamily.UH,
    AaporDisposition.NO_ANSWER: DispositionFamily.UH,
    AaporDisposition.ANSWERING_MACHINE_UNKNOWN: DispositionFamily.UH,
    AaporDisposition.CALL_BLOCKING: DispositionFamily.UH,
    AaporDisposition.TECHNICAL_PROBLEMS: DispositionFamily.UH,
    AaporDisposition.UNKNOWN_OTHER: DispositionFamily.UO,
    AaporDisposition.FAX_DATA_LINE: DispositionFamily.NE,
    AaporDisposition.NON_WORKING: DispositionFamily.NE,
    AaporDisposition.NON_RESIDENCE: DispositionFamily.NE,
    AaporDisposition.NO_ELIGIBLE_RESPONDENT: DispositionFamily.NE,
    AaporDisposition.QUOTA_FILLED: DispositionFamily.NE,
}


class CallResult(StrEnum):
    """What one call attempt found (the dialer maps its gateway dispositions to these)."""

    NOT_DIALED = "not_dialed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    ANSWERING_MACHINE = "answering_machine"
    CALL_BLOCKED = "call_blocked"
    TECHNICAL_FAILURE = "technical_failure"
    FAX_DATA = "fax_data"
    NON_WORKING = "non_working"
    NON_RESIDENCE = "non_residence"
    ANSWERED = "answered"
    CALLBACK = "callback"
    REFUSED = "refused"
    LANGUAGE_BARRIER = "language_barrier"
    RESPONDENT_UNAVAILABLE = "respondent_unavailable"
    OTHER = "other"


# The most informative attempt decides: a number found non-working is not eligible whatever
# else happened; a refusal outranks later non-contacts; contact outranks no answer, etc.
_CALL_PRIORITY: list[tuple[CallResult, AaporDisposition]] = [
    (CallResult.FAX_DATA, AaporDisposition.FAX_DATA_LINE),
    (CallResult.NON_WORKING, AaporDisposition.NON_WORKING),
    (CallResult.NON_RESIDENCE, AaporDisposition.NON_RESIDENCE),
    (CallResult.REFUSED, AaporDisposition.REFUSAL),
    (CallResult.LANGUAGE_BARRIER, AaporDisposition.LANGUAGE),
    (CallResult.CALLBACK, AaporDisposition.RESPONDENT_NEVER_AVAILABLE),
    (CallResult.RESPONDENT_UNAVAILABLE, AaporDisposition.RESPONDENT_NEVER_AVAILABLE),
    (CallResult.ANSWERED, AaporDisposition.OTHER_ELIGIBLE),
    (CallResult.OTHER, AaporDisposition.UNKNOWN_OTHER),
    (CallResult.ANSWERING_MACHINE, AaporDisposition.ANSWERING_MACHINE_UNKNOWN),
    (CallResult.CALL_BLOCKED, AaporDisposition.CALL_BLOCKING),
    (CallResult.TECHNICAL_FAILURE, AaporDisposition.TECHNICAL_PROBLEMS),
    (CallResult.NO_ANSWER, AaporDisposition.NO_ANSWER),
    (CallResult.BUSY, AaporDisposition.ALWAYS_BUSY),
    (CallResult.NOT_DIALED, AaporDisposition.NOT_ATTEMPTED),
]


def final_disposition(
    calls: Iterable[CallResult],
    *,
    interview_status: InterviewStatus | None = None,
    interview_progress: float = 0.0,
    partial_threshold: float = 0.5,
) -> AaporDisposition:
    """The AAPOR final disposition of a case from its call results and interview outcome.

    A suspended or broken-off interview is a partial (1.2) when at least
    ``partial_threshold`` of its applicable questions were answered, otherwise a break-off
    (2.12); screen-outs are 4.70 and quota-full cases 4.80.
    """
    if not 0.0 <= partial_threshold <= 1.0:
        raise RatesInputError("partial_threshold must be between 0 and 1, e.g. 0.5")
    match interview_status:
        case InterviewStatus.COMPLETED:
            return AaporDisposition.COMPLETE
        case InterviewStatus.NOT_ELIGIBLE:
            return AaporDisposition.NO_ELIGIBLE_RESPONDENT
        case InterviewStatus.QUOTA_FULL:
            return AaporDisposition.QUOTA_FILLED
        case InterviewStatus.SUSPENDED | InterviewStatus.BROKEN_OFF | InterviewStatus.IN_PROGRESS:
            if interview_progress >= partial_threshold and interview_progress > 0:
                return AaporDisposition.PARTIAL
            return AaporDisposition.BREAK_OFF
        case _:
            pass
    seen = set(calls)
    for result, disposition in _CALL_PRIORITY:
        if result in seen:
            return disposition
    return AaporDisposition.NOT_ATTEMPTED


class OutcomeCounts(BaseModel):
    """Case counts per disposition family."""

    model_config = ConfigDict(frozen=True)

    I: int = Field(0, ge=0)  # noqa: E741
    P: int = Field(0, ge=0)
    R: int = Field(0, ge=0)
    NC: int = Field(0, ge=0)
    O: int = Field(0, ge=0)  # noqa: E741
    UH: int = Field(0, ge=0)
    UO: int = Field(0, ge=0)
    NE: int = Field(0, ge=0)

    @property
    def total(self) -> int:
        """All cases."""
        return self.I + self.P + self.R + self.NC + self.O + self.UH + self.UO + self.NE


class OutcomeRates(BaseModel):
    """The AAPOR rates (None when undefined), with e and how e was obtained."""

    RR1: float | None
    RR2: float | None
    RR3: float | None
    RR4: float | None
    RR5: float | None
    RR6: float | None
    COOP1: float | None
    COOP2: float | None
    COOP3: float | None
    COOP4: float | None
    REF1: float | None
    REF2: float | None
    REF3: float | None
    CON1: float | None
    CON2: float | None
    CON3: float | None
    e: float | None
    e_method: str


def count_dispositions(dispositions: Iterable[AaporDisposition]) -> OutcomeCounts:
    """Count final dispositions per family."""
    totals = dict.fromkeys(DispositionFamily, 0)
    for disposition in dispositions:
        totals[DISPOSITION_FAMILY[disposition]] += 1
    return OutcomeCounts(**{family.value: count for family, count in totals.items()})


def estimate_e(counts: OutcomeCounts) -> float | None:
    """Proportional estimate (I+P+R+NC+O) / (I+P+R+NC+O+NE); None without known cases."""
    eligible = counts.I + counts.P + counts.R + counts.NC + counts.O
    known = eligible + counts.NE
    return eligible / known if known else None


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def compute_rates(counts: OutcomeCounts, *, e: float | None = None) -> OutcomeRates:
    """All AAPOR response, cooperation, refusal and contact rates."""
    if e is not None:
        if not 0.0 <= e <= 1.0:
            raise RatesInputError(f"e must be between 0 and 1, got {e}")
        e_method = "given"
    else:
        e = estimate_e(counts)
        e_method = "proportional: (I+P+R+NC+O) / (I+P+R+NC+O+NE)"
    c = counts
    interviews = c.I + c.P
    eligible_nonresponse = c.R + c.NC + c.O
    unknown = c.UH + c.UO
    all_cases = interviews + eligible_nonresponse + unknown
    known_eligible = interviews + eligible_nonresponse
    estimated: float | None
    if e is None:
        # With no case of known eligibility e is undefined; it matters only if unknowns exist.
        estimated = float(known_eligible) if unknown == 0 else None
    else:
        estimated = known_eligible + e * unknown
    contacted = interviews + c.R + c.O

    def with_e(numerator: float) -> float | None:
        return None if estimated is None else _ratio(numerator, estimated)

    return OutcomeRates(
        RR1=_ratio(c.I, all_cases),
        RR2=_ratio(interviews, all_cases),
        RR3=with_e(c.I),
        RR4=with_e(interviews),
        RR5=_ratio(c.I, known_eligible),
        RR6=_ratio(interviews, known_eligible),
        COOP1=_ratio(c.I, interviews + c.R + c.O),
        COOP2=_ratio(interviews, interviews + c.R + c.O),
        COOP3=_ratio(c.I, interviews + c.R),
        COOP4=_ratio(interviews, interviews + c.R),
        REF1=_ratio(c.R, all_cases),
        REF2=with_e(c.R),
        REF3=_ratio(c.R, known_eligible),
        CON1=_ratio(contacted, all_cases),
        CON2=with_e(contacted),
        CON3=_ratio(contacted, known_eligible),
        e=e,
        e_method=e_method,
    )


def parse_counts_csv(text: str) -> OutcomeCounts:
    """Read a ``code,count`` CSV (codes I, P, R, NC, O, UH, UO, NE; repeats are summed)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    if not rows:
        raise RatesInputError("the counts CSV is empty; give a header 'code,count' and rows")
    header = [cell.strip().lower() for cell in rows[0]]
    if header[:2] != ["code", "count"]:
        raise RatesInputError(
            f"the first line must be the header 'code,count', got {','.join(rows[0])!r}"
        )
    totals: dict[str, int] = {}
    valid = {f.value for f in DispositionFamily}
    for line_number, row in enumerate(rows[1:], start=2):
        if len(row) < 2:
            raise RatesInputError(f"line {line_number}: expected 'code,count', got {row!r}")
        code, raw = row[0].strip().upper(), row[1].strip()
        if code not in valid:
            raise RatesInputError(
                f"line {line_number}: unknown code {row[0].strip()!r}; use one of "
                f"{', '.join(f.value for f in DispositionFamily)}"
            )
        try:
            count = int(raw)
        except ValueError:
            raise RatesInputError(
                f"line {line_number}: count {raw!r} for {code} is not a whole number"
            ) from None
        if count < 0:
            raise RatesInputError(f"line {line_number}: count for {code} is negative ({count})")
        totals[code] = totals.get(code, 0) + count
    return OutcomeCounts(**totals)


def rates_from_mapping(counts: Mapping[str, int], *, e: float | None = None) -> OutcomeRates:
    """Convenience: rates from a ``{"I": 5, ...}`` mapping."""
    return compute_rates(OutcomeCounts(**counts), e=e)
