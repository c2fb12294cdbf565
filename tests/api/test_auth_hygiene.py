"""Authentication hygiene: throttling, constant-cost key checks, no cross-tenant hints,
security headers and the documented security scheme."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from core import security
from core.admin import issue_key
from core.db import system_session
from core.models import ApiKey, Role
from core.queue import drain_embedded
from core.security import FailureThrottle

from helpers import Tenant, make_tenant


def _wrong_secret(key: str) -> str:
    prefix = key.split("_")[1]
    return f"pd_{prefix}_{'x' * 43}"


def _too_many(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/too-many-attempts")
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_wrong_secrets_for_one_prefix_are_throttled_but_the_key_still_works(
    api: Any, tenant_a: Tenant
) -> None:
    wrong = {"Authorization": f"Bearer {_wrong_secret(tenant_a.key)}"}
    for _ in range(10):
        assert api.get("/jobs", headers=wrong).status_code == 401
    _too_many(api.get("/jobs", headers=wrong))
    # guessing at a client's prefix must not lock the client out
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 200
    _too_many(api.get("/jobs", headers=wrong))


def test_an_address_with_many_failures_is_throttled(api: Any, tenant_a: Tenant) -> None:
    for i in range(30):
        bad = {"Authorization": f"Bearer pd_{i:012d}_{'y' * 43}"}
        assert api.get("/lists", headers=bad).status_code == 401
    _too_many(api.get("/lists", headers={"Authorization": "Bearer nonsense"}))
    _too_many(api.get("/lists", headers=tenant_a.headers()))  # the address waits, whatever key
    assert api.get("/healthz").status_code == 200


def test_throttle_window_slides() -> None:
    now = [1000.0]
    throttle = FailureThrottle(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("ip") == 0
        throttle.failed("ip")
        now[0] += 10
    assert throttle.retry_after("ip") == pytest.approx(30)  # the first failure ages out at 1060
    assert throttle.retry_after("other") == 0
    now[0] = 1060.5
    assert throttle.retry_after("ip") == 0
    small = FailureThrottle(limit=1, window_s=60, clock=lambda: now[0], max_keys=100)
    for i in range(1000):
        small.failed(f"ip{i}")
    assert len(small._failures) <= 100  # memory stays bounded under many addresses


class CountingHasher:
    """argon2 with a counter: which requests pay for a slow hash."""

    def __init__(self, real: Any) -> None:
        self.real, self.verifications = real, 0

    def verify(self, hashed: str, plain: str) -> bool:
        self.verifications += 1
        result: bool = self.real.verify(hashed, plain)
        return result

    def hash(self, plain: str) -> str:
        result: str = self.real.hash(plain)
        return result


def test_a_wrong_secret_costs_no_argon2(
    api: Any, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = CountingHasher(security._hasher)
    monkeypatch.setattr(security, "_hasher", hasher)
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 200
    for headers in (
        {"Authorization": f"Bearer {_wrong_secret(tenant_a.key)}"},  # real prefix
        {"Authorization": f"Bearer pd_{'0' * 12}_{'x' * 43}"},  # unknown prefix
    ):
        assert api.get("/jobs", headers=headers).status_code == 401
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 200
    assert hasher.verifications == 0


def test_keys_from_before_the_digest_gain_it_on_first_use(
    api: Any, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = tenant_a.key.split("_")[1]
    with system_session() as session:
        key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        key.secret_sha256 = None  # as every key made before migration 0011 is
        session.add(key)
    hasher = CountingHasher(security._hasher)
    monkeypatch.setattr(security, "_hasher", hasher)
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 200
    assert hasher.verifications == 1
    with system_session() as session:
        stored = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        assert stored.secret_sha256 is not None
    assert api.get("/jobs", headers={"X-API-Key": _wrong_secret(tenant_a.key)}).status_code == 401
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 200
    assert hasher.verifications == 1


def _operator(tenant: Tenant) -> Tenant:
    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="ops", role=Role.operator, client_refs=[str(tenant.client_id)]
        )
    return Tenant(client_id=tenant.client_id, key=plain, http=tenant.http)


def test_a_taken_agent_code_does_not_reveal_the_other_tenant(
    api: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ops_a, ops_b = _operator(tenant_a), _operator(tenant_b)
    body = {"agent_code": "A1001", "name": "王五", "skill_groups": ["sales"]}
    created = ops_a.http.post(
        "/agents", headers=ops_a.headers(), json={**body, "client_ids": [str(tenant_a.client_id)]}
    )
    assert created.status_code == 201, created.text
    taken = ops_b.http.post(
        "/agents", headers=ops_b.headers(), json={**body, "client_ids": [str(tenant_b.client_id)]}
    )
    assert taken.status_code == 409, taken.text
    assert "already taken" in taken.json()["detail"]
    assert created.json()["id"] not in taken.text
    assert str(tenant_a.client_id) not in taken.text


def test_security_headers(api: Any, tenant_a: Tenant) -> None:
    for response in (api.get("/healthz"), api.get("/jobs"), api.get("/nowhere")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in response.headers  # plain HTTP
    over_tls = api.get("https://testserver/healthz")
    assert over_tls.headers["strict-transport-security"].startswith("max-age=")
    upload = api.post(
        "/lists",
        headers=tenant_a.headers(),
        files={"file": ("l.csv", b"phone\n138 1234 5678\n", "text/csv")},
    )
    drain_embedded()
    list_id = upload.json()["id"]
    for path in (f"/lists/{list_id}/cleaned.csv", f"/lists/{list_id}/leads", "/lists"):
        response = api.get(path, headers=tenant_a.headers())
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
    assert "cache-control" not in api.get("/healthz").headers


def test_openapi_declares_the_key_schemes(api: Any) -> None:
    document = api.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["headerKey"]["name"] == "X-API-Key"
    lists = document["paths"]["/lists"]["get"]
    assert {"bearerKey": []} in lists["security"]
    assert {"401", "429", "503"} <= set(lists["responses"])
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_staff_roles_are_throttled_too(api: Any) -> None:
    admin = make_tenant(api, "house", role="admin")
    wrong = {"X-API-Key": _wrong_secret(admin.key)}
    for _ in range(10):
        assert api.get("/clients", headers=wrong).status_code == 401
    _too_many(api.get("/clients", headers=wrong))


# ------------------------------------------------------------------ remembered keys


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_bound(
    api: Any, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 200
    prefix = tenant_a.key.split("_")[1]
    with system_session() as s:  # what another API process's revoke leaves: the row only
        key = s.exec(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        key.revoked_at = key.created_at
        s.add(key)
    later = security.time.monotonic() + security.KEY_CACHE_SECONDS + 0.01
    monkeypatch.setattr(security.time, "monotonic", lambda: later)
    assert api.get("/jobs", headers=tenant_a.headers()).status_code == 401


def test_revoking_in_this_process_takes_effect_at_once(api: Any, tenant_a: Tenant) -> None:
    from core.admin import revoke_key

    assert api.get("/lists", headers=tenant_a.headers()).status_code == 200
    with system_session() as s:
        revoke_key(session=s, prefix=tenant_a.key.split("_")[1])
    assert api.get("/lists", headers=tenant_a.headers()).status_code == 401


def test_a_remembered_all_clients_key_reaches_a_client_made_elsewhere(api: Any) -> None:
    from core.models import Client

    with system_session() as s:
        _key, plain = issue_key(
            session=s, name="root", role=Role.admin, client_refs=[], all_clients=True
        )
    headers = {"Authorization": f"Bearer {plain}"}
    assert api.get("/lists", headers=headers).status_code == 200  # remembered now
    with system_session() as s:  # another process's create: no cache of ours is told
        client = Client(name="Late", slug="late-client", default_region="CN")
        s.add(client)
        s.flush()
        client_id = client.id
    chosen = {**headers, "X-Pilotdial-Client": str(client_id)}
    assert api.get("/lists", headers=chosen).status_code == 200
    unknown = {**headers, "X-Pilotdial-Client": "00000000-0000-0000-0000-000000000001"}
    assert api.get("/lists", headers=unknown).status_code == 404


def test_a_remembered_key_still_waits_out_its_addresss_throttle(api: Any, tenant_a: Tenant) -> None:
    assert api.get("/lists", headers=tenant_a.headers()).status_code == 200
    for i in range(30):
        bad = {"Authorization": f"Bearer pd_{i:012d}_{'z' * 43}"}
        assert api.get("/lists", headers=bad).status_code == 401
    _too_many(api.get("/lists", headers=tenant_a.headers()))
