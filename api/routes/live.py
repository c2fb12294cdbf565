"""Live pacing metrics of a campaign: one snapshot, or a server-sent-event stream of them.

The stream is woken by the commits that change the campaign (call attempts, leads, the
campaign row, its client's agents: :mod:`core.wakeups`, Redis pub/sub or in process), sends
at most one event per :data:`MIN_INTERVAL_S` and at least one per :data:`MAX_INTERVAL_S`.
SSE framing is FastAPI's own (:mod:`fastapi.sse`). Opening a stream is audited.

The open streams of one campaign share their reads (:class:`SharedSnapshots`): a viewer
takes the event another viewer of the same campaign and view computed *after* the viewer's
own wake-up (so it still sees the commit that woke it), else computes it under that
campaign's lock while the others wait. N viewers woken by one commit cost one snapshot, not
N. Access is checked per stream when it opens (``CampaignDep``: another client's campaign is
404) before it can read any shared event; views differ by role (``agents.list``), so the
cache is per (campaign, view).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, format_sse_event
from sqlalchemy.engine import Engine

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.router import Router
from api.routes.campaigns import CampaignDep
from api.streams import stream_reads
from core.audit import record_audit
from core.db import tenant_session
from core.errors import NotFound
from core.models import Role
from core.security import Principal
from core.wakeups import subscribe
from dialer.live import LiveMetrics, live_channels, live_snapshot

router = Router(prefix="/campaigns", tags=["live"])

#: Coalescing: wake-ups closer together than this share one event (at most ~4 a second).
MIN_INTERVAL_S = 0.25
#: An event goes out at least this often, woken or not.
MAX_INTERVAL_S = 1.0
#: Keys that see the agent list (agents are the outsourcer's staff, as on /agents).
AGENT_LIST_ROLES = frozenset({Role.admin, Role.operator})


def _sees_agents(principal: Principal) -> bool:
    return principal.role in AGENT_LIST_ROLES


#: Shared events older than this are dropped from the cache when another is stored.
SHARED_KEEP_S = 10.0
_ShareKey = tuple[uuid.UUID, bool]


class SharedSnapshots:
    """The latest stream event per (campaign, with agent list), shared by the process's
    streams: each entry is (the monotonic time its computation started, the event)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[_ShareKey, threading.Lock] = {}
        self._latest: dict[_ShareKey, tuple[float, bytes | None]] = {}

    def get(
        self, key: _ShareKey, fresh_after: float, compute: Callable[[], bytes | None]
    ) -> bytes | None:
        """An event computed after ``fresh_after`` (another viewer's, or computed now)."""
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            latest = self._latest.get(key)
            if latest is not None and latest[0] >= fresh_after:
                return latest[1]
            started = time.monotonic()
            message = compute()
            with self._lock:
                self._latest[key] = (started, message)
                for old in [k for k, v in self._latest.items() if v[0] < started - SHARED_KEEP_S]:
                    del self._latest[old]
                    self._locks.pop(old, None)
            return message


_shared = SharedSnapshots()


@router.get("/{campaign_id}/live", response_model=LiveMetrics)
def get_live(
    campaign: CampaignDep, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The campaign's live pacing metrics now: dial level, calls, agents by state, abandon
    rate over the regulatory window and today, answer rate, hopper depth, today's attempts
    and valid calls, and the pacer's health. ``agents.list`` is filled for operator keys."""
    return live_snapshot(
        session=session,
        client_id=campaign.client_id,
        campaign_id=campaign.id,
        now=datetime.now(UTC),
        with_agent_list=_sees_agents(principal),
    )


_STREAM_DOC = (
    "`event: live` with the same JSON as `GET /campaigns/{campaign_id}/live` "
    "(schema `LiveMetrics`) on each `data:` line: at once, on every change (at most ~4 a "
    "second) and at least every second."
)


@router.get(
    "/{campaign_id}/live/stream",
    # documented below; the route returns its own EventSourceResponse (a plain function:
    # the request's session commits the audit row before the stream starts)
    response_class=StreamingResponse,
    responses={
        200: {
            "description": _STREAM_DOC,
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "itemSchema": {
                        "type": "object",
                        "properties": {
                            "event": {"const": "live"},
                            "data": {
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/LiveMetrics"},
                            },
                        },
                    },
                }
            },
        }
    },
)
def stream_live(
    campaign: CampaignDep,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    once: bool = Query(default=False, description="send one event, then close (curl, tests)"),
) -> EventSourceResponse:
    """The campaign's live metrics as server-sent events (``event: live``); the opening of
    a stream is audited."""
    record_audit(
        session,
        client_id=campaign.client_id,
        actor=actor,
        action="campaign.live.stream",
        object_type="campaign",
        object_id=campaign.id,
        detail={"once": once},
    )
    engine: Engine = request.app.state.engine
    scope = frozenset(principal.scope)
    client_id, campaign_id = campaign.client_id, campaign.id
    channels = live_channels(campaign)
    with_list = _sees_agents(principal)

    def compute() -> bytes | None:
        # Each read has its own short session in the caller's scope: the request's session
        # is closed once the response starts.
        with tenant_session(scope, engine) as read_session:
            try:
                snapshot = live_snapshot(
                    session=read_session,
                    client_id=client_id,
                    campaign_id=campaign_id,
                    now=datetime.now(UTC),
                    with_agent_list=with_list,
                )
            except NotFound:
                return None  # deleted meanwhile: the stream ends
        return format_sse_event(data_str=json.dumps(snapshot, ensure_ascii=False), event="live")

    def read(fresh_after: float) -> bytes | None:
        return _shared.get((campaign_id, with_list), fresh_after, compute)

    async def body() -> AsyncIterator[bytes]:
        with subscribe(channels) as waiter:
            fresh_after = time.monotonic()
            while True:
                message = await stream_reads(read, fresh_after)
                if message is None:
                    return
                yield message
                sent = time.monotonic()
                if once or await request.is_disconnected():
                    return
                await anyio.sleep(max(0.0, sent + MIN_INTERVAL_S - time.monotonic()))
                woken = await waiter.wait(max(0.0, sent + MAX_INTERVAL_S - time.monotonic()))
                # woken: a read started after the wake-up sees its commit; else a fresh one
                fresh_after = waiter.woken_at if woken else time.monotonic()

    return EventSourceResponse(body())
