"""Builders for console tests: users, signed-in HTTP clients, a tenant's objects."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery"
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


def shot(page: Any, name: str) -> Path:
    """Save a full-page browser screenshot as a test artifact (artifacts/ is ignored by git)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class Browser:
    """A TestClient with its own cookie jar, signed in as one user."""

    http: Any
    user_id: uuid.UUID
    csrf: str

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.http.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)


def make_user(
    username: str,
    role: str,
    client_ids: Sequence[uuid.UUID] = (),
    *,
    all_clients: bool = False,
    agent_id: uuid.UUID | None = None,
    locale: str = "zh-Hans",
    engine: Any = None,
) -> uuid.UUID:
    from core.db import system_session
    from core.users import UserRole, create_user

    with system_session(engine) as session:
        user = create_user(
            session=session,
            username=username,
            password=PASSWORD,
            role=UserRole(role),
            client_ids=list(client_ids),
            all_clients=all_clients,
            agent_id=agent_id,
            locale=locale,
        )
        return user.id


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(app: Any, username: str, user_id: uuid.UUID) -> Browser:
    """A fresh cookie jar on ``app``, signed in through the login form."""
    from fastapi.testclient import TestClient

    http = TestClient(app, raise_server_exceptions=False, follow_redirects=True)
    page = http.post("/console/login", data={"username": username, "password": PASSWORD})
    assert page.status_code == 200, page.text
    return Browser(http=http, user_id=user_id, csrf=csrf_of(page.text))


def console_objects_for(client_id: uuid.UUID, *, with_run: bool = True) -> dict[str, str]:
    """A campaign with a pilot batch, its list, and (``with_run``) a feasibility run."""
    import numpy as np
    from campaign_builders import make_campaign, make_list

    from campaigns.models import BatchCreate
    from campaigns.service import create_batch
    from core.db import tenant_session
    from core.queue import drain_embedded
    from feasibility.service import create_run
    from feasibility.synthetic import dial_leads, make_lead_list

    with tenant_session([client_id]) as session:
        lead_list, _leads = make_list(session, client_id, count=6)
        campaign = make_campaign(session, client_id, [lead_list.id], name="B campaign")
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=3, seed=1))
        ids = {"campaign_id": str(campaign.id), "list_id": str(lead_list.id)}
        if with_run:
            synthetic = make_lead_list(300, seed=1)
            attempts = dial_leads(synthetic, np.arange(40), max_attempts=3, seed=1)
            run = create_run(
                session=session,
                client_id=client_id,
                attempts=attempts.to_dict(orient="records"),
                leads=synthetic.leads.to_dict(orient="records"),
            )
            ids["run_id"] = str(run.id)
    drain_embedded()
    return ids


def tea_xlsform() -> bytes:
    """A two-language XLSForm whose geopoint (survey row 3) is reported, not asked by phone."""
    import io

    from openpyxl import Workbook

    sheets = {
        "survey": [
            [
                "type",
                "name",
                "label::English (en)",
                "label::中文 (zh-Hans)",
                "label::中文 (zh-Hant)",
            ],
            ["select_one yn", "likes_tea", "Do you like tea?", "你喜欢茶吗？", "你喜歡茶嗎？"],
            ["geopoint", "where", "Where are you?", "你在哪里？", "你在哪裡？"],
            ["integer", "cups", "Cups a day?", "每天几杯？", "每天幾杯？"],
        ],
        "choices": [
            [
                "list_name",
                "name",
                "label::English (en)",
                "label::中文 (zh-Hans)",
                "label::中文 (zh-Hant)",
            ],
            ["yn", "yes", "Yes", "是", "是"],
            ["yn", "no", "No", "否", "否"],
        ],
        "settings": [["form_id", "form_title", "default_language"], ["tea", "Tea", "English (en)"]],
    }
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def pop_a_call(client_id: uuid.UUID, agent_id: uuid.UUID, campaign_id: uuid.UUID) -> uuid.UUID:
    """Connect a dialer call (a started attempt of the campaign) to a ready agent; the attempt."""
    from sqlmodel import select

    from campaigns.models import CallAttempt, CampaignLead
    from core.db import system_session, utcnow
    from dialer.agent_service import pop_call
    from dialer.gateway import CallParameters

    with system_session() as session:
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
        ).first()
        assert row is not None
        attempt = CallAttempt(
            client_id=client_id,
            campaign_id=campaign_id,
            lead_id=row.lead_id,
            batch_id=row.batch_id,
            attempt_no=1,
            idempotency_key=f"console-{uuid.uuid4().hex}",
            number_dialed="+8613800000001",
            dialed_at=utcnow(),
        )
        session.add(attempt)
        session.flush()
        pop_call(
            session=session,
            agent_id=agent_id,
            client_id=client_id,
            attempt_id=attempt.id,
            lead={"id": str(row.lead_id), "name": "王小明", "city": "上海"},
            params=CallParameters("+862155550000", "+8613800000001", skill_group="survey"),
            script={"opening": "您好，这里是 Pilotdial 调查中心。"},
            call_id=f"call-{uuid.uuid4().hex[:8]}",
        )
        return attempt.id


def make_agent(client_id: uuid.UUID, code: str = "A001", name: str = "李娜") -> uuid.UUID:
    from core.db import system_session
    from dialer.agent_service import create_agent
    from dialer.models import AgentCreate

    with system_session() as session:
        seat = create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=code, name=name, skill_groups=["survey"], client_ids=[client_id]
            ),
        )
        return seat.id


def running_campaign_with_calls(
    client_id: uuid.UUID,
    *,
    connected: int,
    abandoned: int,
    ended_ago_s: float = 60.0,
    name: str = "Live campaign",
    **settings: Any,
) -> uuid.UUID:
    """A running campaign whose finished calls were live answers: ``connected`` reached an
    agent (30 s talk), ``abandoned`` were abandoned; all ended ``ended_ago_s`` ago."""
    from datetime import timedelta

    from campaign_builders import make_campaign, make_list
    from sqlmodel import select

    from campaigns.models import (
        AmdResult,
        AttemptStatus,
        BatchCreate,
        CallAttempt,
        CampaignLead,
        CampaignStatus,
        OutcomeClass,
    )
    from campaigns.service import create_batch
    from core.db import tenant_session, utcnow

    total = connected + abandoned
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, count=max(total, 1))
        campaign = make_campaign(session, client_id, [lead_list.id], name=name, **settings)
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=max(total, 1)))
        campaign.status = CampaignStatus.running
        session.add(campaign)
        rows = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign.id)
        ).all()
        ended = utcnow() - timedelta(seconds=ended_ago_s)
        for index, row in enumerate(rows[:total]):
            reached = index < connected
            session.add(
                CallAttempt(
                    client_id=client_id,
                    campaign_id=campaign.id,
                    lead_id=row.lead_id,
                    batch_id=row.batch_id,
                    attempt_no=1,
                    idempotency_key=f"live-{uuid.uuid4().hex}",
                    status=AttemptStatus.finished,
                    number_dialed=row.phone_e164,
                    dialed_at=ended - timedelta(seconds=40),
                    answered_at=ended - timedelta(seconds=32),
                    agent_connected_at=ended - timedelta(seconds=30) if reached else None,
                    ended_at=ended,
                    outcome=OutcomeClass.contact if reached else OutcomeClass.abandoned,
                    talk_s=30.0 if reached else 0.0,
                    abandoned=not reached,
                    amd_result=AmdResult.human,
                )
            )
        session.flush()
        return campaign.id


TWO_QUESTIONS: dict[str, Any] = {
    "title": {"zh-Hans": "饮茶", "en": "Tea"},
    "languages": ["zh-Hans", "en"],
    "choice_lists": {
        "yn": [
            {"value": "yes", "label": {"zh-Hans": "是", "en": "Yes"}},
            {"value": "no", "label": {"zh-Hans": "否", "en": "No"}},
        ],
        "city": [
            {"value": "sh", "label": {"zh-Hans": "上海", "en": "Shanghai"}},
            {"value": "bj", "label": {"zh-Hans": "北京", "en": "Beijing"}},
        ],
    },
    "questions": [
        {"name": "city", "type": "single_choice", "label": {"zh-Hans": "城市", "en": "City"},
         "choices": "city", "required": True},
        {"name": "likes", "type": "single_choice", "label": {"zh-Hans": "喜欢茶吗", "en": "Likes"},
         "choices": "yn", "required": True},
    ],
}  # fmt: skip


def _interview(tenant: Any, version_id: str, city: str, likes: str) -> None:
    headers = tenant.headers()
    started = tenant.http.post(
        f"/questionnaire-versions/{version_id}/interviews",
        json={"call_id": f"call-{uuid.uuid4().hex[:8]}"},
        headers=headers,
    )
    assert started.status_code == 201, started.text
    interview = started.json()["id"]
    for question, value in (("city", city), ("likes", likes)):
        answered = tenant.http.post(
            f"/interviews/{interview}/answer",
            json={"question": question, "value": value},
            headers=headers,
        )
        assert answered.status_code == 200, answered.text
    if answered.json()["status"] != "completed":
        done = tenant.http.post(f"/interviews/{interview}/complete", headers=headers)
        assert done.status_code == 200, done.text


def published_with_answers(tenant: Any) -> str:
    """A published two-question survey with 5 completes: sh yes/yes/no, bj yes/no."""
    from survey_builders import publish_via_api

    version = publish_via_api(tenant, {**TWO_QUESTIONS, "id": f"tea_{uuid.uuid4().hex[:6]}"})
    for city, likes in (("sh", "yes"), ("sh", "yes"), ("sh", "no"), ("bj", "yes"), ("bj", "no")):
        _interview(tenant, version["id"], city, likes)
    return str(version["id"])


def statement_for(client_id: uuid.UUID, campaign_name: str, *, issue: bool = False) -> uuid.UUID:
    """A service statement for October 2026 of a new campaign of the client (issued if asked)."""
    from datetime import date

    from campaign_builders import make_campaign, make_list

    from core.audit import Actor
    from core.db import tenant_session
    from reports.models import ContractKind
    from reports.statements import ContractIn, generate_statement, issue_statement, set_contract

    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, count=1)
        campaign = make_campaign(session, client_id, [lead_list.id], name=campaign_name)
        set_contract(
            session=session,
            campaign_id=campaign.id,
            contract_in=ContractIn(starts_on=date(2026, 9, 1), agents=2),
        )
        statement = generate_statement(
            session=session, client_id=client_id, contract=ContractKind.service,
            month=date(2026, 10, 1), campaign_id=campaign.id, actor=Actor(name="test"),
        )  # fmt: skip
        if issue:
            issue_statement(session=session, statement=statement, actor=Actor(name="test"))
        return statement.id
