"""The one dial-attempt path: lease → attempt row → do-not-call re-check → originate →
completion, shared by every dial loop (:mod:`dialer.pacer` for simulated agents,
:mod:`dialer.attended` for the real seats).

The compliance-critical rules live here and in :mod:`campaigns.hopper`, nowhere else:

- calling windows, holidays and the attempt limit: only leads callable *now* are leased
  (:func:`campaigns.hopper.lease_leads`);
- the attempt row is committed before the call is originated (:meth:`DialPath.start` returns
  only attempts already written; the caller originates after), so a crash never loses a dial;
- the do-not-call list is checked again at dial time, after the lease: a number suppressed in
  between is not dialed and its lease goes back;
- never twice: the attempt's idempotency key is the lease and its attempt number, so a
  retried start of the same lease writes nothing and dials nothing;
- a campaign paused or stopped meanwhile starts no new call (``not_dialing``);
- leases of calls in progress are renewed until they end (one policy: a lease found expired
  is dropped, its completion will be refused; any other failure is retried at the next
  renewal), and a completion on an expired lease is refused and counted as late;
- a failed call keeps its cause's meaning (:func:`failure_disposition`): an invalid number
  is final (``invalid_number``), congestion and unknown failures are retried
  (``network_failure``), a decline is ``declined``; a trunk that refused us stops the run
  (:func:`trunk_refused_reason`) and its attempt is ``network_failure`` (retried once the
  trunk is fixed).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from campaigns.exceptions import CampaignNotDialing, LeaseExpired
from campaigns.hopper import (
    AttemptOutcome,
    LeadNotCallable,
    Lease,
    NumberSuppressed,
    complete_attempt,
    lease_lead,
    lease_leads,
    record_answer,
    record_attempt_start,
    release_lease,
    renew_lease,
)
from core.db import tenant_session
from dialer.gateway import FailureCause

__all__ = [
    "FAILURE_DISPOSITIONS",
    "TRUNK_REFUSED_PREFIX",
    "DialCounters",
    "DialPath",
    "StartedAttempt",
    "failure_disposition",
    "trunk_refused_reason",
]

#: A failed call's cause -> the disposition code its attempt gets.
FAILURE_DISPOSITIONS: dict[FailureCause, str] = {
    FailureCause.INVALID_NUMBER: "invalid_number",  # final: the lead is closed
    FailureCause.CONGESTION: "network_failure",  # retried after its delay
    FailureCause.UNKNOWN: "network_failure",
    FailureCause.DECLINED: "declined",
    # the call never left our trunk: retried, not the number's fault
    FailureCause.TRUNK_REFUSED: "network_failure",
}
FALLBACK_FAILURE = "network_failure"


def failure_disposition(cause: FailureCause | str | None, codes: Collection[str]) -> str:
    """The disposition of a call that failed with ``cause``, among the campaign's ``codes``
    (a campaign without the code, e.g. ``declined`` in an old vocabulary, gets
    ``network_failure``: retried, never lost)."""
    try:
        code = FAILURE_DISPOSITIONS[FailureCause(cause or FailureCause.UNKNOWN)]
    except ValueError:
        code = FALLBACK_FAILURE
    return code if code in codes else FALLBACK_FAILURE


TRUNK_REFUSED_PREFIX = "trunk refused:"


def trunk_refused_reason(detail: str) -> str:
    """Why a run stopped when the trunk refused a call, in the operator's words (starts
    with :data:`TRUNK_REFUSED_PREFIX`)."""
    said = detail.strip() or "no reason given"
    return f"{TRUNK_REFUSED_PREFIX} {said}; check the trunk credentials"


log = logging.getLogger(__name__)

#: A database that is away (connection refused or cut, pool exhausted): worth waiting for.
DATABASE_AWAY = (OperationalError, PoolTimeout)
#: Wall seconds between tries of a completion while the database is away (then give up).
COMPLETE_RETRY_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


class DialCounters(Protocol):
    """Where a loop counts what its dial path did."""

    dials: int
    completed: int
    late_completions: int
    suppressed_at_dial: int


@dataclass(frozen=True)
class StartedAttempt:
    """A lease whose attempt row is committed: the caller may originate it now."""

    lease: Lease
    attempt_id: uuid.UUID


class DialPath:
    """One campaign's dial attempts, from lease to completion, for one pacer."""

    def __init__(
        self,
        *,
        client_id: uuid.UUID,
        campaign_id: uuid.UUID,
        worker_id: str,
        lease_seconds: int,
        counters: DialCounters,
        journal: Callable[[str], object] | None = None,
        skill_group: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.campaign_id = campaign_id
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.counters = counters
        self.journal = journal
        self.skill_group = skill_group
        #: attempt id -> lease token of every call started and not completed
        self.in_flight: dict[uuid.UUID, uuid.UUID] = {}
        #: the campaign stopped dialing (paused, stopped) when a call was about to start
        self.not_dialing = False
        #: leases held with no call yet (a lead an agent previews), renewed with the calls'
        self.held: set[uuid.UUID] = set()

    def lease(self, n: int, now: datetime) -> list[Lease]:
        """Up to ``n`` leads callable at ``now`` (windows, holidays, attempt limit applied)."""
        if n <= 0 or self.not_dialing:
            return []
        try:
            with tenant_session([self.client_id]) as session:
                return lease_leads(
                    session=session,
                    campaign_id=self.campaign_id,
                    now=now,
                    limit=n,
                    worker_id=self.worker_id,
                    lease_seconds=self.lease_seconds,
                )
        except DATABASE_AWAY:  # nothing was leased: dial nothing now, ask again next tick
            log.warning("database away: campaign %s leases nothing this tick", self.campaign_id)
            return []

    def lease_one(self, campaign_lead_id: uuid.UUID, now: datetime) -> Lease:
        """Lease one given lead for a manual call (:func:`campaigns.hopper.lease_lead`: the
        same windows, attempt limit and do-not-call rules); raises LeadNotCallable."""
        with tenant_session([self.client_id]) as session:
            try:
                return lease_lead(
                    session=session,
                    campaign_id=self.campaign_id,
                    campaign_lead_id=campaign_lead_id,
                    now=now,
                    worker_id=self.worker_id,
                    lease_seconds=self.lease_seconds,
                )
            except LeadNotCallable as exc:
                refused = exc
        # committed: what the refusal changed stays (a do-not-call number closes its lead)
        raise refused

    def start(self, leases: list[Lease], now: datetime) -> list[StartedAttempt]:
        """Write each lease's attempt row (committed) after re-checking the do-not-call list;
        returns those to originate. Suppressed leads are given back and counted."""
        started: list[StartedAttempt] = []
        for lease in leases:
            self.held.discard(lease.lease_token)
            key = f"{lease.lease_token}:{lease.attempt_no}"
            try:
                with tenant_session([self.client_id]) as session:
                    attempt, created = record_attempt_start(
                        session=session,
                        lease_token=lease.lease_token,
                        idempotency_key=key,
                        now=now,
                        skill_group=self.skill_group,
                    )
            except NumberSuppressed:
                self.counters.suppressed_at_dial += 1
                self.release(lease.lease_token, now)
                continue
            except CampaignNotDialing:
                self.not_dialing = True
                self.release(lease.lease_token, now)
                continue
            except DATABASE_AWAY:
                # no attempt row, so no call: the lease runs out and the lead goes back
                log.warning("database away: lease %s not dialed", lease.lease_token)
                continue
            if not created:
                continue  # this lease was already dialed: never twice
            self.in_flight[attempt.id] = lease.lease_token
            if self.journal is not None:
                try:
                    self.journal(str(attempt.id))
                except Exception:  # the attempt row is the record; a journal blip stops nothing
                    log.exception("could not journal the originate of attempt %s", attempt.id)
            self.counters.dials += 1
            started.append(StartedAttempt(lease=lease, attempt_id=attempt.id))
        return started

    def hold(self, lease: Lease) -> None:
        """Keep ``lease`` alive (renewed with the calls') until it is started or released."""
        self.held.add(lease.lease_token)

    def release(self, lease_token: uuid.UUID, now: datetime) -> None:
        """Give a lease back without dialing it."""
        self.held.discard(lease_token)
        with tenant_session([self.client_id]) as session:
            release_lease(session=session, lease_token=lease_token, now=now)

    def renew(self, now: datetime) -> None:
        """Keep the leases of calls in progress, and of leads held for them, alive."""
        if not self.in_flight and not self.held:
            return
        owners: dict[uuid.UUID, uuid.UUID | None] = dict.fromkeys(self.held)
        owners.update({token: attempt_id for attempt_id, token in self.in_flight.items()})
        try:
            with tenant_session([self.client_id]) as session:
                for token, attempt_id in owners.items():
                    try:
                        renew_lease(
                            session=session,
                            lease_token=token,
                            now=now,
                            lease_seconds=self.lease_seconds,
                        )
                    except LeaseExpired as exc:
                        what = f"attempt {attempt_id}" if attempt_id else f"held lead {token}"
                        log.warning("lease of %s is lost: %s", what, exc)
                        if attempt_id is not None:
                            self.in_flight.pop(attempt_id, None)
                        self.held.discard(token)
        except Exception:  # a database blip: the leases are still ours, renew them next time
            log.exception("could not renew the leases of campaign %s; retrying", self.campaign_id)

    def answered(
        self,
        attempt_id: uuid.UUID,
        at: datetime,
        *,
        handle: str | None = None,
        live: bool = True,
    ) -> None:
        """Note the answer on the attempt at once (live metrics: waiting for an agent; not
        when ``live`` is false) and the gateway's ``handle`` on the call (what a pacer taking
        over needs to end it). A database blip loses only that early note: the completion
        records the answer too."""
        try:
            with tenant_session([self.client_id]) as session:
                record_answer(
                    session=session,
                    attempt_id=attempt_id,
                    answered_at=at if live else None,
                    handle=handle,
                )
        except Exception:
            log.exception("could not note the answer of attempt %s", attempt_id)

    def complete(
        self,
        attempt_id: uuid.UUID,
        outcome: AttemptOutcome,
        now: datetime,
        *,
        also: Callable[[Session], None] | None = None,
    ) -> bool:
        """Record how the call ended (``also`` runs in the same transaction); False if the
        lease had expired, so the completion was refused and counted as late."""
        for wait_s in (*COMPLETE_RETRY_S, None):
            try:
                with tenant_session([self.client_id]) as session:
                    complete_attempt(
                        session=session, attempt_id=attempt_id, outcome=outcome, now=now
                    )
                    if also is not None:
                        also(session)
                break
            except LeaseExpired:
                self.in_flight.pop(attempt_id, None)
                self.counters.late_completions += 1
                log.warning("attempt %s ended after its lease expired: not counted", attempt_id)
                return False
            except DATABASE_AWAY:
                if wait_s is None:
                    raise  # still away: the run ends and its calls are reconciled
                # the call stays in flight (its lease renewed) until its end is stored
                log.warning(
                    "database away: the end of attempt %s is stored in %.1f s", attempt_id, wait_s
                )
                time.sleep(wait_s)
        self.in_flight.pop(attempt_id, None)
        self.counters.completed += 1
        return True
