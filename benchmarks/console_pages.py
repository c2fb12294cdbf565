"""Benchmark: server time of the console's busiest pages with 200 agents on the floor.

Builds, on a fresh PostgreSQL database (dropped afterwards), one client with a campaign in
pilot (``--leads`` leads in its batch, skill group ``survey``) and ``--agents`` agent seats
serving it in every state. Then, in the same run and the same in-process app (no network),
times the median of ``--repeat`` requests after a warm-up of:

- ``GET /healthz``: the app's fixed cost per request (baseline);
- ``GET /campaigns/{id}/live``: the live snapshot alone, through the API;
- ``GET /console/campaigns/{id}``: the operator's campaign page with the live panel and every
  agent listed (the page the issue asks to render in < 200 ms);
- ``GET /console/campaigns``: the campaigns list with today's figures (``--campaigns`` more
  campaigns in pilot, 100 leads each, so the list's cost per dialing campaign shows);
- ``GET /console/agents``: the operator's agents page, every agent listed;
- ``GET /console/agent``: an agent's screen.

Run: ``python benchmarks/console_pages.py [--agents 200] [--leads 5000] [--campaigns 0]
[--repeat 20]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from scratch_db import ADMIN_URL, scratch_database

PASSWORD = "benchmark password"


def _median_ms(run: Callable[[], Any], repeat: int) -> float:
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = run()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    return statistics.median(times)


def _populate(*, agents: int, leads: int, campaigns: int = 0) -> dict[str, Any]:
    from campaigns.models import (
        BatchCreate,
        CampaignCreate,
        CampaignStatus,
        Lead,
        LeadList,
        ListStatus,
    )
    from campaigns.service import create_batch, create_campaign, transition_campaign
    from core.admin import create_client
    from core.db import system_session
    from core.users import UserRole, create_user
    from dialer.agent_service import GoNotReady, GoReady, SignIn, apply_agent_action, create_agent
    from dialer.models import AgentCreate

    always = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    with system_session() as session:
        client = create_client(session=session, name="Bench", slug=f"bench-{uuid.uuid4().hex[:6]}")
        lead_list = LeadList(
            client_id=client.id, name="l", filename="l.csv", status=ListStatus.ready
        )
        session.add(lead_list)
        session.flush()
        session.add_all(
            Lead(client_id=client.id, list_id=lead_list.id, row_number=i + 2,
                 phone_e164=f"+86138{i:08d}", phone_timezones=["Asia/Shanghai"])
            for i in range(leads)
        )  # fmt: skip
        session.flush()
        campaign = create_campaign(
            session=session,
            client_id=client.id,
            campaign_in=CampaignCreate(
                name="Bench campaign", list_ids=[lead_list.id], skill_group="survey",
                calling_windows=always, fallback_timezone="Asia/Shanghai",
            ),
        )  # fmt: skip
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        for n in range(campaigns):
            extra = create_campaign(
                session=session,
                client_id=client.id,
                campaign_in=CampaignCreate(
                    name=f"Bench campaign {n + 2}", list_ids=[lead_list.id], skill_group="survey",
                    calling_windows=always, fallback_timezone="Asia/Shanghai",
                ),
            )  # fmt: skip
            size = min(100, leads)
            create_batch(session=session, campaign=extra, batch_in=BatchCreate(size=size, seed=n))
            transition_campaign(session=session, campaign=extra, target=CampaignStatus.piloting)
        plans = [[], [SignIn(), GoReady()], [SignIn(), GoNotReady(reason="break")]]
        first_agent = None
        for i in range(agents):
            seat = create_agent(
                session=session,
                agent_in=AgentCreate(agent_code=f"B{i:04d}", name=f"坐席{i}",
                                     skill_groups=["survey"], client_ids=[client.id]),
            )  # fmt: skip
            first_agent = first_agent or seat.id
            for command in plans[i % 3]:
                apply_agent_action(session=session, agent_id=seat.id, command=command)
        create_user(session=session, username="bench-op", password=PASSWORD,
                    role=UserRole.operator, client_ids=[client.id])  # fmt: skip
        create_user(session=session, username="bench-agent", password=PASSWORD,
                    role=UserRole.agent, client_ids=[client.id], agent_id=first_agent)  # fmt: skip
        return {"campaign_id": str(campaign.id), "client_id": client.id}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=ADMIN_URL)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--campaigns", type=int, default=0, help="more campaigns in pilot")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with scratch_database(args.database_url, prefix="pilotdial_bench_console") as url:
        os.environ.update(PILOTDIAL_DATABASE_URL=url, PILOTDIAL_SECRET_KEY="b" * 48)
        os.environ.pop("PILOTDIAL_REDIS_URL", None)
        from fastapi.testclient import TestClient

        from api.main import create_app
        from core.admin import issue_key
        from core.db import dispose_engines, system_session
        from core.migrate import upgrade
        from core.models import Role
        from core.settings import get_settings

        get_settings.cache_clear()
        upgrade(url)
        ids = _populate(agents=args.agents, leads=args.leads, campaigns=args.campaigns)
        with system_session() as session:
            _key, plain = issue_key(session=session, name="bench", role=Role.operator,
                                    client_refs=[str(ids["client_id"])])  # fmt: skip
        app = create_app()
        with TestClient(app) as http, TestClient(app) as agent_http:
            http.post("/console/login", data={"username": "bench-op", "password": PASSWORD})
            agent_http.post(
                "/console/login", data={"username": "bench-agent", "password": PASSWORD}
            )
            campaign = ids["campaign_id"]
            page = http.get(f"/console/campaigns/{campaign}")
            assert page.text.count("<tr><td>B0") == args.agents, "every agent is on the page"
            key = {"Authorization": f"Bearer {plain}"}
            figures = {
                "GET /healthz (baseline)": _median_ms(lambda: http.get("/healthz"), args.repeat),
                "GET /campaigns/{id}/live": _median_ms(
                    lambda: http.get(f"/campaigns/{campaign}/live", headers=key), args.repeat
                ),
                f"console campaign page ({args.agents} agents)": _median_ms(
                    lambda: http.get(f"/console/campaigns/{campaign}"), args.repeat
                ),
                f"console campaigns list ({args.campaigns + 1} dialing)": _median_ms(
                    lambda: http.get("/console/campaigns"), args.repeat
                ),
                f"console agents page ({args.agents} agents)": _median_ms(
                    lambda: http.get("/console/agents"), args.repeat
                ),
                "console agent screen": _median_ms(
                    lambda: agent_http.get("/console/agent"), args.repeat
                ),
            }
        base = figures["GET /healthz (baseline)"]
        print(f"console pages, {args.agents} agents, {args.leads} leads, median of {args.repeat}:")
        for label, ms in figures.items():
            print(f"  {label:<40} {ms:8.1f} ms   {ms / base:6.1f}x baseline")
        page_ms = figures[f"console campaign page ({args.agents} agents)"]
        verdict = "under" if page_ms < 200 else "OVER"
        print(f"campaign page: {page_ms:.1f} ms, {verdict} the 200 ms target")
        dispose_engines()


if __name__ == "__main__":
    main()
