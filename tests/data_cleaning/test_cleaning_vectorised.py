"""The column-at-a-time fast path against the per-row path and phonenumbers, row by row."""

from __future__ import annotations

import hmac
import random
import re
from hashlib import sha256

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from data_cleaning import Enricher, NumberType, PhoneNormaliser, SuppressionSet
from data_cleaning.normalise import _plan_for_region
from data_cleaning.vectorised import REASON_CODES, TYPE_CODES, VectorEngine, _plan_columns

REGIONS = ["CN", "HK", "TW", "MO", "US", "CA", "GB", "DE", "IN", "BR", "AR", "MX", "RU", "AU"]
_TYPES = [
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.VOIP,
    PhoneNumberType.SHARED_COST,
]
_WIDE = str.maketrans("0123456789+", "０１２３４５６７８９＋")
_ENRICHERS: dict[str, Enricher] = {}
_ENGINES: dict[tuple[str, frozenset[NumberType]], VectorEngine] = {}


def _engine(region: str, excluded: frozenset[NumberType] = frozenset()) -> VectorEngine:
    key = (region, excluded)
    if key not in _ENGINES:
        enricher = _ENRICHERS.setdefault("en", Enricher("en"))
        _ENGINES[key] = VectorEngine(PhoneNormaliser(region, excluded), enricher)
    return _ENGINES[key]


def _check_rows(region: str, raws: list[str], excluded: frozenset[NumberType] = frozenset()):  # type: ignore[no-untyped-def]
    """Assert the column path gives the per-row answers for every cell; return the packed result."""
    engine = _engine(region, excluded)
    dnc = SuppressionSet(b"k" * 32)
    packed = engine.process(raws, [dnc])
    normaliser = PhoneNormaliser(region, excluded)
    enricher = engine.enricher
    e164s, extensions = packed.e164.to_pylist(), packed.extensions.to_pylist()
    for i, raw in enumerate(raws):
        reason, e164, number_type, extension, cc, nsn, _ = normaliser._normalise(raw)
        got = (
            REASON_CODES[packed.reasons[i]],
            e164s[i],
            TYPE_CODES[packed.types[i]],
            extensions[i],
        )
        assert got == (reason, e164, number_type, extension), raw
        if e164 is not None and number_type is not None:
            expected = enricher.lookup(cc, nsn, number_type)
            enrichment = (
                packed.region_table[packed.region_ids[i]],
                packed.zone_table[packed.zone_ids[i]],
                packed.carrier_table[packed.carrier_ids[i]],
            )
            assert enrichment == expected, raw
            assert bool(packed.virtual[i]) == (cc == 86 and enricher.virtual_table.matches(nsn))
            if packed.e164_int[i]:
                assert packed.e164_int[i] == int(e164[1:])
        else:
            assert packed.region_table[packed.region_ids[i]] == ""
            assert packed.zone_table[packed.zone_ids[i]] == ()
    return packed


def _shapes(number: phonenumbers.PhoneNumber, rng: random.Random) -> list[str]:
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    digits = e164[1:]
    ext = str(rng.randrange(1, 99999))
    return [
        e164,
        national,
        international,
        "00" + digits,
        "011" + digits,
        digits,
        f"{digits[:2]}-{digits[2:]}",
        f"tel:{e164}",
        national.translate(_WIDE),
        international.translate(_WIDE),
        f"{national} 转 {ext}",
        f"{e164}分機{ext}",
        f"{e164} ext {ext}",
        f" {national} ext.{ext} ",
        f"{e164};ext={ext}",
        f"{national};ext={ext} ",
        f"{national} x{ext}",
        f"({digits[:3]}) {digits[3:]}",
        re.sub(r"\d", lambda m: m.group(0) if rng.random() < 0.9 else "", national),
        national + str(rng.randrange(10)),
    ]


def _numbers(region: str, rng: random.Random, count: int) -> list[phonenumbers.PhoneNumber]:
    found: list[phonenumbers.PhoneNumber] = []
    for number_type in _TYPES:
        example = phonenumbers.example_number_for_type(region, number_type)
        if example is None:
            continue
        for _ in range(count):
            nsn = str(example.national_number)
            keep = rng.randrange(1, len(nsn) + 1)
            mutated = nsn[:keep] + "".join(str(rng.randrange(10)) for _ in nsn[keep:])
            found.append(
                phonenumbers.PhoneNumber(
                    country_code=example.country_code,
                    national_number=int(mutated),
                    italian_leading_zero=example.italian_leading_zero,
                )
            )
    return found


@pytest.mark.parametrize("default_region", ["CN", "US", "GB", "AR"])
def test_column_path_agrees_with_row_path_on_many_regions_and_shapes(default_region: str) -> None:
    rng = random.Random(f"vectorised-{default_region}")
    raws: list[str] = []
    for region in REGIONS:
        for number in _numbers(region, rng, 6):
            raws.extend(_shapes(number, rng))
    raws += ["", " ", "n/a", "无", "tel:", "+", "0000000000", "+999 123 4567", "12", "86-"]
    _check_rows(default_region, raws)


def test_column_path_covers_the_common_shapes() -> None:
    raws = [
        "13800138000",
        "+86 138 0013 8000",
        "0086 138-0013-8000",
        "86-13800138000",
        "tel:+86-138-0013-8000",
        "１３８００１３８０００",
        "＋８６ １３８ ００１３ ８０００",
        "(010) 6552-9988",
        "010-65529988 转 8021",
        "13800138000分機12",
        "+8613800138000 ext 77",
    ]
    engine = _engine("CN")
    packed = _check_rows("CN", raws)
    assert engine.fallback_rows == 0
    assert packed.extensions.to_pylist()[-3:] == ["8021", "12", "77"]


def test_column_path_covers_rfc3966_extensions() -> None:
    raws = ["+8613800138000;ext=77", "010-6552-9988;ext=1234567", "+8613800138000;ext=12345678"]
    engine = _engine("CN")
    packed = _check_rows("CN", raws)
    # Eight digits are beyond the grammar: that one is left to phonenumbers.
    assert engine.fallback_rows == 1
    assert packed.extensions.to_pylist() == ["77", "1234567", "12345678"]


def test_excluded_types_are_unsupported_in_both_paths() -> None:
    _check_rows(
        "CN",
        ["13800138000", "4001234567", "01065529988", "8008208820"],
        frozenset({NumberType.MOBILE, NumberType.TOLL_FREE}),
    )


_CELLS = st.one_of(
    st.text(max_size=24),
    st.text(alphabet="0123456789０１２３４５６７８９ +＋-()（）.#xext转分机:tel", max_size=24),
    st.from_regex(r"\A(\+|00|0)?[1-9][0-9]{6,12}( ?(ext|转|分机) ?[0-9]{1,5})?\Z"),
)


@settings(max_examples=60, deadline=None)
@given(raws=st.lists(_CELLS, min_size=1, max_size=30), region=st.sampled_from(["CN", "US", "DE"]))
def test_column_path_agrees_with_row_path_on_any_text(raws: list[str], region: str) -> None:
    _check_rows(region, raws)


@settings(max_examples=40, deadline=None)
@given(
    region=st.sampled_from(REGIONS),
    seed=st.integers(0, 2**32 - 1),
)
def test_column_path_agrees_with_phonenumbers(region: str, seed: int) -> None:
    rng = random.Random(seed)
    raws = [
        shape
        for number in _numbers(region, rng, 2)
        for shape in _shapes(number, rng)
        if "x" not in shape and "转" not in shape and "分" not in shape
    ]
    found = _engine("CN").process(raws).e164.to_pylist()
    for i, raw in enumerate(raws):
        try:
            parsed = phonenumbers.parse(raw, "CN")
            valid = phonenumbers.is_valid_number(parsed)
            e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164) if valid else None
        except phonenumbers.NumberParseException:
            e164 = None
        assert found[i] == e164, raw


def test_re2_reads_the_metadata_patterns_like_python() -> None:
    """Every national-number pattern of every region means the same to RE2 and to ``re``."""
    rng = random.Random(7)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        metadata = PhoneMetadata.metadata_for_region(region, None)
        assert metadata is not None
        plan = _plan_for_region(region)
        columns = _plan_columns(region)
        assert plan is not None
        assert columns is not None
        samples = [
            str(rng.randrange(10 ** (n - 1), 10**n)) for n in range(2, 18) for _ in range(20)
        ]
        for desc in (metadata.general_desc, metadata.mobile, metadata.fixed_line):
            if desc is not None and desc.example_number:
                samples.append(desc.example_number)
        values = pa.array(samples)
        codes = columns.number_type(values)
        assert codes.tolist() == [plan.number_type(s) for s in samples], region
        if plan.national_prefix is not None:
            pattern = f"^(?:{plan.national_prefix.pattern})"
            re2 = pc.match_substring_regex(values, pattern).to_pylist()
            assert re2 == [plan.national_prefix.match(s) is not None for s in samples], region


@pytest.mark.parametrize("key_size", [16, 32, 64, 65, 100])
def test_fast_hmac_is_hmac_sha256(key_size: int) -> None:
    key = bytes(range(key_size))
    numbers = ["+8613800138000", "+14155550123", "+442071838750"]
    digests = {hmac.digest(key, n.encode(), sha256) for n in numbers[:2]}
    dnc = SuppressionSet(key, digests)
    assert dnc.contains_many(numbers) == [True, True, False]
    assert numbers[0] in dnc
    assert numbers[2] not in dnc


def test_chunks_processed_together_get_the_results_of_separate_calls() -> None:
    rng = random.Random("chunks")
    raws = [
        shape
        for region in ["CN", "US", "HK", "GB"]
        for number in _numbers(region, rng, 2)
        for shape in _shapes(number, rng)
    ]
    raws += ["", "n/a", "+999 123 4567", "+1 201 555 0123", "00447911123456"] * 3
    rng.shuffle(raws)
    sizes = [len(raws) // 3, len(raws) // 3, len(raws) - 2 * (len(raws) // 3)]
    dnc = SuppressionSet.from_e164(["+8613800138000"], b"k" * 32)
    together = _engine("CN").process_chunks(raws, sizes, [dnc])
    start = 0
    for size, packed in zip(sizes, together, strict=True):
        alone = VectorEngine(PhoneNormaliser("CN"), Enricher("en")).process(
            raws[start : start + size], [dnc]
        )
        start += size
        for name in ("reasons", "types", "e164_int", "region_ids", "zone_ids", "carrier_ids"):
            assert getattr(packed, name).tolist() == getattr(alone, name).tolist(), name
        assert packed.e164.to_pylist() == alone.e164.to_pylist()
        assert packed.extensions.to_pylist() == alone.extensions.to_pylist()
        assert packed.virtual.tolist() == alone.virtual.tolist()
        assert [flags.tolist() for flags in packed.suppressed] == [
            flags.tolist() for flags in alone.suppressed
        ]
        # The tables too, in the same order: the report counts follow it.
        assert packed.region_table == alone.region_table
        assert packed.zone_table == alone.zone_table
        assert packed.carrier_table == alone.carrier_table


# ------------------------------------------------------------------ the prefix cache


def _same_index(a: object, b: object) -> bool:
    import numpy as np

    from data_cleaning.vectorised import _PrefixIndex

    assert isinstance(a, _PrefixIndex)
    assert isinstance(b, _PrefixIndex)
    return (
        a.values == b.values
        and a.empty_ids.tolist() == b.empty_ids.tolist()
        and len(a.tables) == len(b.tables)
        and all(
            la == lb and np.array_equal(ka, kb) and np.array_equal(ia, ib)
            for (la, ka, ia), (lb, kb, ib) in zip(a.tables, b.tables, strict=True)
        )
    )


@pytest.mark.parametrize(("which", "country"), [(0, 86), (2, 86), (4, 86), (0, 49), (4, 1)])
def test_a_prefix_index_read_from_the_cache_is_the_one_built(
    which: int, country: int, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_cleaning import vectorised

    monkeypatch.setenv("PILOTDIAL_CACHE_DIR", str(tmp_path))
    build = vectorised._prefix_index.__wrapped__  # without the in-process memo
    built = build(which, country, "en")
    assert list(tmp_path.rglob(f"prefix-{which}-{country}*.npz"))
    # Built again from the tables, the cache turned off: the same as read back from the cache.
    monkeypatch.setenv("PILOTDIAL_CACHE_DIR", "off")
    assert _same_index(build(which, country, "en"), built)
    monkeypatch.setenv("PILOTDIAL_CACHE_DIR", str(tmp_path))
    read = build(which, country, "en")
    assert _same_index(read, built)
    if which == 4:
        assert all(isinstance(zones, tuple) for zones in read.values)


def test_a_damaged_cache_entry_is_rebuilt_not_trusted(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_cleaning import vectorised

    monkeypatch.setenv("PILOTDIAL_CACHE_DIR", str(tmp_path))
    build = vectorised._prefix_index.__wrapped__
    built = build(0, 86, "zh")
    (entry,) = tmp_path.rglob("prefix-0-86-zh*.npz")
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated, as by a full disk
    assert _same_index(build(0, 86, "zh"), built)
    assert any("北京" in str(value) for value in built.values)


def test_the_cache_turned_off_writes_nothing(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_cleaning import vectorised

    monkeypatch.setenv("PILOTDIAL_CACHE_DIR", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    vectorised._prefix_index.__wrapped__(2, 44, "en")
    Enricher("en")._country_facts(44)
    assert not list(tmp_path.rglob("*"))
