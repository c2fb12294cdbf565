"""Big lists cleaned by several RQ workers: parts normalised in parallel, then finished once.

A list upload whose estimated rows exceed ``Settings.list_split_rows`` (with Redis only: the
embedded default runs jobs in one process) is cut into parts of whole chunks. The import job,
the coordinator, records the parts in Redis, queues helper jobs for the other workers and
normalises parts itself too; a worker claims a part by popping it from the list, so a part is
done once however many workers there are (with none but the coordinator, it does them all).
Each part's normalised chunks are stored as a file in the database (workers may run on other
machines; they share the database and Redis). When every part is in, the coordinator finishes
the list from them in row order: deduplication, prior lists, do-not-call, counting, leads and
files, exactly as one process cleaning the whole list (see
:meth:`data_cleaning.pipeline.CleaningRun.normalise_chunks`).

Progress while the parts are normalised is the rows done by all workers together, on the
import job's record. A part a worker claimed but did not finish (the worker died) is done
again by the coordinator once it has waited for it longer than ``_STALE_PART_S``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from redis import Redis
from sqlalchemy import or_, update
from sqlmodel import col

from campaigns.suppression import client_suppression_set
from core.db import system_session, tenant_session
from core.errors import InvalidInput
from core.files import delete_file, materialise, save_path
from core.models import JobRecord
from core.queue import enqueue_call, get_redis
from core.settings import get_settings
from data_cleaning import CleaningOptions, NumberType, clean_table
from data_cleaning.exceptions import DataCleaningError
from data_cleaning.packed_io import read_packed, write_packed
from data_cleaning.readers import TableInfo
from data_cleaning.suppression import Suppression
from data_cleaning.vectorised import PackedResult

__all__ = ["PartsRun", "estimate_rows", "help_clean_parts", "normalised_in_parts", "part_count"]

_PREFIX: Final = "pilotdial:list-parts"
_TTL_S: Final = 24 * 3600
_POLL_S: Final = 0.05
#: A claimed part not done after this long is done again by the coordinator.
_STALE_PART_S: Final = 600.0
_MAX_HELPERS: Final = 16
_SAMPLE_BYTES: Final = 1 << 20


def estimate_rows(path: Path, info: TableInfo) -> int:
    """About how many data rows the list has (the workbook's count, else from its bytes)."""
    if info.rows_hint:
        return info.rows_hint
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    lines = max(1, sample.count(b"\n"))
    return max(0, round(info.size_bytes * lines / max(1, len(sample))) - 1)


def part_count(rows: int, split_rows: int) -> int:
    """How many parts a list of about ``rows`` rows is cleaned in (1: not split)."""
    return 1 if rows <= split_rows else math.ceil(rows / split_rows)


def _keys(job_id: str) -> dict[str, str]:
    base = f"{_PREFIX}:{job_id}"
    return {
        name: f"{base}:{name}"
        for name in ("spec", "todo", "claimed", "done", "by", "failed", "rows")
    }


def _options_dict(options: CleaningOptions) -> dict[str, Any]:
    return {
        "default_region": options.default_region,
        "excluded_types": sorted(t.value for t in options.excluded_types),
        "phone_column": options.phone_column,
        "encoding": options.encoding,
        "sheet": options.sheet,
        "delimiter": options.delimiter,
        "allow_ragged": options.allow_ragged,
        "max_input_bytes": options.max_input_bytes,
        "language": options.language,
        "chunk_rows": options.chunk_rows,
    }


def _options(spec: dict[str, Any]) -> CleaningOptions:
    values = dict(spec["options"])
    values["excluded_types"] = frozenset(NumberType(t) for t in values["excluded_types"])
    # Each worker is one process: the parallelism is the workers'.
    return CleaningOptions(**values, workers=0)


@dataclass(frozen=True, slots=True)
class PartsRun:
    """The normalised chunks of every part, in order, and which worker did each part."""

    chunks: Iterator[PackedResult]
    #: ``host:pid`` of the worker that normalised each part.
    workers: list[str]


@contextmanager
def normalised_in_parts(
    *,
    job_id: uuid.UUID,
    client_id: uuid.UUID,
    upload_file_id: uuid.UUID,
    source: Path,
    options: CleaningOptions,
    suppression: Suppression,
    parts: int,
    rows_estimate: int,
) -> Iterator[PartsRun]:
    """Have the list normalised in ``parts`` parts by the workers; yield all chunks in order.

    The parts' files and Redis keys are removed on the way out, whatever happened.
    """
    settings = get_settings()
    assert settings.redis_url, "cleaning in parts needs Redis"
    redis = get_redis(settings.redis_url)
    keys = _keys(str(job_id))
    chunks = max(1, math.ceil(rows_estimate / max(1, options.chunk_rows)))
    spec = {
        "client_id": str(client_id),
        "upload_file_id": str(upload_file_id),
        "filename": source.name,
        "options": _options_dict(options),
        "parts": parts,
        "chunks_per_part": max(1, math.ceil(chunks / parts)),
        "rows_estimate": rows_estimate,
    }
    with redis.pipeline() as pipe:
        pipe.delete(*keys.values())
        pipe.set(keys["spec"], json.dumps(spec), ex=_TTL_S)
        pipe.rpush(keys["todo"], *range(parts))
        pipe.expire(keys["todo"], _TTL_S)
        pipe.execute()
    workdir = Path(tempfile.mkdtemp(prefix="pilotdial-parts-", dir=source.parent))
    try:
        for _ in range(min(parts - 1, _MAX_HELPERS)):
            enqueue_call("campaigns.list_parts.help_clean_parts", str(job_id), settings=settings)
        # The coordinator works too: with no free worker it does every part itself.
        _work(redis, keys, spec, str(job_id), source, suppression)
        files = _wait(redis, keys, spec, str(job_id), source, suppression)
        paths = []
        with tenant_session([client_id]) as session:
            for part, file_id in enumerate(files):
                path = materialise(session, file_id, workdir)
                paths.append(path.rename(workdir / f"part{part}.arrow"))
        by = redis.hgetall(keys["by"])
        workers = [by.get(str(part).encode(), b"?").decode() for part in range(parts)]
        yield PartsRun((packed for path in paths for packed in read_packed(path)), workers)
    finally:
        done = redis.hgetall(keys["done"])
        redis.delete(*keys.values())
        with tenant_session([client_id]) as session:
            for stored in done.values():
                delete_file(session, uuid.UUID(stored.decode()))
        for path in workdir.iterdir():
            path.unlink(missing_ok=True)
        workdir.rmdir()


def _wait(
    redis: Redis[bytes],
    keys: dict[str, str],
    spec: dict[str, Any],
    job_id: str,
    source: Path,
    suppression: Suppression,
) -> list[uuid.UUID]:
    """The file of every part, once all are done; a failed part fails the whole."""
    parts = spec["parts"]
    while True:
        failed = redis.get(keys["failed"])
        if failed is not None:
            problem = json.loads(failed)
            if problem["input"]:  # the list's own fault, said as for a list cleaned at once
                raise InvalidInput(problem["message"])
            raise RuntimeError(f"cleaning the list in parts failed: {problem['message']}")
        done = redis.hgetall(keys["done"])
        if len(done) >= parts:
            return [uuid.UUID(done[str(part).encode()].decode()) for part in range(parts)]
        now = time.time()
        for part, claimed_at in redis.hgetall(keys["claimed"]).items():
            if part not in done and now - float(claimed_at) > _STALE_PART_S:
                # Its worker is gone (or hopelessly slow): do it here; the first copy wins.
                _do_part(redis, keys, spec, job_id, source, suppression, int(part))
        time.sleep(_POLL_S)


def help_clean_parts(job_id: str) -> int:
    """RQ job: normalise parts of the list being imported by job ``job_id``; parts done."""
    settings = get_settings()
    assert settings.redis_url
    redis = get_redis(settings.redis_url)
    keys = _keys(job_id)
    raw = redis.get(keys["spec"])
    if raw is None or redis.llen(keys["todo"]) == 0:
        return 0  # finished (or failed) before this helper started
    spec = json.loads(raw)
    client_id = uuid.UUID(spec["client_id"])
    with tempfile.TemporaryDirectory(prefix="pilotdial-part-", dir=_tmp_root()) as temp:
        with tenant_session([client_id]) as session:
            path = materialise(session, uuid.UUID(spec["upload_file_id"]), Path(temp))
            suppression = client_suppression_set(session=session)
        source = path.rename(Path(temp) / spec["filename"])
        return _work(redis, keys, spec, job_id, source, suppression)


def _work(
    redis: Redis[bytes],
    keys: dict[str, str],
    spec: dict[str, Any],
    job_id: str,
    source: Path,
    suppression: Suppression,
) -> int:
    """Claim and normalise parts until none is left; returns how many this process did."""
    done = 0
    while redis.get(keys["failed"]) is None:
        claimed = redis.lpop(keys["todo"])
        if claimed is None:
            return done
        part = int(claimed)
        redis.hset(keys["claimed"], str(part), str(time.time()))
        redis.expire(keys["claimed"], _TTL_S)
        _do_part(redis, keys, spec, job_id, source, suppression, part)
        done += 1
    return done


def _do_part(
    redis: Redis[bytes],
    keys: dict[str, str],
    spec: dict[str, Any],
    job_id: str,
    source: Path,
    suppression: Suppression,
    part: int,
) -> None:
    client_id = uuid.UUID(spec["client_id"])
    per_part = spec["chunks_per_part"]
    first = part * per_part
    stop = None if part == spec["parts"] - 1 else first + per_part  # the last part: to the end
    try:
        run = clean_table(source, _options(spec), suppression)

        def counted() -> Iterator[PackedResult]:
            for packed in run.normalise_chunks(first, stop):
                yield packed
                total = int(redis.incrby(keys["rows"], len(packed.reasons)))
                redis.expire(keys["rows"], _TTL_S)
                _progress(uuid.UUID(job_id), total, spec["rows_estimate"])

        with tempfile.TemporaryDirectory(prefix="pilotdial-part-", dir=_tmp_root()) as temp:
            path = Path(temp) / f"part{part}.arrow"
            write_packed(path, counted(), suppression_sets=1)
            with tenant_session([client_id]) as session:
                file_id = save_path(session, client_id=client_id, path=path).id
        if redis.hsetnx(keys["done"], str(part), str(file_id)):
            redis.hset(keys["by"], str(part), f"{socket.gethostname()}:{os.getpid()}")
        else:
            with tenant_session([client_id]) as session:  # another copy was first
                delete_file(session, file_id)
        for name in ("done", "by"):
            redis.expire(keys[name], _TTL_S)
    except Exception as exc:
        if isinstance(exc, DataCleaningError):
            problem = {"input": True, "message": str(exc)}
        else:
            problem = {"input": False, "message": f"part {part + 1} of {spec['parts']}: {exc}"}
        redis.set(keys["failed"], json.dumps(problem), ex=_TTL_S)
        raise


def _progress(job_id: uuid.UUID, done: int, estimate: int) -> None:
    """Rows done by all workers on the job's record (never moving backwards)."""
    with system_session() as session:
        session.execute(
            update(JobRecord)
            .where(
                col(JobRecord.id) == job_id,
                or_(col(JobRecord.progress_done).is_(None), col(JobRecord.progress_done) < done),
            )
            .values(progress_done=done, progress_total=max(done, estimate), progress_unit="rows")
        )


def _tmp_root() -> Path:
    root = get_settings().data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root
