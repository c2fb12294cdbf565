"""The interview runtime: a pure state machine over a JSON-serialisable InterviewState.

The server stores :class:`InterviewState` (``state.model_dump(mode="json")``) after every
operation and reloads it with ``InterviewState.model_validate(data)``, so a reloaded agent
screen or a restarted server loses nothing. Every operation of :class:`InterviewEngine` takes
a state and returns a *new* state; nothing reads the clock (pass ``now``) or a database
(pass a :class:`~surveys.quotas.QuotaCounter`).

Life cycle::

    start ──> in_progress ──answer/back/set_language──> in_progress
                 │  ├─ screen_out true ──────────────> not_eligible (AAPOR 4.70)
                 │  ├─ quota cell full ──────────────> quota_full   (AAPOR 4.80)
                 │  ├─ suspend ──> suspended (partial) ──resume──> in_progress
                 │  ├─ break_off ──> broken_off (partial or break-off by progress)
                 │  └─ last question answered, then complete ──> completed | quota_full

Relevance (of a question and of its enclosing groups) decides which questions are shown;
answers to questions that stop being relevant (after going back and changing an answer) are
dropped, as XLSForm clients do. Calculations are recomputed after every change in dependency
order. A choice question whose filter leaves no option is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from surveys.exceptions import (
    InterviewError,
    InterviewNotActiveError,
    InvalidAnswerError,
    NotCurrentQuestionError,
    QuotaCounterRequiredError,
    SchemaError,
)
from surveys.expressions import EvalContext, Node, Value, evaluate, parse, to_bool, to_text
from surveys.messages import message
from surveys.quotas import QuotaCell, QuotaCounter, quota_cells
from surveys.randomization import option_order
from surveys.schema import (
    CHOICE_TYPES,
    SILENT_TYPES,
    Choice,
    LocalizedText,
    Question,
    Questionnaire,
    QuestionType,
    SpecialKind,
    content_hash,
    resolve_text,
)
from surveys.validation import PIPE_PATTERN, calculation_order, ensure_publishable

__all__ = [
    "AnswerValue",
    "InterviewEngine",
    "InterviewMode",
    "InterviewState",
    "InterviewStatus",
    "PresentedOption",
    "PresentedQuestion",
    "StoredAnswer",
]

AnswerValue = str | int | float | list[str] | None
"""What an answer carries: a choice value, a number, text, an ISO date or a list of values."""


class InterviewStatus(StrEnum):
    """Where an interview stands."""

    IN_PROGRESS = "in_progress"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    NOT_ELIGIBLE = "not_eligible"
    QUOTA_FULL = "quota_full"
    BROKEN_OFF = "broken_off"


class InterviewMode(StrEnum):
    """Who drives the interview."""

    CATI = "cati"
    IVR = "ivr"
    TEST = "test"


class StoredAnswer(BaseModel):
    """A validated answer: a value, or a special answer, plus 'other (specify)' text."""

    model_config = ConfigDict(frozen=True)

    value: AnswerValue = None
    special: SpecialKind | None = None
    other_text: str | None = None


class InterviewState(BaseModel):
    """Everything the server stores about one interview (JSON-able, versioned by hash)."""

    interview_id: str
    questionnaire_id: str
    questionnaire_hash: str
    respondent_seed: str
    language: str
    mode: InterviewMode = InterviewMode.CATI
    is_test: bool = Field(
        False, description="A test or preview interview: never in quotas, results or exports."
    )
    call_id: str | None = None
    interviewer: str | None = Field(
        None, description="The agent (seat) running the interview: ${deviceid}, ${username}."
    )
    status: InterviewStatus = InterviewStatus.IN_PROGRESS
    current: str | None = None
    stopped_at: str | None = Field(
        None, description="Question shown when the interview left in_progress (funnel)."
    )
    history: list[str] = Field(default_factory=list)
    answers: dict[str, StoredAnswer] = Field(default_factory=dict)
    calculated: dict[str, str | float | bool | None] = Field(default_factory=dict)
    attributes: dict[str, str | int | float | None] = Field(default_factory=dict)
    quota_cells: list[QuotaCell] = Field(
        default_factory=list, description="Cells claimed on completion, or the full cell."
    )
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        """Whether the interview can take answers now."""
        return self.status == InterviewStatus.IN_PROGRESS

    @property
    def awaiting_completion(self) -> bool:
        """Every applicable question is answered; call ``complete``."""
        return self.status == InterviewStatus.IN_PROGRESS and self.current is None


class PresentedOption(BaseModel):
    """An option as shown to this respondent."""

    value: str
    label: str
    special: SpecialKind | None = None


class PresentedQuestion(BaseModel):
    """The current question resolved for display: language, piping, option order."""

    name: str
    type: QuestionType
    label: str
    hint: str = ""
    required: bool = False
    options: list[PresentedOption] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    min_label: str = ""
    max_label: str = ""
    max_length: int | None = None
    max_selected: int | None = None
    special_answers: list[SpecialKind] = Field(default_factory=list)
    group_labels: list[str] = Field(default_factory=list)
    ivr_prompt: str = ""
    default: str = Field("", description="The proposed answer (XLSForm default/calculation).")
    current_answer: StoredAnswer | None = None
    language: str
    number: int = Field(description="1-based position among the questionnaire's questions.")
    total: int
    can_go_back: bool


@dataclass(frozen=True, slots=True)
class _Slot:
    question: Question
    ancestors: tuple[Question, ...]
    index: int


class InterviewEngine:
    """Runs interviews of one published questionnaire version (validated on construction)."""

    def __init__(
        self,
        questionnaire: Questionnaire,
        *,
        version_hash: str | None = None,
        validated: bool = False,
    ) -> None:
        # A version loaded from the DB was validated when it was published; re-validating on
        # every request is wasted work, so callers may say so (and should cache engines).
        if not validated:
            ensure_publishable(questionnaire)
        self.questionnaire = questionnaire
        self.version_hash = version_hash or content_hash(questionnaire)
        self._slots: list[_Slot] = []
        self._by_name: dict[str, Question] = {}
        self._ancestors: dict[str, tuple[Question, ...]] = {}
        self._collect(questionnaire.questions, ())
        self._presentable = [s for s in self._slots if not _silent(s.question)]
        self._position = {s.question.name: i for i, s in enumerate(self._presentable)}
        self._calc_order = [self._by_name[n] for n in calculation_order(questionnaire)]
        self._expressions: dict[str, Node] = {}
        self._table_cache: dict[str, dict[str, list[dict[str, str]]]] = {}
        self._metadata = [
            slot.question for slot in self._slots if slot.question.type == QuestionType.METADATA
        ]

    def _collect(self, questions: Sequence[Question], ancestors: tuple[Question, ...]) -> None:
        for question in questions:
            self._by_name[question.name] = question
            self._ancestors[question.name] = ancestors
            if question.type == QuestionType.GROUP:
                self._collect(question.questions, (*ancestors, question))
            else:
                self._slots.append(_Slot(question, ancestors, len(self._slots)))

    # --- public operations -----------------------------------------------------------

    def start(
        self,
        *,
        interview_id: str,
        respondent_key: str,
        now: datetime,
        language: str | None = None,
        attributes: Mapping[str, str | int | float | None] | None = None,
        call_id: str | None = None,
        mode: InterviewMode = InterviewMode.CATI,
        quota_counter: QuotaCounter | None = None,
        interviewer: str | None = None,
        is_test: bool = False,
    ) -> InterviewState:
        """Start an interview; ``respondent_key`` (e.g. the lead id) seeds option order."""
        language = language or self.questionnaire.primary_language
        self._check_language(language)
        given = dict(attributes or {})
        declared = {a.name: a for a in self.questionnaire.attributes}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise SchemaError(
                f"attributes {unknown} are not declared by questionnaire "
                f"{self.questionnaire.id!r}; declare them under 'attributes'",
                field="attributes",
            )
        missing = [n for n, a in declared.items() if a.required and given.get(n) in (None, "")]
        if missing:
            raise SchemaError(
                f"required attributes {missing} are missing; pass them from the lead",
                field="attributes",
            )
        state = InterviewState(
            interview_id=interview_id,
            questionnaire_id=self.questionnaire.id,
            questionnaire_hash=self.version_hash,
            respondent_seed=respondent_key,
            language=language,
            mode=mode,
            is_test=is_test or mode == InterviewMode.TEST,
            call_id=call_id,
            interviewer=interviewer,
            attributes={name: given.get(name) for name in declared},
            started_at=now,
            updated_at=now,
        )
        self._recompute(state)
        state.current = self._next_from(state, 0)
        self._check_quota_early(state, quota_counter, now)
        return state

    def current_question(self, state: InterviewState) -> PresentedQuestion | None:
        """The question to show now, resolved in the state's language; None if none."""
        self._check_state(state)
        if state.current is None or state.status != InterviewStatus.IN_PROGRESS:
            return None
        return self.present(state, state.current)

    def present(self, state: InterviewState, name: str) -> PresentedQuestion:
        """Resolve any question for display to this respondent (labels, piping, options)."""
        question = self._by_name[name]
        language = state.language
        values = self.values(state)

        def text(value: LocalizedText | None) -> str:
            return self._pipe(resolve_text(value, language, self._fallback), state, values)

        options = [
            PresentedOption(value=c.value, label=text(c.label), special=c.special)
            for c in self.options_for(state, name)
        ]
        position = self._position.get(name, 0)
        proposed = question.default or ""
        if question.calculation and question.type != QuestionType.CALCULATE:
            result = evaluate(self._parsed(question.calculation), self._context(state, values))
            proposed = to_text(_storable(result))
        return PresentedQuestion(
            name=name,
            type=question.type,
            label=text(question.label),
            hint=text(question.hint),
            required=self._is_required(state, question, values),
            options=options,
            min=question.min,
            max=question.max,
            min_label=text(question.min_label),
            max_label=text(question.max_label),
            max_length=question.max_length,
            max_selected=question.max_selected,
            special_answers=list(question.special_answers),
            group_labels=[text(g.label) for g in self._ancestors[name] if g.label is not None],
            ivr_prompt=text(question.ivr_prompt),
            default=proposed,
            current_answer=state.answers.get(name),
            language=language,
            number=position + 1,
            total=len(self._presentable),
            can_go_back=bool(state.history),
        )

    def options_for(self, state: InterviewState, name: str) -> list[Choice]:
        """The options of a choice question after choice_filter, in the respondent's order."""
        question = self._by_name[name]
        if question.type not in CHOICE_TYPES or question.choices is None:
            return []
        choices = self.questionnaire.choice_lists[question.choices]
        if question.choice_filter:
            tree = self._parsed(question.choice_filter)
            values = self.values(state)
            choices = [
                c
                for c in choices
                if to_bool(
                    evaluate(
                        tree,
                        self._context(state, values, choice={"name": c.value, **c.columns}),
                    )
                )
            ]
        if question.randomize:
            choices = option_order(choices, seed=state.respondent_seed, question=name)
        return list(choices)

    def answer(
        self,
        state: InterviewState,
        question: str,
        value: AnswerValue = None,
        *,
        special: SpecialKind | str | None = None,
        other_text: str | None = None,
        now: datetime | None = None,
        quota_counter: QuotaCounter | None = None,
    ) -> InterviewState:
        """Answer the current question and move on; raises InvalidAnswerError (localized)."""
        self._check_active(state)
        if question != state.current:
            current = state.current
            hint = f"the current question is {current!r}" if current else "no question is open"
            raise NotCurrentQuestionError(
                f"question {question!r} is not the current question; {hint}",
                question=question,
                current=current,
            )
        stored = self._validate(state, self._by_name[question], value, special, other_text)
        new = state.model_copy(deep=True)
        if stored is None:
            new.answers.pop(question, None)
        else:
            new.answers[question] = stored
        new.history.append(question)
        new.updated_at = now or state.updated_at
        self._recompute(new)
        asked = self._by_name[question]
        if asked.screen_out and to_bool(
            evaluate(self._parsed(asked.screen_out), self._context(new, self.values(new)))
        ):
            return self._end(new, InterviewStatus.NOT_ELIGIBLE, now)
        if self._check_quota_early(new, quota_counter, now):
            return new
        new.current = self._next_from(new, self._slot_index(question) + 1)
        return new

    def back(self, state: InterviewState, *, now: datetime | None = None) -> InterviewState:
        """Go back to the previous question shown; its answer is kept as the default."""
        self._check_active(state)
        new = state.model_copy(deep=True)
        while new.history:
            previous = new.history.pop()
            if self._is_presentable(new, self._by_name[previous]):
                new.current = previous
                new.updated_at = now or state.updated_at
                return new
        raise InterviewError("cannot go back: this is the first question")

    def set_language(
        self, state: InterviewState, language: str, *, now: datetime | None = None
    ) -> InterviewState:
        """Switch the interview's language mid-interview (option order does not change)."""
        self._check_state(state)
        self._check_language(language)
        return state.model_copy(
            update={"language": language, "updated_at": now or state.updated_at}
        )

    def suspend(self, state: InterviewState, *, now: datetime | None = None) -> InterviewState:
        """Suspend (a partial): resume later at the same question, e.g. on a callback."""
        self._check_active(state)
        return state.model_copy(
            update={
                "status": InterviewStatus.SUSPENDED,
                "stopped_at": state.current,
                "updated_at": now or state.updated_at,
            }
        )

    def resume(self, state: InterviewState, *, now: datetime | None = None) -> InterviewState:
        """Resume a suspended interview where it stopped."""
        self._check_state(state)
        if state.status != InterviewStatus.SUSPENDED:
            raise InterviewNotActiveError(
                f"interview {state.interview_id} is {state.status.value}, not suspended; "
                "only suspended interviews can be resumed"
            )
        return state.model_copy(
            update={
                "status": InterviewStatus.IN_PROGRESS,
                "stopped_at": None,
                "updated_at": now or state.updated_at,
            }
        )

    def break_off(self, state: InterviewState, *, now: datetime | None = None) -> InterviewState:
        """The respondent ends the interview for good (hang-up or refusal to continue)."""
        self._check_state(state)
        if state.status not in (InterviewStatus.IN_PROGRESS, InterviewStatus.SUSPENDED):
            raise InterviewNotActiveError(
                f"interview {state.interview_id} has already ended as {state.status.value}"
            )
        new = state.model_copy(deep=True)
        new.stopped_at = state.stopped_at or state.current
        new.status = InterviewStatus.BROKEN_OFF
        new.ended_at = now or state.updated_at
        new.updated_at = new.ended_at
        return new

    def complete(
        self,
        state: InterviewState,
        *,
        quota_counter: QuotaCounter | None = None,
        now: datetime | None = None,
    ) -> InterviewState:
        """Complete after the last question, claiming quota cells atomically."""
        self._check_active(state)
        if state.current is not None:
            raise InterviewError(
                f"interview is not finished: question {state.current!r} is still open; "
                "answer it (or suspend the interview)"
            )
        new = state.model_copy(deep=True)
        cells = quota_cells(self.questionnaire, self.values(new))
        if self.questionnaire.quotas:
            if quota_counter is None:
                raise QuotaCounterRequiredError(
                    f"questionnaire {self.questionnaire.id!r} has quotas: pass quota_counter"
                )
            full = quota_counter.claim(cells) if cells else None
            if full is not None:
                new.quota_cells = [full]
                return self._end(new, InterviewStatus.QUOTA_FULL, now)
        new.quota_cells = cells
        new.status = InterviewStatus.COMPLETED
        new.ended_at = now or state.updated_at
        new.updated_at = new.ended_at
        return new

    def intro_text(self, state: InterviewState) -> str:
        """The questionnaire's introduction for the agent, piped, in the state's language."""
        return self._pipe(
            resolve_text(self.questionnaire.intro, state.language, self._fallback),
            state,
            self.values(state),
        )

    def closing_message(self, state: InterviewState) -> str:
        """What to say when the interview has ended, in the respondent's language."""
        q = self.questionnaire
        texts: dict[InterviewStatus, tuple[LocalizedText | None, str]] = {
            InterviewStatus.COMPLETED: (q.completed_message, "completed"),
            InterviewStatus.NOT_ELIGIBLE: (self._screen_message(state), "screened_out"),
            InterviewStatus.QUOTA_FULL: (self._quota_message(state), "quota_full"),
        }
        if state.status not in texts:
            return ""
        custom, key = texts[state.status]
        if custom is not None:
            return self._pipe(
                resolve_text(custom, state.language, self._fallback), state, self.values(state)
            )
        return message(key, state.language)

    def values(self, state: InterviewState) -> dict[str, Value]:
        """Every name an expression can see: attributes, answers, calculations, metadata."""
        values: dict[str, Value] = dict(state.attributes)
        for name, stored in state.answers.items():
            values[name] = stored.value if stored.special is None else None
        values.update(state.calculated)
        for question in self._metadata:
            values[question.name] = _metadata_value(question.source_type, state)
        return values

    def progress(self, state: InterviewState) -> float:
        """Share of the questions applicable to this respondent that have an answer (0–1)."""
        applicable = [
            s.question.name
            for s in self._presentable
            if s.question.type != QuestionType.NOTE and self._is_relevant(state, s.question)
        ]
        if not applicable:
            return 1.0
        return sum(1 for n in applicable if n in state.answers) / len(applicable)

    def display_value(self, state: InterviewState, name: str) -> str:
        """How an answer or attribute reads inside a piped label, in the state's language."""
        return self._display(state, name, self.values(state))

    # --- internals -------------------------------------------------------------------

    @property
    def _fallback(self) -> str:
        return self.questionnaire.primary_language

    def _check_language(self, language: str) -> None:
        if language not in self.questionnaire.languages:
            raise SchemaError(
                f"language {language!r} is not offered; choose one of "
                f"{self.questionnaire.languages}",
                field="language",
            )

    def _check_state(self, state: InterviewState) -> None:
        if state.questionnaire_hash != self.version_hash:
            raise InterviewError(
                f"interview {state.interview_id} belongs to questionnaire version "
                f"{state.questionnaire_hash[:12]}, not {self.version_hash[:12]}; load the "
                "version the interview started with"
            )

    def _check_active(self, state: InterviewState) -> None:
        self._check_state(state)
        if state.status != InterviewStatus.IN_PROGRESS:
            hint = " resume it first" if state.status == InterviewStatus.SUSPENDED else ""
            raise InterviewNotActiveError(
                f"interview {state.interview_id} is {state.status.value};{hint or ' it ended'}"
            )

    def _parsed(self, text: str) -> Node:
        tree = self._expressions.get(text)
        if tree is None:
            tree = self._expressions[text] = parse(text)
        return tree

    def _context(
        self,
        state: InterviewState,
        values: Mapping[str, Value],
        *,
        current: Value = None,
        choice: Mapping[str, str] | None = None,
    ) -> EvalContext:
        today: date = state.started_at.date()
        return EvalContext(
            values=values,
            current=current,
            today=today,
            choice=choice,
            now=state.updated_at,
            tables=self._tables(state.language),
            choice_label=lambda value, question: self._choice_label(state, value, question),
        )

    def _tables(self, language: str) -> dict[str, list[dict[str, str]]]:
        cached = self._table_cache.get(language)
        if cached is None:
            cached = dict(self.questionnaire.tables)
            for list_name, choices in self.questionnaire.choice_lists.items():
                cached.setdefault(
                    list_name,
                    [
                        {
                            **c.columns,
                            "name": c.value,
                            "label": resolve_text(c.label, language, self._fallback),
                        }
                        for c in choices
                    ],
                )
            self._table_cache[language] = cached
        return cached

    def _choice_label(self, state: InterviewState, value: str, question: str) -> str:
        asked = self._by_name.get(question)
        if asked is None or asked.choices is None:
            return ""
        for choice in self.questionnaire.choice_lists.get(asked.choices, []):
            if choice.value == value:
                return resolve_text(choice.label, state.language, self._fallback)
        return ""

    def _is_relevant(self, state: InterviewState, question: Question) -> bool:
        values = self.values(state)
        for node in (*self._ancestors[question.name], question):
            if node.relevant and not to_bool(
                evaluate(self._parsed(node.relevant), self._context(state, values))
            ):
                return False
        return True

    def _is_presentable(self, state: InterviewState, question: Question) -> bool:
        if not self._is_relevant(state, question):
            return False
        return question.type not in CHOICE_TYPES or bool(self.options_for(state, question.name))

    def _slot_index(self, name: str) -> int:
        for slot in self._slots:
            if slot.question.name == name:
                return slot.index
        raise KeyError(name)  # pragma: no cover - names come from validated states

    def _next_from(self, state: InterviewState, start: int) -> str | None:
        for slot in self._slots[start:]:
            if _silent(slot.question):
                continue
            if self._is_presentable(state, slot.question):
                return slot.question.name
        return None

    def _recompute(self, state: InterviewState) -> None:
        """Recompute calculations and drop answers that are no longer relevant."""
        for _ in range(len(self._slots) + 1):
            state.calculated = {}
            for calc in self._calc_order:
                if not self._is_relevant(state, calc):
                    state.calculated[calc.name] = None
                    continue
                if calc.calculation is None:  # read-only with a default
                    state.calculated[calc.name] = calc.default
                    continue
                result = evaluate(
                    self._parsed(calc.calculation), self._context(state, self.values(state))
                )
                state.calculated[calc.name] = _storable(result)
            stale = [n for n in state.answers if not self._is_relevant(state, self._by_name[n])]
            if not stale:
                return
            for name in stale:
                del state.answers[name]

    def _check_quota_early(
        self, state: InterviewState, counter: QuotaCounter | None, now: datetime | None
    ) -> bool:
        if counter is None:
            return False
        for cell in quota_cells(self.questionnaire, self.values(state)):
            if counter.is_full(cell):
                state.quota_cells = [cell]
                self._end(state, InterviewStatus.QUOTA_FULL, now)
                return True
        return False

    def _end(
        self, state: InterviewState, status: InterviewStatus, now: datetime | None
    ) -> InterviewState:
        state.stopped_at = state.history[-1] if state.history else state.current
        state.status = status
        state.current = None
        state.ended_at = now or state.updated_at
        state.updated_at = state.ended_at
        return state

    def _screen_message(self, state: InterviewState) -> LocalizedText | None:
        if state.stopped_at:
            custom = self._by_name[state.stopped_at].screen_out_message
            if custom is not None:
                return custom
        return self.questionnaire.screened_out_message

    def _quota_message(self, state: InterviewState) -> LocalizedText | None:
        for cell in state.quota_cells:
            for quota in self.questionnaire.quotas:
                if quota.name == cell.quota and quota.message is not None:
                    return quota.message
        return self.questionnaire.quota_full_message

    def _display(self, state: InterviewState, name: str, values: Mapping[str, Value]) -> str:
        question = self._by_name.get(name)
        stored = state.answers.get(name)
        if question is None or stored is None or question.type not in CHOICE_TYPES:
            return to_text(values.get(name))
        choices = {c.value: c for c in self.questionnaire.choice_lists[question.choices or ""]}
        chosen = stored.value if isinstance(stored.value, list) else [to_text(stored.value)]
        labels = []
        for value in chosen:
            choice = choices.get(value)
            if choice is None:
                continue
            if choice.special == SpecialKind.OTHER and stored.other_text:
                labels.append(stored.other_text)
            else:
                labels.append(resolve_text(choice.label, state.language, self._fallback))
        return message("list_separator", state.language).join(labels)

    def _pipe(self, text: str, state: InterviewState, values: Mapping[str, Value]) -> str:
        if "${" not in text:
            return text
        return PIPE_PATTERN.sub(lambda m: self._display(state, m.group(1), values), text)

    def _validate(
        self,
        state: InterviewState,
        question: Question,
        value: AnswerValue,
        special: SpecialKind | str | None,
        other_text: str | None,
    ) -> StoredAnswer | None:
        language = state.language
        name = question.name

        def reject(reason: str, custom: LocalizedText | None = None, **params: object) -> None:
            if custom is not None:
                text = self._pipe(resolve_text(custom, language, self._fallback), state, values)
            else:
                text = message(reason, language, **params)
            raise InvalidAnswerError(text, question=name, reason=reason)

        values = self.values(state)
        if question.type == QuestionType.NOTE:
            if value not in (None, "", []) or special is not None:
                reject("note_takes_no_answer")
            return None
        if special is not None:
            try:
                kind = SpecialKind(special)
            except ValueError:
                kind = None
            if kind is None or kind not in question.special_answers:
                reject("special_not_allowed", special=str(special))
                raise AssertionError  # pragma: no cover - reject always raises
            if value not in (None, "", []):
                reject("special_with_value", special=kind.value)
            return StoredAnswer(special=kind)
        if value is None or value == "" or value == []:
            if self._is_required(state, question, values):
                reject("required", question.required_message)
            return None
        normalized = self._normalize(question, value, state, reject)
        if other_text is not None and other_text.strip():
            selected = normalized if isinstance(normalized, list) else [normalized]
            other = self._other_value(question)
            if other is None or other not in selected:
                reject("other_not_allowed")
            other_text = other_text.strip()
        else:
            other_text = None
            other = self._other_value(question)
            selected = normalized if isinstance(normalized, list) else [normalized]
            # An IVR caller cannot type the "specify" text; the option alone is kept.
            if other is not None and other in selected and state.mode != InterviewMode.IVR:
                reject("other_required")
        if question.constraint:
            context = self._context(state, values, current=normalized)
            if not to_bool(evaluate(self._parsed(question.constraint), context)):
                reject("constraint", question.constraint_message)
        return StoredAnswer(value=normalized, other_text=other_text)

    def _is_required(
        self, state: InterviewState, question: Question, values: Mapping[str, Value]
    ) -> bool:
        if question.required:
            return True
        if question.required_if is None:
            return False
        return to_bool(evaluate(self._parsed(question.required_if), self._context(state, values)))

    def _other_value(self, question: Question) -> str | None:
        if question.type not in CHOICE_TYPES:
            return None
        for choice in self.questionnaire.choice_lists[question.choices or ""]:
            if choice.special == SpecialKind.OTHER:
                return choice.value
        return None

    def _normalize(
        self, question: Question, value: AnswerValue, state: InterviewState, reject: Any
    ) -> AnswerValue:
        kind = question.type
        if kind == QuestionType.SINGLE_CHOICE:
            if isinstance(value, bool) or not isinstance(value, str | int):
                reject("not_a_choice", value=repr(value))
            text = str(value)
            if text not in {c.value for c in self.options_for(state, question.name)}:
                reject("not_a_choice", value=text)
            return text
        if kind == QuestionType.RANK:
            ranked = {c.value for c in self.options_for(state, question.name)}
            if not isinstance(value, list) or sorted(str(v) for v in value) != sorted(ranked):
                reject("not_a_ranking")
            assert isinstance(value, list)
            return [str(v) for v in value]
        if kind == QuestionType.ACKNOWLEDGE:
            if str(value).strip().lower() not in ("ok", "1", "true", "yes"):
                reject("not_acknowledged")
            return "OK"
        if kind in (QuestionType.DATETIME, QuestionType.TIME):
            parser = datetime if kind == QuestionType.DATETIME else time
            try:
                return parser.fromisoformat(str(value).strip()).isoformat()
            except ValueError:
                reject("not_datetime" if kind == QuestionType.DATETIME else "not_time")
        if kind == QuestionType.MULTIPLE_CHOICE:
            if not isinstance(value, list) or not all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in value
            ):
                reject("not_a_list")
            assert isinstance(value, list)
            options = {c.value: c for c in self.options_for(state, question.name)}
            chosen = [str(v) for v in value]
            for item in chosen:
                if item not in options:
                    reject("not_a_choice", value=item)
                if chosen.count(item) > 1:
                    reject("duplicate_choice", value=item)
            exclusive = [
                options[i]
                for i in chosen
                if options[i].special in (SpecialKind.DONT_KNOW, SpecialKind.REFUSED)
            ]
            if exclusive and len(chosen) > 1:
                label = resolve_text(exclusive[0].label, state.language, self._fallback)
                reject("exclusive_choice", label=label)
            if question.max_selected is not None and len(chosen) > question.max_selected:
                reject("too_many_choices", max_selected=question.max_selected)
            return chosen
        if kind in (QuestionType.INTEGER, QuestionType.RATING):
            number: int | float | None = _as_int(value)
            if number is None:
                reject("not_integer")
            assert number is not None
            self._check_range(question, number, reject)
            return number
        if kind == QuestionType.DECIMAL:
            number = _as_float(value)
            if number is None:
                reject("not_number")
            assert number is not None
            self._check_range(question, number, reject)
            return number
        if kind == QuestionType.DATE:
            if not isinstance(value, str):
                reject("not_date")
            assert isinstance(value, str)
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                reject("not_date")
        if kind == QuestionType.TEXT:
            if not isinstance(value, str):
                reject("not_text")
            assert isinstance(value, str)
            text = value.strip()
            limit = question.max_length or 10_000
            if len(text) > limit:
                reject("too_long", max_length=limit)
            return text
        raise InterviewError(f"question {question.name!r} ({kind.value}) takes no answer")

    @staticmethod
    def _check_range(question: Question, number: float, reject: Any) -> None:
        if question.min is not None and number < question.min:
            reject("below_min", min=to_text(question.min))
        if question.max is not None and number > question.max:
            reject("above_max", max=to_text(question.max))


def _silent(question: Question) -> bool:
    """Never shown to the agent: computed, a group, metadata, not askable, or read-only."""
    return question.type in SILENT_TYPES or question.read_only


def _metadata_value(source: str | None, state: InterviewState) -> Value:
    """What an XLSForm metadata field means in a phone interview (see SCHEMA.md)."""
    if source == "start":
        return state.started_at.isoformat()
    if source == "end":
        return (state.ended_at or state.updated_at).isoformat()
    if source == "today":
        return state.started_at.date().isoformat()
    if source in ("deviceid", "username"):
        return state.interviewer or ""
    return ""  # phonenumber, email, subscriberid, simserial: not known to the interview


def _storable(result: Value) -> str | float | bool | None:
    if isinstance(result, list):
        return " ".join(result)
    if isinstance(result, float) and (math.isnan(result) or math.isinf(result)):
        return None
    if isinstance(result, int) and not isinstance(result, bool):
        return float(result)
    return result


def _as_int(value: AnswerValue) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit() and text.isascii():
            return int(text)
    return None


def _as_float(value: AnswerValue) -> float | None:
    if isinstance(value, bool) or value is None or isinstance(value, list):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
