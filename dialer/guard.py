"""Abandon guards: the last word on how many calls may be launched now.

Whatever a pacing policy answers, the dial loop and the simulator pass it through a guard.
Two are built in, chosen per campaign (``"abandon_guard"`` in a scenario or in a campaign's
pacing settings) with :func:`guarded_launch`:

``strict`` (the default): :func:`dialer.pacing.cap_safe_launch`, the worst case. A call that no
    free agent is waiting for may be launched only if the window's abandon rate would stay
    within the cap with every such call answered live and abandoned. **Guarantee: a
    certainty.** Once one live answer has been counted the window's rate never exceeds the cap
    at any moment, whatever the callees, the agents or the model do. The price: the room for
    exposed calls is ``cap ÷ (1 - cap)`` times the live answers counted, so it is tiny early
    in a window, with small teams and at low answer rates.

``statistical``: :func:`statistical_safe_launch`. It launches while the probability that the
    calls in flight take the window's abandon rate above the cap stays at or under ``risk``
    (default 1 %), under a calibrated model of the next half-minute:

    - *answers*: each call ringing is answered live with its own probability given how long it
      has rung (Poisson-binomial), each new call with that of a fresh call; the answer
      probability used is an **upper credible bound** (:attr:`PacingStats.human_answer_upper`,
      the larger of a 10-minute and a 2-minute Wilson bound, so a jump in the answer rate is
      seen within a minute or two; without it, a bound from the shrunk estimate and its sample
      count), never the point estimate;
    - *agents*: each agent talking or in wrap-up is free by a checkpoint with its own
      probability given how long it has been talking (the talk and wrap-up time
      distributions, conditional on the elapsed time), ready agents for certain;
    - at each checkpoint ``t`` (every grace period up to the no-answer timeout) the abandons
      are at least ``A(t) - S(t)``, answers by ``t`` less agents free by ``t`` plus the grace
      period, and the window ends above the cap when ``a + A(t) - S(t) > cap × (L + A(t))``
      (``a`` abandons, ``L`` live answers counted); that probability is bounded with the
      Chernoff bound of the Poisson-binomial sums (exact arithmetic on the model, no normal
      approximation, so it stays valid for a team of three).

    **Guarantee: a probability, under the model.** Each launch keeps P(the calls in flight take
    the window above the cap) ≤ ``risk``, per checkpoint. It is not a certainty: the model can
    be wrong (the bound covers sampling noise in the answer rate and, with the short window, a
    jump; not arbitrary adversarial callees), and decisions follow one another. What the
    benchmark and the tests measure over hundreds of seeded windows with a policy that asks for
    everything it can get (``tests/dialer/test_dialer_guard.py``, ``benchmarks/pacing.py
    --guard-days``): the share of windows whose rate ends above the cap stays at or under
    :data:`STATED_SHARE` (5 %) and the excess never above :data:`STATED_MARGIN` (1.5
    points); strict never exceeds. Progressive-level dialing (one call per free agent) is never
    blocked by either guard.

Both guards take the same inputs as the live loop has (a :class:`PacingSnapshot`: the
window's counts, the calls in flight with their elapsed ring times, the agents and their
elapsed talk and wrap-up times, the recent statistics) and the requested count, and return
the allowed count, so swapping one for the other is a one-line change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from dialer.exceptions import PolicyError
from dialer.pacing import (
    ElapsedTimes,
    PacingSnapshot,
    PacingStats,
    _free_table,
    _ring_table,
    _round_rel,
    cap_safe_launch,
)
from dialer.stats import answer_rate_upper_bound

__all__ = [
    "DEFAULT_RISK",
    "STATED_MARGIN",
    "STATED_SHARE",
    "AbandonGuard",
    "guard_for",
    "guarded_launch",
    "parse_guard",
    "statistical_safe_launch",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_RISK = 0.01
# What the statistical guard is measured to hold over many windows (see the module docstring).
STATED_SHARE = 0.05
STATED_MARGIN = 0.015
# Pseudo-dials of the prior behind a shrunk estimate (RecentStats' default prior_dials).
_PRIOR_DIALS = 40.0
_GRACE_S = 2.0
# Chernoff exponents tried; the bound takes the best of them for each checkpoint.
_THETAS = np.geomspace(0.03, 6.0, 14)


class AbandonGuard(StrEnum):
    """Which guard a campaign's launches go through."""

    STRICT = "strict"
    STATISTICAL = "statistical"


def parse_guard(value: object, risk: object = DEFAULT_RISK) -> tuple[AbandonGuard, float]:
    """Validate a guard name and its risk (from a campaign's JSON pacing settings).

    Raises :class:`PolicyError`; the risk must be in (0, 0.5]."""
    try:
        guard = AbandonGuard(str(value))
    except ValueError:
        choices = ", ".join(g.value for g in AbandonGuard)
        raise PolicyError(f"abandon_guard must be one of {choices}, got {value!r}") from None
    if isinstance(risk, bool) or not isinstance(risk, int | float) or not 0.0 < risk <= 0.5:
        raise PolicyError(f"abandon_risk must be a number in (0, 0.5], got {risk!r}")
    return guard, float(risk)


def guarded_launch(
    snapshot: PacingSnapshot,
    requested: int,
    *,
    guard: AbandonGuard | str = AbandonGuard.STRICT,
    risk: float = DEFAULT_RISK,
    agentless: bool = False,
) -> int:
    """``requested`` passed through the chosen guard (see the module docstring)."""
    if guard == AbandonGuard.STATISTICAL:
        return statistical_safe_launch(snapshot, requested, risk=risk, agentless=agentless)
    return cap_safe_launch(snapshot, requested, agentless=agentless)


def guard_for(
    guard: AbandonGuard | str = AbandonGuard.STRICT,
    risk: float = DEFAULT_RISK,
    *,
    agentless: bool = False,
) -> Callable[[PacingSnapshot, int], int]:
    """The guard chosen once, as ``launch(snapshot, requested)``: what
    :func:`guarded_launch` answers with these settings, without choosing at every tick."""
    if guard == AbandonGuard.STATISTICAL:

        def statistical(snapshot: PacingSnapshot, requested: int) -> int:
            return statistical_safe_launch(snapshot, requested, risk=risk, agentless=agentless)

        return statistical
    if agentless:

        def strict_agentless(snapshot: PacingSnapshot, requested: int) -> int:
            return cap_safe_launch(snapshot, requested, agentless=True)

        return strict_agentless
    return cap_safe_launch


def statistical_safe_launch(
    snapshot: PacingSnapshot, requested: int, *, risk: float = DEFAULT_RISK, agentless: bool = False
) -> int:
    """The part of ``requested`` whose risk of taking the window over the cap is ≤ ``risk``.

    Never negative, never more than requested, and always at least one call per ready agent
    not already covered by a call in flight. Calls bound to reserved agents (preview) are
    handled by the strict rule.
    """
    requested = max(0, int(requested))
    if agentless or requested == 0:
        return requested
    if snapshot.ringing_bound > 0:
        return cap_safe_launch(snapshot, requested)
    ringing = snapshot.ringing_elapsed_s
    waiting = snapshot.calls_waiting
    ready = snapshot.agents_ready
    free = ready - len(ringing) - waiting
    if requested <= free:
        return requested
    cap = snapshot.abandon_cap
    if cap >= 1.0:
        return requested
    model = _model_for(snapshot.stats, cap)
    extra = _most_new_calls(snapshot, model, risk)
    return min(requested, max(0, free, extra))


class _GuardModel:
    """Per checkpoint and Chernoff exponent: each term's log moment-generating function.

    ``ring[row]`` for a call ringing ``row`` seconds, ``talk[row]`` and ``wrap[row]`` for an
    agent ``row`` seconds into talk or wrap-up, ``new`` for a fresh call; each is a
    checkpoints × exponents array flattened into a row, for coefficient ``c`` (an answer adds
    ``1 - cap`` to the decision variable, a free agent takes 1 off it).
    """

    __slots__ = (
        "cap",
        "new",
        "ring",
        "ring_rows",
        "talk",
        "talk_rows",
        "thetas",
        "wrap",
        "wrap_rows",
    )

    def __init__(self, stats: PacingStats, p_upper: float, cap: float) -> None:
        step = _GRACE_S
        count = math.ceil(max(stats.no_answer_timeout_s, 1.0) / step) + 1
        horizons = np.arange(1, count + 1, dtype=np.float64) * step
        key = (
            round(p_upper * 400) / 400,
            round(stats.machine_answer_rate, 2),
            round(stats.quick_fail_rate, 2),
            round(stats.ring_time_mean_s * 2) / 2,
            round(stats.ring_time_sd_s * 2) / 2,
            round(stats.quick_fail_time_s),
            stats.no_answer_timeout_s,
            step,
        )
        tables = _ring_table(key, horizons)
        talk_mean = _round_rel(stats.talk_time_mean_s, 0.03)
        talk_sd = _round_rel(stats.talk_time_sd_s, 0.05)
        wrap_mean = float(round(stats.wrap_time_mean_s))
        talk_key = (talk_mean, talk_sd, wrap_mean, step, float(count))
        talk_rows = int(max(8.0 * talk_mean, 600.0))
        talk = _free_table(talk_key, talk_mean, talk_sd, wrap_mean, horizons + step, talk_rows)
        wrap_key = (round(stats.wrap_time_mean_s, 1), round(stats.wrap_time_sd_s, 1), step)
        wrap_rows = int(max(4.0 * stats.wrap_time_mean_s, 60.0)) + 1
        wrap = _free_table(wrap_key, wrap_key[0], wrap_key[1], 0.0, horizons + step, wrap_rows)
        gain = (1.0 - cap) * _THETAS  # e^{θ c} - 1 for an answer, c = 1 - cap
        loss = -_THETAS  # c = -1 for a free agent

        def log_mgf(p: FloatArray, c: FloatArray) -> FloatArray:
            # log(1 - p + p e^{θc}) for every (row, checkpoint) × θ, flattened per row.
            values = np.log1p(p[..., None] * np.expm1(c))
            return values.reshape(*p.shape[:-1], -1)

        self.cap = cap
        self.ring = log_mgf(tables.ring_live_by, gain)
        self.ring_rows = tables.ring_rows
        self.new = log_mgf(tables.new_live_by[None, :], gain)[0]
        self.thetas = np.tile(_THETAS, count)
        self.talk = log_mgf(talk.free_by, loss)
        self.talk_rows = talk.rows
        self.wrap = log_mgf(wrap.free_by, loss)
        self.wrap_rows = wrap.rows


_MODELS: dict[tuple[Any, ...], _GuardModel] = {}


def _upper(stats: PacingStats) -> float:
    if stats.human_answer_upper is not None:
        return stats.human_answer_upper
    return answer_rate_upper_bound(stats.human_answer_rate, stats.samples + _PRIOR_DIALS)


_LAST: list[tuple[PacingStats, float, _GuardModel]] = []


def _model_for(stats: PacingStats, cap: float) -> _GuardModel:
    # The dial loop and the simulator hand the same statistics object over for seconds.
    if _LAST and _LAST[0][0] is stats and _LAST[0][1] == cap:
        return _LAST[0][2]
    model = _build_model(stats, cap)
    _LAST[:] = [(stats, cap, model)]
    return model


def _build_model(stats: PacingStats, cap: float) -> _GuardModel:
    p_upper = _upper(stats)
    key = (
        round(p_upper * 400),
        round(stats.machine_answer_rate, 2),
        round(stats.quick_fail_rate, 2),
        round(stats.ring_time_mean_s * 2),
        round(stats.ring_time_sd_s * 2),
        round(stats.quick_fail_time_s),
        stats.no_answer_timeout_s,
        _round_rel(stats.talk_time_mean_s, 0.03),
        _round_rel(stats.talk_time_sd_s, 0.05),
        round(stats.wrap_time_mean_s, 1),
        round(stats.wrap_time_sd_s, 1),
        cap,
    )
    model = _MODELS.pop(key, None)
    if model is None:
        model = _GuardModel(stats, p_upper, cap)
        if len(_MODELS) >= 64:
            del _MODELS[next(iter(_MODELS))]
    _MODELS[key] = model
    return model


def _rows(elapsed: Sequence[float], rows: int) -> npt.NDArray[np.intp]:
    """The whole-second table row of each of ``elapsed`` (the last row takes the rest)."""
    if type(elapsed) is ElapsedTimes:
        seconds = np.subtract(elapsed.now_s, np.asarray(elapsed.starts, dtype=np.float64))
    else:
        seconds = np.asarray(elapsed, dtype=np.float64)
    whole = seconds.astype(np.intp)
    np.clip(whole, 0, rows - 1, out=whole)
    return whole


def _summed(table: FloatArray, elapsed: Sequence[float], rows: int) -> FloatArray | float:
    """The sum of ``table``'s rows for ``elapsed`` (0.0 when there are none)."""
    if not elapsed:
        return 0.0
    whole = _rows(elapsed, rows)
    if whole.size > 2 * rows:
        summed: FloatArray = np.bincount(whole, minlength=rows) @ table
        return summed
    return table.take(whole, axis=0).sum(axis=0)  # type: ignore[no-any-return]


def _most_new_calls(snapshot: PacingSnapshot, model: _GuardModel, risk: float) -> int:
    """The most new calls with the Chernoff bound ≤ ``risk`` at every checkpoint (-1: none)."""
    cap = model.cap
    # log M(θ) of the decision variable D = (1 - cap) A(t) - S(t) before any new call.
    base: FloatArray = model.thetas * ((1.0 - cap) * snapshot.calls_waiting - snapshot.agents_ready)
    base += _summed(model.ring, snapshot.ringing_elapsed_s, model.ring_rows)
    base += _summed(model.talk, snapshot.talk_elapsed_s, model.talk_rows)
    base += _summed(model.wrap, snapshot.wrap_elapsed_s, model.wrap_rows)
    thetas = model.thetas
    base += 0.0 * thetas * ((1.0 - cap) * snapshot.calls_waiting - snapshot.agents_ready)
    # The window ends above the cap when D > cap × L - a.
    threshold = cap * snapshot.live_answers_in_window - snapshot.abandoned_in_window + 1e-9
    room = math.log(risk) + thetas * threshold - base
    new = model.new
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(new > 1e-15, room / new, np.where(room >= 0, np.inf, -np.inf))
    best_per_checkpoint = per.reshape(-1, _THETAS.size).max(axis=1)
    most = float(best_per_checkpoint.min())
    if most < 0:
        return -1
    return int(min(most, 1e9))
