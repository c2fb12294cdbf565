"""Column-at-a-time normalisation and enrichment: the fast path for big lists.

:class:`VectorEngine` takes a whole chunk of raw phone cells and answers, per row, what
:meth:`PhoneNormaliser._normalise <data_cleaning.normalise.PhoneNormaliser>` and
:meth:`Enricher.lookup <data_cleaning.enrich.Enricher.lookup>` answer for one cell, with
pyarrow kernels and numpy instead of a Python loop:

* **canonicalisation**: a strict RE2 grammar recognises the usual shapes (digits with spaces,
  dashes, dots and brackets, full-width digits, ``+``, ``tel:``, extensions after ``转`` /
  ``轉`` / ``分机`` / ``分機`` / ``內線`` / ``内线`` and after ``ext`` or ``;ext=``); separators
  are deleted and full-width characters folded to ASCII column-wise;
* **parsing and validation** replay the same libphonenumber steps as the per-row fast path
  (IDD and national-prefix stripping, country-code extraction, possible lengths, the per-type
  ``national_number_pattern`` regular expressions in libphonenumber's type-precedence order),
  with the metadata of ``phonenumbers`` applied fully anchored by
  ``pyarrow.compute.match_substring_regex`` (RE2) to whole columns, one country code at a time;
* **enrichment** (region description, time zones, carrier) is a longest-prefix search of
  ``phonenumbers``' own prefix tables, done with ``numpy.searchsorted`` on integer prefixes.

Every row the grammar does not cover, and every step whose outcome is not certain (national
prefix transform rules, IDD patterns that can match nothing, over-long numbers, mobile tokens),
is handed to the per-row path, which itself falls back to ``phonenumbers``. The tests compare
the two paths row by row, so the fast path can never silently disagree.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers.phonenumberutil import (
    _GEO_MOBILE_COUNTRIES,
    _MOBILE_TOKEN_MAPPINGS,
    COUNTRY_CODE_TO_REGION_CODE,
    ValidationResult,
)
from phonenumbers.prefix import _find_lang

from data_cleaning import prefix_cache
from data_cleaning.enrich import _CARRIER_TYPES, _UNKNOWN_TIME_ZONES, Enricher, prefix_table
from data_cleaning.models import NumberType, RejectReason
from data_cleaning.normalise import (
    _MAX_INPUT_LENGTH,
    _MAX_NSN_LENGTH,
    _TYPE_BY_CODE,
    _UNKNOWN_TYPE,
    PhoneNormaliser,
    _Desc,
    _plan_for_region,
    _RegionPlan,
    _Result,
)

if TYPE_CHECKING:
    from data_cleaning.cells import SplitCells
    from data_cleaning.suppression import Suppression

__all__ = ["REASON_CODES", "TYPE_CODES", "PackedResult", "VectorEngine"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Row codes of the packed result: index 0 is ``None``.
REASON_CODES: Final[tuple[RejectReason | None, ...]] = (None, *RejectReason)
TYPE_CODES: Final[tuple[NumberType | None, ...]] = (None, *NumberType)
_REASON_INDEX: Final = {reason: i for i, reason in enumerate(REASON_CODES)}
_TYPE_INDEX: Final = {number_type: i for i, number_type in enumerate(TYPE_CODES)}
# libphonenumber type code -> TYPE_CODES index
_TYPE_CODE_TO_INDEX: Final = np.zeros(_UNKNOWN_TYPE + 1, dtype=np.int8)
for _code, _number_type in _TYPE_BY_CODE.items():
    _TYPE_CODE_TO_INDEX[_code] = _TYPE_INDEX[_number_type]

_SEPARATORS: Final = (
    " \t\u00a0\u3000\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d()\\.\uff08\uff09"
)
_DIGIT_CHARS: Final = "0-9\uff10-\uff19+\uff0b"
_SEPARATOR_CLASS: Final = f"[{_SEPARATORS}]"
# Plain numbers: separators, digits, "+", optionally after a "tel:" scheme.
_PLAIN: Final = f"^{_SEPARATOR_CLASS}*(?:(?:tel|TEL|Tel):)?[{_SEPARATORS}{_DIGIT_CHARS}]*$"
_TEL: Final = "^(?:tel|TEL|Tel):"
# Numbers with a Chinese extension marker (see normalise._CJK_EXTENSION).
_CJK: Final = (
    f"^(?P<number>[{_SEPARATORS}{_DIGIT_CHARS}]*?)[ \t,;\uff0c\uff1b]*"
    "(?:轉|转|分機|分机|內線|内线)[ \t:\uff1a#\uff03]*"
    "(?P<ext>[0-9\uff10-\uff19]{1,10})[ \t#\uff03]*$"
)
# Numbers with an explicit "ext" label or RFC 3966's ";ext=", which libphonenumber strips as
# the extension.
_EXT: Final = (
    "^[ ]*(?P<number>\\+?[0-9][0-9 \\-]*[0-9])(?:[ ]*(?:ext|EXT|Ext)\\.?[ ]*|;ext=)"
    "(?P<ext>[0-9]{1,7})[ ]*$"
)
_CANONICAL_DIGITS: Final = "^\\+?[0-9]+$"
_BLANK: Final = "^[ \t]*$"
_MEMO_LIMIT: Final = 100_000
_INT64_DIGITS: Final = 18
_COUNTRY_CODES: Final = np.array(sorted(COUNTRY_CODE_TO_REGION_CODE), dtype=np.int64)
_NOT_STRIPPED: Final = np.array(
    [
        ValidationResult.TOO_SHORT,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        ValidationResult.INVALID_LENGTH,
    ]
)
_POW10: Final = 10 ** np.arange(_INT64_DIGITS + 1, dtype=np.int64)
_CHINA: Final = 86


@dataclass(slots=True)
class PackedResult:
    """Per-row answers of one chunk in compact form (cheap to send between processes).

    Codes index :data:`REASON_CODES` / :data:`TYPE_CODES`; ``*_ids`` index the tables.
    """

    reasons: npt.NDArray[np.int8]
    types: npt.NDArray[np.int8]
    #: E.164 numbers (string column; null when invalid).
    e164: pa.Array
    #: E.164 digits as an integer (0 when invalid or too long for int64).
    e164_int: IntArray
    #: Extensions (string column; "" when none).
    extensions: pa.Array
    region_ids: npt.NDArray[np.int32]
    region_table: list[str]
    zone_ids: npt.NDArray[np.int32]
    zone_table: list[tuple[str, ...]]
    carrier_ids: npt.NDArray[np.int32]
    carrier_table: list[str]
    virtual: npt.NDArray[np.bool_]
    #: Per suppression set given to :meth:`VectorEngine.process`: which rows it holds.
    suppressed: list[npt.NDArray[np.bool_]]
    #: Cells split into several numbers (set by the pipeline; see :mod:`data_cleaning.cells`).
    split: SplitCells | None = None


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _lengths(array: pa.Array) -> IntArray:
    return np.asarray(pc.binary_length(array).to_numpy(zero_copy_only=False), dtype=np.int64)


def _mask(array: pa.Array) -> BoolArray:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _full(pattern: str, values: pa.Array) -> BoolArray:
    """Fully anchored match of a metadata pattern ("": none), with RE2, over a column."""
    if not pattern:
        return np.zeros(len(values), dtype=np.bool_)
    return _mask(pc.match_substring_regex(values, _anchored(pattern)))


def _take(values: pa.Array, index: npt.NDArray[np.intp]) -> pa.Array:
    return values.take(pa.array(index, type=pa.int64()))


def _leading_numbers(digits: pa.Array, most: int) -> list[IntArray]:
    """For k = 1..most, the number the first k digits of each row write (0: row too short).

    ``digits`` is a string column of ASCII digits; its bytes are read with numpy.
    """
    size = len(digits)
    _, offsets_buffer, data_buffer = digits.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=np.int32, count=size + 1, offset=digits.offset * 4
    )
    starts = offsets[:-1].astype(np.int64)
    lengths = offsets[1:] - offsets[:-1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else None
    value = np.zeros(size, dtype=np.int64)
    heads: list[IntArray] = []
    for k in range(most):
        longer = lengths > k
        if data is not None and longer.any():
            value[longer] = value[longer] * 10 + (data[starts[longer] + k].astype(np.int64) - 48)
        heads.append(np.where(longer, value, 0))
    return heads


def _matches(values: pa.Array, where: BoolArray, pattern: str) -> BoolArray:
    """Rows selected by ``where`` in which the RE2 ``pattern`` matches (False elsewhere)."""
    found = np.zeros(len(values), dtype=np.bool_)
    index = np.flatnonzero(where)
    if len(index):
        subset = values if len(index) == len(values) else _take(values, index)
        found[index] = _mask(pc.match_substring_regex(subset, pattern))
    return found


class _PlanColumns:
    """A region plan applied to columns."""

    def __init__(self, plan: _RegionPlan) -> None:
        self.plan = plan
        self.lengths = np.array(plan.possible_lengths, dtype=np.int64)
        self.local = np.array(sorted(plan.local_lengths), dtype=np.int64)
        npp = plan.national_prefix
        self.npp = f"^(?:{npp.pattern})" if npp is not None else None

    def length_result(self, lengths: IntArray) -> IntArray:
        """``_RegionPlan.length_result`` for a column of lengths."""
        ls = self.lengths
        if not len(ls):
            return np.full(len(lengths), ValidationResult.INVALID_LENGTH, dtype=np.int64)
        return np.select(
            [
                np.isin(lengths, self.local),
                lengths == ls[0],
                lengths < ls[0],
                lengths > ls[-1],
                np.isin(lengths, ls[1:]),
            ],
            [
                ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
                ValidationResult.IS_POSSIBLE,
                ValidationResult.TOO_SHORT,
                ValidationResult.TOO_LONG,
                ValidationResult.IS_POSSIBLE,
            ],
            ValidationResult.INVALID_LENGTH,
        ).astype(np.int64)

    def general(self, values: pa.Array) -> BoolArray:
        return _full(self.plan.general.source, values)

    def strip_national_prefix(self, values: pa.Array) -> tuple[pa.Array, BoolArray]:
        """``_RegionPlan.strip_national_prefix``: (result, declined)."""
        declined = np.zeros(len(values), dtype=np.bool_)
        if self.npp is None or not len(values):
            return values, declined
        if self.plan.national_prefix_transform:
            declined = _mask(pc.match_substring_regex(values, self.npp))
        rest = pc.replace_substring_regex(values, self.npp, "", max_replacements=1)
        stripped = np.flatnonzero(_lengths(rest) < _lengths(values))
        if not len(stripped):
            return values, declined
        # Like libphonenumber, keep the prefix when only the number with it is valid-looking.
        keep = self.general(_take(values, stripped)) & ~self.general(_take(rest, stripped))
        use = np.zeros(len(values), dtype=np.bool_)
        use[stripped[~keep]] = True
        return pc.if_else(pa.array(use), rest, values), declined

    def number_type(self, nsn: pa.Array) -> npt.NDArray[np.int64]:
        """``_RegionPlan.number_type`` for a column: libphonenumber type codes."""
        plan = self.plan
        size = len(nsn)
        result = np.full(size, _UNKNOWN_TYPE, dtype=np.int64)
        if not plan.general.source or not size:
            return result
        lengths = _lengths(nsn)
        todo = _desc_mask(plan.general, nsn, lengths, np.ones(size, dtype=np.bool_))
        for code, desc in plan.special:
            if not todo.any():
                return result
            hit = _desc_mask(desc, nsn, lengths, todo)
            result[hit] = code
            todo &= ~hit
        if not todo.any():
            return result
        fixed = _desc_mask(plan.fixed_line, nsn, lengths, todo)
        if plan.same_mobile_and_fixed:
            result[fixed] = 2
            return result
        mobile = _desc_mask(plan.mobile, nsn, lengths, todo)
        result[fixed & mobile] = 2
        result[fixed & ~mobile] = 0
        result[~fixed & mobile] = 1
        return result


def _desc_mask(desc: _Desc, values: pa.Array, lengths: IntArray, where: BoolArray) -> BoolArray:
    """``_Desc.matches`` on the rows selected by ``where`` (False elsewhere)."""
    out = np.zeros(len(values), dtype=np.bool_)
    if not desc.source:
        return out
    candidates = where.copy()
    if desc.lengths:
        candidates &= np.isin(lengths, np.fromiter(desc.lengths, dtype=np.int64))
    index = np.flatnonzero(candidates)
    if not len(index):
        return out
    subset = values if len(index) == len(values) else _take(values, index)
    out[index] = _full(desc.source, subset)
    return out


@cache
def _plan_columns(region: str) -> _PlanColumns | None:
    plan = _plan_for_region(region)
    return _PlanColumns(plan) if plan is not None else None


class _PrefixIndex:
    """One of libphonenumber's prefix tables, for one country code, as sorted integer keys."""

    def __init__(
        self,
        values: list[Any],
        empty_ids: npt.NDArray[np.int32],
        tables: list[tuple[int, IntArray, npt.NDArray[np.int32]]],
    ) -> None:
        #: The distinct values, in order of first appearance.
        self.values = values
        #: Ids of the values that are empty texts (a prefix named in no language).
        self.empty_ids = empty_ids
        #: Per key length, longest first: the sorted keys and their value ids.
        self.tables = tables

    @classmethod
    def build(
        cls,
        data: dict[str, Any],
        country: str,
        resolve: Callable[[Any], Any],
        every: list[str] | None,
        text: bool,
    ) -> _PrefixIndex:
        """The index of ``data``'s keys that prefix, or are prefixed by, ``country``."""
        if every is not None:
            # The keys are stored in sorted order: the country's are one slice of them, in the
            # same order as in the table.
            start = bisect.bisect_left(every, country)
            stop = bisect.bisect_left(every, country[:-1] + chr(ord(country[-1]) + 1))
            shorter = [country[:n] for n in range(1, len(country)) if country[:n] in data]
            candidates = shorter + every[start:stop]
        else:
            candidates = [key for key in data if key.startswith(country) or country.startswith(key)]
        # Python steps per key add up here (China has 130,000 geocoding keys): the common case
        # is checked and converted with C-level calls over whole lists.
        sizes = list(map(len, candidates))
        if (
            candidates
            and min(sizes) > 0
            and max(sizes) <= _INT64_DIGITS
            and "".join(candidates).isdigit()
        ):
            keys = candidates
        else:
            keys = [key for key in candidates if 0 < len(key) <= _INT64_DIGITS and key.isdigit()]
        resolved = list(map(resolve, map(data.__getitem__, keys)))
        if text and not set(map(type, resolved)) <= {str, type(None)}:
            resolved = [str(value) if value is not None else None for value in resolved]
        if None in resolved:
            kept = [k for k, value in enumerate(resolved) if value is not None]
            keys = [keys[k] for k in kept]
            resolved = [resolved[k] for k in kept]
        values: list[Any] = list(dict.fromkeys(resolved))
        value_ids = {value: i for i, value in enumerate(values)}
        count = len(keys)
        ids = np.fromiter(map(value_ids.__getitem__, resolved), dtype=np.int32, count=count)
        numbers = np.fromiter(map(int, keys), dtype=np.int64, count=count)
        lengths = np.fromiter(map(len, keys), dtype=np.int64, count=count)
        empty_ids = np.array([i for i, value in enumerate(values) if value == ""], dtype=np.int32)
        tables = []
        for length in sorted(set(lengths.tolist()), reverse=True):
            where = np.flatnonzero(lengths == length)
            order = where[np.argsort(numbers[where], kind="stable")]
            tables.append((length, numbers[order], ids[order]))
        return cls(values, empty_ids, tables)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as named arrays (see :mod:`data_cleaning.prefix_cache`)."""
        arrays: dict[str, np.ndarray] = {
            "values": prefix_cache.encode_values(self.values),
            "empty_ids": self.empty_ids,
            "lengths": np.array([length for length, _, _ in self.tables], dtype=np.int64),
        }
        for k, (_, keys, ids) in enumerate(self.tables):
            arrays[f"keys{k}"] = keys
            arrays[f"ids{k}"] = ids
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, tuples: bool) -> _PrefixIndex:
        """The index :meth:`to_arrays` stored (``tuples``: the values are tuples of texts)."""
        values = prefix_cache.decode_values(arrays["values"])
        if tuples:
            values = [tuple(value) for value in values]
        tables = [
            (
                int(length),
                np.asarray(arrays[f"keys{k}"], dtype=np.int64),
                np.asarray(arrays[f"ids{k}"], dtype=np.int32),
            )
            for k, length in enumerate(arrays["lengths"].tolist())
        ]
        empty_ids = np.asarray(arrays["empty_ids"], dtype=np.int32)
        return cls(values, empty_ids, tables)

    def find(self, scaled: IntArray, digits: IntArray) -> npt.NDArray[np.int32]:
        """Value id of the longest key prefixing each number (-1: none).

        ``scaled`` holds the numbers (of ``digits`` digits) padded with zeros to
        :data:`_INT64_DIGITS` digits, in ascending order: the prefixes of one length are then
        quotients by one power of ten and come sorted, which makes the binary searches fast.
        """
        found = np.full(len(scaled), -1, dtype=np.int32)
        todo = np.ones(len(scaled), dtype=np.bool_)
        for length, keys, ids in self.tables:
            rows = np.flatnonzero(todo & (digits >= length))
            if not len(rows):
                continue
            prefixes = scaled[rows] // _POW10[_INT64_DIGITS - length]
            pos = np.minimum(np.searchsorted(keys, prefixes), len(keys) - 1)
            hit = keys[pos] == prefixes
            found[rows[hit]] = ids[pos[hit]]
            todo[rows[hit]] = False
        return found


@cache
def _sorted_keys(which: int) -> list[str] | None:
    """The keys of prefix table ``which`` when it holds them in sorted order, else ``None``."""
    keys = list(prefix_table(which))
    # Sorting an already sorted list is one linear pass.
    return keys if keys == sorted(keys) else None


@cache
def _prefix_index(which: int, country: int, language: str) -> _PrefixIndex:
    """The prefix index of table ``which`` of :func:`_prefix_tables` (0 geo, 2 carrier, 4 tz).

    Read from :mod:`data_cleaning.prefix_cache` when stored there: building it needs
    ``phonenumbers``' whole table, which takes ~0.45 s to import for the geocoding one.
    """
    name = f"prefix-{which}-{country}" + (f"-{language}" if which != 4 else "")
    stored = prefix_cache.load_arrays(name)
    if stored is not None:
        try:
            return _PrefixIndex.from_arrays(stored, tuples=which == 4)
        except (KeyError, ValueError, TypeError):
            pass  # written by something else: rebuilt below
    data = prefix_table(which)
    ordered = _sorted_keys(which)
    if which == 4:
        index = _PrefixIndex.build(data, str(country), tuple, ordered, text=False)
    else:
        # The name in ``language`` (str, or None when there is none).
        resolve = partial(_find_lang, lang=language, script=None, region=None)
        index = _PrefixIndex.build(data, str(country), resolve, ordered, text=True)
    prefix_cache.store_arrays(name, index.to_arrays())
    return index


class _Interner:
    """Small tables of distinct values, one per chunk of a call, and per-row ids into them.

    Each chunk's table is built exactly as if the chunk had been processed alone.
    """

    def __init__(self, size: int, blank: Any, starts: IntArray) -> None:
        self.ids = np.zeros(size, dtype=np.int32)
        #: First row of each chunk.
        self.starts = starts
        self.tables: list[list[Any]] = [[blank] for _ in range(len(starts))]
        self._indexes: list[dict[Any, int]] = [{blank: 0} for _ in range(len(starts))]

    def chunk_of(self, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """The chunk of each row."""
        return np.searchsorted(self.starts, rows, side="right") - 1

    def intern(self, value: Any, chunk: int) -> int:
        index = self._indexes[chunk]
        vid = index.get(value)
        if vid is None:
            table = self.tables[chunk]
            vid = index[value] = len(table)
            table.append(value)
        return vid

    def intern_each(self, value: Any, chunks: npt.NDArray[np.intp]) -> npt.NDArray[np.int32]:
        """``value``'s id for each row of the given chunks (interned once in each chunk)."""
        ids = np.zeros(len(chunks), dtype=np.int32)
        for chunk in np.unique(chunks).tolist():
            ids[chunks == chunk] = self.intern(value, chunk)
        return ids


class VectorEngine:
    """Normalises and enriches whole chunks of raw phone cells; build once per process."""

    def __init__(self, normaliser: PhoneNormaliser, enricher: Enricher) -> None:
        self.normaliser = normaliser
        self.enricher = enricher
        self.language = enricher.language
        default = _plan_columns(normaliser.default_region)
        assert default is not None
        self._default = default
        idd = normaliser._plan.idd
        self._idd = f"^(?:{idd.pattern})" if idd is not None else None
        # An IDD pattern that can match nothing would make every number international.
        self._idd_usable = idd is None or idd.match("") is None
        self._geo: dict[int, _PrefixIndex] = {}
        self._carrier: dict[int, _PrefixIndex] = {}
        self._tz: dict[int, _PrefixIndex] = {}
        virtual = enricher.virtual_table
        # Prefixes as E.164 heads ("86" + prefix, as integers); a prefix that is not all
        # digits can match no national number.
        self._virtual = {
            length: np.array(
                sorted(
                    int(f"{_CHINA}{p}")
                    for p in virtual.prefixes
                    if len(p) == length and p.isascii() and p.isdigit()
                ),
                dtype=np.int64,
            )
            for length in virtual.lengths
        }
        # Answers of the per-row path by raw text: rows it gets are mostly repeated junk.
        self._memo: dict[str | None, _Result] = {}
        #: Rows answered by the per-row path in the last :meth:`process` call.
        self.fallback_rows = 0

    # -- public -------------------------------------------------------------------------------

    def process(
        self,
        phones: Sequence[str | None] | pa.Array,
        suppression: Sequence[Suppression] = (),
        *,
        enrich: bool = True,
    ) -> PackedResult:
        """Normalise and enrich raw cells; flag valid numbers held by ``suppression`` sets."""
        return self.process_chunks(phones, [len(phones)], suppression, enrich=enrich)[0]

    def process_chunks(
        self,
        phones: Sequence[str | None] | pa.Array,
        sizes: Sequence[int],
        suppression: Sequence[Suppression] = (),
        *,
        enrich: bool = True,
    ) -> list[PackedResult]:
        """:meth:`process` on consecutive chunks of ``sizes`` rows at once (cheaper per row).

        The results are those of one :meth:`process` call per chunk.
        """
        size = len(phones)
        assert sum(sizes) == size
        starts = np.cumsum([0, *sizes[:-1]], dtype=np.int64)
        if isinstance(phones, pa.Array):
            raw = phones if phones.type == pa.string() else phones.cast(pa.string())
        else:
            raw = pa.array(phones, type=pa.string())
        reasons = np.zeros(size, dtype=np.int8)
        types = np.zeros(size, dtype=np.int8)
        cc = np.zeros(size, dtype=np.int64)
        done = np.zeros(size, dtype=np.bool_)
        nsn_parts: list[tuple[npt.NDArray[np.intp], pa.Array]] = []

        candidates, digits, plus, ext = self._canonicalise(raw)
        index = np.flatnonzero(candidates)
        if len(index):
            ok, codes, country, nsn, valid_types = self._parse(_take(digits, index), plus[index])
            rows = index[ok]
            reasons[rows] = codes[ok]
            types[rows] = valid_types[ok]
            cc[rows] = country[ok]
            done[rows] = True
            nsn_parts.append((rows, _take(nsn, np.flatnonzero(ok))))
        # Extensions: "" unless found here or by the per-row path below.
        extension_parts: list[tuple[npt.NDArray[np.intp], pa.Array]] = []
        ext_rows = np.flatnonzero((_lengths(ext) > 0) & done)
        if len(ext_rows):
            extension_parts.append((ext_rows, _take(ext, ext_rows)))
        blank = np.flatnonzero(_matches(raw, ~done, _BLANK))
        reasons[blank] = _REASON_INDEX[RejectReason.EMPTY]
        done[blank] = True

        e164_parts: list[tuple[npt.NDArray[np.intp], pa.Array]] = []
        e164_int = np.zeros(size, dtype=np.int64)
        region = _Interner(size, "", starts)
        zones = _Interner(size, (), starts)
        carrier = _Interner(size, "", starts)
        virtual = np.zeros(size, dtype=np.bool_)
        if nsn_parts:
            rows, nsn = nsn_parts[0]
            e164_parts.append(
                self._finish_valid(
                    rows, nsn, cc, types, e164_int, region, zones, carrier, virtual, enrich
                )
            )

        fallback = np.flatnonzero(~done)
        self.fallback_rows = len(fallback)
        if len(fallback):
            values = _take(raw, fallback).to_pylist()
            numbers, found, found_extensions = self._per_row(values, fallback, reasons, types)
            with_extension = np.array([bool(e) for e in found_extensions], dtype=np.bool_)
            if with_extension.any():
                texts = [e for e in found_extensions if e]
                extension_parts.append((fallback[with_extension], pa.array(texts, pa.string())))
            present = np.array([number is not None for number in found], dtype=np.bool_)
            if present.any():
                known = [number for number in found if number is not None]
                e164_parts.append((fallback[present], pa.array(known, pa.string())))
                if enrich:
                    self._enrich_rows(
                        fallback[present], numbers, types, region, zones, carrier, virtual
                    )
        e164 = _gather(size, e164_parts)
        extensions = _gather(size, extension_parts).fill_null("")
        suppressed: list[npt.NDArray[np.bool_]] = []
        if suppression:
            valid = np.flatnonzero(reasons == 0)
            numbers_valid = _take(e164, valid)
            for dnc in suppression:
                flags = np.zeros(size, dtype=np.bool_)
                flags[valid] = dnc.contains_column(e164_int[valid], numbers_valid)
                suppressed.append(flags)
        return [
            PackedResult(
                reasons=reasons[start:stop],
                types=types[start:stop],
                e164=e164.slice(start, stop - start),
                e164_int=e164_int[start:stop],
                extensions=extensions.slice(start, stop - start),
                region_ids=region.ids[start:stop],
                region_table=region.tables[chunk],
                zone_ids=zones.ids[start:stop],
                zone_table=zones.tables[chunk],
                carrier_ids=carrier.ids[start:stop],
                carrier_table=carrier.tables[chunk],
                virtual=virtual[start:stop],
                suppressed=[flags[start:stop] for flags in suppressed],
            )
            for chunk, (start, stop) in enumerate(
                zip(starts.tolist(), [*starts[1:].tolist(), size], strict=True)
            )
        ]

    def prepare(self) -> None:
        """Build the default country's prefix indexes now (before forking workers)."""
        country = self._default.plan.country_code
        self._index(self._geo, 0, country)
        self._index(self._tz, 4, country)
        self._index(self._carrier, 2, country)

    # -- canonicalisation -----------------------------------------------------------------------

    def _canonicalise(self, raw: pa.Array) -> tuple[BoolArray, pa.Array, BoolArray, pa.Array]:
        """Rows the grammar covers, their digits, leading-"+" flags and extensions."""
        size = len(raw)
        short = _mask(pc.less_equal(pc.utf8_length(raw), _MAX_INPUT_LENGTH))
        plain = _mask(pc.match_substring_regex(raw, _PLAIN)) & short
        cjk = _matches(raw, ~plain & short, "转|轉|分机|分機|內線|内线")
        ext = _matches(raw, ~plain & ~cjk & short, "ext|EXT|Ext")
        text = raw
        extension = pa.nulls(size, pa.string())
        for flags, pattern in ((cjk, _CJK), (ext, _EXT)):
            index = np.flatnonzero(flags)
            if not len(index):
                continue
            parts = pc.extract_regex(_take(raw, index), pattern)
            matched = _mask(parts.is_valid())
            flags[index[~matched]] = False
            number = pc.struct_field(parts, "number")
            value = pc.struct_field(parts, "ext")
            where = np.zeros(size, dtype=np.bool_)
            where[index[matched]] = True
            scatter = np.full(size, -1, dtype=np.int64)
            scatter[index] = np.arange(len(index))
            gather = pa.array(np.where(where, scatter, 0), type=pa.int64())
            mask = pa.array(where)
            text = pc.if_else(mask, number.take(gather), text)
            extension = pc.if_else(mask, value.take(gather), extension)
        covered = plain | cjk | ext
        canonical = pc.replace_substring_regex(text, _SEPARATOR_CLASS, "")
        # Covered rows hold only separators (deleted above), digits and "+" in ASCII or full
        # width: NFKC folds exactly the full-width ones (rows not covered are not used).
        wide = np.flatnonzero(covered & ~_mask(pc.string_is_ascii(canonical)))
        if len(wide):
            canonical = _scatter(canonical, wide, pc.utf8_normalize(_take(canonical, wide), "NFKC"))
        extension = extension.fill_null("")
        if cjk.any():
            extension = pc.utf8_normalize(extension, "NFKC")
        # Only plain numbers may carry a "tel:" scheme (see PhoneNormaliser._normalise).
        tel = _mask(pc.match_substring_regex(canonical, _TEL)) & plain
        if tel.any():
            canonical = pc.if_else(pa.array(tel), pc.utf8_slice_codeunits(canonical, 4), canonical)
        covered &= _mask(pc.match_substring_regex(canonical, _CANONICAL_DIGITS))
        plus = _mask(pc.starts_with(canonical, "+"))
        digits = pc.if_else(pa.array(plus), pc.utf8_slice_codeunits(canonical, 1), canonical)
        return covered, digits, plus, extension

    # -- parsing ------------------------------------------------------------------------------

    def _parse(
        self, digits: pa.Array, plus: BoolArray
    ) -> tuple[BoolArray, npt.NDArray[np.int8], IntArray, pa.Array, npt.NDArray[np.int8]]:
        """``PhoneNormaliser._fast`` on columns: (answered, reason codes, cc, nsn, type codes)."""
        size = len(digits)
        default = self._default
        plan = default.plan
        length = _lengths(digits)
        declined = length < 3
        international = plus.copy()
        if self._idd is not None:
            if not self._idd_usable:
                declined |= ~plus
            else:
                rest = pc.replace_substring_regex(digits, self._idd, "", max_replacements=1)
                use = ~plus & (_lengths(rest) < length) & ~_mask(pc.starts_with(rest, "0"))
                if use.any():
                    digits = pc.if_else(pa.array(use), rest, digits)
                    length = _lengths(digits)
                    international |= use
        declined |= international & ((length <= 2) | _mask(pc.starts_with(digits, "0")))
        # Country codes of international numbers: the first 1-3 digits that are one.
        heads = _leading_numbers(digits, 3)
        known = [np.isin(head, _COUNTRY_CODES) for head in heads]
        cc_size = np.select(known, [1, 2, 3], 0)
        declined |= international & (cc_size == 0)
        cc = np.select(known, heads, 0)
        national = digits
        for k in (1, 2, 3):
            where = international & (cc_size == k)
            if where.any():
                national = pc.if_else(pa.array(where), pc.utf8_slice_codeunits(digits, k), national)
        # National numbers written with the country code but no "+" (e.g. "86-138...").
        home = ~international & ~declined
        cc[~international] = plan.country_code
        prefix = plan.country_code_str
        with_code = np.flatnonzero(home & _mask(pc.starts_with(digits, prefix)))
        if len(with_code):
            sub = _take(digits, with_code)
            candidate, refused = default.strip_national_prefix(
                pc.utf8_slice_codeunits(sub, len(prefix))
            )
            declined[with_code[refused]] = True
            choose = (~default.general(sub) & default.general(candidate)) | (
                default.length_result(_lengths(sub)) == ValidationResult.TOO_LONG
            )
            chosen = np.zeros(size, dtype=np.bool_)
            chosen[with_code[choose]] = True
            scatter = np.zeros(size, dtype=np.int64)
            scatter[with_code] = np.arange(len(with_code))
            national = pc.if_else(pa.array(chosen), candidate.take(pa.array(scatter)), national)
        # Per plan: national-prefix stripping, then type and validity.
        reasons = np.zeros(size, dtype=np.int8)
        types = np.zeros(size, dtype=np.int8)
        nsn_out = national
        pieces: list[tuple[npt.NDArray[np.intp], pa.Array]] = []
        group_key = np.where(international, cc, -1)
        for key in np.unique(group_key[~declined]).tolist():
            rows = np.flatnonzero((group_key == key) & ~declined)
            code = plan.country_code if key == -1 else int(key)
            columns = default if key == -1 else self._main_plan(code)
            if columns is None or not columns.plan.usable:
                declined[rows] = True
                continue
            number = _take(national, rows)
            nlen = _lengths(number)
            short = nlen < 2
            stripped, refused = columns.strip_national_prefix(number)
            use = ~np.isin(columns.length_result(_lengths(stripped)), _NOT_STRIPPED)
            number = pc.if_else(pa.array(use), stripped, number)
            nlen = _lengths(number)
            bad = short | refused | (nlen > _MAX_NSN_LENGTH) | _mask(pc.starts_with(number, "0"))
            declined[rows[bad]] = True
            keep = np.flatnonzero(~bad)
            if not len(keep):
                continue
            rows = rows[keep]
            number = _take(number, keep)
            reason, type_index, refused = self._classify(code, number, columns)
            declined[rows[refused]] = True
            reasons[rows] = reason
            types[rows] = type_index
            pieces.append((rows, number))
        if pieces:
            order = np.concatenate([rows for rows, _ in pieces])
            values = pa.concat_arrays([number for _, number in pieces])
            scatter = np.zeros(size, dtype=np.int64)
            scatter[order] = np.arange(len(order))
            nsn_out = values.take(pa.array(scatter))
        return ~declined, reasons, cc, nsn_out, types

    def _main_plan(self, country_code: int) -> _PlanColumns | None:
        regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
        if not regions:
            return None
        if regions[0] == self._default.plan.region:
            return self._default
        return _plan_columns(regions[0])

    def _classify(
        self, country_code: int, nsn: pa.Array, plan: _PlanColumns
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8], BoolArray]:
        """``PhoneNormaliser._classify`` on one country code's column."""
        size = len(nsn)
        regions = COUNTRY_CODE_TO_REGION_CODE[country_code]
        type_codes = np.full(size, _UNKNOWN_TYPE, dtype=np.int64)
        found = np.zeros(size, dtype=np.bool_)
        if len(regions) == 1:
            columns = plan if plan.plan.region == regions[0] else _plan_columns(regions[0])
            if columns is not None:
                type_codes = columns.number_type(nsn)
                found[:] = True
        else:
            todo = np.ones(size, dtype=np.bool_)
            for candidate in regions:
                columns = _plan_columns(candidate)
                if columns is None or not todo.any():
                    continue
                rows = np.flatnonzero(todo)
                subset = _take(nsn, rows)
                if columns.plan.leading_digits is not None:
                    pattern = f"^(?:{columns.plan.leading_digits.pattern})"
                    hit = _mask(pc.match_substring_regex(subset, pattern))
                    hit_rows = rows[hit]
                    if len(hit_rows):
                        type_codes[hit_rows] = columns.number_type(_take(nsn, hit_rows))
                else:
                    codes = columns.number_type(subset)
                    hit = codes != _UNKNOWN_TYPE
                    hit_rows = rows[hit]
                    type_codes[hit_rows] = codes[hit]
                found[hit_rows] = True
                todo[hit_rows] = False
        type_index = _TYPE_CODE_TO_INDEX[type_codes].astype(np.int8)
        invalid = ~found | (type_codes == _UNKNOWN_TYPE)
        reasons = np.zeros(size, dtype=np.int8)
        excluded = self.normaliser.excluded_types
        for number_type in excluded:
            reasons[type_index == _TYPE_INDEX[number_type]] = _REASON_INDEX[
                RejectReason.UNSUPPORTED_TYPE
            ]
        refused = np.zeros(size, dtype=np.bool_)
        if invalid.any():
            main = plan if plan.plan.region == regions[0] else _plan_columns(regions[0])
            if main is None or not main.plan.usable:
                refused = invalid
            else:
                result = main.length_result(_lengths(nsn))
                reason = np.full(size, _REASON_INDEX[RejectReason.INVALID_FOR_REGION])
                reason[result == ValidationResult.TOO_SHORT] = _REASON_INDEX[RejectReason.TOO_SHORT]
                reason[result == ValidationResult.TOO_LONG] = _REASON_INDEX[RejectReason.TOO_LONG]
                reasons[invalid] = reason[invalid]
            type_index[invalid] = 0
        return reasons, type_index, refused

    # -- enrichment ---------------------------------------------------------------------------

    def _finish_valid(
        self,
        rows: npt.NDArray[np.intp],
        nsn: pa.Array,
        cc: IntArray,
        types: npt.NDArray[np.int8],
        e164_int: IntArray,
        region: _Interner,
        zones: _Interner,
        carrier: _Interner,
        virtual: BoolArray,
        enrich: bool,
    ) -> tuple[npt.NDArray[np.intp], pa.Array]:
        """Enrichment of the rows answered by the column path; the valid ones and their E.164."""
        valid = types[rows] > 0
        rows = rows[valid]
        if not len(rows):
            return rows, pa.array([], pa.string())
        nsn = _take(nsn, np.flatnonzero(valid))
        code = cc[rows]
        code_text = pc.cast(pa.array(code), pa.string())
        e164 = pc.binary_join_element_wise("+", code_text, nsn, "")
        # The E.164 digits as an integer: the national number (no leading zero, at most
        # _MAX_NSN_LENGTH digits) after the country code, when the whole fits in int64.
        national_digits = _lengths(nsn)
        digits = _lengths(code_text) + national_digits
        slow = digits > _INT64_DIGITS
        values = np.asarray(pc.cast(nsn, pa.int64()).to_numpy(zero_copy_only=False))
        values = values.astype(np.int64)
        fits = ~slow
        values[fits] += code[fits] * _POW10[national_digits[fits]]
        values[slow] = 0
        e164_int[rows] = values
        if not enrich:
            return rows, e164
        type_index = types[rows]
        for country in np.unique(code).tolist():
            in_cc = code == country
            token = _MOBILE_TOKEN_MAPPINGS.get(country, "")
            if len(COUNTRY_CODE_TO_REGION_CODE.get(country, ())) != 1:
                slow |= in_cc
            elif token:
                slow |= in_cc & _mask(pc.starts_with(nsn, token))
        fast = ~slow
        for country in np.unique(code[fast]).tolist():
            picked = np.flatnonzero(fast & (code == country))
            self._enrich_country(
                int(country),
                rows[picked],
                values[picked],
                digits[picked],
                type_index[picked],
                region,
                zones,
                carrier,
                virtual,
            )
        slow_rows = np.flatnonzero(slow)
        if len(slow_rows):
            numbers_by_row = {
                row: (int(cc[row]), national)
                for row, national in zip(
                    rows[slow_rows].tolist(), _take(nsn, slow_rows).to_pylist(), strict=True
                )
            }
            self._enrich_rows(
                rows[slow_rows], numbers_by_row, types, region, zones, carrier, virtual
            )
        return rows, e164

    def _index(self, cache: dict[int, _PrefixIndex], which: int, country: int) -> _PrefixIndex:
        index = cache.get(country)
        if index is None:
            index = cache[country] = _prefix_index(which, country, self.language)
        return index

    def _enrich_country(
        self,
        country: int,
        rows: npt.NDArray[np.intp],
        values: IntArray,
        digits: IntArray,
        type_index: npt.NDArray[np.int8],
        region: _Interner,
        zones: _Interner,
        carrier: _Interner,
        virtual: BoolArray,
    ) -> None:
        fixed = _TYPE_INDEX[NumberType.FIXED_LINE]
        either = _TYPE_INDEX[NumberType.FIXED_LINE_OR_MOBILE]
        mobile = _TYPE_INDEX[NumberType.MOBILE]
        geographical = (type_index == fixed) | (type_index == either)
        if country in _GEO_MOBILE_COUNTRIES:
            geographical |= type_index == mobile
        enricher = self.enricher
        country_name = enricher._country_name(country)
        country_zones = enricher._country_time_zones(country)
        chunks = region.chunk_of(rows)
        # Region description: geocoding prefix table for geographical numbers.
        region_ids = region.intern_each(country_name, chunks)
        zone_ids = zones.intern_each(country_zones, chunks)
        # Longest-prefix searches on the numbers in ascending order (see _PrefixIndex.find).
        scaled = values * _POW10[_INT64_DIGITS - digits]
        order = np.argsort(scaled, kind="stable")
        geo_rows = order[geographical[order]]
        if len(geo_rows):
            geo = self._index(self._geo, 0, country)
            found = geo.find(scaled[geo_rows], digits[geo_rows])
            hit = (found >= 0) & ~np.isin(found, geo.empty_ids)
            _put(region, region_ids, geo_rows[hit], found[hit], geo.values, chunks)
            tz = self._index(self._tz, 4, country)
            found = tz.find(scaled[geo_rows], digits[geo_rows])
            hit = found >= 0
            unknown = zones.intern_each(_UNKNOWN_TIME_ZONES, chunks[geo_rows])
            zone_ids[geo_rows[~hit]] = unknown[~hit]
            _put(zones, zone_ids, geo_rows[hit], found[hit], tz.values, chunks)
        region.ids[rows] = region_ids
        zones.ids[rows] = zone_ids
        carrier_types = np.array([_TYPE_INDEX[t] for t in _CARRIER_TYPES], dtype=np.int8)
        carrier_rows = order[np.isin(type_index, carrier_types)[order]]
        if len(carrier_rows):
            index = self._index(self._carrier, 2, country)
            found = index.find(scaled[carrier_rows], digits[carrier_rows])
            hit = found >= 0
            carrier_ids = np.zeros(len(rows), dtype=np.int32)
            _put(carrier, carrier_ids, carrier_rows[hit], found[hit], index.values, chunks)
            carrier.ids[rows] = carrier_ids
        if country == _CHINA and self._virtual:
            # The first 2 + length digits of the E.164 number against "86" + each prefix.
            flags = np.zeros(len(rows), dtype=np.bool_)
            for length, heads in self._virtual.items():
                longer = np.flatnonzero(digits - 2 >= length)
                head = values[longer] // _POW10[digits[longer] - 2 - length]
                flags[longer] |= np.isin(head, heads)
            virtual[rows] = flags

    # -- the per-row path ---------------------------------------------------------------------

    def _per_row(
        self,
        values: list[str | None],
        rows: npt.NDArray[np.intp],
        reasons: npt.NDArray[np.int8],
        types: npt.NDArray[np.int8],
    ) -> tuple[dict[int, tuple[int, str]], list[str | None], list[str]]:
        """``PhoneNormaliser._normalise`` row by row: (cc, nsn) by row, E.164s, extensions."""
        normalise = self.normaliser._normalise
        memo = self._memo
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        numbers: dict[int, tuple[int, str]] = {}
        found: list[str | None] = []
        extensions: list[str] = []
        for row, raw in zip(rows.tolist(), values, strict=True):
            result = memo.get(raw)
            if result is None:
                result = memo[raw] = normalise(raw)
            reason, number, number_type, extension, country_code, nsn, _ = result
            reasons[row] = _REASON_INDEX[reason]
            types[row] = _TYPE_INDEX[number_type]
            found.append(number)
            extensions.append(extension)
            numbers[row] = (country_code, nsn)
        return numbers, found, extensions

    def _enrich_rows(
        self,
        rows: npt.NDArray[np.intp],
        numbers: dict[int, tuple[int, str]],
        types: npt.NDArray[np.int8],
        region: _Interner,
        zones: _Interner,
        carrier: _Interner,
        virtual: BoolArray,
    ) -> None:
        """Enrich rows of valid numbers one at a time with :meth:`Enricher.lookup` (rare cases)."""
        lookup = self.enricher.lookup
        table = self.enricher.virtual_table
        for row, chunk in zip(rows.tolist(), region.chunk_of(rows).tolist(), strict=True):
            number_type = TYPE_CODES[types[row]]
            if number_type is None:
                continue
            country_code, nsn = numbers[row]
            name, zone, carrier_name = lookup(country_code, nsn, number_type)
            region.ids[row] = region.intern(name, chunk)
            zones.ids[row] = zones.intern(zone, chunk)
            carrier.ids[row] = carrier.intern(carrier_name, chunk)
            virtual[row] = country_code == 86 and table.matches(nsn)


def _scatter(values: pa.Array, rows: npt.NDArray[np.intp], replacement: pa.Array) -> pa.Array:
    """``values`` with ``values[rows] = replacement``."""
    where = np.zeros(len(values), dtype=np.bool_)
    where[rows] = True
    gather = np.zeros(len(values), dtype=np.int64)
    gather[rows] = np.arange(len(rows))
    return pc.if_else(pa.array(where), replacement.take(pa.array(gather)), values)


def _gather(size: int, parts: list[tuple[npt.NDArray[np.intp], pa.Array]]) -> pa.Array:
    """A column of ``size`` rows holding ``values`` at ``rows`` for each part, null elsewhere."""
    if not parts:
        return pa.nulls(size, pa.string())
    gather = np.full(size, -1, dtype=np.int64)
    gather[np.concatenate([rows for rows, _ in parts])] = np.arange(sum(len(r) for r, _ in parts))
    values = pa.concat_arrays([values for _, values in parts])
    return values.take(pa.array(gather, mask=gather < 0))


def _put(
    interner: _Interner,
    ids: npt.NDArray[np.int32],
    rows: npt.NDArray[np.intp],
    source_ids: npt.NDArray[np.int32],
    source: list[Any],
    chunks: npt.NDArray[np.intp],
) -> None:
    """``ids[rows]``: the interned ``source[source_ids]`` (``chunks``: the chunk of each id)."""
    if not len(rows):
        return
    row_chunks = chunks[rows]
    for chunk in np.unique(row_chunks).tolist():
        picked = np.flatnonzero(row_chunks == chunk)
        unique, inverse = np.unique(source_ids[picked], return_inverse=True)
        mapped = np.array([interner.intern(source[int(u)], chunk) for u in unique], dtype=np.int32)
        ids[rows[picked]] = mapped[inverse]
