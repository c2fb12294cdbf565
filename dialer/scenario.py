"""Simulation scenarios: one campaign day, described as JSON.

Keys (all optional; defaults in brackets):

- ``seed`` [1]: random seed; the same scenario and seed always give the same result.
- ``duration_s`` [28800]: length of the day in seconds.
- ``agents`` [10]: agents signed in and ready for the whole day (0 only for agentless).
- ``mode`` ["predictive"]: preview, progressive, power, predictive or agentless.
- ``abandon_target`` [0.03]: the abandon-rate cap (abandoned ÷ live answers).
- ``power_ratio`` [2.0]: calls per ready agent in power mode.
- ``leads`` [1000000]: leads available; each dial uses one, dialing stops when none are left.
- ``answer_probability`` [0.25]: chance a person picks up if the line rings long enough;
  a number, or a list of ``{"from_s": t, "p": p}`` steps.
- ``machine_probability`` [0.10]: chance an answering machine picks up.
- ``busy_probability`` [0.05], ``failure_probability`` [0.01]: busy line, network failure.
- ``ring_time_s`` [lognormal 12/6], ``talk_time_s`` [lognormal 120/80],
  ``wrap_time_s`` [fixed 10], ``preview_time_s`` [fixed 5]: time distributions, each
  ``{"dist": "lognormal", "mean": m, "sd": s}``, ``{"dist": "exponential", "mean": m}`` or
  ``{"dist": "fixed", "value": v}``.
- ``no_answer_timeout_s`` [25]: how long a call rings before it counts as no answer.
- ``amd_policy`` ["hang_up"]: what to do with answering machines: hang_up, leave_message,
  pass_to_agent. Machine answers never count as live answers.
- ``agentless_lines`` [10], ``ivr_questions`` [5]: concurrent lines and prompts per interview in
  agentless mode (the interview's length follows ``talk_time_s``).
- ``pacing_interval_s`` [1.0]: how often the pacer decides.
- ``abandon_grace_s`` [2.0]: a live answer with no agent within this time is abandoned.
- ``abandon_guard`` ["strict"]: the guard every launch goes through (:mod:`dialer.guard`):
  strict (the worst case, a certainty) or statistical (a bounded probability).
- ``abandon_risk`` [0.01]: the statistical guard's risk per launch, in (0, 0.5].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dialer.distributions import Fixed, LogNormal, TimeDistribution, parse_distribution
from dialer.exceptions import ScenarioError
from dialer.guard import DEFAULT_RISK, AbandonGuard
from dialer.pacing import PacingMode
from dialer.simgateway import ProbabilitySchedule

__all__ = ["AmdPolicy", "Scenario", "parse_scenario"]


class AmdPolicy(StrEnum):
    """What the dialer does when an answering machine picks up."""

    HANG_UP = "hang_up"
    LEAVE_MESSAGE = "leave_message"
    PASS_TO_AGENT = "pass_to_agent"  # noqa: S105 (not a password)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated simulation scenario; see the module docstring for the keys."""

    seed: int = 1
    duration_s: float = 8 * 3600.0
    agents: int = 10
    mode: PacingMode = PacingMode.PREDICTIVE
    abandon_target: float = 0.03
    power_ratio: float = 2.0
    leads: int = 1_000_000
    answer_probability: ProbabilitySchedule = field(
        default_factory=lambda: ProbabilitySchedule.constant(0.25)
    )
    machine_probability: float = 0.10
    busy_probability: float = 0.05
    failure_probability: float = 0.01
    ring_time_s: TimeDistribution = field(default_factory=lambda: LogNormal(12.0, 6.0))
    no_answer_timeout_s: float = 25.0
    talk_time_s: TimeDistribution = field(default_factory=lambda: LogNormal(120.0, 80.0))
    wrap_time_s: TimeDistribution = field(default_factory=lambda: Fixed(10.0))
    preview_time_s: TimeDistribution = field(default_factory=lambda: Fixed(5.0))
    amd_policy: AmdPolicy = AmdPolicy.HANG_UP
    agentless_lines: int = 10
    ivr_questions: int = 5
    pacing_interval_s: float = 1.0
    abandon_grace_s: float = 2.0
    abandon_guard: AbandonGuard = AbandonGuard.STRICT
    abandon_risk: float = DEFAULT_RISK


def _integer(raw: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ScenarioError(key, f"must be a whole number, got {value!r}")
    if value < minimum:
        raise ScenarioError(key, f"must be at least {minimum}, got {value!r}")
    return value


def _real(
    raw: Mapping[str, Any],
    key: str,
    default: float,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(key, f"must be a number, got {value!r}")
    if value < low or (low_open and value == low) or value > high:
        bracket = "(" if low_open else "["
        upper = "∞)" if math.isinf(high) else f"{high:g}]"
        raise ScenarioError(key, f"must be in {bracket}{low:g}, {upper}, got {value!r}")
    return float(value)


def _probability(raw: Mapping[str, Any], key: str, default: float) -> float:
    return _real(raw, key, default, low=0.0, high=1.0)


def _schedule(raw: Mapping[str, Any], key: str, default: float) -> ProbabilitySchedule:
    value = raw.get(key, default)
    if isinstance(value, list):
        if not value:
            raise ScenarioError(key, 'needs at least one {"from_s": t, "p": p} step')
        steps: list[tuple[float, float]] = []
        for index, step in enumerate(value):
            path = f"{key}[{index}]"
            if not isinstance(step, Mapping):
                raise ScenarioError(path, 'must be an object {"from_s": t, "p": p}')
            unknown = sorted(set(step) - {"from_s", "p"})
            if unknown:
                raise ScenarioError(f"{path}.{unknown[0]}", "is not a step key (from_s, p)")
            for name in ("from_s", "p"):
                if name not in step:
                    raise ScenarioError(f"{path}.{name}", "is missing")
            try:
                start = _real(step, "from_s", 0.0, low=0.0)
                p = _probability(step, "p", 0.0)
            except ScenarioError as error:
                raise ScenarioError(f"{path}.{error.key}", error.problem) from None
            if steps and start <= steps[-1][0]:
                raise ScenarioError(f"{path}.from_s", "steps must be in increasing from_s order")
            steps.append((start, p))
        return ProbabilitySchedule(tuple(steps))
    return ProbabilitySchedule.constant(_probability(raw, key, default))


_KEYS = frozenset(Scenario.__dataclass_fields__)


def parse_scenario(raw: object) -> Scenario:
    """Validate a scenario mapping (parsed JSON); errors name the offending key."""
    if not isinstance(raw, Mapping):
        raise ScenarioError("(top level)", "a scenario must be a JSON object of keys")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ScenarioError(
            unknown[0], f"is not a scenario key; known keys are {', '.join(sorted(_KEYS))}"
        )
    default = Scenario()
    mode_raw = raw.get("mode", default.mode.value)
    try:
        mode = PacingMode(mode_raw)
    except ValueError:
        choices = ", ".join(m.value for m in PacingMode)
        raise ScenarioError("mode", f"must be one of {choices}, got {mode_raw!r}") from None
    amd_raw = raw.get("amd_policy", default.amd_policy.value)
    try:
        amd = AmdPolicy(amd_raw)
    except ValueError:
        choices = ", ".join(a.value for a in AmdPolicy)
        raise ScenarioError("amd_policy", f"must be one of {choices}, got {amd_raw!r}") from None

    def dist(key: str, fallback: TimeDistribution) -> TimeDistribution:
        return parse_distribution(raw[key], key) if key in raw else fallback

    guard_raw = raw.get("abandon_guard", default.abandon_guard.value)
    try:
        guard = AbandonGuard(guard_raw)
    except ValueError:
        choices = ", ".join(g.value for g in AbandonGuard)
        raise ScenarioError(
            "abandon_guard", f"must be one of {choices}, got {guard_raw!r}"
        ) from None
    agents = _integer(raw, "agents", default.agents, 0)
    if agents == 0 and mode is not PacingMode.AGENTLESS:
        raise ScenarioError("agents", f"must be at least 1 in {mode.value} mode")
    scenario = Scenario(
        seed=_integer(raw, "seed", default.seed, 0),
        duration_s=_real(raw, "duration_s", default.duration_s, low=0.0, low_open=True),
        agents=agents,
        mode=mode,
        abandon_target=_real(raw, "abandon_target", default.abandon_target, low=0.0, high=1.0),
        power_ratio=_real(raw, "power_ratio", default.power_ratio, low=1.0, high=20.0),
        leads=_integer(raw, "leads", default.leads, 0),
        answer_probability=_schedule(raw, "answer_probability", 0.25),
        machine_probability=_probability(raw, "machine_probability", default.machine_probability),
        busy_probability=_probability(raw, "busy_probability", default.busy_probability),
        failure_probability=_probability(raw, "failure_probability", default.failure_probability),
        ring_time_s=dist("ring_time_s", default.ring_time_s),
        no_answer_timeout_s=_real(
            raw, "no_answer_timeout_s", default.no_answer_timeout_s, low=0.0, low_open=True
        ),
        talk_time_s=dist("talk_time_s", default.talk_time_s),
        wrap_time_s=dist("wrap_time_s", default.wrap_time_s),
        preview_time_s=dist("preview_time_s", default.preview_time_s),
        amd_policy=amd,
        agentless_lines=_integer(raw, "agentless_lines", default.agentless_lines, 1),
        ivr_questions=_integer(raw, "ivr_questions", default.ivr_questions, 1),
        pacing_interval_s=_real(
            raw, "pacing_interval_s", default.pacing_interval_s, low=0.1, high=60.0
        ),
        abandon_grace_s=_real(raw, "abandon_grace_s", default.abandon_grace_s, low=0.0),
        abandon_guard=guard,
        abandon_risk=_real(
            raw, "abandon_risk", default.abandon_risk, low=0.0, high=0.5, low_open=True
        ),
    )
    total = (
        scenario.answer_probability.maximum
        + scenario.machine_probability
        + scenario.busy_probability
        + scenario.failure_probability
    )
    if total > 1.0 + 1e-9:
        raise ScenarioError(
            "machine_probability",
            f"answer + machine + busy + failure probabilities add up to {total:.3f}; "
            "they must sum to at most 1",
        )
    return scenario
