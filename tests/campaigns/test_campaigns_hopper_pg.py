"""The hopper on real PostgreSQL: concurrent workers, lease expiry, late completions, pausing."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from campaign_builders import make_campaign, make_client, make_list, run_campaign
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.exceptions import CampaignNotDialing, LeaseExpired
from campaigns.hopper import (
    AttemptOutcome,
    NumberSuppressed,
    complete_attempt,
    lease_leads,
    record_attempt_start,
    release_idle_leases,
    release_lease,
)
from campaigns.models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignLead,
    CampaignStatus,
    LeadState,
    SuppressionEntry,
)
from campaigns.service import transition_campaign

pytestmark = pytest.mark.postgres

T0 = datetime(2025, 3, 3, 4, 0, tzinfo=UTC)  # Monday 12:00 in Shanghai


def _setup(engine: Engine, leads: int, **settings: object) -> uuid.UUID:
    with Session(engine, expire_on_commit=False) as s:
        client_id = make_client(s)
        lead_list, _ = make_list(s, client_id, leads)
        campaign = make_campaign(s, client_id, [lead_list.id], **settings)
        run_campaign(s, campaign)
        s.commit()
        return campaign.id


def test_two_concurrent_workers_never_lease_the_same_lead_and_lose_none(
    pg_engine: Engine,
) -> None:
    campaign_id = _setup(pg_engine, 300)
    leased: dict[str, list[uuid.UUID]] = {"w1": [], "w2": []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            barrier.wait()
            while True:
                with Session(pg_engine, expire_on_commit=False) as s:
                    batch = lease_leads(
                        session=s, campaign_id=campaign_id, now=T0, limit=7, worker_id=name
                    )
                    s.commit()
                if not batch:
                    return
                leased[name].extend(lease.lead_id for lease in batch)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in leased]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    together = leased["w1"] + leased["w2"]
    assert len(together) == len(set(together)), "a lead was leased twice"
    with Session(pg_engine, expire_on_commit=False) as s:
        all_leads = set(
            s.exec(select(CampaignLead.lead_id).where(CampaignLead.campaign_id == campaign_id))
        )
        states = Counter(s.exec(select(CampaignLead.state)).all())
    assert set(together) == all_leads, "a lead was never leased"
    assert states == {LeadState.in_progress: 300}
    # both workers really worked concurrently on the same campaign
    assert leased["w1"]
    assert leased["w2"]


def test_expired_lease_returns_the_lead_and_a_late_completion_is_rejected(
    pg_engine: Engine,
) -> None:
    campaign_id = _setup(pg_engine, 1)
    with Session(pg_engine, expire_on_commit=False) as s:
        (lease,) = lease_leads(
            session=s, campaign_id=campaign_id, now=T0, limit=5, worker_id="w1", lease_seconds=60
        )
        attempt, created = record_attempt_start(
            session=s, lease_token=lease.lease_token, idempotency_key="k1", now=T0
        )
        s.commit()
        attempt_id = attempt.id
    assert created

    with Session(pg_engine, expire_on_commit=False) as s:  # lease still live: nothing to hand out
        assert (
            lease_leads(session=s, campaign_id=campaign_id, now=T0, limit=5, worker_id="w2") == []
        )
        s.commit()

    later = T0 + timedelta(minutes=45)  # lease expired at +60 s; unreported dial waits 30 min
    with Session(pg_engine, expire_on_commit=False) as s:
        (again,) = lease_leads(
            session=s, campaign_id=campaign_id, now=later, limit=5, worker_id="w2"
        )
        s.commit()
    assert again.lead_id == lease.lead_id
    assert again.lease_token != lease.lease_token
    assert again.attempt_no == 2  # the unreported dial counted once

    outcome = AttemptOutcome(disposition="no_answer", ended_at=T0 + timedelta(seconds=40))
    with Session(pg_engine, expire_on_commit=False) as s, pytest.raises(LeaseExpired):
        complete_attempt(session=s, attempt_id=attempt_id, outcome=outcome, now=later)
    with Session(pg_engine, expire_on_commit=False) as s:
        row = s.exec(select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)).one()
        old = s.get(CallAttempt, attempt_id)
    assert old is not None
    assert old.status is AttemptStatus.expired
    assert old.disposition is None
    assert row.attempts == 1
    assert row.disposition_counts == {}


def test_completion_after_expiry_but_before_release_is_rejected(pg_engine: Engine) -> None:
    campaign_id = _setup(pg_engine, 1)
    with Session(pg_engine, expire_on_commit=False) as s:
        (lease,) = lease_leads(
            session=s, campaign_id=campaign_id, now=T0, limit=1, worker_id="w", lease_seconds=30
        )
        attempt, _ = record_attempt_start(
            session=s, lease_token=lease.lease_token, idempotency_key="k", now=T0
        )
        s.commit()
    outcome = AttemptOutcome(disposition="busy", ended_at=T0 + timedelta(seconds=20))
    with Session(pg_engine, expire_on_commit=False) as s, pytest.raises(LeaseExpired):
        complete_attempt(
            session=s, attempt_id=attempt.id, outcome=outcome, now=T0 + timedelta(seconds=31)
        )


def test_idempotent_start_and_complete_never_double_count(pg_engine: Engine) -> None:
    campaign_id = _setup(pg_engine, 1)
    with Session(pg_engine, expire_on_commit=False) as s:
        (lease,) = lease_leads(session=s, campaign_id=campaign_id, now=T0, limit=1, worker_id="w")
        first, created1 = record_attempt_start(
            session=s, lease_token=lease.lease_token, idempotency_key="dial-1", now=T0
        )
        s.commit()
    with Session(pg_engine, expire_on_commit=False) as s:
        second, created2 = record_attempt_start(
            session=s, lease_token=lease.lease_token, idempotency_key="dial-1", now=T0
        )
        s.commit()
    assert created1
    assert not created2
    assert first.id == second.id
    outcome = AttemptOutcome(
        disposition="no_answer", ended_at=T0 + timedelta(seconds=30), hangup_cause="NO_ANSWER"
    )
    now = T0 + timedelta(seconds=31)
    for _ in range(2):  # a retried completion is accepted once, applied once
        with Session(pg_engine, expire_on_commit=False) as s:
            complete_attempt(session=s, attempt_id=first.id, outcome=outcome, now=now)
            s.commit()
    with Session(pg_engine, expire_on_commit=False) as s:
        row = s.exec(select(CampaignLead)).one()
        attempts = s.exec(select(CallAttempt)).all()
    assert len(attempts) == 1
    assert attempts[0].status is AttemptStatus.finished
    assert row.attempts == 1
    assert row.disposition_counts == {"no_answer": 1}
    assert row.state is LeadState.scheduled
    assert row.next_attempt_at == T0 + timedelta(seconds=30) + timedelta(minutes=120)


def test_pause_stops_new_dials_at_once_but_calls_in_progress_finish(pg_engine: Engine) -> None:
    campaign_id = _setup(pg_engine, 3)
    with Session(pg_engine, expire_on_commit=False) as s:
        leases = lease_leads(session=s, campaign_id=campaign_id, now=T0, limit=3, worker_id="w")
        started, _ = record_attempt_start(
            session=s, lease_token=leases[0].lease_token, idempotency_key="a", now=T0
        )
        s.commit()
    with Session(pg_engine, expire_on_commit=False) as s:
        from campaigns.models import Campaign

        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        transition_campaign(session=s, campaign=campaign, target=CampaignStatus.paused)
        s.commit()
    with Session(pg_engine, expire_on_commit=False) as s, pytest.raises(CampaignNotDialing):
        record_attempt_start(
            session=s, lease_token=leases[1].lease_token, idempotency_key="b", now=T0
        )
    with Session(pg_engine, expire_on_commit=False) as s:
        assert lease_leads(session=s, campaign_id=campaign_id, now=T0, limit=3, worker_id="w") == []
        outcome = AttemptOutcome(disposition="sale", ended_at=T0 + timedelta(minutes=3), talk_s=150)
        done = complete_attempt(
            session=s, attempt_id=started.id, outcome=outcome, now=T0 + timedelta(minutes=1)
        )
        release_lease(session=s, lease_token=leases[2].lease_token, now=T0)
        s.commit()
    assert done.converted
    assert done.status is AttemptStatus.finished


def test_dnc_request_suppresses_the_number_in_every_campaign_of_the_client(
    pg_engine: Engine,
) -> None:
    with Session(pg_engine, expire_on_commit=False) as s:
        client_id = make_client(s)
        list_a, _ = make_list(s, client_id, numbers=["+8613800000001", "+8613800000002"])
        list_b, _ = make_list(s, client_id, numbers=["+8613800000001"])
        a = run_campaign(s, make_campaign(s, client_id, [list_a.id], name="A"))
        b = run_campaign(s, make_campaign(s, client_id, [list_b.id], name="B"))
        other_client = make_client(s, "Other")
        list_c, _ = make_list(s, other_client, numbers=["+8613800000001"])
        c = run_campaign(s, make_campaign(s, other_client, [list_c.id], name="C"))
        s.commit()
        a_id, b_id, c_id = a.id, b.id, c.id
    with Session(pg_engine, expire_on_commit=False) as s:
        leases = lease_leads(session=s, campaign_id=a_id, now=T0, limit=5, worker_id="w")
        b_lease = lease_leads(session=s, campaign_id=b_id, now=T0, limit=5, worker_id="w")
        target = next(x for x in leases if x.phone_e164 == "+8613800000001")
        attempt, _ = record_attempt_start(
            session=s, lease_token=target.lease_token, idempotency_key="x", now=T0
        )
        complete_attempt(
            session=s,
            attempt_id=attempt.id,
            outcome=AttemptOutcome(disposition="dnc_request", ended_at=T0 + timedelta(seconds=20)),
            now=T0 + timedelta(seconds=21),
        )
        s.commit()
    with Session(pg_engine, expire_on_commit=False) as s:
        assert s.exec(select(SuppressionEntry)).one().source == "dnc_request"
        # the other campaign's live lease of that number may no longer dial
        with pytest.raises(NumberSuppressed):
            record_attempt_start(
                session=s, lease_token=b_lease[0].lease_token, idempotency_key="y", now=T0
            )
    with Session(pg_engine, expire_on_commit=False) as s:
        later = T0 + timedelta(hours=1)
        assert lease_leads(session=s, campaign_id=b_id, now=later, limit=5, worker_id="w") == []
        row_b = s.exec(select(CampaignLead).where(CampaignLead.campaign_id == b_id)).one()
        # another client's campaign is not affected by this client's do-not-call list
        assert len(lease_leads(session=s, campaign_id=c_id, now=later, limit=5, worker_id="w")) == 1
        s.commit()
    assert row_b.state is LeadState.final
    assert row_b.final_disposition == "suppressed"


def test_a_stopping_pacer_gives_back_only_its_idle_leases(pg_engine: Engine) -> None:
    campaign_id = _setup(pg_engine, 5)
    with Session(pg_engine, expire_on_commit=False) as s:
        mine = lease_leads(session=s, campaign_id=campaign_id, now=T0, limit=3, worker_id="w")
        theirs = lease_leads(session=s, campaign_id=campaign_id, now=T0, limit=1, worker_id="v")
        record_attempt_start(
            session=s, lease_token=mine[0].lease_token, idempotency_key="in-call", now=T0
        )
        s.commit()
    with Session(pg_engine, expire_on_commit=False) as s:
        released = release_idle_leases(session=s, campaign_id=campaign_id, worker_id="w", now=T0)
        s.commit()
    assert released == 2  # the lead with a call on it stays leased until the call ends
    with Session(pg_engine, expire_on_commit=False) as s:
        states = {
            row.lead_id: (row.state, row.lease_owner)
            for row in s.exec(select(CampaignLead).where(CampaignLead.campaign_id == campaign_id))
        }
    assert states[mine[0].lead_id] == (LeadState.in_progress, "w")
    assert all(states[lease.lead_id][1] is None for lease in mine[1:])
    assert all(states[lease.lead_id][0] is not LeadState.in_progress for lease in mine[1:])
    assert states[theirs[0].lead_id] == (LeadState.in_progress, "v")  # another pacer's lease


def _dial(s: Session, campaign_id: uuid.UUID, now: datetime, disposition: str) -> str:
    """Lease the one callable lead, dial it, end the call; returns the number dialed."""
    (lease,) = lease_leads(session=s, campaign_id=campaign_id, now=now, limit=1, worker_id="w")
    attempt, _ = record_attempt_start(
        session=s, lease_token=lease.lease_token, idempotency_key=f"k-{now}", now=now
    )
    complete_attempt(
        session=s,
        attempt_id=attempt.id,
        outcome=AttemptOutcome(disposition=disposition, ended_at=now + timedelta(seconds=5)),
        now=now + timedelta(seconds=6),
    )
    return attempt.number_dialed


def test_a_non_working_number_moves_the_lead_on_to_its_next_alternate(pg_engine: Engine) -> None:
    from campaigns.compliance import suppress_number

    with Session(pg_engine, expire_on_commit=False) as s:
        client_id = make_client(s)
        lead_list, [lead] = make_list(s, client_id, numbers=["+8613800000001"])
        # a Beijing landline, one on the do-not-call list, and a Hong Kong mobile
        lead.alternate_phones = ["+861012345678", "+8613900000002", "+85291234567"]
        s.add(lead)
        suppress_number(session=s, client_id=client_id, e164="+861012345678", source="api")
        campaign = make_campaign(s, client_id, [lead_list.id], max_attempts=4)
        run_campaign(s, campaign)
        s.commit()
        campaign_id = campaign.id
    with Session(pg_engine, expire_on_commit=False) as s:
        assert _dial(s, campaign_id, T0, "invalid_number") == "+8613800000001"
        s.commit()
        row = s.exec(select(CampaignLead)).one()
        # not closed: the next alternate (the suppressed landline skipped), callable at once
        assert row.state is LeadState.scheduled
        assert row.phone_e164 == "+8613900000002"
        assert row.phone_index == 2
        assert _dial(s, campaign_id, T0 + timedelta(minutes=1), "no_answer") == "+8613900000002"
        s.commit()
    with Session(pg_engine, expire_on_commit=False) as s:
        later = T0 + timedelta(hours=3)
        assert _dial(s, campaign_id, later, "fax_modem") == "+8613900000002"
        s.commit()
        row = s.exec(select(CampaignLead)).one()
        assert row.phone_e164 == "+85291234567"
        assert row.zones_key == "Asia/Hong_Kong"  # its own calling window from now on
        assert _dial(s, campaign_id, later + timedelta(minutes=1), "invalid_number") == (
            "+85291234567"
        )
        s.commit()
        row = s.exec(select(CampaignLead)).one()
        assert row.state is LeadState.final  # no number left
        assert row.final_disposition == "invalid_number"
        dialed = [
            a.number_dialed for a in s.exec(select(CallAttempt).order_by(CallAttempt.dialed_at))
        ]
    assert dialed == ["+8613800000001", "+8613900000002", "+8613900000002", "+85291234567"]
    assert "+861012345678" not in dialed  # never a suppressed number


def test_the_attempt_limit_is_the_leads_not_each_numbers(pg_engine: Engine) -> None:
    with Session(pg_engine, expire_on_commit=False) as s:
        client_id = make_client(s)
        lead_list, [lead] = make_list(s, client_id, numbers=["+8613800000001"])
        lead.alternate_phones = ["+8613900000002"]
        s.add(lead)
        campaign = make_campaign(s, client_id, [lead_list.id], max_attempts=1)
        run_campaign(s, campaign)
        s.commit()
        campaign_id = campaign.id
    with Session(pg_engine, expire_on_commit=False) as s:
        _dial(s, campaign_id, T0, "invalid_number")
        s.commit()
        row = s.exec(select(CampaignLead)).one()
        assert row.state is LeadState.final
        assert row.phone_e164 == "+8613800000001"
        later = T0 + timedelta(hours=1)
        assert (
            lease_leads(session=s, campaign_id=campaign_id, now=later, limit=5, worker_id="w") == []
        )


def test_a_lead_leased_by_hand_follows_every_rule_the_hopper_does(pg_engine: Engine) -> None:
    """lease_lead (an agent dials a lead): refused saying why, nothing leased, for a lead
    not due, out of attempts, or closed by a do-not-call number; a callable one is leased
    once, and then no worker gets it."""
    from campaigns.compliance import suppress_number
    from campaigns.hopper import LeadNotCallable, lease_lead

    campaign_id = _setup(pg_engine, 4, max_attempts=2)
    with Session(pg_engine, expire_on_commit=False) as s:
        rows = list(s.exec(select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)))
        later, spent, blocked, ok = rows
        later.next_attempt_at = T0 + timedelta(hours=1)
        later.state = LeadState.scheduled
        spent.attempts = 2
        suppress_number(
            session=s, client_id=blocked.client_id, e164=blocked.phone_e164, source="api"
        )
        for row in (later, spent):
            s.add(row)
        s.commit()

    def take(row: CampaignLead) -> object:
        with Session(pg_engine, expire_on_commit=False) as s:
            try:
                return lease_lead(
                    session=s,
                    campaign_id=campaign_id,
                    campaign_lead_id=row.id,
                    now=T0,
                    worker_id="agent",
                )
            except LeadNotCallable as exc:
                return str(exc)
            finally:
                s.commit()

    assert "not due before" in str(take(later))
    assert "all 2 attempts" in str(take(spent))
    assert "do-not-call" in str(take(blocked))
    lease = take(ok)
    assert not isinstance(lease, str)
    assert "in_progress" in str(take(ok))  # leased once
    with Session(pg_engine, expire_on_commit=False) as s:
        others = lease_leads(session=s, campaign_id=campaign_id, now=T0, limit=10, worker_id="w")
        s.commit()
        by_id = {
            r.id: r
            for r in s.exec(select(CampaignLead).where(CampaignLead.campaign_id == campaign_id))
        }
    assert {o.campaign_lead_id for o in others}.isdisjoint({ok.id, later.id, spent.id})
    assert by_id[blocked.id].state is LeadState.final  # the refusal's closing was kept
    assert by_id[later.id].lease_token is None
    assert by_id[spent.id].lease_token is None

    with Session(pg_engine, expire_on_commit=False) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        transition_campaign(session=s, campaign=campaign, target=CampaignStatus.paused)
        s.commit()
    assert "not dialing" in str(take(later))
