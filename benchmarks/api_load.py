"""Benchmark: the API under 200 concurrent clients, against itself at concurrency 1.

Starts a real ``uvicorn`` (a subprocess, one worker, production settings) on a free loopback
port over a PostgreSQL database this script creates, migrates, fills and drops. Then, on the
list and detail routes (lists, one list, a page of leads, campaigns, one campaign, jobs):

1. baseline: one client, back to back, for ``--baseline`` seconds;
2. load: ``--concurrency`` clients (default 200), each back to back, for ``--duration`` s;
3. recovery: how long until ``/healthz`` and then a list route answer 200 after the load.

Printed: requests, errors by kind (any non-200, timeouts, resets), throughput, p50/p99 for
both phases and their ratio. Issue 18 target: 0 errors, p99 < 500 ms, healthy at once after.

The load comes from ``wrk`` (Debian package ``wrk``: C, so the client's CPU does not compete
with the server's on a small machine) when it is installed, else from an httpx asyncio client
(``--client httpx``). ``--workers N`` serves with N uvicorn processes (what
``pilotdial serve --workers N`` runs).
Run: ``python benchmarks/api_load.py --duration 20 --workers 2`` (PostgreSQL from
``PILOTDIAL_TEST_DATABASE_URL`` or postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from scratch_db import scratch_database
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "PILOTDIAL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
).replace("postgresql://", "postgresql+psycopg://")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _fill(url: str, leads: int) -> tuple[str, list[str]]:
    """A client with a key, a ready list of ``leads`` leads and a campaign on it."""
    os.environ["PILOTDIAL_DATABASE_URL"] = url
    from campaigns.models import CampaignCreate, Lead, LeadList, ListStatus
    from campaigns.service import create_campaign
    from core.admin import create_client, issue_key
    from core.db import dispose_engines, system_session
    from core.migrate import upgrade
    from core.models import Role

    upgrade(url)
    with system_session() as session:
        client = create_client(session=session, name="load", default_region="CN", slug="load")
        _key, plain = issue_key(
            session=session, name="load", role=Role.client, client_refs=[str(client.id)]
        )
        lead_list = LeadList(
            client_id=client.id, name="load", filename="load.csv", status=ListStatus.ready
        )
        session.add(lead_list)
        session.flush()
        session.add_all(
            Lead(
                client_id=client.id,
                list_id=lead_list.id,
                row_number=i + 2,
                phone_e164=f"+86139{i:08d}",
                attributes={"name": f"客戶{i}"},
            )
            for i in range(leads)
        )
        session.flush()
        campaign = create_campaign(
            session=session,
            client_id=client.id,
            campaign_in=CampaignCreate(name="load", list_ids=[lead_list.id]),
        )
        paths = [
            "/lists",
            f"/lists/{lead_list.id}",
            f"/lists/{lead_list.id}/leads?limit=50",
            "/campaigns",
            f"/campaigns/{campaign.id}",
            "/jobs",
        ]
    dispose_engines()
    return plain, paths


def _start_server(url: str, port: int, data_dir: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PILOTDIAL_DATABASE_URL": url,
        "PILOTDIAL_ENVIRONMENT": "production",
        "PILOTDIAL_SECRET_KEY": "b" * 48,
        "PILOTDIAL_DATA_DIR": str(data_dir),
        "PILOTDIAL_LOG_LEVEL": "WARNING",
    }
    env.pop("PILOTDIAL_REDIS_URL", None)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env)


async def _wait_healthy(base: str, deadline_s: float, path: str = "/healthz", **kw: Any) -> float:
    """Seconds until ``path`` answers 200 (each try times out after 1 s)."""
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=1.0, **kw) as client:
        while time.perf_counter() - started < deadline_s:
            try:
                if (await client.get(path)).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{path} was not healthy within {deadline_s} s")


async def _phase(
    base: str, headers: dict[str, str], paths: list[str], concurrency: int, seconds: float
) -> tuple[list[float], collections.Counter[str]]:
    latencies: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=30.0, limits=limits
    ) as client:
        stop = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            i = offset
            while time.perf_counter() < stop:
                path = paths[i % len(paths)]
                i += 1
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    outcomes[str(response.status_code)] += 1
                except httpx.TimeoutException:
                    outcomes["timeout"] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return latencies, outcomes


_WRK_SCRIPT = """
local paths = {}
for p in string.gmatch(os.getenv("LOAD_PATHS"), "[^,]+") do table.insert(paths, p) end
local i = math.random(#paths)
wrk.headers["Authorization"] = os.getenv("LOAD_AUTHORIZATION")
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _wrk_phase(
    base: str, headers: dict[str, str], paths: list[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    """One wrk run: its request count, p50/p99 (its latency histogram) and errors by kind."""
    script = Path(f"/tmp/pilotdial_load_{os.getpid()}.lua")
    script.write_text(_WRK_SCRIPT)
    env = {
        **os.environ,
        "LOAD_PATHS": ",".join(paths),
        "LOAD_AUTHORIZATION": headers["Authorization"],
    }
    threads = max(1, min(2, concurrency))
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--latency"]
    command += ["--timeout", "30s", "-s", str(script), base]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    script.unlink()
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors: collections.Counter[str] = collections.Counter()
    if found := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors["non-2xx"] = int(found[1])
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        for kind, n in zip(("connect", "read", "write", "timeout"), found.groups(), strict=True):
            if int(n):
                errors[kind] = int(n)
    return {
        "requests": int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        "p50": _seconds(pct["50"]),
        "p99": _seconds(pct["99"]),
        "errors": errors,
    }


def _tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by ``pid`` and each of its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[int, float] = {}
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            used[current] = (int(fields[11]) + int(fields[12])) / ticks
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return used


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its descendants (the workers)."""
    return sum(_tree_cpu(pid).values())


def _pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def _run(
    args: argparse.Namespace, base: str, key: str, paths: list[str], server_pid: int
) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    await _wait_healthy(base, 60)
    await _phase(base, headers, paths, 4 * args.workers, 2.0)  # warm-up: imports, connections
    cpu: dict[str, float] = {}
    shares: dict[str, list[float]] = {}
    runs: dict[str, dict[str, Any]] = {}
    for phase, concurrency, seconds in (
        ("baseline", 1, args.baseline),
        ("load", args.concurrency, args.duration),
    ):
        before = _tree_cpu(server_pid)
        if args.client == "wrk":
            runs[phase] = _wrk_phase(base, headers, paths, concurrency, seconds)
        else:
            runs[phase] = _httpx_run(await _phase(base, headers, paths, concurrency, seconds))
        after = _tree_cpu(server_pid)
        spent = {p: after[p] - before.get(p, 0.0) for p in after}
        cpu[phase] = sum(spent.values())
        shares[phase] = sorted((v / max(cpu[phase], 1e-9) for v in spent.values()), reverse=True)
    base_run, load_run = runs["baseline"], runs["load"]
    health_s = await _wait_healthy(base, 600)
    route_s = await _wait_healthy(base, 600, path=paths[0], headers=headers)
    print(f"routes: {', '.join(paths)}")
    print(f"server: {args.workers} uvicorn process(es); load from {args.client}")
    for name, run, seconds in (
        ("baseline", base_run, args.baseline),
        (f"load x{args.concurrency}", load_run, args.duration),
    ):
        errors = sum(run["errors"].values())
        print(
            f"{name:<9} {run['requests']:>7} req  {run['requests'] / seconds:>7.1f} req/s"
            f"  errors {errors:>5}  p50 {run['p50'] * 1000:>7.1f} ms"
            f"  p99 {run['p99'] * 1000:>7.1f} ms  {dict(run['errors'])}"
        )
    # Server CPU per request: steadier than latency on a shared machine (steal, neighbours).
    per_request = {
        phase: cpu[phase] / max(1, runs[phase]["requests"]) * 1000 for phase in ("baseline", "load")
    }
    print(
        f"server cpu: {per_request['baseline']:.2f} ms/request at concurrency 1, "
        f"{per_request['load']:.2f} ms/request under load "
        f"(x{per_request['load'] / per_request['baseline']:.2f})"
    )
    if args.workers > 1:  # an unbalanced split of the connections shows here
        split = " / ".join(f"{share:.0%}" for share in shares["load"] if share >= 0.005)
        print(f"server cpu under load by process: {split}")
    ratio50 = load_run["p50"] / base_run["p50"]
    ratio99 = load_run["p99"] / base_run["p99"]
    print(f"load/baseline: p50 x{ratio50:.1f}, p99 x{ratio99:.1f}")
    print(
        f"after the load: /healthz 200 in {health_s * 1000:.0f} ms, {paths[0]} 200 in "
        f"{route_s * 1000:.0f} ms"
    )
    errors = sum(load_run["errors"].values())
    p99_ms = load_run["p99"] * 1000
    verdict = "met" if errors == 0 and p99_ms < 500 and health_s < 1 else "NOT met"
    print(f"target (0 errors, p99 < 500 ms, healthy within 1 s): {verdict}")
    return 0


def _httpx_run(phase: tuple[list[float], collections.Counter[str]]) -> dict[str, Any]:
    latencies, outcomes = phase
    return {
        "requests": len(latencies),
        "p50": _pct(latencies, 50),
        "p99": _pct(latencies, 99),
        "errors": collections.Counter({k: n for k, n in outcomes.items() if k != "200"}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="load seconds (60)")
    parser.add_argument("--baseline", type=float, default=10.0, help="baseline seconds (10)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--leads", type=int, default=2000, help="leads in the list (2000)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes (1)")
    parser.add_argument(
        "--client",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load generator (wrk when installed)",
    )
    args = parser.parse_args()

    server: subprocess.Popen[bytes] | None = None
    with scratch_database(ADMIN_URL, prefix="pilotdial_load") as url:
        try:
            key, paths = _fill(url, args.leads)
            port = _free_port()
            data_dir = Path(f"/tmp/{make_url(url).database}")
            server = _start_server(url, port, data_dir, args.workers)
            return asyncio.run(_run(args, f"http://127.0.0.1:{port}", key, paths, server.pid))
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
