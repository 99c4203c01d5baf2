"""A circuit breaker for Redis, so a hung or dead Redis costs a query nothing while it is down.

A stopped Redis (SIGSTOP, a network partition) accepts connections and never answers: every call waits
its whole socket timeout, and a query makes several (MGET, SET, the response cache), so each query
waited seconds. The breaker:

* **closed** (normal): calls go through. A timeout opens it at once (Redis answers in milliseconds; a
  timeout means it is hung); other failures (connection refused) open it after ``threshold`` in a row.
* **open**: calls fail immediately with StoreUnavailable, which the cache-aside layer already treats as
  a miss: queries go straight to the backends at their normal speed. After ``cooldown_s`` a probe
  (PING) runs in the background, never in a request.
* **half-open** (the probe is running): calls still fail fast; the probe's success closes the breaker,
  its failure keeps it open for another cooldown.

A user of the cache that must act before anyone reads it again (the realtime runtime, when a capture could
not replace its version tokens: an entry cached before the outage must not be served after it) trips the
breaker (:meth:`CircuitBreaker.trip`) and registers a hook (:meth:`CircuitBreaker.before_close`): after a
successful probe the hooks run, their own Redis calls let through, and only when every one succeeded does
the breaker close; one that fails keeps it open for another cooldown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

log = logging.getLogger("funnelgate.redis")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

# The breaker whose before-close hooks are running in this task: their calls pass while it is half-open.
_RECOVERING: ContextVar[CircuitBreaker | None] = ContextVar("funnelgate_breaker_recovering", default=None)


class CircuitBreaker:
    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        threshold: int = 3,
        cooldown_s: float = 1.0,
        name: str = "redis",
    ) -> None:
        self._probe = probe
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.name = name
        self.state = CLOSED
        self.failures = 0  # consecutive
        self.opened_at = 0.0  # the last opening: a failed probe opens it again
        self.down_since = 0.0  # the first opening of this outage: what a message reports
        self.short_circuited = 0  # calls refused while open (for tests and /healthz)
        self.trips = 0
        self.probes = 0
        self._probing: asyncio.Task[None] | None = None
        self._before_close: list[Callable[[], Awaitable[object]]] = []

    def before_close(self, hook: Callable[[], Awaitable[object]]) -> Callable[[], None]:
        """Run ``hook`` after each successful probe, before the breaker closes (its calls go through;
        raising keeps the breaker open). Returns the function that removes it."""
        self._before_close.append(hook)
        return lambda: self._before_close.remove(hook) if hook in self._before_close else None

    def trip(self, reason: str) -> None:
        """Open a closed breaker now (a caller saw Redis fail in a way the breaker did not: a call it
        gave up on). Open or half-open, nothing changes: the next probe decides."""
        if self.state == CLOSED:
            self._open(reason)

    def allow(self) -> bool:
        if self.state == CLOSED or _RECOVERING.get() is self:
            return True
        self.short_circuited += 1
        if self.state == OPEN and time.monotonic() - self.opened_at >= self.cooldown_s:
            self.state = HALF_OPEN
            self._probing = asyncio.get_running_loop().create_task(self._try())
        return False

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, exc: BaseException, *, timed_out: bool) -> None:
        self.failures += 1
        if self.state == CLOSED and (timed_out or self.failures >= self.threshold):
            self._open(f"{type(exc).__name__}: {exc}")

    def _open(self, reason: str) -> None:
        self.state = OPEN
        self.opened_at = self.down_since = time.monotonic()
        self.trips += 1
        log.warning(
            "%s circuit open (%s): cache reads miss, writes are skipped until it answers", self.name, reason
        )

    async def _try(self) -> None:
        self.probes += 1
        try:
            await self._probe()
            _RECOVERING.set(self)  # this task's context only: the hooks' calls pass, nobody else's
            for hook in list(self._before_close):
                await hook()
        except Exception as exc:  # still down (or a hook could not do its part): another cooldown
            self.state = OPEN
            self.opened_at = time.monotonic()
            log.debug("%s probe failed: %s", self.name, exc)
            return
        self.state = CLOSED
        self.failures = 0
        log.warning("%s answers again: circuit closed", self.name)

    def describe(self) -> str:
        """Why calls are refused, for messages: how long Redis has been failing, not since the last
        probe (a probe every ``cooldown_s`` reopens the circuit, which read "open for 0.0s")."""
        down_s = time.monotonic() - self.down_since
        # Under a second reads "for under 1s", not "for 0s" (as if it were not failing at all).
        how_long = f"for {down_s:.0f}s" if down_s >= 1 else "for under 1s"
        return f"not answering {how_long} (circuit {self.state}; retried every {self.cooldown_s:g}s)"

    async def close(self) -> None:
        if self._probing is not None and not self._probing.done():
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing
