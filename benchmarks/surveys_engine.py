"""Survey engine throughput: expression evaluation and whole interviews (figures + baseline)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from surveys.engine import InterviewEngine, InterviewStatus
from surveys.expressions import EvalContext, evaluate, parse
from surveys.quotas import InMemoryQuotaCounter
from surveys.schema import load_questionnaire

N = 50_000
text = "${age} >= 18 and (selected(${f}, 'b') or string-length(${t}) > 3)"
values = {"age": 30, "f": ["a", "b"], "t": "hello"}
tree = parse(text)
ctx = EvalContext(values=values)


def baseline(v: dict) -> bool:
    return v["age"] >= 18 and ("b" in v["f"] or len(v["t"]) > 3)


t0 = time.perf_counter()
for _ in range(N):
    baseline(values)
base = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(N):
    evaluate(tree, ctx)
ours = time.perf_counter() - t0
t0 = time.perf_counter()
for i in range(2000):
    parse.__wrapped__(text + " " * (i % 7))  # type: ignore[attr-defined]
parse_time = (time.perf_counter() - t0) / 2000
print(
    f"evaluate: {N / ours:,.0f}/s; plain-Python baseline {N / base:,.0f}/s; "
    f"ratio {ours / base:.1f}x"
)
print(f"parse (uncached): {parse_time * 1e6:,.0f} µs per expression")

q = load_questionnaire(Path("surveys/samples/customer_satisfaction.yaml"))
engine = InterviewEngine(q)
now = datetime(2026, 1, 1, tzinfo=UTC)
counter = InMemoryQuotaCounter()
answers = {
    "consent": "1",
    "used_recently": "1",
    "age": 40,
    "satisfaction": "2",
    "nps": 3,
    "reasons": ["price"],
    "channel": "web",
    "improve": "x",
}
M = 300
t0 = time.perf_counter()
for i in range(M):
    s = engine.start(
        interview_id=str(i),
        respondent_key=str(i),
        now=now,
        attributes={"customer_name": "a", "region": f"r{i % 50}", "product": "p"},
        quota_counter=counter,
    )
    while s.current is not None:
        s = engine.answer(s, s.current, answers.get(s.current), quota_counter=counter)
    s = engine.complete(s, quota_counter=counter)
    assert s.status == InterviewStatus.COMPLETED
    s.model_dump(mode="json")
full = (time.perf_counter() - t0) / M
print(f"full 10-question interview incl. JSON dump: {full * 1e3:.2f} ms ({1 / full:,.0f}/s)")
