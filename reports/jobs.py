"""RQ entry points (plain arguments, their own sessions): the scheduler tick and the pacer
health check. Enqueue them every few minutes (cron, rq-scheduler, or
``pilotdial report schedule-tick``)."""

from __future__ import annotations

from typing import Any

__all__ = ["health_tick", "schedule_tick"]


def schedule_tick() -> dict[str, Any]:
    """Deliver due weekly reports and mark overdue statements deemed confirmed."""
    from core.db import system_session
    from reports.service import run_schedules
    from reports.statements import deem_confirmations

    with system_session() as session:
        made = run_schedules(session)
        deemed = deem_confirmations(session)
        return {"reports": [str(d.id) for d in made], "deemed": [str(s.id) for s in deemed]}


def health_tick(redis_url: str) -> dict[str, Any]:
    """Open or close pacer outages: every running campaign must have a pacer lease holder."""
    from sqlmodel import select

    from campaigns.models import Campaign, CampaignStatus
    from core.db import system_session, utcnow
    from core.queue import get_redis
    from dialer.leadership import pacer_key
    from reports.availability import pacer_health_tick

    redis = get_redis(redis_url)
    with system_session() as session:
        running = session.exec(select(Campaign).where(Campaign.status == CampaignStatus.running))
        holders = [(c.id, c.client_id, bool(redis.exists(pacer_key(c.id)))) for c in running]
        changed = pacer_health_tick(session=session, now=utcnow(), holders=holders)
        return {"checked": len(holders), "changed": [str(o.id) for o in changed]}
