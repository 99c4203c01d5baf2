"""Single-flight: identical in-flight cache misses share one computation.

When a cached value expires, every request that wants it misses at once; without this each one would
ask the backend the same question (a funnel, a page of sessions) at the same moment. Here the first
miss of a key starts the computation (backend call + cache write) as a task, and every later miss of
the same key, from the same request or a concurrent one, waits for that task instead. The entry goes
when the task ends, so the next miss after that reads the cache (or computes again).

``run_many`` does the same per key for a batch (the loaders): keys already in flight are awaited, the
others are computed together in one call.

Cancellation: a waiter that is cancelled (its request timed out, its client left) stops waiting; the
computation is cancelled only when no one waits for it any more, so one impatient client cannot fail
the others, and a backend call nobody wants stops.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class _Flight:
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Future[Any]) -> None:
        self.task = task
        self.waiters = 0

    async def wait(self) -> Any:
        self.waiters += 1
        try:
            return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if self.waiters == 1 and not self.task.done():
                self.task.cancel()  # the last one waiting left: stop the backend work too
            raise
        finally:
            self.waiters -= 1


class SingleFlight:
    def __init__(self) -> None:
        self._flights: dict[Hashable, tuple[_Flight, int | None]] = {}
        self.started = 0  # computations started (for tests and stats)
        self.joined = 0  # misses that waited for another's computation

    def waiting(self, key: Hashable) -> int:
        """How many callers wait for ``key`` now (0 when it is not in flight)."""
        entry = self._flights.get(key)
        return entry[0].waiters if entry else 0

    def _start(self, keys: Sequence[Hashable], compute: Callable[[], Awaitable[Any]], many: bool) -> _Flight:
        self.started += 1
        flight = _Flight(asyncio.ensure_future(compute()))
        for index, key in enumerate(keys):
            self._flights[key] = (flight, index if many else None)

        def done(_: asyncio.Future[Any]) -> None:
            for key in keys:
                if self._flights.get(key, (None,))[0] is flight:
                    del self._flights[key]

        flight.task.add_done_callback(done)
        return flight

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """``compute()`` once for every concurrent caller of ``key``."""
        entry = self._flights.get(key)
        if entry is None:
            flight = self._start([key], compute, many=False)
        else:
            flight = entry[0]
            self.joined += 1
            if entry[1] is not None:  # in flight as part of a batch
                return (await flight.wait())[entry[1]]
        return await flight.wait()

    async def run_many(
        self, keys: Sequence[Hashable], compute: Callable[[list[int]], Awaitable[Sequence[T]]]
    ) -> list[T]:
        """Values for ``keys`` in order; ``compute(indexes)`` answers the keys at ``indexes`` that are not
        in flight yet (each distinct key once), in one call, in that order."""
        joined: dict[Hashable, tuple[_Flight, int | None]] = {}
        own: dict[Hashable, int] = {}  # key -> the first index it appears at
        for i, key in enumerate(keys):
            if key in own or key in joined:
                continue
            entry = self._flights.get(key)
            if entry is None:
                own[key] = i
            else:
                joined[key] = entry
        self.joined += len(joined)
        flights: list[_Flight] = []
        if own:
            indexes = list(own.values())
            flights.append(self._start(list(own), lambda: compute(indexes), many=True))
        flights.extend(dict.fromkeys(flight for flight, _ in joined.values()))
        answers = dict(zip(flights, await asyncio.gather(*(f.wait() for f in flights)), strict=True))
        values: dict[Hashable, Any] = {}
        if own:
            for position, key in enumerate(own):
                values[key] = answers[flights[0]][position]
        for key, (flight, index) in joined.items():
            values[key] = answers[flight] if index is None else answers[flight][index]
        return [values[key] for key in keys]


_PER_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SingleFlight] = weakref.WeakKeyDictionary()


def flights() -> SingleFlight:
    """The process's single-flight table for the running event loop (tasks belong to one loop)."""
    loop = asyncio.get_running_loop()
    table = _PER_LOOP.get(loop)
    if table is None:
        table = _PER_LOOP[loop] = SingleFlight()
    return table


def flight_key(cache: object, key: str) -> tuple[int, str]:
    """Keys are per cache: two service sets in one process (tests, tools) never share a computation."""
    return (id(cache), key)
