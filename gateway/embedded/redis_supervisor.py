"""Keep the private redis-server running: when it dies, start it again on the same socket, with backoff.

The clients need no rebuilding: redis-py's pool reconnects to the same unix socket (or port) on its
next call. Until then every cache call fails fast with "connection refused", which the cache-aside
layer counts as an error and answers from the store; the restarted server is empty, like after a
gateway restart. ``state()`` is what /healthz shows next to the cache's ping: up or down, for how
long, and how many restarts so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from gateway.embedded.redis_server import RedisServer
from gateway.errors import StoreUnavailable
from gateway.ops.metrics import REDIS_RESTARTS

log = logging.getLogger("funnelgate")

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0
STABLE_AFTER_S = 30.0  # up this long after a restart: the next death starts from FIRST_DELAY_S again


class RedisSupervisor:
    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.restarts = 0
        self._down_since: float | None = None
        self._last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> str:
        url = await self.server.start()
        self._task = asyncio.create_task(self._watch(), name="redis-supervisor")
        return url

    def state(self) -> dict[str, Any]:
        if self._down_since is None:
            return {"restarts": self.restarts}
        report: dict[str, Any] = {
            "restarts": self.restarts,
            "down_for_s": round(time.monotonic() - self._down_since, 1),
        }
        if self._last_error:
            report["restart_error"] = self._last_error
        return report

    async def _watch(self) -> None:
        delay = FIRST_DELAY_S
        while not self._stopping:
            process = self.server.process
            if process is None:
                return
            started = time.monotonic()
            code = await process.wait()
            if self._stopping:
                return
            self._down_since = time.monotonic()
            log.error("private redis-server (pid %s) exited with %s; restarting", process.pid, code)
            if time.monotonic() - started > STABLE_AFTER_S:
                delay = FIRST_DELAY_S
            while not self._stopping:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                try:
                    await self.server.start()
                except StoreUnavailable as exc:
                    self._last_error = str(exc)[:300]
                    log.error("private redis-server did not restart: %s; retrying in %.1f s", exc, delay)
                    continue
                self.restarts += 1
                REDIS_RESTARTS.inc()
                log.warning(
                    "private redis-server restarted (pid %s) after %.1f s down",
                    self.server.pid,
                    time.monotonic() - self._down_since,
                )
                self._down_since = None
                self._last_error = None
                break

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.server.stop()
