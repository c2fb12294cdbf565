"""Live pacing metrics of one campaign, read from the database (the shape in LIVE_METRICS.md).

:func:`live_snapshot` is what ``GET /campaigns/{id}/live`` and its event stream send. Every
figure is counted from committed rows, so any API process answers the same, whichever worker
paces the campaign; only the pacer's health comes from the leadership records in Redis (or
this process, embedded). Definitions:

- **calls** are the campaign's attempts in flight (``started``): *talking* when an agent has
  the call (its ``call_connected`` pop, no ``call_ended`` yet), *waiting_for_agent* when the
  attempt records an answer and no agent has it yet, *ringing* the others (dialed, not
  answered as far as the database knows). The dial loops record the answer when the call ends,
  so until the dial path stores answers as they happen, answered calls in the 2-second grace
  count as ringing. Calls whose conversation is over and whose agent is wrapping up are in no
  bucket (the agent is, under ``wrap_up``).
- **agents** are the seats of the campaign's skill group that serve its client (none without
  a skill group), by soft-phone state: talking = previewing, dialing, on a call, on hold,
  consulting or in a conference; not_ready includes signed in but not yet ready. While a run
  with simulated agents leads (``agents_mode`` simulated), they are its simulated agents as
  it reports them with its heartbeat (``simulated``: true, no list).
- **pacing**: the campaign's mode; *dial_level* = calls in flight ÷ agents at work (ready,
  talking or wrapping up), null with no agent at work; *dial_ratio_setting* = the lines per
  agent the mode is set to (progressive 1, power its ``ratio``, default 2; predictive and the
  others their ``ratio`` parameter if one is stored, else null).
- **abandon** follows the compliance window the pacer enforces (:mod:`dialer.attended`): live
  answers are attempts answered by a person (AMD ``human``) that reached an agent or were
  abandoned, by their end time, over the campaign's window (FCC: 30 days, Ofcom: 24 hours),
  and over today.
- **today** is the client's local day (its report profile's time zone, Asia/Shanghai by
  default), by dial time: attempts dialed, answered (person or machine picked up), valid calls
  as the contract reports count them (:mod:`reports.figures`: reached an agent or an IVR
  contact, talk time over the profile's threshold, 15 s by default).
- **hopper**: leads the hopper could hand out now (:func:`campaigns.hopper.count_callable`:
  calling windows, holidays, retry times and attempt limits; suppression and the Ofcom 72-hour
  rule are re-checked per number at lease time), callbacks scheduled on leads not final, and
  those due.
- **pacer**: the lease holder (a live lease means it renewed within its 6-second time to live,
  hence ``healthy``) and the last heartbeat any pacer stamped (kept a day); *stopped_because*
  is why the campaign's last finished run ended (e.g. "trunk refused: SIP 403 Forbidden;
  check the trunk credentials"), null before any run ended.

Rates are fractions, null when their denominator is 0.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, exists, func, or_, text
from sqlmodel import Session, col, select

from campaigns.hopper import count_callable
from campaigns.models import (
    IN_FLIGHT_SQL,
    LIVE_ANSWER_SQL,
    AbandonWindow,
    CallAttempt,
    Campaign,
    CampaignLead,
    LeadState,
    OutcomeClass,
    PacingMode,
)
from core.errors import NotFound
from core.models import JobRecord
from core.wakeups import channel
from dialer.abandon import ROLLING_24_HOURS_S, ROLLING_30_DAYS_S
from dialer.agent_service import list_agents
from dialer.agents import AGENT_BUCKET_NAMES, AGENT_BUCKETS, AgentState
from dialer.leadership import PacerHealth, campaign_pacer
from dialer.models import AgentEvent, AgentEventKind, AgentSeat
from reports.models import ReportProfile

__all__ = [
    "AGENT_BUCKETS",
    "DEFAULT_TIMEZONE",
    "DEFAULT_VALID_CALL_S",
    "LiveMetrics",
    "list_figures",
    "live_channels",
    "live_snapshot",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_VALID_CALL_S = 15

_S = AgentState
#: Soft-phone state -> the bucket the live view counts it in.
_AT_WORK = ("ready", "talking", "wrap_up")

HealthReader = Callable[[uuid.UUID], PacerHealth]


# --------------------------------------------------------------------------- API shape


class LivePacing(BaseModel):
    mode: str
    dial_level: float | None = Field(description="calls in flight ÷ agents at work")
    dial_ratio_setting: float | None = Field(description="lines per agent the mode is set to")


class LiveCalls(BaseModel):
    ringing: int = Field(description="dialed, not answered as far as the database knows")
    waiting_for_agent: int
    talking: int
    in_flight: int = Field(description="every attempt started and not ended")


class LiveAgent(BaseModel):
    agent_id: str
    code: str
    name: str
    state: str = Field(description="the bucket: ready, talking, wrap_up, not_ready, signed_out")
    soft_phone_state: str
    reason: str | None
    since: str | None
    seconds_in_state: int


class LiveAgents(BaseModel):
    ready: int
    talking: int
    wrap_up: int
    not_ready: int
    signed_out: int
    list: builtins.list[LiveAgent] = Field(description="empty for keys that may not see agents")
    simulated: bool = Field(
        default=False,
        description="the counts are the simulated agents the running pacer reported (no list)",
    )


class LiveAbandon(BaseModel):
    rule: str = Field(description="fcc or ofcom")
    window: str = Field(description="30d or 24h")
    rate: float | None
    abandoned: int
    answered: int = Field(description="live answers (a person, reached an agent or abandoned)")
    cap: float
    today_rate: float | None
    today_abandoned: int
    today_answered: int


class LiveHopper(BaseModel):
    callable_now: int
    callbacks_scheduled: int
    callbacks_due: int


class LiveToday(BaseModel):
    attempts: int
    answered: int
    valid_calls: int
    timezone: str
    valid_call_s: int


class LivePacer(BaseModel):
    leader: str | None
    last_heartbeat: str | None
    last_holder: str | None
    healthy: bool
    stopped_because: str | None = None


class LiveMetrics(BaseModel):
    """A campaign's live pacing metrics (what :func:`live_snapshot` returns)."""

    campaign_id: str
    state: str
    at: str
    pacing: LivePacing
    calls: LiveCalls
    agents: LiveAgents
    abandon: LiveAbandon
    answer_rate_today: float | None
    hopper: LiveHopper
    today: LiveToday
    pacer: LivePacer


def live_channels(campaign: Campaign) -> list[str]:
    """The wake-up channels of a campaign's live view: its rows and its client's agents."""
    return [channel("campaign", campaign.id), channel("client", campaign.client_id)]


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _profile(session: Session, client_id: uuid.UUID) -> tuple[ZoneInfo, int]:
    row = session.exec(
        select(ReportProfile.timezone, ReportProfile.valid_call_s).where(
            ReportProfile.client_id == client_id
        )
    ).first()
    name, valid_s = (row[0], row[1]) if row is not None else (DEFAULT_TIMEZONE, None)
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(DEFAULT_TIMEZONE)
    return zone, valid_s or DEFAULT_VALID_CALL_S


def _local_day(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _dial_ratio_setting(campaign: Campaign) -> float | None:
    ratio = (campaign.pacing_params or {}).get("ratio")
    if campaign.pacing_mode is PacingMode.progressive:
        return 1.0
    if campaign.pacing_mode is PacingMode.power:
        return float(ratio) if ratio is not None else 2.0
    return None if ratio is None else float(ratio)


def _calls(session: Session, campaign_id: uuid.UUID) -> dict[str, int]:
    # Core aliases of the pop table: joined on this campaign's attempts, so only its pops.
    events = AgentEvent.__table__  # type: ignore[attr-defined]
    connected, ended = events.alias("connected"), events.alias("ended")
    attempt_id = col(CallAttempt.id)
    has_agent = exists().where(
        connected.c.attempt_id == attempt_id,
        connected.c.kind == AgentEventKind.CALL_CONNECTED,
    )
    agent_still_on = exists().where(
        connected.c.attempt_id == attempt_id,
        connected.c.kind == AgentEventKind.CALL_CONNECTED,
        ~exists().where(
            ended.c.agent_seat_id == connected.c.agent_seat_id,
            ended.c.call_id == connected.c.call_id,
            ended.c.kind == AgentEventKind.CALL_ENDED,
        ),
    )
    answered = col(CallAttempt.answered_at).is_not(None)
    row = session.exec(
        select(
            func.count(),
            _count(agent_still_on),
            _count(and_(answered, ~has_agent)),
            _count(and_(~answered, ~has_agent)),
        ).where(
            CallAttempt.campaign_id == campaign_id,
            text(IN_FLIGHT_SQL),  # the partial index's own predicate: it is used
        )
    ).one()
    in_flight, talking, waiting, ringing = (int(v) for v in row)
    return {
        "ringing": ringing,
        "waiting_for_agent": waiting,
        "talking": talking,
        "in_flight": in_flight,
    }


def _agents(
    session: Session, campaign: Campaign, now: datetime, *, with_list: bool
) -> dict[str, Any]:
    counts = dict.fromkeys(AGENT_BUCKET_NAMES, 0)
    listed: list[dict[str, Any]] = []
    seats: list[AgentSeat] = []
    if campaign.skill_group is not None:
        seats = list_agents(
            session=session, client_scope=[campaign.client_id], skill_group=campaign.skill_group
        )
    for seat in seats:
        bucket = AGENT_BUCKETS[seat.state]
        counts[bucket] += 1
        if with_list:
            listed.append(
                {
                    "agent_id": str(seat.id),
                    "code": seat.agent_code,
                    "name": seat.name,
                    "state": bucket,
                    "soft_phone_state": seat.state.value,
                    "reason": seat.state_reason,
                    "since": _iso(seat.state_since),
                    "seconds_in_state": max(0, int((now - seat.state_since).total_seconds())),
                }
            )
    return {**counts, "list": listed, "simulated": False}


def _abandon(
    session: Session,
    campaign: Campaign,
    now: datetime,
    day: tuple[datetime, datetime],
) -> dict[str, Any]:
    ofcom = campaign.abandon_window is AbandonWindow.ofcom_24h
    since = _abandon_since(campaign, now)
    ended_at = col(CallAttempt.ended_at)
    abandoned = col(CallAttempt.abandoned).is_(True)
    in_window = and_(ended_at >= since, ended_at <= now)
    today = and_(ended_at >= day[0], ended_at < day[1], ended_at <= now)
    row = session.exec(
        select(
            _count(in_window),
            _count(and_(in_window, abandoned)),
            _count(today),
            _count(and_(today, abandoned)),
        ).where(
            CallAttempt.campaign_id == campaign.id,
            # live answers (AMD human, reached an agent or abandoned), the partial index's
            # own predicate
            text(LIVE_ANSWER_SQL),
            ended_at >= min(since, day[0]),
        )
    ).one()
    answered, abandons, answered_today, abandons_today = (int(v) for v in row)
    return {
        "rule": "ofcom" if ofcom else "fcc",
        "window": "24h" if ofcom else "30d",
        "rate": _ratio(abandons, answered),
        "abandoned": abandons,
        "answered": answered,
        "cap": campaign.abandon_rate_cap,
        "today_rate": _ratio(abandons_today, answered_today),
        "today_abandoned": abandons_today,
        "today_answered": answered_today,
    }


def _valid_call(valid_s: int) -> Any:
    """A valid call: a contact (reached an agent, or a contact outcome) talking > valid_s."""
    contact = or_(
        col(CallAttempt.agent_connected_at).is_not(None),
        col(CallAttempt.outcome) == OutcomeClass.contact,
    )
    return and_(contact, col(CallAttempt.talk_s) > valid_s)


def _abandon_since(campaign: Campaign, now: datetime) -> datetime:
    ofcom = campaign.abandon_window is AbandonWindow.ofcom_24h
    return now - timedelta(seconds=ROLLING_24_HOURS_S if ofcom else ROLLING_30_DAYS_S)


def _today(
    session: Session, campaign_id: uuid.UUID, day: tuple[datetime, datetime], valid_s: int
) -> dict[str, int]:
    valid = _valid_call(valid_s)
    row = session.exec(
        select(
            func.count(),
            _count(col(CallAttempt.answered_at).is_not(None)),
            _count(valid),
        ).where(
            CallAttempt.campaign_id == campaign_id,
            col(CallAttempt.dialed_at) >= day[0],
            col(CallAttempt.dialed_at) < day[1],
        )
    ).one()
    attempts, answered, valid_calls = (int(v) for v in row)
    return {"attempts": attempts, "answered": answered, "valid_calls": valid_calls}


def _hopper(session: Session, campaign_id: uuid.UUID, now: datetime) -> dict[str, int]:
    callback = col(CampaignLead.callback_at)
    row = session.exec(
        select(func.count(), _count(callback <= now)).where(
            CampaignLead.campaign_id == campaign_id,
            callback.is_not(None),
            col(CampaignLead.state).in_(
                [LeadState.new, LeadState.scheduled, LeadState.in_progress]
            ),
        )
    ).one()
    return {
        "callable_now": count_callable(session=session, campaign_id=campaign_id, now=now),
        "callbacks_scheduled": int(row[0]),
        "callbacks_due": int(row[1]),
    }


def live_snapshot(
    *,
    session: Session,
    client_id: uuid.UUID,
    campaign_id: uuid.UUID,
    now: datetime,
    with_agent_list: bool = True,
    health: HealthReader | None = None,
) -> dict[str, Any]:
    """The campaign's live metrics at ``now`` (see the module docstring for each figure).

    Raises NotFound for a campaign that does not exist or belongs to another client.
    ``with_agent_list=False`` leaves ``agents.list`` empty (callers who may not see staff);
    ``health`` reads the pacer's records (default: Redis if configured, else this process).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.client_id != client_id:
        raise NotFound("no campaign with this id")
    zone, valid_s = _profile(session, client_id)
    day = _local_day(now, zone)
    calls = _calls(session, campaign.id)
    pacer = (health or campaign_pacer)(campaign.id)
    agents: dict[str, Any]
    if pacer.healthy and pacer.simulated_agents is not None:
        # a run with simulated agents: its agents, as it reported them with its heartbeat
        agents = {
            **dict.fromkeys(AGENT_BUCKET_NAMES, 0),
            **{k: v for k, v in pacer.simulated_agents.items() if k in AGENT_BUCKET_NAMES},
            "list": [],
            "simulated": True,
        }
    else:
        agents = _agents(session, campaign, now, with_list=with_agent_list)
    at_work: int = sum(agents[bucket] for bucket in _AT_WORK)
    today = _today(session, campaign.id, day, valid_s)
    return {
        "campaign_id": str(campaign.id),
        "state": campaign.status.value,
        "at": _iso(now),
        "pacing": {
            "mode": campaign.pacing_mode.value,
            "dial_level": _ratio(calls["in_flight"], at_work),
            "dial_ratio_setting": _dial_ratio_setting(campaign),
        },
        "calls": calls,
        "agents": agents,
        "abandon": _abandon(session, campaign, now, day),
        "answer_rate_today": _ratio(today["answered"], today["attempts"]),
        "hopper": _hopper(session, campaign.id, now),
        "today": {**today, "timezone": zone.key, "valid_call_s": valid_s},
        "pacer": {
            "leader": pacer.leader,
            "last_heartbeat": _iso(pacer.last_heartbeat),
            "last_holder": pacer.last_holder,
            "healthy": pacer.healthy,
            "stopped_because": _last_stop(session, campaign),
        },
    }


def list_figures(
    *, session: Session, campaigns: builtins.list[Campaign], now: datetime
) -> dict[uuid.UUID, dict[str, Any]]:
    """Today's figures and the abandon rate of many campaigns in a few grouped queries (a
    campaigns list), each exactly as :func:`live_snapshot` has them under ``today`` and
    ``abandon.rate``: one query for the clients' profiles, one per (local day, valid-call
    threshold) for today's figures, one per abandon window for the rates."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if not campaigns:
        return {}
    client_ids = {c.client_id for c in campaigns}
    stored = {
        row[0]: (row[1], row[2])
        for row in session.exec(
            select(ReportProfile.client_id, ReportProfile.timezone, ReportProfile.valid_call_s)
            .where(col(ReportProfile.client_id).in_(client_ids))
        )
    }  # fmt: skip
    figures: dict[uuid.UUID, dict[str, Any]] = {
        c.id: {
            "today": {"attempts": 0, "answered": 0, "valid_calls": 0},
            "abandon": {"rate": None, "abandoned": 0, "answered": 0},
        }
        for c in campaigns
    }
    by_day: dict[tuple[datetime, datetime, int], builtins.list[uuid.UUID]] = {}
    for campaign in campaigns:
        name, valid_s = stored.get(campaign.client_id, (DEFAULT_TIMEZONE, None))
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo(DEFAULT_TIMEZONE)
        day = _local_day(now, zone)
        by_day.setdefault((*day, valid_s or DEFAULT_VALID_CALL_S), []).append(campaign.id)
    for (start, end, valid_s), ids in by_day.items():
        rows = session.exec(
            select(
                CallAttempt.campaign_id,
                func.count(),
                _count(col(CallAttempt.answered_at).is_not(None)),
                _count(_valid_call(valid_s)),
            )
            .where(
                col(CallAttempt.campaign_id).in_(ids),
                col(CallAttempt.dialed_at) >= start,
                col(CallAttempt.dialed_at) < end,
            )
            .group_by(col(CallAttempt.campaign_id))
        )
        for campaign_id, attempts, answered, valid_calls in rows:
            figures[campaign_id]["today"] = {
                "attempts": int(attempts),
                "answered": int(answered),
                "valid_calls": int(valid_calls),
            }
    by_since: dict[datetime, builtins.list[uuid.UUID]] = {}
    for campaign in campaigns:
        by_since.setdefault(_abandon_since(campaign, now), []).append(campaign.id)
    ended_at = col(CallAttempt.ended_at)
    for since, ids in by_since.items():
        window_rows = session.exec(
            select(
                CallAttempt.campaign_id,
                func.count(),
                _count(col(CallAttempt.abandoned).is_(True)),
            )
            .where(
                col(CallAttempt.campaign_id).in_(ids),
                text(LIVE_ANSWER_SQL),
                ended_at >= since,
                ended_at <= now,
            )
            .group_by(col(CallAttempt.campaign_id))
        )
        for campaign_id, answered, abandons in window_rows:
            figures[campaign_id]["abandon"] = {
                "rate": _ratio(int(abandons), int(answered)),
                "abandoned": int(abandons),
                "answered": int(answered),
            }
    return figures


def _last_stop(session: Session, campaign: Campaign) -> str | None:
    """Why the campaign's last finished pacer run ended (its job's result says)."""
    result = session.exec(
        select(JobRecord.result)
        .where(
            JobRecord.client_id == campaign.client_id,
            JobRecord.kind == "pacer",
            col(JobRecord.finished_at).is_not(None),
            col(JobRecord.params)["campaign_id"].as_string() == str(campaign.id),
        )
        .order_by(col(JobRecord.finished_at).desc())
        .limit(1)
    ).first()
    reason = (result or {}).get("stopped_because")
    return reason if isinstance(reason, str) else None
