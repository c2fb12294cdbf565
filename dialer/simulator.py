"""Discrete-event simulation of one campaign day.

:class:`Simulation` drives the real pacing policies (:mod:`dialer.pacing`) against the
simulated gateway (:mod:`dialer.simgateway`) with simulated agents moved through the real
soft-phone state machine (:mod:`dialer.agents`). Every ``pacing_interval_s`` it builds the
same :class:`dialer.pacing.PacingSnapshot` the live dial loop builds, asks the policy how many
calls to launch, and originates them; gateway events then move calls and agents along. A live
answer that finds no free agent within the grace period hears the safe-harbour message and
counts as abandoned; answering machines follow the scenario's AMD policy and never count as
live answers. Agentless campaigns play IVR prompts that simulated respondents answer.

Every launch goes through the scenario's abandon guard after the policy's answer
(:func:`dialer.guard.guarded_launch`): with the default strict guard
(:func:`dialer.pacing.cap_safe_launch`) the abandon rate over the window stays within the
scenario's cap at every moment of the day, whatever the policy asks for; the statistical
guard bounds the probability of exceeding it instead. Live answers are counted in the window
(and in the result) when they are resolved: connected to an agent, abandoned at the end of
the grace period, or handed to the IVR in agentless mode.

Hooks let the live, database-backed dial loop run on the simulator (all optional,
keyword-only): a ``lead_source`` supplies the :class:`DialTarget` to call, an ``outcome_sink``
hears one :class:`CallRecord` per originated call when it is over, ``should_continue`` stops
launching (calls in progress then finish, and the run returns), and ``on_advance`` hears the
simulated clock move forward. An ``ivr`` hook (:class:`dialer.ivr.IvrDriver`) drives agentless
calls instead of the generic question counter: its prompts are played (the simulated gateway's
``ivr_respondent`` hears each :class:`dialer.ivr.IvrTurn`, with its text and key map), DTMF
goes to ``respond`` and a hang-up to ``hang_up``.

Everything is seeded: the same scenario, seed and policy give the same
:class:`SimulationResult`.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from dialer.abandon import AbandonWindow
from dialer.agents import AGENT_BUCKET_NAMES, AGENT_BUCKETS, AgentAction, AgentState, next_state
from dialer.distributions import Fixed
from dialer.gateway import (
    AgentLegEvent,
    Answered,
    AnswerKind,
    Busy,
    CallParameters,
    ConnectedToAgent,
    DtmfReceived,
    Failed,
    GatewayEvent,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    Ringing,
    TelephonyGateway,
)
from dialer.guard import guard_for
from dialer.pacing import (
    ElapsedTimes,
    PacingMode,
    PacingPolicy,
    PacingStats,
    make_snapshot,
    policy_for_mode,
)
from dialer.respondents import RespondentPrompt, RespondentReply
from dialer.scenario import AmdPolicy, Scenario
from dialer.simgateway import GatewayProfile, SimulatedGateway
from dialer.stats import DialOutcome, RecentStats

if TYPE_CHECKING:
    from dialer.ivr import IvrDriver, IvrRespondent, IvrTurn

__all__ = [
    "CallOutcome",
    "CallRecord",
    "DialTarget",
    "HangupBy",
    "LeadSource",
    "OutcomeSink",
    "Simulation",
    "SimulationResult",
    "simulate",
]

SAFE_HARBOUR_MESSAGE = "safe_harbour"
MACHINE_MESSAGE = "machine_message"
IVR_GOODBYE = "ivr_goodbye"
SKILL_GROUP = "sim"
CALLER_NUMBER = "+861080000000"

# Timer kinds on the simulation's own queue.
_WRAP_END, _ABANDON_CHECK, _PREVIEW_DIAL, _MACHINE_DROP = range(4)

CallOutcome = Literal["no_answer", "busy", "failed", "machine", "abandoned", "contact"]
"""How a call ended: ``contact`` is a human conversation with an agent or an IVR interview
(completed or broken off)."""

# Calls that ended unanswered, by event type: what pacing statistics and records say.
_UNANSWERED: dict[type[GatewayEvent], tuple[DialOutcome, CallOutcome]] = {
    NoAnswer: (DialOutcome.NO_ANSWER, "no_answer"),
    Busy: (DialOutcome.BUSY, "busy"),
    Failed: (DialOutcome.FAILED, "failed"),
}

_HUMAN = AnswerKind.HUMAN
_CALLEE = HangupParty.CALLEE

HangupBy = Literal["caller", "callee", "system"]
"""Who ended an answered call: our side's agent (``caller``), the callee, or the system."""

_HANGUP_BY: dict[str, HangupBy] = {
    HangupParty.AGENT: "caller",
    HangupParty.CALLEE: "callee",
    HangupParty.SYSTEM: "system",
}


@dataclass(frozen=True, slots=True)
class DialTarget:
    """One call to place, as a lead source hands it out.

    ``agent_id`` names the agent the lead is meant for: in preview mode the lead is offered
    to that agent if it is ready (otherwise to the longest-ready agent); other modes route an
    answered call to whichever agent is free and only carry it.
    """

    lead_id: str
    attempt_id: str
    phone_e164: str
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What happened to one originated call, reported once when it is over.

    Times are simulated seconds. ``agent_id`` is the agent the call was connected to (None if
    never connected); ``ringing_s`` is when the far end started alerting (None if it never
    did, e.g. a network failure); ``talk_s`` is the time connected to the agent, or spent in
    the IVR interview (0.0 otherwise); ``hangup_by`` is None for calls never answered;
    ``failure_cause`` is the gateway's :class:`dialer.gateway.FailureCause` value of a
    ``failed`` call (None otherwise), ``failure_detail`` what the network said about it.
    ``answered_s`` is the network's answer time.
    """

    lead_id: str
    attempt_id: str
    phone_e164: str
    agent_id: str | None
    originated_s: float
    ringing_s: float | None
    answered_s: float | None
    answer_kind: Literal["human", "machine"] | None
    connected_s: float | None
    ended_s: float
    talk_s: float
    abandoned: bool
    outcome: CallOutcome
    hangup_by: HangupBy | None
    failure_cause: str | None = None
    failure_detail: str = ""


@runtime_checkable
class LeadSource(Protocol):
    """Where a simulation gets its calls when it does not make up its own leads."""

    def next_targets(self, n: int, at_s: float) -> list[DialTarget]:
        """Up to ``n`` targets to call now (fewer, or none, when there are no more)."""
        ...


@runtime_checkable
class OutcomeSink(Protocol):
    """Hears every originated call once, when it is over."""

    def call_finished(self, record: CallRecord) -> None:
        """One call is over."""
        ...


class _CallInfo:
    """What the run knows about one call, for its :class:`CallRecord` (only with a sink)."""

    __slots__ = (
        "abandoned",
        "agent_id",
        "answer_kind",
        "answered_s",
        "attempt_id",
        "connected_s",
        "ivr",
        "lead_id",
        "originated_s",
        "phone",
        "ringing_s",
    )

    def __init__(self, lead_id: str, attempt_id: str, phone: str, originated_s: float) -> None:
        self.lead_id = lead_id
        self.attempt_id = attempt_id
        self.phone = phone
        self.originated_s = originated_s
        self.ringing_s: float | None = None
        self.answered_s: float | None = None
        self.answer_kind: Literal["human", "machine"] | None = None
        self.connected_s: float | None = None
        self.agent_id: str | None = None
        self.abandoned = False
        self.ivr = False

    def record(
        self,
        ended_s: float,
        outcome: CallOutcome | None,
        hangup_by: HangupBy | None,
        failure_cause: str | None = None,
        failure_detail: str = "",
    ) -> CallRecord:
        if outcome is None:  # the call was answered: say how it went
            if self.abandoned:
                outcome = "abandoned"
            elif self.answer_kind == "machine":
                outcome = "machine"
            elif self.connected_s is not None or self.ivr:
                outcome = "contact"
            else:  # a live answer that was neither connected nor abandoned (cannot happen)
                outcome = "failed"
        if self.connected_s is not None:
            talk = ended_s - self.connected_s
        elif self.ivr and self.answered_s is not None:
            talk = ended_s - self.answered_s
        else:
            talk = 0.0
        return CallRecord(
            lead_id=self.lead_id,
            attempt_id=self.attempt_id,
            phone_e164=self.phone,
            agent_id=self.agent_id,
            originated_s=self.originated_s,
            ringing_s=self.ringing_s,
            answered_s=self.answered_s,
            answer_kind=self.answer_kind,
            connected_s=self.connected_s,
            ended_s=ended_s,
            talk_s=max(talk, 0.0),
            abandoned=self.abandoned,
            outcome=outcome,
            hangup_by=hangup_by,
            failure_cause=failure_cause,
            failure_detail=failure_detail,
        )


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Figures for one simulated day (``to_dict`` gives the ``--json`` output).

    ``live_answers`` and ``abandoned`` are the compliance window's counts, the ones the
    abandon-cap clamp works from: a live answer is counted once resolved (connected to an
    agent, abandoned after the grace period, or handed to the IVR), so one still waiting
    when the day is cut off is not. ``duration_s`` is the time covered (see
    :class:`Simulation` for runs that let calls in progress finish).
    """

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
    """One simulated campaign day; build it, then :meth:`run` it once.

    Optional hooks (see the module docstring): ``lead_source`` supplies the calls to place
    (it is asked for the clamped number of calls at each tick, and the scenario's ``leads``
    no longer applies); ``outcome_sink`` hears one :class:`CallRecord` per originated call;
    ``should_continue(now)`` is checked at every pacing tick and, once it returns False,
    nothing more is launched, calls in progress finish and the run returns;
    ``on_advance(now)`` is called whenever the simulated time moves forward;
    ``on_live_answer(now, abandoned)`` is called each time a live answer is counted in the
    compliance window, in order.

    The run talks to telephony only through the :class:`dialer.gateway.TelephonyGateway`
    Protocol, so ``gateway`` may be any gateway; by default it is a
    :class:`dialer.simgateway.SimulatedGateway` built from the scenario (seeded by it). With
    a gateway of its own, every call is originated with its full request.
    ``profile_overrides`` change fields of the default gateway's
    :class:`~dialer.simgateway.GatewayProfile` (e.g. ``failure_causes``, ``amd_delay_s``).

    With an ``outcome_sink``, or once ``should_continue`` has stopped it, the run does not
    cut calls off at the end of the day: it launches nothing more and lets every call in
    progress (and every preview lead already handed to an agent) finish, so each gets its
    record; the result then covers the time up to the last call's end (``duration_s``).
    """

    def __init__(
        self,
        scenario: Scenario,
        policy: PacingPolicy | None = None,
        *,
        lead_source: LeadSource | None = None,
        outcome_sink: OutcomeSink | None = None,
        should_continue: Callable[[float], bool] | None = None,
        on_advance: Callable[[float], None] | None = None,
        on_live_answer: Callable[[float, bool], None] | None = None,
        ivr: IvrDriver | None = None,
        ivr_respondent: IvrRespondent | None = None,
        gateway: TelephonyGateway | None = None,
        profile_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.scenario = scenario
        self.ivr = ivr
        # The turn each IVR call is hearing, for ``ivr_respondent`` (only with ``ivr``).
        self._ivr_turns: dict[str, IvrTurn] = {}
        self.lead_source = lead_source
        self.outcome_sink = outcome_sink
        self.should_continue = should_continue
        self.on_advance = on_advance
        self.on_live_answer = on_live_answer
        self.policy = policy or policy_for_mode(
            scenario.mode,
            power_ratio=scenario.power_ratio,
            agentless_lines=scenario.agentless_lines,
            abandon_guard=scenario.abandon_guard,
            abandon_risk=scenario.abandon_risk,
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
            # Only call records use ringing; skipping it otherwise saves a fifth of events.
            emit_ringing=outcome_sink is not None,
            # Nothing here waits for a bridge to be reported (``connect_to_agent`` is enough).
            emit_connected=False,
        )
        if ivr is not None and ivr_respondent is not None:
            profile = dataclasses.replace(profile, respondent=self._ivr_reply(ivr_respondent))
        if profile_overrides:
            profile = dataclasses.replace(profile, **profile_overrides)
        self.own_gateway = gateway is None
        self.gateway: TelephonyGateway = (
            SimulatedGateway(profile, seed=scenario.seed) if gateway is None else gateway
        )
        self._rng = random.Random(scenario.seed * 1_000_003 + 11)
        self._stats = RecentStats(
            prior=PacingStats(no_answer_timeout_s=scenario.no_answer_timeout_s)
        )
        self._window = AbandonWindow(window_s=max(scenario.duration_s, 1.0) + 60.0)
        self._ran = False

    def _ivr_reply(
        self, respondent: IvrRespondent
    ) -> Callable[[RespondentPrompt], RespondentReply]:
        turns = self._ivr_turns

        def reply(prompt: RespondentPrompt) -> RespondentReply:
            return respondent(prompt, turns[prompt.call_id])

        return reply

    def run(self, progress: Callable[[float], None] | None = None) -> SimulationResult:
        """Simulate the day; ``progress`` is called with the simulated time about every minute."""
        if self._ran:
            raise RuntimeError("a Simulation runs once; build a new one to run again")
        self._ran = True
        self._run = _Run(self, progress)
        return self._run.execute()

    def agent_buckets(self) -> dict[str, int]:
        """The simulated agents by live-panel bucket now (ready, talking, wrap_up,
        not_ready, signed_out): for the hooks, while :meth:`run` runs; all signed out before."""
        counts = dict.fromkeys(AGENT_BUCKET_NAMES, 0)
        run: _Run | None = getattr(self, "_run", None)
        if run is None:
            counts["signed_out"] = self.scenario.agents
            return counts
        for state in run.agent_states:
            counts[AGENT_BUCKETS[state]] += 1
        return counts


def simulate(scenario: Scenario, policy: PacingPolicy | None = None) -> SimulationResult:
    """Run one simulated day and return its figures."""
    return Simulation(scenario, policy).run()


class _Run:
    """The mutable state of one simulation run (kept apart so Simulation stays small).

    It talks to its gateway through the public Protocol only, dispatching events by their
    type; calls whose ids nobody reads (no sink, no IVR, its own simulated gateway) share
    one origination request. Each agent is a state checked against the soft-phone's
    transition table: a day of a hundred agents is hundreds of thousands of calls and
    transitions.
    """

    def __init__(self, sim: Simulation, progress: Callable[[float], None] | None) -> None:
        self.sim = sim
        self.scenario = sc = sim.scenario
        self.policy = sim.policy
        self.gateway = sim.gateway
        self.progress = progress
        self.source = sim.lead_source
        self.sink = sim.outcome_sink
        self.on_live_answer = sim.on_live_answer
        self.stats = sim._stats
        self.rng = sim._rng
        self.agentless = sc.mode is PacingMode.AGENTLESS
        self.preview = sc.mode is PacingMode.PREVIEW
        self.agent_ids = [f"agent-{i + 1:03d}" for i in range(sc.agents)]
        self.agent_states = [AgentState.SIGNED_OUT] * sc.agents
        self.agent_index = {agent_id: i for i, agent_id in enumerate(self.agent_ids)}
        self.ready: deque[int] = deque()
        self.ready_since: list[float] = [0.0] * sc.agents
        self.on_call: dict[int, float] = {}
        self.in_wrap: dict[int, float] = {}
        self.talk_starts: tuple[float, ...] | None = None
        self.wrap_starts: tuple[float, ...] | None = None
        self.reserved: set[int] = set()
        self.ringing: dict[str, float] = {}
        self.waiting: dict[str, bool] = {}  # answered call id -> is a live answer
        self.call_agent: dict[str, int] = {}
        self.agent_call: dict[int, str] = {}
        self.ivr_prompts: dict[str, int] = {}
        self.ivr = sim.ivr
        self.ivr_turns = sim._ivr_turns
        # IVR calls whose interview is over (goodbye playing), with how it ended.
        self.ivr_over: dict[str, str | None] = {}
        self.closing: set[str] = set()
        # Preview leads handed to an agent and not dialled yet: a target, or a lead number.
        self.pending_preview: dict[int, DialTarget | int] = {}
        # Calls in progress, for their records (kept only when there is a sink).
        self.calls: dict[str, _CallInfo] | None = {} if self.sink is not None else None
        # Full requests when someone reads a call's ids or numbers: a simulated IVR
        # respondent, the sink's records, or a gateway that is not the run's own simulation.
        self.requests = self.agentless or self.sink is not None or not sim.own_gateway
        self.anonymous = OriginateRequest(
            campaign_id="simulation",
            lead_id="",
            attempt_id="",
            params=CallParameters(CALLER_NUMBER, "", None, SKILL_GROUP),
            timeout_s=sc.no_answer_timeout_s,
        )
        # Calls originated and not over (for the gateway: ended, or hung up by us), kept
        # only for a run that may have to let them finish (a sink, or a stop).
        self.track_live = self.sink is not None or sim.should_continue is not None
        self.live_calls: set[str] = set()
        # The abandon guard, chosen once (dialer.guard.guarded_launch at every tick).
        self.guard = guard_for(sc.abandon_guard, sc.abandon_risk, agentless=self.agentless)
        self.handlers: dict[type[GatewayEvent], Callable[[Any], None]] = {
            NoAnswer: self._on_unanswered,
            Busy: self._on_unanswered,
            Failed: self._on_unanswered,
            HungUp: self._on_hung_up,
            Answered: self._on_answer,
            DtmfReceived: self._on_dtmf_event,
            MessageFinished: self._on_message_end,
            Ringing: self._on_ringing,
            ConnectedToAgent: self._on_nothing,  # a bridge needs nothing from the simulation
            AgentLegEvent: self._on_agent_leg,
        }
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
        gateway = self.gateway
        for index in range(sc.agents):
            self._agent(index, AgentAction.SIGN_IN)
            if not self.agentless:  # each agent's phone leg, called once at sign-in
                agent_id = self.agent_ids[index]
                gateway.connect_agent_phone(agent_id, f"sim:{agent_id}", now=0.0)
            self._agent(index, AgentAction.GO_READY)
            self.ready.append(index)
        next_event_time = gateway.next_event_time
        poll = gateway.poll
        handlers = self.handlers
        other = self._on_other
        # Typed loosely: the type checks below select the handler, as the table does.
        on_unanswered: Callable[[Any], None] = self._on_unanswered
        on_hung_up: Callable[[Any], None] = self._on_hung_up
        on_answer: Callable[[Any], None] = self._on_answer
        timers = self.timers
        should_continue = self.sim.should_continue
        advance = self.sim.on_advance
        progress = self.progress
        clock = 0.0
        if advance is not None:
            advance(0.0)
        next_tick = 0.0
        next_report = 60.0
        interval = sc.pacing_interval_s
        stopped_at: float | None = None
        while True:
            gateway_at = next_event_time()
            timer_at = timers[0][0] if timers else None
            now = next_tick
            if gateway_at is not None and gateway_at < now:
                now = gateway_at
            if timer_at is not None and timer_at < now:
                now = timer_at
            if now > end:
                break
            if advance is not None and now > clock:
                clock = now
                advance(now)
            if progress is not None and now >= next_report:
                progress(now)
                next_report += 60.0
            if gateway_at is not None and gateway_at <= now:
                for event in poll(now):
                    event_type = type(event)
                    # The commonest kinds first, without a table lookup.
                    if event_type is NoAnswer:
                        on_unanswered(event)
                    elif event_type is HungUp:
                        on_hung_up(event)
                    elif event_type is Answered:
                        on_answer(event)
                    else:
                        handlers.get(event_type, other)(event)
                continue
            if timer_at is not None and timer_at <= now:
                at, _, kind, index, call_id = heapq.heappop(timers)
                self._on_timer(kind, index, call_id, at)
                continue
            if should_continue is not None and not should_continue(now):
                stopped_at = now
                break
            self._tick(now)
            next_tick = now + interval
        finished = end
        if stopped_at is not None or self.sink is not None:
            finished = self._drain(end if stopped_at is None else stopped_at, next_report)
        self._close_books(finished)
        return self._result(finished)

    def _drain(self, since: float, next_report: float) -> float:
        """Launch nothing more; run until every call in progress is over. Returns the time."""
        gateway = self.gateway
        timers = self.timers
        advance = self.sim.on_advance
        finished = since
        while self.live_calls or self.pending_preview:
            gateway_at = gateway.next_event_time()
            timer_at = timers[0][0] if timers else None
            if gateway_at is None and timer_at is None:  # pragma: no cover (cannot happen)
                break
            if timer_at is None or (gateway_at is not None and gateway_at <= timer_at):
                assert gateway_at is not None
                now = gateway_at
            else:
                now = timer_at
            if now > finished:
                finished = now
                if advance is not None:
                    advance(now)
                if self.progress is not None and now >= next_report:
                    self.progress(now)
                    next_report += 60.0
            if gateway_at is not None and gateway_at <= now:
                self._deliver(gateway.poll(now))
                continue
            at, _, kind, index, call_id = heapq.heappop(timers)
            self._on_timer(kind, index, call_id, at)
        if self.ivr is not None or self.sink is not None:
            # The last call's hang-up can still be queued after its call has ended (the
            # goodbye path): deliver it so that call gets its record too. Only when someone
            # listens for records (the live loop, IVR), so plain simulations stay as they were.
            self._deliver(gateway.poll(finished))
        return finished

    def _deliver(self, events: list[GatewayEvent]) -> None:
        handlers = self.handlers
        for event in events:
            handlers.get(type(event), self._on_other)(event)

    def _schedule(self, at: float, kind: int, index: int, call_id: str) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (at, self.seq, kind, index, call_id))

    def _agent(self, index: int, action: AgentAction) -> None:
        """Move an agent along the soft-phone's state machine (illegal moves raise)."""
        states = self.agent_states
        states[index] = next_state(states[index], action, agent_id=self.agent_ids[index])

    # -- pacing ---------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        sc = self.scenario
        source = self.source
        if now < self.window_exact_until:
            # The window is longer than the day, so nothing has left it yet: the running
            # counts are its counts (and cost no allocation per tick).
            live_answers, abandoned = self.window_live, self.window_abandoned
        else:
            live_answers, abandoned = self._window_counts(now)
        if self.preview:
            call_agent = self.call_agent
            bound = sum(1 for call_id in self.ringing if call_id in call_agent)
        else:
            bound = 0
        # Summaries move slowly; recomputing them every few seconds is plenty.
        cache = self.stats_cache
        if cache is None or now - cache[0] >= 5.0:
            cache = self.stats_cache = (now, self.stats.snapshot(now, sc.no_answer_timeout_s))
        talk_starts = self.talk_starts
        if talk_starts is None:
            talk_starts = self.talk_starts = tuple(self.on_call.values())
        wrap_starts = self.wrap_starts
        if wrap_starts is None:
            wrap_starts = self.wrap_starts = tuple(self.in_wrap.values())
        # PacingSnapshot's fields, in order.
        snapshot = make_snapshot(
            now,
            sc.agents,
            len(self.ready),
            ElapsedTimes(now, talk_starts),
            ElapsedTimes(now, wrap_starts),
            ElapsedTimes(now, tuple(self.ringing.values())),
            len(self.waiting),
            len(self.ivr_prompts),
            len(self.reserved),
            cache[1],
            live_answers,
            abandoned,
            sc.abandon_target,
            None if source is not None else sc.leads - self.leads_used,
            bound,
        )
        launch = self.guard(snapshot, self.policy.calls_to_launch(snapshot))
        if source is None:
            launch = min(launch, sc.leads - self.leads_used)
        if launch <= 0:
            return
        if self.preview:
            launch = min(launch, len(self.ready))
            if source is None:
                for _ in range(launch):
                    self.leads_used += 1
                    self._offer_preview(self.ready.popleft(), self.leads_used, now)
                return
            if launch > 0:
                for target in self._targets(source, launch, now):
                    index = self._preview_agent(target.agent_id)
                    self._offer_preview(index, target, now)
            return
        if source is not None:
            for target in self._targets(source, launch, now):
                self._originate(now, target, None)
        elif self.calls is None and not self.requests:
            # Nobody reads these calls' ids: they share one request.
            originate = self.gateway.originate
            request = self.anonymous
            ringing = self.ringing
            if self.track_live:
                live = self.live_calls
                for _ in range(launch):
                    call_id = originate(request, now=now)
                    ringing[call_id] = now
                    live.add(call_id)
            else:
                for _ in range(launch):
                    ringing[originate(request, now=now)] = now
            self.leads_used += launch
            self.counts["dials"] += launch
        else:
            for _ in range(launch):
                self.leads_used += 1
                self._originate(now, self.leads_used, None)

    def _targets(self, source: LeadSource, n: int, now: float) -> list[DialTarget]:
        targets = list(source.next_targets(n, now))
        if len(targets) > n:
            raise ValueError(
                f"the lead source returned {len(targets)} targets when asked for {n}; "
                "it must return at most as many as asked"
            )
        self.leads_used += len(targets)
        return targets

    def _preview_agent(self, agent_id: str | None) -> int:
        """The ready agent a preview lead goes to: the one it names if ready, else the first."""
        if agent_id is not None:
            index = self.agent_index.get(agent_id)
            if index is not None and index in self.ready:
                self.ready.remove(index)
                return index
        return self.ready.popleft()

    def _offer_preview(self, index: int, lead: DialTarget | int, now: float) -> None:
        self.idle_time += now - self.ready_since[index]
        self._agent(index, AgentAction.OFFER_PREVIEW)
        self.reserved.add(index)
        self.pending_preview[index] = lead
        wait = self.scenario.preview_time_s.sample(self.rng)
        self._schedule(now + wait, _PREVIEW_DIAL, index, "")

    def _window_counts(self, now: float) -> tuple[int, int]:
        counts = self.sim._window.counts(now)
        return counts.live_answers, counts.abandoned

    def _record_live_answer(self, at: float, *, abandoned: bool) -> None:
        """Count one resolved live answer: in the window, the result and for the callback."""
        self.sim._window.record_live_answer(at, abandoned=abandoned)
        self.window_live += 1
        self.counts["live"] += 1
        if abandoned:
            self.window_abandoned += 1
            self.counts["abandoned"] += 1
        if self.on_live_answer is not None:
            self.on_live_answer(at, abandoned)

    def _originate(self, now: float, lead: DialTarget | int, agent_index: int | None) -> str:
        """Place one call: a target from the lead source, or a made-up lead by number."""
        counts = self.counts
        counts["dials"] += 1
        if isinstance(lead, int):
            lead_id = f"lead-{lead}"
            attempt_id = f"attempt-{counts['dials']}"
            phone = f"+86138{lead:08d}"
        else:
            lead_id, attempt_id, phone = lead.lead_id, lead.attempt_id, lead.phone_e164
        request = self.anonymous
        if self.requests:
            agent_id = None if agent_index is None else self.agent_ids[agent_index]
            request = OriginateRequest(
                campaign_id="simulation",
                lead_id=lead_id,
                attempt_id=attempt_id,
                params=CallParameters(CALLER_NUMBER, phone, agent_id, SKILL_GROUP),
                timeout_s=self.scenario.no_answer_timeout_s,
            )
        call_id = self.gateway.originate(request, now=now)
        self.ringing[call_id] = now
        if self.track_live:
            self.live_calls.add(call_id)
        if agent_index is not None:
            self.call_agent[call_id] = agent_index
            self.agent_call[agent_index] = call_id
        if self.calls is not None:
            self.calls[call_id] = _CallInfo(lead_id, attempt_id, phone, now)
        return call_id

    def _finish(
        self,
        call_id: str,
        at: float,
        outcome: CallOutcome | None,
        by: HangupBy | None,
        cause: str | None = None,
        detail: str = "",
    ) -> None:
        """The call is over: report its record (with a sink)."""
        calls = self.calls
        if calls is None or self.sink is None:
            return
        info = calls.pop(call_id, None)
        if info is not None:
            self.sink.call_finished(info.record(at, outcome, by, cause, detail))

    def _hang_up(self, call_id: str, at: float) -> None:
        """End a call from our side; for the run it is over now (its HungUp may follow)."""
        if self.track_live:
            self.live_calls.discard(call_id)
        self.gateway.hang_up(call_id, now=at)

    # -- gateway events -------------------------------------------------------------------

    def _on_ringing(self, event: Ringing) -> None:
        if self.calls is not None:
            info = self.calls.get(event.call_id)
            if info is not None and info.ringing_s is None:
                info.ringing_s = event.at_s

    def _on_nothing(self, event: GatewayEvent) -> None:
        pass

    def _on_agent_leg(self, event: AgentLegEvent) -> None:
        # Simulated agents' phones stay up; a real gateway's lost leg only leaves its agent
        # without calls bridged to a phone, which the simulated day does not model.
        pass

    def _on_other(self, event: GatewayEvent) -> None:
        """An event of a subclass the table does not name: dispatch on what it is."""
        for kind, handler in self.handlers.items():
            if isinstance(event, kind):
                handler(event)
                return

    def _on_dtmf_event(self, event: DtmfReceived) -> None:
        if self.ivr is not None:
            self._on_ivr_dtmf(event.call_id, event.digits, event.at_s)
        else:
            self._on_dtmf(event.call_id, event.at_s)

    def _on_answer(self, event: Answered) -> None:
        call_id = event.call_id
        at = event.at_s
        media = event.media_answer_s
        answered = at if media is None else media  # the network answer: safe harbour's start
        human = event.kind is _HUMAN
        self.ringing.pop(call_id, None)
        if self.calls is not None:
            info = self.calls.get(call_id)
            if info is not None:
                info.answered_s = answered
                info.answer_kind = "human" if human else "machine"
        self.stats.record_outcome(
            at, DialOutcome.HUMAN if human else DialOutcome.MACHINE, event.ring_time_s
        )
        bound = self.call_agent.get(call_id)
        if not human:
            self.counts["machine"] += 1
            amd = self.scenario.amd_policy
            if amd is AmdPolicy.PASS_TO_AGENT:
                self._route(call_id, at, bound, live=False, answered=answered)
            else:
                if bound is not None:
                    self._release_bound(bound, call_id, at)
                if amd is AmdPolicy.LEAVE_MESSAGE:
                    self.closing.add(call_id)
                    self.gateway.play_message(call_id, MACHINE_MESSAGE, now=at)
                else:
                    self._hang_up(call_id, at)
            return
        if self.agentless:
            # Straight to the IVR: a live answer that cannot be abandoned.
            self._record_live_answer(at, abandoned=False)
            if self.calls is not None and call_id in self.calls:
                self.calls[call_id].ivr = True
            self.ivr_prompts[call_id] = 0
            if self.ivr is not None:
                turn = self.ivr.start(call_id, event.lead_id, event.attempt_id, at)
                self._play_ivr(call_id, turn, at)
                return
            self.gateway.play_message(call_id, "question-1", now=at, expect_dtmf=True)
            return
        self._route(call_id, at, bound, live=True, answered=answered)

    def _route(
        self, call_id: str, at: float, bound: int | None, *, live: bool, answered: float
    ) -> None:
        if bound is not None:
            self.reserved.discard(bound)
            self._connect(bound, call_id, at, live=live)
        elif self.ready:
            index = self.ready.popleft()
            self.idle_time += at - self.ready_since[index]
            self._connect(index, call_id, at, live=live)
        else:
            self.waiting[call_id] = live
            # The grace period runs from the network answer, not from the AMD verdict.
            deadline = answered + self.scenario.abandon_grace_s
            self._schedule(max(at, deadline), _ABANDON_CHECK, int(live), call_id)

    def _connect(self, index: int, call_id: str, at: float, *, live: bool) -> None:
        self._agent(index, AgentAction.CONNECT)
        self.on_call[index] = at
        self.talk_starts = None
        self.call_agent[call_id] = index
        self.agent_call[index] = call_id
        counts = self.counts
        counts["agent_calls"] += 1
        if live:
            counts["connected"] += 1
            self._record_live_answer(at, abandoned=False)
        agent_id = self.agent_ids[index]
        if self.calls is not None:
            info = self.calls.get(call_id)
            if info is not None:
                info.connected_s = at
                info.agent_id = agent_id
        self.gateway.connect_to_agent(call_id, agent_id=agent_id, skill_group=SKILL_GROUP, now=at)

    def _on_unanswered(self, event: NoAnswer | Busy | Failed) -> None:
        call_id = event.call_id
        at = event.at_s
        if self.track_live:
            self.live_calls.discard(call_id)
        started = self.ringing.pop(call_id, at)
        result, outcome = _UNANSWERED[type(event)]
        self.counts[outcome] += 1
        self.stats.record_outcome(at, result, at - started)
        bound = self.call_agent.get(call_id)
        if bound is not None:
            self._release_bound(bound, call_id, at)
        if self.calls is not None:
            if isinstance(event, Failed):
                self._finish(call_id, at, outcome, None, event.cause.value, event.detail)
            else:
                self._finish(call_id, at, outcome, None)

    def _release_bound(self, index: int, call_id: str, at: float) -> None:
        """A preview call that reached no one: the agent is free again."""
        self.call_agent.pop(call_id, None)
        self.agent_call.pop(index, None)
        self.reserved.discard(index)
        self._agent(index, AgentAction.CALL_FAILED)
        self._agent(index, AgentAction.FINISH_WRAP)
        self._agent_free(index, at)

    def _on_hung_up(self, event: HungUp) -> None:
        call_id = event.call_id
        at = event.at_s
        by = event.by
        if self.track_live:
            self.live_calls.discard(call_id)
        if self.ivr is not None and call_id in self.ivr_prompts:
            # The driver hears the hang-up first, so the interview is over by the time the
            # call's record is reported.
            del self.ivr_prompts[call_id]
            self._ivr_hung_up(call_id, at)
            self.closing.discard(call_id)
            self._finish(call_id, at, None, _HANGUP_BY.get(by, "system"))
            return
        if self.calls is not None:
            self._finish(call_id, at, None, _HANGUP_BY.get(by, "system"))
        index = self.call_agent.pop(call_id, None)
        if index is not None and index in self.on_call:
            started = self.on_call.pop(index)
            self.talk_starts = None
            self.agent_call.pop(index, None)
            self.busy_time += at - started
            self.stats.record_talk(at, at - started)
            self._agent(index, AgentAction.HANG_UP)
            self.in_wrap[index] = at
            self.wrap_starts = None
            wrap = self.scenario.wrap_time_s.sample(self.rng)
            self._schedule(at + wrap, _WRAP_END, index, "")
            return
        if call_id in self.ivr_prompts:
            del self.ivr_prompts[call_id]
            if by is _CALLEE:
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

    def _play_ivr(self, call_id: str, turn: IvrTurn, at: float) -> None:
        """Play what the IVR driver says next; the goodbye ends the call once played."""
        self.ivr_turns[call_id] = turn
        if turn.over:
            self.ivr_over[call_id] = turn.outcome
            self.closing.add(call_id)
        from dialer.ivr import play_turn  # loaded already: the IVR driver comes from there

        play_turn(self.gateway, call_id, turn, at)

    def _on_ivr_dtmf(self, call_id: str, digits: str, at: float) -> None:
        ivr = self.ivr
        if ivr is None or call_id not in self.ivr_prompts or call_id in self.ivr_over:
            return
        self.ivr_prompts[call_id] += 1
        self._play_ivr(call_id, ivr.respond(call_id, digits, at), at)

    def _ivr_hung_up(self, call_id: str, at: float) -> None:
        self.ivr_turns.pop(call_id, None)
        over = call_id in self.ivr_over
        outcome = self.ivr_over.pop(call_id, None)
        assert self.ivr is not None
        self.ivr.hang_up(call_id, at)  # a break-off if the interview was still running
        if not over:
            self.counts["broken_off"] += 1
        elif outcome == "completed":
            self.counts["completed"] += 1
        elif outcome == "broken_off":
            self.counts["broken_off"] += 1

    def _on_message_end(self, event: MessageFinished) -> None:
        call_id = event.call_id
        at = event.at_s
        message_id = event.message_id
        if self.ivr is not None and call_id in self.ivr_prompts and call_id not in self.closing:
            turn = self.ivr_turns.get(call_id)
            if turn is not None and not turn.expect_dtmf:
                # A prompt that takes no keys: the driver moves on once it has played.
                self._on_ivr_dtmf(call_id, "", at)
            return
        if call_id in self.closing or message_id == IVR_GOODBYE:
            self.closing.discard(call_id)
            self._hang_up(call_id, at)

    # -- timers ---------------------------------------------------------------------------

    def _on_timer(self, kind: int, index: int, call_id: str, at: float) -> None:
        if kind == _WRAP_END:
            started = self.in_wrap.pop(index)
            self.wrap_starts = None
            self.busy_time += at - started
            self.stats.record_wrap(at, at - started)
            self._agent(index, AgentAction.FINISH_WRAP)
            self._agent_free(index, at)
        elif kind == _ABANDON_CHECK:
            if self.waiting.pop(call_id, None) is None:
                return
            if index:  # a live answer: abandoned, it hears the safe-harbour message
                if self.calls is not None and call_id in self.calls:
                    self.calls[call_id].abandoned = True
                self._record_live_answer(at, abandoned=True)
                self.closing.add(call_id)
                self.gateway.play_message(call_id, SAFE_HARBOUR_MESSAGE, now=at)
            else:
                self._hang_up(call_id, at)
        elif kind == _PREVIEW_DIAL:
            self._originate(at, self.pending_preview.pop(index), index)
            self._agent(index, AgentAction.DIAL)

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

    def _result(self, duration: float) -> SimulationResult:
        sc = self.scenario
        c = self.counts
        staffed = sc.agents * duration
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
            duration_s=duration,
            mode=sc.mode.value,
            policy=f"{policy.__module__}:{policy.__qualname__}",
            seed=sc.seed,
        )
