"""API skeleton: health, readiness, authentication and problem+json errors."""

from __future__ import annotations

from typing import Any

from helpers import Tenant, make_tenant


def test_healthz_needs_no_key(api: Any) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database_and_schema(api: Any) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_missing_and_wrong_keys_are_401_problems(api: Any, tenant_a: Tenant) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"X-API-Key": tenant_a.key + "x"}):
        response = api.get("/jobs", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"].endswith("/unauthorized")
        assert body["status"] == 401
        assert body["request_id"]


def test_x_api_key_header_also_works(api: Any, tenant_a: Tenant) -> None:
    assert api.get("/jobs", headers={"X-API-Key": tenant_a.key}).status_code == 200


def test_revoked_key_stops_working(api: Any, tenant_a: Tenant) -> None:
    from core.admin import revoke_key
    from core.db import system_session

    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 200
    with system_session() as s:
        revoke_key(session=s, prefix=tenant_a.key.split("_")[1])
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 401


def test_validation_errors_name_the_field(api: Any, tenant_a: Tenant) -> None:
    response = api.get("/jobs?limit=0", headers=tenant_a.headers())
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith("/invalid-input")
    assert "limit" in body["detail"]


def test_request_id_is_echoed(api: Any) -> None:
    response = api.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["X-Request-ID"] == "abc123"


def test_staff_key_for_several_clients_must_choose_one_to_create(api: Any) -> None:
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role

    a, b = make_tenant(api, "one"), make_tenant(api, "two")
    with system_session() as s:
        _k, plain = issue_key(
            session=s,
            name="operator",
            role=Role.operator,
            client_refs=[str(a.client_id), str(b.client_id)],
        )
    headers = {"Authorization": f"Bearer {plain}"}
    response = api.post("/jobs/summary", headers=headers)
    assert response.status_code == 422
    assert "X-Pilotdial-Client" in response.json()["detail"]
    response = api.post(
        "/jobs/summary", headers={**headers, "X-Pilotdial-Client": str(b.client_id)}
    )
    assert response.status_code == 202
    listed = api.get("/clients", headers=headers).json()
    assert {c["id"] for c in listed} == {str(a.client_id), str(b.client_id)}
    # choosing a client the key has no grant for looks like an unknown client
    stranger = make_tenant(api, "three")
    response = api.get("/jobs", headers={**headers, "X-Pilotdial-Client": str(stranger.client_id)})
    assert response.status_code == 404


def test_an_errors_own_fields_never_replace_the_problem_members() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api.errors import install_error_handlers
    from core.errors import Conflict

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise Conflict("no", extra={"status": "approved", "title": "x", "field": "status"})

    response = TestClient(app).get("/boom")
    assert response.status_code == 409
    body = response.json()
    assert (body["status"], body["title"], body["detail"]) == (409, "Conflict", "no")
    assert body["field"] == "status"  # its other fields still go out
