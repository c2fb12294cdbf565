"""Attended live dialing: the dial loop for a campaign's real agent seats, in real time.

Where :func:`dialer.pacer.run_pacer` runs the simulator with simulated agents, this loop paces
a campaign for the :class:`dialer.models.AgentSeat` rows of its skill group that serve its
client, on any :class:`dialer.gateway.TelephonyGateway`. Every tick (1 s by default; the clock
and the sleep are injected, so tests run in fake time) it:

1. finishes expired timed wrap-ups, reads the ready agents (longest-ready first) and the agents
   on calls or in wrap-up, and builds the same :class:`dialer.pacing.PacingSnapshot` as the
   simulator (recent statistics from :class:`dialer.stats.RecentStats`, the compliance window
   from :class:`dialer.abandon.AbandonWindow`, seeded with the campaign's answered attempts);
2. asks the campaign's policy and always passes its answer through the campaign's abandon
   guard (:mod:`dialer.guard`, ``abandon_guard``/``abandon_risk`` in its pacer settings:
   :func:`dialer.pacing.cap_safe_launch` by default, or the statistical guard); nothing is
   launched while no agent is at work (ready, on a call or in wrap-up: predictive pacing
   dials ahead for agents about to be free); ringing calls beyond what the guard would allow
   with the agents there are now (one went not ready after they were launched) are hung up
   once they have rung ``surplus_min_ring_s`` (15 s), as no-answer attempts;
3. leases each lead from the hopper and writes its attempt row (idempotency key) before
   ``originate``; a number suppressed since it was leased is released, never dialed.

A human answer is popped to the longest-ready agent (:func:`agent_service.pop_call`, with the
lead, the call parameters and the campaign's script or questionnaire, after a ``call_offered``
event) and bridged with ``connect_to_agent``; a lead's callback goes to the agent who asked
for it when that agent is ready (who also hears ``callback_due`` when the lead is dialed).
With no agent free within the grace period (2 s) the callee hears the safe-harbour message
and the attempt is ``abandoned``, counted in the window. Machines follow the AMD policy and
are never live answers; unanswered and busy calls get :data:`DISPOSITION_FOR`, failed
calls the disposition of their cause (:func:`dialer.dialing.failure_disposition`: invalid
numbers are closed, congestion retried, a decline is ``declined``). A trunk that refuses a
call stops the run at once, saying so ("trunk refused: ...; check the trunk credentials").

The grace period starts at the network's answer (:attr:`Answered.answer_time_s`), not when
answer detection decided it was a person: detection time counts against the 2 seconds.

Agents' phones: the loop calls each signed-in agent's phone once
(``connect_agent_phone``, at the seat's ``phone_uri``, or ``sim:<agent code>``) and releases
it at sign-out and when the run ends. Once the gateway reports legs, only agents whose leg
is connected get calls. A leg that fails, is unreachable or hangs up puts the agent in
``phone_lost`` (the cause as the reason; the agent reconnects with ``reconnect_phone``,
and the loop calls the phone again); a call bridged to that agent is hung up and completed
as a dropped contact (``default_disposition``, hung up by the system), never left open.

How the agent API (another process) and this loop talk: only through the database.

- The callee hangs up: the loop moves the agent to wrap-up (:func:`far_end_hung_up`).
- The agent hangs up (``hang_up`` action): the seat leaves the call; the loop sees it at its
  next tick (it reads the seats of its connected calls) and hangs the gateway call up.
- The disposition (and a callback) is an :class:`dialer.models.AgentDisposition` row written
  with the agent's action. The loop completes the attempt with it as soon as the call is over
  and the row has a code, or when the agent leaves the call's wrap-up; a wrap-up that ends
  without one (timed out, or the agent went ready) gets ``default_disposition``, by default
  ``callback_requested``: a lead nobody closed is called again (after the hopper's default
  callback delay) rather than finalised.

Leadership and crash safety follow :mod:`dialer.pacer`: the loop runs only while holding the
campaign's lease and stops launching the moment it is lost, when the campaign stops dialing
or when ``duration_s`` is over; calls in progress then finish (waiting at most
``drain_limit_s`` for agents' dispositions). A crash leaves attempts ``started``; their leases
expire and the hopper reschedules them after the "outcome unknown" delay.

A ``transfer`` to another agent (by 工號) who is ready and serves the campaign moves the call
to them: a pop on their soft-phone, the gateway's bridge moved (``transfer_to_agent``), and
the attempt is completed with the disposition given when *their* wrap-up ends (the first agent
wraps up on their own).

Limits: preview and agentless campaigns are not dialed here (refused by
:func:`check_live_campaign`); a transfer to an agent who is not ready, to a skill group or
an outside number, or a hand-over to the IVR is treated as the agent hanging up, so the
callee is disconnected (three-way calls do not yet reach the gateway either); a hold or a
consultation puts the callee on hold at the gateway (music) at the next tick, and taking the
call back takes them off it;
an agent who goes not ready while a call launched for them rings leaves that call without an
agent: the loop hangs such surplus ringing calls up once they have rung
``surplus_min_ring_s`` (15 s), but one answered sooner waits out the grace period and gets
the safe-harbour message, an abandon the guard did not foresee; an agent serving several running
campaigns is counted by each campaign's loop (the pop's row lock decides who gets it).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from campaigns.hopper import (
    AttemptOutcome,
)
from campaigns.lifecycle import DIALING_STATUSES
from campaigns.models import (
    AbandonWindow as CampaignAbandonWindow,
)
from campaigns.models import (
    AmdResult,
    CallAttempt,
    Campaign,
    Disposition,
    Lead,
)
from core.db import tenant_session
from core.errors import Conflict, InvalidInput, NotFound
from dialer.abandon import ROLLING_24_HOURS_S, ROLLING_30_DAYS_S, AbandonWindow
from dialer.agent_service import (
    agent_from_seat,
    dispositions_for,
    expire_wrap_ups,
    far_end_hung_up,
    list_agents,
    phone_lost,
    pop_call,
    post_event,
    ready_agents,
)
from dialer.agents import AgentAction, AgentState, TransferKind
from dialer.dialing import DialPath, failure_disposition, trunk_refused_reason
from dialer.exceptions import AgentError, DialerError, GatewayError
from dialer.gateway import (
    AgentLegEvent,
    AgentLegState,
    Answered,
    AnswerKind,
    Busy,
    CallEvent,
    CallParameters,
    Failed,
    FailureCause,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    Ringing,
    TelephonyGateway,
)
from dialer.guard import DEFAULT_RISK, AbandonGuard, guard_for, parse_guard
from dialer.leadership import PacerLeadership
from dialer.models import AgentDisposition, AgentEventKind, AgentSeat, AgentStateLog
from dialer.pacer import DISPOSITION_FOR, orphaned_attempts, stop_reason
from dialer.pacing import (
    PacingMode,
    PacingSnapshot,
    PacingStats,
    policy_for_mode,
)
from dialer.scenario import AmdPolicy
from dialer.stats import DialOutcome, RecentStats

__all__ = [
    "SAFE_HARBOUR_MESSAGE",
    "AgentsMode",
    "AttendedConfig",
    "AttendedResult",
    "LiveDialingUnavailable",
    "check_live_campaign",
    "run_attended",
]

log = logging.getLogger(__name__)

SAFE_HARBOUR_MESSAGE = "safe_harbour"
MACHINE_MESSAGE = "machine_message"

_CALL_STATES = frozenset(
    {AgentState.DIALING, AgentState.ON_CALL, AgentState.ON_HOLD, AgentState.CONSULTING,
     AgentState.CONFERENCE}
)  # fmt: skip
# As the simulated loop records them: our side's agent is the caller.
#: The hang-up cause of an attempt cancelled ringing because no agent would be free for it.
SURPLUS_CAUSE = "dialer: no agent free (cancelled ringing)"
#: Agent states in which the callee is on hold (hold music at the gateway).
_HELD_STATES = frozenset({AgentState.ON_HOLD, AgentState.CONSULTING})
_HANGUP_CAUSE = {
    HangupParty.AGENT: "caller",
    HangupParty.CALLEE: "callee",
    HangupParty.SYSTEM: "system",
}


class AgentsMode(StrEnum):
    """Who takes a pacer's calls: simulated agents (the simulator) or the real agent seats."""

    SIMULATED = "simulated"
    LIVE = "live"


class LiveDialingUnavailable(DialerError, Conflict):
    """The campaign cannot be dialed for real agents (says what to set up first)."""

    code = "live-dialing-unavailable"
    title = "Live dialing unavailable"


@dataclass
class AttendedConfig:
    """How the attended loop runs; times are seconds."""

    #: None: dial until the campaign pauses or stops (the run-control service).
    duration_s: float | None = 8 * 3600
    tick_s: float = 1.0
    abandon_grace_s: float = 2.0
    amd_policy: AmdPolicy = AmdPolicy.HANG_UP
    default_disposition: str = "callback_requested"
    lease_seconds: int = 300
    check_s: float = 2.0
    drain_limit_s: float = 300.0
    hopper_backoff_s: float = 30.0
    #: A ringing call no agent would be free for (an agent went not ready or signed out after
    #: it was launched) is hung up once it has rung this long, unanswered, rather than risk an
    #: abandon; 15 s is the US minimum before disconnecting an unanswered call (47 CFR
    #: 64.1200(a)(6): 15 seconds or four rings). None: never cancel.
    surplus_min_ring_s: float | None = 15.0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AttendedConfig:
        """The config from a job's parameters (unknown keys are ignored)."""
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        if "amd_policy" in known:
            known["amd_policy"] = AmdPolicy(known["amd_policy"])
        return cls(**known)


@dataclass
class AttendedResult:
    """What one attended run did."""

    dials: int = 0
    completed: int = 0
    late_completions: int = 0
    suppressed_at_dial: int = 0
    orphans_found: int = 0
    live_answers: int = 0
    machine_answers: int = 0
    connected: int = 0
    abandoned: int = 0
    agent_dispositions: int = 0
    default_dispositions: int = 0
    phones_lost: int = 0
    dropped_calls: int = 0
    #: ringing calls hung up because no agent would be free for them (attempts: no answer)
    surplus_cancelled: int = 0
    #: connected calls an agent handed to another agent
    transfers: int = 0
    stopped_because: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return dict(self.__dict__)


def _campaign_codes(session: Session, campaign_id: uuid.UUID) -> set[str]:
    rows = session.exec(select(Disposition.code).where(Disposition.campaign_id == campaign_id))
    return set(rows)


def check_live_campaign(
    *, session: Session, campaign: Campaign, default_disposition: str | None = None
) -> list[AgentSeat]:
    """The agent seats that would take the campaign's calls; raises LiveDialingUnavailable
    (409) when there are none or the campaign cannot be dialed live, InvalidInput (422) for a
    default disposition outside the campaign's codes."""
    if campaign.skill_group is None:
        raise LiveDialingUnavailable(
            "the campaign has no skill_group, so no agents can be found for it; set one "
            "(PATCH /campaigns/{id} with skill_group) or start the pacer with agents_mode "
            "'simulated'",
            extra={"field": "skill_group"},
        )
    if not campaign.caller_id:
        # Never "anonymous": carriers reject or flag withheld numbers, and regulators
        # (Ofcom, the FCC) require a number the callee can call back.
        raise LiveDialingUnavailable(
            "the campaign has no caller_id, the number its calls present; set one (PATCH "
            "/campaigns/{id} with caller_id, e.g. +862155550000) before dialing live",
            extra={"field": "caller_id"},
        )
    mode = PacingMode(campaign.pacing_mode.value)
    if mode is PacingMode.AGENTLESS:
        raise LiveDialingUnavailable(
            "agentless campaigns are interviewed by the IVR, not by agents; start the pacer "
            "with agents_mode 'simulated'",
            extra={"field": "agents_mode"},
        )
    if mode is PacingMode.PREVIEW:
        raise LiveDialingUnavailable(
            "the live loop does not dial preview campaigns yet; use progressive, power or "
            "predictive pacing, or agents_mode 'simulated'",
            extra={"field": "agents_mode"},
        )
    seats = list_agents(
        session=session, client_scope=[campaign.client_id], skill_group=campaign.skill_group
    )
    if not seats:
        raise LiveDialingUnavailable(
            f"no agent in skill group {campaign.skill_group!r} serves this client; create "
            "agents (POST /agents with that skill group and this client) and sign them in, "
            "or start the pacer with agents_mode 'simulated'",
            extra={"field": "agents_mode", "skill_group": campaign.skill_group},
        )
    if default_disposition is not None:
        codes = _campaign_codes(session, campaign.id)
        if default_disposition not in codes:
            raise InvalidInput(
                f"default_disposition {default_disposition!r} is not one of the campaign's "
                f"codes; use one of {', '.join(sorted(codes))}",
                extra={"field": "default_disposition", "allowed": sorted(codes)},
            )
    return seats


# --------------------------------------------------------------------------- calls


class _Phase(StrEnum):
    RINGING = "ringing"
    WAITING = "waiting"  # answered, waiting for an agent
    CONNECTED = "connected"
    CLOSING = "closing"  # machine or abandoned: a message or a hang-up is under way
    WRAP = "wrap"  # the conversation is over; waiting for the agent's disposition


@dataclass
class _Call:
    call_id: str
    attempt_id: uuid.UUID
    lease_token: uuid.UUID
    lead: dict[str, Any]
    phone: str
    originated_s: float
    callback_agent: str | None = None
    phase: _Phase = _Phase.RINGING
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

    @property
    def agent_call_id(self) -> str:
        """The id of the call on the agent's soft-phone (stable across gateways)."""
        return self.attempt_id.hex

    @property
    def live(self) -> bool:
        return self.answer_kind is AnswerKind.HUMAN


@dataclass(frozen=True)
class _CampaignInfo:
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run_attended(
    *,
    client_id: uuid.UUID,
    campaign_id: uuid.UUID,
    leadership: PacerLeadership,
    gateway: TelephonyGateway,
    config: AttendedConfig | None = None,
    clock: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
    journal: Callable[[str], object] | None = None,
    acquire_timeout_s: float = 30.0,
    on_launch: Callable[[PacingSnapshot, int], None] | None = None,
    on_live_answer: Callable[[float, bool], None] | None = None,
    progress: Callable[[float], None] | None = None,
) -> AttendedResult:
    """Become the campaign's pacer and dial for its real agents until the day ends, the
    campaign stops dialing or leadership is lost; calls in progress finish first.

    ``journal(attempt_id)`` hears each attempt right before it is originated;
    ``on_launch(snapshot, launched)`` every pacing decision (after the clamp);
    ``on_live_answer(at_s, abandoned)`` every live answer counted in the abandon window.
    Times given to the gateway are seconds since the loop started, on ``clock``.
    """
    config = config or AttendedConfig()
    result = AttendedResult()
    waited = 0.0
    while not leadership.acquire():
        if waited >= acquire_timeout_s:
            result.stopped_because = "another pacer holds the campaign"
            return result
        sleep(0.5)
        waited += 0.5
    try:
        orphans = orphaned_attempts(client_id=client_id, campaign_id=campaign_id)
        result.orphans_found = len(orphans)
        if orphans:
            log.warning(
                "took over campaign %s with %d attempts left in flight by a previous pacer; "
                "their leases expire and the hopper reschedules them",
                campaign_id,
                len(orphans),
            )
        loop = _AttendedLoop(
            client_id=client_id,
            campaign_id=campaign_id,
            leadership=leadership,
            gateway=gateway,
            config=config,
            clock=clock,
            sleep=sleep,
            journal=journal,
            result=result,
            on_launch=on_launch,
            on_live_answer=on_live_answer,
            progress=progress,
        )
        loop.run()
        return result
    finally:
        leadership.release()


class _AttendedLoop:
    """The state of one attended run (see the module docstring)."""

    def __init__(
        self,
        *,
        client_id: uuid.UUID,
        campaign_id: uuid.UUID,
        leadership: PacerLeadership,
        gateway: TelephonyGateway,
        config: AttendedConfig,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        journal: Callable[[str], object] | None,
        result: AttendedResult,
        on_launch: Callable[[PacingSnapshot, int], None] | None,
        on_live_answer: Callable[[float, bool], None] | None,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.client_id = client_id
        self.campaign_id = campaign_id
        self.leadership = leadership
        self.gateway = gateway
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.journal = journal
        self.result = result
        self.on_launch = on_launch
        self.on_live_answer = on_live_answer
        self.progress = progress
        self.started = clock()
        self.info = self._load_campaign()
        if config.default_disposition not in self.info.codes:
            raise InvalidInput(
                f"default_disposition {config.default_disposition!r} is not one of the "
                f"campaign's codes; use one of {', '.join(sorted(self.info.codes))}",
                extra={"field": "default_disposition"},
            )
        self.policy = policy_for_mode(
            self.info.mode,
            power_ratio=self.info.power_ratio,
            abandon_guard=self.info.guard,
            abandon_risk=self.info.risk,
        )
        self.guard = guard_for(self.info.guard, self.info.risk)
        self.stats = RecentStats(prior=PacingStats(no_answer_timeout_s=self.info.max_ring_s))
        self.stats_cache: tuple[float, PacingStats] | None = None
        self.window = self._load_window()
        self.last_window_s = -float("inf")
        self.calls: dict[str, _Call] = {}
        # Agents in the wrap-up of one of our calls: seat -> (agent call id, wrap start).
        self.wrapping: dict[uuid.UUID, tuple[str, float]] = {}
        self.stop = ""
        self.stopped_s: float | None = None
        self.quiet_until_s = -1.0
        # Agents' phone legs by agent code: what the gateway said, and the legs asked for.
        self.legs: dict[str, AgentLegState] = {}
        self.phones: dict[str, str] = {}
        self.legs_reported = False
        self.path = DialPath(
            client_id=client_id,
            campaign_id=campaign_id,
            worker_id=leadership.holder_id,
            lease_seconds=config.lease_seconds,
            counters=result,
            journal=journal,
            skill_group=self.info.skill_group,
        )

    # -- set-up ---------------------------------------------------------------------------

    def _session(self) -> Any:
        return tenant_session([self.client_id])

    def _load_campaign(self) -> _CampaignInfo:
        from surveys.service import get_version

        with self._session() as session:
            campaign = session.get(Campaign, self.campaign_id)
            if campaign is None:
                raise NotFound(f"campaign {self.campaign_id} does not exist")
            check_live_campaign(session=session, campaign=campaign)
            questionnaire: dict[str, Any] | None = None
            if campaign.questionnaire_version_id is not None:
                try:
                    version = get_version(
                        session=session, version_id=campaign.questionnaire_version_id
                    )
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
            assert campaign.skill_group is not None  # checked above
            stored = campaign.pacer_settings or {}
            guard, risk = parse_guard(
                stored.get("abandon_guard", AbandonGuard.STRICT.value),
                stored.get("abandon_risk", DEFAULT_RISK),
            )
            return _CampaignInfo(
                name=campaign.name,
                skill_group=campaign.skill_group,
                mode=PacingMode(campaign.pacing_mode.value),
                cap=campaign.abandon_rate_cap,
                power_ratio=float((campaign.pacing_params or {}).get("ratio", 2.0)),
                max_ring_s=float(campaign.max_ring_s),
                caller=campaign.caller_id or "",  # checked above: never anonymous
                window_s=window_s,
                codes=frozenset(_campaign_codes(session, campaign.id)),
                script=script,
                guard=guard,
                risk=risk,
            )

    def _load_window(self) -> AbandonWindow:
        """The compliance window, resumed from the campaign's answered attempts."""
        since = self.started - timedelta(seconds=self.info.window_s)
        with self._session() as session:
            rows = session.exec(
                select(CallAttempt.ended_at, CallAttempt.abandoned).where(
                    CallAttempt.campaign_id == self.campaign_id,
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
            offset = min((ended_at - self.started).total_seconds(), 0.0)
            start = (offset // 60.0) * 60.0
            counts = buckets.setdefault(start, [0, 0])
            counts[0] += 1
            counts[1] += int(bool(abandoned))
        return AbandonWindow.from_buckets(
            [(start, live, ab) for start, (live, ab) in sorted(buckets.items())],
            self.info.window_s,
        )

    # -- time -----------------------------------------------------------------------------

    def now_s(self) -> float:
        return (self.clock() - self.started).total_seconds()

    def at(self, seconds: float) -> datetime:
        return self.started + timedelta(seconds=seconds)

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        config = self.config
        next_tick = 0.0
        next_check = 0.0
        next_renew = config.lease_seconds / 3
        while True:
            now = self.now_s()
            self._poll(now)
            if not self.stop and now >= next_check:
                next_check = now + config.check_s
                self._check(now)
            if not self.stop and config.duration_s is not None and now >= config.duration_s:
                self._stop("end of the requested duration", now)
            ticking = now >= next_tick
            if ticking:
                self._sync_agents(now)
                self._sync_phones(now)
                self._poll(now)
            self._route(now)
            if now >= next_renew:
                next_renew = now + config.lease_seconds / 3
                self._renew(now)
            if ticking:
                next_tick = now + config.tick_s
                if not self.stop:
                    self._launch(now)
                if self.progress is not None:
                    self.progress(now)
            if self.stop:
                assert self.stopped_s is not None
                if now - self.stopped_s >= config.drain_limit_s:
                    self._close_wraps(now)
                if not self.calls:
                    break
            # whole microseconds, rounded up: a datetime clock moves by no less
            delay = math.ceil(max(0.0, self._wake_at(next_tick) - self.now_s()) * 1e6) / 1e6
            self.sleep(delay)
        for code in list(self.phones):
            self._release_phone(code, self.now_s())
        self.result.stopped_because = self.stop

    def _wake_at(self, next_tick: float) -> float:
        wake = next_tick
        gateway_at = self.gateway.next_event_time()
        if gateway_at is not None:
            wake = min(wake, gateway_at)
        for call in self.calls.values():
            if call.phase is _Phase.WAITING:
                wake = min(wake, call.waiting_since_s + self.config.abandon_grace_s)
        return wake

    def _stop(self, reason: str, now: float) -> None:
        if not self.stop:
            self.stop = reason
            self.stopped_s = now
            log.info("attended pacer of campaign %s stops launching: %s", self.campaign_id, reason)

    def _check(self, now: float) -> None:
        if not self.leadership.renew():
            self._stop("leadership lost", now)
            return
        with self._session() as session:
            current = session.get(Campaign, self.campaign_id)
            if current is None or current.status not in DIALING_STATUSES:
                self._stop(stop_reason(current.status if current else None), now)

    def _renew(self, now: float) -> None:
        self.path.renew(self.at(now))

    # -- gateway events -------------------------------------------------------------------

    def _poll(self, now: float) -> None:
        for event in self.gateway.poll(now):
            if isinstance(event, AgentLegEvent):
                self._on_leg(event, now)
                continue
            call = self.calls.get(event.call_id)
            if call is not None:
                self._on_event(call, event, now)

    def _on_event(self, call: _Call, event: CallEvent, now: float) -> None:
        at = event.at_s
        if isinstance(event, Ringing):
            if call.ringing_s is None:
                call.ringing_s = at
        elif isinstance(event, Answered):
            self._on_answer(call, event)
        elif isinstance(event, NoAnswer | Busy | Failed):
            self._on_unanswered(call, event, now)
        elif isinstance(event, HungUp):
            self._on_hung_up(call, event, now)
        elif isinstance(event, MessageFinished) and call.phase is _Phase.CLOSING:
            self._close(call, at, now)

    def _on_answer(self, call: _Call, event: Answered) -> None:
        at = event.at_s
        # The network's answer: the safe-harbour clock started there, not at the AMD verdict.
        call.answered_s = event.answer_time_s
        call.answer_kind = event.kind
        if call.ringing_s is None:
            call.ringing_s = call.originated_s
        human = event.kind is AnswerKind.HUMAN
        self.stats.record_outcome(
            at, DialOutcome.HUMAN if human else DialOutcome.MACHINE, event.ring_time_s
        )
        if human or self.config.amd_policy is AmdPolicy.PASS_TO_AGENT:
            if not human:
                self.result.machine_answers += 1
            call.phase = _Phase.WAITING
            call.waiting_since_s = event.answer_time_s
            self.path.answered(call.attempt_id, self.at(at))  # live: waiting for an agent
            return
        self.result.machine_answers += 1
        call.phase = _Phase.CLOSING
        if self.config.amd_policy is AmdPolicy.LEAVE_MESSAGE:
            try:
                self.gateway.play_message(call.call_id, MACHINE_MESSAGE, now=at)
                return
            except GatewayError as exc:
                log.warning("could not leave a message on call %s: %s", call.call_id, exc)
        self._close(call, at, at)

    def _on_unanswered(self, call: _Call, event: NoAnswer | Busy | Failed, now: float) -> None:
        at = event.at_s
        if isinstance(event, NoAnswer):
            outcome, result = "no_answer", DialOutcome.NO_ANSWER
        elif isinstance(event, Busy):
            outcome, result = "busy", DialOutcome.BUSY
        else:
            outcome, result = "failed", DialOutcome.FAILED
        self.stats.record_outcome(at, result, at - call.originated_s)
        call.ended_s = at
        disposition = DISPOSITION_FOR[outcome]
        if isinstance(event, Failed):
            disposition = failure_disposition(event.cause, self.info.codes)
            if event.cause is FailureCause.TRUNK_REFUSED:
                self._stop(trunk_refused_reason(event.detail), now)
                log.error(
                    "campaign %s: the trunk refused a call (%s); dialing stops",
                    self.campaign_id,
                    event.detail,
                )
        self._complete(call, disposition, now)

    def _on_hung_up(self, call: _Call, event: HungUp, now: float) -> None:
        at = event.at_s
        if call.phase is _Phase.CONNECTED:
            self._conversation_over(call, at, event.by)
            return
        if call.phase is _Phase.WRAP:
            return  # already over
        call.ended_s = at
        call.hangup_by = event.by
        if call.phase is _Phase.WAITING:
            # The callee gave up before an agent was free: counted as abandoned (the
            # conservative reading for the cap).
            if call.live:
                call.abandoned = True
                self._count_live_answer(at, abandoned=True)
            self._complete(call, "abandoned" if call.live else "answering_machine", now)
            return
        if call.phase is _Phase.RINGING:
            self._complete(call, "no_answer", now)
            return
        # closing: the safe-harbour message or the machine's hang-up is over
        self._complete(call, "abandoned" if call.abandoned else "answering_machine", now)

    def _conversation_over(self, call: _Call, at: float, by: HangupParty) -> None:
        """A connected call ended: the agent (moved there if the callee hung up) wraps up."""
        assert call.connected_s is not None
        assert call.seat_id is not None
        call.ended_s = at
        call.hangup_by = by
        call.phase = _Phase.WRAP
        self.stats.record_talk(at, at - call.connected_s)
        if by is not HangupParty.AGENT:
            with self._session() as session:
                far_end_hung_up(
                    session=session,
                    agent_id=call.seat_id,
                    call_id=call.agent_call_id,
                    at=self.at(at),
                )
        self.wrapping.setdefault(call.seat_id, (call.agent_call_id, at))

    def _close(self, call: _Call, at: float, now: float) -> None:
        """End a machine or abandoned call; its HungUp event completes the attempt."""
        if not self._hang_up(call, at, HangupParty.SYSTEM):
            call.ended_s = at
            self._complete(call, "abandoned" if call.abandoned else "answering_machine", now)

    def _hang_up(self, call: _Call, at: float, by: HangupParty) -> bool:
        try:
            self.gateway.hang_up(call.call_id, now=at, by=by)
        except GatewayError as exc:
            log.warning("could not hang up call %s: %s", call.call_id, exc)
            return False
        return True

    def _count_live_answer(self, at: float, *, abandoned: bool) -> None:
        # The window takes answers in time order; events polled late are stamped no earlier.
        at = max(at, self.last_window_s)
        self.last_window_s = at
        self.window.record_live_answer(at, abandoned=abandoned)
        self.result.live_answers += 1
        if abandoned:
            self.result.abandoned += 1
        if self.on_live_answer is not None:
            self.on_live_answer(at, abandoned)

    # -- agents' phones -------------------------------------------------------------------

    def _sync_phones(self, now: float) -> None:
        """Call the phone of each signed-in agent once; release those of signed-out agents."""
        with self._session() as session:
            seats = list_agents(
                session=session, client_scope=[self.client_id], skill_group=self.info.skill_group
            )
        for seat in seats:
            code = seat.agent_code
            if seat.state is AgentState.SIGNED_OUT:
                if code in self.phones:
                    self._release_phone(code, now)
            elif seat.state is not AgentState.PHONE_LOST and code not in self.phones:
                address = seat.phone_uri or f"sim:{code}"
                self.phones[code] = address
                try:
                    self.gateway.connect_agent_phone(code, address, now=now)
                except GatewayError as exc:
                    self._lose_phone(code, AgentLegState.FAILED, str(exc), now, None, now)

    def _release_phone(self, code: str, now: float) -> None:
        self.phones.pop(code, None)
        self.legs.pop(code, None)
        try:
            self.gateway.release_agent_phone(code, now=now)
        except GatewayError as exc:
            log.warning("could not release the phone of agent %s: %s", code, exc)

    def _routable(self, code: str) -> bool:
        """Whether calls may be bridged to the agent's phone: once the gateway reports legs,
        only to a connected one (a gateway that never does is trusted to bridge anyway)."""
        return not self.legs_reported or self.legs.get(code) is AgentLegState.CONNECTED

    def _on_leg(self, event: AgentLegEvent, now: float) -> None:
        self.legs_reported = True
        if event.state is AgentLegState.CONNECTED:
            if event.agent_id in self.phones:
                self.legs[event.agent_id] = AgentLegState.CONNECTED
            return
        if event.agent_id not in self.phones:
            return  # released already (signed out): nothing is lost
        self._lose_phone(event.agent_id, event.state, event.cause, event.at_s, event.call_id, now)

    def _lose_phone(
        self,
        code: str,
        state: AgentLegState,
        cause: str,
        at: float,
        call_id: str | None,
        now: float,
    ) -> None:
        """The agent's phone is gone: the agent to ``phone_lost``, its call finished."""
        self.phones.pop(code, None)
        self.legs.pop(code, None)
        self.result.phones_lost += 1
        reason = f"phone {state.value.replace('_', ' ')}: {cause}" if cause else None
        reason = reason or f"phone {state.value.replace('_', ' ')}"
        log.warning("agent %s lost the phone leg (%s)", code, reason)
        bridged = self.calls.get(call_id) if call_id is not None else None
        if bridged is None or bridged.agent_code != code:
            bridged = next(
                (
                    c
                    for c in self.calls.values()
                    if c.agent_code == code and c.phase is _Phase.CONNECTED
                ),
                None,
            )
        with self._session() as session:
            seat_id = session.exec(select(AgentSeat.id).where(AgentSeat.agent_code == code)).first()
            if seat_id is not None:
                phone_lost(session=session, agent_id=seat_id, reason=reason, at=self.at(at))
        if bridged is not None and bridged.phase is _Phase.CONNECTED:
            self._drop_call(bridged, at, now)

    def _drop_call(self, call: _Call, at: float, now: float) -> None:
        """A connected call whose agent's phone is gone: the callee is hung up (by the
        system) and the attempt completed as a dropped contact."""
        assert call.connected_s is not None
        self._hang_up(call, at, HangupParty.SYSTEM)
        call.ended_s = at
        call.hangup_by = HangupParty.SYSTEM
        self.stats.record_talk(at, at - call.connected_s)
        self.result.dropped_calls += 1
        self.result.default_dispositions += 1
        self._complete(call, self.config.default_disposition, now, wrap_s=0.0)

    # -- agents ---------------------------------------------------------------------------

    def _route(self, now: float) -> None:
        """Connect answered calls to ready agents; abandon those past the grace period."""
        waiting = sorted(
            (c for c in self.calls.values() if c.phase is _Phase.WAITING),
            key=lambda c: c.waiting_since_s,
        )
        if not waiting:
            return
        with self._session() as session:
            ready = [
                (seat.id, seat.agent_code, seat.state_since)
                for seat in ready_agents(
                    session=session,
                    skill_group=self.info.skill_group,
                    client_id=self.client_id,
                    now=self.at(now),
                )
                if self._routable(seat.agent_code)
            ]
        for call in waiting:
            connected = False
            while ready and not connected:
                index = next((i for i, r in enumerate(ready) if r[1] == call.callback_agent), 0)
                seat_id, code, since = ready.pop(index)
                connected = self._connect(call, seat_id, code, max(self.at(now), since), now)
            if not connected and now >= call.waiting_since_s + self.config.abandon_grace_s:
                self._abandon(call, now)

    def _connect(
        self, call: _Call, seat_id: uuid.UUID, code: str, moment: datetime, now: float
    ) -> bool:
        params = CallParameters(self.info.caller, call.phone, code, self.info.skill_group)
        try:
            with self._session() as session:
                post_event(
                    session=session,
                    agent_id=seat_id,
                    client_id=self.client_id,
                    kind=AgentEventKind.CALL_OFFERED,
                    call_id=call.agent_call_id,
                    attempt_id=call.attempt_id,
                    payload={
                        "call_id": call.agent_call_id,
                        "attempt_id": str(call.attempt_id),
                        "lead_id": call.lead.get("id"),
                        "live": call.live,
                        "at": moment.isoformat(),
                    },
                )
                pop_call(
                    session=session,
                    agent_id=seat_id,
                    client_id=self.client_id,
                    attempt_id=call.attempt_id,
                    lead=call.lead,
                    params=params,
                    script=self.info.script,
                    at=moment,
                    call_id=call.agent_call_id,
                )
        except AgentError as exc:
            # The agent changed state since it was read (another campaign took it, or it
            # went not ready): offer the call to the next one.
            log.info("agent %s could not take call %s: %s", code, call.call_id, exc)
            return False
        call.phase = _Phase.CONNECTED
        call.seat_id = seat_id
        call.agent_code = code
        call.connected_s = now
        self.result.connected += 1
        if call.live:
            self._count_live_answer(now, abandoned=False)
        try:
            self.gateway.connect_to_agent(
                call.call_id, agent_id=code, skill_group=self.info.skill_group, now=now
            )
        except GatewayError as exc:
            # The callee left in the meantime: the agent wraps up the empty pop.
            log.warning("could not bridge call %s to agent %s: %s", call.call_id, code, exc)
            self._conversation_over(call, now, HangupParty.CALLEE)
        return True

    def _abandon(self, call: _Call, now: float) -> None:
        call.phase = _Phase.CLOSING
        if not call.live:  # a machine passed to agents and nobody took it
            self._close(call, now, now)
            return
        call.abandoned = True
        self._count_live_answer(now, abandoned=True)
        try:
            self.gateway.play_message(call.call_id, SAFE_HARBOUR_MESSAGE, now=now)
        except GatewayError as exc:
            log.warning("could not play the safe-harbour message on %s: %s", call.call_id, exc)
            self._close(call, now, now)

    def _sync_agents(self, now: float) -> None:
        """Expire wrap-ups; hang up calls their agents left; complete finished wrap-ups."""
        active = [c for c in self.calls.values() if c.phase in (_Phase.CONNECTED, _Phase.WRAP)]
        seat_ids = {c.seat_id for c in active if c.seat_id is not None} | set(self.wrapping)
        with self._session() as session:
            expire_wrap_ups(session=session, now=self.at(now))
            seats = (
                {
                    seat.id: seat
                    for seat in session.exec(
                        select(AgentSeat).where(col(AgentSeat.id).in_(list(seat_ids)))
                    )
                }
                if seat_ids
                else {}
            )
            given = dispositions_for(session=session, attempt_ids=[c.attempt_id for c in active])
        for seat_id, (agent_call_id, since) in list(self.wrapping.items()):
            seat = seats.get(seat_id)
            agent = None if seat is None else agent_from_seat(seat)
            if agent is None or agent.call_id != agent_call_id:
                del self.wrapping[seat_id]
                self.stats.record_wrap(now, now - since)
        for call in active:
            seat = seats.get(call.seat_id) if call.seat_id is not None else None
            agent = None if seat is None else agent_from_seat(seat)
            on_this_call = agent is not None and agent.call_id == call.agent_call_id
            if call.phase is _Phase.CONNECTED:
                left = not (on_this_call and agent is not None and agent.state in _CALL_STATES)
                if left and not call.agent_left:
                    target = self._transfer_target(call) if seat is not None else None
                    if target is not None and self._transfer(call, target, now):
                        continue  # the call is the new agent's now
                    # the agent hung up (or transferred nowhere we can reach) through the API
                    call.agent_left = True
                    if not self._hang_up(call, now, HangupParty.AGENT):
                        self._conversation_over(call, now, HangupParty.AGENT)
                elif not left and agent is not None:
                    self._sync_hold(call, agent.state in _HELD_STATES, now)
                continue
            row = given.get(call.attempt_id)
            if row is not None and row.agent_code != call.agent_code:
                row = None  # given by the agent who transferred the call: the new one decides
            if (row is not None and row.disposition is not None) or not on_this_call:
                self._complete_wrap(call, row, now)

    def _transfer_target(self, call: _Call) -> str | None:
        """The agent code the call's agent transferred it to, if that is how they left it."""
        assert call.seat_id is not None
        with self._session() as session:
            last = session.exec(
                select(AgentStateLog)
                .where(
                    AgentStateLog.agent_seat_id == call.seat_id,
                    AgentStateLog.call_id == call.agent_call_id,
                )
                .order_by(col(AgentStateLog.seq).desc())
                .limit(1)
            ).first()
        if last is None or last.action is not AgentAction.TRANSFER:
            return None
        target = last.details.get("target") or {}
        if target.get("kind") != TransferKind.AGENT.value:
            return None  # skill groups and outside numbers: not through this loop yet
        code = target.get("target")
        return code if isinstance(code, str) else None

    def _transfer(self, call: _Call, code: str, now: float) -> bool:
        """Hand a connected call to agent ``code`` (ready, serving the client and group):
        pop it to them, move the gateway's bridge, and follow them from now on. False (the
        call is then hung up as before) when they cannot take it."""
        if not self._routable(code):
            return False
        with self._session() as session:
            seat = session.exec(select(AgentSeat).where(AgentSeat.agent_code == code)).first()
        if seat is None or seat.state is not AgentState.READY:
            log.info("call %s: transfer target %s is not ready; hanging up", call.call_id, code)
            return False
        params = CallParameters(self.info.caller, call.phone, code, self.info.skill_group)
        try:
            with self._session() as session:
                pop_call(
                    session=session,
                    agent_id=seat.id,
                    client_id=self.client_id,
                    attempt_id=call.attempt_id,
                    lead=call.lead,
                    params=params,
                    script=self.info.script,
                    at=self.at(now),
                    call_id=call.agent_call_id,
                )
        except AgentError as exc:
            log.info("call %s: agent %s cannot take the transfer: %s", call.call_id, code, exc)
            return False
        try:
            self.gateway.transfer_to_agent(
                call.call_id, agent_id=code, skill_group=self.info.skill_group, now=now
            )
        except GatewayError as exc:
            log.warning("could not transfer call %s to agent %s: %s", call.call_id, code, exc)
            with self._session() as session:  # the new agent wraps up the empty pop
                far_end_hung_up(
                    session=session, agent_id=seat.id, call_id=call.agent_call_id, at=self.at(now)
                )
            return False
        call.seat_id = seat.id
        call.agent_code = code
        call.held = False
        self.result.transfers += 1
        return True

    def _sync_hold(self, call: _Call, held: bool, now: float) -> None:
        """Put the callee on hold (music) while the agent holds or consults, and back."""
        if held == call.held:
            return
        try:
            if held:
                self.gateway.hold(call.call_id, now=now)
            else:
                self.gateway.unhold(call.call_id, now=now)
        except GatewayError as exc:  # the callee left meanwhile: its hang-up event follows
            log.warning("could not %s call %s: %s", "hold" if held else "unhold", call.call_id, exc)
            return
        call.held = held

    def _complete_wrap(self, call: _Call, row: AgentDisposition | None, now: float) -> None:
        callback_at = None if row is None else row.callback_at
        if row is not None and row.disposition is not None:
            disposition = row.disposition
            self.result.agent_dispositions += 1
        elif callback_at is not None:
            disposition = "callback_requested"
            self.result.agent_dispositions += 1
        else:
            disposition = self.config.default_disposition
            self.result.default_dispositions += 1
        if disposition not in self.info.codes:  # the campaign's vocabulary changed meanwhile
            disposition = self.config.default_disposition
        wrap_started = call.ended_s if call.ended_s is not None else now
        self._complete(
            call,
            disposition,
            now,
            wrap_s=max(0.0, now - wrap_started),
            callback_at=callback_at,
            # a callback for the group goes to whichever agent of it is free when it is due
            callback_agent=None if row is None or row.callback_to_group else row.agent_code,
            applied=row,
        )

    def _close_wraps(self, now: float) -> None:
        """After the drain limit, stop waiting for agents' dispositions."""
        for call in list(self.calls.values()):
            if call.phase is _Phase.WRAP:
                with self._session() as session:
                    row = dispositions_for(session=session, attempt_ids=[call.attempt_id]).get(
                        call.attempt_id
                    )
                self._complete_wrap(call, row, now)

    # -- attempts -------------------------------------------------------------------------

    def _complete(
        self,
        call: _Call,
        disposition: str,
        now: float,
        *,
        wrap_s: float | None = None,
        callback_at: datetime | None = None,
        callback_agent: str | None = None,
        applied: AgentDisposition | None = None,
    ) -> None:
        ended = call.ended_s if call.ended_s is not None else now
        amd = AmdResult.not_used
        if call.answer_kind is AnswerKind.HUMAN:
            amd = AmdResult.human
        elif call.answer_kind is AnswerKind.MACHINE:
            amd = AmdResult.machine
        talk = 0.0
        if call.connected_s is not None:
            talk = max(0.0, ended - call.connected_s)
        outcome = AttemptOutcome(
            disposition=disposition,
            ended_at=self.at(ended),
            ringing_at=None if call.ringing_s is None else self.at(call.ringing_s),
            answered_at=None if call.answered_s is None else self.at(call.answered_s),
            agent_connected_at=None if call.connected_s is None else self.at(call.connected_s),
            talk_s=round(talk, 1),
            wrap_s=None if wrap_s is None else round(wrap_s, 1),
            abandoned=call.abandoned,
            amd_result=amd,
            hangup_cause=(
                SURPLUS_CAUSE
                if call.surplus
                else None
                if call.hangup_by is None
                else _HANGUP_CAUSE[call.hangup_by]
            ),
            agent_id=call.agent_code,
            callback_at=callback_at,
            callback_agent=callback_agent,
        )
        self.calls.pop(call.call_id, None)

        def mark_applied(session: Session) -> None:
            if applied is not None:
                row = session.get(AgentDisposition, applied.id)
                if row is not None:
                    row.applied_at = self.at(now)
                    session.add(row)

        self.path.complete(call.attempt_id, outcome, self.at(now), also=mark_applied)

    # -- launching ------------------------------------------------------------------------

    def _pacing_stats(self, now: float) -> PacingStats:
        if self.stats_cache is None or now - self.stats_cache[0] >= 5.0:
            self.stats_cache = (now, self.stats.snapshot(now, self.info.max_ring_s))
        return self.stats_cache[1]

    def snapshot(self, now: float, staff: Collection[AgentSeat]) -> PacingSnapshot:
        """The pacing snapshot for the agents ``staff`` (the skill group serving the client)."""
        moment = self.at(now)
        by_seat = {c.seat_id: c for c in self.calls.values() if c.phase is _Phase.CONNECTED}
        ready = [s for s in staff if s.state is AgentState.READY and self._routable(s.agent_code)]
        talking: list[float] = []
        wrapping: list[float] = []
        for seat in staff:
            if seat.state in _CALL_STATES:
                ours = by_seat.get(seat.id)
                if ours is not None and ours.connected_s is not None:
                    talking.append(max(0.0, now - ours.connected_s))
                else:
                    talking.append(max(0.0, (moment - seat.state_since).total_seconds()))
            elif seat.state is AgentState.WRAP_UP:
                wrapping.append(max(0.0, (moment - seat.state_since).total_seconds()))
        counts = self.window.counts(now)
        return PacingSnapshot(
            now_s=now,
            agents_signed_in=len(ready) + len(talking) + len(wrapping),
            agents_ready=len(ready),
            talk_elapsed_s=talking,
            wrap_elapsed_s=wrapping,
            ringing_elapsed_s=[
                now - c.originated_s for c in self.calls.values() if c.phase is _Phase.RINGING
            ],
            calls_waiting=sum(1 for c in self.calls.values() if c.phase is _Phase.WAITING),
            stats=self._pacing_stats(now),
            live_answers_in_window=counts.live_answers,
            abandoned_in_window=counts.abandoned,
            abandon_cap=self.info.cap,
        )

    def _launch(self, now: float) -> None:
        with self._session() as session:
            staff = list_agents(
                session=session,
                client_scope=[self.client_id],
                skill_group=self.info.skill_group,
            )
        snapshot = self.snapshot(now, staff)
        if self._cancel_surplus(snapshot, now):
            return  # the next tick launches from the smaller exposure
        launch = self.guard(snapshot, self.policy.calls_to_launch(snapshot))
        if snapshot.agents_signed_in <= 0:
            launch = 0  # attended dialing never launches with no agent at work
        if self.on_launch is not None:
            self.on_launch(snapshot, launch)
        if launch > 0 and now >= self.quiet_until_s:
            self._dial(launch, now)

    def _cancel_surplus(self, snapshot: PacingSnapshot, now: float) -> int:
        """Hang up ringing calls beyond what the guard would launch now; returns how many.

        The guard let each call launch for the agents it counted then. When fewer will be free
        (an agent went not ready, signed out or lost their phone), the guard is asked how
        many fresh calls it would allow in flight with the agents there are now; ringing
        calls beyond that are hung up, longest ringing first, once they have rung
        ``surplus_min_ring_s``. A call already ringing is less likely to be answered than a
        fresh one, so this cancels no more than the surplus. An unanswered call hung up is a
        no-answer attempt (it counts: the person's phone rang), never an abandon.
        """
        min_ring = self.config.surplus_min_ring_s
        ringing = [c for c in self.calls.values() if c.phase is _Phase.RINGING]
        if min_ring is None or not ringing:
            return 0
        room = self.guard(dataclasses.replace(snapshot, ringing_elapsed_s=()), len(ringing))
        surplus = len(ringing) - room
        if surplus <= 0:
            return 0

        def rung(call: _Call) -> float:
            return now - (call.ringing_s if call.ringing_s is not None else call.originated_s)

        cancelled = 0
        for call in sorted(ringing, key=rung, reverse=True)[:surplus]:
            if rung(call) < min_ring:
                break
            if not self._hang_up(call, now, HangupParty.SYSTEM):
                continue
            # a ringing call hung up reports nothing (the Protocol): complete it here
            call.surplus = True
            call.ended_s = now
            call.hangup_by = HangupParty.SYSTEM
            self._complete(call, DISPOSITION_FOR["no_answer"], now)
            cancelled += 1
        if cancelled:
            self.result.surplus_cancelled += cancelled
            log.info(
                "campaign %s: hung up %d ringing call(s) no agent would be free for",
                self.campaign_id,
                cancelled,
            )
        return cancelled

    def _dial(self, n: int, now: float) -> None:
        moment = self.at(now)
        leases = self.path.lease(n, moment)
        with self._session() as session:
            leads = {
                lead.id: lead
                for lead in session.exec(
                    select(Lead).where(col(Lead.id).in_([lease.lead_id for lease in leases]))
                )
            }
        if len(leases) < n:
            # the hopper is (nearly) empty right now: ask again in a while, not every tick
            self.quiet_until_s = now + self.config.hopper_backoff_s
        started = self.path.start(leases, moment)
        if self.path.not_dialing:
            self._check(now)  # stop, saying why (paused, stopped, ...)
            self._stop("campaign no longer dialing", now)
        for begun in started:
            lease, attempt_id = begun.lease, begun.attempt_id
            lead = leads.get(lease.lead_id)
            lead_data: dict[str, Any] = {
                "id": str(lease.lead_id),
                "phone": lease.phone_e164,
                "attempt_no": lease.attempt_no,
                "callback_at": None if lease.callback_at is None else lease.callback_at.isoformat(),
            }
            if lead is not None:
                lead_data.update(
                    phone_type=lead.phone_type,
                    region=lead.phone_region_desc or lead.phone_region,
                    carrier=lead.phone_carrier,
                    attributes=dict(lead.attributes),
                )
            call = _Call(
                call_id="",
                attempt_id=attempt_id,
                lease_token=lease.lease_token,
                lead=lead_data,
                phone=lease.phone_e164,
                originated_s=now,
                callback_agent=lease.callback_agent,
            )
            request = OriginateRequest(
                campaign_id=str(self.campaign_id),
                lead_id=str(lease.lead_id),
                attempt_id=str(attempt_id),
                params=CallParameters(
                    self.info.caller, lease.phone_e164, None, self.info.skill_group
                ),
                timeout_s=self.info.max_ring_s,
            )
            try:
                call.call_id = self.gateway.originate(request, now=now)
            except GatewayError as exc:
                log.warning("could not originate attempt %s: %s", attempt_id, exc)
                call.call_id = f"failed-{attempt_id.hex}"
                call.ended_s = now
                self._complete(call, DISPOSITION_FOR["failed"], now)
                continue
            self.calls[call.call_id] = call
            if lease.callback_agent is not None and lease.callback_at is not None:
                self._callback_due(call, lease.callback_agent, lease.callback_at)

    def _callback_due(self, call: _Call, agent_code: str, callback_at: datetime) -> None:
        """Tell the agent who scheduled the callback that its lead is being called."""
        try:
            with self._session() as session:
                seat_id = session.exec(
                    select(AgentSeat.id).where(AgentSeat.agent_code == agent_code)
                ).first()
                if seat_id is None:
                    return
                post_event(
                    session=session,
                    agent_id=seat_id,
                    client_id=self.client_id,
                    kind=AgentEventKind.CALLBACK_DUE,
                    call_id=call.agent_call_id,
                    attempt_id=call.attempt_id,
                    payload={
                        "call_id": call.agent_call_id,
                        "attempt_id": str(call.attempt_id),
                        "lead": call.lead,
                        "callback_at": callback_at.isoformat(),
                    },
                )
        except AgentError as exc:
            log.info(
                "callback agent %s not told about attempt %s: %s", agent_code, call.attempt_id, exc
            )
