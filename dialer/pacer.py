"""The live dial loop: one elected pacer per running campaign, on the database and a gateway.

The pacer runs the same :class:`dialer.simulator.Simulation` engine the benchmarks use, with
its two seams filled by the database:

- :class:`CampaignLeadSource` leases callable leads from the hopper (calling windows,
  suppression, attempt limits and retry rules are enforced there) and writes each call
  attempt row, with an idempotency key, *before* the call is originated: a crash after the
  write never loses the attempt, and a retry of the same lease never dials twice.
- :class:`CampaignOutcomeSink` completes each attempt with its disposition and timestamps.

Leadership (:mod:`dialer.leadership`) makes sure one pacer dials a campaign at a time; the
pacer renews it every couple of seconds and stops launching calls the moment it is lost. A
pacer that takes over finds the attempts the previous one left in flight
(:func:`orphaned_attempts`): their leases expire and the hopper reschedules them after the
"outcome unknown" delay, so they are neither lost nor dialed twice.

Time: simulated seconds map to a campaign clock (``clock_start`` + seconds). With ``speed``
set, the loop sleeps so that one wall-clock second is ``speed`` simulated seconds (1.0 = real
time); without it the day runs as fast as the machine allows (the demo).

Agentless survey campaigns (kind ``survey``, pacing ``agentless``, with a
``questionnaire_version_id``) are interviewed by IVR: a :class:`dialer.ivr.SurveyIvr` on the
published version drives each answered call, the simulated callees answer its prompts, and
every finished interview is stored through :mod:`surveys.service` (interview + response rows,
quota cells claimed atomically there), so results, exports and AAPOR rates include them. The
attempt's disposition follows the interview (complete, not eligible, partial or refused).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from redis import Redis
from sqlmodel import col, select

from campaigns.hopper import (
    AttemptOutcome,
    leads_left,
    release_idle_leases,
)
from campaigns.lifecycle import DIALING_STATUSES, PAUSED_STATUSES
from campaigns.models import (
    AmdResult,
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignKind,
    CampaignStatus,
    Disposition,
    Lead,
)
from core.db import tenant_session
from dialer.dialing import DialPath, failure_disposition, trunk_refused_reason
from dialer.gateway import FailureCause, TelephonyGateway
from dialer.ivr import IvrInterview, SurveyIvr
from dialer.leadership import PacerLeadership
from dialer.pacing import PacingMode, policy_for_mode
from dialer.scenario import parse_scenario
from dialer.simulator import CallRecord, DialTarget, Simulation
from surveys.db_quotas import DatabaseQuotaCounter
from surveys.engine import InterviewMode, InterviewStatus
from surveys.models import AnswerIn, InterviewStart
from surveys.quotas import QuotaCell
from surveys.service import (
    answer_interview,
    break_off_interview,
    complete_interview,
    engine_for,
    get_version,
    start_interview,
)

__all__ = [
    "CampaignLeadSource",
    "CampaignOutcomeSink",
    "PacerConfig",
    "PacerResult",
    "end_left_calls",
    "orphaned_attempts",
    "run_pacer",
    "stop_reason",
]

log = logging.getLogger(__name__)

#: Simulated call outcome -> the campaign's disposition code.
DISPOSITION_FOR = {
    "no_answer": "no_answer",
    "busy": "busy",
    "failed": "network_failure",
    "machine": "answering_machine",
    "abandoned": "abandoned",
}
VALID_CALL_SECONDS = 15.0
#: Simulated seconds to wait before asking an empty hopper again.
HOPPER_BACKOFF_S = 30.0
#: The longest single run of an open-ended pacer (simulated seconds): 30 days.
RUN_HORIZON_S = 30 * 86400.0
#: Wall seconds between checks of the lease, the campaign's status and its stored settings.
CHECK_EVERY_S = 2.0


def stop_reason(status: CampaignStatus | None) -> str:
    """Why a pacer stops launching calls, in the operator's words, for a non-dialing status."""
    if status is None:
        return "campaign deleted"
    if status in PAUSED_STATUSES:
        return "paused by the operator"
    if status is CampaignStatus.pilot_done:
        return "stopped: the pilot is finished"
    if status is CampaignStatus.completed:
        return "stopped: the campaign is completed"
    if status is CampaignStatus.cancelled:
        return "stopped: the campaign is cancelled"
    return f"campaign no longer dialing ({status.value})"


@dataclass
class PacerConfig:
    """How the simulated world behaves around the real campaign (gateway and agents)."""

    agents: int = 5
    #: Simulated seconds to dial for; None: until the campaign pauses, stops or runs out of
    #: leads (a run is cut at :data:`RUN_HORIZON_S` and the next one carries on).
    duration_s: float | None = None
    answer_probability: float = 0.3
    machine_probability: float = 0.1
    conversion_probability: float = 0.15
    ring_time_s: dict[str, Any] = field(
        default_factory=lambda: {"dist": "lognormal", "mean": 12, "sd": 6}
    )
    talk_time_s: dict[str, Any] = field(
        default_factory=lambda: {"dist": "lognormal", "mean": 110, "sd": 70}
    )
    wrap_time_s: dict[str, Any] = field(default_factory=lambda: {"dist": "fixed", "value": 10})
    lease_seconds: int = 300
    seed: int = 0
    speed: float | None = None
    #: The simulated network's failures: their share of dials, and their causes by weight
    #: (:class:`dialer.gateway.FailureCause` values); None keeps the simulator's defaults.
    failure_probability: float | None = None
    failure_causes: dict[str, float] | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PacerConfig:
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class PacerResult:
    """What one pacer run did."""

    dials: int = 0
    completed: int = 0
    late_completions: int = 0
    suppressed_at_dial: int = 0
    orphans_found: int = 0
    interviews_stored: int = 0
    interviews_not_stored: int = 0
    stopped_because: str = ""
    simulation: dict[str, Any] = field(default_factory=dict)


class CampaignLeadSource:
    """Leases leads and writes their attempt rows (:class:`dialer.dialing.DialPath`) before
    the simulation originates them."""

    def __init__(
        self,
        *,
        client_id: uuid.UUID,
        campaign_id: uuid.UUID,
        worker_id: str,
        clock: Callable[[float], datetime],
        lease_seconds: int,
        result: PacerResult,
        journal: Callable[[str], object] | None = None,
    ) -> None:
        self.clock = clock
        self.result = result
        self.path = DialPath(
            client_id=client_id,
            campaign_id=campaign_id,
            worker_id=worker_id,
            lease_seconds=lease_seconds,
            counters=result,
            journal=journal,
        )
        self.quiet_until_s = -1.0

    @property
    def in_flight(self) -> dict[uuid.UUID, uuid.UUID]:
        return self.path.in_flight

    @property
    def not_dialing(self) -> bool:
        return self.path.not_dialing

    def next_targets(self, n: int, at_s: float) -> list[DialTarget]:
        """Up to ``n`` leads to dial now, each with its attempt row already committed."""
        if n <= 0 or self.path.not_dialing or at_s < self.quiet_until_s:
            return []
        now = self.clock(at_s)
        leases = self.path.lease(n, now)
        if len(leases) < n:
            # the hopper is (nearly) empty right now: ask again in a while, not every tick
            self.quiet_until_s = at_s + HOPPER_BACKOFF_S
        return [
            DialTarget(
                lead_id=str(s.lease.lead_id),
                attempt_id=str(s.attempt_id),
                phone_e164=s.lease.phone_e164,
            )
            for s in self.path.start(leases, now)
        ]

    def renew(self, at_s: float) -> None:
        """Keep the leases of calls in progress alive."""
        self.path.renew(self.clock(at_s))


class CampaignOutcomeSink:
    """Completes each attempt with its disposition when the call is over."""

    def __init__(
        self,
        *,
        client_id: uuid.UUID,
        source: CampaignLeadSource,
        success_code: str,
        conversion_probability: float,
        seed: int,
        result: PacerResult,
        disposition_for: Callable[[CallRecord], str | None] | None = None,
        codes: frozenset[str] = frozenset(),
    ) -> None:
        self.client_id = client_id
        self.codes = codes
        #: Set when the trunk refused a call: the run stops, saying why.
        self.stop_reason = ""
        self.disposition_for = disposition_for
        self.source = source
        self.success_code = success_code
        self.conversion_probability = conversion_probability
        self.rng = random.Random(seed)
        self.result = result

    def call_finished(self, record: CallRecord) -> None:
        """Record the call's outcome; a completion after the lease expired is refused."""
        clock = self.source.clock
        converted = False
        decided = self.disposition_for(record) if self.disposition_for is not None else None
        if decided is not None:
            disposition = decided
            converted = decided == self.success_code
        elif record.outcome == "contact":
            valid = record.talk_s > VALID_CALL_SECONDS
            converted = valid and self.rng.random() < self.conversion_probability
            disposition = self.success_code if converted else "refused"
        elif record.outcome == "failed":
            disposition = failure_disposition(record.failure_cause, self.codes)
            if record.failure_cause == FailureCause.TRUNK_REFUSED and not self.stop_reason:
                self.stop_reason = trunk_refused_reason(record.failure_detail)
                log.error("the trunk refused a call (%s); dialing stops", record.failure_detail)
        else:
            disposition = DISPOSITION_FOR.get(record.outcome, "network_failure")
        amd = {"human": AmdResult.human, "machine": AmdResult.machine}.get(
            record.answer_kind or "", AmdResult.not_used
        )
        outcome = AttemptOutcome(
            disposition=disposition,
            ended_at=clock(record.ended_s),
            ringing_at=clock(record.ringing_s) if record.ringing_s is not None else None,
            answered_at=clock(record.answered_s) if record.answered_s is not None else None,
            agent_connected_at=(
                clock(record.connected_s) if record.connected_s is not None else None
            ),
            talk_s=round(record.talk_s, 1),
            abandoned=record.abandoned,
            amd_result=amd,
            hangup_cause=record.hangup_by,
            agent_id=record.agent_id,
            converted=converted,
        )
        self.source.path.complete(uuid.UUID(record.attempt_id), outcome, clock(record.ended_s))


#: How an IVR interview ended -> the attempt's disposition code.
IVR_DISPOSITION_FOR = {
    "completed": "complete",
    "not_eligible": "not_eligible",
    "quota_full": "not_eligible",
}


class InterviewCounts(Protocol):
    """What counts the IVR interviews a run stored (a pacer's or the live loop's result)."""

    interviews_stored: int
    interviews_not_stored: int


def disposition_of_interview(done: IvrInterview | None) -> str | None:
    """The attempt disposition an IVR interview's end means (None: no interview ran)."""
    if done is None or done.outcome == "not_started":
        return None
    if done.outcome == "broken_off":
        answered = set(done.state.answers) - {"greeting"}
        return "partial" if answered else "refused"
    return IVR_DISPOSITION_FOR[done.outcome]


class _QuotaCheck:
    """Checks quota cells against the database while an IVR call runs.

    The claim itself happens when the finished interview is stored (``complete_interview``
    claims atomically in the same transaction), so ``claim`` here only reports a full cell.
    """

    def __init__(self, client_id: uuid.UUID, version_id: uuid.UUID) -> None:
        self.client_id = client_id
        self.version_id = version_id

    def is_full(self, cell: QuotaCell) -> bool:
        with tenant_session([self.client_id]) as session:
            counter = DatabaseQuotaCounter(
                session, client_id=self.client_id, version_id=self.version_id
            )
            return counter.is_full(cell)

    def claim(self, cells: Sequence[QuotaCell]) -> QuotaCell | None:
        return next((cell for cell in cells if self.is_full(cell)), None)


def store_ivr_interview(
    *, client_id: uuid.UUID, version_id: uuid.UUID, interview: IvrInterview
) -> uuid.UUID:
    """Store one finished IVR interview through the surveys service: start it for the call
    attempt, replay its answers and end it as it ended (quota cells are claimed here)."""
    state = interview.state
    with tenant_session([client_id]) as session:
        row = start_interview(
            session=session,
            version_id=version_id,
            start=InterviewStart(
                call_id=interview.attempt_id,
                respondent_key=state.respondent_seed,
                language=state.language,
                attributes=state.attributes,
                mode=InterviewMode.IVR,
            ),
            now=state.started_at,
        )
        for name in state.history:
            if row.status is not InterviewStatus.IN_PROGRESS:
                break
            stored = state.answers.get(name)
            answer = AnswerIn(
                question=name,
                value=stored.value if stored is not None else None,
                special=stored.special.value if stored and stored.special else None,
                other_text=stored.other_text if stored is not None else None,
            )
            row = answer_interview(
                session=session, interview_id=row.id, answer=answer, now=state.updated_at
            )
        if row.status is InterviewStatus.IN_PROGRESS:
            ended = state.ended_at or state.updated_at
            if state.status in (InterviewStatus.COMPLETED, InterviewStatus.QUOTA_FULL):
                row = complete_interview(session=session, interview_id=row.id, now=ended)
            else:
                row = break_off_interview(session=session, interview_id=row.id, now=ended)
        return row.id


def survey_ivr_for(
    *,
    client_id: uuid.UUID,
    version_id: uuid.UUID,
    clock: Callable[[float], datetime],
    result: InterviewCounts,
) -> SurveyIvr:
    """The IVR driver of an agentless survey campaign on its published version (the simulated
    pacer's and the live loop's); ``result`` counts the interviews stored and not."""
    with tenant_session([client_id]) as session:
        version = get_version(session=session, version_id=version_id)
        engine = engine_for(version)
    declared = [a.name for a in engine.questionnaire.attributes]

    def attributes_for(lead_id: str) -> dict[str, str | int | float | None]:
        with tenant_session([client_id]) as session:
            lead = session.get(Lead, uuid.UUID(lead_id))
            attributes = dict(lead.attributes) if lead is not None else {}
        return {name: attributes[name] for name in declared if name in attributes}

    def on_finished(interview: IvrInterview) -> None:
        try:
            store_ivr_interview(client_id=client_id, version_id=version_id, interview=interview)
            result.interviews_stored += 1
        except Exception:
            result.interviews_not_stored += 1
            log.exception("could not store the IVR interview of attempt %s", interview.attempt_id)

    return SurveyIvr(
        engine,
        quota_counter=_QuotaCheck(client_id, version_id),
        clock=clock,
        attributes_for=attributes_for,
        on_finished=on_finished,
    )


def orphaned_attempts(*, client_id: uuid.UUID, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    """Attempts started and never completed; called before this pacer dials anything, so they
    belong to a previous pacer (a real gateway would be asked about them here)."""
    with tenant_session([client_id]) as session:
        rows = session.exec(
            select(CallAttempt.id).where(
                CallAttempt.campaign_id == campaign_id,
                col(CallAttempt.status) == AttemptStatus.started,
            )
        ).all()
    return list(rows)


#: The hang-up cause of a call a dead pacer left up and the next one ended.
LEFT_CALL_CAUSE = "dialer: its pacer died; ended by the next"


def end_left_calls(
    *, client_id: uuid.UUID, campaign_id: uuid.UUID, gateway: TelephonyGateway
) -> int:
    """End the calls a previous pacer left up when its process died, before this one dials.

    Such a call is an attempt that never completed with the gateway's handle on it (noted at
    the answer: :attr:`dialer.gateway.Answered.handle`); nobody hears it any more, so it is
    ended at once (:meth:`~dialer.gateway.TelephonyGateway.end_left_calls`), not whenever the
    far end's session timer or patience runs out. Each handle is tried once and then
    dropped; an ended call's attempt gets :data:`LEFT_CALL_CAUSE` (its lease still runs out
    by the hopper's rule: the outcome is unknown). Returns how many calls were ended.
    """
    with tenant_session([client_id]) as session:
        left = session.exec(
            select(CallAttempt.id, CallAttempt.gateway_handle).where(
                CallAttempt.campaign_id == campaign_id,
                col(CallAttempt.status) != AttemptStatus.finished,
                col(CallAttempt.gateway_handle).is_not(None),
            )
        ).all()
    if not left:
        return 0
    try:
        ended = gateway.end_left_calls([handle or "" for _, handle in left], now=0.0)
    except Exception:  # the gateway failing here must not stop the takeover: it dials on
        log.exception("campaign %s: could not end the calls a dead pacer left up", campaign_id)
        ended = [False] * len(left)
    with tenant_session([client_id]) as session:
        for (attempt_id, _), over in zip(left, ended, strict=True):
            attempt = session.get(CallAttempt, attempt_id)
            if attempt is None:
                continue
            attempt.gateway_handle = None
            if over and attempt.status is not AttemptStatus.finished:
                attempt.hangup_cause = LEFT_CALL_CAUSE
            session.add(attempt)
    count = sum(ended)
    log.warning(
        "campaign %s: ended %d of the %d call(s) a dead pacer left up",
        campaign_id, count, len(left),
    )  # fmt: skip
    return count


def _pacing_of(campaign: Campaign) -> tuple[Any, ...]:
    """What a run dials by: the stored pacer settings and the campaign's own pacing fields
    (mode, ratio, abandon cap, ring time). A change of any ends the run so the next one uses
    it (``watch_settings``)."""
    return (
        dict(campaign.pacer_settings or {}),
        campaign.pacing_mode,
        dict(campaign.pacing_params or {}),
        campaign.abandon_rate_cap,
        campaign.max_ring_s,
    )


def run_pacer(
    *,
    client_id: uuid.UUID,
    campaign_id: uuid.UUID,
    leadership: PacerLeadership,
    clock_start: datetime,
    config: PacerConfig,
    journal: Redis[bytes] | None = None,
    acquire_timeout_s: float = 30.0,
    progress: Callable[[float], None] | None = None,
    watch_settings: bool = False,
    clock_wall_start: float | None = None,
) -> PacerResult:
    """Become the campaign's pacer and dial until the campaign pauses, stops, runs out of
    leads or leadership is lost (or ``config.duration_s`` is over); every call in progress is
    finished and recorded before returning, its lease kept alive until then. With
    ``watch_settings`` a change of the campaign's stored pacer settings ends the run too, so
    the next one dials with them.

    With ``config.speed`` and ``clock_wall_start`` (the epoch second at which ``clock_start``
    held), the campaign clock runs on from there: a pacer that takes over once it holds the
    lease continues the same day, with what is left of it.
    """
    result = PacerResult()
    deadline = time.monotonic() + acquire_timeout_s
    while not leadership.acquire():
        if time.monotonic() > deadline:
            result.stopped_because = "another pacer holds the campaign"
            return result
        time.sleep(0.5)
    worker_id = leadership.holder_id
    if config.speed and clock_wall_start is not None:
        # Measured once the lease is held, not when the job started: waiting for the lease
        # takes seconds, and the day goes on meanwhile.
        elapsed = max(0.0, time.time() - clock_wall_start) * config.speed
        clock_start += timedelta(seconds=elapsed)
        if config.duration_s is not None:
            left = config.duration_s - elapsed
            config = replace(config, duration_s=left)
            if left <= 0:
                leadership.release()
                result.stopped_because = "the dialing day is over"
                return result
    clock_for_release = clock_start
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
        with tenant_session([client_id]) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                result.stopped_because = "campaign not found"
                return result
            mode = PacingMode(campaign.pacing_mode.value)
            cap = campaign.abandon_rate_cap
            kind = campaign.kind
            power_ratio = float((campaign.pacing_params or {}).get("ratio", 2.0))
            no_answer_timeout = float(campaign.max_ring_s)
            questionnaire_version_id = campaign.questionnaire_version_id
            settings_at_start = _pacing_of(campaign)
            codes = frozenset(
                session.exec(select(Disposition.code).where(Disposition.campaign_id == campaign_id))
            )
        open_ended = config.duration_s is None
        duration = RUN_HORIZON_S if config.duration_s is None else config.duration_s
        # the simulated world starts when this pacer does
        started_wall = time.monotonic()
        started_at = clock_start
        scenario = parse_scenario(
            {
                "seed": config.seed,
                "duration_s": duration,
                "agents": config.agents,
                "mode": mode.value,
                "abandon_target": cap,
                "power_ratio": power_ratio,
                "leads": 10**9,
                "answer_probability": config.answer_probability,
                "machine_probability": config.machine_probability,
                "ring_time_s": config.ring_time_s,
                "no_answer_timeout_s": no_answer_timeout,
                "talk_time_s": config.talk_time_s,
                "wrap_time_s": config.wrap_time_s,
                **(
                    {}
                    if config.failure_probability is None
                    else {"failure_probability": config.failure_probability}
                ),
            }
        )

        def clock(at_s: float) -> datetime:
            return started_at + timedelta(seconds=at_s)

        journal_key = f"pilotdial:originates:{campaign_id}"
        source = CampaignLeadSource(
            client_id=client_id,
            campaign_id=campaign_id,
            worker_id=worker_id,
            clock=clock,
            lease_seconds=config.lease_seconds,
            result=result,
            journal=(lambda attempt_id: journal.rpush(journal_key, attempt_id))
            if journal
            else None,
        )
        ivr: SurveyIvr | None = None
        if (
            kind is CampaignKind.survey
            and mode is PacingMode.AGENTLESS
            and questionnaire_version_id is not None
        ):
            ivr = survey_ivr_for(
                client_id=client_id,
                version_id=questionnaire_version_id,
                clock=clock,
                result=result,
            )

        def ivr_disposition(record: CallRecord) -> str | None:
            done = ivr.for_attempt(record.attempt_id) if ivr is not None else None
            return disposition_of_interview(done)

        sink = CampaignOutcomeSink(
            client_id=client_id,
            source=source,
            success_code="complete" if kind is CampaignKind.survey else "sale",
            conversion_probability=config.conversion_probability,
            seed=config.seed + 1,
            result=result,
            disposition_for=ivr_disposition if ivr is not None else None,
            codes=codes,
        )

        @dataclass
        class LoopState:
            next_check_wall: float = 0.0
            next_renew_s: float = 0.0
            last_s: float = 0.0
            leading: bool = True
            stop: str = ""

        state = LoopState()
        running: list[Simulation] = []  # the simulation, once built (its agents' states)

        def check(at_s: float) -> None:
            """Every couple of wall seconds: keep the lease, look at the campaign."""
            wall = time.monotonic()
            if wall < state.next_check_wall:
                return
            state.next_check_wall = wall + CHECK_EVERY_S
            if state.leading and not leadership.renew():
                state.leading = False
                state.stop = state.stop or "leadership lost"
            if state.leading and running and mode is not PacingMode.AGENTLESS:
                leadership.report_agents(running[0].agent_buckets())  # for the live panel
            if state.stop:
                return
            with tenant_session([client_id]) as session:
                current = session.get(Campaign, campaign_id)
                if current is None or current.status not in DIALING_STATUSES:
                    state.stop = stop_reason(current.status if current else None)
                elif watch_settings and _pacing_of(current) != settings_at_start:
                    state.stop = "pacing settings changed"
                elif (
                    open_ended
                    and not source.in_flight
                    and leads_left(session=session, campaign_id=campaign_id) == 0
                ):
                    state.stop = "out of leads"

        def should_continue(at_s: float) -> bool:
            if sink.stop_reason and not state.stop:
                state.stop = sink.stop_reason  # the trunk refused: stop, and say so
            if source.not_dialing and not state.stop:
                state.next_check_wall = 0.0  # the hopper refused: say why at once
            check(at_s)
            if source.not_dialing and not state.stop:
                state.stop = "campaign no longer dialing"
            if progress is not None:
                progress(at_s)
            return not state.stop

        def on_advance(at_s: float) -> None:
            # Also while the last calls drain: their leases must outlive them, or their
            # completions are refused and the attempts stay `started`.
            # Time jumps from event to event: a lone call's hang-up may come long after the
            # last renewal. Renew at the moments due on the way (each while the lease still
            # holds), not only at the end of the jump, when it may have run out.
            state.last_s = at_s
            step = config.lease_seconds / 3
            if not source.in_flight:
                state.next_renew_s = max(state.next_renew_s, at_s + step)
            while at_s >= state.next_renew_s:
                source.renew(state.next_renew_s)
                state.next_renew_s += step
            if not config.speed:
                return
            while True:
                check(at_s)
                delay = started_wall + at_s / config.speed - time.monotonic()
                if delay <= 0:
                    return
                time.sleep(min(delay, 0.5))

        policy = policy_for_mode(mode, power_ratio=power_ratio, agentless_lines=config.agents)
        simulation = Simulation(
            scenario,
            policy,
            lead_source=source,
            outcome_sink=sink,
            should_continue=should_continue,
            on_advance=on_advance,
            ivr=ivr,
            ivr_respondent=ivr.simulated_respondent(config.seed) if ivr is not None else None,
            profile_overrides=None
            if not config.failure_causes
            else {
                "failure_causes": tuple(
                    (FailureCause(cause), weight) for cause, weight in config.failure_causes.items()
                )
            },
        )
        running.append(simulation)
        outcome = simulation.run()
        result.simulation = outcome.to_dict()
        clock_for_release = clock(state.last_s)
        if state.stop:
            result.stopped_because = state.stop
        elif open_ended:
            result.stopped_because = "run horizon reached"
        else:
            result.stopped_because = "end of the requested duration"
        return result
    finally:
        try:
            with tenant_session([client_id]) as session:
                release_idle_leases(
                    session=session,
                    campaign_id=campaign_id,
                    worker_id=worker_id,
                    now=clock_for_release,
                )
        except Exception:  # the lease holder may be gone with the database: leases expire
            log.exception("could not release the idle leases of campaign %s", campaign_id)
        leadership.release()
