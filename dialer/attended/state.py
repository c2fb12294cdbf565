"""The state one attended run shares between its parts: the campaign, the calls, the clock.

:class:`RunContext` is read and written by the call handler (:mod:`.calls`), the agents' side
(:mod:`.phones`, :mod:`.desk`) and the launcher (:mod:`.launcher`); the loop
(:mod:`.loop`) owns it. Times are seconds since the run started, on the injected clock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from campaigns.models import AbandonWindow as CampaignAbandonWindow
from campaigns.models import AmdResult, CallAttempt, Campaign
from core.db import tenant_session
from core.errors import NotFound
from dialer.abandon import ROLLING_24_HOURS_S, ROLLING_30_DAYS_S, AbandonWindow
from dialer.attended.config import (
    AttendedConfig,
    AttendedResult,
    campaign_codes,
    check_live_campaign,
)
from dialer.dialing import DialPath
from dialer.gateway import AnswerKind, HangupParty, TelephonyGateway
from dialer.guard import DEFAULT_RISK, AbandonGuard, parse_guard
from dialer.pacing import PacingMode, PacingStats
from dialer.stats import RecentStats

__all__ = ["CampaignInfo", "LiveCall", "Phase", "RunContext", "load_campaign", "load_window"]

log = logging.getLogger("dialer.attended")


class Phase(StrEnum):
    """Where a call of the run is."""

    RINGING = "ringing"
    IVR = "ivr"  # answered by a person in an agentless campaign: the IVR interviews them
    WAITING = "waiting"  # answered, waiting for an agent
    CONNECTED = "connected"
    CLOSING = "closing"  # machine or abandoned: a message or a hang-up is under way
    WRAP = "wrap"  # the conversation is over; waiting for the agent's disposition


@dataclass
class LiveCall:
    """One call the run placed, from originate to its attempt's completion."""

    call_id: str
    attempt_id: uuid.UUID
    lease_token: uuid.UUID
    lead: dict[str, Any]
    phone: str
    originated_s: float
    callback_agent: str | None = None
    phase: Phase = Phase.RINGING
    ringing_s: float | None = None
    answered_s: float | None = None
    answer_kind: AnswerKind | None = None
    waiting_since_s: float = 0.0
    seat_id: uuid.UUID | None = None
    agent_code: str | None = None
    connected_s: float | None = None
    ended_s: float | None = None
    hangup_by: HangupParty | None = None
    abandoned: bool = False
    agent_left: bool = False  # the agent hung up; the gateway's hang-up is under way
    surplus: bool = False  # hung up ringing: no agent would have been free for it
    held: bool = False  # on hold at the gateway (the agent holds or consults)
    #: an agent dialed it by hand (``seat_id``/``agent_code`` from the start): the answer goes
    #: to that agent, whatever answered, and it is never cancelled or abandoned by the pacer
    manual: bool = False
    #: the soft-phone's id of a manual call (given when the agent dialed)
    soft_call_id: str | None = None
    #: the colleague the agent consults (reserved for the call), and whether they are mixed in
    consult_seat_id: uuid.UUID | None = None
    consult_code: str | None = None
    conferenced: bool = False

    @property
    def agent_call_id(self) -> str:
        """The id of the call on the agent's soft-phone (stable across gateways)."""
        return self.soft_call_id or self.attempt_id.hex

    @property
    def live(self) -> bool:
        return self.answer_kind is AnswerKind.HUMAN


@dataclass(frozen=True)
class CampaignInfo:
    """What the run reads of its campaign once, at the start."""

    name: str
    skill_group: str
    mode: PacingMode
    cap: float
    power_ratio: float
    max_ring_s: float
    caller: str
    window_s: float
    codes: frozenset[str]
    script: dict[str, Any]
    guard: AbandonGuard = AbandonGuard.STRICT
    risk: float = DEFAULT_RISK
    #: preview mode: dial a lead for the agent once they have looked at it this long (the
    #: campaign's ``pacing_params.preview_dial_after_s``); None: wait for the agent
    preview_dial_after_s: float | None = None
    #: agentless mode: how many IVR calls in flight at most (``pacing_params.lines``), and the
    #: published questionnaire the IVR interviews with
    lines: int = 10
    questionnaire_version_id: uuid.UUID | None = None


def load_campaign(session: Session, campaign_id: uuid.UUID) -> CampaignInfo:
    """The campaign's settings for a live run (refused as :func:`check_live_campaign` says)."""
    from surveys.service import get_version

    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    check_live_campaign(session=session, campaign=campaign)
    questionnaire: dict[str, Any] | None = None
    if campaign.questionnaire_version_id is not None:
        try:
            version = get_version(session=session, version_id=campaign.questionnaire_version_id)
            questionnaire = dict(version.content)
        except NotFound:
            questionnaire = None
    script = {
        "campaign_id": str(campaign.id),
        "campaign": campaign.name,
        "kind": campaign.kind.value,
        "questionnaire_version_id": None
        if campaign.questionnaire_version_id is None
        else str(campaign.questionnaire_version_id),
        "questionnaire": questionnaire,
    }
    window_s = (
        ROLLING_24_HOURS_S
        if campaign.abandon_window is CampaignAbandonWindow.ofcom_24h
        else ROLLING_30_DAYS_S
    )
    stored = campaign.pacer_settings or {}
    guard, risk = parse_guard(
        stored.get("abandon_guard", AbandonGuard.STRICT.value),
        stored.get("abandon_risk", DEFAULT_RISK),
    )
    params = campaign.pacing_params or {}
    after = params.get("preview_dial_after_s")
    return CampaignInfo(
        name=campaign.name,
        skill_group=campaign.skill_group or "",  # none for agentless campaigns
        mode=PacingMode(campaign.pacing_mode.value),
        cap=campaign.abandon_rate_cap,
        power_ratio=float(params.get("ratio", 2.0)),
        max_ring_s=float(campaign.max_ring_s),
        caller=campaign.caller_id or "",  # checked above: never anonymous
        window_s=window_s,
        codes=frozenset(campaign_codes(session, campaign.id)),
        script=script,
        guard=guard,
        risk=risk,
        preview_dial_after_s=float(after) if after is not None and after > 0 else None,
        lines=max(1, int(params.get("lines", 10))),
        questionnaire_version_id=campaign.questionnaire_version_id,
    )


def load_window(
    session: Session, campaign_id: uuid.UUID, started: datetime, window_s: float
) -> AbandonWindow:
    """The compliance window, resumed from the campaign's answered attempts."""
    since = started - timedelta(seconds=window_s)
    rows = session.exec(
        select(CallAttempt.ended_at, CallAttempt.abandoned).where(
            CallAttempt.campaign_id == campaign_id,
            CallAttempt.amd_result == AmdResult.human,
            col(CallAttempt.ended_at) >= since,
            (col(CallAttempt.abandoned).is_(True))
            | col(CallAttempt.agent_connected_at).is_not(None),
        )
    ).all()
    buckets: dict[float, list[int]] = {}
    for ended_at, abandoned in rows:
        if ended_at is None:
            continue
        offset = min((ended_at - started).total_seconds(), 0.0)
        start = (offset // 60.0) * 60.0
        counts = buckets.setdefault(start, [0, 0])
        counts[0] += 1
        counts[1] += int(bool(abandoned))
    return AbandonWindow.from_buckets(
        [(start, live, ab) for start, (live, ab) in sorted(buckets.items())], window_s
    )


@dataclass(eq=False)
class RunContext:
    """The run's shared state; built by the loop, read and written by its parts."""

    client_id: uuid.UUID
    campaign_id: uuid.UUID
    gateway: TelephonyGateway
    config: AttendedConfig
    result: AttendedResult
    info: CampaignInfo
    path: DialPath
    clock: Callable[[], datetime]
    started: datetime
    window: AbandonWindow
    on_live_answer: Callable[[float, bool], None] | None = None
    stats: RecentStats = field(init=False)
    #: the calls in flight, by the gateway's call id
    calls: dict[str, LiveCall] = field(default_factory=dict)
    #: agents in the wrap-up of one of our calls: seat -> (agent call id, wrap start)
    wrapping: dict[uuid.UUID, tuple[str, float]] = field(default_factory=dict)
    #: calls an agent transferred out, still up at the gateway: call id -> outside number
    #: (their attempts are the agents' and complete at the wrap-up; these are only followed
    #: so a failed transfer's callee is hung up, never left on hold)
    handed_out: dict[str, str] = field(default_factory=dict)
    #: why the run stopped launching ("" while it launches), and when
    stop: str = ""
    stopped_s: float | None = None
    last_window_s: float = -float("inf")

    def __post_init__(self) -> None:
        self.stats = RecentStats(prior=PacingStats(no_answer_timeout_s=self.info.max_ring_s))

    def session(self) -> AbstractContextManager[Session]:
        """A session scoped to the campaign's client."""
        return tenant_session([self.client_id])

    def now_s(self) -> float:
        return (self.clock() - self.started).total_seconds()

    def at(self, seconds: float) -> datetime:
        return self.started + timedelta(seconds=seconds)

    def halt(self, reason: str, now: float) -> None:
        """Stop launching (the calls in flight finish); the first reason given is kept."""
        if not self.stop:
            self.stop = reason
            self.stopped_s = now
            log.info("attended pacer of campaign %s stops launching: %s", self.campaign_id, reason)

    def in_phase(self, phase: Phase) -> list[LiveCall]:
        return [c for c in self.calls.values() if c.phase is phase]
