"""The list-cleaning pipeline: read, normalise, deduplicate, suppress, enrich; streamed in chunks.

:func:`clean_table` opens the input at once (so bad files fail before any work), then yields
:class:`~data_cleaning.models.ChunkResult` objects while it reads; memory stays bounded by a
few chunks plus the set of numbers seen so far. Normalisation and enrichment run in up to two
worker processes for big inputs; deduplication, suppression and counting stay in the calling
process, in row order, so results do not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from multiprocessing.pool import AsyncResult, Pool
from typing import Final

from data_cleaning.columns import detect_phone_column
from data_cleaning.enrich import Enricher
from data_cleaning.exceptions import RaggedRowsError
from data_cleaning.models import (
    INVALID_REASONS,
    ChunkResult,
    CleaningOptions,
    CleaningProgress,
    CleaningReport,
    NumberType,
    PriorNumbers,
    ProgressCallback,
    RejectReason,
    RowStatus,
)
from data_cleaning.normalise import PhoneNormaliser
from data_cleaning.readers import TableReader, header_only_error, open_table
from data_cleaning.suppression import SuppressionSet

__all__ = ["EXTRA_CELLS_COLUMN", "CleaningRun", "clean_table"]

#: Column holding the surplus cells of over-long rows when ragged rows are allowed.
EXTRA_CELLS_COLUMN: Final = "extra_cells"
_SAMPLE_ROWS: Final = 500
_PARALLEL_MIN_BYTES: Final = 4 << 20
_IN_FLIGHT_PER_WORKER: Final = 2

# Column-wise normalisation output of one chunk:
# (reasons, e164, types, extensions, regions, time zones, carriers, virtual flags)
_Normalised = tuple[
    list[RejectReason | None],
    list[str | None],
    list[NumberType | None],
    list[str],
    list[str],
    list[tuple[str, ...]],
    list[str],
    list[bool],
]


class _Engine:
    """Normaliser plus enricher: the per-number work, run in workers or inline."""

    def __init__(self, region: str, excluded: frozenset[NumberType], language: str) -> None:
        self.normaliser = PhoneNormaliser(region, excluded)
        self.enricher = Enricher(language)

    def process(self, phones: Sequence[str]) -> _Normalised:
        normalise = self.normaliser._normalise
        lookup = self.enricher.lookup
        virtual_table = self.enricher.virtual_table
        reasons: list[RejectReason | None] = []
        numbers: list[str | None] = []
        types: list[NumberType | None] = []
        extensions: list[str] = []
        regions: list[str] = []
        zones: list[tuple[str, ...]] = []
        carriers: list[str] = []
        virtual: list[bool] = []
        empty_zones: tuple[str, ...] = ()
        for raw in phones:
            reason, e164, number_type, extension, country_code, nsn, _ = normalise(raw)
            reasons.append(reason)
            numbers.append(e164)
            types.append(number_type)
            extensions.append(extension)
            if e164 is not None and number_type is not None:
                region, zone, carrier = lookup(country_code, nsn, number_type)
                regions.append(region)
                zones.append(zone)
                carriers.append(carrier)
                virtual.append(country_code == 86 and virtual_table.matches(nsn))
            else:
                regions.append("")
                zones.append(empty_zones)
                carriers.append("")
                virtual.append(False)
        return reasons, numbers, types, extensions, regions, zones, carriers, virtual


_WORKER_ENGINE: _Engine | None = None


def _init_worker(region: str, excluded: frozenset[NumberType], language: str) -> None:
    global _WORKER_ENGINE
    _WORKER_ENGINE = _Engine(region, excluded, language)


def _work(phones: list[str]) -> _Normalised:
    assert _WORKER_ENGINE is not None
    return _WORKER_ENGINE.process(phones)


class _Done:
    """An already computed result with the AsyncResult interface used below."""

    def __init__(self, value: _Normalised) -> None:
        self._value = value

    def get(self) -> _Normalised:
        return self._value


_Handle = AsyncResult[_Normalised] | _Done


class CleaningRun:
    """An ongoing cleaning run: iterate it for chunks; ``report`` is final once exhausted."""

    def __init__(
        self,
        reader: TableReader,
        options: CleaningOptions,
        phone_column: str,
        sample: list[tuple[int, list[str]]],
        suppression: Sequence[SuppressionSet],
        prior_numbers: PriorNumbers | None,
        progress: ProgressCallback | None,
        clock: Callable[[], float],
        started: float,
    ) -> None:
        self.options = options
        self.phone_column = phone_column
        self.columns: tuple[str, ...] = reader.info.columns + (
            (EXTRA_CELLS_COLUMN,) if options.allow_ragged else ()
        )
        self.report = CleaningReport(
            columns=self.columns, phone_column=phone_column, encoding=reader.info.encoding
        )
        #: Row numbers of the first ragged rows (when ``allow_ragged``).
        self.ragged_examples: list[int] = []
        self._reader = reader
        self._sample = sample
        self._suppression = list(suppression)
        self._prior = prior_numbers
        self._progress = progress
        self._clock = clock
        self._started = started
        self._seen: dict[int, int] = {}
        self._phone_index = reader.info.columns.index(phone_column)
        self._width = len(reader.info.columns)
        self._chunks: Generator[ChunkResult, None, None] = self._run()

    def __iter__(self) -> Iterator[ChunkResult]:
        return self

    def __next__(self) -> ChunkResult:
        return next(self._chunks)

    def __enter__(self) -> CleaningRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop early and release the file and worker processes."""
        self._chunks.close()
        self._reader.close()

    def consume(self) -> CleaningReport:
        """Run to the end, discarding row results, and return the report."""
        for _ in self:
            pass
        return self.report

    # -- the loop ---------------------------------------------------------------------------

    def _raw_chunks(self) -> Iterator[tuple[list[int], list[list[str]]]]:
        size = max(1, self.options.chunk_rows)
        numbers: list[int] = []
        rows: list[list[str]] = []

        def source() -> Iterator[tuple[int, list[str]]]:
            yield from self._sample
            yield from self._reader.rows()

        width = self._width
        for number, row in source():
            if len(row) != width:
                row = self._fit(number, row)
            numbers.append(number)
            rows.append(row)
            if len(rows) >= size:
                yield numbers, rows
                numbers, rows = [], []
        if rows:
            yield numbers, rows

    def _fit(self, number: int, row: list[str]) -> list[str]:
        width = self._width
        surplus = row[width:]
        while surplus and not surplus[-1].strip():
            surplus.pop()
        if len(row) > width and not surplus:
            return row[:width] + ([""] if self.options.allow_ragged else [])
        if not self.options.allow_ragged:
            raise RaggedRowsError(
                f"row {number} has {len(row)} cells but the header has {width} columns: fix the "
                "row (often an unquoted comma in a name or address) or allow ragged rows "
                "(--allow-ragged) to pad short rows and keep surplus cells in "
                f"{EXTRA_CELLS_COLUMN!r}",
                [(number, len(row))],
            )
        self.report.ragged_rows += 1
        if len(self.ragged_examples) < 20:
            self.ragged_examples.append(number)
        fitted = row[:width] + [""] * (width - len(row))
        fitted.append(",".join(surplus))
        return fitted

    def _run(self) -> Generator[ChunkResult, None, None]:
        options = self.options
        workers = options.workers
        if workers is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
            big = self._reader.info.size_bytes >= _PARALLEL_MIN_BYTES
            workers = min(2, cores) if big and cores > 1 else 0
        args = (options.default_region, options.excluded_types, options.language)
        pool: Pool | None = None
        engine: _Engine | None = None
        if workers > 0:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            pool = context.Pool(workers, initializer=_init_worker, initargs=args)
        else:
            engine = _Engine(*args)
        window = max(1, workers * _IN_FLIGHT_PER_WORKER)
        pending: deque[tuple[list[int], list[list[str]], _Handle]] = deque()
        index = self._phone_index
        try:
            for numbers, rows in self._raw_chunks():
                phones = [row[index] for row in rows]
                handle: _Handle
                if pool is not None:
                    handle = pool.apply_async(_work, (phones,))
                else:
                    assert engine is not None
                    handle = _Done(engine.process(phones))
                pending.append((numbers, rows, handle))
                if len(pending) >= window:
                    yield self._finish(*pending.popleft())
            while pending:
                yield self._finish(*pending.popleft())
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            self._reader.close()
        if self.report.rows_in == 0:
            raise header_only_error(self._reader.info.sheet or "the input")
        self.report.elapsed_s = self._clock() - self._started

    def _finish(
        self,
        numbers: list[int],
        rows: list[list[str]],
        handle: _Handle,
    ) -> ChunkResult:
        reasons, e164s, types, extensions, regions, zones, carriers, virtual = handle.get()
        count = len(numbers)
        statuses: list[RowStatus] = [RowStatus.REJECTED] * count
        duplicate_of: list[int | None] = [None] * count
        seen = self._seen
        firsts: list[int] = []
        for i in range(count):
            if reasons[i] is not None:
                continue
            e164 = e164s[i]
            assert e164 is not None
            key = int(e164[1:])
            first = seen.get(key)
            if first is None:
                seen[key] = numbers[i]
                firsts.append(i)
            else:
                reasons[i] = RejectReason.DUPLICATE
                duplicate_of[i] = first
        if firsts and self._prior is not None:
            candidates = [e164s[i] or "" for i in firsts]
            prior = self._prior
            if callable(prior):
                already = set(prior(candidates))
                flags = [c in already for c in candidates]
            else:
                flags = [c in prior for c in candidates]
            for i, flag in zip(firsts, flags, strict=True):
                if flag:
                    reasons[i] = RejectReason.DUPLICATE
            firsts = [i for i in firsts if reasons[i] is None]
        for suppression in self._suppression:
            if not firsts:
                break
            flags = suppression.contains_many([e164s[i] or "" for i in firsts])
            for i, flag in zip(firsts, flags, strict=True):
                if flag:
                    reasons[i] = RejectReason.DNC
            firsts = [i for i in firsts if reasons[i] is None]
        report = self.report
        for i in firsts:
            statuses[i] = RowStatus.KEPT
        report.rows_in += count
        report.rows_out += len(firsts)
        by_reason = report.by_reason
        for reason in reasons:
            if reason is not None:
                by_reason[reason.value] += 1
        by_type, by_region, by_zone = report.by_type, report.by_region, report.by_timezone
        for i in firsts:
            number_type = types[i]
            by_type[number_type.value if number_type is not None else ""] += 1
            by_region[regions[i]] += 1
            by_zone["|".join(zones[i])] += 1
            if virtual[i]:
                report.virtual_operator += 1
        report.invalid = sum(by_reason[r.value] for r in INVALID_REASONS)
        report.duplicates = by_reason[RejectReason.DUPLICATE.value]
        report.dnc_suppressed = by_reason[RejectReason.DNC.value]
        # Invalid rows keep no enrichment; duplicates and dnc rows keep theirs.
        for i in range(count):
            reason = reasons[i]
            if reason is not None and reason in INVALID_REASONS:
                e164s[i] = None if reason is not RejectReason.UNSUPPORTED_TYPE else e164s[i]
        if self._progress is not None:
            fraction = self._reader.fraction_read()
            hint = self._reader.info.rows_hint
            if fraction is None and hint:
                fraction = min(1.0, report.rows_in / hint)
            estimate = hint or (round(report.rows_in / fraction) if fraction else None)
            self._progress(CleaningProgress(report.rows_in, estimate, fraction))
        return ChunkResult(
            columns=self.columns,
            row_numbers=numbers,
            rows=rows,
            statuses=statuses,
            reject_reasons=reasons,
            duplicate_of_rows=duplicate_of,
            e164=e164s,
            number_types=types,
            regions=regions,
            time_zones=zones,
            extensions=extensions,
            carriers=carriers,
            virtual_operator=virtual,
        )


def clean_table(
    source: str | os.PathLike[str],
    options: CleaningOptions | None = None,
    suppression: SuppressionSet | Iterable[SuppressionSet] | None = None,
    *,
    prior_numbers: PriorNumbers | None = None,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> CleaningRun:
    """Open and check a lead list and return the run that streams its cleaned chunks."""
    options = options or CleaningOptions()
    started = clock()
    # Validate the region and types before touching the file.
    PhoneNormaliser(options.default_region, options.excluded_types)
    reader = open_table(
        source,
        encoding=options.encoding,
        sheet=options.sheet,
        delimiter=options.delimiter,
        max_bytes=options.max_input_bytes,
    )
    try:
        sample: list[tuple[int, list[str]]] = []
        for item in reader.rows():
            sample.append(item)
            if len(sample) >= _SAMPLE_ROWS:
                break
        if not sample:
            raise header_only_error(source)
        phone_column = detect_phone_column(
            reader.info.columns, [row for _, row in sample], options.phone_column
        )
    except BaseException:
        reader.close()
        raise
    if suppression is None:
        sets: list[SuppressionSet] = []
    elif isinstance(suppression, SuppressionSet):
        sets = [suppression]
    else:
        sets = list(suppression)
    return CleaningRun(
        reader, options, phone_column, sample, sets, prior_numbers, progress, clock, started
    )
