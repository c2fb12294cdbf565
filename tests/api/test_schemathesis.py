"""Schemathesis against the OpenAPI document: no 5xx and responses as documented.

A bounded run for CI (a few examples per operation, every operation but the event streams),
each case sent with a client key and with an operator key. The full exploration (15,118
cases in issue 18) is for a manual run: ``schemathesis run`` against ``pilotdial serve``.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from core.admin import issue_key
from core.db import system_session
from core.models import Role

from helpers import make_tenant

# Every operation is fuzzed (uploads, imports, exports, downloads and the pacer routes too:
# their own tests cover real files and dialing) except the event streams, which never end.
EXCLUDED = r"/stream"


@pytest.fixture
def fuzz_keys(app_factory: Any, pg_url: str, pg_engine: Any) -> dict[str, Any]:
    http = app_factory(pg_url)
    client = make_tenant(http, "fuzz")
    with system_session() as session:
        _key, operator = issue_key(
            session=session, name="ops", role=Role.operator, client_refs=[str(client.client_id)]
        )
    return {"app": http.app, "keys": [client.key, operator]}


def test_no_server_errors_and_documented_responses(fuzz_keys: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_keys["app"])
    operations = [
        result.ok() for result in schema.exclude(path_regex=EXCLUDED).get_all_operations()
    ]
    assert len(operations) > 50  # the whole API minus the exclusions, not a handful
    checked = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=2,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            for key in fuzz_keys["keys"]:
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {key}"},
                    checks=[not_a_server_error, response_schema_conformance],
                )

        fuzz()
        checked += 1
    assert checked == len(operations)
