"""Lead lists: upload, background cleaning into leads, reports and downloads.

An upload is stored as a database file and a ``LeadList`` in ``uploaded`` state; the
``import_list_job`` cleans it with :mod:`data_cleaning` (normalise, dedupe, suppress, enrich)
and writes one ``Lead`` per kept row, the cleaned and rejected rows as downloadable CSV files
(formula cells neutralised) and the cleaning report. Leads are committed chunk by chunk so
progress is visible and memory stays flat; the list only becomes ``ready`` at the very end,
and a failure deletes whatever was imported and marks the list ``failed`` with the reason, so
nothing half-imported is ever usable.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import insert
from sqlmodel import Session, SQLModel, col, delete, select

from campaigns.list_parts import estimate_rows, normalised_in_parts, part_count
from campaigns.models import Lead, LeadList, ListStatus
from campaigns.suppression import client_suppression_set
from core.db import get_or_404, utcnow
from core.errors import InvalidInput, PayloadTooLarge, QueueUnavailable
from core.files import delete_file, materialise, save_file, save_path
from core.jobs import JobContext, submit_job, when_lost
from core.settings import get_settings
from data_cleaning import (
    CleanedWriter,
    CleaningOptions,
    CleaningProgress,
    NumberType,
    RejectsWriter,
    RowStatus,
    clean_table,
)
from data_cleaning.columns import detect_phone_column
from data_cleaning.exceptions import DataCleaningError, InputTooLargeError
from data_cleaning.readers import check_table

__all__ = [
    "LeadListPublic",
    "LeadPublic",
    "create_list_from_upload",
    "delete_list",
    "import_list_job",
    "list_leads",
]


def parse_excluded_types(raw: Iterable[str]) -> frozenset[NumberType]:
    """Number types named by the client, validated against the known ones."""
    known = {t.value for t in NumberType}
    types = set()
    for item in raw:
        for name in item.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in known:
                raise InvalidInput(
                    f"unknown number type {name!r} in excluded_types; use any of: "
                    + ", ".join(sorted(known))
                )
            types.add(NumberType(name))
    return frozenset(types)


def create_list_from_upload(
    *,
    session: Session,
    client_id: uuid.UUID,
    filename: str,
    chunks: Iterable[bytes],
    name: str | None,
    region: str,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    excluded_types: Sequence[str] = (),
    allow_ragged: bool = False,
    dedupe_against: Sequence[uuid.UUID] = (),
) -> LeadList:
    """Store an upload (size-limited), record the list, commit, and queue its cleaning job."""
    region = region.upper()
    parse_excluded_types(excluded_types)
    for other in dedupe_against:
        get_or_404(session, LeadList, other, what="lead list")
    limit = get_settings().max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="pilotdial-upload-", dir=_tmp_root()) as spool:
        # Spooled to disk and checked before anything is stored: a PDF, a header-only file, a
        # 1M-column header or a decompression bomb is refused at once.
        path = Path(spool) / upload_name(filename)
        size = _spool(chunks, path, limit, filename)
        if size == 0:
            raise InvalidInput(
                f"{filename} is empty; upload a CSV, TSV or XLSX file with a header row"
            )
        _refuse_zip_that_is_no_workbook(path, filename)
        try:
            table = check_table(path, encoding=encoding, sheet=sheet)
            if phone_column:  # a misspelt column is known from the header: say so now
                detect_phone_column(table.columns, [], explicit=phone_column)
        except InputTooLargeError as exc:
            raise PayloadTooLarge(api_message(str(exc))) from exc
        except DataCleaningError as exc:
            raise InvalidInput(api_message(str(exc))) from exc
        stored = save_file(
            session, client_id=client_id, filename=filename, chunks=_read(path), max_bytes=limit
        )
    lead_list = LeadList(
        client_id=client_id,
        name=name or filename,
        filename=filename,
        status=ListStatus.uploaded,
        default_region=region,
        phone_column=phone_column,
        encoding=encoding,
        sheet=sheet,
        upload_file_id=stored.id,
        rows_done=0,
        job_id=uuid.uuid4(),
    )
    session.add(lead_list)
    session.flush()
    try:
        # The list, its file and its job are committed together before the job is queued: a
        # database gone between them cannot leave a list "uploaded" with no job.
        job = submit_job(
            session=session,
            job_id=lead_list.job_id,
            client_id=client_id,
            kind="list_import",
            handler="campaigns.lists:import_list_job",
            params={
                "list_id": str(lead_list.id),
                "excluded_types": list(excluded_types),
                "allow_ragged": allow_ragged,
                "dedupe_against": [str(x) for x in dedupe_against],
            },
        )
    except QueueUnavailable as exc:
        # Never left "uploaded" for a job nobody will run: failed, its file gone, committed.
        delete_file(session, stored.id)
        lead_list.upload_file_id = None
        lead_list.job_id = uuid.UUID(exc.job_id)
        lead_list.status = ListStatus.failed
        lead_list.error = (
            "the job queue was unavailable, so the list was not cleaned; upload it again"
        )
        lead_list.finished_at = utcnow()
        session.add(lead_list)
        session.commit()
        raise
    lead_list.job_id = job.id
    session.add(lead_list)
    session.flush()
    return lead_list


#: Option names in the cleaner's messages (its CLI flags) and the API fields that set them.
_API_FIELDS = {
    "--phone-column": "phone_column",
    "--allow-ragged": "allow_ragged",
    "--encoding": "encoding",
    "--sheet": "sheet",
    "--exclude-type": "excluded_types",
    "--region": "region",
}
_FLAG = re.compile("|".join(re.escape(flag) for flag in _API_FIELDS))
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")


def api_message(message: str) -> str:
    """A cleaner message as API users read it: the API's field names, not the CLI's flags."""
    message = message.replace("as the phone column", "as the phone_column field")
    return _FLAG.sub(lambda match: f"the {_API_FIELDS[match.group(0)]} field", message)


def upload_name(filename: str) -> str:
    """A local file name for an upload that keeps its name (and extension) recognisable."""
    name = _UNSAFE_NAME.sub("_", Path(filename.replace("\\", "/")).name).strip(" .")
    return name[-120:] or "upload.csv"


_WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


def _refuse_zip_that_is_no_workbook(path: Path, filename: str) -> None:
    """A zip upload must be an XLSX workbook under an XLSX name (openpyxl reads no other)."""
    with path.open("rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            return
    try:
        with zipfile.ZipFile(path) as archive:  # reads the directory only, not the members
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(
            f"{filename} is a damaged zip archive: upload the list as CSV (UTF-8) or XLSX"
        ) from exc
    if "xl/workbook.xml" not in names:
        raise InvalidInput(
            f"{filename} is a zip archive, not an XLSX workbook: unzip it and upload the CSV "
            "or XLSX file inside"
        )
    if path.suffix.lower() not in _WORKBOOK_SUFFIXES:
        raise InvalidInput(
            f"{filename} is an XLSX workbook under another name: rename it to end in .xlsx "
            "and upload it again"
        )


def _spool(chunks: Iterable[bytes], path: Path, limit: int, filename: str) -> int:
    size = 0
    with path.open("wb") as handle:
        for piece in chunks:
            size += len(piece)
            if size > limit:
                raise PayloadTooLarge(
                    f"{filename} is larger than the {limit:,}-byte upload limit; split the list "
                    "or ask an operator to raise PILOTDIAL_MAX_UPLOAD_BYTES",
                    extra={"limit_bytes": limit},
                )
            handle.write(piece)
    return size


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(1 << 20):
            yield piece


def import_list_job(ctx: JobContext) -> dict[str, Any]:
    """Background job: clean an uploaded list into leads, files and a report."""
    list_id = uuid.UUID(ctx.params["list_id"])
    try:
        return _import(ctx, list_id)
    except (DataCleaningError, InvalidInput) as exc:
        message = api_message(str(exc))
        _fail(ctx, list_id, message)
        raise InvalidInput(message) from exc
    except Exception as exc:
        _fail(ctx, list_id, f"internal error while cleaning: {exc}")
        raise


@when_lost("campaigns.lists:import_list_job")
def _import_lost(ctx: JobContext, reason: str) -> None:
    _fail(ctx, uuid.UUID(ctx.params["list_id"]), reason)


def _fail(ctx: JobContext, list_id: uuid.UUID, reason: str) -> None:
    with ctx.session() as session:
        session.exec(delete(Lead).where(col(Lead.list_id) == list_id))
        lead_list = session.get(LeadList, list_id)
        if lead_list is None:
            return
        for file_id in (lead_list.cleaned_file_id, lead_list.rejects_file_id):
            if file_id is not None:
                delete_file(session, file_id)
        lead_list.cleaned_file_id = lead_list.rejects_file_id = None
        lead_list.status = ListStatus.failed
        lead_list.error = reason
        lead_list.finished_at = utcnow()
        session.add(lead_list)


def _import(ctx: JobContext, list_id: uuid.UUID) -> dict[str, Any]:
    settings = get_settings()
    workdir = Path(tempfile.mkdtemp(prefix="pilotdial-list-", dir=_tmp_root()))
    with ctx.session() as session:
        lead_list: LeadList = get_or_404(session, LeadList, list_id, what="lead list")
        if lead_list.upload_file_id is None:
            raise InvalidInput("the list has no uploaded file; upload it again")
        # A re-run after a crash starts from a clean slate.
        session.exec(delete(Lead).where(col(Lead.list_id) == list_id))
        lead_list.status = ListStatus.processing
        lead_list.error = None
        lead_list.rows_done = 0
        lead_list.job_id = ctx.job_id
        session.add(lead_list)
        # Under the upload's own name, so that every message about the file names it.
        source = materialise(session, lead_list.upload_file_id, workdir)
        source = source.rename(workdir / upload_name(lead_list.filename))
        suppression = client_suppression_set(session=session)
        prior: set[str] = set()
        for other in ctx.params.get("dedupe_against", []):
            prior.update(
                session.exec(select(Lead.phone_e164).where(Lead.list_id == uuid.UUID(other)))
            )
        options = CleaningOptions(
            default_region=lead_list.default_region,
            excluded_types=parse_excluded_types(ctx.params.get("excluded_types", [])),
            phone_column=lead_list.phone_column,
            encoding=lead_list.encoding,
            sheet=lead_list.sheet,
            allow_ragged=bool(ctx.params.get("allow_ragged", False)),
            max_input_bytes=settings.max_upload_bytes,
            # The cleaner's own choice: a worker process only for inputs big enough to gain from
            # one (a pool's start costs more than cleaning a small list; issue 19).
            workers=None,
        )
        client_id = lead_list.client_id
        upload_file_id = lead_list.upload_file_id
    parts, rows_estimate = 1, 0
    if not settings.embedded:
        info = check_table(source, encoding=options.encoding, sheet=options.sheet)
        rows_estimate = estimate_rows(source, info)
        parts = part_count(rows_estimate, settings.list_split_rows)

    def on_progress(p: CleaningProgress) -> None:
        ctx.progress(p.rows_done, p.rows_total_estimate, unit="rows")

    cleaned_path, rejects_path = workdir / "cleaned.csv", workdir / "rejects.csv"
    part_workers: list[str] = []
    with contextlib.ExitStack() as stack:
        precomputed = None
        if parts > 1:
            # Normalised by several workers, then finished here exactly as in one run.
            in_parts = stack.enter_context(
                normalised_in_parts(
                    job_id=ctx.job_id,
                    client_id=client_id,
                    upload_file_id=upload_file_id,
                    source=source,
                    options=options,
                    suppression=suppression,
                    parts=parts,
                    rows_estimate=rows_estimate,
                )
            )
            precomputed, part_workers = in_parts.chunks, in_parts.workers
        run = clean_table(
            source,
            options,
            suppression,
            prior_numbers=prior or None,
            # In parts, the job's progress is the rows normalised across the workers.
            progress=on_progress if parts == 1 else None,
            precomputed=precomputed,
        )
        with (
            run,
            cleaned_path.open("w", encoding="utf-8", newline="") as cleaned_fh,
            rejects_path.open("w", encoding="utf-8", newline="") as rejects_fh,
        ):
            cleaned_writer = CleanedWriter(cleaned_fh, run.columns, neutralise=True)
            rejects_writer = RejectsWriter(rejects_fh, run.columns, neutralise=True)
            for chunk in run:
                cleaned_writer.write_chunk(chunk)
                rejects_writer.write_chunk(chunk)
                rows = []
                now = utcnow()
                alternates = chunk.alternate_phones
                for i, status in enumerate(chunk.statuses):
                    if status is not RowStatus.KEPT:
                        continue
                    number_type = chunk.number_types[i]
                    rows.append(
                        {
                            "id": uuid.uuid4(),
                            "client_id": client_id,
                            "list_id": list_id,
                            "row_number": chunk.row_numbers[i],
                            "phone_e164": chunk.e164[i],
                            "phone_type": number_type.value if number_type else "unknown",
                            "phone_region": iso_region(chunk.e164[i] or ""),
                            "phone_region_desc": chunk.regions[i] or "",
                            "phone_timezones": list(chunk.time_zones[i]),
                            "phone_extension": chunk.extensions[i] or None,
                            "phone_carrier": chunk.carriers[i] or None,
                            "virtual_operator": chunk.virtual_operator[i],
                            "alternate_phones": list(alternates[i]),
                            "attributes": dict(zip(chunk.columns, chunk.rows[i], strict=False)),
                            "created_at": now,
                        }
                    )
                with ctx.session() as session:
                    if rows:
                        session.execute(insert(Lead), rows)
                    lead_list = session.get(LeadList, list_id)  # type: ignore[assignment]
                    if len(chunk):
                        lead_list.rows_done = chunk.row_numbers[-1]
                    session.add(lead_list)
    report = run.report
    with ctx.session() as session:
        csv_type = "text/csv; charset=utf-8"
        cleaned = save_path(
            session, client_id=client_id, path=cleaned_path, content_type=csv_type
        ).id
        rejects = save_path(
            session, client_id=client_id, path=rejects_path, content_type=csv_type
        ).id
        lead_list = session.get(LeadList, list_id)  # type: ignore[assignment]
        lead_list.cleaned_file_id = cleaned
        lead_list.rejects_file_id = rejects
        lead_list.report = {
            **report.to_json_dict(),
            "phone_column": report.phone_column,
            "encoding": report.encoding,
            "ragged_rows": report.ragged_rows,
            "virtual_operator": report.virtual_operator,
        }
        lead_list.rows_total = report.rows_in
        lead_list.rows_done = report.rows_in
        lead_list.status = ListStatus.ready
        lead_list.finished_at = utcnow()
        session.add(lead_list)
    for path in (source, cleaned_path, rejects_path):
        path.unlink(missing_ok=True)
    workdir.rmdir()
    ctx.progress(report.rows_in, report.rows_in, unit="rows")
    result = {"list_id": str(list_id), **report.to_json_dict()}
    if part_workers:
        result["parts"] = [{"part": k + 1, "worker": w} for k, w in enumerate(part_workers)]
    return result


@lru_cache(maxsize=4096)
def _regions_for_code(country_code: int) -> tuple[str, ...]:
    return tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()))


def iso_region(e164: str) -> str:
    """The ISO region of an E.164 number; exact parsing only for shared codes such as +1."""
    digits = e164.lstrip("+")
    for length in (1, 2, 3):
        regions = _regions_for_code(int(digits[:length])) if digits[:length].isdigit() else ()
        if regions:
            if len(regions) == 1:
                return regions[0]
            parsed = phonenumbers.parse(e164, None)
            return phonenumbers.region_code_for_number(parsed) or regions[0]
    return ""


def _tmp_root() -> Path:
    root = get_settings().data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def list_leads(*, session: Session, list_id: uuid.UUID, limit: int, offset: int) -> list[Lead]:
    """A page of a list's leads in input order."""
    get_or_404(session, LeadList, list_id, what="lead list")
    stmt = (
        select(Lead)
        .where(Lead.list_id == list_id)
        .order_by(col(Lead.row_number))
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(stmt))


def delete_list(*, session: Session, list_id: uuid.UUID) -> None:
    """Delete a list, its leads and its files for good (the client's right to erasure)."""
    lead_list: LeadList = get_or_404(session, LeadList, list_id, what="lead list")
    session.exec(delete(Lead).where(col(Lead.list_id) == list_id))
    files = [lead_list.upload_file_id, lead_list.cleaned_file_id, lead_list.rejects_file_id]
    session.delete(lead_list)
    session.flush()
    for file_id in files:
        if file_id is not None:
            delete_file(session, file_id)


class LeadListPublic(SQLModel):
    """A lead list as clients see it: status, progress, counts and what to download."""

    id: uuid.UUID
    name: str
    filename: str
    status: ListStatus
    default_region: str
    phone_column: str | None
    rows_total: int | None
    rows_done: int
    error: str | None
    report: dict[str, Any] | None
    job_id: uuid.UUID | None
    created_at: datetime
    finished_at: datetime | None


class LeadPublic(SQLModel):
    """One cleaned lead with its original row."""

    id: uuid.UUID
    list_id: uuid.UUID
    row_number: int
    phone_e164: str
    phone_type: str
    phone_region: str
    phone_timezones: list[str]
    phone_extension: str | None
    phone_carrier: str | None
    virtual_operator: bool
    #: Other numbers the row's phone cell held (E.164), e.g. "138… / 139…".
    alternate_phones: list[str] = []
    attributes: dict[str, Any]
