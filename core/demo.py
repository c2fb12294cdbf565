"""``pilotdial demo``: the whole product once, on the embedded default, saying what it does.

It migrates the embedded database, creates a demo client and an API key, starts the real API
server in this process on a free local port, and drives every capability through HTTP exactly
as a client would. Each domain adds its steps to ``STEPS``.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import typer
from sqlmodel import Session

from core.errors import PilotdialError
from core.models import Client

__all__ = ["DemoContext", "fresh_demo_client", "run_demo"]


@dataclass
class DemoContext:
    """What the steps share: the HTTP client with the demo key, and what earlier steps made."""

    http: httpx.Client
    client_id: str
    quick: bool
    state: dict[str, Any] = field(default_factory=dict)

    def call(self, method: str, url: str, expect: int = 200, **kwargs: Any) -> Any:
        """Call the API; anything but ``expect`` stops the demo with the problem's detail."""
        response = self.http.request(method, url, **kwargs)
        if response.status_code != expect:
            raise PilotdialError(
                f"demo step failed: {method} {url} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        content_type = response.headers.get("content-type", "")
        return response.json() if "json" in content_type else response

    def wait_job(self, job_id: str, timeout_s: float = 600.0) -> dict[str, Any]:
        """Poll a background job until it ends; fail the demo if it failed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.call("GET", f"/jobs/{job_id}")
            if job["status"] == "succeeded":
                return job
            if job["status"] == "failed":
                raise PilotdialError(f"demo job {job['kind']} failed: {job['error']}")
            time.sleep(0.2)
        raise PilotdialError(f"demo job {job_id} did not finish in {timeout_s:.0f} s")


def say(message: str) -> None:
    typer.echo(message)


def _demo_slug(run: int) -> str:
    return "demo-client" if run == 1 else f"demo-client-{run}"


def fresh_demo_client(session: Session) -> Client:
    """A new client for this run, so a second run starts as clean as the first.

    Earlier runs' clients keep their data (readable with their keys); the new one has no
    survey, do-not-call list or campaign yet, so every step creates them again.
    """
    from sqlmodel import col, select

    from core.admin import create_client

    slugs = set(session.exec(select(Client.slug).where(col(Client.slug).startswith("demo-"))))
    run = next(n for n in itertools.count(1) if _demo_slug(n) not in slugs)
    name = "Demo Client Ltd" if run == 1 else f"Demo Client Ltd (run {run})"
    return create_client(session=session, name=name, slug=_demo_slug(run))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def step_health(ctx: DemoContext) -> None:
    ready = ctx.call("GET", "/readyz")
    say(f"  readyz: {ready['checks']}")
    clients = ctx.call("GET", "/clients")
    say(f"  the demo key acts for: {', '.join(c['name'] for c in clients)}")


def step_summary_job(ctx: DemoContext) -> None:
    job = ctx.call("POST", "/jobs/summary", expect=202)
    done = ctx.wait_job(job["id"])
    counts = ", ".join(f"{k}={v}" for k, v in done["result"]["counts"].items() if v)
    say(f"  background job {done['kind']} ran in process: {counts}")


STEPS: list[tuple[str, str | Callable[[DemoContext], None]]] = [
    ("API up, database and schema ready", step_health),
    ("A background job through the queue", step_summary_job),
    (
        "A messy lead list cleaned (數據清洗) and a do-not-call list",
        "campaigns.demo:step_upload_list",
    ),
    ("A campaign with a stratified pilot batch (小量試呼)", "campaigns.demo:step_campaign_pilot"),
    ("The pilot dialed by the elected pacer, simulated agents", "dialer.demo:step_dial_pilot"),
    ("Feasibility report and price quote from the pilot", "feasibility.demo:step_feasibility"),
    ("A bilingual survey run through the interview API", "surveys.demo:step_survey"),
    ("Contract reports and the month's statement (對帳單)", "reports.demo:step_reports"),
]


def _step(target: str | Callable[[DemoContext], None]) -> Callable[[DemoContext], None]:
    if callable(target):
        return target
    from core.queue import _resolve

    return _resolve(target)


def create_demo_users(session: Session, client: Client) -> list[tuple[str, str, str]]:
    """One console user per role for the demo client; returns (user name, role, password).

    The password is new for each run and printed once; the agent user gets a seat of its own.
    """
    import secrets

    from core.users import UserRole, create_user
    from dialer.agent_service import create_agent
    from dialer.models import AgentCreate

    password = "demo-" + secrets.token_urlsafe(9)
    suffix = client.slug.removeprefix("demo-client").lstrip("-")
    made: list[tuple[str, str, str]] = []
    for role in (
        UserRole.admin, UserRole.operator, UserRole.sales, UserRole.researcher, UserRole.agent,
        UserRole.client_user,
    ):  # fmt: skip
        username = f"demo-{role.value.replace('_', '-')}" + (f"-{suffix}" if suffix else "")
        agent_id = None
        if role is UserRole.agent:
            seat = create_agent(
                session=session,
                agent_in=AgentCreate(
                    agent_code=f"D{secrets.token_hex(3).upper()}",
                    name="演示坐席",
                    skill_groups=["demo"],
                    client_ids=[client.id],
                ),
            )
            agent_id = seat.id
        create_user(
            session=session,
            username=username,
            password=password,
            role=role,
            client_ids=[client.id],
            agent_id=agent_id,
        )
        made.append((username, role.value, password))
    return made


def run_demo(*, quick: bool = False, serve: bool = False) -> None:
    """Run every demo step against a live in-process API server."""
    import uvicorn

    from api.main import create_app
    from core.admin import issue_key
    from core.db import get_engine, system_session
    from core.migrate import current_revision, upgrade
    from core.models import Role
    from core.settings import get_settings

    settings = get_settings()
    url = settings.sqlalchemy_url()
    say(
        f"Pilotdial demo — database {url.render_as_string(hide_password=True)}, "
        f"jobs {'in process' if settings.embedded else 'on ' + str(settings.redis_url)}"
    )
    upgrade(url)
    say(f"1. database migrated to revision {current_revision(get_engine(url))}")

    with system_session() as session:
        client = fresh_demo_client(session)
        _key, plain_key = issue_key(
            session=session, name="demo key", role=Role.client, client_refs=[str(client.id)]
        )
        client_id = str(client.id)
    say(f"2. client {client.name} ({client_id}) with a new API key pd_{plain_key.split('_')[1]}_…")

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise PilotdialError("the demo API server did not start")
        time.sleep(0.05)
    say(f"3. API listening on http://127.0.0.1:{port} (OpenAPI at /docs)")
    base = f"http://127.0.0.1:{port}"

    headers = {"Authorization": f"Bearer {plain_key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as http:
        ctx = DemoContext(http=http, client_id=client_id, quick=quick)
        try:
            for number, (title, step) in enumerate(STEPS, start=4):
                say(f"{number}. {title}")
                _step(step)(ctx)
            with system_session() as session:
                demo_client = session.get(Client, client.id)
                assert demo_client is not None
                users = create_demo_users(session, demo_client)
            say("Demo finished: everything above went through the public API.")
            say(f"Console: {base}/console/  (API docs: {base}/docs)")
            for username, role, password in users:
                say(f"  {role:<12} {username:<28} password {password}")
            if serve:
                say("Serving until Ctrl-C …")
                thread.join()
            else:
                say("(the server stops now; `pilotdial demo --serve` keeps it running)")
        except KeyboardInterrupt:
            say("stopping")
        finally:
            server.should_exit = True
            thread.join(timeout=10)
