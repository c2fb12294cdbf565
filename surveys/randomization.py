"""Per-respondent option randomisation that is stable across reloads and resumes.

The order comes from a keyed hash of (respondent seed, question, option value), not from a
random generator's state, so it is the same every time the question is shown to the same
respondent, whatever the language or how often the interview was suspended. Anchored options
(``special`` such as other / don't know / refused, or ``fixed: true``) keep their positions;
only the other options are shuffled among the remaining slots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from surveys.schema import Choice

__all__ = ["option_order", "stable_shuffle"]

T = TypeVar("T")


def _rank(seed: str, scope: str, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\x1f{scope}\x1f{key}".encode()).digest()


def stable_shuffle(items: Sequence[T], keys: Sequence[str], *, seed: str, scope: str) -> list[T]:
    """Shuffle ``items`` deterministically from ``seed`` and ``scope`` (keys must be unique)."""
    ranked = sorted(zip(items, keys, strict=True), key=lambda pair: _rank(seed, scope, pair[1]))
    return [item for item, _ in ranked]


def option_order(choices: Sequence[Choice], *, seed: str, question: str) -> list[Choice]:
    """The options in this respondent's order, anchored options staying in place."""
    movable = [c for c in choices if not c.anchored]
    shuffled = iter(stable_shuffle(movable, [c.value for c in movable], seed=seed, scope=question))
    return [choice if choice.anchored else next(shuffled) for choice in choices]
