"""A campaign pins only a published questionnaire version of its own client.

Before: ``questionnaire_version_id`` was stored as given on create and update: another
client's version, a random UUID or a draft. Now each is a 422 naming the field, and a foreign
key keeps a dangling reference out of the table whatever writes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from survey_builders import publish_via_api, sample_document

from core.db import get_engine

from helpers import Tenant, make_tenant


def _refused(response: Any) -> None:
    assert response.status_code == 422, response.text
    assert "questionnaire_version_id" in response.json()["detail"]


def _operator_of(client: Tenant) -> Tenant:
    """An operator key for the client: the client designs questionnaires, operators campaigns."""
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role

    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="ops", role=Role.operator, client_refs=[str(client.client_id)]
        )
    return Tenant(client_id=client.client_id, key=plain, http=client.http)


@dataclass
class Side:
    """One client: its own key designs questionnaires, an operator key builds campaigns."""

    client: Tenant
    operator: Tenant

    def published_version(self) -> str:
        return str(publish_via_api(self.client)["id"])


@pytest.fixture
def sides(api: Any) -> tuple[Side, Side]:
    a, b = make_tenant(api, "alpha"), make_tenant(api, "bravo")
    return Side(a, _operator_of(a)), Side(b, _operator_of(b))


def _survey(tenant: Tenant, version_id: str) -> Any:
    body = {"name": "survey", "kind": "survey", "questionnaire_version_id": version_id}
    return tenant.http.post("/campaigns", headers=tenant.headers(), json=body)


def test_create_refuses_foreign_random_and_draft_versions(
    api: Any, sides: tuple[Side, Side]
) -> None:
    side_a, side_b = sides
    a = side_a.operator
    foreign = side_b.published_version()
    draft = side_a.client.http.post(
        "/questionnaires",
        headers=side_a.client.headers(),
        json={"content": sample_document(id=f"draft_{uuid.uuid4().hex[:6]}")},
    ).json()["id"]
    for version_id in (foreign, str(uuid.uuid4()), draft):
        _refused(_survey(a, version_id))
    sales_body = {"name": "sales", "questionnaire_version_id": foreign}
    _refused(a.http.post("/campaigns", headers=a.headers(), json=sales_body))
    assert api.get("/campaigns", headers=a.headers()).json() == []
    own = side_a.published_version()
    created = _survey(a, own)
    assert created.status_code == 201, created.text
    assert created.json()["questionnaire_version_id"] == own


def test_update_refuses_foreign_and_random_versions(api: Any, sides: tuple[Side, Side]) -> None:
    side_a, side_b = sides
    a = side_a.operator
    own, foreign = side_a.published_version(), side_b.published_version()
    campaign = _survey(a, own).json()
    path = f"/campaigns/{campaign['id']}"
    for version_id in (foreign, str(uuid.uuid4())):
        update = {"questionnaire_version_id": version_id}
        _refused(a.http.patch(path, headers=a.headers(), json=update))
    assert api.get(path, headers=a.headers()).json()["questionnaire_version_id"] == own
    second = side_a.published_version()
    moved = a.http.patch(path, headers=a.headers(), json={"questionnaire_version_id": second})
    assert moved.status_code == 200, moved.text


def test_the_database_refuses_a_dangling_reference(pg_url: str, pg_engine: sa.Engine) -> None:
    client_id = uuid.uuid4()
    insert = sa.text(
        "INSERT INTO campaign (id, client_id, name, kind, status, questionnaire_version_id,"
        " pacing_mode, pacing_params, calling_windows, holidays, max_attempts,"
        " abandon_rate_cap, abandon_window, max_ring_s, created_at, updated_at,"
        " status_changed_at) VALUES (:id, :client, 'c', 'survey', 'draft', :version,"
        " 'progressive', '{}', '{}', '[]', 6, 0.03, 'fcc_30d', 20, now(), now(), now())"
    )
    with get_engine(pg_url).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO client (id, name, slug, default_region, created_at) "
                "VALUES (:id, 'c', :slug, 'CN', now())"
            ),
            {"id": client_id, "slug": f"c-{client_id.hex[:6]}"},
        )
    with get_engine(pg_url).connect() as conn:
        row = {"id": uuid.uuid4(), "client": client_id, "version": uuid.uuid4()}
        with pytest.raises(sa.exc.IntegrityError, match="questionnaire"):
            conn.execute(insert, row)
