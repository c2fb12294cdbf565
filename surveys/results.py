"""Results from plain response records: frequencies, cross-tabs and the completion funnel.

A :class:`ResponseRecord` is what the DB layer stores per interview (one JSON row): it is built
from a finished or stopped interview with :func:`record_from_state`. Every function here takes
records as plain data, so results can be computed from a database query, a file or a test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from surveys.engine import (
    InterviewEngine,
    InterviewMode,
    InterviewState,
    InterviewStatus,
    StoredAnswer,
)
from surveys.expressions import to_text
from surveys.schema import CHOICE_TYPES, Questionnaire, QuestionType, resolve_text

__all__ = [
    "CrossTab",
    "FrequencyRow",
    "FrequencyTable",
    "FunnelStep",
    "ResponseRecord",
    "completion_funnel",
    "cross_tab",
    "frequencies",
    "record_from_state",
]


class ResponseRecord(BaseModel):
    """One interview's responses as stored for analysis and export."""

    interview_id: str
    questionnaire_id: str
    version: str = Field(description="The questionnaire version the interview ran on.")
    status: InterviewStatus
    language: str
    answers: dict[str, StoredAnswer] = Field(default_factory=dict)
    calculated: dict[str, str | float | bool | None] = Field(default_factory=dict)
    attributes: dict[str, str | int | float | None] = Field(default_factory=dict)
    stopped_at: str | None = None
    visited: list[str] = Field(
        default_factory=list, description="Questions shown and left forward, in order."
    )
    progress: float = Field(0.0, ge=0.0, le=1.0)
    mode: InterviewMode = InterviewMode.CATI
    is_test: bool = False
    respondent_key: str | None = None
    interviewer: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


def record_from_state(engine: InterviewEngine, state: InterviewState) -> ResponseRecord:
    """The response record of an interview (any status)."""
    return ResponseRecord(
        interview_id=state.interview_id,
        questionnaire_id=state.questionnaire_id,
        version=state.questionnaire_hash,
        status=state.status,
        language=state.language,
        answers=dict(state.answers),
        calculated=dict(state.calculated),
        attributes=dict(state.attributes),
        stopped_at=state.stopped_at or state.current,
        visited=list(dict.fromkeys(state.history)),
        mode=state.mode,
        is_test=state.is_test,
        respondent_key=state.respondent_seed,
        interviewer=state.interviewer,
        started_at=state.started_at,
        ended_at=state.ended_at or state.updated_at,
        progress=engine.progress(state),
    )


class FrequencyRow(BaseModel):
    """One value of a question and how often it was given."""

    value: str
    label: str
    count: int
    percent: float = Field(description="Share of respondents who answered the question (%).")


class FrequencyTable(BaseModel):
    """Frequencies of one question; for multiple choice percentages can sum past 100."""

    question: str
    label: str
    base: int = Field(description="Records with an answer to this question.")
    missing: int = Field(description="Records without one (not asked, skipped, stopped).")
    rows: list[FrequencyRow]


class CrossTab(BaseModel):
    """Counts of one question's values (rows) by another's (columns)."""

    row_question: str
    column_question: str
    row_values: list[str]
    row_labels: list[str]
    column_values: list[str]
    column_labels: list[str]
    counts: list[list[int]]
    row_totals: list[int]
    column_totals: list[int]
    total: int

    def row_percents(self) -> list[list[float]]:
        """Each cell as a percentage of its row total (0 where the row is empty)."""
        return [
            [100.0 * cell / self.row_totals[i] if self.row_totals[i] else 0.0 for cell in row]
            for i, row in enumerate(self.counts)
        ]

    def column_percents(self) -> list[list[float]]:
        """Each cell as a percentage of its column total (0 where the column is empty)."""
        return [
            [
                100.0 * cell / self.column_totals[j] if self.column_totals[j] else 0.0
                for j, cell in enumerate(row)
            ]
            for row in self.counts
        ]


class FunnelStep(BaseModel):
    """How many interviews reached, answered and stopped at one question."""

    question: str
    reached: int
    answered: int
    broke_off: int = Field(description="Suspended or broken off while this question was open.")
    screened_out: int = Field(description="Ended as not eligible or quota full here.")


def _values_of(record: ResponseRecord, name: str) -> list[str]:
    stored = record.answers.get(name)
    if stored is not None:
        if stored.special is not None:
            return [stored.special.value]
        if isinstance(stored.value, list):
            return list(stored.value)
        return [] if stored.value is None else [to_text(stored.value)]
    if name in record.calculated:
        text = to_text(record.calculated[name])
        return [text] if text else []
    if name in record.attributes:
        text = to_text(record.attributes[name])
        return [text] if text else []
    return []


def _catalogue(questionnaire: Questionnaire, name: str, language: str) -> list[tuple[str, str]]:
    """Known values and labels of a question, in questionnaire order."""
    fallback = questionnaire.primary_language
    try:
        question = questionnaire.question(name)
    except KeyError:
        return []
    if question.type in CHOICE_TYPES:
        return [
            (c.value, resolve_text(c.label, language, fallback))
            for c in questionnaire.choice_lists.get(question.choices or "", [])
        ]
    values: list[tuple[str, str]] = []
    if (
        question.type == QuestionType.RATING
        and question.min is not None
        and question.max is not None
    ):
        values = [(str(v), str(v)) for v in range(int(question.min), int(question.max) + 1)]
    values += [(s.value, s.value) for s in question.special_answers]
    return values


def _label_of(questionnaire: Questionnaire, name: str, language: str) -> str:
    try:
        label = questionnaire.question(name).label
    except KeyError:
        for attribute in questionnaire.attributes:
            if attribute.name == name:
                return resolve_text(attribute.label, language, questionnaire.primary_language)
        return name
    return resolve_text(label, language, questionnaire.primary_language) or name


def _numeric_key(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _axis(
    questionnaire: Questionnaire, name: str, language: str, seen: Iterable[str]
) -> list[tuple[str, str]]:
    known = _catalogue(questionnaire, name, language)
    listed = {v for v, _ in known}
    extra = sorted({v for v in seen if v not in listed}, key=_numeric_key)
    return known + [(v, v) for v in extra]


def frequencies(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    question: str,
    *,
    language: str | None = None,
    statuses: Iterable[InterviewStatus] | None = None,
) -> FrequencyTable:
    """Counts and percentages of every value of one question (all options listed)."""
    language = language or questionnaire.primary_language
    chosen = _filter(records, statuses)
    counts: Counter[str] = Counter()
    base = 0
    for record in chosen:
        values = _values_of(record, question)
        if values:
            base += 1
            counts.update(set(values))
    rows = [
        FrequencyRow(
            value=value,
            label=label,
            count=counts[value],
            percent=100.0 * counts[value] / base if base else 0.0,
        )
        for value, label in _axis(questionnaire, question, language, counts)
    ]
    return FrequencyTable(
        question=question,
        label=_label_of(questionnaire, question, language),
        base=base,
        missing=len(chosen) - base,
        rows=rows,
    )


def cross_tab(
    questionnaire: Questionnaire,
    records: Sequence[ResponseRecord],
    row_question: str,
    column_question: str,
    *,
    language: str | None = None,
    statuses: Iterable[InterviewStatus] | None = None,
) -> CrossTab:
    """Counts of row_question by column_question among records that answered both."""
    language = language or questionnaire.primary_language
    pairs: Counter[tuple[str, str]] = Counter()
    for record in _filter(records, statuses):
        rows, columns = _values_of(record, row_question), _values_of(record, column_question)
        for r in set(rows):
            for c in set(columns):
                pairs[(r, c)] += 1
    row_axis = _axis(questionnaire, row_question, language, {r for r, _ in pairs})
    column_axis = _axis(questionnaire, column_question, language, {c for _, c in pairs})
    counts = [[pairs[(r, c)] for c, _ in column_axis] for r, _ in row_axis]
    return CrossTab(
        row_question=row_question,
        column_question=column_question,
        row_values=[v for v, _ in row_axis],
        row_labels=[label for _, label in row_axis],
        column_values=[v for v, _ in column_axis],
        column_labels=[label for _, label in column_axis],
        counts=counts,
        row_totals=[sum(row) for row in counts],
        column_totals=[sum(row[j] for row in counts) for j in range(len(column_axis))],
        total=sum(sum(row) for row in counts),
    )


def completion_funnel(
    questionnaire: Questionnaire, records: Sequence[ResponseRecord]
) -> list[FunnelStep]:
    """For each shown question in order: interviews that reached, answered, stopped there."""
    names = [
        q.name
        for q in questionnaire.walk()
        if q.type not in (QuestionType.GROUP, QuestionType.CALCULATE)
    ]
    steps = []
    for name in names:
        reached = answered = broke_off = screened = 0
        for record in records:
            stopped_here = record.stopped_at == name
            if name in record.visited or name in record.answers or stopped_here:
                reached += 1
            if name in record.answers:
                answered += 1
            if stopped_here and record.status in (
                InterviewStatus.SUSPENDED,
                InterviewStatus.BROKEN_OFF,
            ):
                broke_off += 1
            if stopped_here and record.status in (
                InterviewStatus.NOT_ELIGIBLE,
                InterviewStatus.QUOTA_FULL,
            ):
                screened += 1
        steps.append(
            FunnelStep(
                question=name,
                reached=reached,
                answered=answered,
                broke_off=broke_off,
                screened_out=screened,
            )
        )
    return steps


def _filter(
    records: Sequence[ResponseRecord], statuses: Iterable[InterviewStatus] | None
) -> list[ResponseRecord]:
    if statuses is None:
        return list(records)
    wanted = set(statuses)
    return [r for r in records if r.status in wanted]
