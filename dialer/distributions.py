"""Time distributions for ring, talk, wrap-up and message times.

A distribution is a small frozen value object that samples with a caller-supplied
``random.Random`` (so every simulation is seeded and deterministic) and knows its mean and
standard deviation (so pacing can model it). Scenario files describe them as
``{"dist": "lognormal", "mean": m, "sd": s}``, ``{"dist": "exponential", "mean": m}`` or
``{"dist": "fixed", "value": v}``; :func:`parse_distribution` turns such a mapping into one,
naming the bad key on error.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dialer.exceptions import ScenarioError

__all__ = [
    "Exponential",
    "Fixed",
    "LogNormal",
    "TimeDistribution",
    "lognormal_log_params",
    "parse_distribution",
]


@runtime_checkable
class TimeDistribution(Protocol):
    """A non-negative duration in seconds."""

    @property
    def mean(self) -> float:
        """Expected value in seconds."""
        ...

    @property
    def sd(self) -> float:
        """Standard deviation in seconds."""
        ...

    def sample(self, rng: random.Random) -> float:
        """Draw one duration with the given generator."""
        ...

    def scaled(self, factor: float) -> TimeDistribution:
        """The same shape with every duration multiplied by ``factor``."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same duration."""

    value: float

    @property
    def mean(self) -> float:
        return self.value

    @property
    def sd(self) -> float:
        return 0.0

    def sample(self, rng: random.Random) -> float:
        """Return the fixed value."""
        return self.value

    def scaled(self, factor: float) -> Fixed:
        """Multiply the value by ``factor``."""
        return Fixed(self.value * factor)


@dataclass(frozen=True, slots=True)
class Exponential:
    """Memoryless durations with the given mean."""

    mean_s: float

    @property
    def mean(self) -> float:
        return self.mean_s

    @property
    def sd(self) -> float:
        return self.mean_s

    def sample(self, rng: random.Random) -> float:
        """Draw an exponential duration."""
        return rng.expovariate(1.0 / self.mean_s) if self.mean_s > 0 else 0.0

    def scaled(self, factor: float) -> Exponential:
        """Multiply the mean by ``factor``."""
        return Exponential(self.mean_s * factor)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal durations parameterised by their own mean and sd (not the log's)."""

    mean_s: float
    sd_s: float
    # (mu, sigma) of the underlying normal, worked out once: the simulator samples talk and
    # ring times tens of thousands of times a day.
    _log_params: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_log_params", lognormal_log_params(self.mean_s, self.sd_s))

    @property
    def mean(self) -> float:
        return self.mean_s

    @property
    def sd(self) -> float:
        return self.sd_s

    @property
    def log_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal."""
        return self._log_params

    def sample(self, rng: random.Random) -> float:
        """Draw a log-normal duration."""
        if self.mean_s <= 0:
            return 0.0
        mu, sigma = self._log_params
        return rng.lognormvariate(mu, sigma)

    def scaled(self, factor: float) -> LogNormal:
        """Multiply mean and sd by ``factor`` (the shape is unchanged)."""
        return LogNormal(self.mean_s * factor, self.sd_s * factor)


def lognormal_log_params(mean: float, sd: float) -> tuple[float, float]:
    """(mu, sigma) of the normal whose exponential has the given mean and sd."""
    if mean <= 0:
        return (-math.inf, 0.0)
    sigma2 = math.log1p((sd / mean) ** 2)
    return (math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))


def _number(spec: Mapping[str, Any], key: str, path: str, *, positive: bool) -> float:
    if key not in spec:
        raise ScenarioError(f"{path}.{key}", "is missing")
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{path}.{key}", f"must be a number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        need = "greater than 0" if positive else "0 or more"
        raise ScenarioError(f"{path}.{key}", f"must be {need}, got {value!r}")
    return float(value)


def parse_distribution(spec: object, path: str) -> TimeDistribution:
    """Build a distribution from its scenario mapping; ``path`` names it in errors."""
    if isinstance(spec, bool):
        raise ScenarioError(path, "must be a distribution object, not a boolean")
    if isinstance(spec, int | float):
        # A bare number is accepted as shorthand for a fixed duration.
        return parse_distribution({"dist": "fixed", "value": spec}, path)
    if not isinstance(spec, Mapping):
        raise ScenarioError(
            path,
            'must be {"dist": "lognormal", "mean": m, "sd": s}, '
            '{"dist": "exponential", "mean": m} or {"dist": "fixed", "value": v}',
        )
    kind = spec.get("dist")
    allowed: dict[str, set[str]] = {
        "fixed": {"dist", "value"},
        "exponential": {"dist", "mean"},
        "lognormal": {"dist", "mean", "sd"},
    }
    if kind not in allowed:
        raise ScenarioError(
            f"{path}.dist", f"must be one of fixed, exponential, lognormal; got {kind!r}"
        )
    unknown = sorted(set(spec) - allowed[kind])
    if unknown:
        raise ScenarioError(
            f"{path}.{unknown[0]}",
            f"is not a {kind} parameter (expected {', '.join(sorted(allowed[kind]))})",
        )
    if kind == "fixed":
        return Fixed(_number(spec, "value", path, positive=False))
    if kind == "exponential":
        return Exponential(_number(spec, "mean", path, positive=True))
    return LogNormal(
        _number(spec, "mean", path, positive=True), _number(spec, "sd", path, positive=False)
    )
