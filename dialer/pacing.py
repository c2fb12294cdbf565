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
- :class:`PredictivePolicy`: adaptive over-dialing that holds the abandon rate under the cap
  (see its docstring for the model).
- :class:`AgentlessPolicy`: a fixed number of concurrent lines for IVR surveys or messages.

Abandon rate = abandoned ÷ live (human) answers; a live answer not connected to an agent within
the grace period (2 s) is abandoned. Answering-machine answers are not live answers.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from dialer.distributions import lognormal_log_params
from dialer.exceptions import PolicyError

__all__ = [
    "AgentlessPolicy",
    "PacingMode",
    "PacingPolicy",
    "PacingSnapshot",
    "PacingStats",
    "PowerPolicy",
    "PredictivePolicy",
    "PreviewPolicy",
    "ProgressivePolicy",
    "load_policy",
    "policy_for_mode",
]

FloatArray = npt.NDArray[np.float64]


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


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """Everything a policy may look at; built by the dial loop or the simulator."""

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
        return _bounded(snapshot, _uncovered_ready_agents(snapshot))


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
                raw = ndtr((np.log(x) - mu) / sigma)
                top = float(ndtr((math.log(timeout) - mu) / sigma))
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
            cdf_now = ndtr((np.log(np.maximum(elapsed, 1e-9)) - mu) / sigma)
            cdf_then = ndtr((np.log(np.maximum(target, 1e-9)) - mu) / sigma)
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
    which cannot abandon. It never dials with no agent signed in.
    """

    target_fraction: float = 0.75
    boost: float = 1.25
    grace_s: float = 2.0
    max_lines_per_agent: float = 4.0
    slack: float = 0.002
    refresh_s: float = 10.0
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
        floor = max(0, _uncovered_ready_agents(snapshot))
        available = snapshot.agents_ready + snapshot.agents_on_call + snapshot.agents_in_wrap
        in_flight = snapshot.calls_ringing + snapshot.calls_waiting
        ceiling = math.ceil(self.max_lines_per_agent * available) - in_flight
        if ceiling <= floor:
            return _bounded(snapshot, floor)
        best = self._best_over_dial(snapshot, ceiling)
        return _bounded(snapshot, max(floor, best))

    # -- the model ------------------------------------------------------------------------

    def _best_over_dial(self, snapshot: PacingSnapshot, ceiling: int) -> int:
        model = self._refresh(snapshot.stats, snapshot.now_s)
        base = self._base(snapshot, model)
        # Most decisions launch a handful of calls: try a small block first, widen if needed.
        block = _BLOCK
        while True:
            best = self._best_in(snapshot, model, base, block)
            if best < block or block >= ceiling:
                return min(best, ceiling)
            block *= 4

    def _best_in(
        self, snapshot: PacingSnapshot, model: _Model, base: FloatArray, ceiling: int
    ) -> int:
        abandons, live = self._evaluate(snapshot, model, base, ceiling)
        target = self.target_fraction * snapshot.abandon_cap
        remaining = target * snapshot.live_answers_in_window - snapshot.abandoned_in_window
        allowance = np.minimum(self.boost * target * live, target * live + remaining)
        # Keep a whole abandon in reserve under the full cap, counting the answers the calls in
        # flight will bring: small teams, whose every abandon is a big share, cannot overshoot.
        room = snapshot.abandon_cap * (snapshot.live_answers_in_window + live) - (
            snapshot.abandoned_in_window + 1.0
        )
        allowance = np.minimum(allowance, room)
        allowance = np.maximum(allowance, abandons[0] + self.slack)
        fits = abandons <= allowance
        if fits.all():
            return int(ceiling)
        return max(int(np.argmin(fits)) - 1, 0)

    def expected_abandons(self, snapshot: PacingSnapshot, new_calls: int) -> float:
        """The model's expected abandons among calls in flight if ``new_calls`` are added."""
        model = self._refresh(snapshot.stats, snapshot.now_s)
        abandons, _ = self._evaluate(snapshot, model, self._base(snapshot, model), new_calls)
        return float(abandons[new_calls])

    @staticmethod
    def _base(snapshot: PacingSnapshot, model: _Model) -> FloatArray:
        # One lookup row per call ringing, agent talking and agent wrapping up: the combined
        # table holds each one's contribution to the answers-minus-agents gap at every
        # checkpoint, its variance, and (for ringing calls) its chance of a live answer.
        ring_last = model.ring_last
        talk_last = model.talk_last
        talk_offset = model.talk_offset
        wrap_last = model.wrap_last
        wrap_offset = model.wrap_offset
        index = [e if e < ring_last else ring_last for e in map(int, snapshot.ringing_elapsed_s)]
        index += [
            (e if e < talk_last else talk_last) + talk_offset
            for e in map(int, snapshot.talk_elapsed_s)
        ]
        index += [
            (e if e < wrap_last else wrap_last) + wrap_offset
            for e in map(int, snapshot.wrap_elapsed_s)
        ]
        if not index:
            return np.zeros(model.combined.shape[1])
        base: FloatArray = model.combined[index].sum(axis=0)
        return base

    def _evaluate(
        self, snapshot: PacingSnapshot, model: _Model, base: FloatArray, ceiling: int
    ) -> tuple[FloatArray, FloatArray]:
        """Expected abandons and expected live answers for 0..ceiling new calls."""
        k = model.checkpoints
        waiting = float(snapshot.calls_waiting)
        new_mean, new_var = model.candidate_block(ceiling)
        gap = new_mean + (base[:k] + (waiting - snapshot.agents_ready))
        sd = np.sqrt(new_var + (base[k : 2 * k] + 1e-9))
        # E[(X)+] for X ~ N(gap, sd²) is sd · G(gap / sd), with G(z) = z Φ(z) + φ(z).
        shortfall = sd * np.interp(gap / sd, _LOSS_GRID, _LOSS_VALUES)
        # With no answers at all the true shortfall is 0, but the normal approximation of the
        # agents' count leaves a phantom tail; subtract it so only answers create abandons.
        free_gap = base[2 * k + 1 : 3 * k + 1] - snapshot.agents_ready
        free_sd = np.sqrt(base[3 * k + 1 : 4 * k + 1] + 1e-9)
        phantom = free_sd * np.interp(free_gap / free_sd, _LOSS_GRID, _LOSS_VALUES)
        abandons: FloatArray = np.maximum(shortfall - phantom, 0.0).max(axis=1)
        live: FloatArray = (waiting + base[2 * k]) + model.p_human * model.counts[: ceiling + 1]
        return abandons, live

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
            rounded = PacingStats(
                human_answer_rate=key[0],
                machine_answer_rate=key[1],
                quick_fail_rate=key[2],
                ring_time_mean_s=key[3],
                ring_time_sd_s=key[4],
                quick_fail_time_s=key[5],
                no_answer_timeout_s=key[6],
            )
            self._tables = _Tables(rounded, horizons)
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
            self._talk = _FreeTable(
                talk_key[0], talk_key[1], talk_key[2], horizons + step, rows, 1.0
            )
            self._talk_key = talk_key
            changed = True
        wrap_key = (round(stats.wrap_time_mean_s, 1), round(stats.wrap_time_sd_s, 1), step)
        if self._wrap is None or wrap_key != self._wrap_key:
            rows = int(max(4.0 * stats.wrap_time_mean_s, 60.0)) + 1
            self._wrap = _FreeTable(wrap_key[0], wrap_key[1], 0.0, horizons + step, rows, 1.0)
            self._wrap_key = wrap_key
            changed = True
        if changed or self._model is None:
            self._model = _Model(self._tables, self._talk, self._wrap)
        return self._model


_BLOCK = 16
_LOSS_GRID = np.linspace(-8.0, 8.0, 3201)
_LOSS_VALUES = _LOSS_GRID * ndtr(_LOSS_GRID) + np.exp(-0.5 * _LOSS_GRID**2) / math.sqrt(
    2.0 * math.pi
)


class _Model:
    """The three tables stacked into one, so a decision is one bincount and one product."""

    __slots__ = (
        "_blocks",
        "checkpoints",
        "combined",
        "counts",
        "new_mean",
        "new_var",
        "p_human",
        "ring_last",
        "rows",
        "talk_last",
        "talk_offset",
        "wrap_last",
        "wrap_offset",
    )

    def __init__(self, tables: _Tables, talk: _FreeTable, wrap: _FreeTable) -> None:
        k = tables.horizons.size
        # Columns: gap by checkpoint | its variance | live eventually | agents-only gap | var.
        ring = np.hstack(
            (
                tables.ring_live_by,
                tables.ring_live_var,
                tables.live_eventually[:, None],
                np.zeros((tables.ring_rows, 2 * k)),
            )
        )
        talking = np.hstack(
            (-talk.free_by, talk.free_var, np.zeros((talk.rows, 1)), -talk.free_by, talk.free_var)
        )
        wrapping = np.hstack(
            (-wrap.free_by, wrap.free_var, np.zeros((wrap.rows, 1)), -wrap.free_by, wrap.free_var)
        )
        self.combined = np.vstack((ring, talking, wrapping))
        self.rows = self.combined.shape[0]
        self.checkpoints = k
        self.ring_last = tables.ring_rows - 1
        self.talk_offset = tables.ring_rows
        self.talk_last = talk.rows - 1
        self.wrap_offset = tables.ring_rows + talk.rows
        self.wrap_last = wrap.rows - 1
        self.new_mean = tables.new_live_by
        self.new_var = tables.new_live_var
        self.p_human = tables.p_human
        self.counts = np.arange(0.0, 0.0)
        self._blocks: dict[int, tuple[FloatArray, FloatArray]] = {}

    def candidate_block(self, ceiling: int) -> tuple[FloatArray, FloatArray]:
        """Mean and variance of the new calls' live answers by checkpoint, for 0..ceiling."""
        block = self._blocks.get(ceiling)
        if block is None:
            counts = np.arange(ceiling + 1, dtype=np.float64)[:, None]
            block = (counts * self.new_mean[None, :], counts * self.new_var[None, :])
            self._blocks[ceiling] = block
            if self.counts.size < ceiling + 1:
                self.counts = np.arange(ceiling + 1, dtype=np.float64)
        return block


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
    mode: PacingMode | str, *, power_ratio: float = 2.0, agentless_lines: int = 10
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
    return PredictivePolicy()
