"""Agentless (IVR) interviews: read-out prompts, DTMF key maps, and a simulated respondent.

The dialer's gateway plays :attr:`IvrPrompt.text` with text-to-speech, collects DTMF digits
and calls :func:`ivr_respond` with them; a hang-up calls ``engine.break_off``. Key mapping:

* single choice: options in the respondent's order get keys ``1``–``9`` then ``0``; more than
  ten options are entered as a number followed by ``#``;
* multiple choice: the keys of every option that applies, then ``#`` (e.g. ``13#``);
* integer and rating: digits then ``#`` (a rating within 0–9 takes a single key);
* decimal: digits, ``*`` as the decimal point, then ``#``; date: ``YYYYMMDD#``;
* ``*`` alone answers "don't know" (or "refused") where the question allows it;
* note: any key, or an empty input on time-out, continues;
* text cannot be keyed in: an optional text question is skipped; :func:`ivr_problems` reports
  required ones so a questionnaire meant for IVR can be fixed before publishing.

:class:`SimulatedRespondent` answers prompts from a seeded random generator (with occasional
invalid keys and hang-ups) so the simulated gateway can run IVR interviews end to end.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from surveys.engine import (
    AnswerValue,
    InterviewEngine,
    InterviewMode,
    InterviewState,
    InterviewStatus,
)
from surveys.exceptions import InvalidAnswerError
from surveys.messages import message
from surveys.quotas import QuotaCounter
from surveys.schema import Questionnaire, QuestionType, SpecialKind
from surveys.validation import Problem, Severity

__all__ = [
    "IvrInput",
    "IvrPrompt",
    "IvrStep",
    "IvrTranscript",
    "IvrTurn",
    "SimulatedRespondent",
    "ivr_problems",
    "ivr_prompt",
    "ivr_respond",
    "run_ivr_interview",
]

_KEYS = "1234567890"


class IvrInput(StrEnum):
    """How the caller answers a prompt."""

    CONTINUE = "continue"
    SINGLE_KEY = "single_key"
    DIGITS = "digits"
    MULTI_KEYS = "multi_keys"


class IvrPrompt(BaseModel):
    """What the gateway plays and how it collects the caller's keys."""

    question: str
    question_type: QuestionType
    text: str
    input: IvrInput
    keys: dict[str, str] = Field(
        default_factory=dict, description="DTMF key -> option value (choice questions)."
    )
    max_digits: int = 1
    terminator: str | None = None
    allows_star: bool = False
    min: float | None = None
    max: float | None = None


class IvrStep(BaseModel):
    """The result of one keyed response: the new state, or the error message to play."""

    state: InterviewState
    accepted: bool
    error: str = ""


class IvrTurn(BaseModel):
    """One prompt and the keys pressed, for a transcript."""

    question: str
    prompt: str
    keys: str | None
    accepted: bool
    error: str = ""


class IvrTranscript(BaseModel):
    """A whole IVR interview as driven by :func:`run_ivr_interview`."""

    state: InterviewState
    turns: list[IvrTurn]


_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "option": "For {label}, press {key}.",
        "option_number": "For {label}, enter {key} then hash.",
        "multi": "Press the keys of all that apply, then hash.",
        "digits": "Enter the number, then press hash.",
        "decimal": "Enter the number, using star for the decimal point, then press hash.",
        "range": "Enter a number from {min} to {max}, then press hash.",
        "single_range": "Press a key from {min} to {max}.",
        "date": "Enter the date as year, month and day, eight digits, then press hash.",
        "star": "If you don't know, press star.",
        "continue": "Press any key to continue.",
    },
    "zh-Hant": {
        "option": "{label}請按 {key}。",
        "option_number": "{label}請輸入 {key} 再按井字鍵。",
        "multi": "請按下所有符合選項的按鍵，再按井字鍵。",
        "digits": "請輸入數字，再按井字鍵。",
        "decimal": "請輸入數字，小數點請按星號，再按井字鍵。",
        "range": "請輸入 {min} 到 {max} 之間的數字，再按井字鍵。",
        "single_range": "請按 {min} 到 {max} 之間的按鍵。",
        "date": "請以八位數字輸入年月日，再按井字鍵。",
        "star": "如果不知道，請按星號。",
        "continue": "請按任意鍵繼續。",
    },
    "zh-Hans": {
        "option": "{label}请按 {key}。",
        "option_number": "{label}请输入 {key} 再按井号键。",
        "multi": "请按下所有符合选项的按键，再按井号键。",
        "digits": "请输入数字，再按井号键。",
        "decimal": "请输入数字，小数点请按星号，再按井号键。",
        "range": "请输入 {min} 到 {max} 之间的数字，再按井号键。",
        "single_range": "请按 {min} 到 {max} 之间的按键。",
        "date": "请以八位数字输入年月日，再按井号键。",
        "star": "如果不知道，请按星号。",
        "continue": "请按任意键继续。",
    },
}


def _phrase(language: str, phrase: str, **params: object) -> str:
    table = _PHRASES.get(language) or _PHRASES["en"]
    return table[phrase].format(**params)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def ivr_problems(questionnaire: Questionnaire) -> list[Problem]:
    """Questions an IVR caller cannot answer by keypad (required text questions)."""
    problems = []
    for question in questionnaire.walk():
        if question.type == QuestionType.TEXT and question.required:
            problems.append(
                Problem(
                    severity=Severity.ERROR,
                    code="ivr_text",
                    message="a required text question cannot be answered by keypad; make it "
                    "optional (it is skipped in IVR) or use a choice question",
                    question=question.name,
                    field="type",
                )
            )
    return problems


def ivr_prompt(engine: InterviewEngine, state: InterviewState) -> IvrPrompt | None:
    """The prompt for the current question, or None when nothing is open."""
    shown = engine.current_question(state)
    if shown is None:
        return None
    language = state.language
    intro = shown.ivr_prompt or shown.label
    parts = [intro]
    prompt = IvrPrompt(
        question=shown.name, question_type=shown.type, text="", input=IvrInput.CONTINUE
    )
    allows_star = any(
        s in shown.special_answers for s in (SpecialKind.DONT_KNOW, SpecialKind.REFUSED)
    )
    if shown.type in (QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE):
        many = len(shown.options) > len(_KEYS)
        keys = {
            (str(i + 1) if many else _KEYS[i]): option.value
            for i, option in enumerate(shown.options)
        }
        label_of = {o.value: o.label for o in shown.options}
        phrase = "option_number" if many else "option"
        parts += [_phrase(language, phrase, label=label_of[v], key=k) for k, v in keys.items()]
        if shown.type == QuestionType.MULTIPLE_CHOICE:
            parts.append(_phrase(language, "multi"))
            prompt.input = IvrInput.MULTI_KEYS
            prompt.max_digits = len(keys) * (2 if many else 1)
            prompt.terminator = "#"
        elif many:
            prompt.input = IvrInput.DIGITS
            prompt.max_digits = len(str(len(keys)))
            prompt.terminator = "#"
        else:
            prompt.input = IvrInput.SINGLE_KEY
        prompt.keys = keys
    elif shown.type == QuestionType.RATING and shown.min is not None and shown.max is not None:
        prompt.min, prompt.max = shown.min, shown.max
        if shown.min >= 0 and shown.max <= 9:
            prompt.input = IvrInput.SINGLE_KEY
            parts.append(
                _phrase(language, "single_range", min=_number(shown.min), max=_number(shown.max))
            )
        else:
            prompt.input = IvrInput.DIGITS
            prompt.terminator = "#"
            prompt.max_digits = len(_number(max(abs(shown.min), abs(shown.max))))
            parts.append(_phrase(language, "range", min=_number(shown.min), max=_number(shown.max)))
    elif shown.type in (QuestionType.INTEGER, QuestionType.DECIMAL, QuestionType.DATE):
        prompt.input = IvrInput.DIGITS
        prompt.terminator = "#"
        prompt.min, prompt.max = shown.min, shown.max
        prompt.max_digits = 8 if shown.type == QuestionType.DATE else 12
        if shown.type == QuestionType.DATE:
            parts.append(_phrase(language, "date"))
        elif shown.type == QuestionType.DECIMAL:
            parts.append(_phrase(language, "decimal"))
        elif shown.min is not None and shown.max is not None:
            parts.append(_phrase(language, "range", min=_number(shown.min), max=_number(shown.max)))
        else:
            parts.append(_phrase(language, "digits"))
    else:
        parts.append(_phrase(language, "continue"))
    if allows_star:
        prompt.allows_star = True
        parts.append(_phrase(language, "star"))
    prompt.text = " ".join(p for p in parts if p)
    return prompt


def ivr_respond(
    engine: InterviewEngine,
    state: InterviewState,
    keys: str,
    *,
    now: datetime | None = None,
    quota_counter: QuotaCounter | None = None,
) -> IvrStep:
    """Apply the caller's DTMF keys to the current question; invalid keys are not fatal."""
    prompt = ivr_prompt(engine, state)
    if prompt is None:
        return IvrStep(state=state, accepted=False, error="")
    name = prompt.question
    question = engine.questionnaire.question(name)
    entered = keys.strip().removesuffix("#")
    special: SpecialKind | None = None
    value: AnswerValue = None

    def invalid() -> IvrStep:
        return IvrStep(
            state=state, accepted=False, error=message("invalid_key", state.language, key=keys)
        )

    if prompt.input == IvrInput.CONTINUE:
        value = None
    elif entered == "*" and prompt.allows_star:
        allowed = question.special_answers
        special = SpecialKind.DONT_KNOW if SpecialKind.DONT_KNOW in allowed else allowed[0]
    elif question.type == QuestionType.SINGLE_CHOICE:
        if entered not in prompt.keys:
            return invalid()
        value = prompt.keys[entered]
    elif question.type == QuestionType.MULTIPLE_CHOICE:
        width = 2 if len(prompt.keys) > len(_KEYS) else 1
        chunks = [entered[i : i + width] for i in range(0, len(entered), width)]
        if not chunks or any(
            c.lstrip("0") not in prompt.keys and c not in prompt.keys for c in chunks
        ):
            return invalid()
        value = [prompt.keys.get(c) or prompt.keys[c.lstrip("0")] for c in chunks]
    elif question.type == QuestionType.DECIMAL:
        value = entered.replace("*", ".")
    elif question.type == QuestionType.DATE:
        if len(entered) != 8 or not entered.isdigit():
            return invalid()
        value = f"{entered[:4]}-{entered[4:6]}-{entered[6:]}"
    elif question.type == QuestionType.TEXT:
        value = None
    else:
        if not entered.isdigit():
            return invalid()
        value = entered
    try:
        new = engine.answer(
            state, name, value, special=special, now=now, quota_counter=quota_counter
        )
    except InvalidAnswerError as exc:
        return IvrStep(state=state, accepted=False, error=exc.message)
    return IvrStep(state=new, accepted=True)


class SimulatedRespondent:
    """A seeded caller who answers IVR prompts, sometimes mis-keys, sometimes hangs up."""

    def __init__(
        self,
        seed: int,
        *,
        hang_up_probability: float = 0.0,
        invalid_key_probability: float = 0.0,
        choose: Callable[[IvrPrompt, random.Random], str] | None = None,
    ) -> None:
        if not 0.0 <= hang_up_probability <= 1.0 or not 0.0 <= invalid_key_probability <= 1.0:
            raise ValueError("probabilities must be between 0 and 1")
        self._random = random.Random(seed)
        self.hang_up_probability = hang_up_probability
        self.invalid_key_probability = invalid_key_probability
        self._choose = choose

    def respond(self, prompt: IvrPrompt) -> str | None:
        """Keys pressed for this prompt, or None for a hang-up."""
        rng = self._random
        if rng.random() < self.hang_up_probability:
            return None
        if prompt.input != IvrInput.CONTINUE and rng.random() < self.invalid_key_probability:
            return "9999#" if prompt.input == IvrInput.SINGLE_KEY else "*#*#"
        if self._choose is not None:
            return self._choose(prompt, rng)
        match prompt.input:
            case IvrInput.CONTINUE:
                return "1"
            case IvrInput.SINGLE_KEY if prompt.keys:
                return rng.choice(list(prompt.keys))
            case IvrInput.SINGLE_KEY:
                low, high = int(prompt.min or 0), int(prompt.max if prompt.max is not None else 9)
                return str(rng.randint(low, high))
            case IvrInput.MULTI_KEYS:
                keys = list(prompt.keys)
                picked = rng.sample(keys, k=min(len(keys), rng.choice((1, 1, 2))))
                width = 2 if len(keys) > len(_KEYS) else 1
                return "".join(k.zfill(width) for k in picked) + "#"
            case _:
                if prompt.keys:
                    return rng.choice(list(prompt.keys)) + "#"
                if prompt.question_type == QuestionType.DATE:
                    year, month, day = (
                        rng.randint(1950, 2005),
                        rng.randint(1, 12),
                        rng.randint(1, 28),
                    )
                    return f"{year}{month:02d}{day:02d}#"
                low = int(prompt.min) if prompt.min is not None else 0
                high = int(prompt.max) if prompt.max is not None else 99
                return f"{rng.randint(low, high)}#"


def run_ivr_interview(
    engine: InterviewEngine,
    state: InterviewState,
    respondent: SimulatedRespondent,
    *,
    quota_counter: QuotaCounter | None = None,
    now: datetime | None = None,
    max_turns: int = 500,
    max_retries: int = 3,
) -> IvrTranscript:
    """Drive an IVR interview with a simulated respondent to its end (or a hang-up)."""
    if state.mode != InterviewMode.IVR:
        state = state.model_copy(update={"mode": InterviewMode.IVR})
    turns: list[IvrTurn] = []
    retries = 0
    for _ in range(max_turns):
        if state.status != InterviewStatus.IN_PROGRESS:
            break
        prompt = ivr_prompt(engine, state)
        if prompt is None:
            state = engine.complete(state, quota_counter=quota_counter, now=now)
            break
        keys = respondent.respond(prompt)
        if keys is None:
            turns.append(
                IvrTurn(question=prompt.question, prompt=prompt.text, keys=None, accepted=False)
            )
            state = engine.break_off(state, now=now)
            break
        step = ivr_respond(engine, state, keys, now=now, quota_counter=quota_counter)
        turns.append(
            IvrTurn(
                question=prompt.question,
                prompt=prompt.text,
                keys=keys,
                accepted=step.accepted,
                error=step.error,
            )
        )
        state = step.state
        retries = 0 if step.accepted else retries + 1
        if retries > max_retries:
            # Same practice as a live IVR: too many invalid inputs end the call.
            state = engine.break_off(state, now=now)
            break
    return IvrTranscript(state=state, turns=turns)
