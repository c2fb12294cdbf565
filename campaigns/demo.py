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

__all__ = ["demo_list_csv", "step_campaign_pilot", "step_upload_list"]

CITIES = ("北京", "上海", "廣州", "深圳", "成都", "杭州")
PRODUCTS = ("basic", "premium")


def demo_list_csv(rows: int, seed: int = 7) -> bytes:
    """A messy GBK lead list: mixed phone formats, duplicates, junk, a formula cell."""
    import csv
    import io
    import random

    rng = random.Random(seed)
    full_width = str.maketrans("0123456789", "０１２３４５６７８９")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手機", "城市", "年齡", "產品"])
    # two customers who asked not to be called again (on the demo's do-not-call list)
    writer.writerow(["陳大文", "138 0013 8000", "北京", 44, "basic"])
    writer.writerow(["林小美", "+86 139-0013-9000", "上海", 31, "premium"])
    numbers: list[str] = []
    for i in range(rows):
        roll = rng.random()
        if numbers and roll < 0.08:
            raw = rng.choice(numbers)  # a duplicate in another format below
            digits = raw[-11:]
            raw = f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
        elif roll < 0.12:
            raw = rng.choice(["", "n/a", "12345", "無", "=1+2", "138-0000"])
        elif roll < 0.22:
            raw = f"0{rng.choice(['10', '21', '20', '755'])}-{rng.randint(20000000, 89999999)}"
        else:
            prefix = rng.choice(["138", "139", "150", "186", "137", "170", "158", "133"])
            raw = f"{prefix}{rng.randint(0, 99999999):08d}"
            style = rng.random()
            if style < 0.15:
                raw = "0086" + raw
            elif style < 0.3:
                raw = f"{raw[:3]}-{raw[3:7]}-{raw[7:]}"
            elif style < 0.4:
                raw = raw.translate(full_width)
            elif style < 0.45:
                raw = f"tel:+86{raw}"
            numbers.append(raw)
        writer.writerow(
            [f"客戶{i:05d}", raw, rng.choice(CITIES), rng.randint(20, 70), rng.choice(PRODUCTS)]
        )
    return out.getvalue().encode("gbk")


def step_upload_list(ctx: DemoContext) -> None:
    """Upload a messy list and a do-not-call list; show the cleaning report."""
    rows = 600 if ctx.quick else 3000
    content = demo_list_csv(rows)
    added = ctx.call(
        "POST",
        "/suppression",
        json={"numbers": ["138 0013 8000", "+86 139-0013-9000"], "reason": "demo opt-outs"},
    )
    say(f"  do-not-call list: {added['accepted']} numbers stored as keyed hashes")
    created: dict[str, Any] = ctx.call(
        "POST",
        "/lists",
        expect=202,
        files={"file": ("demo-leads.csv", content, "text/csv")},
        data={"name": "Demo leads (GBK, messy)"},
    )
    ctx.wait_job(created["job_id"])
    lead_list: dict[str, Any] = ctx.call("GET", f"/lists/{created['id']}")
    report = lead_list["report"]
    say(
        f"  {report['rows_in']} rows in ({report['encoding']}, phone column "
        f"{report['phone_column']!r}): {report['rows_out']} kept, {report['invalid']} invalid, "
        f"{report['duplicates']} duplicates, {report['dnc_suppressed']} on do-not-call"
    )
    say(f"  reasons: {report['by_reason']}; types: {report['by_type']}")
    ctx.state["list_id"] = lead_list["id"]
    ctx.state["list_kept_rows"] = report["rows_out"]


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
    ctx.state["operator_headers"] = headers
    ctx.state["campaign_id"] = campaign["id"]
    ctx.state["pilot_batch_id"] = batch["id"]
    strata = ", ".join(f"{k}: {v['sample']}/{v['population']}" for k, v in batch["strata"].items())
    say(
        f"  campaign {campaign['name']!r} ({campaign['id']}) piloting; pilot batch of "
        f"{batch['size']} leads, seed {batch['seed']}, by phone type ({strata})"
    )
