"""Reproducible pilot samples: simple or stratified random sampling with a recorded seed.

Pure: the caller passes candidates in a stable order (the database order by list and row) and
a seed; the same candidates and seed always give the same sample, on any machine.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Allocation", "allocate_proportional", "simple_sample", "stratified_sample"]

T = TypeVar("T", bound=Hashable)


def simple_sample(candidates: Sequence[T], size: int, seed: int) -> list[T]:
    """``size`` candidates drawn uniformly without replacement, in candidate order."""
    if size > len(candidates):
        raise ValueError(f"sample size {size} is larger than the {len(candidates)} candidates")
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(candidates)), size))
    return [candidates[i] for i in chosen]


@dataclass(frozen=True)
class Allocation:
    """How many leads each stratum has and how many the sample takes from it."""

    population: dict[str, int]
    sample: dict[str, int]


def allocate_proportional(population: dict[str, int], size: int) -> dict[str, int]:
    """Proportional allocation with largest remainders (ties broken by stratum name)."""
    total = sum(population.values())
    if size > total:
        raise ValueError(f"sample size {size} is larger than the {total} candidates")
    exact = {k: size * n / total for k, n in population.items()}
    alloc = {k: int(v) for k, v in exact.items()}
    short = size - sum(alloc.values())
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - alloc[k]), k))
    for k in by_remainder[:short]:
        alloc[k] += 1
    return alloc


def stratified_sample(
    candidates: Sequence[tuple[T, str]], size: int, seed: int
) -> tuple[list[T], Allocation]:
    """A proportionally allocated stratified sample of ``(item, stratum)`` pairs."""
    groups: dict[str, list[T]] = defaultdict(list)
    for item, stratum in candidates:
        groups[stratum].append(item)
    population = {k: len(v) for k, v in sorted(groups.items())}
    alloc = allocate_proportional(population, size)
    chosen: list[T] = []
    for stratum in sorted(groups):
        # One generator per stratum, derived from the seed and the stratum name, so adding
        # a stratum elsewhere does not reshuffle this one.
        sub_seed = random.Random(f"{seed}:{stratum}").getrandbits(63)
        chosen.extend(simple_sample(groups[stratum], alloc[stratum], sub_seed))
    return chosen, Allocation(population=population, sample=alloc)
