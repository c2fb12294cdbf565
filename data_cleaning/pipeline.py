"""The list-cleaning pipeline: read, normalise, deduplicate, suppress, enrich; streamed in chunks.

:func:`clean_table` opens the input at once (so bad files fail before any work), then yields
:class:`~data_cleaning.models.ChunkResult` objects while it reads; memory stays bounded by a
few chunks plus the set of numbers seen so far. Normalisation, enrichment and the keyed-hash
look-ups of the do-not-call sets run column-wise (:mod:`data_cleaning.vectorised`) in a worker
process for big inputs, while this process reads, deduplicates and counts, in row order, so
results do not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, Final

import numpy as np
import numpy.typing as npt

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
from data_cleaning.vectorised import REASON_CODES, TYPE_CODES, PackedResult, VectorEngine

__all__ = ["EXTRA_CELLS_COLUMN", "CleaningRun", "clean_table"]

#: Column holding the surplus cells of over-long rows when ragged rows are allowed.
EXTRA_CELLS_COLUMN: Final = "extra_cells"
_SAMPLE_ROWS: Final = 500
_PARALLEL_MIN_BYTES: Final = 4 << 20
_IN_FLIGHT_PER_WORKER: Final = 2


class _Engine:
    """Normaliser plus enricher: the per-number work, run in workers or inline."""

    def __init__(
        self,
        region: str,
        excluded: frozenset[NumberType],
        language: str,
        suppression: Sequence[SuppressionSet] = (),
    ) -> None:
        self.normaliser = PhoneNormaliser(region, excluded)
        self.enricher = Enricher(language)
        self.vector = VectorEngine(self.normaliser, self.enricher)
        self.suppression = tuple(suppression)

    def process(self, phones: Sequence[str]) -> PackedResult:
        return self.vector.process(phones, self.suppression)


_WORKER_ENGINE: _Engine | None = None


def _init_worker(
    region: str,
    excluded: frozenset[NumberType],
    language: str,
    suppression: Sequence[SuppressionSet],
) -> None:
    global _WORKER_ENGINE
    _WORKER_ENGINE = _Engine(region, excluded, language, suppression)


def _work(phones: list[str]) -> PackedResult:
    assert _WORKER_ENGINE is not None
    return _WORKER_ENGINE.process(phones)


class _Done:
    """An already computed result with the AsyncResult interface used below."""

    def __init__(self, value: PackedResult) -> None:
        self._value = value

    def get(self) -> PackedResult:
        return self._value


_Handle = AsyncResult[PackedResult] | _Done


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
        width = self._width
        for number, row in self._sample:
            if len(row) != width:
                row = self._fit(number, row)
            numbers.append(number)
            rows.append(row)
            if len(rows) >= size:
                yield numbers, rows
                numbers, rows = [], []
        done = False
        while not done:
            batch_numbers, batch_rows, done = self._reader.read_batch(size - len(rows))
            for k in [k for k, row in enumerate(batch_rows) if len(row) != width]:
                batch_rows[k] = self._fit(batch_numbers[k], batch_rows[k])
            numbers += batch_numbers
            rows += batch_rows
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
            # This process reads, deduplicates and hands rows on; one worker normalises and
            # enriches: two cores.
            workers = 1 if big and cores > 1 else 0
        args = (
            options.default_region,
            options.excluded_types,
            options.language,
            tuple(self._suppression),
        )
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
        packed = handle.get()
        count = len(numbers)
        codes = packed.reasons.copy()
        e164s = packed.e164
        duplicate_of: list[int | None] = [None] * count
        seen = self._seen
        firsts: list[int] = []
        valid = np.flatnonzero(codes == 0)
        keys = packed.e164_int[valid].tolist()
        for i, key in zip(valid.tolist(), keys, strict=True):
            if not key:
                key = int(e164s[i][1:])  # type: ignore[index]
            first = seen.get(key)
            if first is None:
                seen[key] = numbers[i]
                firsts.append(i)
            else:
                codes[i] = _DUPLICATE
                duplicate_of[i] = first
        if firsts and self._prior is not None:
            candidates = [e164s[i] or "" for i in firsts]
            prior = self._prior
            if callable(prior):
                already = set(prior(candidates))
                flags = [c in already for c in candidates]
            else:
                flags = [c in prior for c in candidates]
            hits = [i for i, flag in zip(firsts, flags, strict=True) if flag]
            if hits:
                codes[hits] = _DUPLICATE
                firsts = [i for i, flag in zip(firsts, flags, strict=True) if not flag]
        for flags_all in packed.suppressed:
            if not firsts:
                break
            flags = flags_all.tolist()
            hits = [i for i in firsts if flags[i]]
            if hits:
                codes[hits] = _DNC
                firsts = [i for i in firsts if not flags[i]]
        report = self.report
        kept = np.array(firsts, dtype=np.intp)
        report.rows_in += count
        report.rows_out += len(firsts)
        by_reason = report.by_reason
        for code, total in enumerate(np.bincount(codes, minlength=len(REASON_CODES)).tolist()):
            reason = REASON_CODES[code]
            if total and reason is not None:
                by_reason[reason.value] += total
        _count(report.by_type, packed.types[kept], _TYPE_NAMES)
        _count(report.by_region, packed.region_ids[kept], packed.region_table)
        _count(
            report.by_timezone, packed.zone_ids[kept], [_ZONE_JOIN(z) for z in packed.zone_table]
        )
        report.virtual_operator += int(np.count_nonzero(packed.virtual[kept]))
        report.invalid = sum(by_reason[r.value] for r in INVALID_REASONS)
        report.duplicates = by_reason[RejectReason.DUPLICATE.value]
        report.dnc_suppressed = by_reason[RejectReason.DNC.value]
        statuses = list(map(_STATUSES.__getitem__, (codes == 0).tolist()))
        reasons = list(map(REASON_CODES.__getitem__, codes.tolist()))
        types = list(map(TYPE_CODES.__getitem__, packed.types.tolist()))
        regions = list(map(packed.region_table.__getitem__, packed.region_ids.tolist()))
        zones = list(map(packed.zone_table.__getitem__, packed.zone_ids.tolist()))
        carriers = list(map(packed.carrier_table.__getitem__, packed.carrier_ids.tolist()))
        virtual = packed.virtual.tolist()
        extensions = packed.extensions
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


_DUPLICATE: Final = REASON_CODES.index(RejectReason.DUPLICATE)
_DNC: Final = REASON_CODES.index(RejectReason.DNC)
_STATUSES: Final = (RowStatus.REJECTED, RowStatus.KEPT)
_TYPE_NAMES: Final = [t.value if t is not None else "" for t in TYPE_CODES]
_ZONE_JOIN: Final = "|".join


def _count(counter: Counter[str], ids: npt.NDArray[Any], names: Sequence[str]) -> None:
    """Add the occurrences of ``names[id]`` for ``ids`` to ``counter``."""
    if not len(ids):
        return
    for index, total in enumerate(np.bincount(ids, minlength=len(names)).tolist()):
        if total:
            counter[names[index]] += total


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
