"""Pacing: how many calls to launch now.

A pacing policy is a pure decision: given a :class:`PacingSnapshot` (agents ready, agents on
calls with their elapsed talk times, agents in wrap-up, calls ringing with their elapsed ring
times, answered calls waiting for an agent, recent :class:`PacingStats`, the abandons and live
answers counted in the compliance window, and the cap) it returns how many calls to launch.
It reads no clock and does no I/O; the snapshot's ``now_s`` is the only time it sees. A policy
object may keep state derived from the snapshots it has been shown (the VICIdial-style
baseline does), but the built-in policies need none beyond caches, so a pacer that takes over
a campaign can build a fresh one.

Policies implement :class:`PacingPolicy` and can be loaded by import path with
:func:`load_policy` (``"package.module:ClassName"``). Built in:

- :class:`PreviewPolicy`: one lead presented per ready agent; the agent dials.
- :class:`ProgressivePolicy`: one call per ready agent not already covered by a ringing call.
- :class:`PowerPolicy`: a fixed number of calls per ready agent.
- :class:`PredictivePolicy`: adaptive over-dialing that aims the abandon rate at a share of
  the cap (see its docstring for the model); what *holds* it under the cap is the guard.
- :class:`AgentlessPolicy`: a fixed number of concurrent lines for IVR surveys or messages.

Whatever the policy answers, the dial loop and the simulator pass it through an abandon guard
(:mod:`dialer.guard`). The default, :func:`cap_safe_launch`, is a policy-independent clamp
that makes the abandon cap a hard invariant: it only allows calls whose worst case (every call
without an agent for it answered live and abandoned) keeps the window's abandon rate within
the cap. The statistical guard (:func:`dialer.guard.statistical_safe_launch`) bounds the
probability of exceeding the cap instead.

Abandon rate = abandoned ÷ live (human) answers; a live answer not connected to an agent within
the grace period (2 s) is abandoned. Answering-machine answers are not live answers.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from struct import pack as _pack
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np
import numpy.typing as npt

from dialer.distributions import lognormal_log_params
from dialer.exceptions import PolicyError

__all__ = [
    "AgentlessPolicy",
    "ElapsedTimes",
    "PacingMode",
    "PacingPolicy",
    "PacingSnapshot",
    "PacingStats",
    "PowerPolicy",
    "PredictivePolicy",
    "PreviewPolicy",
    "ProgressivePolicy",
    "cap_safe_launch",
    "load_policy",
    "make_snapshot",
    "policy_for_mode",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class PacingMode(StrEnum):
    """The campaign's dialing mode."""

    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    POWER = "power"
    PREDICTIVE = "predictive"
    AGENTLESS = "agentless"


@dataclass(frozen=True, slots=True)
class PacingStats:
    """Recent observed call statistics (see :class:`dialer.stats.RecentStats`).

    Rates are shares of resolved dials; ring times are those of answered calls (human or
    machine); busy and failed calls resolve after ``quick_fail_time_s``; unanswered calls ring
    for ``no_answer_timeout_s``.
    """

    human_answer_rate: float = 0.25
    machine_answer_rate: float = 0.10
    quick_fail_rate: float = 0.06
    ring_time_mean_s: float = 12.0
    ring_time_sd_s: float = 6.0
    quick_fail_time_s: float = 3.0
    no_answer_timeout_s: float = 25.0
    talk_time_mean_s: float = 120.0
    talk_time_sd_s: float = 80.0
    wrap_time_mean_s: float = 10.0
    wrap_time_sd_s: float = 0.0
    samples: int = 0
    # An upper credible bound of the human answer rate (see dialer.guard), when known.
    human_answer_upper: float | None = None


class ElapsedTimes(Sequence[float]):
    """Seconds elapsed at ``now_s`` since each of ``starts``: ``now_s - start``, in order.

    A read-only sequence for :class:`PacingSnapshot`'s elapsed-time fields whose values are
    only computed when read. The simulator builds one per field at every pacing tick, and
    :class:`PredictivePolicy` reads the start times directly (into one NumPy array), so a
    tick costs no per-call Python arithmetic; any other policy sees an ordinary sequence.
    """

    __slots__ = ("_values", "now_s", "starts")

    def __init__(self, now_s: float, starts: Sequence[float]) -> None:
        self.now_s = now_s
        self.starts = starts
        self._values: tuple[float, ...] | None = None

    def _computed(self) -> tuple[float, ...]:
        values = self._values
        if values is None:
            now = self.now_s
            values = self._values = tuple([now - start for start in self.starts])
        return values

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[float]: ...

    def __getitem__(self, index: int | slice) -> float | Sequence[float]:
        return self._computed()[index]

    def __iter__(self) -> Iterator[float]:
        return iter(self._computed())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ElapsedTimes | list | tuple):
            return self._computed() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._computed())

    def __repr__(self) -> str:
        return f"ElapsedTimes({list(self._computed())!r})"


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """Everything a policy may look at; built by the dial loop or the simulator.

    ``agents_ready`` are agents free to take a call now (not reserved, not talking, not in
    wrap-up); ``agents_reserved`` are agents held for a call of their own (a preview lead
    being read or dialled). ``ringing_elapsed_s`` lists every call ringing, including the
    ``ringing_bound`` of them that are bound to a reserved agent (preview dialing: answered,
    they go to that agent, so they can never be abandoned). ``calls_waiting`` are answered
    calls waiting for an agent. The window counts are live answers and abandons as counted
    when each live answer is resolved (connected, or abandoned at the end of the grace
    period).
    """

    now_s: float
    agents_signed_in: int
    agents_ready: int
    talk_elapsed_s: Sequence[float] = ()
    wrap_elapsed_s: Sequence[float] = ()
    ringing_elapsed_s: Sequence[float] = ()
    calls_waiting: int = 0
    calls_in_ivr: int = 0
    agents_reserved: int = 0
    stats: PacingStats = field(default_factory=PacingStats)
    live_answers_in_window: int = 0
    abandoned_in_window: int = 0
    abandon_cap: float = 0.03
    leads_available: int | None = None
    ringing_bound: int = 0

    @property
    def agents_on_call(self) -> int:
        """Agents talking to a callee."""
        return len(self.talk_elapsed_s)

    @property
    def agents_in_wrap(self) -> int:
        """Agents in wrap-up."""
        return len(self.wrap_elapsed_s)

    @property
    def calls_ringing(self) -> int:
        """Calls launched and not yet answered or ended."""
        return len(self.ringing_elapsed_s)

    @property
    def window_abandon_rate(self) -> float:
        """Abandoned ÷ live answers in the compliance window (0 when there are none)."""
        if self.live_answers_in_window == 0:
            return 0.0
        return self.abandoned_in_window / self.live_answers_in_window


def _snapshot_maker() -> Any:
    names = tuple(f.name for f in fields(PacingSnapshot))
    expected = (
        "now_s",
        "agents_signed_in",
        "agents_ready",
        "talk_elapsed_s",
        "wrap_elapsed_s",
        "ringing_elapsed_s",
        "calls_waiting",
        "calls_in_ivr",
        "agents_reserved",
        "stats",
        "live_answers_in_window",
        "abandoned_in_window",
        "abandon_cap",
        "leads_available",
        "ringing_bound",
    )
    if names != expected:
        raise RuntimeError(f"PacingSnapshot has fields {names}; update make_snapshot")
    (s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14) = (
        getattr(PacingSnapshot, name).__set__ for name in names
    )
    new = object.__new__

    def make(
        now_s: float,
        agents_signed_in: int,
        agents_ready: int,
        talk_elapsed_s: Sequence[float],
        wrap_elapsed_s: Sequence[float],
        ringing_elapsed_s: Sequence[float],
        calls_waiting: int,
        calls_in_ivr: int,
        agents_reserved: int,
        stats: PacingStats,
        live_answers_in_window: int,
        abandoned_in_window: int,
        abandon_cap: float,
        leads_available: int | None,
        ringing_bound: int,
    ) -> PacingSnapshot:
        snapshot: PacingSnapshot = new(PacingSnapshot)
        s0(snapshot, now_s)
        s1(snapshot, agents_signed_in)
        s2(snapshot, agents_ready)
        s3(snapshot, talk_elapsed_s)
        s4(snapshot, wrap_elapsed_s)
        s5(snapshot, ringing_elapsed_s)
        s6(snapshot, calls_waiting)
        s7(snapshot, calls_in_ivr)
        s8(snapshot, agents_reserved)
        s9(snapshot, stats)
        s10(snapshot, live_answers_in_window)
        s11(snapshot, abandoned_in_window)
        s12(snapshot, abandon_cap)
        s13(snapshot, leads_available)
        s14(snapshot, ringing_bound)
        return snapshot

    return make


make_snapshot = _snapshot_maker()
"""``make_snapshot(*values)`` equals ``PacingSnapshot(*values)`` (every field, in order) and
fills the slots directly: the simulator builds one per pacing tick, tens of thousands a day,
and the frozen dataclass ``__init__`` costs twice as much. A change of the snapshot's fields
stops the import here rather than build wrong snapshots."""


@runtime_checkable
class PacingPolicy(Protocol):
    """A pacing policy: ``calls_to_launch`` returns how many calls to place now (≥ 0)."""

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """How many calls to launch given the current state."""
        ...


def _bounded(snapshot: PacingSnapshot, calls: int, *, needs_agents: bool = True) -> int:
    """Never negative, never more than the leads left, never with nobody signed in."""
    if needs_agents and snapshot.agents_signed_in <= 0:
        return 0
    calls = max(0, calls)
    if snapshot.leads_available is not None:
        calls = min(calls, max(0, snapshot.leads_available))
    return calls


def _uncovered_ready_agents(snapshot: PacingSnapshot) -> int:
    return snapshot.agents_ready - snapshot.calls_ringing - snapshot.calls_waiting


# Pure, and asked the same question twice a decision (by a policy and by the clamp after it).
@functools.lru_cache(maxsize=256)
def _exposure_budget(abandoned: int, live_answers: int, cap: float) -> int | None:
    """The most calls that may be exposed to abandonment: the largest ``k ≥ 0`` with
    ``(abandoned + k) ÷ (live_answers + k) ≤ cap``.

    ``None`` means no ``k`` fits (the window is already over the cap); a cap of 1 or more
    allows any number (returned as a very large int).
    """
    if abandoned < 0 or live_answers < 0:
        raise ValueError("counts cannot be negative")
    if not cap >= 0.0:
        raise ValueError(f"cap must be a fraction ≥ 0, got {cap!r}")
    if cap >= 1.0:
        return _UNLIMITED

    def fits(k: int) -> bool:
        # The same tolerance as AbandonCounts.within: exact for decimal caps.
        return abandoned + k <= cap * (live_answers + k) + 1e-9

    if not fits(0):
        return None
    k = max(0, math.floor((cap * live_answers - abandoned) / (1.0 - cap)))
    # The closed form can be off by one either way in floating point; settle it exactly.
    while k > 0 and not fits(k):
        k -= 1
    while fits(k + 1):
        k += 1
    return k


_UNLIMITED = 2**62


def cap_safe_launch(snapshot: PacingSnapshot, requested: int, *, agentless: bool = False) -> int:
    """The part of ``requested`` new calls that cannot push the abandon rate over the cap.

    Policy-independent: the dial loop and the simulator apply it to whatever a policy
    answers. *Exposed* calls are those in flight with no agent reserved for or free for
    them: calls ringing that are not bound to a reserved agent, plus answered calls waiting
    for an agent, minus the ready (free, unreserved) agents, plus the new calls; agents
    talking or in wrap-up count for nothing (they may not free up in time), nor does the
    grace period. If every exposed call were answered live and abandoned, the window's rate
    would be ``(a + k) ÷ (L + k)`` with ``a`` abandons and ``L`` live answers counted so
    far and ``k`` exposed calls. It allows the largest launch that keeps that at or under
    the cap, never a negative number, and always at least one call per ready agent not
    already covered by an unbound call (progressive-level dialing is never blocked: each
    such call has a free agent and cannot be abandoned).

    Every later event (a call resolved, a live answer connected or abandoned, an agent
    freed) leaves the worst case where it is or lowers it, so if every launch goes through
    this clamp, the realised rate never exceeds the cap at any moment once a live answer
    has been counted (as long as nothing is dropped out of the window, which can only move
    the rate by what leaves it). With ``agentless`` (every answer goes straight to the IVR,
    so nothing can be abandoned) nothing is clamped but the sign.
    """
    requested = max(0, int(requested))
    if agentless or requested == 0:
        return requested
    unbound = (
        len(snapshot.ringing_elapsed_s) - max(0, snapshot.ringing_bound) + snapshot.calls_waiting
    )
    free = snapshot.agents_ready - unbound  # ready agents no unbound call is covering
    if requested <= free:  # what the rule below allows, without counting the budget
        return requested
    budget = _exposure_budget(
        snapshot.abandoned_in_window, snapshot.live_answers_in_window, snapshot.abandon_cap
    )
    allowed = free if budget is None else free + budget
    return min(requested, max(0, free, allowed))


@dataclass(slots=True)
class PreviewPolicy:
    """One lead presented per ready agent; the agent reviews it and dials (no over-dial)."""

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """Leads to present: one per ready agent."""
        return _bounded(snapshot, snapshot.agents_ready)


@dataclass(slots=True)
class ProgressivePolicy:
    """One call per ready agent that no ringing or waiting call is already meant for."""

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """Ready agents minus calls already in flight for them."""
        # _bounded(snapshot, _uncovered_ready_agents(snapshot)), spelt out: it runs every tick.
        if snapshot.agents_signed_in <= 0:
            return 0
        calls = snapshot.agents_ready - len(snapshot.ringing_elapsed_s) - snapshot.calls_waiting
        if calls <= 0:
            return 0
        leads = snapshot.leads_available
        if leads is not None and calls > leads:
            return max(0, leads)
        return calls


@dataclass(slots=True)
class PowerPolicy:
    """A fixed ``ratio`` of calls per ready agent (e.g. 2.0 keeps two lines per ready agent)."""

    ratio: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ratio) and self.ratio >= 1.0):
            raise PolicyError(f"power ratio must be a number ≥ 1.0, got {self.ratio!r}")

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """``ratio`` × ready agents, minus calls already ringing or waiting."""
        lines = math.floor(self.ratio * snapshot.agents_ready + 1e-9)
        return _bounded(snapshot, lines - snapshot.calls_ringing - snapshot.calls_waiting)


@dataclass(slots=True)
class AgentlessPolicy:
    """Keep ``lines`` concurrent calls (ringing or in the IVR); needs no agents."""

    lines: int = 10

    def __post_init__(self) -> None:
        if self.lines < 1:
            raise PolicyError(f"agentless lines must be at least 1, got {self.lines!r}")

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """Free lines: ``lines`` minus calls ringing, waiting or in the IVR."""
        busy = snapshot.calls_ringing + snapshot.calls_in_ivr + snapshot.calls_waiting
        return _bounded(snapshot, self.lines - busy, needs_agents=False)


_SQRT_HALF = math.sqrt(0.5)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _ndtr(x: FloatArray) -> FloatArray:
    """The standard normal CDF, elementwise (what ``scipy.special.ndtr`` computes).

    Built on :func:`math.erfc` so that importing the dialer does not pull in SciPy (about a
    second of start-up); it only runs when a table is (re)built, so its speed is immaterial.
    """
    values = np.asarray(x, dtype=np.float64)
    # Tables evaluate it on grids with many repeated points (elapsed + horizon): do each once.
    unique, inverse = np.unique(values, return_inverse=True)
    cdf = np.asarray(0.5 * _erfc(unique * -_SQRT_HALF), dtype=np.float64)
    return cdf[inverse].reshape(values.shape)


class _Tables:
    """Conditional probabilities on a grid of elapsed seconds × horizon checkpoints."""

    __slots__ = (
        "horizons",
        "live_eventually",
        "new_live_by",
        "new_live_var",
        "p_human",
        "ring_live_by",
        "ring_live_var",
        "ring_rows",
    )

    def __init__(self, stats: PacingStats, horizons: FloatArray) -> None:
        timeout = max(stats.no_answer_timeout_s, 1.0)
        p_human = min(max(stats.human_answer_rate, 0.0), 1.0)
        p_machine = min(max(stats.machine_answer_rate, 0.0), 1.0 - p_human)
        p_quick = min(max(stats.quick_fail_rate, 0.0), 1.0 - p_human - p_machine)
        p_ring_out = max(1.0 - p_human - p_machine - p_quick, 0.0)
        rows = math.ceil(timeout) + 2
        elapsed = np.arange(rows, dtype=np.float64)

        mu, sigma = lognormal_log_params(stats.ring_time_mean_s, stats.ring_time_sd_s)

        def ring_cdf(x: FloatArray) -> FloatArray:
            # Ring times of answered calls, truncated at the timeout (later ones ring out).
            x = np.minimum(np.maximum(x, 1e-9), timeout)
            if sigma <= 1e-9:
                raw = (x >= math.exp(mu)).astype(np.float64)
                top = 1.0
            else:
                raw = _ndtr((np.log(x) - mu) / sigma)
                top = 0.5 * math.erfc((math.log(timeout) - mu) / sigma * -_SQRT_HALF)
            return np.asarray(raw / max(top, 1e-12), dtype=np.float64)

        g_now = ring_cdf(elapsed)
        survive = (
            (p_human + p_machine) * (1.0 - g_now)
            + p_ring_out * (elapsed < timeout)
            + p_quick * (elapsed < stats.quick_fail_time_s)
        )
        survive = np.maximum(survive, 1e-12)
        g_later = ring_cdf(elapsed[:, None] + horizons[None, :])
        live_by = p_human * (g_later - g_now[:, None]) / survive[:, None]
        live_by[elapsed >= timeout, :] = 0.0
        self.ring_live_by = np.clip(live_by, 0.0, 1.0)
        self.ring_live_var = self.ring_live_by * (1.0 - self.ring_live_by)
        eventually = p_human * (1.0 - g_now) / survive
        eventually[elapsed >= timeout] = 0.0
        self.live_eventually = np.clip(eventually, 0.0, 1.0)
        self.ring_rows = rows
        self.new_live_by = p_human * ring_cdf(horizons)
        self.new_live_var = self.new_live_by * (1.0 - self.new_live_by)
        self.p_human = p_human
        self.horizons = horizons


class _FreeTable:
    """P(an agent is free by each checkpoint | elapsed seconds in talk or wrap-up)."""

    __slots__ = ("free_by", "free_var", "rows", "step")

    def __init__(
        self, mean: float, sd: float, then: float, horizons: FloatArray, rows: int, step: float
    ) -> None:
        elapsed = np.arange(rows, dtype=np.float64) * step
        mu, sigma = lognormal_log_params(mean, sd)
        # A talking agent is free after the talk ends and ``then`` seconds of wrap-up.
        target = elapsed[:, None] + horizons[None, :] - then
        if mean <= 0:
            free = np.ones((rows, horizons.size))
        elif sigma <= 1e-9:
            free = (target >= mean - 1e-9).astype(np.float64)
            free[elapsed >= mean, :] = 1.0
        else:
            cdf_now = _ndtr((np.log(np.maximum(elapsed, 1e-9)) - mu) / sigma)
            whole = np.rint(target)
            if np.array_equal(whole, target):
                # Whole-second checkpoints (the usual case): the CDF on the integer grid.
                low = int(whole.min())
                grid = np.arange(low, int(whole.max()) + 1, dtype=np.float64)
                on_grid = _ndtr((np.log(np.maximum(grid, 1e-9)) - mu) / sigma)
                cdf_then = on_grid[(whole - low).astype(np.intp)]
            else:
                cdf_then = _ndtr((np.log(np.maximum(target, 1e-9)) - mu) / sigma)
            cdf_then = np.where(target > 0, cdf_then, 0.0)
            tail = np.maximum(1.0 - cdf_now, 1e-12)
            free = (cdf_then - cdf_now[:, None]) / tail[:, None]
        self.free_by = np.clip(free, 0.0, 1.0)
        self.free_var = self.free_by * (1.0 - self.free_by)
        self.rows = rows
        self.step = step


def _round_rel(value: float, rel: float) -> float:
    """``value`` rounded to a relative step of about ``rel`` (for cache keys)."""
    if value <= 0:
        return 0.0
    return math.exp(round(math.log(value) / rel) * rel)


# Tables depend only on their (rounded) keys, so every policy shares them: the observed
# statistics wander between a few rounded values, and rebuilding a table costs milliseconds.
# Ring tables are small (a few kB); agents' tables are a few hundred kB each.
_RING_TABLES: dict[tuple[float, ...], _Tables] = {}
_FREE_TABLES: dict[tuple[float, ...], _FreeTable] = {}
_AGENT_TABLES: dict[tuple[tuple[float, ...], tuple[float, ...]], FloatArray] = {}
_CACHE_LIMITS = {id(_RING_TABLES): 512, id(_FREE_TABLES): 48, id(_AGENT_TABLES): 48}


def _recall(cache: dict[Any, Any], key: Any) -> Any:
    """The cached value for ``key`` (made the most recently used), or None."""
    value = cache.pop(key, None)
    if value is not None:
        cache[key] = value
    return value


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Cache ``value``, dropping the least recently used entry when the cache is full."""
    if len(cache) >= _CACHE_LIMITS[id(cache)]:
        del cache[next(iter(cache))]
    cache[key] = value


def _ring_table(key: tuple[float, ...], horizons: FloatArray) -> _Tables:
    tables: _Tables | None = _recall(_RING_TABLES, key)
    if tables is None:
        rounded = PacingStats(
            human_answer_rate=key[0],
            machine_answer_rate=key[1],
            quick_fail_rate=key[2],
            ring_time_mean_s=key[3],
            ring_time_sd_s=key[4],
            quick_fail_time_s=key[5],
            no_answer_timeout_s=key[6],
        )
        tables = _Tables(rounded, horizons)
        _remember(_RING_TABLES, key, tables)
    return tables


def _free_table(
    key: tuple[float, ...], mean: float, sd: float, then: float, horizons: FloatArray, rows: int
) -> _FreeTable:
    full_key = (*key, mean, sd, then, float(rows), float(horizons.size), float(horizons[0]))
    table: _FreeTable | None = _recall(_FREE_TABLES, full_key)
    if table is None:
        table = _FreeTable(mean, sd, then, horizons, rows, 1.0)
        _remember(_FREE_TABLES, full_key, table)
    return table


def _agent_table(
    key: tuple[tuple[float, ...], tuple[float, ...]], talk: _FreeTable, wrap: _FreeTable
) -> FloatArray:
    table: FloatArray | None = _recall(_AGENT_TABLES, key)
    if table is None:
        table = np.vstack(
            (np.hstack((-talk.free_by, talk.free_var)), np.hstack((-wrap.free_by, wrap.free_var)))
        )
        _remember(_AGENT_TABLES, key, table)
    return table


@dataclass(slots=True)
class PredictivePolicy:
    """Adaptive over-dialing held under the abandon cap by an expected-shortfall model.

    At each decision the policy looks ``grace_s``-wide checkpoints ahead, up to the no-answer
    timeout. At each checkpoint it compares the live answers expected by then (from calls
    ringing now, given how long each has rung, plus ``n`` new calls) with the agents available
    by then plus the grace period (ready now, plus those whose talk and wrap-up will have
    ended, given how long each has been talking). Both are sums of independent Bernoulli
    variables, so the shortfall is approximately normal and its expectation
    ``E[(answers - agents)+]`` has a closed form; the largest over the checkpoints estimates the
    abandons the calls in flight will cause.

    It launches the largest ``n`` whose expected abandons stay within an allowance: the
    ``target_fraction`` of the cap times the live answers those calls are expected to bring,
    further limited by what is left of the cap over the compliance window (abandons already
    counted against live answers already counted), so that a run of bad luck is paid back by
    dialing more cautiously, and a surplus is spent only gradually (``boost``). When the
    window's budget is spent it dials progressively (one call per uncovered ready agent),
    which cannot abandon. It never dials with no agent signed in, and never asks for more than
    :func:`cap_safe_launch` allows. Until the window holds ``warmup_answers_per_agent`` live
    answers per agent it aims lower (the target scaled by ``L ÷ (L + warmup × agents)``): an
    abandon early in the window costs the clamp's room for calls in flight the most.

    The model alone does not hold the cap (its tails are normal approximations, its statistics
    lag a jump): the guard does. ``guard`` names the one it runs under: under ``"strict"`` it
    searches no further than :func:`cap_safe_launch` allows; under ``"statistical"`` no
    further than :func:`dialer.guard.statistical_safe_launch` allows with ``risk``, and it aims
    at ``statistical_target`` of the cap with no warm-up and no whole abandon in reserve (the
    guard carries the risk of a short window).

    (Precisely: it tries ``n`` = 1, 2, … and stops before the first ``n`` whose expected
    abandons exceed the allowance.) A decision costs one table lookup per call and agent and
    a few dozen scalar evaluations; the tables are rebuilt only when the rounded statistics
    change, and are shared between policies.
    """

    target_fraction: float = 0.75
    boost: float = 1.25
    grace_s: float = 2.0
    max_lines_per_agent: float = 4.0
    slack: float = 0.002
    refresh_s: float = 10.0
    warmup_answers_per_agent: float = 20.0
    guard: str = "strict"
    risk: float = 0.01
    statistical_target: float = 0.9
    statistical_no_warmup: bool = True
    _refreshed_s: float = field(default=-math.inf, init=False, repr=False)
    _model: _Model | None = field(default=None, init=False, repr=False)
    _tables: _Tables | None = field(default=None, init=False, repr=False)
    _tables_key: tuple[float, ...] = field(default=(), init=False, repr=False)
    _talk: _FreeTable | None = field(default=None, init=False, repr=False)
    _talk_key: tuple[float, ...] = field(default=(), init=False, repr=False)
    _wrap: _FreeTable | None = field(default=None, init=False, repr=False)
    _wrap_key: tuple[float, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.target_fraction <= 1.0:
            raise PolicyError(
                f"target_fraction must be in (0, 1], got {self.target_fraction!r}; "
                "it is the share of the abandon cap the policy aims at"
            )
        if self.boost < 1.0:
            raise PolicyError(f"boost must be ≥ 1.0, got {self.boost!r}")
        if self.grace_s <= 0:
            raise PolicyError(f"grace_s must be greater than 0, got {self.grace_s!r}")

    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        """The largest number of new calls whose expected abandons fit the allowance."""
        if snapshot.agents_signed_in <= 0:
            return 0
        ringing = len(snapshot.ringing_elapsed_s)
        waiting = snapshot.calls_waiting
        ready = snapshot.agents_ready
        floor = max(0, ready - ringing - waiting)
        available = ready + len(snapshot.talk_elapsed_s) + len(snapshot.wrap_elapsed_s)
        ceiling = math.ceil(self.max_lines_per_agent * available) - (ringing + waiting)
        # Never search beyond what the abandon guard will let through anyway.
        if self.guard == "strict":
            ceiling = cap_safe_launch(snapshot, ceiling)
        else:
            ceiling = _statistical_guard()(snapshot, ceiling, risk=self.risk)
        if ceiling <= floor:
            return _bounded(snapshot, floor)
        best = self._best_over_dial(snapshot, ceiling)
        return _bounded(snapshot, max(floor, best))

    # -- the model ------------------------------------------------------------------------

    def _best_over_dial(self, snapshot: PacingSnapshot, ceiling: int) -> int:
        """Stop before the first ``n`` in 1..ceiling whose abandons exceed the allowance."""
        model = self._refresh(snapshot.stats, snapshot.now_s)
        # The expected abandons for n = 0, 1, … new calls, a batch at a time; the first batch
        # reaches a little past the last decision's answer, so it is nearly always the only
        # one. (Every checkpoint's shortfall is non-decreasing in n, and so is the allowance.)
        start = 0
        stop = min(ceiling, model.probe + _LOOK_AHEAD) + 1
        flight = _InFlight(snapshot, model, stop)
        abandons = flight.first_batch
        first = max(0.0, abandons[0])
        cap = snapshot.abandon_cap
        target = self.target_fraction * cap
        # Early in the window every abandon is expensive: it shrinks the room the abandon-cap
        # clamp (cap_safe_launch) leaves for calls in flight, and that room grows only with
        # live answers. Aim lower until the window holds a few dozen answers per agent.
        statistical = self.guard != "strict"
        if statistical:
            target = self.statistical_target * cap
        warm = self.warmup_answers_per_agent * snapshot.agents_signed_in
        if warm > 0 and not (statistical and self.statistical_no_warmup):
            target *= snapshot.live_answers_in_window / (snapshot.live_answers_in_window + warm)
        boosted = self.boost * target
        remaining = target * snapshot.live_answers_in_window - snapshot.abandoned_in_window
        reserve = snapshot.abandoned_in_window + (0.0 if statistical else 1.0)
        answers = snapshot.live_answers_in_window
        least = first + self.slack
        p_human = model.p_human
        live = flight.live
        n = 1
        while True:
            while n < stop:
                # The allowance: the target share of the live answers in flight with n new
                # calls, held to what is left of the window's budget, keeping a whole abandon
                # in reserve under the full cap (small teams, whose every abandon is a big
                # share, cannot overshoot), and never below the abandons already in flight.
                expected = live + p_human * n
                allowed = min(boosted * expected, target * expected + remaining)
                allowed = min(allowed, cap * (answers + expected) - reserve)
                if abandons[n - start] > (allowed if allowed > least else least):
                    model.probe = n
                    return n - 1
                n += 1
            if n > ceiling:
                model.probe = ceiling + 1
                return ceiling
            start = n
            stop = min(ceiling, 2 * n + _LOOK_AHEAD) + 1
            abandons = flight.abandons(start, stop)

    def expected_abandons(self, snapshot: PacingSnapshot, new_calls: int) -> float:
        """The model's expected abandons among calls in flight if ``new_calls`` are added."""
        model = self._refresh(snapshot.stats, snapshot.now_s)
        flight = _InFlight(snapshot, model, 1)
        return max(0.0, flight.abandons(new_calls, new_calls + 1)[0])

    def _refresh(self, stats: PacingStats, now_s: float) -> _Model:
        if self._model is not None and now_s - self._refreshed_s < self.refresh_s:
            return self._model
        self._refreshed_s = now_s
        step = self.grace_s
        count = math.ceil(max(stats.no_answer_timeout_s, 1.0) / step) + 1
        horizons = np.arange(1, count + 1, dtype=np.float64) * step
        changed = False
        key = (
            round(stats.human_answer_rate * 400) / 400,
            round(stats.machine_answer_rate, 2),
            round(stats.quick_fail_rate, 2),
            round(stats.ring_time_mean_s * 2) / 2,
            round(stats.ring_time_sd_s * 2) / 2,
            round(stats.quick_fail_time_s),
            stats.no_answer_timeout_s,
            step,
        )
        if self._tables is None or key != self._tables_key:
            self._tables = _ring_table(key, horizons)
            self._tables_key = key
            changed = True
        talk_key = (
            _round_rel(stats.talk_time_mean_s, 0.03),
            _round_rel(stats.talk_time_sd_s, 0.05),
            float(round(stats.wrap_time_mean_s)),
            step,
            float(count),
        )
        if self._talk is None or talk_key != self._talk_key:
            rows = int(max(8.0 * talk_key[0], 600.0))
            self._talk = _free_table(
                talk_key, talk_key[0], talk_key[1], talk_key[2], horizons + step, rows
            )
            self._talk_key = talk_key
            changed = True
        wrap_key = (round(stats.wrap_time_mean_s, 1), round(stats.wrap_time_sd_s, 1), step)
        if self._wrap is None or wrap_key != self._wrap_key:
            rows = int(max(4.0 * stats.wrap_time_mean_s, 60.0)) + 1
            self._wrap = _free_table(wrap_key, wrap_key[0], wrap_key[1], 0.0, horizons + step, rows)
            self._wrap_key = wrap_key
            changed = True
        model = self._model
        agents_key = (self._talk_key, self._wrap_key)
        if (
            model is None
            or model.ring_rows != self._tables.ring_rows
            or model.checkpoints != horizons.size
        ):
            model = _Model(self._tables, self._talk, self._wrap, agents_key)
            self._model = model
        elif changed:
            if model.agents_key != agents_key:
                model.set_agents(self._talk, self._wrap, agents_key)
            model.set_ring(self._tables)
        return model


# E[(X)+] for X ~ N(mean, sd²) is sd · G(mean / sd), with G(z) = z Φ(z) + φ(z), interpolated
# on a fine grid (clamped outside ±8) with ``np.interp``.
_LOSS_GRID = np.linspace(-8.0, 8.0, 3201)
_LOSS_VALUES = _LOSS_GRID * _ndtr(_LOSS_GRID) + np.exp(-0.5 * _LOSS_GRID**2) / math.sqrt(
    2.0 * math.pi
)


# How far past the last decision's answer the first batch of a decision looks.
_LOOK_AHEAD = 8


class _InFlight:
    """One decision's calls in flight and agents, summed per checkpoint.

    Per checkpoint: the gap (live answers expected by then less agents available by then plus
    the grace period, plus the calls waiting) and its variance before any new call, and the
    phantom shortfall of the agents alone; and the live answers the calls ringing or waiting
    are expected to bring. The expected shortfall at a checkpoint, E[(X)+] for X ~ N(gap,
    var), is sd · G(gap / sd) with G(z) = z Φ(z) + φ(z) interpolated on a fine grid; the
    expected abandons with n new calls are the largest checkpoint's shortfall less its
    phantom. ``first_batch`` holds them for n = 0..stop-1, worked out with the phantom in
    one pass of array operations; ``abandons`` gives further batches.
    """

    __slots__ = ("first_batch", "gaps", "live", "model", "phantoms", "variances")

    def __init__(self, snapshot: PacingSnapshot, model: _Model, stop: int) -> None:
        # One lookup row per call ringing (its chance of a live answer by each checkpoint,
        # the variance, and its chance of one eventually) and per agent talking or wrapping
        # up (minus its chance of being free by each checkpoint, and the variance), summed.
        ringing = snapshot.ringing_elapsed_s
        talking = snapshot.talk_elapsed_s
        wrapping = snapshot.wrap_elapsed_s
        # The last row summed holds what is added to the sums: the ready agents (taken from
        # the gaps), the calls waiting (added to the gaps and the live answers), and a little
        # variance. Summed last, it adds exactly what adding afterwards would.
        k = model.checkpoints
        ready = float(snapshot.agents_ready)
        waiting = float(snapshot.calls_waiting)
        extra = model.extra
        extra[:k] = -ready
        extra[k : 2 * k] = waiting - ready
        extra[4 * k] = waiting
        counts = (len(ringing), len(talking), len(wrapping), 1)
        rows = _elapsed_rows(ringing, talking, wrapping)
        bounds = model.bounds.repeat(counts, axis=1)
        np.minimum(rows, bounds[0], out=rows)
        rows += bounds[1]
        base = model.combined.take(rows, axis=0).sum(axis=0)
        self.model = model
        self.live = float(base[4 * k])
        self.gaps = base[k : 2 * k]
        self.variances = base[3 * k : 4 * k]
        # Row 0: the agents alone; rows 1..stop: the calls in flight and n = 0..stop-1 new
        # calls. One pass gives the phantom and the shortfalls.
        mean_calls, var_calls = model.new_calls(stop)
        gaps, sds = model.work_space(stop + 1)
        gaps[0] = base[:k]
        np.add(mean_calls, self.gaps, out=gaps[1:])
        sds[0] = base[2 * k : 3 * k]
        np.add(var_calls, self.variances, out=sds[1:])
        np.sqrt(sds, out=sds)
        gaps /= sds
        losses = np.interp(gaps, _LOSS_GRID, _LOSS_VALUES)
        losses *= sds
        # With no answers at all the true shortfall is 0, but the normal approximation of the
        # agents' count leaves a phantom tail; it is subtracted so only answers create abandons.
        self.phantoms = losses[0]
        self.first_batch: list[float] = (losses[1:] - self.phantoms).max(axis=1).tolist()

    def abandons(self, start: int, stop: int) -> list[float]:
        """The expected abandons (before flooring at 0) for n = start..stop-1 new calls."""
        model = self.model
        new_calls = np.arange(start, stop, dtype=np.float64)[:, None]
        sds = np.sqrt(new_calls * model.new_var + self.variances)
        losses = np.interp((new_calls * model.new_mean + self.gaps) / sds, _LOSS_GRID, _LOSS_VALUES)
        worst: list[float] = (sds * losses - self.phantoms).max(axis=1).tolist()
        return worst


def _elapsed_rows(
    ringing: Sequence[float], talking: Sequence[float], wrapping: Sequence[float]
) -> IntArray:
    """Whole seconds elapsed of every call ringing, agent talking and agent wrapping up, and a
    last 0 (for the model's extra row)."""
    if (
        type(ringing) is ElapsedTimes
        and type(talking) is ElapsedTimes
        and type(wrapping) is ElapsedTimes
        and ringing.now_s == talking.now_s == wrapping.now_s
    ):
        # The simulator's snapshots: subtract in one array operation, not call by call. Packing
        # the floats is the quickest way into an array (a third of ``np.array``'s cost).
        now = ringing.now_s
        count = len(ringing.starts) + len(talking.starts) + len(wrapping.starts) + 1
        packed = _pack(f"{count}d", *ringing.starts, *talking.starts, *wrapping.starts, now)
        return np.subtract(now, np.frombuffer(packed)).astype(np.intp)
    return np.array([*ringing, *talking, *wrapping, 0], dtype=np.intp)


class _Model:
    """The tables stacked into one, so that a decision is one lookup and one sum.

    Rows: ringing calls by elapsed second, then talking agents, then agents in wrap-up, then
    one extra row for what a decision adds to the sums.
    Columns, one per checkpoint in each group: the agents-only gap (minus each agent's chance
    of being free by the checkpoint) | live answers by the checkpoint minus that chance | the
    agents-only variance | the variance of both | live answer eventually. The policy owns its
    model and overwrites the ringing rows in place when only the ring statistics change.
    """

    __slots__ = (
        "_new_calls",
        "_store",
        "_work",
        "agents_key",
        "bounds",
        "checkpoints",
        "combined",
        "extra",
        "new_mean",
        "new_var",
        "p_human",
        "probe",
        "ring_rows",
    )

    def __init__(
        self,
        tables: _Tables,
        talk: _FreeTable,
        wrap: _FreeTable,
        agents_key: tuple[tuple[float, ...], tuple[float, ...]],
    ) -> None:
        k = tables.horizons.size
        self.checkpoints = k
        self.ring_rows = tables.ring_rows
        self._store = np.zeros((0, 4 * k + 1))
        self.combined = self._store
        self.extra = np.zeros(4 * k + 1)
        self.bounds = np.zeros((2, 4), dtype=np.intp)
        self.agents_key = agents_key
        self.new_mean = np.zeros(k)
        self.new_var = np.zeros(k)
        self._new_calls = np.zeros((2, 0, k))
        self._work = np.zeros((2, 0, k))
        self.p_human = 0.0
        # The first n at which the last decision's abandons exceeded the allowance: where the
        # next decision's first batch is centred (it only affects how fast the scan is).
        self.probe = 1
        self.set_agents(talk, wrap, agents_key)
        self.set_ring(tables)

    def set_agents(
        self,
        talk: _FreeTable,
        wrap: _FreeTable,
        agents_key: tuple[tuple[float, ...], tuple[float, ...]],
    ) -> None:
        """Put in new agents' tables (talking, wrapping up), in the same memory if it fits:
        the observed talk times move the tables a few hundred times a day."""
        k = self.checkpoints
        ring_rows = self.ring_rows
        agents = _agent_table(agents_key, talk, wrap)
        end = ring_rows + agents.shape[0]
        if self._store.shape[0] <= end:
            store = np.zeros((end + 1 + end // 4, 4 * k + 1))
            if self._store.shape[0]:
                store[:ring_rows] = self._store[:ring_rows]
            self._store = store
        self.combined = self._store[: end + 1]
        # The agents' table is minus their chance of being free | its variance.
        agent_rows = self.combined[ring_rows:end]
        agent_rows[:, :k] = agent_rows[:, k : 2 * k] = agents[:, :k]
        agent_rows[:, 2 * k : 3 * k] = agent_rows[:, 3 * k : 4 * k] = agents[:, k:]
        agent_rows[:, 4 * k] = 0.0
        # The extra row (see _InFlight): the variances' is fixed, the rest set per decision.
        self.extra = self.combined[end]
        self.extra[2 * k : 4 * k] = 1e-9
        # Each part's last row, and its first row in the stacked table.
        self.bounds = np.array(
            [
                [ring_rows - 1, talk.rows - 1, wrap.rows - 1, 0],
                [0, ring_rows, ring_rows + talk.rows, end],
            ],
            dtype=np.intp,
        )
        self.agents_key = agents_key

    def new_calls(self, stop: int) -> tuple[FloatArray, FloatArray]:
        """n times a new call's chance of a live answer by each checkpoint, and n times its
        variance, for n = 0..stop-1 (kept from one decision to the next)."""
        if self._new_calls.shape[1] < stop:
            self._new_calls = self._calls_table(max(stop, 2 * self._new_calls.shape[1], 32))
        return self._new_calls[0, :stop], self._new_calls[1, :stop]

    def _calls_table(self, size: int) -> FloatArray:
        counts = np.arange(size, dtype=np.float64)[:, None]
        return np.stack((counts * self.new_mean, counts * self.new_var))

    def work_space(self, rows: int) -> tuple[FloatArray, FloatArray]:
        """Two scratch arrays of ``rows`` × checkpoints, reused from one decision to the next."""
        if self._work.shape[1] < rows:
            self._work = np.zeros((2, max(rows, 64), self.checkpoints))
        return self._work[0, :rows], self._work[1, :rows]

    def set_ring(self, tables: _Tables) -> None:
        """Put in new ringing-call tables (same timeout, so the same number of rows)."""
        k = self.checkpoints
        if tables.ring_rows != self.ring_rows or tables.horizons.size != k:
            raise ValueError("ring tables of another shape need a new model")
        ring = self.combined[: self.ring_rows]
        ring[:, k : 2 * k] = tables.ring_live_by
        ring[:, 3 * k : 4 * k] = tables.ring_live_var
        ring[:, 4 * k] = tables.live_eventually
        self.new_mean = tables.new_live_by
        self.new_var = tables.new_live_var
        self._new_calls = self._calls_table(self._new_calls.shape[1])
        self.p_human = tables.p_human


@functools.cache
def _statistical_guard() -> Any:
    """:func:`dialer.guard.statistical_safe_launch` (imported late: that module imports this)."""
    from dialer.guard import statistical_safe_launch

    return statistical_safe_launch


def load_policy(path: str, **options: Any) -> PacingPolicy:
    """Build a policy from ``"package.module:ClassName"``, passing ``options`` to it."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise PolicyError(
            f"policy {path!r} must be an import path like 'dialer.pacing:PredictivePolicy'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PolicyError(
            f"cannot import module {module_name!r} for policy {path!r} ({error}); "
            "check the name and that it is on PYTHONPATH"
        ) from error
    factory = getattr(module, attribute, None)
    if factory is None or not callable(factory):
        raise PolicyError(f"module {module_name!r} has no class {attribute!r}")
    try:
        policy = factory(**options)
    except TypeError as error:
        raise PolicyError(f"cannot build policy {path!r} with {options}: {error}") from error
    if not isinstance(policy, PacingPolicy):
        raise PolicyError(
            f"{path!r} is not a pacing policy: it needs a calls_to_launch(snapshot) method"
        )
    return policy


def policy_for_mode(
    mode: PacingMode | str,
    *,
    power_ratio: float = 2.0,
    agentless_lines: int = 10,
    abandon_guard: str = "strict",
    abandon_risk: float = 0.01,
) -> PacingPolicy:
    """The built-in policy for a campaign's dialing mode."""
    try:
        mode = PacingMode(mode)
    except ValueError as error:
        choices = ", ".join(m.value for m in PacingMode)
        raise PolicyError(f"unknown dialing mode {mode!r}; use one of {choices}") from error
    if mode is PacingMode.PREVIEW:
        return PreviewPolicy()
    if mode is PacingMode.PROGRESSIVE:
        return ProgressivePolicy()
    if mode is PacingMode.POWER:
        return PowerPolicy(power_ratio)
    if mode is PacingMode.AGENTLESS:
        return AgentlessPolicy(agentless_lines)
    return PredictivePolicy(guard=str(abandon_guard), risk=abandon_risk)
