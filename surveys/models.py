"""Survey tables: questionnaires, their versions, interviews, response records and quota cells.

Every table is client data (:class:`~core.db.TenantScoped`), so a tenant session sees only its
own client's rows.

- :class:`SurveyQuestionnaire`: a questionnaire the client owns, named by the document's ``id``
  (its *key*); unique per client.
- :class:`QuestionnaireVersion`: one numbered version of its document (``dump_questionnaire``),
  with status draft → published → retired and the content hash. A published version never
  changes; campaigns pin a version id.
- :class:`Interview`: one interview's :class:`~surveys.engine.InterviewState` as JSON, stored
  after every operation (so it survives a restart), with the columns worth indexing.
  ``is_test`` marks test interviews and previews of drafts: they never take a quota place
  and results and exports leave them out unless asked for (``include_test``).
- :class:`InterviewResponse`: the :class:`~surveys.results.ResponseRecord` written when an
  interview ends or is suspended; results and exports read these.
- :class:`QuotaCellCount`: completed interviews per (version, quota, cell key), with the target;
  counted atomically by :class:`surveys.db_quotas.DatabaseQuotaCounter`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import TenantScoped, UTCDateTime, str_enum, utcnow
from surveys.engine import (
    AnswerValue,
    InterviewMode,
    InterviewStatus,
    PresentedQuestion,
    StoredAnswer,
)
from surveys.quotas import QuotaCell
from surveys.validation import Problem
from surveys.versioning import VersionStatus

__all__ = [
    "AnswerIn",
    "Interview",
    "InterviewPublic",
    "InterviewResponse",
    "InterviewStart",
    "InterviewSummary",
    "LanguageIn",
    "QuestionnaireCreate",
    "QuestionnaireDetail",
    "QuestionnaireVersion",
    "QuestionnaireVersionPublic",
    "QuestionnaireVersionSummary",
    "QuotaCellCount",
    "QuotaCellPublic",
    "SurveyQuestionnaire",
    "SurveyQuestionnairePublic",
    "VersionContent",
]


# --------------------------------------------------------------------------- questionnaires


class SurveyQuestionnaireBase(SQLModel):
    key: str = Field(max_length=64, description="The document's `id`, e.g. customer_satisfaction")
    title: str = Field(max_length=500, description="The title in the primary language")


class SurveyQuestionnaire(SurveyQuestionnaireBase, TenantScoped, table=True):
    """A client's questionnaire; its content lives in numbered versions."""

    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    latest_version: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QuestionnaireCreate(BaseModel):
    """A questionnaire document (the YAML/JSON structure of surveys/SCHEMA.md) as JSON."""

    content: dict[str, Any] = PydanticField(description="The questionnaire document")


class VersionContent(BaseModel):
    """New content for a draft version (the whole document)."""

    content: dict[str, Any] = PydanticField(description="The questionnaire document")


class SurveyQuestionnairePublic(SurveyQuestionnaireBase):
    id: uuid.UUID
    latest_version: int
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------- versions


class QuestionnaireVersion(SQLModel, TenantScoped, table=True):
    """One version of a questionnaire document; published versions are immutable."""

    __table_args__ = (UniqueConstraint("questionnaire_id", "version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    questionnaire_id: uuid.UUID = Field(
        foreign_key="surveyquestionnaire.id", index=True, ondelete="CASCADE"
    )
    version: int
    status: VersionStatus = Field(default=VersionStatus.DRAFT, sa_type=str_enum(VersionStatus))
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64, index=True)
    source_format: str = Field(default="json", max_length=16)
    problems: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class QuestionnaireVersionSummary(BaseModel):
    """A version without its document."""

    id: uuid.UUID
    questionnaire_id: uuid.UUID
    version: int
    status: VersionStatus
    content_hash: str
    source_format: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    retired_at: datetime | None


class QuestionnaireVersionPublic(QuestionnaireVersionSummary):
    """A version with its document and the problems validation found (errors block publish)."""

    content: dict[str, Any]
    problems: list[Problem]


class QuestionnaireDetail(SurveyQuestionnairePublic):
    """A questionnaire with all its versions, newest first."""

    versions: list[QuestionnaireVersionSummary]


# --------------------------------------------------------------------------- interviews


class Interview(SQLModel, TenantScoped, table=True):
    """One interview: its engine state as JSON plus indexed columns."""

    __table_args__ = (Index("ix_interview_version_status", "version_id", "status"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    version_id: uuid.UUID = Field(foreign_key="questionnaireversion.id", ondelete="CASCADE")
    questionnaire_hash: str = Field(max_length=64, index=True)
    status: InterviewStatus = Field(
        default=InterviewStatus.IN_PROGRESS, sa_type=str_enum(InterviewStatus), index=True
    )
    mode: InterviewMode = Field(default=InterviewMode.CATI, sa_type=str_enum(InterviewMode))
    is_test: bool = Field(default=False, description="A test or preview interview")
    call_id: str | None = Field(default=None, max_length=80, index=True)
    respondent_key: str = Field(max_length=200)
    language: str = Field(max_length=35)
    state: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InterviewStart(BaseModel):
    """Start an interview: for a call (``call_id``) or without one to test the questionnaire."""

    call_id: str | None = PydanticField(None, max_length=80, description="The call's id, if any")
    respondent_key: str | None = PydanticField(
        None, max_length=200, description="Stable respondent id (e.g. the lead id); seeds order"
    )
    language: str | None = PydanticField(None, description="Default: the primary language")
    attributes: dict[str, str | int | float | None] = PydanticField(
        default_factory=dict, description="Lead attributes the questionnaire declares (piping)"
    )
    mode: InterviewMode = PydanticField(
        InterviewMode.CATI,
        description="How the interview is run; 'test' is kept as another way to say "
        "test=true (the interview is then recorded as cati)",
    )
    test: bool = PydanticField(
        False,
        description="A test interview: never takes a quota place and is left out of results "
        "and exports unless they ask for include_test=true",
    )
    interviewer: str | None = PydanticField(
        None, max_length=80, description="The agent (seat) running it: ${deviceid}, exports"
    )


class AnswerIn(BaseModel):
    """An answer to the current question: a value, or a special answer, plus 'specify' text."""

    question: str | None = PydanticField(None, description="Name of the current question")
    value: AnswerValue = None
    special: str | None = PydanticField(None, description="dont_know or refused")
    other_text: str | None = PydanticField(None, description="The 'other (specify)' text")


class LanguageIn(BaseModel):
    """Switch the interview's language."""

    language: str | None = None


class InterviewSummary(BaseModel):
    """An interview without its question (lists)."""

    id: uuid.UUID
    version_id: uuid.UUID
    status: InterviewStatus
    mode: InterviewMode
    is_test: bool
    call_id: str | None
    respondent_key: str
    language: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


class InterviewPublic(InterviewSummary):
    """What an agent screen needs after every operation."""

    questionnaire_key: str
    version: int
    intro: str = PydanticField(description="Introduction for the agent, piped, in the language")
    question: PresentedQuestion | None = PydanticField(
        description="The question to ask now; null when none is open"
    )
    awaiting_completion: bool = PydanticField(
        description="Every applicable question is answered: call complete"
    )
    closing_message: str = PydanticField(description="What to say once the interview has ended")
    progress: float = PydanticField(description="Share of applicable questions answered (0-1)")
    answers: dict[str, StoredAnswer]
    attributes: dict[str, str | int | float | None]
    quota_cells: list[QuotaCell]
    stopped_at: str | None


# --------------------------------------------------------------------------- responses, quotas


class InterviewResponse(SQLModel, TenantScoped, table=True):
    """The response record of an interview that ended or was suspended (one per interview)."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    interview_id: uuid.UUID = Field(
        foreign_key="interview.id", unique=True, index=True, ondelete="CASCADE"
    )
    version_id: uuid.UUID = Field(
        foreign_key="questionnaireversion.id", index=True, ondelete="CASCADE"
    )
    status: InterviewStatus = Field(sa_type=str_enum(InterviewStatus))
    is_test: bool = Field(default=False, description="Left out of results unless asked for")
    record: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QuotaCellCount(SQLModel, TenantScoped, table=True):
    """Completed interviews in one quota cell of one version, and the cell's target."""

    __table_args__ = (UniqueConstraint("version_id", "quota", "cell_key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    version_id: uuid.UUID = Field(
        foreign_key="questionnaireversion.id", index=True, ondelete="CASCADE"
    )
    quota: str = Field(max_length=64)
    cell_key: str = Field(max_length=500)
    count: int = 0
    target: int


class QuotaCellPublic(BaseModel):
    """A quota cell's progress."""

    quota: str
    cell_key: str
    count: int
    target: int
