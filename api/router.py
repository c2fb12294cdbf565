"""The API's router: a sync route runs in one threadpool hop, not two.

FastAPI runs a plain ``def`` route in the threadpool, then validates its return value against
the response model in the threadpool again: two hand-overs between the event loop and a
thread per request, each one waiting for the GIL behind the loop (under 200 concurrent
requests these hand-overs, not the work, were most of a request's time). :class:`Router`
registers such a route as a coroutine that runs the same function in the threadpool once;
FastAPI then validates the (already built) response on the loop. Nothing else changes: the
function, its signature and dependencies, its errors and its context variables are the same.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

__all__ = ["Router", "one_hop"]


def one_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine that runs it in the threadpool (itself when already async)."""
    if inspect.iscoroutinefunction(endpoint) or inspect.isasyncgenfunction(endpoint):
        return endpoint
    if inspect.isgeneratorfunction(endpoint) or not inspect.isfunction(endpoint):
        return endpoint  # left to FastAPI as written

    @functools.wraps(endpoint)  # FastAPI reads the signature and globals through __wrapped__
    async def in_threadpool(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return in_threadpool


class Router(APIRouter):
    """An :class:`APIRouter` whose sync routes run in one threadpool hop (see the module)."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, one_hop(endpoint), **kwargs)
