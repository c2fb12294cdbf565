"""The one dial path (dialer.dialing) on real PostgreSQL: the compliance rules every loop gets.

Attempt row before originate, the do-not-call list re-checked at dial time, never twice,
never past the attempt limit, only inside the calling window, nothing new once the campaign
is paused, leases kept alive while calls run and a completion on a lost lease refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from campaign_builders import make_campaign, make_client, make_list, run_campaign
from sqlmodel import select

from campaigns.compliance import suppress_number
from campaigns.hopper import AttemptOutcome
from campaigns.models import CallAttempt, CampaignLead, CampaignStatus, LeadState
from campaigns.service import transition_campaign
from core.db import tenant_session
from dialer.dialing import DialPath

T0 = datetime(2025, 3, 3, 4, 0, tzinfo=UTC)  # Monday 12:00 in Shanghai


@dataclass
class Counts:
    dials: int = 0
    completed: int = 0
    late_completions: int = 0
    suppressed_at_dial: int = 0


@pytest.fixture
def world(pg_url: str, pg_engine: Any, configure: Any) -> Any:
    configure(database_url=pg_url)

    def make(leads: int = 3, **settings: Any) -> tuple[uuid.UUID, uuid.UUID]:
        from core.db import system_session

        with system_session() as session:
            client_id = make_client(session)
        with tenant_session([client_id]) as session:
            lead_list, _ = make_list(session, client_id, leads)
            campaign = make_campaign(session, client_id, [lead_list.id], **settings)
            run_campaign(session, campaign, pilot_size=1)
            return client_id, campaign.id

    return make


def _path(client_id: uuid.UUID, campaign_id: uuid.UUID, **kw: Any) -> tuple[DialPath, Counts]:
    counts = Counts()
    path = DialPath(
        client_id=client_id,
        campaign_id=campaign_id,
        worker_id="pacer-1",
        lease_seconds=60,
        counters=counts,
        **kw,
    )
    return path, counts


def _attempts(client_id: uuid.UUID, campaign_id: uuid.UUID) -> list[CallAttempt]:
    with tenant_session([client_id]) as session:
        return list(session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)))


def _no_answer(at: datetime) -> AttemptOutcome:
    return AttemptOutcome(disposition="no_answer", ended_at=at)


def test_the_attempt_row_is_committed_before_the_originate(world: Any) -> None:
    client_id, campaign_id = world(3)
    seen_in_another_session: list[bool] = []

    def originate(attempt_id: str) -> None:  # the journal runs right before originating
        with tenant_session([client_id]) as session:
            row = session.get(CallAttempt, uuid.UUID(attempt_id))
            seen_in_another_session.append(row is not None and row.status.value == "started")

    path, counts = _path(client_id, campaign_id, journal=originate)
    started = path.start(path.lease(3, T0), T0)
    assert len(started) == 3
    assert seen_in_another_session == [True, True, True]
    assert counts.dials == 3
    assert set(path.in_flight) == {s.attempt_id for s in started}


def test_a_number_suppressed_after_its_lease_is_not_dialed(world: Any) -> None:
    client_id, campaign_id = world(2)
    path, counts = _path(client_id, campaign_id)
    leases = path.lease(2, T0)
    with tenant_session([client_id]) as session:
        suppress_number(
            session=session, client_id=client_id, e164=leases[0].phone_e164, source="manual"
        )
    started = path.start(leases, T0)
    assert [s.lease.lead_id for s in started] == [leases[1].lead_id]
    assert counts.suppressed_at_dial == 1
    assert counts.dials == 1
    assert {a.number_dialed for a in _attempts(client_id, campaign_id)} == {leases[1].phone_e164}
    with tenant_session([client_id]) as session:
        row = session.exec(
            select(CampaignLead).where(CampaignLead.lead_id == leases[0].lead_id)
        ).one()
        assert row.state is not LeadState.in_progress  # the lease went back


def test_the_same_lease_is_never_dialed_twice(world: Any) -> None:
    client_id, campaign_id = world(1)
    path, counts = _path(client_id, campaign_id)
    leases = path.lease(1, T0)
    assert len(path.start(leases, T0)) == 1
    assert path.start(leases, T0) == []  # a retried start: nothing written, nothing to dial
    assert counts.dials == 1
    assert len(_attempts(client_id, campaign_id)) == 1


def test_never_past_the_attempt_limit(world: Any) -> None:
    client_id, campaign_id = world(1, max_attempts=2)
    path, counts = _path(client_id, campaign_id)
    at = T0
    for _ in range(2):
        [started] = path.start(path.lease(1, at), at)
        assert path.complete(started.attempt_id, _no_answer(at + timedelta(seconds=20)), at)
        at += timedelta(days=1)
    assert path.lease(1, at + timedelta(days=30)) == []
    assert counts.dials == 2
    assert counts.completed == 2
    assert [a.attempt_no for a in _attempts(client_id, campaign_id)] == [1, 2]


def test_only_inside_the_calling_window(world: Any) -> None:
    weekdays = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    client_id, campaign_id = world(1, calling_windows=weekdays)
    path, _ = _path(client_id, campaign_id)
    night = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    assert path.lease(1, night) == []
    assert len(path.lease(1, T0)) == 1


def test_a_paused_campaign_starts_nothing_and_gives_the_leases_back(world: Any) -> None:
    client_id, campaign_id = world(2)
    path, counts = _path(client_id, campaign_id)
    leases = path.lease(2, T0)
    with tenant_session([client_id]) as session:
        from campaigns.models import Campaign

        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.paused)
    assert path.start(leases, T0) == []
    assert path.not_dialing
    assert counts.dials == 0
    assert path.lease(2, T0) == []
    with tenant_session([client_id]) as session:
        leased = session.exec(
            select(CampaignLead).where(
                CampaignLead.campaign_id == campaign_id,
                CampaignLead.state == LeadState.in_progress,
            )
        ).all()
    assert leased == []


def test_leases_renewed_while_the_call_runs_and_a_lost_lease_refuses_the_completion(
    world: Any,
) -> None:
    client_id, campaign_id = world(2)
    path, counts = _path(client_id, campaign_id)
    first, second = path.start(path.lease(2, T0), T0)
    # both calls are renewed every 30 s for 5 minutes (leases last 60 s)
    for step in range(1, 11):
        path.renew(T0 + timedelta(seconds=30 * step))
    ended = T0 + timedelta(seconds=310)
    assert path.complete(first.attempt_id, _no_answer(ended), ended)
    # a lease that ran out (a stalled pacer) is lost: the renewal drops it, and its
    # completion is refused (counted late), never applied to a lead someone else may lease
    late = ended + timedelta(minutes=5)
    with tenant_session([client_id]) as session:
        row = session.exec(
            select(CampaignLead).where(CampaignLead.lease_token == second.lease.lease_token)
        ).one()
        row.lease_expires_at = T0 + timedelta(seconds=60)
        session.add(row)
    path.renew(late)
    assert second.attempt_id not in path.in_flight
    assert not path.complete(second.attempt_id, _no_answer(late), late)
    assert counts.completed == 1
    assert counts.late_completions == 1


class _LeftCallsGateway:
    """Only what ``end_left_calls`` uses: a gateway that ends (or fails to end) left calls."""

    def __init__(self, answer: list[bool] | Exception) -> None:
        self.answer = answer
        self.asked: list[list[str]] = []

    def end_left_calls(self, handles: Any, *, now: float) -> list[bool]:
        self.asked.append(list(handles))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("gateway_fails", [False, True])
def test_the_calls_a_dead_pacer_left_up_are_ended_once_before_the_next_dials(
    world: Any, gateway_fails: bool
) -> None:
    from campaigns.models import AttemptStatus, CallAttempt, Lead
    from dialer.pacer import LEFT_CALL_CAUSE, end_left_calls

    client_id, campaign_id = world(leads=3)
    with tenant_session([client_id]) as session:
        leads = session.exec(select(Lead).where(Lead.client_id == client_id)).all()
        rows = [
            # answered and left up by the dead pacer; one it ended itself; one still ringing
            CallAttempt(client_id=client_id, campaign_id=campaign_id, lead_id=leads[0].id,
                        attempt_no=1, idempotency_key="a", number_dialed="+8613900000001",
                        gateway_handle="left-1"),
            CallAttempt(client_id=client_id, campaign_id=campaign_id, lead_id=leads[1].id,
                        attempt_no=1, idempotency_key="b", number_dialed="+8613900000002",
                        status=AttemptStatus.finished, disposition="sale", gateway_handle="x"),
            CallAttempt(client_id=client_id, campaign_id=campaign_id, lead_id=leads[2].id,
                        attempt_no=1, idempotency_key="c", number_dialed="+8613900000003",
                        status=AttemptStatus.expired, gateway_handle="left-3"),
        ]  # fmt: skip
        session.add_all(rows)
        ids = [row.id for row in rows]
    gateway = _LeftCallsGateway(RuntimeError("trunk gone") if gateway_fails else [True, False])

    ended = end_left_calls(client_id=client_id, campaign_id=campaign_id, gateway=gateway)  # type: ignore[arg-type]

    assert sorted(gateway.asked[0]) == ["left-1", "left-3"]  # never a finished attempt's
    with tenant_session([client_id]) as session:
        after = {i: session.get(CallAttempt, i) for i in ids}
    left, finished, ringing = (after[i] for i in ids)
    assert left is not None
    assert finished is not None
    assert ringing is not None
    assert left.gateway_handle is None  # tried once, then dropped, whatever the gateway said
    assert ringing.gateway_handle is None
    assert finished.gateway_handle == "x"  # not touched
    # the gateway's answers are in the order it was asked: the first handle's call ended
    ended_causes = dict(zip(gateway.asked[0], [True, False], strict=True))
    if gateway_fails:
        assert ended == 0
        assert left.hangup_cause is None
    else:
        assert ended == 1
        by_handle = {"left-1": left, "left-3": ringing}
        for handle, over in ended_causes.items():
            assert (by_handle[handle].hangup_cause == LEFT_CALL_CAUSE) is over
        assert left.status is AttemptStatus.started  # the outcome stays unknown: it expires
    # a second takeover finds nothing left to end
    assert end_left_calls(client_id=client_id, campaign_id=campaign_id, gateway=gateway) == 0  # type: ignore[arg-type]
    assert len(gateway.asked) == 1
