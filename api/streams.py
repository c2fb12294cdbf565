"""Server-sent-event streams and the API's capacity.

A stream is admitted like any request (its authentication and audit row run inside the
admission limit), but it gives its admission slot back once its response starts
(:class:`~api.middleware.RequestGuard`): an operator's console keeps several streams open for
hours, and they must not take the slots that short requests need. The reads a stream makes
afterwards go through :func:`stream_reads`, a small capacity limiter shared by every stream
of the process, so any number of open streams use at most :data:`STREAM_READERS` threads
and database connections at a time (``Settings.check_capacity`` counts them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from core.settings import STREAM_READERS

__all__ = ["STREAM_READERS", "stream_reads"]

T = TypeVar("T")

_limiters: dict[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = {}


def _limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        for old in [old for old in _limiters if old.is_closed()]:
            del _limiters[old]
        limiter = _limiters[loop] = anyio.CapacityLimiter(STREAM_READERS)
    return limiter


async def stream_reads(read: Callable[..., T], *args: object) -> T:
    """Run a stream's blocking read in a worker thread, at most STREAM_READERS at once."""
    return await anyio.to_thread.run_sync(read, *args, limiter=_limiter())
