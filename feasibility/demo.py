"""The feasibility part of ``pilotdial demo``: the pilot's results turned into a quote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.demo import DemoContext, say
from core.settings import get_settings

__all__ = ["step_feasibility"]


def step_feasibility(ctx: DemoContext) -> None:
    """Build the feasibility report and quote from the campaign's pilot, save the HTML."""
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role

    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="demo sales", role=Role.sales, client_refs=[ctx.client_id]
        )
    headers = {"Authorization": f"Bearer {plain}"}
    campaign_id = ctx.state["campaign_id"]
    run: dict[str, Any] = ctx.call(
        "POST",
        f"/campaigns/{campaign_id}/feasibility",
        expect=202,
        headers=headers,
        json={
            "targets": {"conversions": 40, "deadline_days": 10, "seats": 8},
            "seed": 2025,
        },
    )
    ctx.wait_job(run["job_id"], timeout_s=900)
    done: dict[str, Any] = ctx.call("GET", f"/feasibility-reports/{run['id']}", headers=headers)
    report = done["report"]
    pilot = report["pilot"]
    say(
        f"  pilot: {pilot['leads']} leads, {pilot['dials']} dials, {pilot['contacts']} contacts, "
        f"{pilot['conversions']} conversions"
    )
    for key in ("contact_rate", "conversion_rate"):
        rate = report[key]
        label = key.replace("_", " ")
        interval = f"{rate['low']:.1%}–{rate['high']:.1%}"
        say(f"  {label}: {rate['estimate']:.1%} ({interval})")
    projection = report["projection"]
    conversions = projection["conversions"]
    say(
        f"  rest of the list ({projection['leads']} leads): conversions P10/P50/P90 "
        f"{conversions['p10']:.0f} / {conversions['p50']:.0f} / {conversions['p90']:.0f}; "
        f"recommended max attempts {report['recommended_max_attempts']}"
    )
    prices = report["quote"]["per_valid_call"]
    say(
        f"  contract price per valid call (before {report['quote']['vat_rate']:.0%} VAT): "
        f"month 1 {prices['month_1']}, month 2 {prices['month_2']}, steady {prices['steady']}, "
        f"holiday {prices['holiday']} CNY"
    )
    say(f"  verdict: {report['verdict']} — " + "; ".join(report["reasons"][:3]))
    html = ctx.call("GET", f"/feasibility-reports/{run['id']}/report.html", headers=headers)
    out = Path(get_settings().data_dir) / "demo" / "feasibility-report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html.text, encoding="utf-8")
    say(f"  the HTML report with charts for the client: {out}")
