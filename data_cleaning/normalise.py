"""Phone-number normalisation: raw cell text to E.164, number type and reject reason.

Two paths give the same answers:

* the **fast path** handles the common shapes (digits with spaces, dashes, dots and
  brackets, an optional leading ``+``, full-width digits). It replays libphonenumber's own
  parsing and validation steps (international and national prefix stripping, country-code
  extraction, possible-length checks, the per-type national-number patterns) directly on
  the digit string, using the metadata and regular expressions that ``phonenumbers`` ships,
  compiled once per region. It skips the object building and generic text handling that make
  ``phonenumbers.parse`` cost ~30 µs per number.
* the **reference path** is ``phonenumbers`` itself (``parse`` / ``is_valid_number`` /
  ``number_type``) and answers everything the fast path declines: letters, ``tel:`` URIs,
  ``ext``/``x``/``#`` extensions, numbers with leading zeros after the country code,
  non-geographic country codes, and so on.

Before either path, extensions written with Chinese markers (``轉``, ``转``, ``分機``,
``分机``, ``內線``, ``内线``) are split off, since libphonenumber does not know them.
The tests cross-check both paths number by number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, ValidationResult

from data_cleaning.exceptions import CleaningOptionsError
from data_cleaning.models import NumberType, RejectReason

__all__ = [
    "NormalisedNumber",
    "PhoneNormaliser",
    "split_extension",
]

_UNKNOWN_TYPE: Final = 99
_TYPE_BY_CODE: Final[dict[int, NumberType]] = {
    0: NumberType.FIXED_LINE,
    1: NumberType.MOBILE,
    2: NumberType.FIXED_LINE_OR_MOBILE,
    3: NumberType.TOLL_FREE,
    4: NumberType.PREMIUM_RATE,
    5: NumberType.SHARED_COST,
    6: NumberType.VOIP,
    7: NumberType.PERSONAL_NUMBER,
    8: NumberType.PAGER,
    9: NumberType.UAN,
    10: NumberType.VOICEMAIL,
    99: NumberType.UNKNOWN,
}
_MAX_INPUT_LENGTH: Final = 250  # phonenumbers refuses longer strings
_MAX_NSN_LENGTH: Final = 17
_MIN_FAST_DIGITS: Final = 3

_FULL_WIDTH: Final = {0xFF10 + i: ord("0") + i for i in range(10)} | {0xFF0B: ord("+")}
# Characters libphonenumber treats as pure punctuation inside a number; deleting them does not
# change how it parses digits-only input.
_SEPARATORS: Final = (
    " \t\u00a0\u3000-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d().\uff08\uff09"
)
_CANONICAL: Final = str.maketrans({**_FULL_WIDTH, **dict.fromkeys(map(ord, _SEPARATORS))})
_TEL_PREFIXES: Final = frozenset({"tel:", "TEL:", "Tel:"})
_WIDTH_ONLY: Final = str.maketrans(_FULL_WIDTH)
_CJK_EXTENSION: Final = re.compile(
    r"^(?P<number>.*?)[\s,;，；]*(?:轉|转|分機|分机|內線|内线)[\s:：#＃]*(?P<ext>\d{1,10})[\s#＃]*$",
    re.DOTALL,
)

_PARSE_ERROR_REASON: Final[dict[int, RejectReason]] = {
    NumberParseException.INVALID_COUNTRY_CODE: RejectReason.INVALID_FOR_REGION,
    NumberParseException.NOT_A_NUMBER: RejectReason.NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: RejectReason.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: RejectReason.TOO_SHORT,
    NumberParseException.TOO_LONG: RejectReason.TOO_LONG,
}
_LENGTH_REASON: Final[dict[int, RejectReason]] = {
    ValidationResult.TOO_SHORT: RejectReason.TOO_SHORT,
    ValidationResult.TOO_LONG: RejectReason.TOO_LONG,
}


@dataclass(frozen=True, slots=True)
class NormalisedNumber:
    """The normalisation result of one raw cell."""

    #: ``None`` when the number is valid and of an accepted type.
    reject_reason: RejectReason | None
    #: E.164 form when the number is valid (also for ``unsupported_type``), else ``None``.
    e164: str | None
    number_type: NumberType | None
    extension: str
    country_code: int
    #: National significant number ("" when the text did not parse).
    national_number: str
    #: ISO region the number belongs to (``None`` when invalid).
    region_code: str | None


# Internal tuple form, built in the hot loop: (reason, e164, type, extension, cc, nsn, region)
_Result = tuple[RejectReason | None, str | None, NumberType | None, str, int, str, str | None]


def split_extension(raw: str) -> tuple[str, str]:
    """Split an extension written after a Chinese marker (转, 分机, ...) off ``raw``.

    Full-width digits are made ASCII first. Returns ``(number_text, extension)``; the
    extension is ``""`` when there is no such marker (``ext``, ``x`` and ``#`` are left for
    libphonenumber, which knows them).
    """
    text = raw.translate(_WIDTH_ONLY)
    match = _CJK_EXTENSION.match(text)
    if match is None:
        return text, ""
    return match.group("number"), match.group("ext")


class _Desc:
    """One PhoneNumberDesc: its possible lengths and pattern (compiled on first use)."""

    __slots__ = ("_compiled", "lengths", "source")

    def __init__(self, desc: Any) -> None:
        self.lengths: frozenset[int] = (
            frozenset(desc.possible_length or ()) if desc else frozenset()
        )
        #: The national-number pattern as libphonenumber writes it ("" when there is none).
        self.source: str = (desc.national_number_pattern or "") if desc else ""
        self._compiled: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        """The compiled pattern, ``None`` when there is none.

        Compiled lazily: the column-wise path hands the source to RE2 and never needs it, and
        a calling code shared by many regions (+1) would otherwise compile all of theirs.
        """
        if self._compiled is None and self.source:
            self._compiled = re.compile(self.source)
        return self._compiled

    def matches(self, nsn: str) -> bool:
        """libphonenumber's ``_is_number_matching_desc``."""
        if self.pattern is None:
            return False
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern.fullmatch(nsn) is not None


class _RegionPlan:
    """A region's metadata, pre-compiled for the fast path."""

    def __init__(self, region: str, metadata: Any) -> None:
        self.region = region
        self.country_code: int = metadata.country_code
        self.country_code_str = str(metadata.country_code)
        idd = metadata.international_prefix
        self.idd: re.Pattern[str] | None = re.compile(idd) if idd else None
        npp = metadata.national_prefix_for_parsing
        self.national_prefix: re.Pattern[str] | None = re.compile(npp) if npp else None
        self.national_prefix_transform: bool = bool(metadata.national_prefix_transform_rule)
        general = metadata.general_desc
        self.general = _Desc(general)
        self.possible_lengths: tuple[int, ...] = tuple(sorted(general.possible_length or ()))
        self.local_lengths = frozenset(general.possible_length_local_only or ())
        self.leading_digits: re.Pattern[str] | None = (
            re.compile(metadata.leading_digits) if metadata.leading_digits else None
        )
        self.same_mobile_and_fixed = bool(metadata.same_mobile_and_fixed_line_pattern)
        # The order of libphonenumber's _number_type_helper.
        self.special: tuple[tuple[int, _Desc], ...] = tuple(
            (code, _Desc(desc))
            for code, desc in (
                (4, metadata.premium_rate),
                (3, metadata.toll_free),
                (5, metadata.shared_cost),
                (6, metadata.voip),
                (7, metadata.personal_number),
                (8, metadata.pager),
                (9, metadata.uan),
                (10, metadata.voicemail),
            )
            if desc is not None and desc.national_number_pattern
        )
        self.fixed_line = _Desc(metadata.fixed_line)
        self.mobile = _Desc(metadata.mobile)
        self.usable = bool(self.possible_lengths)

    @property
    def general_pattern(self) -> re.Pattern[str] | None:
        """The compiled general-description pattern."""
        return self.general.pattern

    @cached_property
    def special_checks(self) -> tuple[tuple[int, frozenset[int], Any], ...]:
        """(type code, possible lengths, bound fullmatch) in the helper's order (hot loop)."""
        return tuple(
            (code, desc.lengths, desc.pattern.fullmatch)
            for code, desc in self.special
            if desc.pattern is not None
        )

    def general_match(self, number: str) -> bool:
        """libphonenumber's ``_match_national_number`` against the general description."""
        return (
            self.general_pattern is not None and self.general_pattern.fullmatch(number) is not None
        )

    def number_type(self, nsn: str) -> int:
        """libphonenumber's ``_number_type_helper``, as a PhoneNumberType code."""
        length = len(nsn)
        general = self.general
        if general.pattern is None or (general.lengths and length not in general.lengths):
            return _UNKNOWN_TYPE
        if general.pattern.fullmatch(nsn) is None:
            return _UNKNOWN_TYPE
        for code, lengths, fullmatch in self.special_checks:
            if (not lengths or length in lengths) and fullmatch(nsn) is not None:
                return code
        if self.fixed_line.matches(nsn):
            if self.same_mobile_and_fixed or self.mobile.matches(nsn):
                return 2
            return 0
        if not self.same_mobile_and_fixed and self.mobile.matches(nsn):
            return 1
        return _UNKNOWN_TYPE

    def length_result(self, number: str) -> int:
        """libphonenumber's ``_test_number_length`` for the UNKNOWN type."""
        length = len(number)
        if length in self.local_lengths:
            return ValidationResult.IS_POSSIBLE_LOCAL_ONLY
        lengths = self.possible_lengths
        if lengths[0] == length:
            return ValidationResult.IS_POSSIBLE
        if lengths[0] > length:
            return ValidationResult.TOO_SHORT
        if lengths[-1] < length:
            return ValidationResult.TOO_LONG
        if length in lengths[1:]:
            return ValidationResult.IS_POSSIBLE
        return ValidationResult.INVALID_LENGTH

    def strip_national_prefix(self, number: str) -> str | None:
        """libphonenumber's national-prefix stripping; ``None`` when a transform is needed."""
        if not number or self.national_prefix is None:
            return number
        match = self.national_prefix.match(number)
        if match is None:
            return number
        groups = match.groups()
        if self.national_prefix_transform and groups[-1] is not None:
            return None
        if self.general_match(number) and not self.general_match(number[match.end() :]):
            return number
        return number[match.end() :]


@cache
def _plan_for_region(region: str) -> _RegionPlan | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    return _RegionPlan(region, metadata) if metadata is not None else None


def _main_region(country_code: int) -> str:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    return regions[0] if regions else "ZZ"


_NOT_STRIPPED: Final = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)


class PhoneNormaliser:
    """Normalises raw phone cells for one default region; build once, call many times."""

    def __init__(
        self,
        default_region: str = "CN",
        excluded_types: Iterable[NumberType] = (),
    ) -> None:
        region = default_region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise CleaningOptionsError(
                f"unknown region {default_region!r}: use a two-letter ISO 3166 code that "
                "libphonenumber supports, such as CN, HK, TW or US"
            )
        plan = _plan_for_region(region)
        assert plan is not None  # every supported region has metadata
        self.default_region = region
        self.excluded_types = frozenset(NumberType(t) for t in excluded_types)
        self._plan = plan
        self.fast_hits = 0
        self.fallbacks = 0

    # -- public -----------------------------------------------------------------------------

    def normalise(self, raw: str | None) -> NormalisedNumber:
        """Normalise one raw cell (fast path with ``phonenumbers`` fallback)."""
        return NormalisedNumber(*self._normalise(raw))

    def normalise_many(self, raws: Sequence[str | None]) -> list[NormalisedNumber]:
        """Normalise a batch of raw cells."""
        return [NormalisedNumber(*self._normalise(raw)) for raw in raws]

    def reference(self, raw: str | None) -> NormalisedNumber:
        """Normalise one raw cell with ``phonenumbers`` alone (the slow, reference path)."""
        if raw is None or not raw.strip():
            return NormalisedNumber(RejectReason.EMPTY, None, None, "", 0, "", None)
        text, extension = split_extension(raw)
        return NormalisedNumber(*self._reference(text, extension))

    # -- internals ---------------------------------------------------------------------------

    def _normalise(self, raw: str | None) -> _Result:
        if raw is None:
            return (RejectReason.EMPTY, None, None, "", 0, "", None)
        canonical = raw.translate(_CANONICAL)
        if canonical[:4] in _TEL_PREFIXES:
            # libphonenumber skips text before the first digit or "+", so a bare "tel:" is noise.
            canonical = canonical[4:]
        if canonical.isascii() and len(raw) <= _MAX_INPUT_LENGTH:
            result: _Result | None = None
            if canonical.isdigit():
                result = self._fast(canonical, False, "")
            elif canonical[:1] == "+" and canonical[1:].isdigit():
                result = self._fast(canonical[1:], True, "")
            if result is not None:
                self.fast_hits += 1
                return result
        if not raw.strip():
            return (RejectReason.EMPTY, None, None, "", 0, "", None)
        text, extension = split_extension(raw)
        if extension:
            canonical = text.translate(_CANONICAL)
            if canonical.isascii() and len(text) <= _MAX_INPUT_LENGTH:
                result = None
                if canonical.isdigit():
                    result = self._fast(canonical, False, extension)
                elif canonical[:1] == "+" and canonical[1:].isdigit():
                    result = self._fast(canonical[1:], True, extension)
                if result is not None:
                    self.fast_hits += 1
                    return result
        self.fallbacks += 1
        return self._reference(text, extension)

    def _fast(self, digits: str, plus: bool, extension: str) -> _Result | None:
        """Replay phonenumbers.parse + is_valid_number on a digit string, or return None."""
        if len(digits) < _MIN_FAST_DIGITS:
            return None
        default = self._plan
        plan: _RegionPlan | None = default
        national: str | None
        international = plus
        if not plus and default.idd is not None:
            match = default.idd.match(digits)
            # Like libphonenumber: an IDD followed by 0 is not an IDD (no country code starts 0).
            if match is not None and digits[match.end() : match.end() + 1] != "0":
                digits = digits[match.end() :]
                international = True
        if international:
            if len(digits) <= 2 or digits[0] == "0":
                return None
            country_code = 0
            for size in (1, 2, 3):
                if size <= len(digits) and int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE:
                    country_code = int(digits[:size])
                    national = digits[size:]
                    break
            else:
                return None
            main_region = _main_region(country_code)
            if main_region != default.region:
                plan = _plan_for_region(main_region)
        else:
            country_code = default.country_code
            national = digits
            if digits.startswith(default.country_code_str):
                candidate = default.strip_national_prefix(digits[len(default.country_code_str) :])
                if candidate is None:
                    return None
                if (
                    not default.general_match(digits) and default.general_match(candidate)
                ) or default.length_result(digits) == ValidationResult.TOO_LONG:
                    national = candidate
        if plan is None or not plan.usable or len(national) < 2:
            return None
        stripped = plan.strip_national_prefix(national)
        if stripped is None:
            return None
        if plan.length_result(stripped) not in _NOT_STRIPPED:
            national = stripped
        if len(national) > _MAX_NSN_LENGTH or national[0] == "0":
            return None
        return self._classify(country_code, national, plan, extension)

    def _classify(self, country_code: int, nsn: str, plan: _RegionPlan, extension: str) -> _Result:
        regions = COUNTRY_CODE_TO_REGION_CODE[country_code]
        region: str | None = None
        type_code = _UNKNOWN_TYPE
        if len(regions) == 1:
            region = regions[0]
            region_plan = plan if plan.region == region else _plan_for_region(region)
            if region_plan is not None:
                type_code = region_plan.number_type(nsn)
        else:
            for candidate in regions:
                region_plan = _plan_for_region(candidate)
                if region_plan is None:
                    continue
                if region_plan.leading_digits is not None:
                    if region_plan.leading_digits.match(nsn):
                        region = candidate
                        type_code = region_plan.number_type(nsn)
                        break
                else:
                    type_code = region_plan.number_type(nsn)
                    if type_code != _UNKNOWN_TYPE:
                        region = candidate
                        break
        e164 = f"+{country_code}{nsn}"
        if region is None or type_code == _UNKNOWN_TYPE:
            # Like is_possible_number_with_reason: lengths of the country code's main region.
            main = plan if plan.region == regions[0] else _plan_for_region(regions[0])
            length = main.length_result(nsn) if main is not None and main.usable else -1
            invalid = _LENGTH_REASON.get(length, RejectReason.INVALID_FOR_REGION)
            return (invalid, None, None, extension, country_code, nsn, None)
        number_type = _TYPE_BY_CODE[type_code]
        reason = RejectReason.UNSUPPORTED_TYPE if number_type in self.excluded_types else None
        return (reason, e164, number_type, extension, country_code, nsn, region)

    def _reference(self, text: str, extension: str) -> _Result:
        try:
            number = phonenumbers.parse(text, self.default_region)
        except NumberParseException as error:
            failed = _PARSE_ERROR_REASON.get(error.error_type, RejectReason.NOT_A_NUMBER)
            return (failed, None, None, extension, 0, "", None)
        extension = extension or number.extension or ""
        country_code = int(number.country_code or 0)
        nsn = phonenumbers.national_significant_number(number)
        if not phonenumbers.is_valid_number(number):
            possible = phonenumbers.is_possible_number_with_reason(number)
            invalid = _LENGTH_REASON.get(possible, RejectReason.INVALID_FOR_REGION)
            return (invalid, None, None, extension, country_code, nsn, None)
        number_type = _TYPE_BY_CODE.get(phonenumbers.number_type(number), NumberType.UNKNOWN)
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        region = phonenumbers.region_code_for_number(number)
        reason = RejectReason.UNSUPPORTED_TYPE if number_type in self.excluded_types else None
        return (reason, e164, number_type, extension, country_code, nsn, region)
