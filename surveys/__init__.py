"""Surveys: questionnaires, the expression language, interviews (CATI and IVR), results,
exports and AAPOR outcome rates. Pure domain code: no database, no clock, no network.

Modules: :mod:`surveys.schema` (questionnaire model, loaders), :mod:`surveys.xlsform`
(XLSForm import), :mod:`surveys.expressions` (parser, printer, interpreter),
:mod:`surveys.validation` (publish checks), :mod:`surveys.engine` (interview state machine),
:mod:`surveys.quotas` (quota cells and counter protocol), :mod:`surveys.ivr` (DTMF prompts,
simulated respondent), :mod:`surveys.results`, :mod:`surveys.exports`, :mod:`surveys.aapor`,
:mod:`surveys.cli`. Errors are in :mod:`surveys.exceptions`.
"""

from surveys.aapor import (
    AaporDisposition,
    CallResult,
    OutcomeCounts,
    OutcomeRates,
    compute_rates,
    final_disposition,
)
from surveys.engine import (
    InterviewEngine,
    InterviewMode,
    InterviewState,
    InterviewStatus,
    PresentedQuestion,
    StoredAnswer,
)
from surveys.exceptions import SurveyError
from surveys.quotas import InMemoryQuotaCounter, QuotaCell, QuotaCounter
from surveys.results import ResponseRecord, record_from_state
from surveys.schema import Questionnaire, content_hash, load_questionnaire, parse_questionnaire
from surveys.validation import Problem, ensure_publishable, validate_questionnaire
from surveys.versioning import VersionStatus, ensure_editable

__all__ = [
    "AaporDisposition",
    "CallResult",
    "InMemoryQuotaCounter",
    "InterviewEngine",
    "InterviewMode",
    "InterviewState",
    "InterviewStatus",
    "OutcomeCounts",
    "OutcomeRates",
    "PresentedQuestion",
    "Problem",
    "Questionnaire",
    "QuotaCell",
    "QuotaCounter",
    "ResponseRecord",
    "StoredAnswer",
    "SurveyError",
    "VersionStatus",
    "compute_rates",
    "content_hash",
    "ensure_editable",
    "ensure_publishable",
    "final_disposition",
    "load_questionnaire",
    "parse_questionnaire",
    "record_from_state",
    "validate_questionnaire",
]
