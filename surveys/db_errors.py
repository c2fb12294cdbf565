"""The survey service's errors: engine exceptions recast as ``core.errors`` kinds (→ HTTP).

The pure engine raises :mod:`surveys.exceptions`; the service wraps every engine call in
:func:`translated`, which re-raises them as these classes, so the API maps them to problem+json
with extension members naming the offending part:

- ``QuestionnaireRejected`` (InvalidInput, 422): the document does not parse or does not
  validate; ``extra["problems"]`` lists each problem with question, field, position (and sheet
  and row for XLSForm).
- ``PublishedVersionConflict`` (Conflict, 409): a published or retired version was edited;
  the message says to create the next version as a draft.
- ``VersionNotRunnable`` (Conflict, 409): interviews need a published version.
- ``InterviewStateConflict`` (Conflict, 409): the operation is not allowed in the interview's
  state (not the current question, suspended, ended, first question); ``extra`` names the
  status and the current question.
- ``AnswerRejected`` (InvalidInput, 422): the answer failed validation; the message is in the
  respondent's language, ``extra`` has ``question`` and ``reason``.
- ``SurveyInputError`` (InvalidInput, 422): any other bad input (language, attributes, counts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.errors import Conflict, InvalidInput, PayloadTooLarge
from surveys.exceptions import (
    ExpressionError,
    InterviewError,
    InterviewNotActiveError,
    InvalidAnswerError,
    NotCurrentQuestionError,
    PublishedVersionError,
    QuestionnaireInvalidError,
    RatesInputError,
    SchemaError,
    SurveyError,
    XLSFormError,
    XLSFormTooLargeError,
)

__all__ = [
    "AnswerRejected",
    "InterviewStateConflict",
    "PublishedVersionConflict",
    "QuestionnaireRejected",
    "SurveyInputError",
    "VersionNotRunnable",
    "WorkbookTooLarge",
    "translated",
]


class QuestionnaireRejected(InvalidInput):
    code = "questionnaire-invalid"
    title = "Questionnaire is not valid"

    def __init__(self, message: str, *, problems: list[dict[str, Any]]) -> None:
        super().__init__(message, extra={"problems": problems})
        self.problems = problems


class WorkbookTooLarge(PayloadTooLarge):
    code = "workbook-too-large"
    title = "Workbook too large"


class PublishedVersionConflict(Conflict):
    code = "questionnaire-version-published"
    title = "Published questionnaire versions cannot change"


class VersionNotRunnable(Conflict):
    code = "questionnaire-version-not-published"
    title = "Questionnaire version cannot run interviews"


class InterviewStateConflict(Conflict):
    code = "interview-state"
    title = "Not allowed in the interview's current state"


class AnswerRejected(InvalidInput):
    code = "invalid-answer"
    title = "Answer rejected"


class SurveyInputError(InvalidInput):
    code = "invalid-input"
    title = "Invalid input"


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise the engine's exceptions as the service's (HTTP-mapped) errors."""
    try:
        yield
    except SurveyError as exc:
        raise _translate(exc) from exc


def _translate(exc: SurveyError) -> Exception:
    text = str(exc)
    if isinstance(exc, QuestionnaireInvalidError):
        problems = [p.model_dump(mode="json", exclude_none=True) for p in exc.problems]
        return QuestionnaireRejected(text, problems=problems)
    if isinstance(exc, SchemaError):
        problem = {"severity": "error", "code": "schema", "message": text}
        if exc.field:
            problem["field"] = exc.field
        if exc.field in ("language", "attributes"):
            return SurveyInputError(text, extra={"field": exc.field})
        return QuestionnaireRejected(text, problems=[problem])
    if isinstance(exc, XLSFormTooLargeError):
        return WorkbookTooLarge(text, extra={"field": "file"})
    if isinstance(exc, XLSFormError):
        return QuestionnaireRejected(
            text, problems=[{"severity": "error", "code": "xlsform", "message": text}]
        )
    if isinstance(exc, PublishedVersionError):
        return PublishedVersionConflict(text)
    if isinstance(exc, InvalidAnswerError):
        return AnswerRejected(exc.message, extra={"question": exc.question, "reason": exc.reason})
    if isinstance(exc, NotCurrentQuestionError):
        return InterviewStateConflict(
            text, extra={"question": exc.question, "current_question": exc.current}
        )
    if isinstance(exc, InterviewNotActiveError | InterviewError):
        return InterviewStateConflict(text)
    if isinstance(exc, RatesInputError | ExpressionError):
        return SurveyInputError(text)
    return SurveyInputError(text)
