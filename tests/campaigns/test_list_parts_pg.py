"""A big list cleaned in parts by two real RQ workers equals the single-process result.

Real PostgreSQL and Redis, two real ``pilotdial worker`` processes (forking work horses). The
list (120,000 messy rows: formats, duplicates, invalid cells, multi-number cells, numbers on
the client's do-not-call list, a prior list to dedupe against) is over the split threshold
(``PILOTDIAL_LIST_SPLIT_ROWS=20000``), so it is normalised in six or more parts; the kept leads,
REJECTS.csv (reasons, duplicate_of_row), CLEANED.csv and the report must be exactly those of one
``clean_table`` run over the same file, and both workers must have done parts.
"""

from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Worker
from sqlmodel import select

ROWS = 120_000


def _messy(rows: int) -> tuple[bytes, list[str]]:
    rng = random.Random(19)
    numbers: list[str] = []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机", "备注"])
    for i in range(rows):
        draw = rng.random()
        if draw < 0.1 and numbers:
            phone = "0086 " + rng.choice(numbers)
        elif draw < 0.15:
            phone = rng.choice(["", "n/a", "12345", "138001380001234", "=cmd()"])
        else:
            number = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
            numbers.append(number)
            phone = f"{number[:3]} {number[3:7]} {number[7:]}" if i % 3 else number
            if rng.random() < 0.05:
                phone += f" / 1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        writer.writerow([f"客户{i}", phone, "" if i % 11 else "VIP, 回访"])
    return out.getvalue().encode("utf-8"), numbers


def _worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    code = (
        "from core.migrate import import_all_models; import_all_models(); "
        # Loaded before forking work horses, as a long-running worker has them.
        "import campaigns.lists, data_cleaning.pipeline; "
        "from core.queue import run_worker; from core.settings import get_settings; "
        "run_worker(get_settings())"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    stop = time.monotonic() + timeout_s
    while time.monotonic() < stop:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _stored_text(client_id: uuid.UUID, file_id: uuid.UUID) -> str:
    from core.files import stream_file

    return b"".join(stream_file(client_id, file_id)).decode("utf-8")


def test_two_workers_clean_a_big_list_exactly_as_one_process(
    pg_url: str, pg_engine: Any, redis_url: str, configure: Any, tmp_path: Path
) -> None:
    from campaigns.lists import create_list_from_upload
    from campaigns.models import Lead, LeadList, ListStatus
    from campaigns.suppression import add_numbers, client_suppression_set
    from core.admin import create_client
    from core.db import system_session, tenant_session
    from core.models import JobRecord, JobStatus
    from data_cleaning import CleaningOptions, RowStatus, clean_table
    from data_cleaning.writers import CleanedWriter, RejectsWriter

    configure(database_url=pg_url, redis_url=redis_url, list_split_rows="20000")
    content, numbers = _messy(ROWS)
    with system_session() as session:
        client_id = create_client(session=session, name="Parts").id
    with tenant_session([client_id]) as session:
        add_numbers(
            session=session,
            client_id=client_id,
            numbers=numbers[::50],
            region="CN",
            source="api",
        )
        prior_list = LeadList(
            client_id=client_id, name="earlier", filename="e.csv", status=ListStatus.ready
        )
        session.add(prior_list)
        session.flush()
        prior = [f"+86{n}" for n in numbers[7::97]]
        session.add_all(
            Lead(client_id=client_id, list_id=prior_list.id, row_number=i + 2, phone_e164=e164)
            for i, e164 in enumerate(prior)
        )
        prior_id = prior_list.id
        suppression = client_suppression_set(session=session)

    # The single-process reference, on the same bytes with the import's options.
    source = tmp_path / "leads.csv"
    source.write_bytes(content)
    options = CleaningOptions(default_region="CN", workers=0)
    reference = clean_table(source, options, suppression, prior_numbers=set(prior))
    kept: list[tuple[int, str | None, list[str]]] = []
    cleaned_ref, rejects_ref = io.StringIO(), io.StringIO()
    cleaned_writer = CleanedWriter(cleaned_ref, reference.columns, neutralise=True)
    rejects_writer = RejectsWriter(rejects_ref, reference.columns, neutralise=True)
    for chunk in reference:
        cleaned_writer.write_chunk(chunk)
        rejects_writer.write_chunk(chunk)
        kept += [
            (row.row_number, row.e164, list(row.alternate_phones))
            for row in chunk
            if row.status is RowStatus.KEPT
        ]
    expected_report = reference.report.to_json_dict() | {"elapsed_s": 0}

    env = dict(os.environ.items())
    redis = Redis.from_url(redis_url)
    logs = [(tmp_path / f"{name}.log").open("wb") for name in ("a", "b")]
    workers = [_worker(env, log) for log in logs]
    try:
        _wait(lambda: len(Worker.all(connection=redis)) == 2, 60, "two workers to start")
        with tenant_session([client_id]) as session:
            lead_list = create_list_from_upload(
                session=session,
                client_id=client_id,
                filename="big.csv",
                chunks=[content],
                name="big",
                region="CN",
                dedupe_against=[prior_id],
            )
            list_id, job_id = lead_list.id, lead_list.job_id

        def finished() -> bool:
            with tenant_session([client_id]) as session:
                found = session.get(LeadList, list_id)
                return found is not None and found.status in {ListStatus.ready, ListStatus.failed}

        _wait(finished, 300, "the list to be cleaned")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        for log in logs:
            log.close()
    worker_logs = "\n".join((tmp_path / f"{n}.log").read_text()[-3000:] for n in ("a", "b"))
    with tenant_session([client_id]) as session:
        lead_list = session.get(LeadList, list_id)
        assert lead_list is not None
        assert lead_list.status is ListStatus.ready, (lead_list.error, worker_logs)
        assert lead_list.report is not None
        report = {k: v for k, v in lead_list.report.items() if k in expected_report}
        assert report | {"elapsed_s": 0} == expected_report
        leads = session.exec(
            select(Lead).where(Lead.list_id == list_id).order_by(Lead.row_number)  # type: ignore[arg-type]
        ).all()
        assert [(x.row_number, x.phone_e164, x.alternate_phones) for x in leads] == kept
        assert lead_list.cleaned_file_id is not None
        assert lead_list.rejects_file_id is not None
        cleaned_id, rejects_id = lead_list.cleaned_file_id, lead_list.rejects_file_id
    assert _stored_text(client_id, rejects_id) == rejects_ref.getvalue()
    assert _stored_text(client_id, cleaned_id) == cleaned_ref.getvalue()
    with system_session() as session:
        job = session.get(JobRecord, job_id)
        assert job is not None
        assert job.status is JobStatus.succeeded, job
        assert job.result is not None
        parts = job.result["parts"]
        assert len(parts) >= 6  # 120,000 rows (as estimated from the bytes) / 20,000
        # Both worker processes normalised parts (the coordinator's and the other's).
        assert len({part["worker"] for part in parts}) == 2, (parts, worker_logs)
        assert (job.progress_done, job.progress_unit) == (ROWS, "rows")
    # Nothing left behind: no part files, no Redis keys.
    assert not redis.keys("pilotdial:list-parts:*")


def _small_upload(client_id: uuid.UUID, content: bytes) -> tuple[uuid.UUID, uuid.UUID | None]:
    from campaigns.lists import create_list_from_upload
    from core.db import tenant_session

    with tenant_session([client_id]) as session:
        lead_list = create_list_from_upload(
            session=session,
            client_id=client_id,
            filename="parts.csv",
            chunks=[content],
            name="parts",
            region="CN",
        )
        return lead_list.id, lead_list.job_id


def test_with_no_other_worker_the_import_job_does_every_part(
    pg_url: str, pg_engine: Any, redis_url: str, configure: Any, tmp_path: Path
) -> None:
    from campaigns.models import Lead, LeadList, ListStatus
    from core.admin import create_client
    from core.db import system_session, tenant_session
    from core.models import JobRecord
    from core.queue import run_worker
    from core.settings import get_settings
    from data_cleaning import CleaningOptions, RowStatus, clean_table

    configure(database_url=pg_url, redis_url=redis_url, list_split_rows="1000")
    content, _ = _messy(5000)
    source = tmp_path / "leads.csv"
    source.write_bytes(content)
    reference = clean_table(source, CleaningOptions(chunk_rows=20_000, workers=0))
    kept = [
        (row.row_number, row.e164)
        for chunk in reference
        for row in chunk
        if row.status is RowStatus.KEPT
    ]
    with system_session() as session:
        client_id = create_client(session=session, name="Alone").id
    list_id, job_id = _small_upload(client_id, content)
    run_worker(get_settings(), burst=True, simple=True)  # this process is the only worker
    with tenant_session([client_id]) as session:
        lead_list = session.get(LeadList, list_id)
        assert lead_list is not None
        assert lead_list.status is ListStatus.ready, lead_list.error
        assert lead_list.report is not None
        assert lead_list.report | {"elapsed_s": 0} == (
            reference.report.to_json_dict()
            | {"elapsed_s": 0, "phone_column": "手机", "encoding": "utf-8"}
            | {"ragged_rows": 0, "virtual_operator": reference.report.virtual_operator}
        )
        leads = session.exec(
            select(Lead.row_number, Lead.phone_e164).where(Lead.list_id == list_id)
        )
        assert sorted(leads) == kept
    with system_session() as session:
        job = session.get(JobRecord, job_id)
        assert job is not None
        assert job.result is not None
        assert len(job.result["parts"]) >= 5
        assert len({part["worker"] for part in job.result["parts"]}) == 1


def test_a_bad_row_in_a_later_part_fails_the_list_with_the_cleaners_message(
    pg_url: str, pg_engine: Any, redis_url: str, configure: Any
) -> None:
    from campaigns.models import LeadList, ListStatus
    from core.admin import create_client
    from core.db import system_session, tenant_session
    from core.queue import run_worker
    from core.settings import get_settings

    configure(database_url=pg_url, redis_url=redis_url, list_split_rows="1000")
    lines = ["name,phone"] + [f"n{i},1380013{i:04d}" for i in range(4000)]
    lines[3500] = "x,13900139000,surplus"
    with system_session() as session:
        client_id = create_client(session=session, name="Ragged").id
    list_id, _ = _small_upload(client_id, ("\r\n".join(lines) + "\r\n").encode())
    run_worker(get_settings(), burst=True, simple=True)
    with tenant_session([client_id]) as session:
        lead_list = session.get(LeadList, list_id)
        assert lead_list is not None
        assert lead_list.status is ListStatus.failed
        assert lead_list.error is not None
        assert "row 3501 has 3 cells" in lead_list.error
        assert "allow_ragged field" in lead_list.error
        assert session.exec(select(LeadList.rows_done).where(LeadList.id == list_id)).one() == 0
    assert not Redis.from_url(redis_url).keys("pilotdial:list-parts:*")
