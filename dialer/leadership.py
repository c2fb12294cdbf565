"""One pacer per running campaign, elected through a lease in Redis.

A worker that wants to pace a campaign sets ``pilotdial:pacer:<campaign>`` to its own id with
``SET NX PX``; it renews the lease every ``renew_s`` with a compare-and-set script, so only the
holder can extend or drop it. If the holder dies, the key expires after ``ttl_s`` and the next
worker to try becomes the pacer: with the defaults (ttl 6 s, retry every 1 s) a campaign is
paced again within 10 s. Without Redis (the embedded default) a process-local lock plays the
same role.

Redis unreachable counts as not holding the lease: ``acquire`` and ``renew`` answer False (the
pacer stops launching, lets its calls finish and records them in the database), ``release``
does nothing; when Redis is back, a supervisor adopts the campaign again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import ClassVar, Protocol

from redis import Redis
from redis.exceptions import RedisError

__all__ = ["LocalLeadership", "PacerLeadership", "RedisLeadership", "pacer_key"]

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def pacer_key(campaign_id: uuid.UUID | str) -> str:
    """The Redis key holding a campaign's pacer lease."""
    return f"pilotdial:pacer:{campaign_id}"


class PacerLeadership(Protocol):
    """Who paces a campaign: acquire once, renew while pacing, release when done."""

    holder_id: str

    def acquire(self) -> bool: ...

    def renew(self) -> bool: ...

    def release(self) -> None: ...

    def current_holder(self) -> str | None: ...


class RedisLeadership:
    """The lease in Redis, shared by every worker on every machine."""

    def __init__(
        self,
        redis: Redis[bytes],
        campaign_id: uuid.UUID | str,
        holder_id: str,
        *,
        ttl_s: float = 6.0,
    ) -> None:
        self.redis = redis
        self.key = pacer_key(campaign_id)
        self.holder_id = holder_id
        self.ttl_ms = int(ttl_s * 1000)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Become the pacer if nobody is; True also if we already are."""
        try:
            if self.redis.set(self.key, self.holder_id, nx=True, px=self.ttl_ms):
                return True
        except RedisError as exc:
            log.warning("cannot reach Redis to lead %s: %s", self.key, exc)
            return False
        return self.renew()

    def renew(self) -> bool:
        """Extend our lease; False means we lost it (or cannot reach Redis to prove we hold
        it) and must stop dialing at once."""
        try:
            return bool(self._renew(keys=[self.key], args=[self.holder_id, self.ttl_ms]))
        except RedisError as exc:
            log.warning("cannot reach Redis to renew %s: %s", self.key, exc)
            return False

    def release(self) -> None:
        """Give the lease up (only if we still hold it); it expires by itself otherwise."""
        try:
            self._release(keys=[self.key], args=[self.holder_id])
        except RedisError as exc:
            log.warning("cannot reach Redis to release %s (it expires): %s", self.key, exc)

    def current_holder(self) -> str | None:
        value = self.redis.get(self.key)
        return value.decode() if value is not None else None


class LocalLeadership:
    """The same contract inside one process (embedded mode, no Redis)."""

    _holders: ClassVar[dict[str, tuple[str, float]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, campaign_id: uuid.UUID | str, holder_id: str, *, ttl_s: float = 6.0) -> None:
        self.key = pacer_key(campaign_id)
        self.holder_id = holder_id
        self.ttl_s = ttl_s

    def acquire(self) -> bool:
        with self._lock:
            holder = self._holders.get(self.key)
            if holder is None or holder[0] == self.holder_id or holder[1] < time.monotonic():
                self._holders[self.key] = (self.holder_id, time.monotonic() + self.ttl_s)
                return True
            return False

    def renew(self) -> bool:
        with self._lock:
            holder = self._holders.get(self.key)
            if holder is None or holder[0] != self.holder_id:
                return False
            self._holders[self.key] = (self.holder_id, time.monotonic() + self.ttl_s)
            return True

    def release(self) -> None:
        with self._lock:
            holder = self._holders.get(self.key)
            if holder is not None and holder[0] == self.holder_id:
                del self._holders[self.key]

    def current_holder(self) -> str | None:
        with self._lock:
            holder = self._holders.get(self.key)
            return holder[0] if holder and holder[1] >= time.monotonic() else None
