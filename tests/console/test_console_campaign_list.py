"""The campaigns list: every dialing campaign's figures in grouped queries, the same as the
live panel's."""

from __future__ import annotations

import re
from typing import Any

from console_builders import make_user, running_campaign_with_calls, sign_in

from helpers import Tenant


def test_the_list_figures_are_the_live_snapshots(app: Any, alpha: Tenant, bravo: Tenant) -> None:
    from core.db import system_session, utcnow
    from dialer.live import list_figures, live_snapshot

    fcc = running_campaign_with_calls(alpha.client_id, connected=3, abandoned=1, name="FCC")
    # ended two days ago: inside the 30-day window, outside Ofcom's 24 hours
    old = running_campaign_with_calls(
        alpha.client_id, connected=2, abandoned=2, ended_ago_s=2 * 86400, name="旧",
        abandon_window="ofcom_24h",
    )  # fmt: skip
    other = running_campaign_with_calls(bravo.client_id, connected=1, abandoned=1, name="B")
    now = utcnow()
    from campaigns.models import Campaign

    with system_session() as session:
        campaigns = [session.get(Campaign, cid) for cid in (fcc, old, other)]
        figures = list_figures(session=session, campaigns=[c for c in campaigns if c], now=now)
        for campaign in campaigns:
            assert campaign is not None
            snapshot = live_snapshot(
                session=session, client_id=campaign.client_id, campaign_id=campaign.id, now=now,
                with_agent_list=False,
            )  # fmt: skip
            assert figures[campaign.id]["today"] == {
                k: snapshot["today"][k] for k in ("attempts", "answered", "valid_calls")
            }, campaign.name
            assert figures[campaign.id]["abandon"]["rate"] == snapshot["abandon"]["rate"]
    assert figures[fcc]["abandon"]["rate"] == 0.25
    assert figures[old]["abandon"]["rate"] is None  # nothing in the last 24 hours
    olga = sign_in(app.app, "olga", make_user("olga", "operator", [alpha.client_id], locale="en"))
    page = olga.http.get("/console/campaigns")
    row = re.search(rf'href="/console/campaigns/{fcc}">FCC</a>(.*?)</tr>', page.text, re.S)
    assert row
    assert re.findall(r'<td class="num">([^<]*)</td>', row.group(1)) == ["4", "4", "3", "25.0%"]
    assert str(other) not in page.text
