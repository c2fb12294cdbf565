"""Every console page with an object in its path hides other clients' objects: 404.

The test walks every console route of the app. A route with a path parameter needs a factory
below that makes client B's object, so a new page cannot escape the check.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

from console_builders import (
    console_objects_for,
    make_agent,
    make_user,
    sign_in,
    statement_for,
)
from fastapi.routing import APIRoute
from survey_builders import interview_for, publish_via_api

from helpers import Tenant


def _b_objects(bravo: Tenant) -> dict[str, str]:
    ids = console_objects_for(bravo.client_id)
    version = publish_via_api(bravo)
    ids["questionnaire_id"] = version["questionnaire_id"]
    ids["version_id"] = version["id"]
    ids.update(interview_for(bravo))
    ids["user_id"] = str(make_user("bravo-user", "client_user", [bravo.client_id]))
    ids["agent_id"] = str(make_agent(bravo.client_id, code="B-ISO"))
    ids["statement_id"] = str(statement_for(bravo.client_id, "B statement", issue=True))
    return ids


@dataclass(frozen=True)
class Page:
    path: str
    methods: frozenset[str]


def _console_routes() -> list[Page]:
    """Every console route: install_console mounts each page module's router under /console."""
    from api.console import PAGE_MODULES

    routes = [
        Page("/console" + route.path, frozenset(route.methods))
        for name in PAGE_MODULES
        for route in importlib.import_module(name).router.routes
        if isinstance(route, APIRoute)
    ]
    assert len(routes) >= 25, "the console route inventory looks empty"
    return routes


def test_every_console_page_hides_other_clients_objects(
    app: Any, alpha: Tenant, bravo: Tenant
) -> None:
    b_ids = _b_objects(bravo)
    routes = [r for r in _console_routes() if "{" in r.path]
    params = {p for r in routes for p in re.findall(r"\{(\w+)", r.path)}
    assert params <= set(b_ids), f"add a client-B object for {params - set(b_ids)}"
    # an administrator for client A only passes every role check: what remains is tenancy
    admin_a = sign_in(app.app, "admin-a", make_user("admin-a", "admin", [alpha.client_id]))
    checked = 0
    for route in routes:
        url = re.sub(r"\{(\w+)\}", lambda m: b_ids[m.group(1)], route.path)
        for method in route.methods - {"HEAD"}:
            response = admin_a.http.get(url) if method == "GET" else admin_a.post(url, {})
            assert response.status_code in (404, 422), (method, route.path, response.text[:300])
            if response.status_code == 422:
                # form fields are checked first; with them, B's object is still not found
                response = admin_a.post(url, _plausible_form(route.path))
                assert response.status_code == 404, (method, route.path, response.text[:300])
            assert b_ids["campaign_id"] not in response.text
            checked += 1
    assert checked >= len(routes)


def _plausible_form(path: str) -> dict[str, str]:
    return {
        "status": "cancelled",
        "pacing_mode": "progressive",
        "question": "q",
        "language": "",
        "kind": "pilot",
        "size": "1",
    }


def test_client_user_sees_only_own_campaigns_and_lists(
    app: Any, alpha: Tenant, bravo: Tenant
) -> None:
    b_ids = console_objects_for(bravo.client_id)
    a_ids = console_objects_for(alpha.client_id)
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))
    page = carl.http.get("/console/campaigns")
    assert a_ids["campaign_id"] in page.text
    assert b_ids["campaign_id"] not in page.text
    assert carl.http.get(f"/console/campaigns/{b_ids['campaign_id']}").status_code == 404
    assert carl.http.get(f"/console/lists/{b_ids['list_id']}").status_code == 404
    # the API downloads the console links to: another client's list is a 404 there too
    assert carl.http.get(f"/lists/{b_ids['list_id']}/cleaned.csv").status_code == 404
