"""Compliance invariants of the hopper, property-tested over generated lists, clocks, time zones
and outcome sequences (hypothesis), each example on a fresh in-memory database.

The oracle below re-derives every rule independently of ``campaigns.rules``: local time per
zone from ``zoneinfo``, windows as minutes since midnight, retry delays from the default
disposition table. Invariants: no lease outside the lead's local window or on a local holiday,
none while the number is suppressed (a do-not-call request suppresses it client-wide at once),
none beyond the attempt limit, none before the retry delay, none of a number abandoned under
Ofcom mode within 72 hours, and no lead closed with a final disposition is leased again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from campaign_builders import ALWAYS_OPEN, make_campaign, make_client, make_list, run_campaign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from campaigns.compliance import number_hash
from campaigns.dispositions import DEFAULT_DISPOSITIONS
from campaigns.hopper import AttemptOutcome, complete_attempt, lease_leads, record_attempt_start
from campaigns.models import GlobalSuppressionEntry, SuppressionEntry
from campaigns.rules import WEEKDAYS
from core.migrate import import_all_models

import_all_models()

ZONE_CHOICES = [
    ["Asia/Shanghai"],
    ["America/New_York"],
    ["Europe/London"],
    ["Australia/Lord_Howe"],
    ["America/New_York", "America/Los_Angeles"],
    [],
    ["Not/AZone"],
]
FALLBACKS = ["Asia/Shanghai", "Europe/London", "America/Chicago"]
POOL = [f"+8613900000{i:03d}" for i in range(3)]
DISPOSITIONS = {d["code"]: d for d in DEFAULT_DISPOSITIONS}
OUTCOME_CODES = sorted(DISPOSITIONS)
# Retryable outcomes are drawn more often, so retry delays and limits are exercised a lot.
RETRY_CODES = sorted(c for c, spec in DISPOSITIONS.items() if not spec.get("final"))
outcome_st = st.one_of(
    st.sampled_from(RETRY_CODES), st.sampled_from(RETRY_CODES), st.sampled_from(OUTCOME_CODES)
)

windows_st = st.fixed_dictionaries(
    {
        day: st.one_of(
            st.just([]),
            st.tuples(st.integers(0, 11), st.integers(13, 24)).map(
                lambda t: [[f"{t[0]:02d}:00", f"{t[1]:02d}:00"]]
            ),
            st.tuples(st.integers(0, 11), st.integers(13, 24)).map(
                lambda t: [[f"{t[0]:02d}:00", f"{t[1]:02d}:00"]]
            ),
        )
        for day in WEEKDAYS
    }
)
#: Minutes the clock advances: mostly within a day (retries), sometimes days (Ofcom, callbacks).
advance_st = st.one_of(
    st.integers(1, 90), st.integers(1, 90), st.integers(100, 1500), st.integers(4200, 4400)
)


@dataclass
class Scenario:
    zones: list[list[str]]
    numbers_a: list[str]
    numbers_b: list[str]
    fallback: str
    windows: dict[str, list[list[str]]]
    holidays: list[date]
    max_attempts: int
    ofcom: bool
    suppressed: set[str]
    global_suppressed: set[str]
    start: datetime
    steps: list[tuple[int, int, int, list[str]]] = field(default_factory=list)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(1, 6))
    start = draw(
        st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2025, 12, 20))
    ).replace(tzinfo=UTC)
    holidays = draw(
        st.lists(st.integers(0, 14).map(lambda d: (start + timedelta(days=d)).date()), max_size=3)
    )
    steps = draw(
        st.lists(
            st.tuples(
                advance_st,
                st.integers(0, 1),  # campaign A or B
                st.integers(1, 4),  # lease limit
                st.lists(outcome_st, min_size=4, max_size=4),
            ),
            min_size=8,
            max_size=40,
        )
    )
    return Scenario(
        zones=draw(st.lists(st.sampled_from(ZONE_CHOICES), min_size=n, max_size=n)),
        numbers_a=draw(st.lists(st.sampled_from(POOL), min_size=n, max_size=n)),
        numbers_b=draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=4)),
        fallback=draw(st.sampled_from(FALLBACKS)),
        windows=draw(st.one_of(st.just(ALWAYS_OPEN), windows_st)),
        holidays=holidays,
        max_attempts=draw(st.integers(1, 4)),
        ofcom=draw(st.booleans()),
        suppressed=set(draw(st.lists(st.sampled_from(POOL), max_size=2))),
        global_suppressed=set(draw(st.lists(st.sampled_from(POOL), max_size=1))),
        start=start,
        steps=steps,
    )


def _inside_window(now: datetime, zone: str, sc: Scenario) -> bool:
    local = now.astimezone(ZoneInfo(zone))
    if local.date() in sc.holidays:
        return False
    minute = local.hour * 60 + local.minute
    for start, end in sc.windows[WEEKDAYS[local.weekday()]]:
        lo = int(start[:2]) * 60
        hi = int(end[:2]) * 60
        if lo <= minute < hi:
            return True
    return False


def _zones_for(raw: list[str], fallback: str) -> list[str]:
    valid = [z for z in raw if z in {"Asia/Shanghai", "America/New_York", "Europe/London",
                                     "Australia/Lord_Howe", "America/Los_Angeles"}]  # fmt: skip
    return valid if len(valid) == 1 else sorted({*valid, fallback})


@dataclass
class LeadModel:
    number: str
    zones: list[str]
    attempts: int = 0
    final: bool = False
    earliest: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)


@given(sc=scenarios())
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hopper_never_breaks_a_compliance_rule(sc: Scenario) -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as s:
        client_id = make_client(s)
        zones_b = [sc.zones[i % len(sc.zones)] for i in range(len(sc.numbers_b))]
        list_a, leads_a = make_list(s, client_id, numbers=sc.numbers_a, zones=sc.zones)
        list_b, leads_b = make_list(s, client_id, numbers=sc.numbers_b, zones=zones_b)
        common = {
            "calling_windows": sc.windows,
            "holidays": [d.isoformat() for d in sc.holidays],
            "fallback_timezone": sc.fallback,
            "max_attempts": sc.max_attempts,
            "abandon_window": "ofcom_24h" if sc.ofcom else "fcc_30d",
        }
        campaigns = [
            run_campaign(s, make_campaign(s, client_id, [list_a.id], name="A", **common)),
            run_campaign(s, make_campaign(s, client_id, [list_b.id], name="B", **common)),
        ]
        for number in sc.suppressed:
            s.add(SuppressionEntry(client_id=client_id, number_hash=number_hash(number),
                                   masked="x", source="upload"))  # fmt: skip
        for number in sc.global_suppressed:
            s.add(GlobalSuppressionEntry(number_hash=number_hash(number), masked="x",
                                         source="cli"))  # fmt: skip
        s.commit()

        model: dict[uuid.UUID, LeadModel] = {}
        for lead, raw in [
            *zip(leads_a, sc.zones, strict=True),
            *zip(leads_b, zones_b, strict=True),
        ]:
            model[lead.id] = LeadModel(number=lead.phone_e164, zones=_zones_for(raw, sc.fallback))
        dnc: set[str] = set(sc.suppressed | sc.global_suppressed)
        abandoned_at: dict[str, datetime] = {}

        now = sc.start
        for advance, which, limit, outcomes in sc.steps:
            now += timedelta(minutes=advance)
            leases = lease_leads(
                session=s, campaign_id=campaigns[which].id, now=now, limit=limit, worker_id="w"
            )
            for lease, code in zip(leases, outcomes, strict=False):
                lead = model[lease.lead_id]
                where = f"lead {lease.phone_e164} at {now.isoformat()}"
                for zone in lead.zones:
                    assert _inside_window(now, zone, sc), f"{where}: outside window in {zone}"
                assert lead.number not in dnc, f"{where}: number is suppressed"
                assert not lead.final, f"{where}: lead was final"
                assert lead.attempts < sc.max_attempts, f"{where}: beyond the attempt limit"
                assert lead.earliest is None or now >= lead.earliest, f"{where}: before retry"
                if sc.ofcom and lead.number in abandoned_at:
                    gap = now - abandoned_at[lead.number]
                    assert gap >= timedelta(hours=72), f"{where}: abandoned {gap} ago (Ofcom)"

                attempt, _ = record_attempt_start(
                    session=s, lease_token=lease.lease_token, idempotency_key=f"{uuid.uuid4()}",
                    now=now,
                )  # fmt: skip
                ended = now + timedelta(seconds=30)
                complete_attempt(
                    session=s,
                    attempt_id=attempt.id,
                    outcome=AttemptOutcome(disposition=code, ended_at=ended),
                    now=ended,
                )
                spec = DISPOSITIONS[code]
                lead.attempts += 1
                lead.counts[code] = lead.counts.get(code, 0) + 1
                if spec.get("dnc"):
                    dnc.add(lead.number)
                if spec.get("abandoned"):
                    abandoned_at[lead.number] = ended
                per_max = spec.get("max_attempts")
                if (
                    spec.get("final")
                    or lead.attempts >= sc.max_attempts
                    or (per_max is not None and lead.counts[code] >= per_max)
                ):
                    lead.final = True
                delay = (
                    timedelta(hours=24)
                    if spec.get("callback")
                    else timedelta(minutes=spec.get("retry_delay_minutes") or 0)
                )
                lead.earliest = ended + delay
            for lease in leases[len(outcomes) :]:
                from campaigns.hopper import release_lease

                release_lease(session=s, lease_token=lease.lease_token, now=now)
            s.commit()
    engine.dispose()
