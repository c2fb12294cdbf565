"""Live pacing metrics of a campaign: one snapshot, or a server-sent-event stream of them.

The stream is woken by the commits that change the campaign (call attempts, leads, the
campaign row, its client's agents: :mod:`core.wakeups`, Redis pub/sub or in process), sends
at most one event per :data:`MIN_INTERVAL_S` and at least one per :data:`MAX_INTERVAL_S`.
SSE framing is FastAPI's own (:mod:`fastapi.sse`). Opening a stream is audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, format_sse_event
from sqlalchemy.engine import Engine

from api.deps import CurrentActor, CurrentPrincipal, SessionDep
from api.routes.campaigns import CampaignDep
from core.audit import record_audit
from core.db import tenant_session
from core.errors import NotFound
from core.models import Role
from core.security import Principal
from core.wakeups import subscribe
from dialer.live import LiveMetrics, live_channels, live_snapshot

router = APIRouter(prefix="/campaigns", tags=["live"])

#: Coalescing: wake-ups closer together than this share one event (at most ~4 a second).
MIN_INTERVAL_S = 0.25
#: An event goes out at least this often, woken or not.
MAX_INTERVAL_S = 1.0
#: Keys that see the agent list (agents are the outsourcer's staff, as on /agents).
AGENT_LIST_ROLES = frozenset({Role.admin, Role.operator})


def _sees_agents(principal: Principal) -> bool:
    return principal.role in AGENT_LIST_ROLES


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

    def read() -> bytes | None:
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

    async def body() -> AsyncIterator[bytes]:
        with subscribe(channels) as waiter:
            while True:
                message = await anyio.to_thread.run_sync(read)
                if message is None:
                    return
                yield message
                sent = time.monotonic()
                if once or await request.is_disconnected():
                    return
                await anyio.sleep(max(0.0, sent + MIN_INTERVAL_S - time.monotonic()))
                await waiter.wait(max(0.0, sent + MAX_INTERVAL_S - time.monotonic()))

    return EventSourceResponse(body())
