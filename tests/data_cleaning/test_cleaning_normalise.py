"""Normalisation and enrichment: messy inputs, reasons, and the fast path against phonenumbers."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_cleaning import (
    CleaningOptionsError,
    Enricher,
    NumberType,
    PhoneNormaliser,
    RejectReason,
    split_extension,
)

CN = PhoneNormaliser("CN")


@pytest.mark.parametrize(
    ("raw", "e164", "extension"),
    [
        ("13800138000", "+8613800138000", ""),
        ("+86 138 0013 8000", "+8613800138000", ""),
        ("0086 138-0013-8000", "+8613800138000", ""),
        ("86-13800138000", "+8613800138000", ""),
        ("tel:+86-138-0013-8000", "+8613800138000", ""),
        ("１３８００１３８０００", "+8613800138000", ""),
        ("＋８６ １３８ ００１３ ８０００", "+8613800138000", ""),
        ("(010) 6552-9988", "+861065529988", ""),
        ("010-65529988 转 8021", "+861065529988", "8021"),
        ("010-65529988轉8021", "+861065529988", "8021"),
        ("13800138000 分机 12", "+8613800138000", "12"),
        ("13800138000分機12", "+8613800138000", "12"),
        ("010 6552 9988 ext 77", "+861065529988", "77"),
        ("010 6552 9988 x77", "+861065529988", "77"),
        ("tel:+86-10-6552-9988;ext=5", "+861065529988", "5"),
        ("+852 2123 4567", "+85221234567", ""),
        ("+1 (650) 253-0000", "+16502530000", ""),
        ("1795113800138000", "+8613800138000", ""),
    ],
)
def test_messy_formats_normalise_to_e164(raw: str, e164: str, extension: str) -> None:
    result = CN.normalise(raw)
    assert result.reject_reason is None
    assert result.e164 == e164
    assert result.extension == extension


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", RejectReason.EMPTY),
        ("   ", RejectReason.EMPTY),
        ("n/a", RejectReason.NOT_A_NUMBER),
        ("无", RejectReason.NOT_A_NUMBER),
        ("123", RejectReason.TOO_SHORT),
        ("138001380001234567", RejectReason.TOO_LONG),
        ("1380013800", RejectReason.INVALID_FOR_REGION),
        ("+999 123 4567", RejectReason.INVALID_FOR_REGION),
    ],
)
def test_invalid_inputs_get_their_reason(raw: str, reason: RejectReason) -> None:
    result = CN.normalise(raw)
    assert result.reject_reason is reason
    assert result.e164 is None


def test_types_and_exclusion() -> None:
    assert CN.normalise("13800138000").number_type is NumberType.MOBILE
    assert CN.normalise("010-65529988").number_type is NumberType.FIXED_LINE
    assert CN.normalise("800 810 8888").number_type is NumberType.TOLL_FREE
    strict = PhoneNormaliser("CN", excluded_types=[NumberType.TOLL_FREE])
    rejected = strict.normalise("800 810 8888")
    assert rejected.reject_reason is RejectReason.UNSUPPORTED_TYPE
    assert rejected.e164 == "+868008108888"
    assert strict.normalise("13800138000").reject_reason is None


def test_default_region_is_used_for_national_numbers() -> None:
    hong_kong = PhoneNormaliser("hk")
    assert hong_kong.normalise("2123 4567").e164 == "+85221234567"
    assert CN.normalise("2123 4567").e164 is None


def test_unknown_region_is_refused() -> None:
    with pytest.raises(CleaningOptionsError, match="ZZ"):
        PhoneNormaliser("ZZ")


def test_split_extension_only_takes_chinese_markers() -> None:
    assert split_extension("138 0013 8000 转 12") == ("138 0013 8000", "12")
    assert split_extension("１３８ 分机 １２") == ("138", "12")
    assert split_extension("138 0013 8000 ext 12") == ("138 0013 8000 ext 12", "")


def _random_input(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 18)))
    if kind < 0.8:
        prefix = rng.choice(
            [
                "1",
                "13",
                "17",
                "10",
                "0",
                "00",
                "0086",
                "86",
                "+86",
                "+",
                "+1",
                "+44",
                "+39",
                "+7",
                "+54",
                "+852",
                "+800",
                "17951",
                "12593",
                "tel:+86",
                "（0755）",
            ]
        )
        body = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 12)))
        text = prefix + body
    else:
        region = rng.choice(["CN", "HK", "TW", "US", "GB", "IT", "AR", "DE", "RU", "KZ", "JP"])
        example = phonenumbers.example_number_for_type(region, rng.randrange(11))
        if example is None:
            return "12"
        text = phonenumbers.format_number(example, rng.randrange(3))
        if rng.random() < 0.5:
            position = rng.randrange(len(text))
            text = text[:position] + rng.choice("0123456789") + text[position + 1 :]
    if rng.random() < 0.3:
        text = " ".join(text[i : i + 3] for i in range(0, len(text), 3))
    if rng.random() < 0.1:
        text = text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return text


@pytest.mark.parametrize("region", ["CN", "HK", "TW", "US", "GB", "IT", "AR", "KZ"])
def test_fast_path_agrees_with_phonenumbers(region: str) -> None:
    normaliser = PhoneNormaliser(region)
    rng = random.Random(f"fast-path-{region}")
    inputs = [_random_input(rng) for _ in range(1500)]
    mismatches = [
        (raw, normaliser.normalise(raw), normaliser.reference(raw))
        for raw in inputs
        if normaliser.normalise(raw) != normaliser.reference(raw)
    ]
    assert mismatches == []
    # The check is only meaningful if the fast path answered most of them.
    assert normaliser.fast_hits > normaliser.fallbacks


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+- ()tel:转分机x#", min_size=0, max_size=22))
def test_fast_path_agrees_with_phonenumbers_on_any_text(raw: str) -> None:
    assert CN.normalise(raw) == CN.reference(raw)


def test_fast_type_patterns_agree_with_phonenumbers_for_every_region() -> None:
    rng = random.Random(11)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        normaliser = PhoneNormaliser(region)
        for number_type in range(11):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            variants = [national] + [
                national[:i] + str(rng.randrange(10)) + national[i + 1 :]
                for i in rng.sample(range(len(national)), min(3, len(national)))
            ]
            for variant in variants:
                raw = f"+{example.country_code} {variant}"
                assert normaliser.normalise(raw) == normaliser.reference(raw), (region, raw)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_enrichment_agrees_with_phonenumbers(language: str) -> None:
    enricher = Enricher(language)
    rng = random.Random(language)
    checked = 0
    for region in ["CN", "HK", "TW", "US", "GB", "DE", "AR", "MX", "SG", "JP", "IT"]:
        normaliser = PhoneNormaliser(region)
        for number_type in range(11):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            for _ in range(30):
                variant = national[:-4] + f"{rng.randrange(10**4):04d}"
                result = normaliser.normalise(f"+{example.country_code}{variant}")
                if result.e164 is None or result.number_type is None:
                    continue
                fast = enricher.enrich(
                    result.country_code, result.national_number, result.number_type
                )
                reference = enricher.reference(result.country_code, result.national_number)
                assert (fast.region, fast.time_zones, fast.carrier, fast.is_virtual_operator) == (
                    reference
                )
                checked += 1
    assert checked > 500


def test_enrichment_of_chinese_numbers() -> None:
    enricher = Enricher("zh")
    mobile = CN.normalise("13800138000")
    assert mobile.number_type is not None
    found = enricher.enrich(86, mobile.national_number, mobile.number_type)
    assert found.carrier == "中国移动"
    assert found.time_zones == ("Asia/Shanghai",)
    assert not found.is_virtual_operator
    beijing = Enricher("en").enrich(86, "1065529988", NumberType.FIXED_LINE)
    assert beijing.region == "Beijing"


@pytest.mark.parametrize(
    ("number", "virtual"),
    [
        ("17001234567", True),
        ("17101234567", True),
        ("16201234567", True),
        ("16501234567", True),
        ("16701234567", True),
        ("17201234567", False),
        ("13800138000", False),
    ],
)
def test_virtual_operator_flag_comes_from_the_prefix_table(number: str, virtual: bool) -> None:
    result = CN.normalise(number)
    assert result.e164 is not None
    assert result.number_type is not None
    enriched = Enricher().enrich(86, result.national_number, result.number_type)
    assert enriched.is_virtual_operator is virtual
