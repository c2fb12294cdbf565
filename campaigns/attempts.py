"""Call attempts as data: list and filter, CSV export, CSV import, and the feasibility feed.

The export neutralises cells a spreadsheet would run as formulas. The import accepts pilot
results from another dialer (``lead_id`` or ``phone``, ``attempt_no``, ``started_at``,
``disposition``, ``talk_s``, ``converted``); it validates every row first and writes nothing
if any row is bad, reporting each bad row with its line number.
"""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import phonenumbers
from sqlalchemy import case, func
from sqlmodel import Session, col, select

from campaigns.exceptions import AttemptsImportError, CampaignInputError
from campaigns.hopper import apply_outcome, disposition_map
from campaigns.models import (
    AttemptSource,
    AttemptStatus,
    Batch,
    BatchKind,
    CallAttempt,
    Campaign,
    CampaignLead,
    Lead,
    LeadList,
    LeadState,
    OutcomeClass,
)
from campaigns.rules import zones_key
from campaigns.service import campaign_list_ids
from core.db import utcnow
from data_cleaning.writers import neutralise_row

__all__ = [
    "EXPORT_COLUMNS",
    "IMPORT_COLUMNS",
    "AttemptFilter",
    "DialHistory",
    "ImportResult",
    "dial_history",
    "export_attempts_csv",
    "import_attempts_csv",
    "lead_records",
    "list_attempts",
    "pilot_attempt_records",
]

EXPORT_COLUMNS = (
    "attempt_id",
    "lead_id",
    "batch_id",
    "attempt_no",
    "status",
    "source",
    "number_dialed",
    "caller_id",
    "agent_id",
    "skill_group",
    "queued_at",
    "dialed_at",
    "ringing_at",
    "answered_at",
    "agent_connected_at",
    "ended_at",
    "disposition",
    "outcome",
    "talk_s",
    "wrap_s",
    "abandoned",
    "converted",
    "amd_result",
    "recording_ref",
    "hangup_cause",
)
IMPORT_COLUMNS = ("attempt_no", "started_at", "disposition", "talk_s", "converted")
MAX_REPORTED_ERRORS = 200


@dataclass(frozen=True)
class AttemptFilter:
    """Which attempts to list or export (every field optional)."""

    batch_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    disposition: str | None = None
    outcome: OutcomeClass | None = None
    status: AttemptStatus | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(campaign_id: uuid.UUID, flt: AttemptFilter) -> Any:
    stmt = select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
    if flt.batch_id is not None:
        stmt = stmt.where(CallAttempt.batch_id == flt.batch_id)
    if flt.lead_id is not None:
        stmt = stmt.where(CallAttempt.lead_id == flt.lead_id)
    if flt.disposition is not None:
        stmt = stmt.where(CallAttempt.disposition == flt.disposition)
    if flt.outcome is not None:
        stmt = stmt.where(CallAttempt.outcome == flt.outcome)
    if flt.status is not None:
        stmt = stmt.where(CallAttempt.status == flt.status)
    if flt.since is not None:
        stmt = stmt.where(col(CallAttempt.dialed_at) >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(col(CallAttempt.dialed_at) < flt.until)
    return stmt.order_by(
        col(CallAttempt.dialed_at), col(CallAttempt.lead_id), col(CallAttempt.attempt_no)
    )


def list_attempts(
    *,
    session: Session,
    campaign_id: uuid.UUID,
    flt: AttemptFilter | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CallAttempt]:
    """A page of a campaign's call attempts, oldest dial first."""
    stmt = _filtered(campaign_id, flt or AttemptFilter())
    return list(session.exec(stmt.offset(offset).limit(limit)))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(getattr(value, "value", value))


def iter_attempt_rows(
    *, session: Session, campaign_id: uuid.UUID, flt: AttemptFilter | None = None
) -> Iterator[list[str]]:
    """Export rows (header first), every cell neutralised against formula injection."""
    yield list(EXPORT_COLUMNS)
    stmt = _filtered(campaign_id, flt or AttemptFilter()).execution_options(yield_per=2000)
    for attempt in session.exec(stmt):
        values = attempt.model_dump()
        values["attempt_id"] = attempt.id
        yield neutralise_row(_cell(values[c]) for c in EXPORT_COLUMNS)


def export_attempts_csv(
    *, session: Session, campaign_id: uuid.UUID, flt: AttemptFilter | None = None
) -> tuple[IO[bytes], int]:
    """Write the attempts to a (spooled) UTF-8 CSV; returns the rewound file and row count."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    count = -1
    for count, row in enumerate(  # noqa: B007
        iter_attempt_rows(session=session, campaign_id=campaign_id, flt=flt)
    ):
        writer.writerow(row)
    text.flush()
    text.detach()
    out.seek(0)
    return out, max(count, 0)


# --------------------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportResult:
    """What an attempts import wrote."""

    attempts: int
    leads: int
    leads_added: int
    batch_id: uuid.UUID


@dataclass
class _Row:
    line: int
    lead: Lead
    attempt_no: int
    started_at: datetime
    disposition: str
    talk_s: float | None
    converted: bool | None


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def _parse_started(raw: str) -> datetime:
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("no UTC offset")
    return value


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AttemptsImportError(
            "the attempts file is not UTF-8 text; save it as CSV UTF-8 and upload it again",
            errors=[],
        ) from None


def _target_batch(session: Session, campaign: Campaign, batch_id: uuid.UUID | None) -> Batch:
    if batch_id is not None:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.campaign_id != campaign.id:
            raise CampaignInputError(f"batch {batch_id} is not a batch of campaign {campaign.id}")
        return batch
    batch = session.exec(
        select(Batch)
        .where(Batch.campaign_id == campaign.id, Batch.kind == BatchKind.pilot)
        .order_by(col(Batch.created_at).desc())
    ).first()
    if batch is None:
        raise CampaignInputError(
            "the campaign has no pilot batch to attach imported attempts to; create a pilot "
            "batch first or name a batch"
        )
    return batch


def import_attempts_csv(
    *,
    session: Session,
    campaign: Campaign,
    data: bytes | str,
    batch_id: uuid.UUID | None = None,
) -> ImportResult:
    """Import call attempts from CSV, all or nothing; bad rows raise with line numbers."""
    batch = _target_batch(session, campaign, batch_id)
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise AttemptsImportError(
            "the attempts file is empty; it needs a header row", errors=[]
        ) from None
    except csv.Error as exc:
        raise AttemptsImportError(f"line 1: not a CSV header ({exc})", errors=[]) from None
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if "lead_id" not in header and "phone" not in header:
        missing.insert(0, "lead_id (or phone)")
    if missing:
        raise AttemptsImportError(
            f"line 1: missing column(s) {', '.join(missing)}; the header must have lead_id or "
            f"phone, then {', '.join(IMPORT_COLUMNS)}",
            errors=[{"line": 1, "message": f"missing column(s): {', '.join(missing)}"}],
        )
    index = {name: header.index(name) for name in header}
    dispositions = disposition_map(session=session, campaign_id=campaign.id)
    list_ids = campaign_list_ids(session=session, campaign_id=campaign.id)
    region = _list_region(session, list_ids)
    errors: list[dict[str, Any]] = []
    raw_rows: list[tuple[int, dict[str, str]]] = []
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            line = reader.line_num
            if len(record) != len(header):
                errors.append(
                    {"line": line, "message": f"{len(record)} cells, the header has {len(header)}"}
                )
                continue
            raw_rows.append((line, {k: record[i].strip() for k, i in index.items()}))
    except csv.Error as exc:
        errors.append({"line": reader.line_num, "message": f"unreadable CSV ({exc})"})
    if not raw_rows and not errors:
        raise AttemptsImportError("the attempts file has a header but no rows", errors=[])

    leads = _resolve_leads(session, list_ids, raw_rows, region, errors)
    parsed: list[_Row] = []
    seen: dict[tuple[uuid.UUID, int], int] = {}
    for line, raw in raw_rows:
        lead = leads.get(line)
        problems: list[str] = []
        try:
            attempt_no = int(raw["attempt_no"])
            if attempt_no < 1:
                raise ValueError
        except ValueError:
            problems.append(f"attempt_no {raw['attempt_no']!r} is not a whole number >= 1")
            attempt_no = 0
        try:
            started = _parse_started(raw["started_at"])
        except ValueError:
            problems.append(
                f"started_at {raw['started_at']!r} is not ISO 8601 with a UTC offset "
                "(e.g. 2025-03-01T10:15:00+08:00)"
            )
            started = utcnow()
        code = raw["disposition"].lower()
        disposition = dispositions.get(code)
        if disposition is None:
            problems.append(
                f"unknown disposition {raw['disposition']!r}; use one of "
                f"{', '.join(sorted(dispositions))}"
            )
        talk: float | None = None
        if raw["talk_s"]:
            try:
                talk = float(raw["talk_s"])
                if talk < 0 or talk != talk:
                    raise ValueError
            except ValueError:
                problems.append(f"talk_s {raw['talk_s']!r} is not a number of seconds >= 0")
        conv_raw = raw["converted"].lower()
        converted: bool | None = None
        if conv_raw in _TRUE:
            converted = True
        elif conv_raw in _FALSE:
            converted = False if conv_raw else None
        else:
            problems.append(f"converted {raw['converted']!r} is not 0/1 (or true/false)")
        if converted and disposition is not None and not disposition.contacted:
            problems.append(f"converted is 1 but {code!r} is not a contact")
        if lead is not None and attempt_no:
            key = (lead.id, attempt_no)
            if key in seen:
                problems.append(
                    f"lead {lead.id} attempt {attempt_no} already appears on line {seen[key]}"
                )
            else:
                seen[key] = line
        for problem in problems:
            errors.append({"line": line, "message": problem})
        if not problems and lead is not None and disposition is not None:
            parsed.append(_Row(line, lead, attempt_no, started, code, talk, converted))

    if parsed:
        _check_existing(session, campaign, parsed, errors)
    if errors:
        errors.sort(key=lambda e: e["line"])
        shown = "; ".join(f"line {e['line']}: {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise AttemptsImportError(
            f"{len(errors)} problem(s) in the attempts file, nothing imported: {shown}{more}",
            errors=errors[:MAX_REPORTED_ERRORS],
        )
    return _write_import(session, campaign, batch, parsed)


def _list_region(session: Session, list_ids: list[uuid.UUID]) -> str:
    if not list_ids:
        return "CN"
    region = session.exec(select(LeadList.default_region).where(LeadList.id == list_ids[0])).first()
    return region or "CN"


def _resolve_leads(
    session: Session,
    list_ids: list[uuid.UUID],
    raw_rows: list[tuple[int, dict[str, str]]],
    region: str,
    errors: list[dict[str, Any]],
) -> dict[int, Lead]:
    """Find each row's lead among the campaign's lists (by lead_id, else by phone)."""
    by_line: dict[int, Lead] = {}
    wanted_ids: dict[int, uuid.UUID] = {}
    wanted_phones: dict[int, str] = {}
    for line, raw in raw_rows:
        if raw.get("lead_id"):
            try:
                wanted_ids[line] = uuid.UUID(raw["lead_id"])
            except ValueError:
                errors.append({"line": line, "message": f"lead_id {raw['lead_id']!r} is no id"})
        elif raw.get("phone"):
            try:
                number = phonenumbers.parse(raw["phone"], region)
                if not phonenumbers.is_possible_number(number):
                    raise phonenumbers.NumberParseException(0, "impossible")
                wanted_phones[line] = phonenumbers.format_number(
                    number, phonenumbers.PhoneNumberFormat.E164
                )
            except phonenumbers.NumberParseException:
                errors.append({"line": line, "message": f"phone {raw['phone']!r} is no number"})
        else:
            errors.append({"line": line, "message": "neither lead_id nor phone is filled in"})
    found: dict[uuid.UUID, Lead] = {}
    ids = list(set(wanted_ids.values()))
    for start in range(0, len(ids), 500):
        stmt = select(Lead).where(
            col(Lead.id).in_(ids[start : start + 500]), col(Lead.list_id).in_(list_ids)
        )
        found.update({lead.id: lead for lead in session.exec(stmt)})
    by_phone: dict[str, Lead] = {}
    phones = list(set(wanted_phones.values()))
    for start in range(0, len(phones), 500):
        stmt = (
            select(Lead)
            .where(
                col(Lead.phone_e164).in_(phones[start : start + 500]),
                col(Lead.list_id).in_(list_ids),
            )
            .order_by(col(Lead.list_id), col(Lead.row_number))
        )
        for lead in session.exec(stmt):
            by_phone.setdefault(lead.phone_e164, lead)
    for line, lead_id in wanted_ids.items():
        if lead_id in found:
            by_line[line] = found[lead_id]
        else:
            errors.append(
                {"line": line, "message": f"lead {lead_id} is not in this campaign's lists"}
            )
    for line, phone in wanted_phones.items():
        if phone in by_phone:
            by_line[line] = by_phone[phone]
        else:
            errors.append({"line": line, "message": f"no lead with phone {phone} in the lists"})
    return by_line


def _check_existing(
    session: Session, campaign: Campaign, rows: list[_Row], errors: list[dict[str, Any]]
) -> None:
    lead_ids = list({r.lead.id for r in rows})
    existing: set[tuple[uuid.UUID, int]] = set()
    for start in range(0, len(lead_ids), 500):
        stmt = select(CallAttempt.lead_id, CallAttempt.attempt_no).where(
            CallAttempt.campaign_id == campaign.id,
            col(CallAttempt.lead_id).in_(lead_ids[start : start + 500]),
        )
        existing.update((lead_id, no) for lead_id, no in session.exec(stmt))
    for r in rows:
        if (r.lead.id, r.attempt_no) in existing:
            errors.append(
                {
                    "line": r.line,
                    "message": f"lead {r.lead.id} attempt {r.attempt_no} is already recorded "
                    "in this campaign (was the file imported before?)",
                }
            )


def _write_import(
    session: Session, campaign: Campaign, batch: Batch, rows: list[_Row]
) -> ImportResult:
    dispositions = disposition_map(session=session, campaign_id=campaign.id)
    now = utcnow()
    lead_ids = list({r.lead.id for r in rows})
    states: dict[uuid.UUID, CampaignLead] = {}
    for start in range(0, len(lead_ids), 500):
        stmt = select(CampaignLead).where(
            CampaignLead.campaign_id == campaign.id,
            col(CampaignLead.lead_id).in_(lead_ids[start : start + 500]),
        )
        states.update({s.lead_id: s for s in session.exec(stmt)})
    added = 0
    for r in rows:
        if r.lead.id not in states:
            state = CampaignLead(
                client_id=campaign.client_id,
                campaign_id=campaign.id,
                lead_id=r.lead.id,
                batch_id=batch.id,
                in_pilot=batch.kind is BatchKind.pilot,
                phone_e164=r.lead.phone_e164,
                zones_key=zones_key(r.lead.phone_timezones),
            )
            states[r.lead.id] = state
            session.add(state)
            added += 1
    session.flush()
    for r in sorted(rows, key=lambda x: (x.started_at, x.attempt_no)):
        disposition = dispositions[r.disposition]
        state = states[r.lead.id]
        session.add(
            CallAttempt(
                client_id=campaign.client_id,
                campaign_id=campaign.id,
                lead_id=r.lead.id,
                batch_id=batch.id,
                attempt_no=r.attempt_no,
                idempotency_key=f"import:{campaign.id}:{r.lead.id}:{r.attempt_no}",
                status=AttemptStatus.finished,
                source=AttemptSource.imported,
                number_dialed=r.lead.phone_e164,
                dialed_at=r.started_at,
                disposition=disposition.code,
                outcome=disposition.outcome,
                talk_s=r.talk_s,
                abandoned=disposition.abandoned,
                converted=disposition.success if r.converted is None else r.converted,
            )
        )
        if state.state is LeadState.final:
            continue
        state.attempts = max(state.attempts, r.attempt_no)
        state.last_attempt_at = max(state.last_attempt_at or r.started_at, r.started_at)
        apply_outcome(
            session=session,
            campaign=campaign,
            row=state,
            disposition=disposition,
            ended_at=r.started_at,
            abandoned=disposition.abandoned,
            now=now,
        )
    session.flush()
    return ImportResult(
        attempts=len(rows), leads=len(lead_ids), leads_added=added, batch_id=batch.id
    )


# --------------------------------------------------------------------------- feasibility feed


def pilot_attempt_records(
    *, session: Session, campaign_id: uuid.UUID, batch_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Finished pilot attempts as plain records for the feasibility model."""
    stmt = select(CallAttempt).where(
        CallAttempt.campaign_id == campaign_id, CallAttempt.status == AttemptStatus.finished
    )
    if batch_id is not None:
        stmt = stmt.where(CallAttempt.batch_id == batch_id)
    else:
        pilot_batches = select(Batch.id).where(
            Batch.campaign_id == campaign_id, Batch.kind == BatchKind.pilot
        )
        stmt = stmt.where(col(CallAttempt.batch_id).in_(pilot_batches))
    stmt = stmt.order_by(col(CallAttempt.lead_id), col(CallAttempt.attempt_no))
    records = []
    for attempt in session.exec(stmt):
        outcome = attempt.outcome or OutcomeClass.failed
        records.append(
            {
                "lead_id": str(attempt.lead_id),
                "attempt_no": attempt.attempt_no,
                "started_at": attempt.dialed_at or attempt.queued_at,
                "disposition": outcome.value,
                "talk_s": float(attempt.talk_s or 0.0),
                "converted": int(attempt.converted and outcome is OutcomeClass.contact),
            }
        )
    return records


def lead_records(*, session: Session, campaign_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every lead the campaign would dial (one per number), pilot ones flagged, with attributes.

    The client's own columns come first; the fixed keys (``lead_id``, ``is_pilot``,
    ``phone_type``, ``phone_region``, ``carrier``, ...) win over a client column of that name.
    """
    list_ids = campaign_list_ids(session=session, campaign_id=campaign_id)
    pilot: dict[uuid.UUID, bool] = dict(
        session.exec(
            select(CampaignLead.lead_id, CampaignLead.in_pilot).where(
                CampaignLead.campaign_id == campaign_id
            )
        ).all()
    )
    stmt = (
        select(Lead)
        .join(LeadList, col(LeadList.id) == col(Lead.list_id))
        .where(col(Lead.list_id).in_(list_ids))
        .order_by(col(LeadList.created_at), col(LeadList.id), col(Lead.row_number))
        .execution_options(yield_per=2000)
    )
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for lead in session.exec(stmt):
        if lead.id not in pilot and lead.phone_e164 in seen:
            continue  # a repeated number is dialed once, like the batches do
        seen.add(lead.phone_e164)
        record: dict[str, Any] = dict(lead.attributes or {})
        record.update(
            {
                "lead_id": str(lead.id),
                "is_pilot": bool(pilot.get(lead.id, False)),
                "phone_type": lead.phone_type,
                "phone_region": lead.phone_region,
                "region_desc": lead.phone_region_desc,
                "carrier": lead.phone_carrier or "",
                "virtual_operator": bool(lead.virtual_operator),
            }
        )
        records.append(record)
    return records


@dataclass(frozen=True, slots=True)
class DialHistory:
    """What the client's other campaigns dialled: the priors of a pilot's size."""

    campaigns: int
    leads_dialled: int
    leads_contacted: int
    contacts: int
    valid_calls: int


def dial_history(
    *,
    session: Session,
    client_id: uuid.UUID,
    exclude_campaign_id: uuid.UUID | None,
    valid_call_min_talk_s: float,
) -> DialHistory:
    """Finished attempts of the client's campaigns (but one): leads reached, valid calls."""
    contact = col(CallAttempt.outcome) == OutcomeClass.contact
    where = [
        CallAttempt.client_id == client_id,
        CallAttempt.status == AttemptStatus.finished,
    ]
    if exclude_campaign_id is not None:
        where.append(CallAttempt.campaign_id != exclude_campaign_id)
    per_lead = (
        select(
            col(CallAttempt.campaign_id).label("campaign_id"),
            func.max(case((contact, 1), else_=0)).label("reached"),
        )
        .where(*where)
        .group_by(col(CallAttempt.campaign_id), col(CallAttempt.lead_id))
        .subquery()
    )
    leads = session.exec(
        select(
            func.count(func.distinct(per_lead.c.campaign_id)),
            func.count(),
            func.coalesce(func.sum(per_lead.c.reached), 0),
        )
    ).one()
    calls = session.exec(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((col(CallAttempt.talk_s) > valid_call_min_talk_s, 1), else_=0)), 0
            ),
        ).where(*where, contact)
    ).one()
    return DialHistory(
        campaigns=int(leads[0]),
        leads_dialled=int(leads[1]),
        leads_contacted=int(leads[2]),
        contacts=int(calls[0]),
        valid_calls=int(calls[1]),
    )
