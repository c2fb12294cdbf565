"""Client A's key can never read, list, change or delete client B's objects: always 404.

The test walks every route the app has. A route with path parameters must have a factory
below that creates a client-B object for each parameter, so a new route cannot escape the
check: it fails here until someone says how to make its objects.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from helpers import Tenant

PUBLIC_ROUTES = {"/healthz", "/readyz"}


def _job_for(tenant: Tenant) -> dict[str, str]:
    response = tenant.http.post("/jobs/summary", headers=tenant.headers())
    assert response.status_code == 202, response.text
    return {"job_id": response.json()["id"]}


# parameter name -> builder of client-B objects: returns {param: id, ...}
OBJECT_FACTORIES: dict[str, Callable[[Tenant], dict[str, str]]] = {
    "job_id": _job_for,
}


def _routes(app: Any) -> list[APIRoute]:
    return [r for r in app.routes if isinstance(r, APIRoute) and r.path not in PUBLIC_ROUTES]


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: ids[m.group(1)], path)


def test_every_route_hides_other_clients_objects(
    api: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    from core.queue import drain_embedded

    routes = _routes(api.app)
    params = {p for r in routes for p in re.findall(r"\{(\w+)", r.path)}
    missing = params - set(OBJECT_FACTORIES)
    assert not missing, f"add OBJECT_FACTORIES entries for route parameters {missing}"

    b_ids: dict[str, str] = {}
    for name in sorted(params):
        b_ids.update(OBJECT_FACTORIES[name](tenant_b))
    drain_embedded()
    secrets = {str(tenant_b.client_id), *b_ids.values()}

    checked = 0
    for route in routes:
        for method in route.methods - {"HEAD", "OPTIONS"}:
            url = _fill(route.path, b_ids)
            response = tenant_a.http.request(method, url, headers=tenant_a.headers(), json={})
            if "{" in route.path:
                assert response.status_code == 404, (method, route.path, response.text)
                assert response.json()["type"].endswith("/not-found")
            # whatever A gets back never mentions B's objects
            leaked = [s for s in secrets if s in response.text]
            assert not leaked, (method, route.path, leaked)
            checked += 1
    assert checked >= len(routes)

    # and B's objects are still intact and visible to B
    for route in routes:
        if "GET" in route.methods and "{" in route.path:
            response = tenant_b.http.get(_fill(route.path, b_ids), headers=tenant_b.headers())
            assert response.status_code == 200, (route.path, response.text)


def test_unknown_ids_and_foreign_ids_look_the_same(
    api: Any, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    foreign = _job_for(tenant_b)["job_id"]
    unknown = str(uuid.uuid4())
    r1 = tenant_a.http.get(f"/jobs/{foreign}", headers=tenant_a.headers())
    r2 = tenant_a.http.get(f"/jobs/{unknown}", headers=tenant_a.headers())
    assert r1.status_code == r2.status_code == 404
    assert r1.json()["title"] == r2.json()["title"]
