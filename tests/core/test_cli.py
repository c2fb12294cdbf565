"""The pilotdial command: admin flow, schema checks, and one-line errors for bad configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTDIAL_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_admin_flow_on_a_fresh_embedded_database(tmp_path: Path) -> None:
    env = {"PILOTDIAL_DATA_DIR": str(tmp_path / "var")}
    behind = _run(["admin", "create-client", "Acme"], env, tmp_path)
    assert behind.returncode == 2
    assert "pilotdial db upgrade" in behind.stderr
    assert "Traceback" not in behind.stderr

    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    created = _run(["admin", "create-client", "Acme Telecom"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    assert "acme-telecom" in created.stdout
    key = _run(
        ["admin", "create-key", "--role", "client", "--client", "acme-telecom"], env, tmp_path
    )
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip().startswith("pd_")
    assert "not shown again" in key.stderr
    # the key is not stored in plain text anywhere in the database file
    assert key.stdout.strip().encode() not in (tmp_path / "var" / "pilotdial.db").read_bytes()

    dup = _run(["admin", "create-client", "Acme Telecom"], env, tmp_path)
    assert dup.returncode == 2
    assert "already exists" in dup.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PILOTDIAL_DATABASE_URL": "nonsense"}, "PILOTDIAL_DATABASE_URL"),
        ({"PILOTDIAL_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}, "cannot reach"),
        ({"PILOTDIAL_ENVIRONMENT": "production"}, "PILOTDIAL_SECRET_KEY"),
        (
            {
                "PILOTDIAL_ENVIRONMENT": "production",
                "PILOTDIAL_SECRET_KEY": "x" * 40,
                "PILOTDIAL_DATABASE_URL": "postgresql://u@127.0.0.1/x",
                "PILOTDIAL_REDIS_URL": "redis://127.0.0.1:1/0",
            },
            "PILOTDIAL_REDIS_URL",
        ),
    ],
)
def test_bad_configuration_is_one_line_not_a_traceback(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    command = ["worker", "--burst"] if "PILOTDIAL_ENVIRONMENT" in env else ["db", "upgrade"]
    result = _run(command, {"PILOTDIAL_DATA_DIR": str(tmp_path), **env}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_api_refuses_to_start_on_an_old_schema(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from core.errors import SchemaOutOfDate
    from core.settings import Settings

    settings = Settings(data_dir=tmp_path, _env_file=None)
    with (
        pytest.raises(SchemaOutOfDate, match="pilotdial db upgrade"),
        TestClient(create_app(settings)),
    ):
        pass
