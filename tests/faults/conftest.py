"""Fixtures of the fault tests (defined in :mod:`faults.harness`)."""

from faults.harness import pg_proxy, redis_proxy, spawn_worker

__all__ = ["pg_proxy", "redis_proxy", "spawn_worker"]
