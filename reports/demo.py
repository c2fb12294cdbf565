"""The reports part of ``pilotdial demo``: the pilot's service-level report and the month's
statement (對帳單), through the API, written under the data directory for a look."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.demo import DemoContext, say

__all__ = ["step_reports"]


def step_reports(ctx: DemoContext) -> None:
    """Generate the pilot day's service-level report (HTML and XLSX) and a draft statement."""
    from core.settings import get_settings
    from dialer.demo import demo_clock_start

    campaign_id = ctx.state["campaign_id"]
    operator = ctx.state["operator_headers"]
    pilot_day = demo_clock_start(datetime.now(UTC)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    out = get_settings().data_dir / "demo-reports"
    out.mkdir(parents=True, exist_ok=True)
    for fmt in ("html", "xlsx"):
        report: dict[str, Any] = ctx.call(
            "POST",
            "/reports",
            expect=201,
            json={
                "kind": "service_level",
                "period": "day",
                "start": pilot_day.isoformat(),
                "interval": "hour",
                "campaign_id": campaign_id,
                "fmt": fmt,
            },
        )
        payload = ctx.call("GET", report["download"]).content
        (out / report["filename"]).write_bytes(payload)
        rows = report["summary"]["sections"]["service_level"]
        say(f"  {report['filename']}: {rows} hourly rows, {len(payload):,} bytes → {out}")
    ctx.call(
        "PUT",
        f"/campaigns/{campaign_id}/contract",
        headers=operator,
        json={"starts_on": pilot_day.replace(day=1).isoformat(), "agents": 6},
    )
    statement: dict[str, Any] = ctx.call(
        "POST",
        "/statements",
        expect=201,
        headers=operator,
        json={"month": pilot_day.isoformat(), "campaign_id": campaign_id},
    )
    lines = {line["key"]: line for line in statement["lines"]}
    valid = lines["valid_calls"]
    say(
        f"  statement {statement['month'][:7]} v{statement['version']} ({statement['status']}): "
        f"{valid['quantity']} valid calls × {valid['unit_price']} (ramp month "
        f"{statement['calculation']['ramp_month']}) = {statement['net']} + VAT "
        f"{statement['vat']} = {statement['total']} CNY; issue by {statement['issue_by']}, "
        f"due {statement['due_on']}"
    )
    page = ctx.call("GET", f"/statements/{statement['id']}/document").content
    (out / f"statement_{statement['month'][:7]}.html").write_bytes(page)
