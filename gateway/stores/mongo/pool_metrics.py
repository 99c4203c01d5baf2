"""PyMongo connection-pool events into the pool gauges (``funnelgate_pool_connections_*{pool="mongo"}``).

PyMongo calls these listeners synchronously from its own code paths, so each does one gauge update and
nothing else. Counts are per process, over every client and server. Registered once, process-wide, when
this package is imported (``gateway/stores/mongo/__init__.py``): every AsyncMongoClient created after
that reports, and MongoStore needs no code for it. The ceiling is set by ``open_store`` from settings.
"""

from __future__ import annotations

from typing import Any

from pymongo import monitoring

from gateway.ops.metrics import POOL_IN_USE, POOL_OPEN, POOL_WAIT_FAILURES

POOL = "mongo"


class PoolMetrics(monitoring.ConnectionPoolListener):
    def __init__(self) -> None:
        self._in_use = POOL_IN_USE.labels(POOL)
        self._open = POOL_OPEN.labels(POOL)

    def pool_created(self, event: Any) -> None:
        return None

    def pool_ready(self, event: Any) -> None:
        return None

    def pool_cleared(self, event: Any) -> None:
        return None

    def pool_closed(self, event: Any) -> None:
        return None

    def connection_created(self, event: Any) -> None:
        self._open.inc()

    def connection_ready(self, event: Any) -> None:
        return None

    def connection_closed(self, event: Any) -> None:
        self._open.dec()

    def connection_check_out_started(self, event: Any) -> None:
        return None

    def connection_check_out_failed(self, event: Any) -> None:
        POOL_WAIT_FAILURES.labels(POOL, str(getattr(event, "reason", "unknown"))).inc()

    def connection_checked_out(self, event: Any) -> None:
        self._in_use.inc()

    def connection_checked_in(self, event: Any) -> None:
        self._in_use.dec()


monitoring.register(PoolMetrics())
