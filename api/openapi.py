"""The OpenAPI document: the API-key security scheme and the statuses every route can return.

Routes declare their own success and domain statuses; what the shared machinery answers for
any route is added here once, so the document lists every status a route really returns:
401 (no or bad key) on authenticated routes, 404 on routes with an object id, 422 where
there is input, 429 (too many bad keys), 503 (at capacity, database or queue unavailable).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

__all__ = ["install_openapi_security"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extension members depend on the problem type",
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
    },
    "required": ["type", "title", "status", "detail"],
}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key `pd_<prefix>_<secret>` (`pilotdial admin create-key`)",
    },
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
COMMON = {
    "401": "no API key, or an unknown, wrong or revoked one",
    "404": "no such object for this caller (another client's objects included)",
    "422": "invalid input; `errors` lists each field and what is wrong",
    "429": "too many failed authentications from this address; see Retry-After",
    "503": "at capacity, or the database or queue is unavailable; see Retry-After",
}


def _needs_key(dependant: Dependant) -> bool:
    from api.deps import get_principal

    return dependant.call is get_principal or any(_needs_key(d) for d in dependant.dependencies)


def _api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every documented API route with its path as served.

    FastAPI 0.16x keeps included routers as lazy ``_IncludedRouter`` entries in ``app.routes``
    (not their APIRoutes): iterating ``app.routes`` alone found no route at all, so no
    operation got its security requirement. ``iter_route_contexts`` is how FastAPI's own
    ``get_openapi`` walks them.
    """
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    if walk is None:  # FastAPI before 0.16x: app.routes holds the APIRoutes themselves
        for route in app.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                yield route.path_format, route
        return
    for context in walk(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            yield context.path_format or route.path_format, route


def _problem(description: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {"application/problem+json": {"schema": ref}}}


def install_openapi_security(app: FastAPI) -> None:
    """Build the document once, with the security scheme and the shared statuses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        components["securitySchemes"] = SECURITY_SCHEMES
        for path, route in _api_routes(app):
            authenticated = _needs_key(route.dependant)
            for method in route.methods or ():
                operation = schema["paths"].get(path, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                statuses = ["503"]
                if authenticated:
                    operation["security"] = [{"bearerKey": []}, {"headerKey": []}]
                    statuses += ["401", "429", "422"]
                if "{" in path:
                    statuses += ["404", "422"]
                if route.body_field is not None or operation.get("parameters"):
                    statuses.append("422")
                for status in statuses:
                    if status not in responses:
                        responses[status] = _problem(COMMON[status])
                    elif "content" not in responses[status]:
                        responses[status].update(_problem(responses[status]["description"]))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
