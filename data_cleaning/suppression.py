"""Do-not-call suppression with keyed hashes: numbers are never held or stored in plain.

A :class:`SuppressionSet` holds HMAC-SHA256 digests of E.164 numbers under a secret key.
Plain SHA-256 of a phone number is reversible by enumerating the ~10^10 numbers of a country;
an HMAC is not without the key. Store :func:`suppression_entry` results (hash plus a masked
display form such as ``+86138****5678``) and rebuild sets with :meth:`SuppressionSet.from_hashes`.
"""

from __future__ import annotations

import hmac
import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from data_cleaning.columns import detect_phone_column, looks_like_phone
from data_cleaning.exceptions import DataCleaningError, SuppressionError
from data_cleaning.models import RejectReason
from data_cleaning.normalise import PhoneNormaliser
from data_cleaning.readers import open_table

if TYPE_CHECKING:
    from data_cleaning.vectorised import VectorEngine

__all__ = [
    "MIN_KEY_BYTES",
    "DncFileResult",
    "NumberSet",
    "Suppression",
    "SuppressionEntry",
    "SuppressionSet",
    "hash_e164",
    "load_dnc_file",
    "mask_e164",
    "suppression_entry",
]

MIN_KEY_BYTES: Final = 16
_INT64_DIGITS: Final = 18
_DIGEST_BYTES: Final = 32
_BLOCK_BYTES: Final = 64


def _sha256_factory() -> Callable[[bytes], Any]:
    # CPython's built-in SHA-256 has no per-call OpenSSL dispatch cost, which dominates for
    # the ~15-byte messages hashed here; hashlib's (OpenSSL) is the fallback.
    for name in ("_sha2", "_sha256"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        factory = getattr(module, "sha256", None)
        if factory is not None:
            return cast(Callable[[bytes], Any], factory)
    return sha256


_SHA256: Final = _sha256_factory()
# E.164 numbers, one a line: what _check_e164 accepts, for many numbers at once.
_E164_LINES: Final = re.compile(r"\+[0-9]+(?:\n\+[0-9]+)*")


class _Hmac:
    """HMAC-SHA256 under one key with the inner and outer pads hashed once (RFC 2104)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK_BYTES:
            key = sha256(key).digest()
        key = key.ljust(_BLOCK_BYTES, b"\0")
        self._inner = _SHA256(bytes(b ^ 0x36 for b in key))
        self._outer = _SHA256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return cast(bytes, outer.digest())

    def digests(self, numbers: Sequence[str]) -> list[bytes]:
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        found: list[bytes] = []
        append = found.append
        for number in numbers:
            inner = inner_copy()
            inner.update(number.encode("ascii"))
            outer = outer_copy()
            outer.update(inner.digest())
            append(outer.digest())
        return found

    def contains(self, numbers: Sequence[str], digests: set[bytes]) -> list[bool]:
        return [digest in digests for digest in self.digests(numbers)]


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise SuppressionError(
            f"the suppression hashing key must be at least {MIN_KEY_BYTES} random bytes: "
            "generate one with secrets.token_bytes(32) and keep it in the settings"
        )
    return bytes(key)


def _check_e164(e164: str) -> str:
    if not (e164.startswith("+") and e164[1:].isdigit() and e164[1:].isascii()):
        raise SuppressionError(
            f"{e164!r} is not an E.164 number: normalise it first (PhoneNormaliser)"
        )
    return e164


def hash_e164(e164: str, key: bytes) -> str:
    """Return the hex HMAC-SHA256 of an E.164 number under ``key``."""
    return hmac.digest(_check_key(key), _check_e164(e164).encode("ascii"), sha256).hex()


def mask_e164(e164: str) -> str:
    """Mask an E.164 number for display: ``+8613812345678`` becomes ``+86138****5678``."""
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    digits = _check_e164(e164)[1:]
    code_length = next((n for n in (1, 2, 3) if int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE), 0)
    country, national = digits[:code_length], digits[code_length:]
    tail = 4 if len(national) > 6 else 2
    head = min(3, max(0, len(national) - tail - 2))
    hidden = len(national) - head - tail
    return f"+{country}{national[:head]}{'*' * hidden}{national[len(national) - tail :]}"


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    """What to store for one suppressed number: its keyed hash and its masked display."""

    e164_hash: str
    masked: str


def suppression_entry(e164: str, key: bytes) -> SuppressionEntry:
    """Return the hash and mask to store for a number added to a do-not-call list."""
    return SuppressionEntry(hash_e164(e164, key), mask_e164(e164))


class SuppressionSet:
    """A set of E.164 numbers held as keyed HMAC-SHA256 digests."""

    __slots__ = ("_digests", "_hmac", "_key")

    def __init__(self, key: bytes, digests: Iterable[bytes] = ()) -> None:
        self._key = _check_key(key)
        self._digests: set[bytes] = set(digests)
        self._hmac = _Hmac(self._key)

    def __getstate__(self) -> tuple[bytes, set[bytes]]:
        return self._key, self._digests

    def __setstate__(self, state: tuple[bytes, set[bytes]]) -> None:
        self._key, self._digests = state
        self._hmac = _Hmac(self._key)

    @classmethod
    def from_e164(cls, numbers: Iterable[str], key: bytes) -> SuppressionSet:
        """Build a set from E.164 numbers."""
        result = cls(key)
        for number in numbers:
            result.add(number)
        return result

    @classmethod
    def from_hashes(cls, hex_hashes: Iterable[str], key: bytes) -> SuppressionSet:
        """Build a set from stored hex hashes made with the same key."""
        digests = set()
        for text in hex_hashes:
            try:
                digest = bytes.fromhex(text)
            except ValueError:
                digest = b""
            if len(digest) != _DIGEST_BYTES:
                raise SuppressionError(
                    f"{text[:20]!r} is not a hex HMAC-SHA256 digest (64 hex digits): "
                    "load hashes made by hash_e164"
                )
            digests.add(digest)
        return cls(key, digests)

    def _digest(self, e164: str) -> bytes:
        return self._hmac.digest(e164.encode("ascii"))

    def add(self, e164: str) -> None:
        """Add an E.164 number."""
        self._digests.add(self._digest(_check_e164(e164)))

    def add_many(self, numbers: Sequence[str]) -> None:
        """Add E.164 numbers."""
        # One regular-expression pass checks them all (a newline inside a number would change
        # the count); the per-number check names a bad one.
        text = "\n".join(numbers)
        if numbers and (
            _E164_LINES.fullmatch(text) is None or text.count("\n") != len(numbers) - 1
        ):
            for number in numbers:
                _check_e164(number)
        self._digests.update(self._hmac.digests(numbers))

    def discard(self, e164: str) -> None:
        """Remove an E.164 number if present."""
        self._digests.discard(self._digest(_check_e164(e164)))

    def update(self, other: SuppressionSet) -> None:
        """Add every number of another set made with the same key."""
        if not hmac.compare_digest(self._key, other._key):
            raise SuppressionError(
                "cannot merge suppression sets hashed with different keys: rebuild one of them "
                "with the other's key"
            )
        self._digests |= other._digests

    def __contains__(self, e164: object) -> bool:
        return isinstance(e164, str) and self._digest(e164) in self._digests

    def contains_many(self, numbers: Sequence[str]) -> list[bool]:
        """Return, for each E.164 number, whether it is in the set."""
        return self._hmac.contains(numbers, self._digests)

    def contains_column(
        self, digits: npt.NDArray[np.int64], numbers: pa.Array
    ) -> npt.NDArray[np.bool_]:
        """:meth:`contains_many` for a column of E.164 numbers (``digits``: see NumberSet)."""
        return np.array(self.contains_many(numbers.to_pylist()), dtype=np.bool_)

    def __len__(self) -> int:
        return len(self._digests)

    def hex_hashes(self) -> Iterator[str]:
        """Yield the stored hashes as hex strings (for storage)."""
        return (d.hex() for d in self._digests)


class NumberSet:
    """Do-not-call numbers held for one run only, as their E.164 digits (sorted integers).

    For the CLI, which reads the do-not-call files it is given and keeps nothing: a look-up is
    one binary search per chunk instead of an HMAC per number. Never stored; lists kept in the
    database are :class:`SuppressionSet` hashes.
    """

    __slots__ = ("_long", "_numbers")

    def __init__(self) -> None:
        self._numbers = np.zeros(0, dtype=np.int64)
        # Numbers too long for int64 (none is valid today; kept exact anyway).
        self._long: set[str] = set()

    def add_many(self, numbers: Sequence[str]) -> None:
        """Add E.164 numbers."""
        fits: list[int] = []
        for number in numbers:
            _check_e164(number)
            if len(number) <= _INT64_DIGITS + 1:
                fits.append(int(number[1:]))
            else:
                self._long.add(number)
        self._merge(np.array(fits, dtype=np.int64))

    def add_digits(self, digits: npt.NDArray[np.int64]) -> None:
        """Add valid E.164 numbers given as their digits (positive integers)."""
        if len(digits) and int(digits.min()) <= 0:
            raise SuppressionError("E.164 digits are positive: normalise the numbers first")
        self._merge(digits.astype(np.int64))

    def _merge(self, digits: npt.NDArray[np.int64]) -> None:
        self._numbers = np.unique(np.concatenate([self._numbers, digits]))

    def update(self, other: NumberSet) -> None:
        """Add every number of another set."""
        self._numbers = np.union1d(self._numbers, other._numbers)
        self._long |= other._long

    def contains_many(self, numbers: Sequence[str]) -> list[bool]:
        """Return, for each E.164 number, whether it is in the set."""
        return [
            number in self._long
            if len(number) > _INT64_DIGITS + 1
            else bool(self.contains_column(np.array([int(number[1:])]), pa.array([number]))[0])
            for number in numbers
        ]

    def contains_column(
        self, digits: npt.NDArray[np.int64], numbers: pa.Array
    ) -> npt.NDArray[np.bool_]:
        """For each number, whether it is in the set.

        ``digits`` holds each E.164 number's digits as an integer, or 0 where it is not known
        (then the text in ``numbers`` is used).
        """
        digits = np.asarray(digits, dtype=np.int64)
        unknown = np.flatnonzero(digits == 0)
        if len(unknown):
            digits = digits.copy()
            texts = numbers.take(pa.array(unknown, type=pa.int64())).to_pylist()
            for row, text in zip(unknown.tolist(), texts, strict=True):
                if text is None:
                    continue
                if len(text) > _INT64_DIGITS + 1:
                    digits[row] = -1 if text in self._long else 0
                else:
                    digits[row] = int(text[1:])
        # A binary search in the sorted set: np.isin would hash the whole set again for every
        # chunk (0.5 s per chunk for 500,000 do-not-call numbers).
        held = self._numbers
        if not len(held):
            return np.asarray(digits == -1, dtype=np.bool_)
        at = np.minimum(np.searchsorted(held, digits), len(held) - 1)
        found: npt.NDArray[np.bool_] = np.asarray(held[at] == digits, dtype=np.bool_)
        found[digits == -1] = True
        return found

    def __len__(self) -> int:
        return len(self._numbers) + len(self._long)


#: Either kind of do-not-call set: what the pipeline consults.
Suppression = SuppressionSet | NumberSet


@dataclass(slots=True)
class DncFileResult:
    """A do-not-call file read into a suppression set, with the lines that were not numbers."""

    suppression: SuppressionSet | NumberSet
    accepted: int = 0
    rejected: list[tuple[int, str, RejectReason]] = field(default_factory=list)


def load_dnc_file(
    path: str | os.PathLike[str],
    key: bytes | None,
    *,
    default_region: str = "CN",
    encoding: str | None = None,
    phone_column: str | None = None,
) -> DncFileResult:
    """Read a DNC file (a CSV with a phone column, or one number per line) into a set.

    With a ``key``, a :class:`SuppressionSet` of keyed hashes; with ``None``, a
    :class:`NumberSet` for this run only.
    """
    from data_cleaning.enrich import Enricher
    from data_cleaning.vectorised import VectorEngine

    engine = VectorEngine(PhoneNormaliser(default_region), Enricher())
    result = DncFileResult(SuppressionSet(key) if key is not None else NumberSet())
    try:
        reader = open_table(path, encoding=encoding, columnar=True)
    except DataCleaningError as error:
        raise SuppressionError(f"do-not-call file: {error}") from error
    with reader:
        columns = reader.info.columns
        # With no header, the "header" is the first number: one number per line.
        if any(looks_like_phone(cell) for cell in columns):
            index = next(i for i, cell in enumerate(columns) if looks_like_phone(cell))
            head: list[tuple[int, list[str]]] = [(1, list(columns))]
        else:
            head = []
            for number, row in reader.rows():
                head.append((number, row))
                if len(head) >= 200:
                    break
            try:
                name = detect_phone_column(columns, [row for _, row in head], phone_column)
            except DataCleaningError as error:
                raise SuppressionError(f"do-not-call file: {error}") from error
            index = columns.index(name)
        numbers = [number for number, _ in head]
        cells: list[pa.Array] = [pa.array([_cell(row, index) for _, row in head], pa.string())]
        done = False
        while not done:
            # The same rows as reader.rows() (which shares its position), a block at a time.
            more, rows, block, done = reader.read_block(_DNC_BATCH)
            numbers += more
            if block is not None:
                cells.append(block[index])
            else:
                cells.append(pa.array([_cell(row, index) for row in rows or ()], pa.string()))
            if len(numbers) >= _DNC_BATCH or done:
                _add_batch(result, engine, numbers, pa.concat_arrays(cells))
                numbers, cells = [], []
    return result


def _cell(row: list[str], index: int) -> str:
    return row[index] if index < len(row) else ""


_DNC_BATCH: Final = 50_000


def _add_batch(
    result: DncFileResult, engine: VectorEngine, numbers: list[int], raws: pa.Array
) -> None:
    """Normalise a batch of DNC cells column-wise and add the valid numbers."""
    from data_cleaning.vectorised import REASON_CODES

    if not len(raws):
        return
    packed = engine.process(raws, enrich=False)
    valid = packed.e164.is_valid().to_numpy(zero_copy_only=False)
    digits = packed.e164_int[valid]
    suppression = result.suppression
    if isinstance(suppression, NumberSet) and digits.all():
        # The column path gave every valid number's digits: no string per number.
        suppression.add_digits(digits)
    else:
        suppression.add_many([e164 for e164 in packed.e164.to_pylist() if e164 is not None])
    accepted = int(valid.sum())
    result.accepted += accepted
    if accepted == len(raws):
        return
    texts = raws.to_pylist()
    codes = packed.reasons.tolist()
    for k in np.flatnonzero(~valid).tolist():
        result.rejected.append((numbers[k], texts[k], REASON_CODES[codes[k]] or RejectReason.EMPTY))
