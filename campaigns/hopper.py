"""The hopper: which leads a dialer may call now, leased atomically, and the dial bookkeeping.

``lease_leads`` hands out callable leads of a dialing campaign (piloting or running), honouring
each lead's local calling window and holidays, its attempt limit, its retry delay and scheduled
callbacks, the client's and the global suppression lists, and (in Ofcom mode) the 72-hour rule
for abandoned numbers. On PostgreSQL candidates are locked with ``SELECT … FOR UPDATE SKIP
LOCKED``, so any number of workers lease disjoint leads; on SQLite the database-wide write lock
does the same job.

A lease lasts ``lease_seconds``; the dialer then calls :func:`record_attempt_start` (the attempt
row is written before the number is dialed, keyed by an idempotency key, so a retried request
never dials twice) and :func:`complete_attempt` when the call ends. A lease that runs out
returns the lead to the hopper, and a late completion on it is refused (``LeaseExpired``): the
attempt was counted when it started and is not counted again.

A lead whose cell held several numbers (``Lead.alternate_phones``) is dialed on its main
number first; when a call proves that number does not work (a disposition whose outcome is
``invalid_number``: non-working, fax), the lead moves on to its next alternate that is not on a
do-not-call list instead of being closed, callable at once, with the attempts it has left (the
attempt limit is the lead's, not the number's). Each attempt row keeps the number it dialed.
A number on a do-not-call list still closes the lead: it may be the person's own request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, update
from sqlmodel import Session, col, select

from campaigns.compliance import recent_abandons, suppress_number, suppressed_numbers
from campaigns.exceptions import (
    AttemptFinished,
    CampaignInputError,
    CampaignNotDialing,
    LeaseExpired,
)
from campaigns.lifecycle import DIALING_STATUSES
from campaigns.models import (
    AbandonWindow,
    AmdResult,
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignLead,
    Disposition,
    Lead,
    LeadState,
    OutcomeClass,
    SuppressionSource,
)
from campaigns.rules import (
    DispositionRule,
    candidate_zones,
    decide_after_attempt,
    is_callable_at,
    parse_holidays,
    parse_windows,
    zones_key,
)
from core.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "AttemptOutcome",
    "LeadNotCallable",
    "Lease",
    "NumberSuppressed",
    "apply_outcome",
    "complete_attempt",
    "count_callable",
    "leads_left",
    "lease_lead",
    "lease_leads",
    "record_answer",
    "record_attempt_start",
    "release_expired_leases",
    "release_idle_leases",
    "release_lease",
    "renew_lease",
]

DEFAULT_LEASE_SECONDS = 120
#: After a lease expires with a dial started but never reported, wait this long (outcome unknown).
UNREPORTED_RETRY_DELAY = timedelta(minutes=30)
SUPPRESSED = "suppressed"


class NumberSuppressed(Conflict):
    """The leased number went onto a do-not-call list after it was leased: do not dial."""

    code = "number-suppressed"
    title = "Number suppressed"


class LeadNotCallable(Conflict):
    """A lead asked for by hand cannot be called now (says which rule refused it)."""

    code = "lead-not-callable"
    title = "Lead not callable now"


@dataclass(frozen=True)
class Lease:
    """A lead handed to one dialer worker until ``expires_at``."""

    lease_token: uuid.UUID
    campaign_id: uuid.UUID
    campaign_lead_id: uuid.UUID
    lead_id: uuid.UUID
    batch_id: uuid.UUID | None
    phone_e164: str
    attempt_no: int
    expires_at: datetime
    worker_id: str
    zones: tuple[str, ...]
    priority: int
    callback_at: datetime | None
    callback_agent: str | None


@dataclass(frozen=True)
class AttemptOutcome:
    """What the dialer reports when a call ends."""

    disposition: str
    ended_at: datetime
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    agent_connected_at: datetime | None = None
    talk_s: float | None = None
    wrap_s: float | None = None
    abandoned: bool = False
    amd_result: AmdResult | None = None
    recording_ref: str | None = None
    hangup_cause: str | None = None
    agent_id: str | None = None
    converted: bool | None = None
    callback_at: datetime | None = None
    callback_agent: str | None = None


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{name} must be timezone-aware (UTC)")
    return value


def _campaign(session: Session, campaign_id: uuid.UUID, *, share_lock: bool = False) -> Campaign:
    stmt = select(Campaign).where(Campaign.id == campaign_id)
    if share_lock and _is_pg(session):
        # Pausing updates this row, so it waits for dials being started, and dials started
        # after the pause commits see it.
        stmt = stmt.with_for_update(read=True)
    campaign = session.exec(stmt).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


def _restored_state(row: CampaignLead) -> LeadState:
    return (
        LeadState.new if row.attempts == 0 and row.last_disposition is None else LeadState.scheduled
    )


def _clear_lease(row: CampaignLead) -> None:
    row.lease_token = None
    row.lease_owner = None
    row.lease_expires_at = None


def _finalise(row: CampaignLead, disposition: str | None, reason: str, now: datetime) -> None:
    row.state = LeadState.final
    row.final_disposition = disposition
    row.final_reason = reason[:200]
    row.next_attempt_at = None
    row.callback_at = None
    row.updated_at = now
    _clear_lease(row)


def release_expired_leases(*, session: Session, campaign_id: uuid.UUID, now: datetime) -> int:
    """Return leads whose lease ran out to the hopper; returns how many were released."""
    _aware(now, "now")
    campaign = _campaign(session, campaign_id)
    stmt = select(CampaignLead).where(
        CampaignLead.campaign_id == campaign_id,
        CampaignLead.state == LeadState.in_progress,
        col(CampaignLead.lease_expires_at) < now,
    )
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.exec(stmt))
    for row in rows:
        open_attempts = list(
            session.exec(
                select(CallAttempt).where(
                    CallAttempt.campaign_id == campaign_id,
                    CallAttempt.lead_id == row.lead_id,
                    CallAttempt.lease_token == row.lease_token,
                    CallAttempt.status == AttemptStatus.started,
                )
            )
        )
        for attempt in open_attempts:
            attempt.status = AttemptStatus.expired
            session.add(attempt)
        expired_at = row.lease_expires_at or now
        if open_attempts:
            # A dial happened and its outcome is unknown: it counts, and we wait before retrying
            # (72 h in Ofcom mode, since it may have been abandoned).
            gap = UNREPORTED_RETRY_DELAY
            if campaign.abandon_window is AbandonWindow.ofcom_24h:
                gap = max(gap, timedelta(hours=72))
            earliest = expired_at + gap
            row.next_attempt_at = max(row.next_attempt_at or earliest, earliest)
        if row.attempts >= campaign.max_attempts:
            _finalise(row, row.last_disposition, "attempt limit reached", now)
        else:
            row.state = _restored_state(row)
            _clear_lease(row)
            row.updated_at = now
        session.add(row)
    session.flush()
    return len(rows)


def _waiting_zones(session: Session, campaign: Campaign) -> dict[str, tuple[str, ...]]:
    """The time zones of each zones key among the campaign's leads waiting for a call."""
    fallback = campaign.fallback_timezone or "UTC"
    keys = session.exec(
        select(CampaignLead.zones_key)
        .where(
            CampaignLead.campaign_id == campaign.id,
            col(CampaignLead.state).in_([LeadState.new, LeadState.scheduled]),
        )
        .distinct()
    ).all()
    return {k: candidate_zones(k, fallback) for k in keys}


def _open_keys(
    campaign: Campaign, zones_by_key: dict[str, tuple[str, ...]], now: datetime
) -> list[str]:
    """The zones keys inside a calling window (and not on a holiday) at ``now``."""
    windows = parse_windows(campaign.calling_windows)
    holidays = parse_holidays(campaign.holidays)
    return [k for k, z in zones_by_key.items() if is_callable_at(now, z, windows, holidays)]


def _callable_conditions(campaign: Campaign, open_keys: list[str], now: datetime) -> list[Any]:
    """Which campaign leads the hopper may hand out at ``now`` (before the per-number
    re-checks at lease time: suppression and, in Ofcom mode, the 72-hour rule)."""
    return [
        CampaignLead.campaign_id == campaign.id,
        col(CampaignLead.state).in_([LeadState.new, LeadState.scheduled]),
        or_(
            col(CampaignLead.next_attempt_at).is_(None),
            col(CampaignLead.next_attempt_at) <= now,
        ),
        col(CampaignLead.attempts) < campaign.max_attempts,
        col(CampaignLead.batch_id).is_not(None),
        col(CampaignLead.zones_key).in_(open_keys),
    ]


def count_callable(*, session: Session, campaign_id: uuid.UUID, now: datetime) -> int:
    """How many leads the hopper could hand out at ``now`` if the campaign were dialing
    (the same rules as :func:`lease_leads`, before its per-number re-checks; leads whose
    lease ran out are not counted until the next lease returns them)."""
    _aware(now, "now")
    campaign = _campaign(session, campaign_id)
    open_keys = _open_keys(campaign, _waiting_zones(session, campaign), now)
    if not open_keys:
        return 0
    stmt = (
        select(func.count())
        .select_from(CampaignLead)
        .where(*_callable_conditions(campaign, open_keys, now))
    )
    return int(session.exec(stmt).one())


def lease_leads(
    *,
    session: Session,
    campaign_id: uuid.UUID,
    now: datetime,
    limit: int,
    worker_id: str,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
) -> list[Lease]:
    """Lease up to ``limit`` leads callable at ``now``; empty unless the campaign is dialing."""
    _aware(now, "now")
    if limit < 1 or lease_seconds < 1:
        raise InvalidInput("limit and lease_seconds must be at least 1")
    campaign = _campaign(session, campaign_id)
    if campaign.status not in DIALING_STATUSES:
        return []
    release_expired_leases(session=session, campaign_id=campaign_id, now=now)
    zones_by_key = _waiting_zones(session, campaign)
    open_keys = _open_keys(campaign, zones_by_key, now)
    if not open_keys:
        return []
    expires = now + timedelta(seconds=lease_seconds)
    leases: list[Lease] = []
    callback_due = case((col(CampaignLead.callback_at).is_not(None), 0), else_=1)
    while len(leases) < limit:
        need = limit - len(leases)
        stmt: Any = (
            select(CampaignLead)
            .where(*_callable_conditions(campaign, open_keys, now))
            .order_by(
                callback_due,
                col(CampaignLead.priority).desc(),
                col(CampaignLead.next_attempt_at).asc().nulls_first(),
                col(CampaignLead.created_at),
                col(CampaignLead.id),
            )
            .limit(need)
        )
        if _is_pg(session):
            stmt = stmt.with_for_update(skip_locked=True, of=CampaignLead)
        rows: list[CampaignLead] = list(session.exec(stmt))
        if not rows:
            break
        leases.extend(_take(session, campaign, rows, zones_by_key, now, worker_id, expires))
    return leases


def _take(
    session: Session,
    campaign: Campaign,
    rows: list[CampaignLead],
    zones_by_key: dict[str, tuple[str, ...]],
    now: datetime,
    worker_id: str,
    expires: datetime,
) -> list[Lease]:
    """Lease the callable ``rows`` after the per-number re-checks: a number on a do-not-call
    list closes its lead, one abandoned in the last 72 hours (Ofcom mode) waits them out."""
    numbers = [r.phone_e164 for r in rows]
    blocked = suppressed_numbers(session=session, client_id=campaign.client_id, numbers=numbers)
    abandons = (
        recent_abandons(session=session, client_id=campaign.client_id, numbers=numbers, now=now)
        if campaign.abandon_window is AbandonWindow.ofcom_24h
        else {}
    )
    leases: list[Lease] = []
    for row in rows:
        if row.phone_e164 in blocked:
            _finalise(row, SUPPRESSED, "number is on a do-not-call list", now)
        elif row.phone_e164 in abandons:
            row.next_attempt_at = abandons[row.phone_e164] + timedelta(hours=72)
            row.state = LeadState.scheduled
            row.updated_at = now
        else:
            row.state = LeadState.in_progress
            row.lease_token = uuid.uuid4()
            row.lease_owner = worker_id[:120]
            row.lease_expires_at = expires
            row.updated_at = now
            leases.append(
                Lease(
                    lease_token=row.lease_token,
                    campaign_id=campaign.id,
                    campaign_lead_id=row.id,
                    lead_id=row.lead_id,
                    batch_id=row.batch_id,
                    phone_e164=row.phone_e164,
                    attempt_no=row.attempts + 1,
                    expires_at=expires,
                    worker_id=worker_id,
                    zones=zones_by_key[row.zones_key],
                    priority=row.priority,
                    callback_at=row.callback_at,
                    callback_agent=row.callback_agent,
                )
            )
        session.add(row)
    session.flush()
    return leases


def lease_lead(
    *,
    session: Session,
    campaign_id: uuid.UUID,
    campaign_lead_id: uuid.UUID,
    now: datetime,
    worker_id: str,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
) -> Lease:
    """Lease one given lead for a manual call (an agent dials it), by the same rules as
    :func:`lease_leads`: the campaign dialing, the lead waiting and due, under its attempt
    limit, inside its calling window, its number on no do-not-call list (that closes the
    lead) and, in Ofcom mode, not abandoned in the last 72 hours. Raises LeadNotCallable
    saying which rule refused it; nothing is leased then."""
    _aware(now, "now")
    campaign = _campaign(session, campaign_id)
    if campaign.status not in DIALING_STATUSES:
        raise LeadNotCallable(f"the campaign is {campaign.status.value}, not dialing")
    zones_by_key = _waiting_zones(session, campaign)
    open_keys = _open_keys(campaign, zones_by_key, now)
    # the hopper's own conditions decide; the explanation below only says which one failed
    stmt: Any = select(CampaignLead).where(
        CampaignLead.id == campaign_lead_id, *_callable_conditions(campaign, open_keys, now)
    )
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True)
    row: CampaignLead | None = session.exec(stmt).first()
    if row is None:
        raise LeadNotCallable(_why_not_callable(session, campaign, campaign_lead_id, now))
    expires = now + timedelta(seconds=lease_seconds)
    taken = _take(session, campaign, [row], zones_by_key, now, worker_id, expires)
    if not taken:
        state: LeadState = row.state  # _take changed it
        if state is LeadState.final:
            raise LeadNotCallable("the number is on a do-not-call list; the lead is closed")
        raise LeadNotCallable("the number's call was abandoned in the last 72 hours")
    return taken[0]


def _why_not_callable(
    session: Session, campaign: Campaign, campaign_lead_id: uuid.UUID, now: datetime
) -> str:
    """Which of :func:`_callable_conditions` a lead fails at ``now``, in words."""
    row = session.get(CampaignLead, campaign_lead_id)
    if row is None or row.campaign_id != campaign.id:
        return "the lead is not in this campaign"
    if row.state not in (LeadState.new, LeadState.scheduled):
        return f"the lead is {row.state.value}, not waiting for a call"
    if row.attempts >= campaign.max_attempts:
        return f"the lead has had all {campaign.max_attempts} attempts"
    if row.batch_id is None:
        return "the lead is in no batch yet"
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return f"the lead is not due before {row.next_attempt_at.isoformat()}"
    zones = candidate_zones(row.zones_key, campaign.fallback_timezone or "UTC")
    if not _open_keys(campaign, {row.zones_key: zones}, now):
        return "the calling window is closed for this number now (" + ", ".join(zones) + ")"
    return "another dialer has the lead now"


def leads_left(*, session: Session, campaign_id: uuid.UUID) -> int:
    """Leads the campaign may still call, now or later (in a batch, not final, under the
    attempt limit), plus those leased right now. 0 means the campaign is out of leads."""
    campaign = _campaign(session, campaign_id)
    stmt = select(func.count()).where(
        CampaignLead.campaign_id == campaign_id,
        col(CampaignLead.batch_id).is_not(None),
        or_(
            col(CampaignLead.state) == LeadState.in_progress,
            and_(
                col(CampaignLead.state).in_([LeadState.new, LeadState.scheduled]),
                col(CampaignLead.attempts) < campaign.max_attempts,
            ),
        ),
    )
    return int(session.exec(stmt).one())


def release_idle_leases(
    *, session: Session, campaign_id: uuid.UUID, worker_id: str, now: datetime
) -> int:
    """Give back every lease ``worker_id`` holds on the campaign with no call started on it
    (a pacer that stops); returns how many."""
    _aware(now, "now")
    rows = list(
        session.exec(
            select(CampaignLead).where(
                CampaignLead.campaign_id == campaign_id,
                CampaignLead.state == LeadState.in_progress,
                CampaignLead.lease_owner == worker_id[:120],
            )
        )
    )
    if not rows:
        return 0
    # One query for the leases with a call on them, not one per lease.
    in_call = set(
        session.exec(
            select(CallAttempt.lease_token).where(
                col(CallAttempt.lease_token).in_([row.lease_token for row in rows]),
                CallAttempt.status == AttemptStatus.started,
            )
        )
    )
    released = 0
    for row in rows:
        if row.lease_token in in_call:
            continue
        row.state = _restored_state(row)
        _clear_lease(row)
        row.updated_at = now
        session.add(row)
        released += 1
    session.flush()
    return released


def _leased_row(session: Session, lease_token: uuid.UUID, now: datetime) -> CampaignLead:
    stmt = select(CampaignLead).where(CampaignLead.lease_token == lease_token)
    if _is_pg(session):
        stmt = stmt.with_for_update()
    row = session.exec(stmt).first()
    if row is None or row.state is not LeadState.in_progress:
        raise LeaseExpired(
            f"lease {lease_token} is no longer held (it expired and the lead went back to the "
            "hopper); do not dial, lease again"
        )
    if row.lease_expires_at is None or row.lease_expires_at < now:
        raise LeaseExpired(
            f"lease {lease_token} expired at {row.lease_expires_at}; do not dial, lease again"
        )
    return row


def renew_lease(
    *, session: Session, lease_token: uuid.UUID, now: datetime, lease_seconds: int
) -> datetime:
    """Extend a live lease (long calls); returns the new expiry."""
    _aware(now, "now")
    row = _leased_row(session, lease_token, now)
    row.lease_expires_at = now + timedelta(seconds=lease_seconds)
    session.add(row)
    session.flush()
    return row.lease_expires_at


def release_lease(*, session: Session, lease_token: uuid.UUID, now: datetime) -> None:
    """Give a leased lead back without dialing it (no agent free, worker shutting down)."""
    _aware(now, "now")
    row = _leased_row(session, lease_token, now)
    started = session.exec(
        select(CallAttempt.id).where(
            CallAttempt.lease_token == lease_token, CallAttempt.status == AttemptStatus.started
        )
    ).first()
    if started is not None:
        raise Conflict("a call was started on this lease; complete the attempt instead")
    row.state = _restored_state(row)
    _clear_lease(row)
    row.updated_at = now
    session.add(row)
    session.flush()


def record_attempt_start(
    *,
    session: Session,
    lease_token: uuid.UUID,
    idempotency_key: str,
    now: datetime,
    caller_id: str | None = None,
    agent_id: str | None = None,
    skill_group: str | None = None,
    queued_at: datetime | None = None,
) -> tuple[CallAttempt, bool]:
    """Write the attempt row before dialing; returns (attempt, created); not created: no dial."""
    _aware(now, "now")
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidInput("idempotency_key must be 1–200 characters")
    row = _leased_row(session, lease_token, now)
    existing = session.exec(
        select(CallAttempt).where(
            CallAttempt.client_id == row.client_id, CallAttempt.idempotency_key == idempotency_key
        )
    ).first()
    if existing is not None:
        if existing.lease_token != lease_token:
            raise Conflict(f"idempotency key {idempotency_key!r} was used for another lease")
        return existing, False
    campaign = _campaign(session, row.campaign_id, share_lock=True)
    if campaign.status not in DIALING_STATUSES:
        raise CampaignNotDialing(
            f"campaign {campaign.id} is {campaign.status.value}; no new calls are started "
            "(calls in progress may finish)"
        )
    if suppressed_numbers(session=session, client_id=row.client_id, numbers=[row.phone_e164]):
        raise NumberSuppressed(
            "the number went onto a do-not-call list after it was leased; do not dial it"
        )
    row.attempts += 1
    row.last_attempt_at = now
    row.updated_at = now
    attempt = CallAttempt(
        client_id=row.client_id,
        campaign_id=row.campaign_id,
        lead_id=row.lead_id,
        batch_id=row.batch_id,
        attempt_no=row.attempts,
        idempotency_key=idempotency_key,
        lease_token=lease_token,
        number_dialed=row.phone_e164,
        caller_id=caller_id or campaign.caller_id,
        agent_id=agent_id or row.callback_agent,
        skill_group=skill_group or campaign.skill_group,
        queued_at=queued_at or now,
        dialed_at=now,
    )
    session.add(row)
    session.add(attempt)
    session.flush()
    return attempt, True


def disposition_map(*, session: Session, campaign_id: uuid.UUID) -> dict[str, Disposition]:
    """A campaign's dispositions by code."""
    rows = session.exec(select(Disposition).where(Disposition.campaign_id == campaign_id))
    return {d.code: d for d in rows}


def _rule(disposition: Disposition) -> DispositionRule:
    return DispositionRule(
        code=disposition.code,
        final=disposition.final,
        dnc=disposition.dnc,
        callback=disposition.callback,
        abandoned=disposition.abandoned,
        retry_delay_minutes=disposition.retry_delay_minutes,
        max_attempts=disposition.max_attempts,
    )


def apply_outcome(
    *,
    session: Session,
    campaign: Campaign,
    row: CampaignLead,
    disposition: Disposition,
    ended_at: datetime,
    abandoned: bool,
    now: datetime,
    callback_at: datetime | None = None,
    callback_agent: str | None = None,
) -> None:
    """Update a lead's campaign state after an attempt (counts already include it)."""
    counts = dict(row.disposition_counts or {})
    counts[disposition.code] = counts.get(disposition.code, 0) + 1
    row.disposition_counts = counts
    row.last_disposition = disposition.code
    decision = decide_after_attempt(
        rule=_rule(disposition),
        ended_at=ended_at,
        attempts_made=row.attempts,
        max_attempts=campaign.max_attempts,
        same_disposition_count=counts[disposition.code],
        abandoned=abandoned,
        ofcom=campaign.abandon_window is AbandonWindow.ofcom_24h,
        callback_at=callback_at,
    )
    if (
        decision.final
        and disposition.outcome is OutcomeClass.invalid_number
        and row.attempts < campaign.max_attempts
        and _next_number(session, row)
    ):
        row.state = LeadState.scheduled
        row.next_attempt_at = ended_at  # another number: no retry delay
        row.callback_at = None
        row.callback_agent = None
        _clear_lease(row)
        row.updated_at = now
    elif decision.final:
        _finalise(row, disposition.code, decision.reason, now)
    else:
        row.state = LeadState.scheduled
        row.next_attempt_at = decision.next_attempt_at
        row.callback_at = decision.next_attempt_at if disposition.callback else None
        row.callback_agent = callback_agent if disposition.callback else None
        _clear_lease(row)
        row.updated_at = now
    session.add(row)
    if disposition.dnc:
        suppress_number(
            session=session,
            client_id=row.client_id,
            e164=row.phone_e164,
            source=SuppressionSource.dnc_request.value,
            reason=f"do-not-call request during campaign {campaign.name!r}",
        )


def _next_number(session: Session, row: CampaignLead) -> bool:
    """Move ``row`` on to its lead's next alternate number that no do-not-call list holds;
    False (nothing changed) when there is none."""
    lead = session.get(Lead, row.lead_id)
    alternates = list(lead.alternate_phones or []) if lead is not None else []
    candidates = [
        (index, number)
        for index, number in enumerate(alternates, start=1)
        if index > row.phone_index and number != row.phone_e164
    ]
    if not candidates:
        return False
    blocked = suppressed_numbers(
        session=session, client_id=row.client_id, numbers=[n for _, n in candidates]
    )
    for index, number in candidates:
        if number in blocked:
            continue
        row.phone_index = index
        row.phone_e164 = number
        row.zones_key = zones_key(_zones_of(number))
        return True
    return False


def _zones_of(e164: str) -> list[str]:
    """The time zones of a number (libphonenumber's), for its calling window."""
    import phonenumbers
    from phonenumbers import timezone as pn_timezone

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return []
    return list(pn_timezone.time_zones_for_number(parsed))


def record_answer(
    *,
    session: Session,
    attempt_id: uuid.UUID,
    answered_at: datetime | None,
    handle: str | None = None,
) -> bool:
    """Note that a call in progress was answered, as it happens (the live view counts it as
    waiting for an agent until one takes it); the completion records it again. False when
    the attempt is already over or its answer already noted.

    ``handle`` is the gateway's handle on the call (``Answered.handle``), kept while the call
    is up so that a pacer taking over can end it; ``answered_at=None`` keeps only that (an
    answer that is not live: a machine being left a message)."""
    if handle is not None:
        session.execute(
            update(CallAttempt)
            .where(
                col(CallAttempt.id) == attempt_id,
                col(CallAttempt.status) == AttemptStatus.started,
            )
            .values(gateway_handle=handle)
        )
    if answered_at is None:
        return False
    _aware(answered_at, "answered_at")
    result = session.execute(
        update(CallAttempt)
        .where(
            col(CallAttempt.id) == attempt_id,
            col(CallAttempt.status) == AttemptStatus.started,
            col(CallAttempt.answered_at).is_(None),
        )
        .values(answered_at=answered_at)
    )
    return bool(getattr(result, "rowcount", 0))


def complete_attempt(
    *, session: Session, attempt_id: uuid.UUID, outcome: AttemptOutcome, now: datetime
) -> CallAttempt:
    """Record how a call ended and apply its disposition's rules; refused on an expired lease."""
    _aware(now, "now")
    _aware(outcome.ended_at, "ended_at")
    stmt = select(CallAttempt).where(CallAttempt.id == attempt_id)
    if _is_pg(session):
        stmt = stmt.with_for_update()
    attempt = session.exec(stmt).first()
    if attempt is None:
        raise NotFound(f"call attempt {attempt_id} does not exist")
    if attempt.status is AttemptStatus.finished:
        if attempt.disposition == outcome.disposition:
            return attempt  # a retried completion: already applied once
        raise AttemptFinished(
            f"call attempt {attempt_id} already ended as {attempt.disposition!r}; "
            "finished attempts are immutable"
        )
    if attempt.status is AttemptStatus.expired or attempt.lease_token is None:
        raise LeaseExpired(
            f"the lease of call attempt {attempt_id} expired before it was completed; the "
            "lead went back to the hopper and this completion is not counted"
        )
    row = _leased_row(session, attempt.lease_token, now)
    campaign = _campaign(session, attempt.campaign_id)
    dispositions = disposition_map(session=session, campaign_id=campaign.id)
    disposition = dispositions.get(outcome.disposition)
    if disposition is None:
        raise CampaignInputError(
            f"unknown disposition {outcome.disposition!r} for this campaign; use one of "
            f"{', '.join(sorted(dispositions))}"
        )
    if outcome.callback_at is not None:
        _aware(outcome.callback_at, "callback_at")
    abandoned = outcome.abandoned or disposition.abandoned
    attempt.ringing_at = outcome.ringing_at
    attempt.answered_at = outcome.answered_at
    attempt.agent_connected_at = outcome.agent_connected_at
    attempt.ended_at = outcome.ended_at
    attempt.talk_s = outcome.talk_s
    attempt.wrap_s = outcome.wrap_s
    attempt.abandoned = abandoned
    attempt.amd_result = outcome.amd_result
    # a recording stored while the call was wrapping up is kept
    attempt.recording_ref = outcome.recording_ref or attempt.recording_ref
    attempt.hangup_cause = outcome.hangup_cause
    attempt.agent_id = outcome.agent_id or attempt.agent_id
    attempt.disposition = disposition.code
    attempt.outcome = disposition.outcome
    attempt.converted = disposition.success if outcome.converted is None else outcome.converted
    attempt.status = AttemptStatus.finished
    attempt.gateway_handle = None  # the call is over: nothing left to end
    session.add(attempt)
    apply_outcome(
        session=session,
        campaign=campaign,
        row=row,
        disposition=disposition,
        ended_at=outcome.ended_at,
        abandoned=abandoned,
        now=now,
        callback_at=outcome.callback_at,
        callback_agent=outcome.callback_agent,
    )
    session.flush()
    return attempt
