"""Wake-ups after commits: who changed, told to whoever watches, without polling the database.

Domains say which rows matter to whom with :func:`watch` (``dialer.models`` does it for call
attempts, campaign leads, campaigns and agents): a function from a changed row to channel
names. A session that flushes such a row remembers the channels; when it commits they are
published, once per commit, and never for a rolled-back transaction, so a reader woken by the
message always finds the change committed.

Where the message goes:

- with Redis configured (``PILOTDIAL_REDIS_URL``), ``PUBLISH`` on each channel: every process
  hears it (the pacer runs in a worker, the streams in the API). A process that waits on
  channels runs one subscriber thread (``PSUBSCRIBE pilotdial:wake:*``) that hands messages to
  its local waiters, so a thousand open streams cost one Redis connection, not a thousand;
- without Redis (the embedded default, jobs and API in one process), straight to the local
  waiters.

A lost message (Redis restarting, a process without the hook) only delays a reader until its
own periodic refresh; it never loses data, since the database stays the source of truth.
Publishing never raises into the committing code: a Redis error is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session as _SASession

from core.settings import get_settings

__all__ = [
    "CHANNEL_PREFIX",
    "Waiter",
    "channel",
    "publish",
    "publish_local",
    "subscribe",
    "watch",
]

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "pilotdial:wake:"
_PENDING_KEY = "pilotdial_wake_channels"

ChannelsFor = Callable[[Any], Iterable[str]]
_watched: dict[type[Any], ChannelsFor] = {}


def channel(kind: str, object_id: object) -> str:
    """The channel of one object, e.g. ``channel("campaign", id)``."""
    return f"{CHANNEL_PREFIX}{kind}:{object_id}"


def watch(model: type[Any], channels_for: ChannelsFor) -> None:
    """Publish ``channels_for(row)`` after every commit that added, changed or deleted a row."""
    _watched[model] = channels_for


# --------------------------------------------------------------------------- local waiters


class Waiter:
    """Someone waiting on some channels from an event loop; see :func:`subscribe`."""

    def __init__(self, hub: _Hub, channels: frozenset[str]) -> None:
        self._hub = hub
        self.channels = channels
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        #: ``time.monotonic()`` of the latest wake-up delivered (0.0 before any): a read
        #: started after it sees the commit that sent it.
        self.woken_at = 0.0

    def _wake(self) -> None:
        self.woken_at = time.monotonic()
        with contextlib.suppress(RuntimeError):  # a closed loop: its stream is gone
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout_s: float) -> bool:
        """True once a change arrived since the last call (at once if one is pending);
        False after ``timeout_s`` without one."""
        if not self._event.is_set():
            try:
                await asyncio.wait_for(self._event.wait(), timeout_s)
            except TimeoutError:
                return False
        self._event.clear()
        return True

    def close(self) -> None:
        """Stop waiting (the stream ended)."""
        self._hub.remove(self)

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _Hub:
    """The waiters of this process by channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_channel: dict[str, set[Waiter]] = {}

    def add(self, waiter: Waiter) -> None:
        with self._lock:
            for name in waiter.channels:
                self._by_channel.setdefault(name, set()).add(waiter)

    def remove(self, waiter: Waiter) -> None:
        with self._lock:
            for name in waiter.channels:
                waiters = self._by_channel.get(name)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._by_channel[name]

    def notify(self, channels: Iterable[str]) -> None:
        with self._lock:
            woken = {w for name in channels for w in self._by_channel.get(name, ())}
        for waiter in woken:
            waiter._wake()

    def notify_all(self) -> None:
        with self._lock:
            woken = {w for waiters in self._by_channel.values() for w in waiters}
        for waiter in woken:
            waiter._wake()


_hub = _Hub()


# --------------------------------------------------------------------------- Redis


class _Bridge:
    """One thread per process and Redis URL: Redis messages to the local waiters."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pilotdial-wakeups", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = Redis.from_url(self.url, socket_connect_timeout=5).pubsub(
                    ignore_subscribe_messages=True
                )
                try:
                    pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                    pubsub.get_message(timeout=1.0)  # the subscription's confirmation
                    self.ready.set()
                    # Messages may have gone by while we were not subscribed: re-read.
                    _hub.notify_all()
                    while not self._stop.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message is not None and message.get("type") == "pmessage":
                            name = message["channel"]
                            _hub.notify([name.decode() if isinstance(name, bytes) else name])
                finally:
                    pubsub.close()
            except (RedisError, OSError) as exc:
                self.ready.clear()
                log.warning("wake-up subscriber lost Redis (%s); retrying in 1 s", exc)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


#: After a failed publish, commits skip publishing this long (a Redis outage must not slow
#: every commit of the dial loop by a connect timeout).
QUIET_AFTER_FAILURE_S = 5.0
_quiet_until = 0.0
_bridge_lock = threading.Lock()
_bridge: _Bridge | None = None
_publishers: dict[str, Redis[bytes]] = {}


def _ensure_bridge(url: str) -> _Bridge:
    global _bridge
    with _bridge_lock:
        if _bridge is None or _bridge.url != url:
            if _bridge is not None:
                _bridge.stop()
            _bridge = _Bridge(url)
        return _bridge


def _publisher(url: str) -> Redis[bytes]:
    client = _publishers.get(url)
    if client is None:
        client = _publishers[url] = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    return client


def subscribe(channels: Iterable[str], *, ready_timeout_s: float = 0.0) -> Waiter:
    """Wait on ``channels`` from the running event loop (close the waiter when done).

    Register before the first read: a change committed between the read and the first wait
    is then not missed. ``ready_timeout_s`` waits that long for the Redis subscriber to be
    listening (tests); by default nothing waits, the periodic refresh covers the start.
    """
    waiter = Waiter(_hub, frozenset(channels))
    _hub.add(waiter)
    url = get_settings().redis_url
    if url:
        bridge = _ensure_bridge(url)
        if ready_timeout_s > 0:
            bridge.ready.wait(ready_timeout_s)
    return waiter


def publish_local(channels: Iterable[str]) -> None:
    """Wake this process's waiters on ``channels``."""
    _hub.notify(channels)


def publish(channels: Iterable[str]) -> None:
    """Wake every waiter on ``channels`` (Redis if configured, else this process)."""
    names = sorted(set(channels))
    if not names:
        return
    url = get_settings().redis_url
    if not url:
        publish_local(names)
        return
    global _quiet_until
    if time.monotonic() < _quiet_until:
        return  # Redis failed a moment ago: do not make every commit wait for it
    try:
        pipe = _publisher(url).pipeline(transaction=False)
        for name in names:
            pipe.publish(name, b"")
        pipe.execute()
    except (RedisError, OSError) as exc:
        _quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_S
        log.warning(
            "could not publish wake-ups (%s); not trying again for %.0f s, readers catch up "
            "on their periodic refresh",
            exc,
            QUIET_AFTER_FAILURE_S,
        )


# --------------------------------------------------------------------------- session hooks


@event.listens_for(_SASession, "after_flush")
def _collect(session: _SASession, _ctx: Any) -> None:
    if not _watched:
        return
    pending: set[str] | None = None
    for obj in (*session.new, *session.dirty, *session.deleted):
        channels_for = _watched.get(type(obj))
        if channels_for is None:
            continue
        if pending is None:
            pending = session.info.setdefault(_PENDING_KEY, set())
        pending.update(channels_for(obj))


@event.listens_for(_SASession, "after_commit")
def _publish_committed(session: _SASession) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        try:
            publish(pending)
        except Exception:  # never fail a commit that already happened
            log.exception("could not publish wake-ups")


@event.listens_for(_SASession, "after_rollback")
def _forget(session: _SASession) -> None:
    session.info.pop(_PENDING_KEY, None)
