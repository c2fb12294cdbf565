"""Recordings on PostgreSQL: store (database or directory), download, list, archive, scoping,
purge after the retention (job and CLI)."""

from __future__ import annotations

import io
import logging
import uuid
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from campaign_builders import make_campaign, make_list
from typer.testing import CliRunner

from helpers import Tenant, make_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _wav(path: Path, freq: float) -> Path:
    from dialer.sip.media import write_wav

    t = np.arange(4000) / 8000
    write_wav(path, (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16))
    return path


def _recorded_call(
    tenant: Tenant, wav: Path, *, at: datetime = NOW, campaign_id: uuid.UUID | None = None
) -> tuple[str, str]:
    """A campaign (or the given one) with one attempt and its recording: (campaign, attempt)."""
    from campaigns.models import CallAttempt, Campaign
    from core.db import tenant_session
    from dialer.recordings import store_recording

    with tenant_session([tenant.client_id]) as session:
        lead_list, leads = make_list(session, tenant.client_id, count=1)
        campaign = (
            session.get(Campaign, campaign_id)
            if campaign_id
            else make_campaign(session, tenant.client_id, [lead_list.id])
        )
        assert campaign is not None
        attempt = CallAttempt(
            client_id=tenant.client_id,
            campaign_id=campaign.id,
            lead_id=leads[0].id,
            attempt_no=1,
            idempotency_key=f"rec-{uuid.uuid4().hex}",
            number_dialed=leads[0].phone_e164,
            dialed_at=at,
        )
        session.add(attempt)
        session.flush()
        store_recording(session=session, attempt=attempt, path=wav, duration_s=0.5, now=at)
        assert attempt.recording_ref is not None
        return str(campaign.id), str(attempt.id)


@pytest.fixture
def pg_api(app_factory: Callable[..., Any], pg_url: str, pg_engine: Any) -> Any:
    return app_factory(pg_url)  # pg_engine: the tables are emptied after the test


def test_download_list_archive_and_scoping(pg_api: Any, tmp_path: Path) -> None:
    alpha, bravo = make_tenant(pg_api, "alpha"), make_tenant(pg_api, "bravo")
    first = _wav(tmp_path / "a.wav", 440)
    second = _wav(tmp_path / "b.wav", 1000)
    campaign, attempt = _recorded_call(alpha, first)
    _, attempt_2 = _recorded_call(
        alpha, second, at=NOW + timedelta(minutes=5), campaign_id=uuid.UUID(campaign)
    )
    _recorded_call(alpha, first, at=NOW - timedelta(days=40), campaign_id=uuid.UUID(campaign))
    b_campaign, b_attempt = _recorded_call(bravo, second)
    _, other_campaigns_attempt = _recorded_call(alpha, second)  # alpha's, another campaign

    response = pg_api.get(
        f"/campaigns/{campaign}/attempts/{attempt}/recording", headers=alpha.headers()
    )
    assert response.status_code == 200, response.text
    assert response.content == first.read_bytes()
    assert response.headers["content-type"] == "audio/wav"
    assert f"{attempt}.wav" in response.headers["content-disposition"]

    listed = pg_api.get(
        f"/campaigns/{campaign}/recordings?month=2026-11", headers=alpha.headers()
    ).json()
    assert [r["attempt_id"] for r in listed] == [attempt, attempt_2]
    assert listed[0]["size_bytes"] == first.stat().st_size
    older = pg_api.get(f"/campaigns/{campaign}/recordings?month=2026-10", headers=alpha.headers())
    assert len(older.json()) == 1

    archive = pg_api.get(
        f"/campaigns/{campaign}/recordings/archive?month=2026-11", headers=alpha.headers()
    )
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert zipped.testzip() is None
        names = zipped.namelist()
        assert names == [f"2026-11-20/{attempt}.wav", f"2026-11-20/{attempt_2}.wav"]
        assert zipped.read(names[1]) == second.read_bytes()

    # both downloads are in the client's audit trail
    audit = pg_api.get("/audit", headers=alpha.headers()).json()
    actions = {(a["action"], a["object_id"]) for a in audit}
    assert ("download_recording", attempt) in actions
    assert ("download_recordings_archive", campaign) in actions

    # another client's recording, list and archive are 404, like an unknown id
    for url in (
        f"/campaigns/{b_campaign}/attempts/{b_attempt}/recording",
        f"/campaigns/{b_campaign}/recordings",
        f"/campaigns/{b_campaign}/recordings/archive",
        f"/campaigns/{campaign}/attempts/{b_attempt}/recording",
        f"/campaigns/{campaign}/attempts/{uuid.uuid4()}/recording",
        f"/campaigns/{campaign}/attempts/{other_campaigns_attempt}/recording",  # wrong campaign
    ):
        response = pg_api.get(url, headers=alpha.headers())
        assert response.status_code == 404, (url, response.text)
        assert response.json()["type"].endswith("/not-found")


def test_a_bad_month_is_explained(pg_api: Any, tmp_path: Path) -> None:
    alpha = make_tenant(pg_api, "alpha")
    campaign, _ = _recorded_call(alpha, _wav(tmp_path / "a.wav", 440))
    for path in ("recordings", "recordings/archive"):
        response = pg_api.get(
            f"/campaigns/{campaign}/{path}?month=2026-13", headers=alpha.headers()
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "month" in response.text


def test_the_purge_deletes_expired_recordings_for_good_and_logs_them(
    pg_api: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlmodel import select

    from campaigns.models import CallAttempt
    from core.db import system_session, tenant_session
    from core.files import FileChunk, StoredFile
    from dialer.recordings import Recording, purge_expired

    alpha = make_tenant(pg_api, "alpha")
    wav = _wav(tmp_path / "a.wav", 440)
    campaign, old = _recorded_call(alpha, wav, at=NOW - timedelta(days=32))
    _, recent = _recorded_call(
        alpha, wav, at=NOW - timedelta(days=5), campaign_id=uuid.UUID(campaign)
    )

    # the database is shared by this module's tests: look only at this client's recordings
    with system_session() as session:
        dry = purge_expired(session=session, now=NOW, dry_run=True)
    dry_ids = {str(a) for a in dry.attempt_ids}
    assert old in dry_ids
    assert recent not in dry_ids
    caplog.set_level(logging.INFO, logger="dialer.recordings")
    with system_session() as session:
        report = purge_expired(session=session, now=NOW)
    assert {str(a) for a in report.attempt_ids} == dry_ids
    assert "expired recording(s)" in caplog.text
    assert old in caplog.text

    with tenant_session([alpha.client_id]) as session:
        left = session.exec(select(Recording)).all()
        assert [str(r.attempt_id) for r in left] == [recent]
        # the bytes are gone too, not only the row
        assert len(session.exec(select(StoredFile)).all()) == 1
        assert {c.file_id for c in session.exec(select(FileChunk)).all()} == {
            uuid.UUID(left[0].storage_key)
        }
        old_attempt = session.get(CallAttempt, uuid.UUID(old))
        assert old_attempt is not None
        assert old_attempt.recording_ref is None
    response = pg_api.get(
        f"/campaigns/{campaign}/attempts/{old}/recording", headers=alpha.headers()
    )
    assert response.status_code == 404


def test_directory_storage_and_the_purge_command(
    configure: Callable[..., None], app_factory: Callable[..., Any], pg_url: str, tmp_path: Path
) -> None:
    from sqlmodel import select

    from core.cli import app
    from core.db import system_session
    from dialer.recordings import Recording

    shared = tmp_path / "shared-recordings"
    http = app_factory(pg_url)
    configure(
        database_url=pg_url,
        recording_storage="directory",
        recording_dir=str(shared),
        recording_retention_days="7",
    )
    alpha = make_tenant(http, "alpha")
    wav = _wav(tmp_path / "a.wav", 440)
    stale_at = datetime.now(UTC) - timedelta(days=8)
    campaign, stale = _recorded_call(alpha, wav, at=stale_at)
    _, fresh = _recorded_call(alpha, wav, campaign_id=uuid.UUID(campaign), at=datetime.now(UTC))
    files = sorted(shared.rglob("*.wav"))
    assert sorted(f.name for f in files) == sorted([f"{stale}.wav", f"{fresh}.wav"])
    with system_session() as session:
        row = session.exec(select(Recording).where(Recording.attempt_id == uuid.UUID(stale))).one()
        assert row.expires_at - row.created_at == timedelta(days=7)
        assert row.storage_key.startswith(f"{alpha.client_id}/{campaign}/{stale_at:%Y-%m}/")

    response = http.get(
        f"/campaigns/{campaign}/attempts/{fresh}/recording", headers=alpha.headers()
    )
    assert response.content == wav.read_bytes()

    dry = CliRunner().invoke(app, ["recordings", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.output
    assert stale in dry.output
    assert fresh not in dry.output
    assert len(list(shared.rglob("*.wav"))) == 2

    done = CliRunner().invoke(app, ["recordings", "purge"])
    assert done.exit_code == 0, done.output
    assert stale in done.output
    assert [f.name for f in shared.rglob("*.wav")] == [f"{fresh}.wav"]


def test_the_scheduled_purge_runs_once_per_period_on_rq(
    pg_api: Any, configure: Callable[..., None], pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    import threading

    from sqlmodel import select

    from core.db import tenant_session
    from core.queue import get_queue, run_worker
    from dialer.recordings import Recording, run_purge_schedule

    alpha = make_tenant(pg_api, "alpha")
    _, expired = _recorded_call(
        alpha, _wav(tmp_path / "a.wav", 440), at=datetime.now(UTC) - timedelta(days=40)
    )
    configure(database_url=pg_url, redis_url=redis_url)
    queue = get_queue()

    def one_period() -> None:
        stop = threading.Event()
        stop.set()  # one look, no wait
        run_purge_schedule(stop=stop, every_s=60)

    one_period()
    assert [job.func_name for job in queue.jobs] == ["dialer.recordings.purge_job"]
    one_period()  # another worker in the same period: the Redis lock says it is done
    assert len(queue.jobs) == 1

    assert run_worker(burst=True, simple=True)
    with tenant_session([alpha.client_id]) as session:
        left = session.exec(select(Recording.attempt_id)).all()
    assert uuid.UUID(expired) not in left


def test_directory_storage_without_a_directory_is_explained(pg_api: Any, tmp_path: Path) -> None:
    from campaigns.models import CallAttempt
    from core.db import tenant_session
    from core.errors import ConfigError
    from core.settings import Settings
    from dialer.recordings import store_recording

    alpha = make_tenant(pg_api, "alpha")
    with tenant_session([alpha.client_id]) as session:
        lead_list, leads = make_list(session, alpha.client_id, count=1)
        campaign = make_campaign(session, alpha.client_id, [lead_list.id])
        attempt = CallAttempt(
            client_id=alpha.client_id,
            campaign_id=campaign.id,
            lead_id=leads[0].id,
            attempt_no=1,
            idempotency_key=f"rec-{uuid.uuid4().hex}",
            number_dialed=leads[0].phone_e164,
        )
        session.add(attempt)
        session.flush()
        with pytest.raises(ConfigError, match="needs PILOTDIAL_RECORDING_DIR"):
            store_recording(
                session=session,
                attempt=attempt,
                path=_wav(tmp_path / "a.wav", 440),
                duration_s=0.5,
                settings=Settings(recording_storage="directory"),
            )
        session.rollback()
