"""``pilotdial serve --workers N``: several API processes on one port, PostgreSQL and Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from helpers import make_tenant

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_two_api_processes_serve_and_both_forget_a_revoked_key(
    app_factory: Any, pg_url: str, pg_engine: Any, redis_url: str, tmp_path: Path
) -> None:
    from core.admin import revoke_key
    from core.db import system_session
    from core.security import KEY_CACHE_SECONDS

    tenant = make_tenant(app_factory(pg_url, redis_url), "alpha")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTDIAL_")}
    env |= {
        "PILOTDIAL_DATABASE_URL": pg_url,
        "PILOTDIAL_REDIS_URL": redis_url,
        "PILOTDIAL_DATA_DIR": str(tmp_path),
        "PILOTDIAL_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 never became healthy"
            time.sleep(0.2)
        # new connections each time, so both processes are asked and both remember the key
        statuses = [
            httpx.get(f"{base}/lists", headers=tenant.headers(), timeout=10).status_code
            for _ in range(20)
        ]
        assert statuses == [200] * 20
        with system_session() as s:  # revoked here: neither server process is told
            revoke_key(session=s, prefix=tenant.key.split("_")[1])
        time.sleep(KEY_CACHE_SECONDS + 0.2)
        statuses = [
            httpx.get(f"{base}/lists", headers=tenant.headers(), timeout=10).status_code
            for _ in range(20)
        ]
        # refused everywhere (after ten refusals a process throttles the prefix: 429)
        assert statuses[:8] == [401] * 8
        assert set(statuses) <= {401, 429}
    finally:
        server.terminate()
        server.communicate(timeout=30)
