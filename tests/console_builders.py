"""Builders for console tests: users, signed-in HTTP clients, a tenant's objects."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PASSWORD = "correct horse battery"


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


def console_objects_for(client_id: uuid.UUID) -> dict[str, str]:
    """A campaign (with a pilot batch and a finished attempt), its list, and a feasibility run."""
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
        synthetic = make_lead_list(300, seed=1)
        attempts = dial_leads(synthetic, np.arange(40), max_attempts=3, seed=1)
        run = create_run(
            session=session,
            client_id=client_id,
            attempts=attempts.to_dict(orient="records"),
            leads=synthetic.leads.to_dict(orient="records"),
        )
        ids = {"campaign_id": str(campaign.id), "list_id": str(lead_list.id), "run_id": str(run.id)}
    drain_embedded()
    return ids
