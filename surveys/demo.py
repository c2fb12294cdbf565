"""The surveys part of ``pilotdial demo``: the sample questionnaire run through the API."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from core.demo import DemoContext, say

__all__ = ["SAMPLE_QUESTIONNAIRE", "answer_for", "step_survey"]

SAMPLE_QUESTIONNAIRE = Path(__file__).parent / "samples" / "customer_satisfaction.yaml"
REGIONS = ("north", "south", "east", "west")


def answer_for(question: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A plausible respondent's answer to the current question (for the demo's interviews)."""
    kind = question["type"]
    plain = [o["value"] for o in question.get("options", []) if not o.get("special")]
    if kind == "note":
        return {}
    if kind == "single_choice":
        if question["name"] in {"consent", "used_recently"}:
            return {"value": "1" if rng.random() < 0.85 else "2"}
        return {"value": rng.choice(plain)}
    if kind == "multiple_choice":
        picks = rng.sample([v for v in plain if v != "other"], k=min(2, len(plain) - 1))
        return {"value": picks}
    if kind in {"integer", "decimal"}:
        low, high = question.get("min") or 0, question.get("max") or 100
        return {"value": rng.randint(int(max(low, 16)), int(min(high, 80)))}
    if kind == "rating":
        return {"value": rng.randint(int(question.get("min") or 0), int(question.get("max") or 10))}
    return {"value": rng.choice(["服務很好", "Faster answers please", "價格太貴"])}


def step_survey(ctx: DemoContext) -> None:
    """Import and publish the bilingual questionnaire, run interviews, show results and rates."""
    draft: dict[str, Any] = ctx.call(
        "POST",
        "/questionnaires/import",
        expect=201,
        files={"file": ("customer_satisfaction.yaml", SAMPLE_QUESTIONNAIRE.read_bytes())},
    )
    version: dict[str, Any] = ctx.call("POST", f"/questionnaire-versions/{draft['id']}/publish")
    say(f"  questionnaire {draft['questionnaire_id']} version {version['version']} published")
    rng = random.Random(11)
    statuses: Counter[str] = Counter()
    interviews = 12 if ctx.quick else 40
    first_label = ""
    for i in range(interviews):
        language = "zh-Hant" if i % 2 == 0 else "en"
        state: dict[str, Any] = ctx.call(
            "POST",
            f"/questionnaire-versions/{version['id']}/interviews",
            expect=201,
            json={
                "call_id": f"demo-call-{i}",
                "language": language,
                "respondent_key": f"demo-{i}",
                "attributes": {
                    "customer_name": f"客戶{i:03d}",
                    "region": rng.choice(REGIONS),
                    "product": "智慧電表",
                },
            },
        )
        if i == 0:
            first_label = state["question"]["label"]
        while state.get("question") is not None and state.get("status") == "in_progress":
            question = state["question"]
            body = {"question": question["name"], **answer_for(question, rng)}
            state = ctx.call("POST", f"/interviews/{state['id']}/answer", json=body)
        if state.get("status") == "in_progress" and state.get("awaiting_completion"):
            state = ctx.call("POST", f"/interviews/{state['id']}/complete")
        statuses[state["status"]] += 1
    say(f"  first greeting, piped from the lead: {first_label[:70]}")
    say(f"  {interviews} interviews (zh-Hant and en): {dict(statuses)}")
    frequencies = ctx.call(
        "GET",
        f"/questionnaire-versions/{version['id']}/results/frequencies",
        params={"question": "satisfaction", "language": "en"},
    )
    table = frequencies[0] if isinstance(frequencies, list) else frequencies
    rows = table.get("rows", []) if isinstance(table, dict) else []
    shown = ", ".join(f"{r.get('label')}: {r.get('count')}" for r in rows if r.get("count"))
    say(f"  satisfaction among completes: {shown}")
    # Outcome rates from real case dispositions: the pilot's leads, each with the AAPOR code
    # of its last disposition (a lead never dialed is 3.11, not attempted).
    headers = ctx.state["operator_headers"]
    campaign_id = ctx.state["campaign_id"]
    codes = {
        d["code"]: d["aapor_code"]
        for d in ctx.call("GET", f"/campaigns/{campaign_id}/dispositions", headers=headers)
    }
    page = ctx.call(
        "GET",
        f"/campaigns/{campaign_id}/leads",
        headers=headers,
        params={"batch_id": ctx.state["pilot_batch_id"], "limit": 1000},
    )
    dispositions: Counter[str] = Counter(
        codes.get(lead["last_disposition"] or "", "3.11") or "3.11" for lead in page["leads"]
    )
    rates = ctx.call("POST", "/surveys/aapor-rates", json={"dispositions": dict(dispositions)})
    say(f"  the pilot's cases by AAPOR final disposition: {dict(sorted(dispositions.items()))}")
    say(
        f"  AAPOR rates of the pilot: RR1 {rates['RR1']:.3f}, RR3 "
        f"{rates['RR3']:.3f}, COOP1 {rates['COOP1']:.3f}, CON1 {rates['CON1']:.3f} "
        f"(e = {rates['e']:.3f}, {rates['e_method']})"
    )
