"""Background entry points of the dialer (RQ jobs, or in process in the embedded default)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

from core.jobs import JobContext
from core.queue import get_redis
from core.settings import get_settings
from dialer.attended import AgentsMode, AttendedConfig, run_attended
from dialer.leadership import LocalLeadership, PacerLeadership, RedisLeadership
from dialer.pacer import PacerConfig, run_pacer
from dialer.simgateway import GatewayProfile, ProbabilitySchedule, SimulatedGateway

__all__ = ["pace_campaign", "pace_live", "worker_identity"]


def worker_identity() -> str:
    """A unique id for this pacer: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def pace_campaign(ctx: JobContext) -> dict[str, Any]:
    """Pace a campaign until its dialing day ends, it pauses, or this worker loses the lease.

    Parameters: ``campaign_id``; ``config`` (see :class:`dialer.pacer.PacerConfig`);
    ``clock_start`` (ISO time of simulated second 0) and, with ``config.speed``,
    ``clock_wall_start`` (epoch seconds at which ``clock_start`` held), so a pacer that takes
    over continues the same campaign clock. With ``agents_mode`` ``"live"`` the campaign's
    real agent seats take the calls, in real time (:func:`pace_live`).
    """
    if ctx.params.get("agents_mode", AgentsMode.SIMULATED.value) == AgentsMode.LIVE.value:
        return pace_live(ctx)
    settings = get_settings()
    campaign_id = uuid.UUID(ctx.params["campaign_id"])
    config = PacerConfig.from_params(ctx.params.get("config", {}))
    clock_start = datetime.fromisoformat(ctx.params["clock_start"])
    if clock_start.tzinfo is None:
        clock_start = clock_start.replace(tzinfo=UTC)
    wall_start = ctx.params.get("clock_wall_start")
    holder = worker_identity()
    redis = get_redis(settings.redis_url) if settings.redis_url else None
    leadership = _leadership(redis, campaign_id, holder)
    total = None if config.duration_s is None else int(max(config.duration_s, 1.0))

    def progress(at_s: float) -> None:
        if int(at_s) % 300 == 0:
            ctx.progress(int(at_s), total, unit="seconds of dialing")

    result = run_pacer(
        client_id=ctx.client_id,
        campaign_id=campaign_id,
        leadership=leadership,
        clock_start=clock_start,
        config=config,
        journal=redis,
        acquire_timeout_s=float(ctx.params.get("acquire_timeout_s", 30.0)),
        progress=progress,
        clock_wall_start=float(wall_start) if config.speed and wall_start is not None else None,
    )
    return {
        "pacer": holder,
        "dials": result.dials,
        "completed": result.completed,
        "late_completions": result.late_completions,
        "suppressed_at_dial": result.suppressed_at_dial,
        "orphans_found": result.orphans_found,
        "stopped_because": result.stopped_because,
        "simulation": result.simulation,
    }


def _leadership(redis: Any, campaign_id: uuid.UUID, holder: str) -> PacerLeadership:
    if redis is not None:
        return RedisLeadership(redis, campaign_id, holder)
    return LocalLeadership(campaign_id, holder)


def pace_live(ctx: JobContext) -> dict[str, Any]:
    """Pace a campaign for its real agent seats (:mod:`dialer.attended`), in real time.

    ``config`` holds :class:`dialer.attended.AttendedConfig` fields and, for the simulated
    gateway the callees live on (no SIP gateway is wired yet), ``answer_probability``,
    ``machine_probability`` and ``seed``. A pacer that takes over shortens the day by the
    time elapsed since ``clock_wall_start``.
    """
    settings = get_settings()
    campaign_id = uuid.UUID(ctx.params["campaign_id"])
    raw = dict(ctx.params.get("config", {}))
    config = AttendedConfig.from_params(raw)
    wall_start = ctx.params.get("clock_wall_start")
    if wall_start is not None and config.duration_s is not None:
        elapsed = max(0.0, datetime.now(UTC).timestamp() - float(wall_start))
        config.duration_s = max(0.0, config.duration_s - elapsed)
    gateway = SimulatedGateway(
        GatewayProfile(
            answer_probability=ProbabilitySchedule.constant(
                float(raw.get("answer_probability", 0.3))
            ),
            machine_probability=float(raw.get("machine_probability", 0.1)),
        ),
        seed=int(raw.get("seed", 0)),
    )
    holder = worker_identity()
    redis = get_redis(settings.redis_url) if settings.redis_url else None
    journal_key = f"pilotdial:originates:{campaign_id}"
    total = None if config.duration_s is None else int(max(config.duration_s, 1.0))

    def progress(at_s: float) -> None:
        if int(at_s) % 60 == 0:
            ctx.progress(int(at_s), total, unit="seconds of dialing")

    result = run_attended(
        client_id=ctx.client_id,
        campaign_id=campaign_id,
        leadership=_leadership(redis, campaign_id, holder),
        gateway=gateway,
        config=config,
        journal=(lambda attempt_id: redis.rpush(journal_key, attempt_id)) if redis else None,
        acquire_timeout_s=float(ctx.params.get("acquire_timeout_s", 30.0)),
        progress=progress,
    )
    return {"pacer": holder, "agents_mode": AgentsMode.LIVE.value, **result.to_dict()}
