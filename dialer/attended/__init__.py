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

The package's parts: :mod:`.config` (settings, result, whether a campaign can run live),
:mod:`.state` (what the parts share), :mod:`.calls` (gateway call events and completing
attempts), :mod:`.phones` (agents' phone legs), :mod:`.desk` (routing to agents, following the
seats), :mod:`.consult` (consultation and three-way calls), :mod:`.launcher` (pacing and
originating) and :mod:`.loop` (the ticks).

Leadership and crash safety follow :mod:`dialer.pacer`: the loop runs only while holding the
campaign's lease and stops launching the moment it is lost, when the campaign stops dialing
or when ``duration_s`` is over; calls in progress then finish (waiting at most
``drain_limit_s`` for agents' dispositions). A crash leaves attempts ``started``; their leases
expire and the hopper reschedules them after the "outcome unknown" delay.

A ``transfer`` to another agent (by 工號) who is ready and serves the campaign moves the call to
them: a pop on their soft-phone, the gateway's bridge moved (``transfer_to_agent``), and the
attempt is completed with the disposition given when *their* wrap-up ends (the first agent
wraps up on their own). A transfer to a skill group goes to its longest-ready agent serving the
client whose phone this loop reaches (an agent of the campaign's group too, or any agent when
the gateway reports no legs), with that group as the call's 技能組. Consulting a colleague
(``internal_call`` to a 工號) reserves them for the call, ``three_way`` mixes them in at the
gateway, and the first agent leaving hands them the call (:mod:`.consult`).

An agent's own calls: an agent who dials a due callback of theirs (the agent API's
``dial_callback``), or types the number of a waiting lead of a campaign this loop dials for
their group, is left ``dialing``; the loop places that call within a tick by the
hopper's rules (:func:`campaigns.hopper.lease_lead`: calling window, attempt limit, due time,
do-not-call), with the attempt row first, and puts the answer through to that agent whatever
answered. Such calls are never abandoned, never in the compliance window's counts (no agent
was at risk of being missing) and not in the pacing exposure; a busy, unanswered or refused
one ends the agent's dial with ``call_failed`` and the reason; an agent hanging up while it
rings cancels it (a no-answer attempt). Preview campaigns: each ready agent (longest ready
first) is offered a lead to look at (``preview_offered``, its lease held meanwhile); dialing
it places it as the agent's own call, skipping it gives the lead back to the hopper with no
attempt, and when dialing stops an open preview is skipped for the agent ("dialing stopped");
with ``pacing_params.preview_dial_after_s`` a preview looked at that long is dialed for the
agent (reason "preview timed out"), VICIdial's preview timeout.

Agentless survey campaigns (no agents): the loop keeps ``pacing_params.lines`` calls in
flight (10 by default); whoever answers is interviewed at once by the IVR
(:class:`dialer.ivr_calls.IvrCalls` on the campaign's published questionnaire: prompts spoken
by the gateway, keys collected one prompt at a time), the interview is stored in the survey
tables and the attempt gets the disposition its end means (complete, not eligible, partial,
refused). Machines follow the AMD policy. An agent of a campaign with a questionnaire can hand
the callee back to that IVR (``hand_to_ivr``, 人工轉自動): the gateway takes the call from the
agent (``detach_agents``) and the attempt gets the interview's disposition.

Limits: a transfer to an agent who is not ready, to a skill group none of whose reachable
agents is ready, or to an outside number, or a hand-over to the IVR in a campaign without a
questionnaire is treated as the agent hanging up, so the callee is disconnected (while
consulting, the gateway does not connect the two agents to each other); a hold or a
consultation puts the callee on hold at the gateway (music) at the next tick, and taking the
call back takes them off it; an agent who goes not ready while a call launched for them rings
leaves that call without an agent: the loop hangs such surplus ringing calls up once they have
rung ``surplus_min_ring_s`` (15 s), but one answered sooner waits out the grace period and gets
the safe-harbour message, an abandon the guard did not foresee; an agent serving several
running campaigns is counted by each campaign's loop (the pop's row lock decides who gets it)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from dialer.attended.config import (
    MACHINE_MESSAGE,
    SAFE_HARBOUR_MESSAGE,
    SURPLUS_CAUSE,
    AgentsMode,
    AttendedConfig,
    AttendedResult,
    LiveDialingUnavailable,
    check_live_campaign,
)
from dialer.attended.loop import AttendedLoop
from dialer.gateway import TelephonyGateway
from dialer.leadership import PacerLeadership
from dialer.pacer import end_left_calls, orphaned_attempts
from dialer.pacing import PacingSnapshot

__all__ = [
    "MACHINE_MESSAGE",
    "SAFE_HARBOUR_MESSAGE",
    "SURPLUS_CAUSE",
    "AgentsMode",
    "AttendedConfig",
    "AttendedResult",
    "LiveDialingUnavailable",
    "check_live_campaign",
    "run_attended",
]

log = logging.getLogger(__name__)


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
        # the calls it left up are ended before this pacer dials (nobody hears them now)
        result.left_calls_ended = end_left_calls(
            client_id=client_id, campaign_id=campaign_id, gateway=gateway
        )
        loop = AttendedLoop(
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
