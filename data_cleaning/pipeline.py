"""The list-cleaning pipeline: read, normalise, deduplicate, suppress, enrich; streamed in chunks.

:func:`clean_table` opens the input at once (so bad files fail before any work), then yields
:class:`~data_cleaning.models.ChunkResult` objects while it reads; memory stays bounded by a
few chunks plus the set of numbers seen so far. Normalisation, enrichment and the keyed-hash
look-ups of the do-not-call sets run column-wise (:mod:`data_cleaning.vectorised`) in a worker
process for big inputs, while this process reads, deduplicates, counts and hands out chunks in
row order, and normalises chunks itself whenever the worker has enough queued; results do not
depend on the number of workers or on which process normalised a chunk.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from data_cleaning.cells import ROW_REJECTED, per_chunk, split_column
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
from data_cleaning.readers import TableInfo, TableReader, header_only_error, open_table
from data_cleaning.suppression import NumberSet, Suppression, SuppressionSet
from data_cleaning.vectorised import REASON_CODES, TYPE_CODES, PackedResult, VectorEngine

__all__ = ["EXTRA_CELLS_COLUMN", "ChunkColumns", "CleaningRun", "clean_table"]

#: Column holding the surplus cells of over-long rows when ragged rows are allowed.
EXTRA_CELLS_COLUMN: Final = "extra_cells"
_SAMPLE_ROWS: Final = 500
_PARALLEL_MIN_BYTES: Final = 4 << 20
#: Rows normalised per call (whole chunks; at least one).
_BATCH_ROWS: Final = 40_000
#: Batches queued per worker before this process normalises batches itself.
_QUEUED_PER_WORKER: Final = 3
#: Batches done but held back (rows are handed out in order) before waiting for the oldest.
_HELD_BACK: Final = 3


class _Engine:
    """Normaliser plus enricher: the per-number work, run in workers or inline."""

    def __init__(
        self,
        region: str,
        excluded: frozenset[NumberType],
        language: str,
        suppression: Sequence[Suppression] = (),
    ) -> None:
        self.normaliser = PhoneNormaliser(region, excluded)
        self.enricher = Enricher(language)
        self.vector = VectorEngine(self.normaliser, self.enricher)
        self.suppression = tuple(suppression)

    def process(self, phones: pa.Array, sizes: list[int]) -> list[PackedResult]:
        # Cells holding several numbers are split first: the lead's number is normalised in
        # the cell's place, exactly as a cell holding only it would be.
        phones, split = split_column(phones, self.vector, self.suppression)
        results = self.vector.process_chunks(phones, sizes, self.suppression)
        if len(split):
            for packed, part in zip(results, per_chunk(split, sizes), strict=True):
                packed.split = part
        return results


log = logging.getLogger(__name__)

_WORKER_ENGINE: _Engine | None = None


#: How long a new pool waits for each worker to be initialised; a pool whose worker does not
#: say so in time is not used (this process normalises every batch itself).
_WORKER_READY_TIMEOUT_S = 20.0
#: How long a batch handed to a worker may take before this process normalises it itself (a
#: batch takes milliseconds to a second). A worker forked while a thread of this process held
#: a lock (the CSV reader's threads, an allocator) can hang for ever; the run must not.
_WORKER_STALL_S = 30.0
#: How long ending a worker pool may take before the run goes on without waiting for it.
_POOL_CLOSE_S = 30.0


def _init_worker(
    region: str,
    excluded: frozenset[NumberType],
    language: str,
    suppression: Sequence[Suppression],
) -> None:
    global _WORKER_ENGINE
    # Pool.terminate() stops workers with SIGTERM; a forked worker inherits its parent's
    # handler (a test runner's or a server's), which may only set a flag, so the worker would
    # never exit and the pool's join would hang. Workers die on SIGTERM.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER_ENGINE = _Engine(region, excluded, language, suppression)


def _init_worker_then_report(ready: Any, *args: Any) -> None:
    _init_worker(*args)
    ready.release()


def _start_pool(context: Any, workers: int, args: tuple[Any, ...]) -> Pool | None:
    """A worker pool whose workers die on SIGTERM, returned once every worker is ready.

    A forked worker inherits its parent's SIGTERM handler (a test runner's or a server's, which
    may only set a flag) until its initializer resets it. A pool terminated in that gap (an
    input refused at its first rows) would wait forever for a worker that swallowed the signal.
    On the main thread the default is put in place across the fork; off it (a job thread)
    handlers cannot be changed, so the pool is handed out only after each worker has said it is
    initialised; None (the pool terminated) when one does not say so in time.
    """
    ready = context.Semaphore(0)
    previous = signal.getsignal(signal.SIGTERM)
    on_main = threading.current_thread() is threading.main_thread() and previous is not None
    if on_main:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        pool: Pool = context.Pool(
            workers, initializer=_init_worker_then_report, initargs=(ready, *args)
        )
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)
    for _ in range(workers):
        if not ready.acquire(timeout=_WORKER_READY_TIMEOUT_S):
            log.warning(
                "a cleaning worker did not start within %.0f s; this process cleans alone",
                _WORKER_READY_TIMEOUT_S,
            )
            _close_pool(pool, stalled=True)
            return None
    return pool


def _close_pool(pool: Pool, *, stalled: bool) -> None:
    """End the pool's workers, whatever they are doing; never blocks for long.

    A stalled pool's workers (one hung: see ``_WORKER_STALL_S``) are killed first: a hung
    worker may not have put the SIGTERM default in place. ``terminate`` then runs in a
    daemonic thread given ``_POOL_CLOSE_S``: the pool's own shutdown can wait for ever on a
    lock a killed worker held, and a cleaning run must end all the same.
    """
    if sys.is_finalizing():
        # At interpreter exit (a run never closed, finalised with its module) no thread can
        # start any more: Thread.start() would wait for ever. multiprocessing's exit handler
        # has terminated the pool already; any worker still alive is killed, nothing waited on.
        _kill_workers(pool)
        return
    if stalled:
        _kill_workers(pool)

    def close() -> None:
        pool.terminate()
        pool.join()

    closer = threading.Thread(target=close, name="cleaning-pool-close", daemon=True)
    closer.start()
    closer.join(_POOL_CLOSE_S)
    if closer.is_alive():
        log.warning("the cleaning worker pool did not close within %.0f s", _POOL_CLOSE_S)


def _kill_workers(pool: Pool) -> None:
    for process in list(getattr(pool, "_pool", ())):  # the pool's worker processes
        if process.is_alive():
            process.kill()


def _work(phones: pa.Array, sizes: list[int]) -> list[PackedResult]:
    assert _WORKER_ENGINE is not None
    return _WORKER_ENGINE.process(phones, sizes)


class _Done:
    """An already computed result with the AsyncResult interface used below."""

    def __init__(self, value: list[PackedResult]) -> None:
        self._value = value

    def get(self) -> list[PackedResult]:
        return self._value

    def ready(self) -> bool:
        return True


_Handle = AsyncResult[list[PackedResult]] | _Done


class CleaningRun:
    """An ongoing cleaning run: iterate it for chunks; ``report`` is final once exhausted."""

    def __init__(
        self,
        reader: TableReader,
        options: CleaningOptions,
        phone_column: str,
        sample: list[tuple[int, list[str]]],
        suppression: Sequence[Suppression],
        prior_numbers: PriorNumbers | None,
        progress: ProgressCallback | None,
        clock: Callable[[], float],
        started: float,
        precomputed: Iterator[PackedResult] | None = None,
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
        # Numbers seen so far (E.164 digits) and the row of their first sighting.
        # Sized for the list at once when its length can be told: growing rehashes every number
        # (7 times for a 1M-row list, a third of the dedupe's time) and holds them twice. Made
        # at the first chunk, after the workers are forked: a forked worker would keep its own
        # copy of every page of the table this process then writes to.
        self._expected = _expected_numbers(reader.info, sample)
        self._seen: _SeenNumbers | None = None
        self._phone_index = reader.info.columns.index(phone_column)
        self._width = len(reader.info.columns)
        self._precomputed = precomputed
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

    def normalise_chunks(self, first: int, stop: int | None = None) -> Iterator[PackedResult]:
        """The normalised chunks ``first`` to ``stop`` (exclusive; ``None``: the end), in order.

        One part of a list cleaned by several processes or machines: each normalises its own
        range of chunks (this run is used for nothing else), and :func:`clean_table` with
        ``precomputed`` set to all the parts' chunks, in order, then finishes the list exactly
        as a single run would (the per-row answers do not depend on who computed them).
        """
        options = self.options
        engine = _Engine(
            options.default_region, options.excluded_types, options.language, self._suppression
        )
        index = self._phone_index
        try:
            for number, raw in enumerate(self._raw_chunks(max(1, options.chunk_rows))):
                if stop is not None and number >= stop:
                    break
                if number >= first:
                    yield engine.process(raw.columns[index], [len(raw)])[0]
        finally:
            self._reader.close()

    # -- the loop ---------------------------------------------------------------------------

    def _raw_chunks(self, size: int) -> Iterator[_RawChunk]:
        """Chunks of ``size`` rows as string columns (and the rows, when read as such)."""
        parts: list[_RawChunk] = []
        count = 0
        if self._sample:
            numbers = [number for number, _ in self._sample]
            fitted = self._fit_rows(numbers, [row for _, row in self._sample])
            self._sample = []
            parts.append(_RawChunk(numbers, fitted, _to_columns(fitted, len(self.columns))))
            count = len(numbers)
        done = False
        while not done:
            if count >= size:
                first, parts, count = _split(parts, size)
                yield first
                continue
            numbers, rows, columns, done = self._reader.read_block(size - count)
            if not numbers:
                continue
            if rows is not None:
                rows = self._fit_rows(numbers, rows)
                columns = _to_columns(rows, len(self.columns))
            else:
                assert columns is not None
                if self.options.allow_ragged:
                    columns = [*columns, pa.array([""] * len(numbers), pa.string())]
            parts.append(_RawChunk(numbers, rows, columns))
            count += len(numbers)
        while count:
            first, parts, count = _split(parts, size)
            yield first

    def _fit_rows(self, numbers: list[int], rows: list[list[str]]) -> list[list[str]]:
        width = self._width
        for k in [k for k, row in enumerate(rows) if len(row) != width]:
            rows[k] = self._fit(numbers[k], rows[k])
        if self.options.allow_ragged:
            for row in rows:
                if len(row) == width:
                    row.append("")
        return rows

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
        if self._precomputed is not None:
            workers = 0
        elif workers is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
            big = self._reader.info.size_bytes >= _PARALLEL_MIN_BYTES
            # This process reads, deduplicates and counts, and normalises batches too whenever
            # the worker has enough queued: two cores, both busy.
            workers = 1 if big and cores > 1 else 0
        # The keyed hashes of the do-not-call look-ups are computed with the normalisation,
        # for every valid number of a chunk; only first sightings use them (see _finish).
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
            if context.get_start_method() == "fork":
                # Built once here, the default country's prefix tables are the workers' too.
                engine = _Engine(*args)
                engine.vector.prepare()
            pool = _start_pool(context, workers, args)
        backlog = workers * _QUEUED_PER_WORKER
        pending: deque[tuple[_RawChunk, _Handle]] = deque()
        index = self._phone_index
        # Whole chunks are normalised together, a batch at a time: per-call costs are then
        # spread over more rows.
        size = max(1, options.chunk_rows)
        batch = max(size, _BATCH_ROWS // size * size)

        stalled = False

        def room() -> bool:
            """Whether the workers have fewer than ``backlog`` batches to do."""
            return (
                pool is not None
                and not stalled
                and sum(not h.ready() for _, h in pending) < backlog
            )

        def here(raw: _RawChunk) -> _Done:
            """Normalise a batch in this process."""
            nonlocal engine
            if engine is None:
                engine = _Engine(*args)
            return _Done(engine.process(raw.columns[index], _chunk_sizes(len(raw), size)))

        def settled() -> tuple[_RawChunk, _Handle]:
            """The first pending batch, its result ready: a worker that has not answered in
            ``_WORKER_STALL_S`` is given up (its batches, and every later one, are done here)."""
            nonlocal stalled
            raw, handle = pending.popleft()
            if isinstance(handle, _Done) or handle.ready():
                return raw, handle
            handle.wait(_WORKER_STALL_S)
            if handle.ready():
                return raw, handle
            log.warning(
                "a cleaning worker has not answered for %.0f s; this process cleans alone",
                _WORKER_STALL_S,
            )
            stalled = True
            for k, (queued, waiting) in enumerate(pending):
                if not waiting.ready():
                    pending[k] = (queued, here(queued))
            return raw, here(raw)

        try:
            for raw in self._raw_chunks(batch):
                phones = raw.columns[index]
                sizes = _chunk_sizes(len(raw), size)
                handle: _Handle
                if self._precomputed is not None:
                    handle = _Done(self._next_precomputed(sizes))
                elif room():
                    assert pool is not None
                    # A slice pickles with its whole parent buffer (all of a parse block): copy
                    # out just its cells first.
                    handle = pool.apply_async(_work, (pa.concat_arrays([phones]), sizes))
                else:
                    handle = here(raw)  # no workers, or they have enough queued
                pending.append((raw, handle))
                # Hand out results in row order as they are ready, but keep the workers fed
                # first; wait only when too many batches are held back by a slow one.
                while pending and (
                    (pending[0][1].ready() and not room()) or len(pending) > backlog + _HELD_BACK
                ):
                    yield from self._finish_batch(*settled(), size)
            while pending:
                later = [k for k in range(1, len(pending)) if not pending[k][1].ready()]
                if pending[0][1].ready() or not later or stalled:
                    yield from self._finish_batch(*settled(), size)
                    continue
                # The input is read and the worker is still busy: rather than wait, normalise
                # the last batch queued for it here too (it does the batches in order, so that
                # one is the least likely to have been started). The result is the one the
                # worker would return; the worker's copy of the work ends with the pool.
                raw = pending[later[-1]][0]
                pending[later[-1]] = (raw, here(raw))
        finally:
            if pool is not None:
                _close_pool(pool, stalled=stalled)
            self._reader.close()
        if self._precomputed is not None and next(self._precomputed, None) is not None:
            raise RuntimeError(
                "the normalised parts of the list hold more rows than the list; clean it again"
            )
        if self.report.rows_in == 0:
            raise header_only_error(self._reader.info.sheet or "the input")
        self.report.elapsed_s = self._clock() - self._started

    def _next_precomputed(self, sizes: list[int]) -> list[PackedResult]:
        assert self._precomputed is not None
        results = []
        for size in sizes:
            packed = next(self._precomputed, None)
            if packed is None or len(packed.reasons) != size:
                raise RuntimeError(
                    "the normalised parts of the list do not match its rows (a part is missing "
                    "or was made with other options); clean the list again"
                )
            results.append(packed)
        return results

    def _dedupe(
        self, numbers: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """First sightings among ``keys`` (positions) and, per key, the row it repeats (or 0)."""
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        if self._seen is None:
            self._seen = _SeenNumbers.for_numbers(self._expected)
        known, origin = self._seen.find(unique)
        new = ~known
        origin[new] = numbers[first[new]]
        if new.any():
            self._seen.add(unique[new], numbers[first[new]])
        duplicate_of = origin[inverse]
        is_first = np.zeros(len(keys), dtype=np.bool_)
        is_first[first[new]] = True
        duplicate_of[is_first] = 0
        return np.flatnonzero(is_first), duplicate_of

    def _finish_batch(
        self, raw: _RawChunk, handle: _Handle, size: int
    ) -> Generator[ChunkResult, None, None]:
        """The chunks of ``size`` rows of a normalised batch, finished in row order."""
        results = handle.get()
        if len(results) == 1:
            yield self._finish(raw, results[0])
            return
        for start, packed in zip(range(0, len(raw), size), results, strict=True):
            yield self._finish(raw.slice(start, min(start + size, len(raw))), packed)

    def _finish(self, raw: _RawChunk, packed: PackedResult) -> ChunkResult:
        numbers = np.asarray(raw.numbers, dtype=np.int64)
        count = len(numbers)
        codes = packed.reasons.copy()
        duplicate_of = np.zeros(count, dtype=np.int64)
        valid = np.flatnonzero(codes == 0)
        keys = packed.e164_int[valid]
        missing = np.flatnonzero(keys == 0)
        if len(missing):
            keys = keys.copy()
            keys[missing] = [int((e164 or "+0")[1:]) for e164 in _e164s(packed, valid[missing])]
        firsts_at, repeats = self._dedupe(numbers[valid], keys)
        duplicates = repeats != 0
        codes[valid[duplicates]] = _DUPLICATE
        duplicate_of[valid] = repeats
        firsts = valid[firsts_at]
        if len(firsts) and self._prior is not None:
            candidates = [e164 or "" for e164 in _e164s(packed, firsts)]
            prior = self._prior
            if callable(prior):
                already = set(prior(candidates))
                flags = [c in already for c in candidates]
            else:
                flags = [c in prior for c in candidates]
            hit = np.array(flags, dtype=np.bool_)
            if hit.any():
                codes[firsts[hit]] = _DUPLICATE
                firsts = firsts[~hit]
        for suppressed in packed.suppressed:
            if not len(firsts):
                break
            hit = suppressed[firsts]
            if hit.any():
                codes[firsts[hit]] = _DNC
                firsts = firsts[~hit]
        report = self.report
        kept = firsts
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
        split = packed.split
        if split is not None and len(split):
            report.cells_split += len(split)
            row_kept = (codes[split.rows] == 0).tolist()
            for keep, alternates, dropped in zip(
                row_kept, split.alternates, split.dropped, strict=True
            ):
                report.alternates_dropped.update(dropped)
                if keep:
                    report.alternates_kept += len(alternates)
                elif alternates:
                    report.alternates_dropped[ROW_REJECTED] += len(alternates)
        report.invalid = sum(by_reason[r.value] for r in INVALID_REASONS)
        report.duplicates = by_reason[RejectReason.DUPLICATE.value]
        report.dnc_suppressed = by_reason[RejectReason.DNC.value]
        if self._progress is not None:
            fraction = self._reader.fraction_read()
            hint = self._reader.info.rows_hint
            if fraction is None and hint:
                fraction = min(1.0, report.rows_in / hint)
            estimate = hint or (round(report.rows_in / fraction) if fraction else None)
            self._progress(CleaningProgress(report.rows_in, estimate, fraction))
        source = ChunkColumns(raw.numbers, numbers, raw.columns, codes, duplicate_of, packed)
        return ChunkResult.from_source(self.columns, source, raw.rows)


def _expected_numbers(info: TableInfo, sample: Sequence[tuple[int, list[str]]]) -> int:
    """About how many distinct valid numbers a list holds (0: cannot tell).

    The rows an XLSX sheet declares, or a CSV's size over its sampled rows' mean length; 90 %
    of them (lists repeat and hold junk). A wrong guess costs only speed or a little memory:
    the set still grows when it has to.
    """
    if info.rows_hint:
        rows = int(info.rows_hint)
    elif sample and info.size_bytes and not info.sheet:
        sampled = sum(sum(len(cell.encode()) + 1 for cell in row) + 1 for _, row in sample)
        rows = int(info.size_bytes / max(1.0, sampled / len(sample)))
    else:
        return 0
    return int(rows * 0.9)


class _SeenNumbers:
    """Numbers (positive int64 keys) and the row of their first sighting: a hash table.

    Open addressing with linear probing in two numpy arrays, searched and filled a whole
    chunk of keys at a time. One sorted array with ``np.insert`` copied the whole set for
    every chunk (quadratic: most of a 10M-row list's time); sorted runs need O(log n)
    cache-missing probes per key (a 20,000-key search of an 8M-number run: 7 ms, against
    1.3 ms here). The table is any size (not a power of two): it grows by half when three
    quarters full, so it holds 16 to 24 bytes per number (an int64 key and an int32 row per
    slot; rows become int64 only past 2**31 rows), 48 at worst with a power-of-two table
    grown at half full — 400 MB instead of 200 MB for a 10M-row list's 8.4M numbers.
    """

    __slots__ = ("_count", "_keys", "_rows", "_size")

    _EMPTY: Final = -1
    _MULTIPLIER: Final = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: 2**64 / phi
    #: The table grows when fuller than this, to a size that makes it this full:
    _MAX_LOAD: Final = 0.75
    _GROWN_LOAD: Final = 0.5
    _REPLACE_SLICE: Final = 1 << 18
    #: The largest table made up front from a guess (768 MB); beyond it the set grows.
    _MAX_INITIAL: Final = 1 << 26

    def __init__(self, size: int = 1 << 16) -> None:
        self._size = max(1, size)
        self._keys = np.full(self._size, self._EMPTY, dtype=np.int64)
        self._rows: npt.NDArray[np.int32] | npt.NDArray[np.int64] = np.zeros(
            self._size, dtype=np.int32
        )
        self._count = 0

    @classmethod
    def for_numbers(cls, expected: int) -> _SeenNumbers:
        """A set sized to hold ``expected`` numbers without growing."""
        return cls(max(1 << 16, min(cls._MAX_INITIAL, int(expected / cls._MAX_LOAD) + 1)))

    def _slots(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        # The hash's top 32 bits scaled to the table's size (Lemire's range reduction): a
        # multiply and a shift, where a modulo would be several times slower.
        high = (keys.astype(np.uint64) * self._MULTIPLIER) >> np.uint64(32)
        return ((high * np.uint64(self._size)) >> np.uint64(32)).astype(np.int64)

    def _next(self, slots: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        slots += 1
        slots[slots == self._size] = 0
        return slots

    def find(
        self, keys: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """For distinct ``keys``: which were seen, and the row each was first seen at."""
        known = np.zeros(len(keys), dtype=np.bool_)
        origin = np.zeros(len(keys), dtype=np.int64)
        if not self._count:
            return known, origin
        todo = np.arange(len(keys))
        slots = self._slots(keys)
        while len(todo):
            found = self._keys[slots]
            hit = found == keys[todo]
            known[todo[hit]] = True
            origin[todo[hit]] = self._rows[slots[hit]]  # widened to int64
            going_on = ~hit & (found != self._EMPTY)
            todo = todo[going_on]
            slots = self._next(slots[going_on])
        return known, origin

    def add(self, keys: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> None:
        """Add distinct ``keys`` (positive), none seen before, first seen at ``rows``."""
        if len(rows) and rows.max() > np.iinfo(self._rows.dtype).max:
            self._rows = self._rows.astype(np.int64)
        wanted = self._count + len(keys)
        if wanted > self._MAX_LOAD * self._size:
            self._grow(wanted)
        self._place(keys, rows)
        self._count += len(keys)

    def _place(self, keys: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> None:
        todo = np.arange(len(keys))
        slots = self._slots(keys)
        while len(todo):
            free = self._keys[slots] == self._EMPTY
            # Keys wanting the same free slot: one of them lands there (numpy keeps one of the
            # values written to one place), the others probe on.
            self._keys[slots[free]] = keys[todo[free]]
            landed = self._keys[slots] == keys[todo]
            self._rows[slots[landed]] = rows[todo[landed]]
            going_on = ~landed
            todo = todo[going_on]
            slots = self._next(slots[going_on])

    def _grow(self, wanted: int) -> None:
        used = self._keys != self._EMPTY
        keys, rows = self._keys[used], self._rows[used]
        # The old table goes before the new one is made: only the numbers are held twice.
        del used
        self._keys = self._rows = np.zeros(0, dtype=np.int64)
        self._size = max(self._size + 1, int(wanted / self._GROWN_LOAD) + 1)
        self._keys = np.full(self._size, self._EMPTY, dtype=np.int64)
        self._rows = np.zeros(self._size, dtype=rows.dtype)
        # A slice at a time: placing all at once makes several temporaries of every number's
        # size (hashes, slots, positions: +250 MB at 5.6M numbers, the run's peak).
        for start in range(0, len(keys), self._REPLACE_SLICE):
            stop = start + self._REPLACE_SLICE
            self._place(keys[start:stop], rows[start:stop])


class _RawChunk:
    """Consecutive input rows: numbers, string columns and, when read as lists, the rows."""

    __slots__ = ("columns", "numbers", "rows")

    def __init__(
        self, numbers: list[int], rows: list[list[str]] | None, columns: list[pa.Array]
    ) -> None:
        self.numbers = numbers
        self.rows = rows
        self.columns = columns

    def __len__(self) -> int:
        return len(self.numbers)

    def slice(self, start: int, stop: int) -> _RawChunk:
        return _RawChunk(
            self.numbers[start:stop],
            self.rows[start:stop] if self.rows is not None else None,
            [column.slice(start, stop - start) for column in self.columns],
        )


def _split(parts: list[_RawChunk], size: int) -> tuple[_RawChunk, list[_RawChunk], int]:
    """The first ``size`` rows of ``parts`` as one chunk, the rest, and the rows left."""
    taken: list[_RawChunk] = []
    wanted = size
    while wanted and parts:
        part = parts[0]
        if len(part) <= wanted:
            taken.append(parts.pop(0))
            wanted -= len(part)
        else:
            taken.append(part.slice(0, wanted))
            parts[0] = part.slice(wanted, len(part))
            wanted = 0
    rest = sum(len(part) for part in parts)
    if len(taken) == 1:
        return taken[0], parts, rest
    numbers = [n for part in taken for n in part.numbers]
    rows: list[list[str]] | None = None
    if all(part.rows is not None for part in taken):
        rows = [row for part in taken for row in part.rows or ()]
    width = len(taken[0].columns)
    columns = [pa.concat_arrays([part.columns[i] for part in taken]) for i in range(width)]
    return _RawChunk(numbers, rows, columns), parts, rest


def _chunk_sizes(rows: int, size: int) -> list[int]:
    """The sizes of the chunks of ``size`` rows (the last may be shorter) of ``rows`` rows."""
    return [min(size, rows - start) for start in range(0, rows, size)]


def _to_columns(rows: list[list[str]], width: int) -> list[pa.Array]:
    """Rows of exactly ``width`` cells as string columns."""
    if not rows:
        return [pa.array([], pa.string()) for _ in range(width)]
    return [pa.array(cells, pa.string()) for cells in zip(*rows, strict=True)]


class ChunkColumns:
    """The packed, column-wise results of one chunk; builds :class:`ChunkResult` fields."""

    __slots__ = ("codes", "columns", "duplicate_of", "number_array", "numbers", "packed")

    def __init__(
        self,
        numbers: list[int],
        number_array: npt.NDArray[np.int64],
        columns: list[pa.Array],
        codes: npt.NDArray[np.int8],
        duplicate_of: npt.NDArray[np.int64],
        packed: PackedResult,
    ) -> None:
        self.numbers = numbers
        self.number_array = number_array
        #: The original columns (plus the surplus-cells column when ragged rows are allowed).
        self.columns = columns
        #: :data:`REASON_CODES` index per row; 0 for kept rows.
        self.codes = codes
        #: The row a duplicate repeats; 0 when none.
        self.duplicate_of = duplicate_of
        self.packed = packed

    def materialise(self, name: str) -> Any:
        packed = self.packed
        if name == "row_numbers":
            return self.numbers
        if name == "rows":
            cells = [column.to_pylist() for column in self.columns]
            return [list(row) for row in zip(*cells, strict=True)]
        if name == "statuses":
            return list(map(_STATUSES.__getitem__, (self.codes == 0).tolist()))
        if name == "reject_reasons":
            return list(map(REASON_CODES.__getitem__, self.codes.tolist()))
        if name == "duplicate_of_rows":
            return [row or None for row in self.duplicate_of.tolist()]
        if name == "e164":
            return packed.e164.to_pylist()
        if name == "number_types":
            return list(map(TYPE_CODES.__getitem__, packed.types.tolist()))
        if name == "regions":
            return list(map(packed.region_table.__getitem__, packed.region_ids.tolist()))
        if name == "time_zones":
            return list(map(packed.zone_table.__getitem__, packed.zone_ids.tolist()))
        if name == "extensions":
            return packed.extensions.to_pylist()
        if name == "carriers":
            return list(map(packed.carrier_table.__getitem__, packed.carrier_ids.tolist()))
        if name == "virtual_operator":
            return packed.virtual.tolist()
        if name == "alternate_phones":
            alternates: list[tuple[str, ...]] = [()] * len(self.numbers)
            split = packed.split
            if split is not None:
                for row, found in zip(split.rows.tolist(), split.alternates, strict=True):
                    alternates[row] = found
            return alternates
        raise AttributeError(name)


_DUPLICATE: Final = REASON_CODES.index(RejectReason.DUPLICATE)
_DNC: Final = REASON_CODES.index(RejectReason.DNC)
_STATUSES: Final = (RowStatus.REJECTED, RowStatus.KEPT)
_TYPE_NAMES: Final = [t.value if t is not None else "" for t in TYPE_CODES]
_ZONE_JOIN: Final = "|".join


def _e164s(packed: PackedResult, rows: npt.NDArray[np.intp]) -> list[str | None]:
    """The E.164 numbers of some rows of a chunk."""
    return list(packed.e164.take(pa.array(rows, type=pa.int64())).to_pylist())


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
    suppression: Suppression | Iterable[Suppression] | None = None,
    *,
    prior_numbers: PriorNumbers | None = None,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
    precomputed: Iterable[PackedResult] | None = None,
) -> CleaningRun:
    """Open and check a lead list and return the run that streams its cleaned chunks.

    ``precomputed``: the list's normalised chunks, in order, from
    :meth:`CleaningRun.normalise_chunks` runs (a list cleaned in parts); only deduplication,
    suppression and counting are then done here.
    """
    options = options or CleaningOptions()
    started = clock()
    # Validate the region and types before touching the file.
    PhoneNormaliser(options.default_region, options.excluded_types)
    reader = open_table(
        source,
        columnar=True,
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
        sets: list[Suppression] = []
    elif isinstance(suppression, SuppressionSet | NumberSet):
        sets = [suppression]
    else:
        sets = list(suppression)
    return CleaningRun(
        reader,
        options,
        phone_column,
        sample,
        sets,
        prior_numbers,
        progress,
        clock,
        started,
        iter(precomputed) if precomputed is not None else None,
    )
