"""Rate limits per credential (per client address with authentication off), counted in Redis.

Fixed windows of ``FUNNEL_RATE_WINDOW_S`` seconds, a limit per role (``FUNNEL_RATE_LIMITS``); over it,
HTTP 429 with ``Retry-After`` (the seconds left in the window).

A round trip to Redis per request would cost as much as answering a cached query, so the count is kept
here and written to Redis in batches: each request adds to a local count; a flush, at most every
``flush_s``, sends one pipeline of ``INCRBY ratelimit:{subject}:{window} n`` + ``EXPIRE … NX`` for every
subject that has new requests, and learns the total every replica has counted. The decision is
``known total + not yet flushed + 1 > limit``: exact within one process, and across replicas late by at
most one flush interval. While Redis is down (its circuit open) the local counts still limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.cache import keys
from gateway.errors import StoreUnavailable
from gateway.stores.contracts import Cache

log = logging.getLogger(__name__)

FLUSH_S = 0.05


@dataclass
class _Window:
    window: int
    known: int = 0  # the total Redis reported at the last flush (every replica's requests)
    pending: int = 0  # counted here since then
    sending: int = 0  # in a flush whose reply has not come yet (still counted by decisions)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    retry_after_s: int = 0


class RateLimiter:
    def __init__(
        self,
        cache: Cache,
        window_s: int,
        *,
        flush_s: float = FLUSH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.window_s = window_s
        self.flush_s = flush_s
        self.clock = clock
        self._counts: dict[str, _Window] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def refusal(self, decision: Decision, role: str) -> str:
        """What a client over its limit is told, over HTTP and WebSocket alike."""
        return (
            f"rate limit of {decision.limit} requests per {self.window_s} s exceeded "
            f"for the {role} role; retry in {decision.retry_after_s} s"
        )

    def check(self, subject: str, limit: int) -> Decision:
        """Count one request of ``subject`` unless it is over ``limit`` (0: unlimited)."""
        if limit <= 0:
            return Decision(True, 0)
        now = self.clock()
        window = int(now // self.window_s)
        entry = self._counts.get(subject)
        if entry is None or entry.window != window:
            entry = self._counts[subject] = _Window(window)
        if entry.known + entry.sending + entry.pending >= limit:
            retry = math.ceil((window + 1) * self.window_s - now)
            return Decision(False, limit, max(retry, 1))
        entry.pending += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
        return Decision(True, limit)

    @property
    def flushing(self) -> bool:
        """A write of pending counts is scheduled or under way (a task of its own, for ``flush_s``)."""
        return self._flusher is not None and not self._flusher.done()

    async def _flush_soon(self) -> None:
        # close() cuts the wait short rather than cancelling: a cancel could land in the round trip,
        # after Redis counted the requests and before this process learnt it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self.flush_s)
        await self.flush()

    async def flush(self) -> None:
        """Write every pending count to Redis in one pipeline and learn the totals."""
        current = int(self.clock() // self.window_s)
        for subject in [s for s, e in self._counts.items() if e.window < current]:
            del self._counts[subject]  # a past window: its requests no longer count
        batch = [(subject, entry, entry.pending) for subject, entry in self._counts.items() if entry.pending]
        if not batch:
            return
        commands: list[tuple[Any, ...]] = []
        for subject, entry, sent in batch:
            key = keys.rate_limit(subject, entry.window)
            # The first increment of a window starts its expiry; later ones keep it (NX).
            commands += [("INCRBY", key, sent), ("EXPIRE", key, self.window_s + 1, "NX")]
        # Taken out of ``pending`` before the round trip: a flush that starts meanwhile (the scheduled
        # one beside close's, or a slow Redis outlasting flush_s) must not send the same requests again.
        for _, entry, sent in batch:
            entry.pending -= sent
            entry.sending += sent
        try:
            replies = await self.cache.pipeline(commands)
        except BaseException as exc:  # Redis down, or the task cancelled: the counts stay to send
            for _, entry, sent in batch:
                entry.sending -= sent
                entry.pending += sent
            if not isinstance(exc, StoreUnavailable):
                raise
            log.debug("rate-limit counts kept locally: %s", exc)
            return
        totals = [int(reply) for reply in replies[::2]]
        for (_, entry, sent), total in zip(batch, totals, strict=True):
            entry.sending -= sent
            # Includes what was sent; replies of overlapping flushes may come back in either order.
            entry.known = max(entry.known, total)

    async def close(self) -> None:
        """Send what is counted: the scheduled flush at once (a round trip under way completes), then
        whatever came meanwhile."""
        self._closing.set()
        if self._flusher is not None:
            await asyncio.wait([self._flusher])  # its own failure was logged or is not ours to raise
        await self.flush()
