"""Exceptions raised by the survey engine.

The tree is small on purpose::

    SurveyError                       base class; catch this to handle any survey failure
    ├── QuestionnaireError            a questionnaire cannot be loaded or used
    │   ├── SchemaError               the document does not match the schema (names the field)
    │   ├── XLSFormError              an XLSForm workbook cannot be read at all
    │   │   └── XLSFormTooLargeError      it inflates beyond the limits (a zip bomb)
    │   ├── QuestionnaireInvalidError publish-time validation found errors (carries problems)
    │   └── PublishedVersionError     a published version was edited; create a new version
    ├── ExpressionError               an expression is broken
    │   └── ExpressionSyntaxError     it does not parse (carries the position)
    ├── InterviewError                an interview operation is not allowed now
    │   ├── NotCurrentQuestionError   the answer is for a question that is not current
    │   ├── InterviewNotActiveError   the interview is suspended, finished or ended
    │   ├── InvalidAnswerError        the answer fails type, required or constraint checks
    │   └── QuotaCounterRequiredError the questionnaire has quotas but no counter was given
    └── RatesInputError               AAPOR outcome counts are malformed

Every message says what is wrong and how to fix it, so the CLI and the API can show it as is.
The API maps ``InterviewError`` and ``QuestionnaireError`` to 4xx responses; ``field`` and
``question`` attributes name the offending part of the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from surveys.validation import Problem

__all__ = [
    "ExpressionError",
    "ExpressionSyntaxError",
    "InterviewError",
    "InterviewNotActiveError",
    "InvalidAnswerError",
    "NotCurrentQuestionError",
    "PublishedVersionError",
    "QuestionnaireError",
    "QuestionnaireInvalidError",
    "QuotaCounterRequiredError",
    "RatesInputError",
    "SchemaError",
    "SurveyError",
    "XLSFormError",
    "XLSFormTooLargeError",
]


class SurveyError(Exception):
    """Base class of every error raised by the surveys package."""


class QuestionnaireError(SurveyError):
    """A questionnaire cannot be loaded, validated or used."""


class SchemaError(QuestionnaireError):
    """The questionnaire document does not match the schema; ``field`` names where."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class XLSFormError(QuestionnaireError):
    """An XLSForm workbook cannot be read (missing sheet, not a workbook, no type column)."""


class XLSFormTooLargeError(XLSFormError):
    """An XLSForm workbook would inflate beyond the size limits; nothing of it was parsed."""


class QuestionnaireInvalidError(QuestionnaireError):
    """Publish-time validation found errors; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0].describe() if self.problems else "no details"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"questionnaire is not valid: {first}{more}")


class PublishedVersionError(QuestionnaireError):
    """A published questionnaire version was changed; editing must create a new version."""


class ExpressionError(SurveyError):
    """An expression is invalid."""


class ExpressionSyntaxError(ExpressionError):
    """An expression does not parse; ``position`` is the 1-based column of the problem."""

    def __init__(self, message: str, *, expression: str, position: int) -> None:
        super().__init__(message)
        self.expression = expression
        self.position = position


class InterviewError(SurveyError):
    """An interview operation is not allowed in the interview's current state."""


class NotCurrentQuestionError(InterviewError):
    """The answer names a question that is not the current one."""

    def __init__(self, message: str, *, question: str, current: str | None) -> None:
        super().__init__(message)
        self.question = question
        self.current = current


class InterviewNotActiveError(InterviewError):
    """The interview is suspended or has ended, so it cannot take this operation."""


class InvalidAnswerError(InterviewError):
    """The answer was rejected; ``message`` is in the respondent's language."""

    def __init__(self, message: str, *, question: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.question = question
        self.reason = reason


class QuotaCounterRequiredError(InterviewError):
    """The questionnaire defines quotas, so the operation needs a quota counter."""


class RatesInputError(SurveyError):
    """AAPOR outcome counts are malformed (unknown code, negative or non-integer count)."""
