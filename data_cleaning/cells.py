"""Phone cells that hold several numbers: where to split them, and what became of the parts.

A list's phone cell sometimes holds two or more numbers (``138 0013 8000 / 139 1234 5678``,
``13800138000、13912345678``, one per line). Normalised whole, such a cell is too long and
every number in it is lost. The pipeline splits it before normalisation: the first valid
number becomes the lead's number, the other valid ones its alternates.

The rule never splits a single number: a cell is split only at the separators of
:data:`SEPARATORS`, only when it gives at least two parts holding digits that each hold at least
:data:`MIN_PART_DIGITS` digits (parts without any digit, such as ``无``, are ignored), and only
when the whole cell is not a valid number (with an extension shorter than a number) while one
of its parts is. ``138,0013,8000`` (parts of 3 and 4 digits), ``138 0013 8000
;ext=12`` and ``010-6552-9988, 转 21`` (an extension after the separator) stay whole and are
normalised as today.

Dedupe, prior lists and do-not-call apply to the lead's number (the row's outcome is exactly
that of a cell holding only that number). Alternates are checked against the do-not-call
sets (a suppressed alternate is dropped), against the lead's number and the cell's earlier
alternates (a repeat is dropped), and must be valid; they are not deduplicated against other
rows. Alternates of rows that are themselves rejected are dropped with them. The report counts
split cells, alternates kept, and alternates dropped by reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from data_cleaning.models import RejectReason
from data_cleaning.vectorised import REASON_CODES, PackedResult

if TYPE_CHECKING:
    from data_cleaning.suppression import Suppression

__all__ = [
    "ALTERNATES_SEPARATOR",
    "MIN_PART_DIGITS",
    "ROW_REJECTED",
    "SEPARATORS",
    "SEPARATOR_PATTERN",
    "SplitCells",
    "per_chunk",
    "split_cell",
    "split_column",
]

#: Characters that separate numbers in one cell: ``/ 、 ; , 或``, line breaks, and the
#: full-width ``／ ； ，``.
SEPARATORS: Final = "/、;,或\n\r\u2028／；，"
#: A character class matching one separator (RE2 and Python ``re`` syntax).
SEPARATOR_PATTERN: Final = "[/、;,或\\n\\r\u2028／；，]"
#: Digits a part must hold for a cell to be split (a Chinese number has at least 7 without
#: its area code; a fragment of one number such as "0013" has fewer).
MIN_PART_DIGITS: Final = 7
#: How several alternates are written in one CLEANED.csv cell.
ALTERNATES_SEPARATOR: Final = "|"
#: Reason counted for the alternates of a row that was rejected itself.
ROW_REJECTED: Final = "row_rejected"

_SPLIT: Final = re.compile(SEPARATOR_PATTERN)
_DIGITS: Final = frozenset("0123456789０１２３４５６７８９")


def _digit_count(text: str) -> int:
    return sum(ch in _DIGITS for ch in text)


def split_cell(text: str | None) -> list[str] | None:
    """The numbers of a cell holding several, in order; ``None`` when it is kept whole."""
    if not text:
        return None
    parts = [part.strip() for part in _SPLIT.split(text)]
    # Parts without a digit ("无", "abc", blank) are notes, not fragments of a number.
    counts = [(part, _digit_count(part)) for part in parts]
    numbers = [(part, digits) for part, digits in counts if digits]
    if len(numbers) < 2 or any(digits < MIN_PART_DIGITS for _, digits in numbers):
        return None
    return [part for part, _ in numbers]


@dataclass(slots=True)
class SplitCells:
    """The split cells of one chunk: their rows, kept alternates and dropped alternates."""

    #: Positions in the chunk of the rows whose cell was split (ascending).
    rows: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    #: Per split row: the alternates kept (E.164), in cell order.
    alternates: list[tuple[str, ...]] = field(default_factory=list)
    #: Per split row: the reason each dropped alternate was dropped (RejectReason values).
    dropped: list[tuple[str, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


class _Normalise(Protocol):
    """What :func:`split_column` needs of :class:`~data_cleaning.vectorised.VectorEngine`."""

    def process(
        self,
        phones: Sequence[str | None] | pa.Array,
        suppression: Sequence[Suppression] = (),
        *,
        enrich: bool = True,
    ) -> PackedResult: ...


def split_column(
    phones: pa.Array, engine: _Normalise, suppression: Sequence[Suppression] = ()
) -> tuple[pa.Array, SplitCells]:
    """The phone column with each split cell replaced by its lead's number, and the splits.

    A cell is split when :func:`split_cell` gives parts, the whole cell is not a valid number
    (so a valid cell is never altered; a "valid" one whose extension has a number's length is
    not) and one of the parts is; the lead's number is the first valid part. The common case,
    no separator anywhere, costs one RE2 scan.
    """
    if not len(phones):
        return phones, SplitCells()
    hits = np.flatnonzero(
        np.asarray(
            pc.match_substring_regex(phones, SEPARATOR_PATTERN)
            .fill_null(False)
            .to_numpy(zero_copy_only=False),
            dtype=np.bool_,
        )
    )
    if not len(hits):
        return phones, SplitCells()
    texts = phones.take(pa.array(hits, type=pa.int64())).to_pylist()
    found = [
        (row, text, parts)
        for row, text in zip(hits.tolist(), texts, strict=True)
        if (parts := split_cell(text)) is not None
    ]
    if not found:
        return phones, SplitCells()
    # The whole cells and their parts, normalised together (no enrichment: only validity,
    # E.164 and the do-not-call flags matter here).
    cells: list[str | None] = []
    for _, text, parts in found:
        cells.append(text)
        cells.extend(parts)
    packed = engine.process(cells, suppression, enrich=False)
    valid = (packed.reasons == 0).tolist()
    e164 = packed.e164.to_pylist()
    extensions = packed.extensions.to_pylist()
    suppressed = np.zeros(len(cells), dtype=np.bool_)
    for flags in packed.suppressed:
        suppressed |= flags
    dnc = suppressed.tolist()
    reasons = [REASON_CODES[code] for code in packed.reasons.tolist()]
    rows: list[int] = []
    leads: list[str] = []
    alternates: list[tuple[str, ...]] = []
    dropped: list[tuple[str, ...]] = []
    at = 0
    for row, _, parts in found:
        whole, first, stop = at, at + 1, at + 1 + len(parts)
        at = stop
        lead = next((k for k in range(first, stop) if valid[k]), None)
        # A valid cell stays whole, unless its "extension" is a second number (libphonenumber
        # reads "13800138000;13912345678" so); so does a cell with no valid part.
        if lead is None or (valid[whole] and _digit_count(extensions[whole]) < MIN_PART_DIGITS):
            continue
        kept: list[str] = []
        lost: list[str] = []
        for k in range(first, stop):
            if k == lead:
                continue
            number = e164[k]
            if not valid[k] or number is None:
                reason = reasons[k]
                lost.append(reason.value if reason is not None else "not_a_number")
            elif number == e164[lead] or number in kept:
                lost.append(RejectReason.DUPLICATE.value)
            elif dnc[k]:
                lost.append(RejectReason.DNC.value)
            else:
                kept.append(number)
        rows.append(row)
        leads.append(parts[lead - first])
        alternates.append(tuple(kept))
        dropped.append(tuple(lost))
    if not rows:
        return phones, SplitCells()
    mask = np.zeros(len(phones), dtype=np.bool_)
    mask[rows] = True
    replaced = pc.replace_with_mask(phones, pa.array(mask), pa.array(leads, pa.string()))
    return replaced, SplitCells(np.array(rows, dtype=np.intp), alternates, dropped)


def per_chunk(split: SplitCells, sizes: Sequence[int]) -> list[SplitCells]:
    """``split`` of consecutive rows cut into the chunks of ``sizes`` rows (rows renumbered)."""
    out: list[SplitCells] = []
    start = 0
    for size in sizes:
        lo, hi = np.searchsorted(split.rows, [start, start + size]).tolist()
        out.append(
            SplitCells(split.rows[lo:hi] - start, split.alternates[lo:hi], split.dropped[lo:hi])
        )
        start += size
    return out
