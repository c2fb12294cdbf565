"""Regular expressions written by questionnaire authors, run by a linear-time engine (RE2).

User patterns (``regex(., '...')`` in constraints) must never be able to freeze a worker:
Python's ``re`` backtracks, so ``^(a+)+$`` against ``aaaa...!`` takes exponential time, and
``a{4294967296}`` raises ``OverflowError``. RE2 matches in time linear in the input, has no
backreferences or lookarounds, caps repetition counts at 1000 and the compiled program's size.

RE2 is reached through pyarrow (already a dependency, which bundles RE2):
``pyarrow.compute.match_substring_regex`` is a search, like ``re.search``; a pattern that RE2
cannot compile raises ``pyarrow.ArrowInvalid``. This module is the only place that knows it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

__all__ = ["MAX_PATTERN_LENGTH", "RegexError", "check_pattern", "search"]

MAX_PATTERN_LENGTH: Final = 1000
MAX_REPEAT: Final = 1000
"""RE2's own limit; RE2 reads a larger count such as ``{4294967296}`` as literal text, which
is not what the author meant, so it is refused here."""
_COUNTED = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")


class RegexError(ValueError):
    """A pattern that the linear-time engine refuses (syntax, size or repetition limits)."""


def _engine() -> tuple[Any, Any, type[Exception]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa, pc, pa.ArrowInvalid


@lru_cache(maxsize=1024)
def check_pattern(pattern: str) -> None:
    """Raise RegexError with RE2's reason when ``pattern`` cannot be used."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(
            f"the pattern is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}"
        )
    for match in _COUNTED.finditer(pattern):
        counts = [int(n) for n in match.groups() if n]
        if max(counts) > MAX_REPEAT:
            raise RegexError(
                f"repetition {match.group(0)} exceeds {MAX_REPEAT}; patterns use RE2 syntax"
            )
    pa, pc, invalid = _engine()
    try:
        pc.match_substring_regex(pa.array([""], type=pa.string()), pattern=pattern)
    except invalid as exc:
        reason = str(exc).split(":", 1)[-1].strip() or "invalid pattern"
        raise RegexError(f"{reason} (patterns use RE2 syntax: no backreferences)") from None


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (like ``re.search``), in linear time."""
    check_pattern(pattern)
    pa, pc, _ = _engine()
    result = pc.match_substring_regex(pa.array([text], type=pa.string()), pattern=pattern)
    return bool(result[0].as_py())
