"""The campaigns part of ``pilotdial demo``: a campaign with a pilot batch from the demo list.

Wire it in ``core/demo.py`` with ``STEPS.append(("A campaign with a pilot batch",
step_campaign_pilot))`` after the list-upload step, which must leave the ready list's id in
``ctx.state["list_id"]``. Campaign setup is staff work, so the step issues an operator key for
the demo client (in process, like the demo's own client key) and calls the API with it.
"""

from __future__ import annotations

from typing import Any

from core.demo import DemoContext, say
from core.errors import PilotdialError

__all__ = ["step_campaign_pilot"]


def step_campaign_pilot(ctx: DemoContext) -> None:
    """Create a campaign on the demo list, draw a stratified pilot, start piloting."""
    from core.admin import issue_key
    from core.db import system_session
    from core.models import Role

    list_id = ctx.state.get("list_id")
    if not list_id:
        raise PilotdialError("demo: no cleaned list to build a campaign on (run the list step)")
    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="demo operator", role=Role.operator, client_refs=[ctx.client_id]
        )
    headers = {"Authorization": f"Bearer {plain}"}
    campaign: dict[str, Any] = ctx.call(
        "POST",
        "/campaigns",
        expect=201,
        headers=headers,
        json={"name": "Demo pilot", "kind": "sales", "list_ids": [list_id], "max_attempts": 5},
    )
    size = min(50 if ctx.quick else 200, int(ctx.state.get("list_kept_rows", 200)))
    batch: dict[str, Any] = ctx.call(
        "POST",
        f"/campaigns/{campaign['id']}/batches",
        expect=201,
        headers=headers,
        json={"kind": "pilot", "size": size, "stratify_by": "phone_type", "seed": 2025},
    )
    ctx.call(
        "POST",
        f"/campaigns/{campaign['id']}/transitions",
        headers=headers,
        json={"status": "piloting"},
    )
    ctx.state["campaign_id"] = campaign["id"]
    ctx.state["pilot_batch_id"] = batch["id"]
    strata = ", ".join(f"{k}: {v['sample']}/{v['population']}" for k, v in batch["strata"].items())
    say(
        f"  campaign {campaign['name']!r} ({campaign['id']}) piloting; pilot batch of "
        f"{batch['size']} leads, seed {batch['seed']}, by phone type ({strata})"
    )
