"""Reading the rows the reports are computed from: call attempts with their leads, and the
agent state log turned into spans. The only module of ``reports`` that queries the other
domains' tables (read only).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from campaigns.models import AttemptStatus, CallAttempt, Campaign, Lead
from core.db import get_or_404
from dialer.models import AgentSeat, AgentStateLog
from reports.figures import CallRow, StateSpan

__all__ = ["Selection", "load_calls", "load_spans", "spans_from_log"]


@dataclass(frozen=True)
class Selection:
    """Whose calls, over which UTC range: a client, optionally one campaign or skill group."""

    client_id: uuid.UUID
    start: datetime
    end: datetime
    campaign_id: uuid.UUID | None = None
    skill_group: str | None = None


def _skill_group(session: Session, selection: Selection) -> str | None:
    if selection.skill_group is not None:
        return selection.skill_group
    if selection.campaign_id is not None:
        campaign: Campaign = get_or_404(session, Campaign, selection.campaign_id, what="campaign")
        return None if campaign.skill_group is None else str(campaign.skill_group)
    return None


def load_calls(session: Session, selection: Selection) -> list[CallRow]:
    """Every dialed attempt of the selection (in-progress ones left out), oldest first."""
    stmt = (
        select(CallAttempt, Lead)
        .join(Lead, col(Lead.id) == col(CallAttempt.lead_id))
        .where(
            CallAttempt.client_id == selection.client_id,
            col(CallAttempt.dialed_at).is_not(None),
            col(CallAttempt.dialed_at) >= selection.start,
            col(CallAttempt.dialed_at) < selection.end,
            CallAttempt.status != AttemptStatus.started,
        )
        .order_by(col(CallAttempt.dialed_at), col(CallAttempt.id))
    )
    if selection.campaign_id is not None:
        get_or_404(session, Campaign, selection.campaign_id, what="campaign")
        stmt = stmt.where(CallAttempt.campaign_id == selection.campaign_id)
    if selection.skill_group is not None:
        stmt = stmt.where(CallAttempt.skill_group == selection.skill_group)
    rows = []
    for attempt, lead in session.exec(stmt):
        assert attempt.dialed_at is not None  # filtered above
        rows.append(
            CallRow(
                attempt_id=attempt.id,
                campaign_id=attempt.campaign_id,
                attempt_no=attempt.attempt_no,
                dialed_at=attempt.dialed_at,
                answered_at=attempt.answered_at,
                agent_connected_at=attempt.agent_connected_at,
                ended_at=attempt.ended_at,
                talk_s=attempt.talk_s,
                wrap_s=attempt.wrap_s,
                abandoned=attempt.abandoned,
                converted=attempt.converted,
                outcome=None if attempt.outcome is None else attempt.outcome.value,
                disposition=attempt.disposition,
                agent_id=attempt.agent_id,
                skill_group=attempt.skill_group,
                caller_id=attempt.caller_id,
                number=attempt.number_dialed,
                recording_ref=attempt.recording_ref,
                region=lead.phone_region_desc or lead.phone_region,
                carrier=lead.phone_carrier or "",
                line_type=lead.phone_type,
                virtual_operator=lead.virtual_operator,
            )
        )
    return rows


def spans_from_log(
    code: str, entries: Sequence[AgentStateLog], start: datetime, end: datetime
) -> list[StateSpan]:
    """An agent's log (the last entry before ``start`` first, then in order) as state spans
    clipped to ``[start, end)``; the last state lasts until ``end``."""
    spans = []
    for index, entry in enumerate(entries):
        begin = max(entry.at, start)
        stop = entries[index + 1].at if index + 1 < len(entries) else end
        stop = min(stop, end)
        if stop > begin:
            spans.append(
                StateSpan(
                    agent_code=code,
                    state=entry.to_state.value,
                    reason=entry.reason,
                    start=begin,
                    end=stop,
                )
            )
    return spans


def load_spans(session: Session, selection: Selection, *, now: datetime) -> list[StateSpan]:
    """State spans of the agents serving the client (in the skill group, if one is chosen)."""
    group = _skill_group(session, selection)
    end = min(selection.end, now)
    spans: list[StateSpan] = []
    if end <= selection.start:
        return spans
    seats = session.exec(select(AgentSeat).order_by(col(AgentSeat.agent_code))).all()
    for seat in seats:
        if str(selection.client_id) not in seat.client_ids:
            continue
        if group is not None and group not in seat.skill_groups:
            continue
        before = session.exec(
            select(AgentStateLog)
            .where(AgentStateLog.agent_seat_id == seat.id, AgentStateLog.at < selection.start)
            .order_by(col(AgentStateLog.at).desc(), col(AgentStateLog.seq).desc())
            .limit(1)
        ).all()
        during = session.exec(
            select(AgentStateLog)
            .where(
                AgentStateLog.agent_seat_id == seat.id,
                AgentStateLog.at >= selection.start,
                AgentStateLog.at < end,
            )
            .order_by(col(AgentStateLog.at), col(AgentStateLog.seq))
        ).all()
        spans.extend(spans_from_log(seat.agent_code, [*before, *during], selection.start, end))
    return spans
