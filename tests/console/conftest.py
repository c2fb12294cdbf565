"""Console fixtures: the app on PostgreSQL, two tenants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from helpers import Tenant, make_tenant


@pytest.fixture
def app(app_factory: Callable[..., Any], pg_url: str, pg_engine: Engine) -> Any:
    """The API and console on this run's PostgreSQL database (emptied after the test)."""
    return app_factory(pg_url)


@pytest.fixture
def alpha(app: Any) -> Tenant:
    return make_tenant(app, "alpha")


@pytest.fixture
def bravo(app: Any) -> Tenant:
    return make_tenant(app, "bravo")
