"""The attended run's main loop: ticks, leadership, and who handles what.

:class:`AttendedLoop` owns the run's :class:`dialer.attended.state.RunContext` and its parts,
and drives them in order each pass: gateway events (:class:`CallHandler`, phone legs to
:class:`AgentPhones`), the leadership and campaign-status check, each tick the seats
(:class:`AgentDesk`) and the phones, routing answered calls, lease renewal and, each tick
while it still launches, the pacing decision (:class:`Launcher`).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from datetime import datetime

from campaigns.lifecycle import DIALING_STATUSES
from campaigns.models import Campaign
from core.db import tenant_session
from core.errors import InvalidInput, PilotdialError
from dialer.attended.calls import CallHandler
from dialer.attended.config import AttendedConfig, AttendedResult
from dialer.attended.desk import AgentDesk
from dialer.attended.launcher import Launcher
from dialer.attended.phones import AgentPhones
from dialer.attended.state import Phase, RunContext, load_campaign, load_window
from dialer.dialing import DialPath
from dialer.gateway import (
    AgentLegEvent,
    HungUp,
    RecordingReady,
    TelephonyGateway,
    TransferOutFailed,
    TransferredOut,
)
from dialer.ivr_calls import IvrCalls
from dialer.leadership import PacerLeadership
from dialer.pacer import stop_reason, survey_ivr_for
from dialer.pacing import PacingMode, PacingSnapshot

__all__ = ["AttendedLoop"]

log = logging.getLogger("dialer.attended")


class AttendedLoop:
    """One attended run (see :mod:`dialer.attended`)."""

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
        self.leadership = leadership
        self.sleep = sleep
        self.progress = progress
        started = clock()
        with tenant_session([client_id]) as session:
            info = load_campaign(session, campaign_id)
            window = load_window(session, campaign_id, started, info.window_s)
        if config.default_disposition not in info.codes:
            raise InvalidInput(
                f"default_disposition {config.default_disposition!r} is not one of the "
                f"campaign's codes; use one of {', '.join(sorted(info.codes))}",
                extra={"field": "default_disposition"},
            )
        path = DialPath(
            client_id=client_id,
            campaign_id=campaign_id,
            worker_id=leadership.holder_id,
            lease_seconds=config.lease_seconds,
            counters=result,
            journal=journal,
            skill_group=info.skill_group,
        )
        self.ctx = ctx = RunContext(
            client_id=client_id,
            campaign_id=campaign_id,
            gateway=gateway,
            config=config,
            result=result,
            info=info,
            path=path,
            clock=clock,
            started=started,
            window=window,
            on_live_answer=on_live_answer,
        )
        agentless = info.mode is PacingMode.AGENTLESS
        self.calls = CallHandler(ctx, self._ivr(ctx, required=agentless), agentless=agentless)
        self.phones = AgentPhones(ctx, self.calls)
        self.desk = AgentDesk(ctx, self.calls, self.phones)
        self.launcher = Launcher(
            ctx, self.calls, self.phones, check=self._check, on_launch=on_launch
        )

    @staticmethod
    def _ivr(ctx: RunContext, *, required: bool) -> IvrCalls | None:
        """The IVR on the campaign's questionnaire: an agentless survey's interviewer, and
        where agents hand callees back to (人工轉自動); None for a campaign without one."""
        version_id = ctx.info.questionnaire_version_id
        if version_id is None:
            assert not required  # check_live_campaign refused it
            return None
        try:
            driver = survey_ivr_for(
                client_id=ctx.client_id, version_id=version_id, clock=ctx.at, result=ctx.result
            )
        except PilotdialError as exc:
            if required:
                raise
            log.warning("campaign %s: no IVR to hand calls back to: %s", ctx.campaign_id, exc)
            return None
        return IvrCalls(ctx.gateway, driver)

    def run(self) -> None:
        ctx, config = self.ctx, self.ctx.config
        next_tick = 0.0
        next_check = 0.0
        next_renew = config.lease_seconds / 3
        while True:
            now = ctx.now_s()
            self._poll(now)
            if self.calls.ivr is not None:
                self.calls.ivr.tick(now)
            if not ctx.stop and now >= next_check:
                next_check = now + config.check_s
                self._check(now)
            if not ctx.stop and config.duration_s is not None and now >= config.duration_s:
                ctx.halt("end of the requested duration", now)
            ticking = now >= next_tick
            if ticking:
                self.desk.sync(now)
                self.phones.sync(now)
                self._poll(now)
            self.desk.route(now)
            if now >= next_renew:
                next_renew = now + config.lease_seconds / 3
                ctx.path.renew(ctx.at(now))
            if ticking:
                next_tick = now + config.tick_s
                if not ctx.stop:
                    self.launcher.manual_dials(now)
                    self.launcher.launch(now)
                if self.progress is not None:
                    self.progress(now)
            if ctx.stop:
                assert ctx.stopped_s is not None
                if self.launcher.previews:
                    self.launcher.drop_previews(now)
                draining = now - ctx.stopped_s < config.drain_limit_s
                if not draining:
                    self.desk.close_wraps(now)
                # calls transferred out are the callees' and outside parties' conversations
                # now: the run (and its gateway) waits for them too, up to the drain limit
                if not ctx.calls and not (ctx.handed_out and draining):
                    if ctx.handed_out:
                        log.warning(
                            "campaign %s: %d call(s) transferred out still up when the run "
                            "ends; they end with it", ctx.campaign_id, len(ctx.handed_out),
                        )  # fmt: skip
                    break
            # whole microseconds, rounded up: a datetime clock moves by no less
            delay = math.ceil(max(0.0, self._wake_at(next_tick) - ctx.now_s()) * 1e6) / 1e6
            self.sleep(delay)
        self.phones.release_all(ctx.now_s())
        ctx.result.stopped_because = ctx.stop

    def _wake_at(self, next_tick: float) -> float:
        ctx = self.ctx
        wake = next_tick
        gateway_at = ctx.gateway.next_event_time()
        if gateway_at is not None:
            wake = min(wake, gateway_at)
        for call in ctx.in_phase(Phase.WAITING):
            wake = min(wake, call.waiting_since_s + ctx.config.abandon_grace_s)
        return wake

    def _check(self, now: float) -> None:
        """Stop launching when leadership is lost or the campaign no longer dials."""
        ctx = self.ctx
        if not self.leadership.renew():
            ctx.halt("leadership lost", now)
            return
        with ctx.session() as session:
            current = session.get(Campaign, ctx.campaign_id)
            if current is None or current.status not in DIALING_STATUSES:
                ctx.halt(stop_reason(current.status if current else None), now)

    def _poll(self, now: float) -> None:
        for event in self.ctx.gateway.poll(now):
            if isinstance(event, AgentLegEvent):
                self.phones.on_leg(event, now)
                continue
            if isinstance(event, RecordingReady):
                self.calls.keep_recording(event)  # whatever became of the call
                continue
            if event.call_id in self.ctx.handed_out and isinstance(
                event, TransferredOut | TransferOutFailed | HungUp
            ):
                self.calls.on_handed_out(event, now)  # transferred out: no longer ours
                continue
            call = self.ctx.calls.get(event.call_id)
            if call is not None:
                self.calls.on_event(call, event, now)
