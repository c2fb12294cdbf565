"""Discrete-event simulation of one campaign day.

:class:`Simulation` drives the real pacing policies (:mod:`dialer.pacing`) against the
simulated gateway (:mod:`dialer.simgateway`) with simulated agents moved through the real
soft-phone state machine (:mod:`dialer.agents`). Every ``pacing_interval_s`` it builds the
same :class:`dialer.pacing.PacingSnapshot` the live dial loop builds, asks the policy how many
calls to launch, and originates them; gateway events then move calls and agents along. A live
answer that finds no free agent within the grace period hears the safe-harbour message and
counts as abandoned; answering machines follow the scenario's AMD policy and never count as
live answers. Agentless campaigns play IVR prompts that simulated respondents answer.

Everything is seeded: the same scenario, seed and policy give the same
:class:`SimulationResult`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dialer.abandon import AbandonWindow
from dialer.agents import Agent, AgentAction, AgentState
from dialer.distributions import Fixed
from dialer.gateway import (
    Answered,
    AnswerKind,
    Busy,
    CallParameters,
    DtmfReceived,
    Failed,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
)
from dialer.pacing import PacingMode, PacingPolicy, PacingSnapshot, PacingStats, policy_for_mode
from dialer.scenario import AmdPolicy, Scenario
from dialer.simgateway import GatewayProfile, SimulatedGateway
from dialer.stats import DialOutcome, RecentStats

__all__ = ["Simulation", "SimulationResult", "simulate"]

SAFE_HARBOUR_MESSAGE = "safe_harbour"
MACHINE_MESSAGE = "machine_message"
IVR_GOODBYE = "ivr_goodbye"
SKILL_GROUP = "sim"
CALLER_NUMBER = "+861080000000"

# Timer kinds on the simulation's own queue.
_WRAP_END, _ABANDON_CHECK, _PREVIEW_DIAL, _MACHINE_DROP = range(4)

# Gateway events the simulation reacts to, by class.
_EV_ANSWERED, _EV_HUNG_UP, _EV_UNANSWERED, _EV_DTMF, _EV_MESSAGE_END = range(5)
_EVENT_KINDS: dict[type, int] = {
    Answered: _EV_ANSWERED,
    HungUp: _EV_HUNG_UP,
    NoAnswer: _EV_UNANSWERED,
    Busy: _EV_UNANSWERED,
    Failed: _EV_UNANSWERED,
    DtmfReceived: _EV_DTMF,
    MessageFinished: _EV_MESSAGE_END,
}


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Figures for one simulated day (``to_dict`` gives the ``--json`` output)."""

    dials: int
    live_answers: int
    machine_answers: int
    no_answers: int
    busy: int
    failed: int
    abandoned: int
    abandon_rate: float
    occupancy: float
    agent_idle_mean_s: float
    contacts_per_agent_hour: float
    connected: int
    interviews_completed: int
    interviews_broken_off: int
    agents: int
    duration_s: float
    mode: str
    policy: str
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


class Simulation:
    """One simulated campaign day; build it, then :meth:`run` it once."""

    def __init__(self, scenario: Scenario, policy: PacingPolicy | None = None) -> None:
        self.scenario = scenario
        self.policy = policy or policy_for_mode(
            scenario.mode,
            power_ratio=scenario.power_ratio,
            agentless_lines=scenario.agentless_lines,
        )
        agentless = scenario.mode is PacingMode.AGENTLESS
        profile = GatewayProfile(
            answer_probability=scenario.answer_probability,
            machine_probability=scenario.machine_probability,
            busy_probability=scenario.busy_probability,
            failure_probability=scenario.failure_probability,
            ring_time=scenario.ring_time_s,
            talk_time=scenario.talk_time_s,
            # An interview's prompts together last about one talk time.
            message_time=scenario.talk_time_s.scaled(1.0 / (scenario.ivr_questions + 1))
            if agentless
            else Fixed(6.0),
            # Nothing in the simulation reacts to ringing; skipping it saves a fifth of events.
            emit_ringing=False,
        )
        self.gateway = SimulatedGateway(profile, seed=scenario.seed)
        self._rng = random.Random(scenario.seed * 1_000_003 + 11)
        self._stats = RecentStats(
            prior=PacingStats(no_answer_timeout_s=scenario.no_answer_timeout_s)
        )
        self._window = AbandonWindow(window_s=max(scenario.duration_s, 1.0) + 60.0)
        self._ran = False

    def run(self, progress: Callable[[float], None] | None = None) -> SimulationResult:
        """Simulate the day; ``progress`` is called with the simulated time about every minute."""
        if self._ran:
            raise RuntimeError("a Simulation runs once; build a new one to run again")
        self._ran = True
        return _Run(self, progress).execute()


def simulate(scenario: Scenario, policy: PacingPolicy | None = None) -> SimulationResult:
    """Run one simulated day and return its figures."""
    return Simulation(scenario, policy).run()


class _Run:
    """The mutable state of one simulation run (kept apart so Simulation stays small)."""

    def __init__(self, sim: Simulation, progress: Callable[[float], None] | None) -> None:
        self.sim = sim
        self.scenario = sc = sim.scenario
        self.policy = sim.policy
        self.gateway = sim.gateway
        self.progress = progress
        self.agentless = sc.mode is PacingMode.AGENTLESS
        self.preview = sc.mode is PacingMode.PREVIEW
        self.agents = [Agent(f"agent-{i + 1:03d}", (SKILL_GROUP,)) for i in range(sc.agents)]
        self.ready: deque[int] = deque()
        self.ready_since: list[float] = [0.0] * sc.agents
        self.on_call: dict[int, float] = {}
        self.in_wrap: dict[int, float] = {}
        self.reserved: set[int] = set()
        self.ringing: dict[str, float] = {}
        self.waiting: dict[str, bool] = {}  # answered call id -> is a live answer
        self.call_agent: dict[str, int] = {}
        self.agent_call: dict[int, str] = {}
        self.ivr_prompts: dict[str, int] = {}
        self.closing: set[str] = set()
        self.timers: list[tuple[float, int, int, int, str]] = []
        self.seq = 0
        self.stats_cache: tuple[float, PacingStats] | None = None
        self.leads_used = 0
        window = sim._window
        # The run counts answers from an empty window; until the window's length has passed
        # nothing can leave it, so the running counts below are exact.
        self.window_exact_until = -math.inf if window.buckets() else window.window_s
        self.window_live = 0
        self.window_abandoned = 0
        self.busy_time = 0.0
        self.idle_time = 0.0
        self.counts = dict.fromkeys(
            (
                "dials",
                "live",
                "machine",
                "no_answer",
                "busy",
                "failed",
                "abandoned",
                "connected",
                "agent_calls",
                "completed",
                "broken_off",
            ),
            0,
        )

    # -- main loop ------------------------------------------------------------------------

    def execute(self) -> SimulationResult:
        sc = self.scenario
        end = sc.duration_s
        for index in range(sc.agents):
            self._agent(index, AgentAction.SIGN_IN, 0.0)
            self._agent(index, AgentAction.GO_READY, 0.0)
            self.ready.append(index)
        gateway = self.gateway
        timers = self.timers
        next_tick = 0.0
        next_report = 60.0
        interval = sc.pacing_interval_s
        while True:
            gateway_at = gateway.next_event_time()
            timer_at = timers[0][0] if timers else None
            now = next_tick
            if gateway_at is not None and gateway_at < now:
                now = gateway_at
            if timer_at is not None and timer_at < now:
                now = timer_at
            if now > end:
                break
            if self.progress is not None and now >= next_report:
                self.progress(now)
                next_report += 60.0
            if gateway_at is not None and gateway_at <= now:
                for event in gateway.poll(now):
                    self._on_event(event, event.at_s)
                continue
            if timer_at is not None and timer_at <= now:
                at, _, kind, index, call_id = heapq.heappop(timers)
                self._on_timer(kind, index, call_id, at)
                continue
            self._tick(now)
            next_tick = now + interval
        self._close_books(end)
        return self._result()

    def _schedule(self, at: float, kind: int, index: int, call_id: str) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (at, self.seq, kind, index, call_id))

    def _agent(self, index: int, action: AgentAction, at: float, **details: Any) -> None:
        self.agents[index] = self.agents[index].apply(action, at_s=at, **details).agent

    # -- pacing ---------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        sc = self.scenario
        counts = self._window_counts(now)
        snapshot = PacingSnapshot(
            now_s=now,
            agents_signed_in=sc.agents,
            agents_ready=len(self.ready),
            talk_elapsed_s=[now - t for t in self.on_call.values()],
            wrap_elapsed_s=[now - t for t in self.in_wrap.values()],
            ringing_elapsed_s=[now - t for t in self.ringing.values()],
            calls_waiting=len(self.waiting),
            calls_in_ivr=len(self.ivr_prompts),
            agents_reserved=len(self.reserved),
            stats=self._pacing_stats(now),
            live_answers_in_window=counts[0],
            abandoned_in_window=counts[1],
            abandon_cap=sc.abandon_target,
            leads_available=sc.leads - self.leads_used,
        )
        launch = self.policy.calls_to_launch(snapshot)
        launch = min(max(int(launch), 0), sc.leads - self.leads_used)
        if self.preview:
            for _ in range(min(launch, len(self.ready))):
                index = self.ready.popleft()
                self.idle_time += now - self.ready_since[index]
                self.leads_used += 1
                lead = f"lead-{self.leads_used}"
                self._agent(index, AgentAction.OFFER_PREVIEW, now, lead_id=lead)
                self.reserved.add(index)
                wait = sc.preview_time_s.sample(self.sim._rng)
                self._schedule(now + wait, _PREVIEW_DIAL, index, lead)
            return
        for _ in range(launch):
            self.leads_used += 1
            self._originate(now, self.leads_used, None)

    def _pacing_stats(self, now: float) -> PacingStats:
        # Summaries move slowly; recomputing them every few seconds is plenty.
        if self.stats_cache is None or now - self.stats_cache[0] >= 5.0:
            stats = self.sim._stats.snapshot(now, self.scenario.no_answer_timeout_s)
            self.stats_cache = (now, stats)
        return self.stats_cache[1]

    def _window_counts(self, now: float) -> tuple[int, int]:
        if now < self.window_exact_until:
            # The window is longer than the day, so nothing has left it yet: the running
            # counts are its counts (and cost no allocation per tick).
            return self.window_live, self.window_abandoned
        counts = self.sim._window.counts(now)
        return counts.live_answers, counts.abandoned

    def _record_live_answer(self, at: float, *, abandoned: bool) -> None:
        self.sim._window.record_live_answer(at, abandoned=abandoned)
        self.window_live += 1
        if abandoned:
            self.window_abandoned += 1

    def _originate(self, now: float, lead: int, agent_index: int | None) -> str:
        self.counts["dials"] += 1
        agent_id = None if agent_index is None else self.agents[agent_index].agent_id
        request = OriginateRequest(
            campaign_id="simulation",
            lead_id=f"lead-{lead}",
            attempt_id=f"attempt-{self.counts['dials']}",
            params=CallParameters(CALLER_NUMBER, f"+86138{lead:08d}", agent_id, SKILL_GROUP),
            timeout_s=self.scenario.no_answer_timeout_s,
        )
        call_id = self.gateway.originate(request, now=now)
        self.ringing[call_id] = now
        if agent_index is not None:
            self.call_agent[call_id] = agent_index
            self.agent_call[agent_index] = call_id
        return call_id

    # -- gateway events -------------------------------------------------------------------

    def _on_event(self, event: object, at: float) -> None:
        # Dispatch on the exact class first (the hot path), then on subclasses.
        kind = _EVENT_KINDS.get(type(event))
        if kind is None:
            kind = next((k for cls, k in _EVENT_KINDS.items() if isinstance(event, cls)), -1)
        if kind == _EV_UNANSWERED:
            self._on_unanswered(event, at)  # type: ignore[arg-type]
        elif kind == _EV_ANSWERED:
            self._on_answer(event, at)  # type: ignore[arg-type]
        elif kind == _EV_HUNG_UP:
            self._on_hung_up(event, at)  # type: ignore[arg-type]
        elif kind == _EV_DTMF:
            self._on_dtmf(event.call_id, at)  # type: ignore[attr-defined]
        elif kind == _EV_MESSAGE_END:
            self._on_message_end(event.call_id, event.message_id, at)  # type: ignore[attr-defined]
        # Ringing and ConnectedToAgent need nothing from the simulation.

    def _on_answer(self, event: Answered, at: float) -> None:
        call_id = event.call_id
        self.ringing.pop(call_id, None)
        human = event.kind is AnswerKind.HUMAN
        stats = self.sim._stats
        stats.record_outcome(
            at, DialOutcome.HUMAN if human else DialOutcome.MACHINE, event.ring_time_s
        )
        bound = self.call_agent.get(call_id)
        if not human:
            self.counts["machine"] += 1
            amd = self.scenario.amd_policy
            if amd is AmdPolicy.PASS_TO_AGENT:
                self._route(call_id, at, bound, live=False)
            else:
                if bound is not None:
                    self._release_bound(bound, call_id, at)
                if amd is AmdPolicy.LEAVE_MESSAGE:
                    self.closing.add(call_id)
                    self.gateway.play_message(call_id, MACHINE_MESSAGE, now=at)
                else:
                    self.gateway.hang_up(call_id, now=at)
            return
        self.counts["live"] += 1
        if self.agentless:
            self.ivr_prompts[call_id] = 0
            self.gateway.play_message(call_id, "question-1", now=at, expect_dtmf=True)
            return
        self._route(call_id, at, bound, live=True)

    def _route(self, call_id: str, at: float, bound: int | None, *, live: bool) -> None:
        if bound is not None:
            self.reserved.discard(bound)
            self._connect(bound, call_id, at, live=live)
        elif self.ready:
            index = self.ready.popleft()
            self.idle_time += at - self.ready_since[index]
            self._connect(index, call_id, at, live=live)
        else:
            self.waiting[call_id] = live
            self._schedule(at + self.scenario.abandon_grace_s, _ABANDON_CHECK, int(live), call_id)

    def _connect(self, index: int, call_id: str, at: float, *, live: bool) -> None:
        agent = self.agents[index]
        if agent.state is AgentState.DIALING:
            self._agent(index, AgentAction.CONNECT, at)
        else:
            self._agent(index, AgentAction.CONNECT, at, call_id=call_id)
        self.on_call[index] = at
        self.call_agent[call_id] = index
        self.agent_call[index] = call_id
        self.counts["agent_calls"] += 1
        if live:
            self.counts["connected"] += 1
            self._record_live_answer(at, abandoned=False)
        self.gateway.connect_to_agent(
            call_id, agent_id=agent.agent_id, skill_group=SKILL_GROUP, now=at
        )

    def _on_unanswered(self, event: NoAnswer | Busy | Failed, at: float) -> None:
        call_id = event.call_id
        started = self.ringing.pop(call_id, at)
        if isinstance(event, NoAnswer):
            self.counts["no_answer"] += 1
            outcome = DialOutcome.NO_ANSWER
        elif isinstance(event, Busy):
            self.counts["busy"] += 1
            outcome = DialOutcome.BUSY
        else:
            self.counts["failed"] += 1
            outcome = DialOutcome.FAILED
        self.sim._stats.record_outcome(at, outcome, at - started)
        bound = self.call_agent.get(call_id)
        if bound is not None:
            self._release_bound(bound, call_id, at)

    def _release_bound(self, index: int, call_id: str, at: float) -> None:
        """A preview call that reached no one: the agent is free again."""
        self.call_agent.pop(call_id, None)
        self.agent_call.pop(index, None)
        self.reserved.discard(index)
        self._agent(index, AgentAction.CALL_FAILED, at)
        self._agent(index, AgentAction.FINISH_WRAP, at)
        self._agent_free(index, at)

    def _on_hung_up(self, event: HungUp, at: float) -> None:
        call_id = event.call_id
        index = self.call_agent.pop(call_id, None)
        if index is not None and index in self.on_call:
            started = self.on_call.pop(index)
            self.agent_call.pop(index, None)
            self.busy_time += at - started
            self.sim._stats.record_talk(at, at - started)
            self._agent(index, AgentAction.HANG_UP, at)
            self.in_wrap[index] = at
            wrap = self.scenario.wrap_time_s.sample(self.sim._rng)
            self._schedule(at + wrap, _WRAP_END, index, "")
            return
        if call_id in self.ivr_prompts:
            del self.ivr_prompts[call_id]
            if event.by is HangupParty.CALLEE:
                self.counts["broken_off"] += 1
            else:
                self.counts["completed"] += 1
        self.closing.discard(call_id)

    def _on_dtmf(self, call_id: str, at: float) -> None:
        answered = self.ivr_prompts.get(call_id)
        if answered is None:
            return
        answered += 1
        self.ivr_prompts[call_id] = answered
        if answered < self.scenario.ivr_questions:
            self.gateway.play_message(call_id, f"question-{answered + 1}", now=at, expect_dtmf=True)
        else:
            self.gateway.play_message(call_id, IVR_GOODBYE, now=at)

    def _on_message_end(self, call_id: str, message_id: str, at: float) -> None:
        if call_id in self.closing or message_id == IVR_GOODBYE:
            self.closing.discard(call_id)
            self.gateway.hang_up(call_id, now=at)

    # -- timers ---------------------------------------------------------------------------

    def _on_timer(self, kind: int, index: int, call_id: str, at: float) -> None:
        if kind == _WRAP_END:
            started = self.in_wrap.pop(index)
            self.busy_time += at - started
            self.sim._stats.record_wrap(at, at - started)
            self._agent(index, AgentAction.FINISH_WRAP, at)
            self._agent_free(index, at)
        elif kind == _ABANDON_CHECK:
            if self.waiting.pop(call_id, None) is None:
                return
            if index:  # a live answer: abandoned, it hears the safe-harbour message
                self.counts["abandoned"] += 1
                self._record_live_answer(at, abandoned=True)
                self.closing.add(call_id)
                self.gateway.play_message(call_id, SAFE_HARBOUR_MESSAGE, now=at)
            else:
                self.gateway.hang_up(call_id, now=at)
        elif kind == _PREVIEW_DIAL:
            lead = int(call_id.rsplit("-", 1)[1])
            real = self._originate(at, lead, index)
            self._agent(index, AgentAction.DIAL, at, call_id=real)

    def _agent_free(self, index: int, at: float) -> None:
        waiting = self.waiting
        if waiting:
            call_id = next(iter(waiting))
            live = waiting.pop(call_id)
            self._connect(index, call_id, at, live=live)
            return
        self.ready.append(index)
        self.ready_since[index] = at

    # -- results --------------------------------------------------------------------------

    def _close_books(self, end: float) -> None:
        # Work in progress at the end of the day counts up to the end.
        for started in self.on_call.values():
            self.busy_time += end - started
        for started in self.in_wrap.values():
            self.busy_time += end - started
        for index in self.ready:
            self.idle_time += end - self.ready_since[index]

    def _result(self) -> SimulationResult:
        sc = self.scenario
        c = self.counts
        staffed = sc.agents * sc.duration_s
        live = c["live"]
        policy = type(self.policy)
        return SimulationResult(
            dials=c["dials"],
            live_answers=live,
            machine_answers=c["machine"],
            no_answers=c["no_answer"],
            busy=c["busy"],
            failed=c["failed"],
            abandoned=c["abandoned"],
            abandon_rate=c["abandoned"] / live if live else 0.0,
            occupancy=self.busy_time / staffed if staffed else 0.0,
            agent_idle_mean_s=self.idle_time / c["agent_calls"] if c["agent_calls"] else 0.0,
            contacts_per_agent_hour=c["connected"] / (staffed / 3600.0) if staffed else 0.0,
            connected=c["connected"],
            interviews_completed=c["completed"],
            interviews_broken_off=c["broken_off"],
            agents=sc.agents,
            duration_s=sc.duration_s,
            mode=sc.mode.value,
            policy=f"{policy.__module__}:{policy.__qualname__}",
            seed=sc.seed,
        )
