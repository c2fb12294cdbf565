"""Campaign operations on the database: CRUD, lifecycle, batches, dispositions, lead state.

Service functions are keyword-only and take the caller's session; they ``flush`` and never
commit (the API request or the CLI command owns the transaction).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection, Iterator
from typing import Any

import phonenumbers
from phonenumbers import timezone as phone_timezone
from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from campaigns.dispositions import DEFAULT_DISPOSITIONS
from campaigns.exceptions import CampaignInputError
from campaigns.lifecycle import FINAL_STATUSES, allowed_next, check_transition
from campaigns.models import (
    Batch,
    BatchCreate,
    BatchKind,
    CallAttempt,
    Campaign,
    CampaignCreate,
    CampaignLead,
    CampaignLeadList,
    CampaignPublic,
    CampaignStatus,
    CampaignUpdate,
    Disposition,
    DispositionCreate,
    DispositionUpdate,
    Lead,
    LeadList,
    LeadState,
    ListStatus,
    SamplingMethod,
)
from campaigns.rules import zones_key
from campaigns.sampling import simple_sample, stratified_sample
from core.audit import Actor, record_audit
from core.db import utcnow
from core.errors import Conflict, NotFound
from core.models import Client
from surveys.models import QuestionnaireVersion
from surveys.versioning import VersionStatus

__all__ = [
    "STRATIFY_FIELDS",
    "campaign_public",
    "create_batch",
    "create_campaign",
    "create_disposition",
    "delete_campaign",
    "delete_disposition",
    "get_batch",
    "get_campaign",
    "get_campaign_lead",
    "list_batches",
    "list_campaign_leads",
    "list_campaigns",
    "list_dispositions",
    "transition_campaign",
    "update_campaign",
    "update_disposition",
]

#: Lead fields a pilot may be stratified by (any other name is a client column).
STRATIFY_FIELDS = {
    "region": "phone_region",
    "phone_region": "phone_region",
    "phone_type": "phone_type",
    "carrier": "phone_carrier",
    "phone_carrier": "phone_carrier",
    "virtual_operator": "virtual_operator",
}
_INSERT_CHUNK = 2000


# --------------------------------------------------------------------------- campaigns


def _default_zone(region: str) -> str:
    example = phonenumbers.example_number(region.upper())
    zones = (
        [z for z in phone_timezone.time_zones_for_number(example) if "/" in z] if example else []
    )
    return sorted(zones)[0] if zones else "UTC"


def _check_lists(session: Session, list_ids: list[uuid.UUID]) -> None:
    for list_id in dict.fromkeys(list_ids):
        lead_list = session.get(LeadList, list_id)
        if lead_list is None:
            raise NotFound(f"lead list {list_id} does not exist")
        if lead_list.status is not ListStatus.ready:
            raise CampaignInputError(
                f"lead list {list_id} is {lead_list.status.value}, not ready; wait until its "
                "cleaning import has finished (or re-upload it if it failed)"
            )


def _check_questionnaire(
    session: Session, client_id: uuid.UUID, version_id: uuid.UUID | None
) -> None:
    """The pinned questionnaire version must be one of the campaign's client's, and published."""
    if version_id is None:
        return
    version = session.get(QuestionnaireVersion, version_id)
    # another client's version reads exactly like an unknown id
    if version is None or version.client_id != client_id:
        raise CampaignInputError(
            f"questionnaire_version_id {version_id} is not a questionnaire version of this "
            "client; use the id of one of your published versions (GET /questionnaires/{id})"
        )
    if version.status is not VersionStatus.PUBLISHED:
        raise CampaignInputError(
            f"questionnaire_version_id {version_id} is version {version.version}, which is "
            f"{version.status.value}; a campaign pins a published version (publish it first)"
        )


def _set_lists(session: Session, campaign: Campaign, list_ids: list[uuid.UUID]) -> None:
    _check_lists(session, list_ids)
    for link in session.exec(
        select(CampaignLeadList).where(CampaignLeadList.campaign_id == campaign.id)
    ):
        session.delete(link)
    session.flush()
    for list_id in dict.fromkeys(list_ids):
        session.add(
            CampaignLeadList(client_id=campaign.client_id, campaign_id=campaign.id, list_id=list_id)
        )


def campaign_list_ids(*, session: Session, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    """The lead lists a campaign dials."""
    return list(
        session.exec(
            select(CampaignLeadList.list_id).where(CampaignLeadList.campaign_id == campaign_id)
        )
    )


def create_campaign(
    *, session: Session, client_id: uuid.UUID, campaign_in: CampaignCreate
) -> Campaign:
    """Create a draft campaign on ready lead lists, with the default disposition set."""
    data = campaign_in.model_dump(exclude={"list_ids"})
    _check_questionnaire(session, client_id, campaign_in.questionnaire_version_id)
    if data.get("fallback_timezone") is None:
        client = session.get(Client, client_id)
        data["fallback_timezone"] = _default_zone(client.default_region if client else "CN")
    campaign = Campaign.model_validate({**data, "client_id": client_id})
    session.add(campaign)
    session.flush()
    _set_lists(session, campaign, campaign_in.list_ids)
    for spec in DEFAULT_DISPOSITIONS:
        session.add(Disposition(client_id=client_id, campaign_id=campaign.id, **spec))
    session.flush()
    return campaign


def get_campaign(*, session: Session, campaign_id: uuid.UUID) -> Campaign:
    """A campaign of the session's clients, or NotFound."""
    # The message never echoes the id: a foreign id and an unknown one read exactly the same.
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("no such campaign for this client; check the campaign id")
    return campaign


def list_campaigns(
    *, session: Session, status: CampaignStatus | None = None, limit: int = 100, offset: int = 0
) -> list[Campaign]:
    """Campaigns, newest first."""
    stmt = select(Campaign).order_by(col(Campaign.created_at).desc(), col(Campaign.id))
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    return list(session.exec(stmt.offset(offset).limit(limit)))


def campaign_public(*, session: Session, campaign: Campaign) -> CampaignPublic:
    """The API view of a campaign, with its lists and allowed next states."""
    return CampaignPublic.model_validate(
        {
            **campaign.model_dump(),
            "list_ids": campaign_list_ids(session=session, campaign_id=campaign.id),
            "allowed_next_states": allowed_next(campaign.status),
        }
    )


_DRAFT_ONLY = {"questionnaire_version_id", "list_ids"}


def update_campaign(
    *, session: Session, campaign: Campaign, campaign_in: CampaignUpdate
) -> Campaign:
    """Change settings; lists and questionnaire only in draft, nothing once finished."""
    changes = campaign_in.model_dump(exclude_unset=True)
    if campaign.status in FINAL_STATUSES:
        raise Conflict(f"campaign {campaign.id} is {campaign.status.value}; it can't be changed")
    locked = sorted(_DRAFT_ONLY & set(changes))
    if locked and campaign.status is not CampaignStatus.draft:
        raise Conflict(
            f"{', '.join(locked)} can only change while the campaign is a draft "
            f"(it is {campaign.status.value}); create a new campaign instead"
        )
    list_ids = changes.pop("list_ids", None)
    if list_ids is not None:
        _set_lists(session, campaign, list_ids)
    if "questionnaire_version_id" in changes:
        _check_questionnaire(session, campaign.client_id, changes["questionnaire_version_id"])
    for field, value in changes.items():
        if value is None and field not in {
            "questionnaire_version_id",
            "skill_group",
            "caller_id",
            "safe_harbour_message",
        }:
            raise CampaignInputError(f"{field} cannot be null; leave it out to keep it")
        setattr(campaign, field, value)
    if campaign.kind.value == "survey" and campaign.questionnaire_version_id is None:
        raise CampaignInputError("a survey campaign must keep a pinned questionnaire version")
    campaign.updated_at = utcnow()
    session.add(campaign)
    session.flush()
    return campaign


def delete_campaign(*, session: Session, campaign: Campaign) -> None:
    """Delete a campaign and everything recorded under it (refused while it is dialing)."""
    if campaign.status in {CampaignStatus.piloting, CampaignStatus.running}:
        raise Conflict(
            f"campaign {campaign.id} is {campaign.status.value}; pause, stop or cancel it first"
        )
    session.delete(campaign)
    session.flush()


def transition_campaign(
    *,
    session: Session,
    campaign: Campaign,
    target: CampaignStatus,
    actor: Actor | None = None,
) -> Campaign:
    """Move a campaign through its lifecycle; 409 with the allowed next states if illegal."""
    check_transition(campaign.status, target)
    if target is CampaignStatus.piloting and not _has_batch(session, campaign, BatchKind.pilot):
        raise Conflict(
            "the campaign has no pilot batch yet; create one (kind pilot, with a size) first"
        )
    if (
        target is CampaignStatus.running
        and campaign.status is CampaignStatus.approved
        and not _has_batch(session, campaign, BatchKind.full)
    ):
        raise Conflict("the campaign has no full batch yet; create one (kind full) first")
    previous = campaign.status
    campaign.status = target
    campaign.status_changed_at = campaign.updated_at = utcnow()
    session.add(campaign)
    if actor is not None:
        record_audit(
            session,
            client_id=campaign.client_id,
            actor=actor,
            action="campaign.transition",
            object_type="campaign",
            object_id=campaign.id,
            detail={"from": previous.value, "to": target.value},
        )
    session.flush()
    return campaign


def _has_batch(session: Session, campaign: Campaign, kind: BatchKind) -> bool:
    stmt = select(Batch.id).where(Batch.campaign_id == campaign.id, Batch.kind == kind)
    return session.exec(stmt).first() is not None


# --------------------------------------------------------------------------- batches


def _stratum_of(lead_row: Any, field: str | None, attribute: str | None) -> str:
    if field is not None:
        value = getattr(lead_row, field)
        return str(value).lower() if isinstance(value, bool) else str(value or "")
    attributes = lead_row.attributes or {}
    return str(attributes.get(attribute, "") if attribute else "")


def _candidates(
    session: Session, campaign: Campaign, stratify_by: str | None
) -> tuple[list[Any], int]:
    """Leads of the campaign's lists not yet in it, one per number, in a stable order."""
    list_ids = campaign_list_ids(session=session, campaign_id=campaign.id)
    if not list_ids:
        raise CampaignInputError("the campaign has no lead lists; add list_ids while it is a draft")
    in_campaign = set(
        session.exec(select(CampaignLead.phone_e164).where(CampaignLead.campaign_id == campaign.id))
    )
    columns: list[Any] = [
        Lead.id,
        Lead.phone_e164,
        Lead.phone_timezones,
        Lead.phone_region,
        Lead.phone_type,
        Lead.phone_carrier,
        Lead.virtual_operator,
    ]
    if stratify_by is not None and stratify_by not in STRATIFY_FIELDS:
        columns.append(Lead.attributes)
    stmt = (
        select(*columns)
        .join(LeadList, col(LeadList.id) == col(Lead.list_id))
        .where(col(Lead.list_id).in_(list_ids))
        .order_by(col(LeadList.created_at), col(LeadList.id), col(Lead.row_number))
    )
    seen: set[str] = set(in_campaign)
    out = []
    for row in session.exec(stmt):
        if row.phone_e164 in seen:
            continue
        seen.add(row.phone_e164)
        out.append(row)
    return out, len(in_campaign)


def _insert_leads(
    session: Session, campaign: Campaign, batch: Batch, rows: list[Any], *, pilot: bool
) -> None:
    now = utcnow()
    for start in range(0, len(rows), _INSERT_CHUNK):
        values = [
            {
                "id": uuid.uuid4(),
                "client_id": campaign.client_id,
                "campaign_id": campaign.id,
                "lead_id": row.id,
                "batch_id": batch.id,
                "in_pilot": pilot,
                "phone_e164": row.phone_e164,
                "zones_key": zones_key(row.phone_timezones),
                "state": LeadState.new,
                "priority": 0,
                "attempts": 0,
                "disposition_counts": {},
                "created_at": now,
                "updated_at": now,
            }
            for row in rows[start : start + _INSERT_CHUNK]
        ]
        session.execute(insert(CampaignLead), values)


def create_batch(*, session: Session, campaign: Campaign, batch_in: BatchCreate) -> Batch:
    """Release leads: a seeded pilot sample (simple or stratified) or the full remainder."""
    if batch_in.kind is BatchKind.pilot:
        return _create_pilot(session, campaign, batch_in)
    return _create_full(session, campaign)


def _create_pilot(session: Session, campaign: Campaign, batch_in: BatchCreate) -> Batch:
    if campaign.status not in {
        CampaignStatus.draft,
        CampaignStatus.piloting,
        CampaignStatus.pilot_paused,
    }:
        raise Conflict(
            f"pilot batches are drawn while the campaign is draft or piloting; it is "
            f"{campaign.status.value}"
        )
    size = batch_in.size or 0
    stratify = batch_in.stratify_by
    field = STRATIFY_FIELDS.get(stratify) if stratify else None
    attribute = stratify if stratify and field is None else None
    rows, _ = _candidates(session, campaign, stratify)
    if size > len(rows):
        raise CampaignInputError(
            f"pilot size {size} is larger than the {len(rows)} leads not yet in the campaign; "
            f"choose at most {len(rows)}"
        )
    if attribute is not None and not any(attribute in (r.attributes or {}) for r in rows):
        known = sorted({k for r in rows[:1000] for k in (r.attributes or {})})
        raise CampaignInputError(
            f"no lead has a column {attribute!r} to stratify by; use one of "
            f"{', '.join(sorted(set(STRATIFY_FIELDS)) + known)}"
        )
    seed = batch_in.seed if batch_in.seed is not None else secrets.randbits(31)
    strata: dict[str, Any] | None = None
    if stratify:
        pairs = [(i, _stratum_of(r, field, attribute)) for i, r in enumerate(rows)]
        chosen_idx, allocation = stratified_sample(pairs, size, seed)
        chosen = [rows[i] for i in sorted(chosen_idx)]
        strata = {
            k: {"population": allocation.population[k], "sample": allocation.sample[k]}
            for k in allocation.population
        }
        sampling = SamplingMethod.stratified
    else:
        chosen = [rows[i] for i in simple_sample(list(range(len(rows))), size, seed)]
        sampling = SamplingMethod.simple
    batch = Batch(
        client_id=campaign.client_id,
        campaign_id=campaign.id,
        kind=BatchKind.pilot,
        sampling=sampling,
        requested_size=size,
        size=len(chosen),
        stratify_by=stratify,
        seed=seed,
        population=len(rows),
        strata=strata,
    )
    session.add(batch)
    session.flush()
    _insert_leads(session, campaign, batch, chosen, pilot=True)
    session.flush()
    return batch


def _create_full(session: Session, campaign: Campaign) -> Batch:
    if campaign.status not in {
        CampaignStatus.approved,
        CampaignStatus.running,
        CampaignStatus.paused,
    }:
        raise Conflict(
            "the full batch is released once the client has approved the quote; the campaign "
            f"is {campaign.status.value}"
        )
    if _has_batch(session, campaign, BatchKind.full):
        raise Conflict("the campaign already has its full batch")
    rows, _ = _candidates(session, campaign, None)
    batch = Batch(
        client_id=campaign.client_id,
        campaign_id=campaign.id,
        kind=BatchKind.full,
        sampling=SamplingMethod.all,
        population=len(rows),
    )
    session.add(batch)
    session.flush()
    _insert_leads(session, campaign, batch, rows, pilot=False)
    # Pilot leads that are not final carry on in the full batch; final ones are never redialed.
    moved = session.execute(
        update(CampaignLead)
        .where(
            col(CampaignLead.campaign_id) == campaign.id,
            col(CampaignLead.in_pilot).is_(True),
            col(CampaignLead.state) != LeadState.final,
        )
        .values(batch_id=batch.id)
    )
    batch.size = len(rows) + int(moved.rowcount or 0)  # type: ignore[attr-defined]
    session.add(batch)
    session.flush()
    return batch


def list_batches(*, session: Session, campaign_id: uuid.UUID) -> list[Batch]:
    """A campaign's batches, oldest first."""
    stmt = select(Batch).where(Batch.campaign_id == campaign_id).order_by(col(Batch.created_at))
    return list(session.exec(stmt))


def get_batch(*, session: Session, campaign_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
    """One batch of a campaign, or NotFound."""
    batch = session.get(Batch, batch_id)
    if batch is None or batch.campaign_id != campaign_id:
        raise NotFound("no such batch in this campaign; list them at /campaigns/{id}/batches")
    return batch


# --------------------------------------------------------------------------- dispositions


def list_dispositions(*, session: Session, campaign_id: uuid.UUID) -> list[Disposition]:
    """A campaign's disposition vocabulary."""
    stmt = (
        select(Disposition)
        .where(Disposition.campaign_id == campaign_id)
        .order_by(col(Disposition.code))
    )
    return list(session.exec(stmt))


def _disposition(
    session: Session, campaign_id: uuid.UUID, disposition_id: uuid.UUID
) -> Disposition:
    disposition = session.get(Disposition, disposition_id)
    if disposition is None or disposition.campaign_id != campaign_id:
        raise NotFound("no such disposition in this campaign; list them with GET dispositions")
    return disposition


def create_disposition(
    *, session: Session, campaign: Campaign, disposition_in: DispositionCreate
) -> Disposition:
    """Add a disposition code to a campaign's vocabulary."""
    if campaign.status in FINAL_STATUSES:
        raise Conflict(f"campaign {campaign.id} is {campaign.status.value}; it can't be changed")
    exists = session.exec(
        select(Disposition.id).where(
            Disposition.campaign_id == campaign.id, Disposition.code == disposition_in.code
        )
    ).first()
    if exists is not None:
        raise Conflict(f"disposition {disposition_in.code!r} already exists; update it instead")
    disposition = Disposition.model_validate(
        {**disposition_in.model_dump(), "client_id": campaign.client_id, "campaign_id": campaign.id}
    )
    session.add(disposition)
    session.flush()
    return disposition


def update_disposition(
    *,
    session: Session,
    campaign: Campaign,
    disposition_id: uuid.UUID,
    disposition_in: DispositionUpdate,
) -> Disposition:
    """Change a disposition's label, flags, retry rule or AAPOR code (the code is fixed)."""
    disposition = _disposition(session, campaign.id, disposition_id)
    if campaign.status in FINAL_STATUSES:
        raise Conflict(f"campaign {campaign.id} is {campaign.status.value}; it can't be changed")
    for field, value in disposition_in.model_dump(exclude_unset=True).items():
        if value is None and field not in {"retry_delay_minutes", "max_attempts", "aapor_code"}:
            raise CampaignInputError(f"{field} cannot be null; leave it out to keep it")
        setattr(disposition, field, value)
    session.add(disposition)
    session.flush()
    return disposition


def delete_disposition(*, session: Session, campaign: Campaign, disposition_id: uuid.UUID) -> None:
    """Remove a disposition no call has used yet."""
    disposition = _disposition(session, campaign.id, disposition_id)
    used = session.exec(
        select(func.count())
        .select_from(CallAttempt)
        .where(CallAttempt.campaign_id == campaign.id, CallAttempt.disposition == disposition.code)
    ).one()
    if used:
        raise Conflict(
            f"disposition {disposition.code!r} is recorded on {used} call attempt(s); "
            "it can be relabelled but not deleted"
        )
    session.delete(disposition)
    session.flush()


# --------------------------------------------------------------------------- lead state


def list_campaign_leads(
    *,
    session: Session,
    campaign_id: uuid.UUID,
    state: LeadState | None = None,
    batch_id: uuid.UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CampaignLead]:
    """Lead states of a campaign, in a stable order."""
    stmt = select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
    if state is not None:
        stmt = stmt.where(CampaignLead.state == state)
    if batch_id is not None:
        stmt = stmt.where(CampaignLead.batch_id == batch_id)
    stmt = stmt.order_by(col(CampaignLead.created_at), col(CampaignLead.id))
    return list(session.exec(stmt.offset(offset).limit(limit)))


def get_campaign_lead(
    *, session: Session, campaign_id: uuid.UUID, lead_id: uuid.UUID
) -> CampaignLead:
    """One lead's state in a campaign, or NotFound."""
    row = session.exec(
        select(CampaignLead).where(
            CampaignLead.campaign_id == campaign_id, CampaignLead.lead_id == lead_id
        )
    ).first()
    if row is None:
        raise NotFound("no such lead in this campaign; it may not be in any batch yet")
    return row


def lead_state_counts(*, session: Session, campaign_id: uuid.UUID) -> dict[str, int]:
    """How many leads are in each state."""
    rows = session.exec(
        select(CampaignLead.state, func.count())
        .where(CampaignLead.campaign_id == campaign_id)
        .group_by(CampaignLead.state)
    ).all()
    counts = {s.value: 0 for s in LeadState}
    counts.update({LeadState(s).value: int(n) for s, n in rows})
    return counts


def lead_state_counts_by_campaign(
    *, session: Session, campaign_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """:func:`lead_state_counts` of many campaigns in one grouped query."""
    counts = {cid: {s.value: 0 for s in LeadState} for cid in campaign_ids}
    if not counts:
        return counts
    rows = session.exec(
        select(CampaignLead.campaign_id, CampaignLead.state, func.count())
        .where(col(CampaignLead.campaign_id).in_(list(counts)))
        .group_by(col(CampaignLead.campaign_id), col(CampaignLead.state))
    ).all()
    for campaign_id, state, n in rows:
        counts[campaign_id][LeadState(state).value] = int(n)
    return counts


def iter_campaign_leads(*, session: Session, campaign_id: uuid.UUID) -> Iterator[CampaignLead]:
    """Every lead state of a campaign, streamed."""
    stmt = (
        select(CampaignLead)
        .where(CampaignLead.campaign_id == campaign_id)
        .order_by(col(CampaignLead.created_at), col(CampaignLead.id))
        .execution_options(yield_per=1000)
    )
    yield from session.exec(stmt)
