"""One pacer per running campaign, elected through a lease in Redis.

A worker that wants to pace a campaign sets ``pilotdial:pacer:<campaign>`` to its own id with
``SET NX PX``; it renews the lease every ``renew_s`` with a compare-and-set script, so only the
holder can extend or drop it. If the holder dies, the key expires after ``ttl_s`` and the next
worker to try becomes the pacer: with the defaults (ttl 6 s, retry every 1 s) a campaign is
paced again within 10 s. Without Redis (the embedded default) a process-local lock plays the
same role.

Each successful acquire or renewal also stamps the campaign's heartbeat
(``pilotdial:pacer:<campaign>:heartbeat``: holder and wall-clock time, kept for a day), so the
live metrics can say which worker paces a campaign and when it was last heard from, even after
it died (:func:`pacer_health`).

A Redis blip is ridden out: while Redis cannot be reached, ``renew`` answers True for as long
as the lease last set is sure to hold (its time to live after the last renewal, less
:data:`SAFETY_MARGIN_S`), since nobody else can take it before then; each later renewal
retries (the pacer renews every couple of seconds, and the Redis client itself retries with
backoff). When Redis answers again and the lease ran out meanwhile with nobody taking it, the
pacer takes it back and dials on. An outage longer than the lease counts as not holding it:
``renew`` answers False (the pacer stops launching, lets its calls finish and records them in
the database), ``acquire`` answers False, ``release`` does nothing; when Redis is back, a
supervisor adopts the campaign again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Protocol

from redis import Redis
from redis.exceptions import RedisError

__all__ = [
    "LocalLeadership",
    "PacerHealth",
    "PacerLeadership",
    "RedisLeadership",
    "campaign_pacer",
    "heartbeat_key",
    "pacer_health",
    "pacer_key",
    "worker_identity",
]

#: How long before the lease's end, as last set, a pacer that cannot reach Redis stops
#: counting on it (clock drift between us and Redis, and the time a renewal takes).
SAFETY_MARGIN_S = 1.0
#: How long a heartbeat is remembered after the pacer stopped renewing it.
HEARTBEAT_KEEP_S = 24 * 3600

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


def worker_identity() -> str:
    """A unique id for a pacer: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def pacer_key(campaign_id: uuid.UUID | str) -> str:
    """The Redis key holding a campaign's pacer lease."""
    return f"pilotdial:pacer:{campaign_id}"


def heartbeat_key(campaign_id: uuid.UUID | str) -> str:
    """The Redis key holding a campaign's last pacer heartbeat (holder and time)."""
    return f"pilotdial:pacer:{campaign_id}:heartbeat"


@dataclass(frozen=True, slots=True)
class PacerHealth:
    """Who holds a campaign's pacer lease now, and the last heartbeat of any pacer."""

    leader: str | None
    last_heartbeat: datetime | None
    last_holder: str | None
    #: A pacer with simulated agents reports their soft-phone buckets (ready, talking,
    #: wrap_up, not_ready, signed_out) with its heartbeat; None for real seats.
    simulated_agents: dict[str, int] | None = None

    @property
    def healthy(self) -> bool:
        """A pacer holds the lease (it renewed it within the lease's time to live)."""
        return self.leader is not None


def pacer_health(redis: Redis[bytes] | None, campaign_id: uuid.UUID | str) -> PacerHealth:
    """The campaign's pacer as the lease and heartbeat records say (Redis, or this process
    without Redis)."""
    if redis is None:
        return LocalLeadership.health(campaign_id)
    pipe = redis.pipeline(transaction=False)
    pipe.get(pacer_key(campaign_id))
    pipe.hgetall(heartbeat_key(campaign_id))
    holder, beat = pipe.execute()
    at = beat.get(b"at") if beat else None
    last_holder = beat.get(b"holder") if beat else None
    agents = beat.get(b"agents") if beat else None
    return PacerHealth(
        leader=holder.decode() if holder is not None else None,
        last_heartbeat=None if at is None else datetime.fromtimestamp(float(at), UTC),
        last_holder=None if last_holder is None else last_holder.decode(),
        simulated_agents=None if agents is None else _agents_from(agents.decode()),
    )


def campaign_pacer(campaign_id: uuid.UUID | str) -> PacerHealth:
    """:func:`pacer_health` on the configured Redis (in this process on the embedded default,
    where the pacers run in the API process)."""
    from core.queue import get_redis
    from core.settings import get_settings

    url = get_settings().redis_url
    return pacer_health(get_redis(url) if url else None, campaign_id)


def _agents_from(text: str) -> dict[str, int] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)}


class PacerLeadership(Protocol):
    """Who paces a campaign: acquire once, renew while pacing, release when done."""

    holder_id: str

    def acquire(self) -> bool: ...

    def renew(self) -> bool: ...

    def release(self) -> None: ...

    def current_holder(self) -> str | None: ...

    def report_agents(self, counts: dict[str, int]) -> None:
        """Publish the simulated agents' buckets with the heartbeat (live metrics show them)."""
        ...


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
        self.heartbeat = heartbeat_key(campaign_id)
        self.holder_id = holder_id
        self.ttl_ms = int(ttl_s * 1000)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        #: monotonic time until which the lease we last set surely holds (0: we hold none)
        self._sure_until = 0.0
        #: a renewal could not reach Redis since the lease was last confirmed
        self._unreachable = False

    def acquire(self) -> bool:
        """Become the pacer if nobody is; True also if we already are."""
        try:
            if self._set_if_free():
                return True
        except RedisError as exc:
            log.warning("cannot reach Redis to lead %s: %s", self.key, exc)
            return False
        return self.renew()

    def renew(self) -> bool:
        """Extend our lease; False means we lost it (or cannot reach Redis to prove we hold
        it, for longer than it surely holds) and must stop dialing at once."""
        asked_at = time.monotonic()
        try:
            renewed = bool(self._renew(keys=[self.key], args=[self.holder_id, self.ttl_ms]))
            if not renewed and self._unreachable:
                # it ran out while Redis was away; if nobody took it, it is ours again
                renewed = self._set_if_free()
                if renewed:
                    log.warning(
                        "lease %s ran out while Redis was unreachable; taken back", self.key
                    )
            if renewed:
                self._confirmed(asked_at)
                self._beat()
            else:
                self._sure_until = 0.0
        except RedisError as exc:
            self._unreachable = True
            left = self._sure_until - time.monotonic()
            if left > 0:
                log.warning(
                    "cannot reach Redis to renew %s (%s); the lease holds %.1f s more, retrying",
                    self.key,
                    exc,
                    left,
                )
                return True
            log.warning("cannot reach Redis to renew %s: %s", self.key, exc)
            self._sure_until = 0.0
            return False
        return renewed

    def _set_if_free(self) -> bool:
        asked_at = time.monotonic()
        if not self.redis.set(self.key, self.holder_id, nx=True, px=self.ttl_ms):
            return False
        self._confirmed(asked_at)
        self._beat()
        return True

    def _confirmed(self, asked_at: float) -> None:
        # Redis counts the time to live from when it ran the command, which is after we asked
        self._sure_until = asked_at + self.ttl_ms / 1000 - SAFETY_MARGIN_S
        self._unreachable = False

    def _beat(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.heartbeat, mapping={"holder": self.holder_id, "at": repr(time.time())})
        pipe.expire(self.heartbeat, HEARTBEAT_KEEP_S)
        pipe.execute()

    def report_agents(self, counts: dict[str, int]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(self.heartbeat, "agents", json.dumps(counts))
            pipe.expire(self.heartbeat, HEARTBEAT_KEEP_S)
            pipe.execute()
        except RedisError as exc:  # a figure for the live panel: never worth failing the run
            log.warning("cannot report the simulated agents of %s: %s", self.key, exc)

    def release(self) -> None:
        """Give the lease up (only if we still hold it); it expires by itself otherwise."""
        self._sure_until = 0.0
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
    _heartbeats: ClassVar[dict[str, tuple[str, float]]] = {}  # key -> (holder, wall time)
    _agents: ClassVar[dict[str, dict[str, int]]] = {}  # key -> simulated agents' buckets
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
                self._heartbeats[self.key] = (self.holder_id, time.time())
                return True
            return False

    def renew(self) -> bool:
        with self._lock:
            holder = self._holders.get(self.key)
            if holder is None or holder[0] != self.holder_id:
                return False
            self._holders[self.key] = (self.holder_id, time.monotonic() + self.ttl_s)
            self._heartbeats[self.key] = (self.holder_id, time.time())
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

    def report_agents(self, counts: dict[str, int]) -> None:
        with self._lock:
            self._agents[self.key] = dict(counts)

    @classmethod
    def health(cls, campaign_id: uuid.UUID | str) -> PacerHealth:
        """The lease holder and last heartbeat of a campaign in this process."""
        key = pacer_key(campaign_id)
        with cls._lock:
            holder = cls._holders.get(key)
            beat = cls._heartbeats.get(key)
            agents = cls._agents.get(key)
        alive = holder is not None and holder[1] >= time.monotonic()
        return PacerHealth(
            leader=holder[0] if holder is not None and alive else None,
            last_heartbeat=None if beat is None else datetime.fromtimestamp(beat[1], UTC),
            last_holder=None if beat is None else beat[0],
            simulated_agents=None if agents is None else dict(agents),
        )
