"""The dialer part of ``pilotdial demo``: the pilot batch dialed by the elected pacer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.demo import DemoContext, say

__all__ = ["demo_clock_start", "step_dial_pilot"]


def demo_clock_start(today: datetime) -> datetime:
    """09:00 Beijing time on the next weekday: inside the default calling windows."""
    local = today.astimezone(ZoneInfo("Asia/Shanghai"))
    day = local.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    return start.astimezone(UTC)


def step_dial_pilot(ctx: DemoContext) -> None:
    """Dial the pilot batch through the simulated gateway with simulated agents."""
    campaign_id = ctx.state["campaign_id"]
    headers = ctx.state["operator_headers"]
    clock_start = demo_clock_start(datetime.now(UTC))
    job: dict[str, Any] = ctx.call(
        "POST",
        f"/campaigns/{campaign_id}/pacer",
        expect=202,
        headers=headers,
        json={
            "agents": 3 if ctx.quick else 6,
            "duration_s": 10 * 3600,
            "answer_probability": 0.35,
            "machine_probability": 0.1,
            "conversion_probability": 0.18,
            "seed": 7,
            "clock_start": clock_start.isoformat(),
        },
    )
    done = ctx.wait_job(job["id"], timeout_s=1200)
    result = done["result"]
    sim = result["simulation"]
    say(
        f"  pacer {result['pacer']} dialed {result['dials']} calls over a simulated day from "
        f"{clock_start:%Y-%m-%d %H:%M} UTC ({result['stopped_because']})"
    )
    say(
        f"  live answers {sim['live_answers']}, machines {sim['machine_answers']}, no answer "
        f"{sim['no_answers']}, busy {sim['busy']}, abandoned {sim['abandoned']} "
        f"({sim['abandon_rate']:.1%}), agent occupancy {sim['occupancy']:.0%}"
    )
    leads = ctx.call("GET", f"/campaigns/{campaign_id}/leads?limit=1", headers=headers)
    counts = leads.get("counts") if isinstance(leads, dict) else None
    if counts:
        say(f"  lead states after the pilot day: {counts}")
