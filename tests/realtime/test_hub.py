"""The hub's pump ends with the hub's interest in it, even when a read loses its cancellation."""

from __future__ import annotations

import asyncio

from gateway.realtime.hub import EventFeed, Hub
from tests.realtime.conftest import wait_until


class _SwallowingSubscription:
    """A read that loses the first cancellation, as a Redis client's read can in a race (only the
    first: a regression then fails this test instead of hanging the event loop's teardown)."""

    swallowed = False

    def __init__(self) -> None:
        self.closed = False

    async def get(self, timeout_s: float) -> bytes | None:
        try:
            await asyncio.sleep(min(timeout_s, 0.05))
        except asyncio.CancelledError:
            if _SwallowingSubscription.swallowed:
                raise
            _SwallowingSubscription.swallowed = True
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class _Cache:
    def __init__(self) -> None:
        self.opened: list[_SwallowingSubscription] = []

    async def open_subscription(self, channel: str) -> _SwallowingSubscription:
        self.opened.append(_SwallowingSubscription())
        return self.opened[-1]


async def test_a_pump_whose_read_swallows_the_cancellation_still_stops() -> None:
    _SwallowingSubscription.swallowed = False
    cache = _Cache()
    hub = Hub(cache)  # type: ignore[arg-type]
    first: list[asyncio.Task[None] | None] = []

    async def subscribe_then_leave() -> None:
        async with hub.subscribed(EventFeed(None, 10, user=1)):
            await wait_until(lambda: len(cache.opened) == 1)
            first.append(hub._task)

    leaving = asyncio.ensure_future(subscribe_then_leave())
    done, _ = await asyncio.wait({leaving}, timeout=10)  # a bound: only a stop() that hangs reaches it
    if not done:
        leaving.cancel()  # a second cancellation reaches the pump, and the test can end
    assert done, "stop() waited for a pump that had lost its cancellation"
    assert _SwallowingSubscription.swallowed
    assert first[0] is not None and first[0].done()
    assert cache.opened[0].closed  # its Redis subscription released
    assert not hub.running

    # A new subscriber gets one pump, not a second one beside a leftover.
    async with hub.subscribed(EventFeed(None, 10, user=2)):
        await wait_until(lambda: len(cache.opened) == 2)
        pumps = [t for t in asyncio.all_tasks() if t.get_name() == "funnelgate-pubsub-hub" and not t.done()]
        assert len(pumps) == 1
