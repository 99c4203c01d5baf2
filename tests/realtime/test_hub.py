"""The hub's pump ends with the hub's interest in it, even when a read loses its cancellation."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import StoreUnavailable
from gateway.realtime.hub import Dropped, EventFeed, Hub, HubStatus
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


# -- EventFeed's bounds: limit 10, so a hard cap of 5 x 10 = 50 events -------------------------------------
def _events(prefix: str, count: int) -> list[dict[str, object]]:
    return [{"eventId": f"{prefix}-{i}", "userId": 1} for i in range(count)]


async def _read(feed: EventFeed, count: int) -> list[object]:
    return [(await feed.next())["eventId"] for _ in range(count)]  # type: ignore[index]


async def test_a_subscriber_behind_is_dropped_by_a_message_past_the_hard_cap_within_its_limit() -> None:
    feed = EventFeed(None, 10, user=1)
    feed.offer(_events("a", 4))
    assert await _read(feed, 1) == ["a-0"]  # 3 unread: under the limit (10)
    feed.offer(_events("b", 48))  # 3 + 48 = 51 would wait: past the cap (50)
    assert feed.dropped and feed.waiting == 0  # dropped, its events freed at once
    with pytest.raises(Dropped, match="3 events were waiting for it when 48 more came, more than the 50"):
        await feed.next()
    feed.offer(_events("c", 1))  # a dropped subscriber takes nothing more
    assert feed.waiting == 0


async def test_a_subscriber_behind_takes_a_message_up_to_the_hard_cap() -> None:
    feed = EventFeed(None, 10, user=1)
    feed.offer(_events("a", 4))
    assert await _read(feed, 1) == ["a-0"]
    feed.offer(_events("b", 47))  # 3 + 47 = 50 wait: at the cap, not past it
    assert not feed.dropped and feed.waiting == 50
    assert await _read(feed, 50) == ["a-1", "a-2", "a-3", *(f"b-{i}" for i in range(47))]


async def test_a_subscriber_keeping_up_gets_a_message_larger_than_the_hard_cap_whole() -> None:
    feed = EventFeed(None, 10, user=1)
    feed.offer(_events("a", 60))  # nothing unread: 60 (> 50) taken whole
    assert await _read(feed, 60) == [f"a-{i}" for i in range(60)]
    # An unread status is not an event behind: the next big message is taken whole too.
    feed.offer_status(HubStatus(up=True))
    feed.offer(_events("b", 60))
    assert await feed.next() == HubStatus(up=True)
    assert await _read(feed, 60) == [f"b-{i}" for i in range(60)]
    assert not feed.dropped and feed.waiting == 0


# -- stop() and its caller's cancellation ------------------------------------------------------------------
class _SlowToClose:
    """A subscription whose close waits for the test: the pump is still releasing it while stop() waits."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()
        self.may_close = asyncio.Event()
        self.closed = False

    async def get(self, timeout_s: float) -> bytes | None:
        await asyncio.sleep(min(timeout_s, 0.05))
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self.closing.set()
        await self.may_close.wait()
        self.closed = True


class _SlowCache:
    def __init__(self) -> None:
        self.opened: list[_SlowToClose] = []

    async def open_subscription(self, channel: str) -> _SlowToClose:
        self.opened.append(_SlowToClose())
        return self.opened[-1]


async def test_a_caller_cancelled_in_stop_ends_cancelled_after_the_pump_released_its_subscription() -> None:
    cache = _SlowCache()
    hub = Hub(cache)  # type: ignore[arg-type]
    in_place = asyncio.Event()

    async def subscribe_then_leave() -> None:
        async with hub.subscribed(EventFeed(None, 10, user=1)):  # leaving it awaits hub.stop()
            await in_place.wait()

    leaving = asyncio.ensure_future(subscribe_then_leave())
    await wait_until(lambda: len(cache.opened) == 1)
    pump, subscription = hub._task, cache.opened[0]
    assert pump is not None
    pump_done_when_leaving_ended: list[bool] = []
    leaving.add_done_callback(lambda _: pump_done_when_leaving_ended.append(pump.done()))
    in_place.set()
    await asyncio.wait_for(subscription.closing.wait(), 10)  # the pump is cancelled, stop() waits for it
    assert not leaving.done()
    leaving.cancel()  # the caller of stop() is cancelled while the pump is releasing its subscription
    await asyncio.sleep(0)  # the cancellation reaches the caller before the release can end
    subscription.may_close.set()
    done, _ = await asyncio.wait({leaving}, timeout=10)  # a bound: only a stop() that hangs reaches it
    assert done
    assert leaving.cancelled()  # the cancellation was not swallowed
    assert pump_done_when_leaving_ended == [True]  # it propagated once the pump was gone
    assert subscription.closed  # the pump's release ran to its end (it was not cancelled midway)
    assert not hub.running


class _FailingToClose(_SlowToClose):
    async def close(self) -> None:
        raise RuntimeError("close failed")


class _FailingCache(_SlowCache):
    async def open_subscription(self, channel: str) -> _SlowToClose:
        self.opened.append(_FailingToClose())
        return self.opened[-1]


async def test_stop_still_raises_an_error_the_pump_ended_with() -> None:
    cache = _FailingCache()
    hub = Hub(cache)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="close failed"):
        async with hub.subscribed(EventFeed(None, 10, user=1)):  # leaving it awaits hub.stop()
            await wait_until(lambda: len(cache.opened) == 1)
    assert not hub.running


class _DownCache:
    """A Redis that refuses every connection."""

    def __init__(self) -> None:
        self.attempts = 0

    async def open_subscription(self, channel: str) -> _SwallowingSubscription:
        self.attempts += 1
        raise StoreUnavailable("Error 111 connecting to redis.sock. Connection refused.")


async def test_a_subscriber_who_restarts_the_hub_during_an_outage_hears_of_it() -> None:
    # The first subscriber hears of the outage and leaves while Redis is still down, so the pump stops.
    # The next one starts a new pump, whose first attempt fails too: it must hear of it as well.
    cache = _DownCache()
    hub = Hub(cache)  # type: ignore[arg-type]
    down = "Redis is unavailable: Error 111 connecting to redis.sock. Connection refused."
    first, second = EventFeed(None, 10, user=1), EventFeed(None, 10, user=2)
    async with hub.subscribed(first):
        assert await asyncio.wait_for(first.next(), 10) == HubStatus(up=False, reason=down)
    assert not hub.running
    attempts = cache.attempts  # the first pump may have retried any number of times: count from here
    async with hub.subscribed(second):
        assert await asyncio.wait_for(second.next(), 10) == HubStatus(up=False, reason=down)
        assert cache.attempts > attempts  # told by the new pump's own attempt, not from memory
