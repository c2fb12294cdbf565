"""Draft → published questionnaire versions: what the DB layer enforces, as pure checks.

A version row stores ``status`` (:class:`VersionStatus`), the questionnaire document
(``dump_questionnaire``) and its :func:`~surveys.schema.content_hash`. Publishing runs
:func:`publish_check`; every edit of a stored version runs :func:`ensure_editable` first, so a
published version is never changed (editing means creating the next version as a draft).
"""

from __future__ import annotations

from enum import StrEnum

from surveys.exceptions import PublishedVersionError
from surveys.schema import Questionnaire, content_hash
from surveys.validation import Problem, ensure_publishable

__all__ = ["VersionStatus", "ensure_editable", "ensure_unchanged", "publish_check"]


class VersionStatus(StrEnum):
    """A draft can be edited; a published version is frozen; a retired one takes no new work."""

    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


def ensure_editable(status: VersionStatus, *, questionnaire_id: str, version: int) -> None:
    """Raise PublishedVersionError unless the version is still a draft."""
    if status != VersionStatus.DRAFT:
        raise PublishedVersionError(
            f"questionnaire {questionnaire_id!r} version {version} is {status.value} and "
            f"cannot change; create version {version + 1} as a draft and edit that"
        )


def ensure_unchanged(stored_hash: str, questionnaire: Questionnaire) -> None:
    """Raise PublishedVersionError if a published document no longer matches its hash."""
    if content_hash(questionnaire) != stored_hash:
        raise PublishedVersionError(
            f"questionnaire {questionnaire.id!r} differs from its published version "
            f"{stored_hash[:12]}; published versions are immutable, publish a new version"
        )


def publish_check(questionnaire: Questionnaire) -> tuple[str, list[Problem]]:
    """Validate for publishing; return the content hash to store and the warnings."""
    warnings = ensure_publishable(questionnaire)
    return content_hash(questionnaire), warnings
