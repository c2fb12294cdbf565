"""Enrichment of valid numbers: region description, carrier, time zones, virtual-operator flag.

The lookups replay ``phonenumbers.geocoder.description_for_number``,
``phonenumbers.carrier.name_for_number`` and ``phonenumbers.timezone.time_zones_for_number``
directly on the E.164 digits with libphonenumber's own prefix tables, which avoids building
a ``PhoneNumber`` and re-deriving its type for every call. Rare cases (countries with a mobile
token, calling codes shared by several regions) call ``phonenumbers`` itself.

China's virtual-operator (MVNO) ranges are not marked by libphonenumber; they come from
``cn_virtual_operator_prefixes.csv`` in this package.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Final

import phonenumbers
from phonenumbers.phonenumberutil import (
    _GEO_MOBILE_COUNTRIES,
    _MOBILE_TOKEN_MAPPINGS,
    COUNTRY_CODE_TO_REGION_CODE,
)
from phonenumbers.prefix import _find_lang

from data_cleaning import prefix_cache
from data_cleaning.models import NumberType

__all__ = [
    "Enricher",
    "Enrichment",
    "VirtualOperatorTable",
    "load_virtual_operator_table",
]

_CHINA: Final = 86
_UNKNOWN_TIME_ZONES: Final = ("Etc/Unknown",)
_CARRIER_TYPES: Final = frozenset(
    {NumberType.MOBILE, NumberType.FIXED_LINE_OR_MOBILE, NumberType.PAGER}
)


@dataclass(frozen=True, slots=True)
class Enrichment:
    """What is known about a valid number beyond its E.164 form."""

    region: str
    time_zones: tuple[str, ...]
    carrier: str
    is_virtual_operator: bool


@dataclass(frozen=True, slots=True)
class VirtualOperatorTable:
    """National-number prefixes of China's virtual-operator ranges."""

    prefixes: frozenset[str]
    lengths: tuple[int, ...]

    def matches(self, national_number: str) -> bool:
        """Return whether a Chinese national number lies in a virtual-operator range."""
        return any(national_number[:n] in self.prefixes for n in self.lengths)


@lru_cache(maxsize=1)
def load_virtual_operator_table() -> VirtualOperatorTable:
    """Load the packaged prefix table of China's virtual-operator ranges."""
    text = (
        resources.files("data_cleaning")
        .joinpath("cn_virtual_operator_prefixes.csv")
        .read_text(encoding="utf-8")
    )
    prefixes = frozenset(row["prefix"].strip() for row in csv.DictReader(text.splitlines()))
    return VirtualOperatorTable(prefixes, tuple(sorted({len(p) for p in prefixes})))


@lru_cache(maxsize=1)
def _prefix_tables() -> tuple[dict[str, Any], int, dict[str, Any], int, dict[str, Any], int]:
    # Imported lazily: the geocoding table takes ~0.5 s and ~100 MB to load.
    from phonenumbers.carrierdata import CARRIER_DATA, CARRIER_LONGEST_PREFIX
    from phonenumbers.geodata import GEOCODE_DATA, GEOCODE_LONGEST_PREFIX
    from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

    return (
        GEOCODE_DATA,
        GEOCODE_LONGEST_PREFIX,
        CARRIER_DATA,
        CARRIER_LONGEST_PREFIX,
        TIMEZONE_DATA,
        TIMEZONE_LONGEST_PREFIX,
    )


def prefix_table(which: int) -> dict[str, Any]:
    """Prefix table ``which`` of :func:`_prefix_tables`: 0 geocoding, 2 carriers, 4 time zones."""
    table = _prefix_tables()[which]
    assert isinstance(table, dict)
    return table


@lru_cache(maxsize=3)
def _table_key_sizes(which: int) -> dict[str, tuple[int, ...]]:
    longest = _prefix_tables()[which + 1]
    assert isinstance(longest, int)
    return _key_sizes(prefix_table(which), longest)


def _key_sizes(data: dict[str, Any], longest: int) -> dict[str, tuple[int, ...]]:
    sizes: dict[str, set[int]] = {}
    for key in data:
        if 0 < len(key) <= longest:
            sizes.setdefault(key[0], set()).add(len(key))
    return {first: tuple(sorted(found, reverse=True)) for first, found in sizes.items()}


def _is_geographical(number_type: NumberType, country_code: int) -> bool:
    return (
        number_type is NumberType.FIXED_LINE
        or number_type is NumberType.FIXED_LINE_OR_MOBILE
        or (country_code in _GEO_MOBILE_COUNTRIES and number_type is NumberType.MOBILE)
    )


class Enricher:
    """Looks up region, carrier, time zones and the virtual flag; build once per language."""

    def __init__(self, language: str = "en", virtual_table: VirtualOperatorTable | None = None):
        self.language = language
        self.virtual_table = virtual_table or load_virtual_operator_table()
        # The prefix tables are loaded at first use (the geocoding one takes ~0.45 s): the
        # column-wise path reads its per-country indexes from the prefix cache instead.
        # A country's name in this language and its time zones, by calling code.
        self._countries: dict[int, tuple[str, tuple[str, ...]]] = {}

    def enrich(
        self, country_code: int, national_number: str, number_type: NumberType
    ) -> Enrichment:
        """Return the enrichment of a valid number."""
        region, zones, carrier = self.lookup(country_code, national_number, number_type)
        virtual = country_code == _CHINA and self.virtual_table.matches(national_number)
        return Enrichment(region, zones, carrier, virtual)

    def lookup(
        self, country_code: int, national_number: str, number_type: NumberType
    ) -> tuple[str, tuple[str, ...], str]:
        """Return ``(region description, time zones, carrier)`` of a valid number."""
        digits = f"{country_code}{national_number}"
        if len(COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())) != 1 or (
            _MOBILE_TOKEN_MAPPINGS.get(country_code, "")
            and national_number.startswith(_MOBILE_TOKEN_MAPPINGS[country_code])
        ):
            return self.reference(country_code, national_number)[:3]
        geographical = _is_geographical(number_type, country_code)
        region = ""
        if geographical:
            region = self._prefix_text(self._geo, self._geo_sizes, digits)
        if not region:
            region = self._country_name(country_code)
        if geographical:
            zones = self._prefix_zones(digits)
        else:
            zones = self._country_time_zones(country_code)
        carrier = ""
        if number_type in _CARRIER_TYPES:
            carrier = self._prefix_text(self._carrier, self._carrier_sizes, digits)
        return region, zones, carrier

    def reference(
        self, country_code: int, national_number: str
    ) -> tuple[str, tuple[str, ...], str, bool]:
        """The same answers from ``phonenumbers``' own functions (slow; checks, rare cases)."""
        from phonenumbers import carrier as pn_carrier
        from phonenumbers import geocoder as pn_geocoder
        from phonenumbers import timezone as pn_timezone

        number = phonenumbers.parse(f"+{country_code}{national_number}", None)
        region = pn_geocoder.description_for_number(number, self.language)
        zones = tuple(pn_timezone.time_zones_for_number(number))
        carrier = pn_carrier.name_for_number(number, self.language)
        virtual = country_code == _CHINA and self.virtual_table.matches(national_number)
        return region, zones, carrier, virtual

    @property
    def _geo(self) -> dict[str, Any]:
        return prefix_table(0)

    @property
    def _carrier(self) -> dict[str, Any]:
        return prefix_table(2)

    @property
    def _tz(self) -> dict[str, Any]:
        return prefix_table(4)

    @property
    def _geo_sizes(self) -> dict[str, tuple[int, ...]]:
        return _table_key_sizes(0)

    @property
    def _carrier_sizes(self) -> dict[str, tuple[int, ...]]:
        return _table_key_sizes(2)

    @property
    def _tz_sizes(self) -> dict[str, tuple[int, ...]]:
        return _table_key_sizes(4)

    def _prefix_text(
        self, data: dict[str, Any], sizes: dict[str, tuple[int, ...]], digits: str
    ) -> str:
        for size in sizes.get(digits[0], ()):
            if size > len(digits):
                continue
            entry = data.get(digits[:size])
            if entry is not None:
                name = _find_lang(entry, self.language, None, None)
                if name is not None:
                    return str(name)
        return ""

    def _prefix_zones(self, digits: str) -> tuple[str, ...]:
        for size in self._tz_sizes.get(digits[0], ()):
            if size > len(digits):
                continue
            zones = self._tz.get(digits[:size])
            if zones is not None:
                return tuple(zones)
        return _UNKNOWN_TIME_ZONES

    def _country_name(self, country_code: int) -> str:
        return self._country_facts(country_code)[0]

    def _country_time_zones(self, country_code: int) -> tuple[str, ...]:
        return self._country_facts(country_code)[1]

    def _country_facts(self, country_code: int) -> tuple[str, tuple[str, ...]]:
        """The country's name in this language and its time zones (one cache read each)."""
        facts = self._countries.get(country_code)
        if facts is None:
            facts = self._countries[country_code] = self._load_country_facts(country_code)
        return facts

    def _load_country_facts(self, country_code: int) -> tuple[str, tuple[str, ...]]:
        name = f"country-{country_code}-{self.language}"
        stored = prefix_cache.load_json(name)
        if (
            isinstance(stored, list)
            and len(stored) == 2
            and isinstance(stored[0], str)
            and isinstance(stored[1], list)
            and all(isinstance(zone, str) for zone in stored[1])
        ):
            return stored[0], tuple(stored[1])
        from phonenumbers import geocoder as pn_geocoder
        from phonenumbers import timezone as pn_timezone

        number = phonenumbers.PhoneNumber(country_code=country_code, national_number=0)
        found = str(pn_geocoder.country_name_for_number(number, self.language))
        zones = tuple(pn_timezone._country_level_time_zones_for_number(number))
        prefix_cache.store_json(name, [found, list(zones)])
        return found, zones
