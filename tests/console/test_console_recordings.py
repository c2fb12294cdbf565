"""The console's recordings page: a month's recordings of a campaign, playable through the
API's audited download, the month as one ZIP; another client's campaign is a 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from campaign_builders import make_campaign, make_list
from console_builders import make_user, sign_in

from helpers import Tenant


def _recorded_attempt(tenant: Tenant, wav: Path, at: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    from campaigns.models import CallAttempt
    from core.db import tenant_session
    from dialer.recordings import store_recording
    from dialer.sip.media import write_wav

    t = np.arange(4000) / 8000
    write_wav(wav, (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16))
    with tenant_session([tenant.client_id]) as session:
        lead_list, leads = make_list(session, tenant.client_id, count=1)
        campaign = make_campaign(session, tenant.client_id, [lead_list.id])
        attempt = CallAttempt(
            client_id=tenant.client_id,
            campaign_id=campaign.id,
            lead_id=leads[0].id,
            attempt_no=1,
            idempotency_key=f"rec-{uuid.uuid4().hex}",
            number_dialed=leads[0].phone_e164,
            dialed_at=at,
            agent_id="A007",
            disposition="sale",
        )
        session.add(attempt)
        session.flush()
        store_recording(session=session, attempt=attempt, path=wav, duration_s=0.5, now=at)
        return campaign.id, attempt.id


def test_client_lists_plays_and_downloads_a_months_recordings(
    app: Any, alpha: Tenant, bravo: Tenant, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    campaign_id, attempt_id = _recorded_attempt(alpha, tmp_path / "a.wav", now)
    other_campaign, _ = _recorded_attempt(bravo, tmp_path / "b.wav", now)
    carl = sign_in(app.app, "carl", make_user("carl", "client_user", [alpha.client_id]))

    page = carl.http.get(f"/console/campaigns/{campaign_id}/recordings")
    assert page.status_code == 200, page.text
    assert 'data-recording="' in page.text
    assert "A007" in page.text
    audio = f"/campaigns/{campaign_id}/attempts/{attempt_id}/recording"
    assert f'<audio controls preload="none" src="{audio}">' in page.text
    played = carl.http.get(audio)  # the console's cookie reads the API's audited download
    assert played.status_code == 200
    assert played.headers["content-type"] == "audio/wav"
    assert played.content[:4] == b"RIFF"
    month = now.strftime("%Y-%m")
    assert f"/campaigns/{campaign_id}/recordings/archive?month={month}" in page.text

    earlier = carl.http.get(f"/console/campaigns/{campaign_id}/recordings?month=2020-01")
    assert "data-recording=" not in earlier.text  # another month: none
    bad = carl.http.get(f"/console/campaigns/{campaign_id}/recordings?month=soon")
    assert bad.status_code == 422
    assert carl.http.get(f"/console/campaigns/{other_campaign}/recordings").status_code == 404
    assert carl.http.get(f"/campaigns/{other_campaign}/recordings").status_code == 404
