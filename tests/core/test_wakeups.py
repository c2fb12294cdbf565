"""Wake-ups after commits: only committed changes wake, only their channels, never failing
the commit (in process here; through Redis in tests/dialer/test_dialer_live_api.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from campaign_builders import make_campaign, make_client, make_list

from campaigns.models import Campaign
from core import wakeups
from core.db import system_session, tenant_session
from core.wakeups import channel, publish, publish_local, subscribe


async def _woken(waiter: object) -> bool:
    await asyncio.sleep(0)  # let the loop run the wake-up callbacks already scheduled
    return await waiter.wait(0)  # type: ignore[attr-defined, no-any-return]


def test_a_waiter_hears_its_channels_only() -> None:
    async def scenario() -> list[bool]:
        with subscribe(["a", "b"]) as waiter:
            seen = [await _woken(waiter)]
            publish_local(["c"])
            seen.append(await _woken(waiter))
            publish_local(["b", "c"])
            seen.append(await _woken(waiter))
            seen.append(await _woken(waiter))  # consumed: quiet again
        publish_local(["a"])  # closed: nothing left to wake
        return seen

    assert asyncio.run(scenario()) == [False, False, True, False]


@pytest.fixture
def campaign(sqlite_url: str, configure: Callable[..., None]) -> tuple[uuid.UUID, uuid.UUID]:
    configure(database_url=sqlite_url)  # embedded: no Redis, wake-ups in process
    with system_session() as session:
        client_id = make_client(session)
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, 1)
        return client_id, make_campaign(session, client_id, [lead_list.id]).id


def test_only_committed_changes_wake_their_campaign(campaign: tuple[uuid.UUID, uuid.UUID]) -> None:
    client_id, campaign_id = campaign

    def rename(name: str, *, fail: bool) -> None:
        with tenant_session([client_id]) as session:
            row = session.get(Campaign, campaign_id)
            assert row is not None
            row.name = name
            session.add(row)
            session.flush()
            if fail:
                raise RuntimeError("rolled back")

    async def scenario() -> list[bool]:
        with (
            subscribe([channel("campaign", campaign_id)]) as mine,
            subscribe([channel("campaign", uuid.uuid4())]) as other,
        ):
            with pytest.raises(RuntimeError):
                rename("never", fail=True)
            seen = [await _woken(mine)]
            rename("renamed", fail=False)
            seen += [await _woken(mine), await _woken(other)]
            return seen

    assert asyncio.run(scenario()) == [False, True, False]


def test_an_unreachable_redis_never_fails_a_commit(
    campaign: tuple[uuid.UUID, uuid.UUID],
    configure: Callable[..., None],
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client_id, campaign_id = campaign
    configure(database_url=sqlite_url, redis_url="redis://127.0.0.1:1/0")
    monkeypatch.setattr(wakeups, "_quiet_until", 0.0)  # restored for the next tests
    for name in ("first", "second"):
        with tenant_session([client_id]) as session:
            row = session.get(Campaign, campaign_id)
            assert row is not None
            row.name = name
            session.add(row)
        # after the first failure, commits stop waiting on Redis for a while
        assert wakeups._quiet_until > time.monotonic()
    publish(["anything"])
    with tenant_session([client_id]) as session:
        row = session.get(Campaign, campaign_id)
        assert row is not None
        assert row.name == "second"
