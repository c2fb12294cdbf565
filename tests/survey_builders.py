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
#: A two-question IVR survey (keys: 1 = likes tea, then the age ended by #), in zh-Hans.
TEA_IVR: dict[str, Any] = {
    "id": "tea",
    "title": {"zh-Hans": "饮茶调查"},
    "languages": ["zh-Hans"],
    "intro": {"zh-Hans": "您好，这是一个简短的调查。"},
    "completed_message": {"zh-Hans": "谢谢您，再见。"},
    "choice_lists": {
        "yn": [
            {"value": "yes", "label": {"zh-Hans": "是"}},
            {"value": "no", "label": {"zh-Hans": "否"}},
        ]
    },
    "questions": [
        {"name": "likes", "type": "single_choice", "choices": "yn", "required": True,
         "label": {"zh-Hans": "您喜欢喝茶吗？"}},
        {"name": "age", "type": "integer", "min": 0, "max": 120, "required": True,
         "label": {"zh-Hans": "请输入您的年龄，以井号键结束。"}},
    ],
}  # fmt: skip


def agentless_campaign(numbers: list[str], *, lines: int = 2) -> tuple[uuid.UUID, uuid.UUID]:
    """A piloting agentless survey over ``numbers`` (a new client, the published TEA_IVR
    questionnaire, always-open calling windows, a caller id): (client id, campaign id)."""
    from campaign_builders import make_campaign, make_list

    from campaigns.models import BatchCreate, CampaignStatus
    from campaigns.service import create_batch, transition_campaign
    from core.admin import create_client
    from core.db import system_session, tenant_session
    from surveys.service import create_questionnaire, parse_document, publish_version

    with system_session() as session:
        client_id = create_client(session=session, name=f"ivr{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        document = parse_document({**TEA_IVR, "id": f"tea_{uuid.uuid4().hex[:6]}"})
        version = create_questionnaire(session=session, client_id=client_id, document=document)
        publish_version(session=session, version_id=version.id)
        lead_list, _ = make_list(session, client_id, numbers=numbers)
        campaign = make_campaign(
            session,
            client_id,
            [lead_list.id],
            name="agentless",
            kind="survey",
            questionnaire_version_id=version.id,
            pacing_mode="agentless",
            pacing_params={"lines": lines},
            caller_id="+862155550000",
            max_attempts=2,
        )
        batch = BatchCreate(size=len(numbers), seed=1)
        create_batch(session=session, campaign=campaign, batch_in=batch)
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return client_id, campaign.id


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
