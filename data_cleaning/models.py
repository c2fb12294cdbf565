"""Plain data shapes of the cleaning pipeline: statuses, reasons, options, results, report.

Nothing here touches files, clocks or databases; the shapes are what the database import
job and the API read from :func:`data_cleaning.pipeline.clean_table`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Container, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, cast, overload

__all__ = [
    "ENRICHMENT_COLUMNS",
    "INVALID_REASONS",
    "ChunkResult",
    "ChunkSource",
    "CleaningOptions",
    "CleaningProgress",
    "CleaningReport",
    "NumberType",
    "PriorNumbers",
    "ProgressCallback",
    "RejectReason",
    "RowResult",
    "RowStatus",
]

_T = TypeVar("_T")


class RowStatus(StrEnum):
    """Where an input row ended up."""

    KEPT = "kept"
    REJECTED = "rejected"


class RejectReason(StrEnum):
    """Why a row was rejected; the first six are counted as ``invalid``."""

    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    INVALID_FOR_REGION = "invalid_for_region"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    UNSUPPORTED_TYPE = "unsupported_type"
    DUPLICATE = "duplicate"
    DNC = "dnc"


#: Reasons of step 1 (normalisation); their rows count as ``invalid`` in the report.
INVALID_REASONS: frozenset[RejectReason] = frozenset(
    {
        RejectReason.EMPTY,
        RejectReason.NOT_A_NUMBER,
        RejectReason.INVALID_FOR_REGION,
        RejectReason.TOO_SHORT,
        RejectReason.TOO_LONG,
        RejectReason.UNSUPPORTED_TYPE,
    }
)


class NumberType(StrEnum):
    """libphonenumber's number types, as stable lowercase strings."""

    FIXED_LINE = "fixed_line"
    MOBILE = "mobile"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"


#: Columns the cleaner adds to CLEANED.csv, in this order.
ENRICHMENT_COLUMNS: tuple[str, ...] = (
    "phone_e164",
    "phone_type",
    "phone_region",
    "phone_timezone",
    "phone_extension",
    "phone_carrier",
    "phone_alternates",
)

#: Numbers already used elsewhere (earlier lists of the campaign): either a container of
#: E.164 strings, or a callable given a batch of E.164 numbers that returns those already seen.
PriorNumbers = Container[str] | Callable[[Sequence[str]], Collection[str]]


@dataclass(frozen=True, slots=True)
class CleaningProgress:
    """How far a cleaning run is; ``fraction`` is ``None`` when the size is unknown."""

    rows_done: int
    rows_total_estimate: int | None
    fraction: float | None


ProgressCallback = Callable[[CleaningProgress], None]


@dataclass(frozen=True, slots=True)
class CleaningOptions:
    """Per-upload settings of the cleaner."""

    #: ISO region used for numbers written without a country code.
    default_region: str = "CN"
    #: Number types the client does not want; such numbers are ``unsupported_type``.
    excluded_types: frozenset[NumberType] = frozenset()
    #: Name of the phone column; detected from headers and content when ``None``.
    phone_column: str | None = None
    #: Text encoding of CSV/TSV input; detected when ``None``.
    encoding: str | None = None
    #: XLSX sheet name; the first sheet when ``None``.
    sheet: str | None = None
    #: Field delimiter of text input; from the extension and first line when ``None``.
    delimiter: str | None = None
    #: Pad short rows and keep surplus cells instead of failing on ragged rows.
    allow_ragged: bool = False
    #: Refuse files bigger than this many bytes (``None``: no limit).
    max_input_bytes: int | None = None
    #: Language of region descriptions and carrier names ("en", "zh", ...).
    language: str = "en"
    #: Worker processes for normalisation; ``None`` uses up to 2 cores for big inputs.
    workers: int | None = None
    #: Rows per chunk yielded by :func:`~data_cleaning.pipeline.clean_table`.
    chunk_rows: int = 20_000


@dataclass(frozen=True, slots=True)
class RowResult:
    """The outcome for one input row."""

    #: 1-based number of the data row (the header is not counted).
    row_number: int
    original: dict[str, str]
    status: RowStatus
    reject_reason: RejectReason | None
    #: For duplicates, the row this one repeats (``None`` when it repeats an earlier list).
    duplicate_of_row: int | None
    #: E.164 form of valid numbers, also on duplicate and dnc rows; ``None`` when invalid.
    e164: str | None
    number_type: NumberType | None
    region: str
    time_zones: tuple[str, ...]
    extension: str
    carrier: str
    is_virtual_operator: bool
    #: Other numbers of a phone cell that held several (E.164; see :mod:`data_cleaning.cells`).
    alternate_phones: tuple[str, ...] = ()


class _Field(Generic[_T]):
    """A :class:`ChunkResult` column, built on first use when the chunk is column-wise."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = "_" + name

    @overload
    def __get__(self, instance: None, owner: type) -> _Field[_T]: ...

    @overload
    def __get__(self, instance: ChunkResult, owner: type) -> _T: ...

    def __get__(self, instance: ChunkResult | None, owner: type) -> _T | _Field[_T]:
        if instance is None:
            return self
        value = getattr(instance, self.slot)
        if value is None:
            value = instance._source.materialise(self.name)
            setattr(instance, self.slot, value)
        return cast(_T, value)

    def __set__(self, instance: ChunkResult, value: _T) -> None:
        setattr(instance, self.slot, value)
        instance._edited = True


class ChunkSource(Protocol):
    """Column-wise results behind a :class:`ChunkResult` (see the pipeline)."""

    def materialise(self, name: str) -> Any:
        """The value of the :class:`ChunkResult` field ``name``."""


class ChunkResult:
    """Results for a run of consecutive input rows, stored column-wise for speed.

    The pipeline fills the list fields on first use from its packed column-wise results.
    """

    __slots__ = (
        "_alternate_phones",
        "_carriers",
        "_duplicate_of_rows",
        "_e164",
        "_edited",
        "_extensions",
        "_number_types",
        "_regions",
        "_reject_reasons",
        "_row_numbers",
        "_rows",
        "_source",
        "_statuses",
        "_time_zones",
        "_virtual_operator",
        "columns",
    )

    row_numbers: _Field[list[int]] = _Field()
    rows: _Field[list[list[str]]] = _Field()
    statuses: _Field[list[RowStatus]] = _Field()
    reject_reasons: _Field[list[RejectReason | None]] = _Field()
    duplicate_of_rows: _Field[list[int | None]] = _Field()
    e164: _Field[list[str | None]] = _Field()
    number_types: _Field[list[NumberType | None]] = _Field()
    regions: _Field[list[str]] = _Field()
    time_zones: _Field[list[tuple[str, ...]]] = _Field()
    extensions: _Field[list[str]] = _Field()
    carriers: _Field[list[str]] = _Field()
    virtual_operator: _Field[list[bool]] = _Field()
    alternate_phones: _Field[list[tuple[str, ...]]] = _Field()

    def __init__(
        self,
        columns: tuple[str, ...],
        row_numbers: list[int],
        rows: list[list[str]],
        statuses: list[RowStatus],
        reject_reasons: list[RejectReason | None],
        duplicate_of_rows: list[int | None],
        e164: list[str | None],
        number_types: list[NumberType | None],
        regions: list[str],
        time_zones: list[tuple[str, ...]],
        extensions: list[str],
        carriers: list[str],
        virtual_operator: list[bool],
        alternate_phones: list[tuple[str, ...]] | None = None,
    ) -> None:
        self.columns = columns
        self._source: Any = None
        self._row_numbers = row_numbers
        self._rows = rows
        self._statuses = statuses
        self._reject_reasons = reject_reasons
        self._duplicate_of_rows = duplicate_of_rows
        self._e164 = e164
        self._number_types = number_types
        self._regions = regions
        self._time_zones = time_zones
        self._extensions = extensions
        self._carriers = carriers
        self._virtual_operator = virtual_operator
        self._alternate_phones = (
            alternate_phones if alternate_phones is not None else [()] * len(row_numbers)
        )
        self._edited = False

    @classmethod
    def from_source(
        cls, columns: tuple[str, ...], source: ChunkSource, rows: list[list[str]] | None = None
    ) -> ChunkResult:
        """A chunk whose fields are built from ``source`` when first read."""
        chunk = cls.__new__(cls)
        chunk.columns = columns
        chunk._source = source
        for name in cls.__slots__:
            if name not in ("columns", "_source", "_edited"):
                setattr(chunk, name, None)
        chunk._rows = rows  # type: ignore[assignment]
        chunk._edited = False
        return chunk

    def packed_source(self) -> Any:
        """The column-wise results behind this chunk, unless a field was replaced since."""
        return None if self._edited else self._source

    def __len__(self) -> int:
        return len(self.row_numbers)

    def __repr__(self) -> str:
        return f"ChunkResult(columns={self.columns!r}, rows={len(self)})"

    def row(self, index: int) -> RowResult:
        """Return the result of the ``index``-th row of this chunk."""
        return RowResult(
            row_number=self.row_numbers[index],
            original=dict(zip(self.columns, self.rows[index], strict=False)),
            status=self.statuses[index],
            reject_reason=self.reject_reasons[index],
            duplicate_of_row=self.duplicate_of_rows[index],
            e164=self.e164[index],
            number_type=self.number_types[index],
            region=self.regions[index],
            time_zones=self.time_zones[index],
            extension=self.extensions[index],
            carrier=self.carriers[index],
            is_virtual_operator=self.virtual_operator[index],
            alternate_phones=self.alternate_phones[index],
        )

    def __iter__(self) -> Iterator[RowResult]:
        return (self.row(i) for i in range(len(self.row_numbers)))


@dataclass(slots=True)
class CleaningReport:
    """Counts of a cleaning run; ``rows_in == rows_out + invalid + duplicates + dnc_suppressed``."""

    rows_in: int = 0
    rows_out: int = 0
    invalid: int = 0
    duplicates: int = 0
    dnc_suppressed: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    by_timezone: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    #: Phone cells split into several numbers, and what became of their other numbers.
    cells_split: int = 0
    alternates_kept: int = 0
    alternates_dropped: Counter[str] = field(default_factory=Counter)
    # Facts about the input, not part of REPORT.json.
    columns: tuple[str, ...] = ()
    phone_column: str = ""
    encoding: str | None = None
    ragged_rows: int = 0
    virtual_operator: int = 0

    def accounting_holds(self) -> bool:
        """Return whether every input row is counted exactly once."""
        return self.rows_in == self.rows_out + self.invalid + self.duplicates + self.dnc_suppressed

    def to_json_dict(self) -> dict[str, Any]:
        """Return the REPORT.json content: exactly the documented top-level keys."""
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "dnc_suppressed": self.dnc_suppressed,
            "by_reason": dict(sorted(self.by_reason.items())),
            "by_type": dict(sorted(self.by_type.items())),
            "by_region": dict(self.by_region.most_common()),
            "by_timezone": dict(self.by_timezone.most_common()),
            "multi_number_cells": {
                "cells_split": self.cells_split,
                "alternates_kept": self.alternates_kept,
                "alternates_dropped": dict(sorted(self.alternates_dropped.items())),
            },
            "elapsed_s": round(self.elapsed_s, 3),
        }
