"""Benchmark: a 1,000-row list upload on the embedded default, from upload to report.

Starts a real ``uvicorn`` (a subprocess, the embedded default: SQLite under a scratch data
directory, background jobs on the server's own thread pool, no Redis) and, for ``--uploads``
generated 1,000-row messy lists (the generator of ``clean_1m.py``), measures:

* **upload**: the ``POST /lists`` request (spooling, checks, storing the file, queueing);
* **to report**: from the moment the upload's response is received until
  ``GET /lists/{id}/report`` answers 200 (polled every ``--poll-ms`` ms);

the first upload separately (a fresh server: the cleaner's first use), then the median and
maximum of the others. Baseline, same run: a bare ``clean_table(...).consume()`` of the same
rows in this process (warm) and ``pilotdial clean`` of them in a fresh interpreter.
Issue 19 target: the report available < 1 s after the upload completes.
Run: ``python benchmarks/small_upload.py`` (``--rows 1000 --uploads 8``).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _setup(data_dir: Path) -> str:
    """Migrate the embedded SQLite database and return a client API key."""
    os.environ["PILOTDIAL_DATA_DIR"] = str(data_dir)
    os.environ.pop("PILOTDIAL_DATABASE_URL", None)
    os.environ.pop("PILOTDIAL_REDIS_URL", None)
    from core.admin import create_client, issue_key
    from core.db import dispose_engines, system_session
    from core.migrate import upgrade
    from core.models import Role
    from core.settings import get_settings

    get_settings.cache_clear()
    upgrade(get_settings().sqlalchemy_url())
    with system_session() as session:
        client = create_client(session=session, name="small", default_region="CN", slug="small")
        _key, plain = issue_key(
            session=session, name="small", role=Role.client, client_refs=[str(client.id)]
        )
    dispose_engines()
    return plain


def _start_server(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PILOTDIAL_DATA_DIR": str(data_dir), "PILOTDIAL_LOG_LEVEL": "WARNING"}
    for name in ("PILOTDIAL_DATABASE_URL", "PILOTDIAL_REDIS_URL", "PILOTDIAL_ENVIRONMENT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log"]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def _wait_healthy(client: httpx.Client, deadline_s: float = 60.0) -> None:
    stop = time.perf_counter() + deadline_s
    while time.perf_counter() < stop:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not become healthy")


def _one_upload(client: httpx.Client, content: bytes, poll_s: float) -> tuple[float, float]:
    """(upload seconds, seconds from the upload's response to the report)."""
    started = time.perf_counter()
    response = client.post("/lists", files={"file": ("leads.csv", content, "text/csv")})
    uploaded = time.perf_counter()
    if response.status_code != 202:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text}")
    list_id = response.json()["id"]
    while True:
        report = client.get(f"/lists/{list_id}/report")
        if report.status_code == 200:
            return uploaded - started, time.perf_counter() - uploaded
        if report.status_code != 409:
            raise RuntimeError(f"report: {report.status_code} {report.text}")
        status = client.get(f"/lists/{list_id}").json()
        if status["status"] == "failed":
            raise RuntimeError(f"the list failed: {status['error']}")
        time.sleep(poll_s)


def _baseline(path: Path) -> tuple[float, float]:
    """(bare clean_table seconds, warm; ``pilotdial clean`` wall seconds, fresh interpreter)."""
    from data_cleaning import CleaningOptions, clean_table

    clean_table(path, CleaningOptions()).consume()  # warm-up: imports and prefix tables
    started = time.perf_counter()
    clean_table(path, CleaningOptions()).consume()
    bare = time.perf_counter() - started
    out = path.parent
    command = [sys.executable, "-m", "core.cli", "clean", str(path), "--out", str(out / "c.csv")]
    command += ["--rejects", str(out / "r.csv"), "--report", str(out / "report.json")]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return bare, time.perf_counter() - started


def main() -> None:
    """Start the server, upload, time, compare with the bare cleaner."""
    from clean_1m import generate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--uploads", type=int, default=8)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pilotdial-small-") as temp:
        work = Path(temp)
        data_dir = work / "var"
        data_dir.mkdir()
        lists = []
        for seed in range(args.uploads):
            path = work / f"leads{seed}.csv"
            generate(path, work / f"dnc{seed}.txt", args.rows, seed)
            lists.append(path.read_bytes())
        key = _setup(data_dir)
        port = _free_port()
        server = _start_server(port, data_dir)
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=60.0,
            ) as client:
                _wait_healthy(client)
                timings = [_one_upload(client, content, args.poll_ms / 1000) for content in lists]
        finally:
            server.terminate()
            server.wait(30)
        bare, cli = _baseline(work / "leads0.csv")
    first_upload, first_report = timings[0]
    rest = timings[1:] or timings
    uploads = [u for u, _ in rest]
    reports = [r for _, r in rest]
    median = statistics.median(reports)
    print(f"rows per list      : {args.rows:,}, {args.uploads} uploads, poll {args.poll_ms} ms")
    print(f"first upload       : upload {first_upload:.3f} s, to report {first_report:.3f} s")
    print(
        f"later uploads      : upload median {statistics.median(uploads):.3f} s; to report "
        f"median {median:.3f} s, max {max(reports):.3f} s"
    )
    print(f"baseline clean     : {bare:.3f} s (clean_table, warm, in process)")
    print(f"baseline cli       : {cli:.3f} s (pilotdial clean, fresh interpreter)")
    print(
        f"ratio              : to-report median / bare clean = {median / bare:.1f}x; "
        f"target < 1 s: {'met' if max(reports) < 1.0 and first_report < 1.0 else 'NOT met'}"
    )
    print(f"machine            : {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
