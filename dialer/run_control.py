"""Run control as a service: a campaign that is piloting or running dials until it is paused,
stopped, completed or out of leads, with the pacing settings stored on the campaign.

- :func:`start_dialing` stores the settings (``Campaign.pacer_settings``) and starts a run;
  starting again while a run is queued or running updates the settings and returns that run.
- :func:`update_pacer_settings` edits them while the campaign dials: the running pacer sees the
  change within a couple of seconds, lets its calls finish and the next run dials with them.
- :func:`control_campaign` pauses, resumes or stops, in the pilot and in the full phase
  (``piloting ⇄ pilot_paused``, ``running ⇄ paused``; stop finishes the pilot or completes the
  campaign). The pacer stops launching at once; every call in progress ends with its real
  outcome before the run ends; resume starts a new run with the stored settings.

Each run is a job record (kind ``pacer``) whose progress counts seconds of dialing and whose
result says why it ended (``paused by the operator``, ``out of leads``, ...). Runs never take
the job pool: in the embedded default each has a thread of its own; with Redis, every
``pilotdial worker`` runs a :func:`supervise` process that adopts any dialing campaign without
a pacer (queued runs, resumed campaigns, the campaigns of a worker that died) within
:data:`ADOPT_EVERY_S` plus the lease's time to live, through the Redis-elected leadership of
:mod:`dialer.leadership`, and marks the run of a pacer that died as failed.

Shutting down drains: on SIGTERM a worker's supervisor (and ``pilotdial serve`` on the embedded
default, at shutdown) stops its pacers launching, lets every call in progress end with its real
outcome, releases the leases and ends each run saying so (:data:`DRAINED`), so another worker
adopts the campaign at once. ``pilotdial serve`` restarted on the embedded default resumes the
campaigns that were dialing (:func:`resume_embedded_pacers`): their runs left open by the
stopped process are marked failed, saying so, and a new run continues with the stored settings.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, col, select

from campaigns.lifecycle import DIALING_STATUSES, run_control_target
from campaigns.models import Campaign
from campaigns.service import transition_campaign
from core.audit import Actor
from core.db import system_session, tenant_session, utcnow
from core.errors import ConfigError, Conflict, InvalidInput
from core.jobs import JobContext, reap_lost_jobs, requeue_stranded_jobs, run_job
from core.models import JobRecord, JobStatus
from core.queue import get_redis, start_long_running
from core.settings import get_settings
from dialer.attended import AgentsMode, check_live_campaign
from dialer.dialing import TRUNK_REFUSED_PREFIX
from dialer.gateway import RealTimeClock, TelephonyGateway
from dialer.guard import DEFAULT_RISK, AbandonGuard
from dialer.leadership import LocalLeadership, PacerLeadership, RedisLeadership, worker_identity
from dialer.scenario import AmdPolicy

__all__ = [
    "ADOPT_EVERY_S",
    "DRAINED",
    "PACER_HANDLER",
    "PacerSettings",
    "control_campaign",
    "drain_pacers",
    "pace_stored",
    "pacer_settings_of",
    "resume_embedded_pacers",
    "start_dialing",
    "start_supervisor_process",
    "supervise",
    "update_pacer_settings",
]

log = logging.getLogger(__name__)

PACER_HANDLER = "dialer.run_control:pace_stored"
#: Seconds between two looks of a supervisor for campaigns without a pacer.
ADOPT_EVERY_S = 2.0
#: Run endings after which the campaign stays dialing but is not restarted by itself.
FINISHED_REASONS = frozenset({"out of leads", "end of the requested duration"})
#: How a run ends when its process shuts down (SIGTERM): another pacer continues.
DRAINED = "the pacer's process shut down; calls in progress finished, another pacer continues"
#: Seconds between two looks of a supervisor for jobs whose worker died.
REAP_EVERY_S = 10.0
#: How long a crashed run keeps trying to reconcile its calls while the database is away.
RECONCILE_FOR_S = 60.0
#: How the dial loops say their lease was not renewed (what a drain looks like to them).
_LEADERSHIP_LOST = "leadership lost"

#: Set while this process shuts down: its pacers stop renewing their lease and end.
_draining = threading.Event()
#: The pacer runs of this process, so a shutdown can wait for them to drain.
_runs: set[threading.Thread] = set()
_runs_lock = threading.Lock()


class _Drained(Exception):
    """Raised to a pacer still waiting for its lease when the process drains."""


class _Drainable:
    """A pacer's leadership that stops renewing once the process drains.

    The dial loops already stop launching, finish their calls and release the lease when a
    renewal fails; a drain uses that same path instead of a second stop signal.
    """

    def __init__(self, inner: PacerLeadership) -> None:
        self.inner = inner
        self.holder_id = inner.holder_id

    def acquire(self) -> bool:
        if _draining.is_set():
            raise _Drained  # nothing is held yet: the run ends before it dials
        return self.inner.acquire()

    def renew(self) -> bool:
        return not _draining.is_set() and self.inner.renew()

    def release(self) -> None:
        self.inner.release()

    def current_holder(self) -> str | None:
        return self.inner.current_holder()

    def report_agents(self, counts: dict[str, int]) -> None:
        self.inner.report_agents(counts)


class PacerSettings(BaseModel):
    """How a campaign is paced: who takes the calls and the simulated world around it."""

    model_config = ConfigDict(extra="forbid")

    agents_mode: AgentsMode = Field(
        default=AgentsMode.SIMULATED,
        description=(
            "simulated: simulated agents on the simulator (the demo); live: the campaign's "
            "real agent seats (its skill group, serving its client), in real time"
        ),
    )
    agents: int = Field(default=5, ge=1, le=500, description="simulated agents (simulated mode)")
    duration_s: float | None = Field(
        default=None,
        gt=0,
        le=24 * 3600,
        description="stop after this many seconds of dialing; default: until paused or stopped",
    )
    answer_probability: float = Field(default=0.3, ge=0, le=1)
    machine_probability: float = Field(default=0.1, ge=0, le=1)
    conversion_probability: float = Field(
        default=0.15, ge=0, le=1, description="simulated mode; live agents give dispositions"
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    speed: float | None = Field(
        default=None, gt=0, le=10_000, description="simulated s per wall s (simulated mode only)"
    )
    amd_policy: AmdPolicy = Field(
        default=AmdPolicy.HANG_UP, description="live mode: what to do with answering machines"
    )
    record_calls: bool = Field(
        default=True,
        description=(
            "SIP gateway: record each answered call, both sides (a two-channel WAV: left the "
            "callee, right what the callee heard), stored with its attempt for the retention "
            "(PILOTDIAL_RECORDING_RETENTION_DAYS)"
        ),
    )
    answer_detection: bool = Field(
        default=False,
        description=(
            "SIP gateway: listen to each answer to tell machines from people (a cadence "
            "detector: 16 of 20 test machines found, no person taken for a machine; docs/sip.md)"
            "; off (the default), every answer goes to an agent, since a person taken for a "
            "machine is an abandoned call. With amd_policy leave_message the message waits for "
            "the machine's beep"
        ),
    )
    default_disposition: str = Field(
        default="callback_requested",
        max_length=40,
        description=(
            "live mode: the disposition of a connected call whose agent gave none before the "
            "wrap-up ended (one of the campaign's codes)"
        ),
    )
    abandon_guard: AbandonGuard = Field(
        default=AbandonGuard.STRICT,
        description=(
            "the guard every launch goes through (dialer.guard): strict, the worst case (a "
            "certainty), or statistical, launching while P(window above the cap) <= abandon_risk"
        ),
    )
    abandon_risk: float = Field(
        default=DEFAULT_RISK, gt=0, le=0.5, description="the statistical guard's risk per launch"
    )


def pacer_settings_of(campaign: Campaign) -> PacerSettings | None:
    """The campaign's stored pacer settings, or None if no pacer was ever started."""
    if not campaign.pacer_settings:
        return None
    stored = {k: v for k, v in campaign.pacer_settings.items() if k != "active"}
    return PacerSettings.model_validate(stored)


def _is_active(campaign: Campaign) -> bool:
    return bool((campaign.pacer_settings or {}).get("active"))


def _check_settings(*, session: Session, campaign: Campaign, settings: PacerSettings) -> None:
    if settings.agents_mode is AgentsMode.LIVE:
        if settings.speed is not None and settings.speed != 1.0:
            raise InvalidInput(
                "speed applies to simulated agents; live mode runs in real time (leave it out)",
                extra={"field": "speed"},
            )
        check_live_campaign(
            session=session, campaign=campaign, default_disposition=settings.default_disposition
        )


def _store(campaign: Campaign, settings: PacerSettings, *, active: bool) -> None:
    campaign.pacer_settings = {**settings.model_dump(mode="json"), "active": active}
    campaign.updated_at = utcnow()


def _open_runs(session: Session, campaign_id: uuid.UUID, *, lock: bool = False) -> list[JobRecord]:
    """The campaign's pacer runs still queued or running, newest first (``lock``: those no
    other supervisor holds, locked for this transaction)."""
    stmt = (
        select(JobRecord)
        .where(
            JobRecord.kind == "pacer",
            JobRecord.handler == PACER_HANDLER,
            col(JobRecord.status).in_([JobStatus.queued, JobStatus.running]),
        )
        .order_by(col(JobRecord.created_at).desc())
    )
    if lock:
        stmt = stmt.with_for_update(skip_locked=True)
    return [r for r in session.exec(stmt) if r.params.get("campaign_id") == str(campaign_id)]


def _open_run(session: Session, campaign_id: uuid.UUID) -> JobRecord | None:
    return next(iter(_open_runs(session, campaign_id)), None)


def _new_run(session: Session, campaign: Campaign, **params: Any) -> JobRecord:
    record = JobRecord(
        client_id=campaign.client_id,
        kind="pacer",
        handler=PACER_HANDLER,
        params={
            "campaign_id": str(campaign.id),
            "settings": dict(campaign.pacer_settings or {}),
            **params,
        },
        progress_unit="seconds of dialing",
    )
    session.add(record)
    session.flush()
    return record


def _dispatch(job_id: uuid.UUID) -> None:
    """Embedded default: the run gets a thread of its own. With Redis the workers'
    supervisors pick queued runs up."""
    if get_settings().redis_url:
        return
    start_long_running(run_job, str(job_id), name=f"pilotdial-pacer-{job_id.hex[:8]}")


def start_dialing(
    *,
    client_id: uuid.UUID,
    campaign_id: uuid.UUID,
    settings: PacerSettings,
    clock_start: datetime | None = None,
) -> JobRecord:
    """Store the settings and start dialing (409 unless piloting or running); a run already
    queued or running is returned, and dials with these settings from its next run on."""
    with tenant_session([client_id]) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:  # checked by the caller in its scope; deleted meanwhile
            raise Conflict("the campaign no longer exists")
        if campaign.status not in DIALING_STATUSES:
            raise Conflict(
                f"the campaign is {campaign.status.value}; start the pilot or the campaign "
                "first (a paused campaign is resumed instead)",
                extra={"campaign_status": campaign.status.value},
            )
        _check_settings(session=session, campaign=campaign, settings=settings)
        _store(campaign, settings, active=True)
        session.add(campaign)
        existing = _open_run(session, campaign_id)
        if existing is not None:
            session.expunge(existing)
            return existing
        params: dict[str, Any] = {}
        if clock_start is not None:
            params["clock_start"] = clock_start.isoformat()
        record = _new_run(session, campaign, **params)
        session.expunge(record)
    _dispatch(record.id)
    return record


def update_pacer_settings(
    *, client_id: uuid.UUID, campaign_id: uuid.UUID, changes: dict[str, Any]
) -> PacerSettings:
    """Change some stored settings (422 naming the field if invalid); a running pacer ends
    its run gracefully within seconds and the next run dials with them."""
    with tenant_session([client_id]) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise Conflict("the campaign no longer exists")
        current = pacer_settings_of(campaign) or PacerSettings()
        try:
            updated = PacerSettings.model_validate({**current.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(
                f"pacer setting {field}: {first['msg']}", extra={"field": field}
            ) from exc
        _check_settings(session=session, campaign=campaign, settings=updated)
        active = _is_active(campaign)
        _store(campaign, updated, active=active)
        session.add(campaign)
        record = None
        if (
            active
            and campaign.status in DIALING_STATUSES
            and _open_run(session, campaign_id) is None
        ):
            record = _new_run(session, campaign)
    if record is not None:
        _dispatch(record.id)
    return updated


def control_campaign(
    *, client_id: uuid.UUID, campaign_id: uuid.UUID, action: str, actor: Actor | None = None
) -> tuple[Campaign, JobRecord | None]:
    """Pause, resume or stop the campaign in its phase (409 if it cannot); resume starts a
    run with the stored settings and returns it."""
    with tenant_session([client_id]) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise Conflict("the campaign no longer exists")
        target = run_control_target(action, campaign.status)
        transition_campaign(session=session, campaign=campaign, target=target, actor=actor)
        record = None
        if target in DIALING_STATUSES and _is_active(campaign):
            record = _open_run(session, campaign_id) or _new_run(session, campaign)
            session.expunge(record)
        session.refresh(campaign)
        session.expunge(campaign)
    if record is not None and record.status is JobStatus.queued:
        _dispatch(record.id)
    return campaign, record


# -- the run ------------------------------------------------------------------------------


def _leadership(campaign_id: uuid.UUID, holder: str) -> PacerLeadership:
    settings = get_settings()
    if settings.redis_url:
        return RedisLeadership(get_redis(settings.redis_url), campaign_id, holder)
    return LocalLeadership(campaign_id, holder)


def pace_stored(ctx: JobContext) -> dict[str, Any]:
    """Job handler: one run of a campaign's pacer with its stored settings."""

    campaign_id = uuid.UUID(ctx.params["campaign_id"])
    with tenant_session([ctx.client_id]) as session:
        campaign = session.get(Campaign, campaign_id)
        settings = pacer_settings_of(campaign) if campaign is not None else None
    if settings is None:
        return {"stopped_because": "the campaign has no pacer settings"}
    holder = str(ctx.params.get("holder") or worker_identity())
    leadership = _Drainable(_leadership(campaign_id, holder))
    with _runs_lock:
        _runs.add(threading.current_thread())
    try:
        outcome = _pace(ctx, campaign_id, settings, leadership)
    except _Drained:
        outcome = {"stopped_because": DRAINED}
    except Exception:
        # The dial loop crashed (a database outage mid-call): its calls died with it and will
        # never be completed. Reconcile them now, not whenever a later pacer's clock passes
        # their leases: the run fails, but leaves nothing `started` behind.
        _reconcile_lost_calls(ctx.client_id, campaign_id, holder)
        raise
    finally:
        with _runs_lock:
            _runs.discard(threading.current_thread())
    if _draining.is_set() and outcome.get("stopped_because") in (_LEADERSHIP_LOST, None):
        outcome["stopped_because"] = DRAINED
    _after_run(ctx.client_id, campaign_id, str(outcome["stopped_because"]))
    return {"pacer": holder, "agents_mode": settings.agents_mode.value, **outcome}


def _pace(
    ctx: JobContext, campaign_id: uuid.UUID, settings: PacerSettings, leadership: PacerLeadership
) -> dict[str, Any]:
    from dialer.pacer import PacerConfig, run_pacer

    last_report = [0.0]

    def progress(at_s: float) -> None:
        wall = time.monotonic()
        if wall - last_report[0] >= 2.0:
            last_report[0] = wall
            ctx.progress(int(at_s), unit="seconds of dialing")

    redis_url = get_settings().redis_url
    redis = get_redis(redis_url) if redis_url else None
    # a run that waits for the previous one to drain (pause, then resume at once) waits long
    acquire_timeout_s = float(ctx.params.get("acquire_timeout_s", 900.0))
    if settings.agents_mode is AgentsMode.LIVE:
        outcome = _pace_live(ctx, campaign_id, settings, leadership, progress, acquire_timeout_s)
    else:
        raw_start = ctx.params.get("clock_start")
        clock_start = datetime.fromisoformat(raw_start) if raw_start else datetime.now(UTC)
        if clock_start.tzinfo is None:
            clock_start = clock_start.replace(tzinfo=UTC)
        config = PacerConfig.from_params(
            settings.model_dump(
                include={
                    "agents",
                    "duration_s",
                    "answer_probability",
                    "machine_probability",
                    "conversion_probability",
                    "seed",
                    "speed",
                }
            )
        )
        result = run_pacer(
            client_id=ctx.client_id,
            campaign_id=campaign_id,
            leadership=leadership,
            clock_start=clock_start,
            config=config,
            journal=redis,
            acquire_timeout_s=acquire_timeout_s,
            progress=progress,
            watch_settings=True,
        )
        outcome = {
            "dials": result.dials,
            "completed": result.completed,
            "late_completions": result.late_completions,
            "suppressed_at_dial": result.suppressed_at_dial,
            "orphans_found": result.orphans_found,
            "stopped_because": result.stopped_because,
            "simulation": result.simulation,
        }
    return outcome


def live_gateway(
    campaign_id: uuid.UUID, settings: PacerSettings, clock: RealTimeClock
) -> tuple[TelephonyGateway, Callable[[float], None], Callable[[], None]]:
    """The gateway a live-agent run dials through (setting ``gateway``), the loop's sleep for
    it and how to close it.

    ``simulated``: the seeded simulated gateway on the wall clock (demos, tests). ``sip``: the
    SIP trunk gateway (:mod:`dialer.sip.gateway`, docs/sip.md), trunk from the environment,
    its events on ``clock``, messages from ``sip_messages_dir`` (the campaign's own folder
    first), answer detection as the campaign's ``answer_detection`` says; the loop's sleep
    wakes as soon as the network reports something.
    """
    app = get_settings()
    if app.gateway == "sip":
        from dialer.sip.gateway import SipGateway, SipGatewayConfig, SipTrunk
        from dialer.sip.media import AmdPolicy as Detection
        from dialer.sip.media import AmdSettings
        from dialer.sip.speech import Speech

        amd = AmdSettings(
            policy=Detection.detect if settings.answer_detection else Detection.pass_all,
            leave_message=settings.amd_policy is AmdPolicy.LEAVE_MESSAGE,
        )
        try:
            trunk = SipTrunk.from_env()
            sip = SipGateway(
                SipGatewayConfig(
                    trunk=trunk,
                    local_host=app.sip_local_host,
                    sip_port=app.sip_port,
                    rtp_port_range=(app.sip_rtp_port_min, app.sip_rtp_port_max),
                    symmetric_rtp=app.sip_symmetric_rtp,
                    messages=_sip_messages(app.sip_messages_dir, campaign_id),
                    speech=Speech(cache_dir=app.data_dir / "speech"),
                    amd=amd,
                    call_recording_dir=(
                        app.data_dir / "recording-spool" / str(campaign_id)
                        if settings.record_calls
                        else None
                    ),
                ),
                clock=clock.seconds,
            )
        except (ValueError, OSError) as exc:
            raise ConfigError(f"the SIP gateway cannot start: {exc}") from exc
        return sip, sip.wait, sip.close
    from dialer.simgateway import GatewayProfile, ProbabilitySchedule, SimulatedGateway

    simulated = SimulatedGateway(
        GatewayProfile(
            answer_probability=ProbabilitySchedule.constant(settings.answer_probability),
            machine_probability=settings.machine_probability,
        ),
        seed=settings.seed,
    )
    return simulated, time.sleep, lambda: None


def _sip_messages(folder: Path | None, campaign_id: uuid.UUID) -> dict[str, Path]:
    """Message id -> WAV: ``<folder>/<campaign id>/<id>.wav`` over ``<folder>/<id>.wav``."""
    if folder is None:
        return {}
    messages = {path.stem: path for path in sorted(folder.glob("*.wav"))}
    messages.update({path.stem: path for path in sorted((folder / str(campaign_id)).glob("*.wav"))})
    return messages


def _pace_live(
    ctx: JobContext,
    campaign_id: uuid.UUID,
    settings: PacerSettings,
    leadership: PacerLeadership,
    progress: Any,
    acquire_timeout_s: float,
) -> dict[str, Any]:
    from dialer.attended import AttendedConfig, run_attended

    config = AttendedConfig(
        duration_s=settings.duration_s,
        amd_policy=settings.amd_policy,
        default_disposition=settings.default_disposition,
    )
    clock = RealTimeClock()
    gateway, sleep, close = live_gateway(campaign_id, settings, clock)
    redis_url = get_settings().redis_url
    redis = get_redis(redis_url) if redis_url else None
    journal_key = f"pilotdial:originates:{campaign_id}"
    try:
        result = run_attended(
            client_id=ctx.client_id,
            campaign_id=campaign_id,
            leadership=leadership,
            gateway=gateway,
            config=config,
            journal=(lambda attempt_id: redis.rpush(journal_key, attempt_id)) if redis else None,
            acquire_timeout_s=acquire_timeout_s,
            progress=progress,
            clock=clock,
            sleep=sleep,
        )
    finally:
        close()
    return result.to_dict()


def _reconcile_lost_calls(client_id: uuid.UUID, campaign_id: uuid.UUID, holder: str) -> int:
    """End the leases a crashed run of ``holder`` left on the campaign, as if they ran out now.

    The hopper's one rule for a lease that ran out applies (``release_expired_leases``): an
    attempt still ``started`` on it becomes ``expired`` (its outcome is unknown, it counts,
    and the lead waits the unreported-call delay), an idle lease goes back to the hopper.
    The crash was most likely the database going away, so this retries with backoff while it
    is unreachable (for up to :data:`RECONCILE_FOR_S`); after that the leases simply run out.
    Returns how many leases were ended.
    """
    from sqlalchemy.exc import OperationalError, TimeoutError

    from campaigns.hopper import release_expired_leases
    from campaigns.models import CampaignLead, LeadState

    deadline = time.monotonic() + RECONCILE_FOR_S
    delay = 0.25
    while True:
        try:
            with tenant_session([client_id]) as session:
                now = utcnow()
                rows = session.exec(
                    select(CampaignLead)
                    .where(
                        CampaignLead.campaign_id == campaign_id,
                        col(CampaignLead.state) == LeadState.in_progress,
                        CampaignLead.lease_owner == holder[:120],
                    )
                    .with_for_update()
                ).all()
                for row in rows:
                    row.lease_expires_at = now  # they ran out when the run crashed
                    session.add(row)
                session.flush()
                # Other pacers' leases are renewed on clocks at least as far on as this one
                # (a run's clock starts at the wall time and runs at speed >= 1): only the
                # leases ended here, or leases that really ran out, are released.
                ended = (
                    release_expired_leases(
                        session=session,
                        campaign_id=campaign_id,
                        now=now + timedelta(microseconds=1),
                    )
                    if rows
                    else 0
                )
            if ended:
                log.warning(
                    "run of %s crashed: %d lease(s) it held on campaign %s ended (calls in "
                    "progress marked expired)",
                    holder,
                    ended,
                    campaign_id,
                )
            return ended
        except (OperationalError, TimeoutError) as exc:
            if time.monotonic() + delay > deadline or _draining.is_set():
                log.error(
                    "could not reconcile the calls of %s on campaign %s (%s); their leases "
                    "run out by themselves",
                    holder,
                    campaign_id,
                    str(exc).splitlines()[0],
                )
                return 0
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def _after_run(client_id: uuid.UUID, campaign_id: uuid.UUID, reason: str) -> None:
    """A finished run: out of leads or its duration over, it is not restarted; a change of
    settings starts the next run at once (embedded; with Redis a supervisor adopts it)."""
    with tenant_session([client_id]) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None or not campaign.pacer_settings:
            return
        # A refused trunk is not retried by itself either: the operator fixes the
        # credentials and starts the campaign again.
        if reason in FINISHED_REASONS or reason.startswith(TRUNK_REFUSED_PREFIX):
            campaign.pacer_settings = {**campaign.pacer_settings, "active": False}
            session.add(campaign)
            return
        restart = (
            reason in {"pacing settings changed", "run horizon reached"}
            and campaign.status in DIALING_STATUSES
            and _is_active(campaign)
            and not get_settings().redis_url
        )
        record = _new_run(session, campaign) if restart else None
    if record is not None:
        _dispatch(record.id)


def drain_pacers(timeout_s: float) -> int:
    """Shut this process's pacers down: no new dial, calls in progress end with their real
    outcome, leases released; waits up to ``timeout_s``. Returns the runs still going."""
    _draining.set()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with _runs_lock:
                alive = [t for t in _runs if t.is_alive()]
            if not alive or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if alive:
            log.warning("%d pacer run(s) still finishing calls at shutdown", len(alive))
        else:
            log.info("pacers drained")
        return len(alive)
    finally:
        _draining.clear()


def resume_embedded_pacers() -> list[uuid.UUID]:
    """Embedded default, at start: the campaigns that were dialing dial again.

    One process owns every pacer of an embedded installation, so runs still ``queued`` or
    ``running`` at its start were left by the previous process: they are marked failed,
    saying so, and a new run continues with the stored settings. With Redis the workers'
    supervisors adopt campaigns instead, and this does nothing.
    """
    from campaigns.hopper import leads_left

    if get_settings().redis_url:
        return []
    started: list[uuid.UUID] = []
    with system_session() as session:
        for campaign_id, _client_id in _dialing_campaigns(session):
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                continue
            for record in _open_runs(session, campaign_id):
                record.status = JobStatus.failed
                record.error = (
                    "the process that ran it stopped (Pilotdial restarted); "
                    "a new run continues with the stored settings"
                )
                record.finished_at = utcnow()
                session.add(record)
            if leads_left(session=session, campaign_id=campaign_id) == 0:
                continue
            started.append(_new_run(session, campaign).id)
    for job_id in started:
        log.info("resuming dialing after a restart: run %s", job_id)
        _dispatch(job_id)
    return started


# -- the supervisor of `pilotdial worker` -------------------------------------------------


def _dialing_campaigns(session: Session) -> list[tuple[uuid.UUID, uuid.UUID]]:
    rows = session.exec(
        select(Campaign.id, Campaign.client_id, Campaign.pacer_settings).where(
            col(Campaign.status).in_(list(DIALING_STATUSES))
        )
    ).all()
    return [(cid, client) for cid, client, stored in rows if (stored or {}).get("active")]


def _claim_run(campaign_id: uuid.UUID, client_id: uuid.UUID, holder: str) -> uuid.UUID | None:
    """The run this supervisor now leads: a queued one, or a new one adopting the campaign;
    runs left `running` by a pacer that no longer holds the lease are marked failed."""
    from campaigns.hopper import leads_left

    with system_session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status not in DIALING_STATUSES:
            return None
        if leads_left(session=session, campaign_id=campaign_id) == 0:
            return None
        claimed: JobRecord | None = None
        for record in reversed(_open_runs(session, campaign_id, lock=True)):  # oldest first
            if record.status is JobStatus.running:
                record.status = JobStatus.failed
                record.error = (
                    f"its pacer ({record.worker}) stopped without finishing the run (worker "
                    f"died or lost Redis); the campaign was adopted by {holder}"
                )
                record.finished_at = utcnow()
            elif claimed is None:
                claimed = record
            session.add(record)
        if claimed is None:
            claimed = _new_run(session, campaign)
        claimed.params = {**claimed.params, "holder": holder, "acquire_timeout_s": 5.0}
        session.add(claimed)
        session.flush()
        return claimed.id


def supervise(*, stop: threading.Event | None = None, adopt_every_s: float = ADOPT_EVERY_S) -> None:
    """Adopt every dialing campaign without a pacer, until ``stop`` is set (worker side)."""

    stop = stop or threading.Event()
    settings = get_settings()
    if not settings.redis_url:
        raise Conflict("the pacer supervisor needs Redis (PILOTDIAL_REDIS_URL)")
    redis = get_redis(settings.redis_url)
    running: dict[uuid.UUID, threading.Thread] = {}
    log.info("pacer supervisor looks for campaigns without a pacer every %.0f s", adopt_every_s)
    next_reap = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_reap:
            next_reap = time.monotonic() + REAP_EVERY_S
            try:  # the other jobs of a dead worker: marked failed, never `running` for ever
                reap_lost_jobs(redis, skip_handlers=frozenset({PACER_HANDLER}))
                # and jobs recorded but on no queue: queued again, never `queued` for ever
                requeue_stranded_jobs(redis, skip_handlers=frozenset({PACER_HANDLER}))
            except Exception:
                log.exception("the pacer supervisor could not look for lost jobs; retrying")
        try:
            with system_session() as session:
                campaigns = _dialing_campaigns(session)
            for campaign_id, client_id in campaigns:
                thread = running.get(campaign_id)
                if thread is not None and thread.is_alive():
                    continue
                holder = worker_identity()
                leadership = RedisLeadership(redis, campaign_id, holder)
                if not leadership.acquire():
                    continue
                job_id = _claim_run(campaign_id, client_id, holder)
                if job_id is None:
                    leadership.release()
                    continue
                log.info("pacer %s adopts campaign %s (run %s)", holder, campaign_id, job_id)
                thread = threading.Thread(
                    target=run_job, args=(str(job_id),), name=f"pacer-{campaign_id}", daemon=True
                )
                running[campaign_id] = thread
                thread.start()
        except Exception:  # a database or Redis blip: look again shortly
            log.exception("the pacer supervisor could not look for campaigns; retrying")
        stop.wait(adopt_every_s)
    for thread in running.values():
        thread.join()


def _supervisor_main(parent_pid: int) -> None:
    from core.logging import configure_logging
    from core.migrate import import_all_models
    from core.queue import die_with_parent

    die_with_parent(parent_pid)  # a killed worker takes its pacers with it: leases run out
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    import_all_models()
    stop = threading.Event()

    def shut_down(signum: int, _frame: object) -> None:
        log.info("pacer supervisor: signal %d, draining its pacers", signum)
        _draining.set()
        stop.set()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    supervise(stop=stop)


def start_supervisor_process() -> multiprocessing.process.BaseProcess:
    """Start :func:`supervise` in a process of its own next to ``pilotdial worker``'s RQ loop
    (spawned, not forked: the worker forks its work-horses and must hold no pacer threads)."""
    import os

    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_supervisor_main, args=(os.getpid(),), name="pilotdial-pacers", daemon=True
    )
    process.start()
    return process
