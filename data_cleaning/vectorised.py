"""Column-at-a-time normalisation and enrichment: the fast path for big lists.

:class:`VectorEngine` takes a whole chunk of raw phone cells and answers, per row, what
:meth:`PhoneNormaliser._normalise <data_cleaning.normalise.PhoneNormaliser>` and
:meth:`Enricher.lookup <data_cleaning.enrich.Enricher.lookup>` answer for one cell, with
pyarrow kernels and numpy instead of a Python loop:

* **canonicalisation**: a strict RE2 grammar recognises the usual shapes (digits with spaces,
  dashes, dots and brackets, full-width digits, ``+``, ``tel:``, extensions after ``转`` /
  ``轉`` / ``分机`` / ``分機`` / ``內線`` / ``内线`` and after ``ext``); separators are deleted and
  full-width characters folded to ASCII column-wise;
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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
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
    from data_cleaning.suppression import SuppressionSet

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
# Numbers with an explicit "ext" label, which libphonenumber strips as the extension.
_EXT: Final = (
    "^[ ]*(?P<number>\\+?[0-9][0-9 \\-]*[0-9])[ ]*(?:ext|EXT|Ext)\\.?[ ]*(?P<ext>[0-9]{1,7})[ ]*$"
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


@dataclass(slots=True)
class PackedResult:
    """Per-row answers of one chunk in compact form (cheap to send between processes).

    Codes index :data:`REASON_CODES` / :data:`TYPE_CODES`; ``*_ids`` index the tables.
    """

    reasons: npt.NDArray[np.int8]
    types: npt.NDArray[np.int8]
    e164: list[str | None]
    #: E.164 digits as an integer (0 when invalid or too long for int64).
    e164_int: IntArray
    extensions: list[str]
    region_ids: npt.NDArray[np.int32]
    region_table: list[str]
    zone_ids: npt.NDArray[np.int32]
    zone_table: list[tuple[str, ...]]
    carrier_ids: npt.NDArray[np.int32]
    carrier_table: list[str]
    virtual: npt.NDArray[np.bool_]
    #: Per suppression set given to :meth:`VectorEngine.process`: which rows it holds.
    suppressed: list[npt.NDArray[np.bool_]]


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _lengths(array: pa.Array) -> IntArray:
    return np.asarray(pc.binary_length(array).to_numpy(zero_copy_only=False), dtype=np.int64)


def _mask(array: pa.Array) -> BoolArray:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _full(pattern: re.Pattern[str] | None, values: pa.Array) -> BoolArray:
    """Fully anchored match of a compiled Python pattern, with RE2, over a column."""
    if pattern is None:
        return np.zeros(len(values), dtype=np.bool_)
    return _mask(pc.match_substring_regex(values, _anchored(pattern.pattern)))


def _take(values: pa.Array, index: npt.NDArray[np.intp]) -> pa.Array:
    return values.take(pa.array(index, type=pa.int64()))


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
        return _full(self.plan.general_pattern, values)

    def strip_national_prefix(self, values: pa.Array) -> tuple[pa.Array, BoolArray]:
        """``_RegionPlan.strip_national_prefix``: (result, declined)."""
        declined = np.zeros(len(values), dtype=np.bool_)
        if self.npp is None or not len(values):
            return values, declined
        if self.plan.national_prefix_transform:
            declined = _mask(pc.match_substring_regex(values, self.npp))
        rest = pc.replace_substring_regex(values, self.npp, "", max_replacements=1)
        stripped = _lengths(rest) < _lengths(values)
        if not stripped.any():
            return values, declined
        keep = self.general(values) & ~self.general(rest)
        use = stripped & ~keep
        return pc.if_else(pa.array(use), rest, values), declined

    def number_type(self, nsn: pa.Array) -> npt.NDArray[np.int64]:
        """``_RegionPlan.number_type`` for a column: libphonenumber type codes."""
        plan = self.plan
        size = len(nsn)
        result = np.full(size, _UNKNOWN_TYPE, dtype=np.int64)
        if plan.general.pattern is None or not size:
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
    if desc.pattern is None:
        return out
    candidates = where.copy()
    if desc.lengths:
        candidates &= np.isin(lengths, np.fromiter(desc.lengths, dtype=np.int64))
    index = np.flatnonzero(candidates)
    if not len(index):
        return out
    subset = values if len(index) == len(values) else _take(values, index)
    out[index] = _full(desc.pattern, subset)
    return out


@cache
def _plan_columns(region: str) -> _PlanColumns | None:
    plan = _plan_for_region(region)
    return _PlanColumns(plan) if plan is not None else None


class _PrefixIndex:
    """One of libphonenumber's prefix tables, for one country code, as sorted integer keys."""

    def __init__(self, data: dict[str, Any], country: str, resolve: Any) -> None:
        keys = [
            key
            for key in data
            if (key.startswith(country) or country.startswith(key))
            and 0 < len(key) <= _INT64_DIGITS
            and key.isdigit()
        ]
        resolved = [resolve(data[key]) for key in keys]
        kept = [k for k, value in enumerate(resolved) if value is not None]
        value_ids: dict[Any, int] = {}
        ids = np.array(
            [value_ids.setdefault(resolved[k], len(value_ids)) for k in kept], dtype=np.int32
        )
        self.values: list[Any] = list(value_ids)
        numbers = np.array([int(keys[k]) for k in kept], dtype=np.int64)
        lengths = np.array([len(keys[k]) for k in kept], dtype=np.int64)
        self.empty_ids = np.array(
            [i for i, value in enumerate(self.values) if value == ""], dtype=np.int32
        )
        self.tables: list[tuple[int, IntArray, npt.NDArray[np.int32]]] = []
        for length in sorted(set(lengths.tolist()), reverse=True):
            where = np.flatnonzero(lengths == length)
            order = where[np.argsort(numbers[where], kind="stable")]
            self.tables.append((length, numbers[order], ids[order]))

    def find(self, numbers: IntArray, digits: IntArray) -> npt.NDArray[np.int32]:
        """Value id of the longest key prefixing each number (-1: none)."""
        found = np.full(len(numbers), -1, dtype=np.int32)
        todo = np.ones(len(numbers), dtype=np.bool_)
        for length, keys, ids in self.tables:
            rows = np.flatnonzero(todo & (digits >= length))
            if not len(rows):
                continue
            prefixes = numbers[rows] // _POW10[digits[rows] - length]
            pos = np.minimum(np.searchsorted(keys, prefixes), len(keys) - 1)
            hit = keys[pos] == prefixes
            found[rows[hit]] = ids[pos[hit]]
            todo[rows[hit]] = False
        return found


@cache
def _prefix_index(which: int, country: int, language: str) -> _PrefixIndex:
    """The prefix index of table ``which`` of :func:`_prefix_tables` (0 geo, 2 carrier, 4 tz)."""
    data = prefix_table(which)
    if which == 4:
        return _PrefixIndex(data, str(country), tuple)

    def resolve(entry: Any) -> str | None:
        name = _find_lang(entry, language, None, None)
        return str(name) if name is not None else None

    return _PrefixIndex(data, str(country), resolve)


class _Interner:
    """Builds a small per-chunk table of distinct values and per-row ids."""

    def __init__(self, size: int, blank: Any) -> None:
        self.ids = np.zeros(size, dtype=np.int32)
        self.table: list[Any] = [blank]
        self._index: dict[Any, int] = {blank: 0}

    def intern(self, value: Any) -> int:
        vid = self._index.get(value)
        if vid is None:
            vid = self._index[value] = len(self.table)
            self.table.append(value)
        return vid


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
        self._virtual = {
            length: pa.array(sorted(p for p in virtual.prefixes if len(p) == length))
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
        suppression: Sequence[SuppressionSet] = (),
        *,
        enrich: bool = True,
    ) -> PackedResult:
        """Normalise and enrich raw cells; flag valid numbers held by ``suppression`` sets."""
        size = len(phones)
        if isinstance(phones, pa.Array):
            raw = phones if phones.type == pa.string() else phones.cast(pa.string())
        else:
            raw = pa.array(phones, type=pa.string())
        reasons = np.zeros(size, dtype=np.int8)
        types = np.zeros(size, dtype=np.int8)
        extensions = np.full(size, "", dtype=object)
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
            ext_rows = np.flatnonzero(_mask(pc.not_equal(ext, "")) & done)
            if len(ext_rows):
                extensions[ext_rows] = _objects(_take(ext, ext_rows))
        blank = np.flatnonzero(~done & _mask(pc.match_substring_regex(raw, _BLANK)))
        reasons[blank] = _REASON_INDEX[RejectReason.EMPTY]
        done[blank] = True

        e164 = np.full(size, None, dtype=object)
        e164_int = np.zeros(size, dtype=np.int64)
        region = _Interner(size, "")
        zones = _Interner(size, ())
        carrier = _Interner(size, "")
        virtual = np.zeros(size, dtype=np.bool_)
        if nsn_parts:
            rows, nsn = nsn_parts[0]
            self._finish_valid(
                rows, nsn, cc, types, e164, e164_int, region, zones, carrier, virtual, enrich
            )

        fallback = np.flatnonzero(~done)
        self.fallback_rows = len(fallback)
        if len(fallback):
            values = _take(raw, fallback).to_pylist()
            numbers = self._per_row(values, fallback, reasons, types, e164, extensions)
            if enrich:
                self._enrich_rows(fallback, numbers, types, e164, region, zones, carrier, virtual)
        suppressed: list[npt.NDArray[np.bool_]] = []
        if suppression:
            valid = np.flatnonzero(reasons == 0)
            numbers_valid = e164[valid].tolist()
            for dnc in suppression:
                flags = np.zeros(size, dtype=np.bool_)
                flags[valid] = dnc.contains_many(numbers_valid)
                suppressed.append(flags)
        return PackedResult(
            reasons=reasons,
            types=types,
            e164=e164.tolist(),
            e164_int=e164_int,
            extensions=extensions.tolist(),
            region_ids=region.ids,
            region_table=region.table,
            zone_ids=zones.ids,
            zone_table=zones.table,
            carrier_ids=carrier.ids,
            carrier_table=carrier.table,
            virtual=virtual,
            suppressed=suppressed,
        )

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
        cjk = ~plain & short & _mask(pc.match_substring_regex(raw, "转|轉|分机|分機|內線|内线"))
        ext = ~plain & ~cjk & short & _mask(pc.match_substring_regex(raw, "ext|EXT|Ext"))
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
        heads = [
            np.asarray(
                pc.cast(
                    pc.if_else(
                        pa.array(length >= k),
                        pc.utf8_slice_codeunits(digits, 0, k),
                        "0",
                    ),
                    pa.int64(),
                ).to_numpy(zero_copy_only=False),
                dtype=np.int64,
            )
            for k in (1, 2, 3)
        ]
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
        e164: npt.NDArray[np.object_],
        e164_int: IntArray,
        region: _Interner,
        zones: _Interner,
        carrier: _Interner,
        virtual: BoolArray,
        enrich: bool,
    ) -> None:
        """E.164 strings and enrichment of the rows answered by the column path."""
        valid = types[rows] > 0
        rows = rows[valid]
        if not len(rows):
            return
        nsn = _take(nsn, np.flatnonzero(valid))
        code = cc[rows]
        code_text = pc.cast(pa.array(code), pa.string())
        numbers = pc.binary_join_element_wise(code_text, nsn, "")
        e164[rows] = _objects(pc.binary_join_element_wise("+", numbers, ""))
        digits = _lengths(numbers)
        values = np.asarray(
            pc.cast(
                pc.if_else(pa.array(digits <= _INT64_DIGITS), numbers, "0"), pa.int64()
            ).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
        slow = digits > _INT64_DIGITS
        e164_int[rows] = np.where(slow, 0, values)
        if not enrich:
            return
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
                _take(nsn, picked),
                region,
                zones,
                carrier,
                virtual,
            )
        slow_rows = np.flatnonzero(slow)
        if len(slow_rows):
            numbers_by_row = {
                int(row): (int(cc[row]), str(e164[row])[1 + len(str(int(cc[row]))) :])
                for row in rows[slow_rows]
            }
            self._enrich_rows(
                rows[slow_rows], numbers_by_row, types, e164, region, zones, carrier, virtual
            )

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
        nsn: pa.Array,
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
        # Region description: geocoding prefix table for geographical numbers.
        region_ids = np.full(len(rows), region.intern(country_name), dtype=np.int32)
        zone_ids = np.full(len(rows), zones.intern(country_zones), dtype=np.int32)
        geo_rows = np.flatnonzero(geographical)
        if len(geo_rows):
            geo = self._index(self._geo, 0, country)
            found = geo.find(values[geo_rows], digits[geo_rows])
            hit = (found >= 0) & ~np.isin(found, geo.empty_ids)
            _put(region, region_ids, geo_rows[hit], found[hit], geo.values)
            tz = self._index(self._tz, 4, country)
            found = tz.find(values[geo_rows], digits[geo_rows])
            hit = found >= 0
            zone_ids[geo_rows[~hit]] = zones.intern(_UNKNOWN_TIME_ZONES)
            _put(zones, zone_ids, geo_rows[hit], found[hit], tz.values)
        region.ids[rows] = region_ids
        zones.ids[rows] = zone_ids
        carrier_types = np.array([_TYPE_INDEX[t] for t in _CARRIER_TYPES], dtype=np.int8)
        carrier_rows = np.flatnonzero(np.isin(type_index, carrier_types))
        if len(carrier_rows):
            index = self._index(self._carrier, 2, country)
            found = index.find(values[carrier_rows], digits[carrier_rows])
            hit = found >= 0
            carrier_ids = np.zeros(len(rows), dtype=np.int32)
            _put(carrier, carrier_ids, carrier_rows[hit], found[hit], index.values)
            carrier.ids[rows] = carrier_ids
        if country == 86 and self._virtual:
            flags = np.zeros(len(rows), dtype=np.bool_)
            for length, prefixes in self._virtual.items():
                flags |= _mask(
                    pc.is_in(pc.utf8_slice_codeunits(nsn, 0, length), value_set=prefixes)
                ) & (_lengths(nsn) >= length)
            virtual[rows] = flags

    # -- the per-row path ---------------------------------------------------------------------

    def _per_row(
        self,
        values: list[str | None],
        rows: npt.NDArray[np.intp],
        reasons: npt.NDArray[np.int8],
        types: npt.NDArray[np.int8],
        e164: npt.NDArray[np.object_],
        extensions: npt.NDArray[np.object_],
    ) -> dict[int, tuple[int, str]]:
        """``PhoneNormaliser._normalise`` row by row; returns (cc, nsn) by row."""
        normalise = self.normaliser._normalise
        memo = self._memo
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        numbers: dict[int, tuple[int, str]] = {}
        for row, raw in zip(rows.tolist(), values, strict=True):
            result = memo.get(raw)
            if result is None:
                result = memo[raw] = normalise(raw)
            reason, number, number_type, extension, country_code, nsn, _ = result
            reasons[row] = _REASON_INDEX[reason]
            types[row] = _TYPE_INDEX[number_type]
            e164[row] = number
            extensions[row] = extension
            numbers[row] = (country_code, nsn)
        return numbers

    def _enrich_rows(
        self,
        rows: npt.NDArray[np.intp],
        numbers: dict[int, tuple[int, str]],
        types: npt.NDArray[np.int8],
        e164: npt.NDArray[np.object_],
        region: _Interner,
        zones: _Interner,
        carrier: _Interner,
        virtual: BoolArray,
    ) -> None:
        """Enrich rows one at a time with :meth:`Enricher.lookup` (rare cases)."""
        lookup = self.enricher.lookup
        table = self.enricher.virtual_table
        for row in rows.tolist():
            number_type = TYPE_CODES[types[row]]
            if e164[row] is None or number_type is None:
                continue
            country_code, nsn = numbers[row]
            name, zone, carrier_name = lookup(country_code, nsn, number_type)
            region.ids[row] = region.intern(name)
            zones.ids[row] = zones.intern(zone)
            carrier.ids[row] = carrier.intern(carrier_name)
            virtual[row] = country_code == 86 and table.matches(nsn)


def _scatter(values: pa.Array, rows: npt.NDArray[np.intp], replacement: pa.Array) -> pa.Array:
    """``values`` with ``values[rows] = replacement``."""
    where = np.zeros(len(values), dtype=np.bool_)
    where[rows] = True
    gather = np.zeros(len(values), dtype=np.int64)
    gather[rows] = np.arange(len(rows))
    return pc.if_else(pa.array(where), replacement.take(pa.array(gather)), values)


def _objects(values: pa.Array) -> npt.NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    out[:] = values.to_pylist()
    return out


def _put(
    interner: _Interner,
    ids: npt.NDArray[np.int32],
    rows: npt.NDArray[np.intp],
    source_ids: npt.NDArray[np.int32],
    source: list[Any],
) -> None:
    if not len(rows):
        return
    unique, inverse = np.unique(source_ids, return_inverse=True)
    mapped = np.array([interner.intern(source[int(u)]) for u in unique], dtype=np.int32)
    ids[rows] = mapped[inverse]
