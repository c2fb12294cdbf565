"""Survey test builders: the sample questionnaire as a document, published through the API or
the service, and interviews driven to an outcome (importable as ``survey_builders``)."""

from __future__ import annotations

import copy
import functools
import uuid
from pathlib import Path
from typing import Any

import yaml

from helpers import Tenant

SAMPLE_PATH = (
    Path(__file__).resolve().parents[1] / "surveys" / "samples" / "customer_satisfaction.yaml"
)
LEAD = {"customer_name": "王小明", "region": "north", "product": "智慧電表"}


@functools.cache
def _sample() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SAMPLE_PATH.read_text(encoding="utf-8"))
    return loaded


def sample_document(**overrides: Any) -> dict[str, Any]:
    """A fresh copy of the sample questionnaire document, with top-level overrides."""
    document = copy.deepcopy(_sample())
    document.update(overrides)
    return document


def with_quota_target(document: dict[str, Any], target: int) -> dict[str, Any]:
    """The document with every region × age cell limited to ``target`` completes."""
    document["quotas"][0]["target"] = target
    document["quotas"][0]["cells"] = []
    return document


def publish_via_api(tenant: Tenant, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create and publish a questionnaire through the API; returns the published version."""
    document = document or sample_document(id=f"sample_{uuid.uuid4().hex[:8]}")
    created = tenant.http.post(
        "/questionnaires", json={"content": document}, headers=tenant.headers()
    )
    assert created.status_code == 201, created.text
    published = tenant.http.post(
        f"/questionnaire-versions/{created.json()['id']}/publish", headers=tenant.headers()
    )
    assert published.status_code == 200, published.text
    body: dict[str, Any] = published.json()
    return body


def questionnaire_for(tenant: Tenant) -> dict[str, str]:
    """Isolation-test factory: a client's questionnaire id."""
    return {"questionnaire_id": publish_via_api(tenant)["questionnaire_id"]}


def version_for(tenant: Tenant) -> dict[str, str]:
    """Isolation-test factory: a client's published version id."""
    return {"version_id": publish_via_api(tenant)["id"]}


def interview_for(tenant: Tenant) -> dict[str, str]:
    """Isolation-test factory: a client's running interview id."""
    version = publish_via_api(tenant)
    started = tenant.http.post(
        f"/questionnaire-versions/{version['id']}/interviews",
        json={"attributes": LEAD, "call_id": f"call-{uuid.uuid4().hex[:8]}"},
        headers=tenant.headers(),
    )
    assert started.status_code == 201, started.text
    return {"interview_id": started.json()["id"]}


# Answers that complete the sample as a satisfied, adult respondent (age decides the cell).
def completing_answers(age: int = 40) -> list[tuple[str, Any, dict[str, Any]]]:
    """(question, value, extra) in order for a complete interview of the sample."""
    return [
        ("greeting", None, {}),
        ("consent", "1", {}),
        ("used_recently", "1", {}),
        ("age", age, {}),
        ("satisfaction", "4", {}),
        ("nps", 9, {}),
        ("channel", "web", {}),
        ("thanks", None, {}),
    ]
