"""Every parameter is bounded in the schema: a bad value is a 422 naming its field, never a 500,
and nothing is stored. Each case below gave a 500 (or a database message naming no field)."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import Tenant, make_tenant

CSV = ("leads.csv", b"phone\n138 1234 5678\n", "text/csv")


def _problem(response: Any, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/invalid-input")
    assert any(e["field"].endswith(field) for e in body.get("errors", [])), body
    assert "errors.pydantic.dev" not in response.text
    return body


def _raw_json(tenant: Tenant, path: str, text: str) -> Any:
    headers = {**tenant.headers(), "Content-Type": "application/json"}
    return tenant.http.post(path, headers=headers, content=text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"region": "CNX"}, "region"),
        ({"region": "1"}, "region"),
        ({"name": "pilot\x00list"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"sheet": "s" * 32}, "sheet"),
    ],
)
def test_list_upload_fields(api: Any, tenant_a: Tenant, form: dict[str, str], field: str) -> None:
    response = api.post("/lists", headers=tenant_a.headers(), files={"file": CSV}, data=form)
    _problem(response, field)
    assert api.get("/lists", headers=tenant_a.headers()).json() == []


@pytest.mark.parametrize(
    "path",
    [
        "/campaigns?offset=10000000000000000000",
        "/campaigns?offset=1e19",
        "/lists/00000000-0000-0000-0000-000000000000/leads?offset=10000000000000000000",
        "/suppression?offset=10000000000000000000",
        "/campaigns?limit=10000000000000000000",
        "/jobs?limit=99999999999999999999999",
    ],
)
def test_huge_offsets_and_limits(api: Any, tenant_a: Tenant, path: str) -> None:
    field = "offset" if "offset" in path else "limit"
    _problem(api.get(path, headers=tenant_a.headers()), field)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_pacing_params_must_be_finite(api: Any, number: str) -> None:
    operator = make_tenant(api, "ops", role="operator")
    body = '{"name": "c", "pacing_params": {"target_ratio": NUMBER}}'.replace("NUMBER", number)
    _problem(_raw_json(operator, "/campaigns", body), "pacing_params.target_ratio")
    assert api.get("/campaigns", headers=operator.headers()).json() == []
    created = operator.http.post("/campaigns", headers=operator.headers(), json={"name": "ok"})
    assert created.status_code == 201, created.text
    update = operator.http.patch(
        f"/campaigns/{created.json()['id']}",
        headers={**operator.headers(), "Content-Type": "application/json"},
        content=body.replace('"name": "c", ', "").encode(),
    )
    _problem(update, "pacing_params.target_ratio")


def test_nul_characters_in_names_and_reasons(api: Any, tenant_a: Tenant) -> None:
    operator = make_tenant(api, "ops", role="operator")
    _problem(
        operator.http.post("/campaigns", headers=operator.headers(), json={"name": "a\x00"}),
        "name",
    )
    response = api.post(
        "/suppression",
        headers=tenant_a.headers(),
        json={"numbers": ["13812345678"], "reason": "asked\x00"},
    )
    _problem(response, "reason")
    assert api.get("/suppression", headers=tenant_a.headers()).json() == []
    campaign = operator.http.post("/campaigns", headers=operator.headers(), json={"name": "c"})
    dispositions = f"/campaigns/{campaign.json()['id']}/dispositions"
    response = operator.http.post(
        dispositions,
        headers=operator.headers(),
        json={"code": "x_code", "label": "bad\x00label", "outcome": "contact"},
    )
    _problem(response, "label")


def test_lone_surrogate_in_suppression_numbers(api: Any, tenant_a: Tenant) -> None:
    body = '{"numbers": ["\\ud800", "13812345678"]}'
    _problem(_raw_json(tenant_a, "/suppression", body), "numbers.0")
    _problem(_raw_json(tenant_a, "/suppression/remove", body), "numbers.0")
    assert api.get("/suppression", headers=tenant_a.headers()).json() == []


def test_feasibility_seed_is_bounded(api: Any) -> None:
    sales = make_tenant(api, "sales-desk", role="sales")
    response = sales.http.post(
        "/feasibility-reports",
        headers=sales.headers(),
        json={"attempts": [{"lead_id": "1"}], "leads": [{"lead_id": "1"}], "seed": 2**40},
    )
    _problem(response, "seed")
    assert api.get("/feasibility-reports", headers=sales.headers()).json() == []
