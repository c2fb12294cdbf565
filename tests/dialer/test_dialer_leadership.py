"""The Redis-elected pacer lease on real Redis, and what a pacer sees when Redis is gone."""

from __future__ import annotations

import socket
import uuid

from redis import Redis

from dialer.leadership import RedisLeadership, pacer_key


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    campaign_id = uuid.uuid4()
    a = RedisLeadership(redis, campaign_id, "a")
    b = RedisLeadership(redis, campaign_id, "b")
    assert a.acquire()
    assert a.acquire()  # already the holder
    assert not b.acquire()
    assert not b.renew()
    b.release()  # not the holder: nothing happens
    assert a.current_holder() == "a"
    assert a.renew()
    a.release()
    assert redis.get(pacer_key(campaign_id)) is None
    assert b.acquire()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def test_redis_unreachable_counts_as_not_leading(redis_url: str) -> None:
    """Regression (issue 18 item 4): a Redis outage raised out of the pacer, which died with
    its calls' attempts left `started`; now the pacer stops launching and drains."""
    campaign_id = uuid.uuid4()
    held = RedisLeadership(Redis.from_url(redis_url), campaign_id, "a", ttl_s=120)
    assert held.acquire()
    gone = Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.5)
    cut_off = RedisLeadership(gone, campaign_id, "a", ttl_s=120)
    assert not cut_off.renew()
    assert not cut_off.acquire()
    cut_off.release()  # no exception: the lease runs out by itself
    assert held.current_holder() == "a"
