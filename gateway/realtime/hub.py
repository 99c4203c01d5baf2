"""The process-wide pub/sub hub: ONE Redis subscription per process, fanned out to every live GraphQL
subscription through bounded per-subscriber buffers.

* **One connection.** The hub subscribes to ``keys.CHANNEL_EVENTS`` when its first subscriber arrives
  and unsubscribes (task ended, connection released) when its last one leaves, so ``PUBSUB NUMSUB``
  counts each process at most once, and an idle process holds nothing.
* **Never blocked by a subscriber.** A message is parsed once and *offered* to each subscriber; an
  offer only appends to a buffer or sets a flag and never awaits. An :class:`EventFeed` (a stream of
  events, ``userActivity``) takes each message whole or not at all. A consumer is dropped -- its
  subscription ends with an error saying so -- while the others go on, when a message for it arrives
  while ``limit`` events of earlier messages are still undelivered (a stalled or dead client), or while
  any are and taking it would leave more than ``5 x limit`` waiting (the hard cap). So a consumer that
  is behind holds at most ``5 x limit`` events (1,280 for ``userActivity``, ~2.5 MB at 2 kB an event);
  one that has read everything takes the next message whole whatever its size, so it may hold one
  message: up to one group commit's events for its user (FUNNEL_EVENTS_MAX_BATCH per request, times
  the requests committed together). A :class:`ChangeFlag` (``funnelUpdates``) keeps no events at all,
  only "something relevant changed", so it coalesces any number of messages into one recomputation.
* **One pass per message, however many users are watched.** A subscriber that follows one user
  (``user`` set: ``userActivity``) is offered only that user's events: the hub splits a message by
  user once, where a predicate per subscriber would cost a call per event per subscriber
  (``bench/bench_realtime.py`` prints both).
* **Redis down.** A lost connection (or a server that stops answering PINGs) is reported to every
  subscriber as a status (:class:`HubStatus`, ``up=False`` with the reason); the hub retries with
  backoff (0.1 s doubling to 2 s), resubscribes, reports ``up=True`` and calls ``on_reconnect``.
  Messages published while it was away are lost (pub/sub is at-most-once); the stored events are not.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.cache import keys
from gateway.errors import FunnelError, StoreUnavailable
from gateway.stores.contracts import Cache, Subscription

log = logging.getLogger("funnelgate.realtime")

LiveEvent = dict[str, Any]  # an event as published (gateway/realtime/runtime.py: published_event)
POLL_S = 1.0  # how long one read waits for a message
PING_AFTER_S = 5.0  # silence after which the hub asks Redis for a PONG
PONG_TIMEOUT_S = 3.0  # no PONG this long after a PING: Redis is treated as down
BACKOFF_S = (0.1, 2.0)


@dataclass(frozen=True)
class HubStatus:
    up: bool
    reason: str = ""


class Subscriber:
    """One consumer. ``offer``/``offer_status`` are called by the hub and must never block. With ``user``
    set, ``offer`` receives only that user's events (and never an empty list)."""

    user: int | None = None

    def offer(self, events: list[LiveEvent]) -> None:
        raise NotImplementedError

    def offer_status(self, status: HubStatus) -> None:
        raise NotImplementedError


class Dropped(FunnelError):
    """A subscriber fell too far behind and was dropped (its client does not read fast enough)."""

    code = "SUBSCRIBER_DROPPED"


class EventFeed(Subscriber):
    """The matching events, in order. A message is taken whole or not at all: a subscriber is dropped
    when a message comes while ``limit`` events of earlier messages are still waiting, or while some are
    and taking it would leave more than ``cap`` (``HARD_CAP x limit``) waiting. A subscriber with nothing
    waiting takes any message whole, however many events it holds for it (a group commit's, for one busy
    user). ``wanted`` picks the events; ``user`` instead lets the hub pick one user's events."""

    # The hard cap is 5 x limit (limit, plus 4 x limit for the message that arrives): for userActivity
    # (limit 256) 1,280 events, ~2.5 MB at 2 kB an event, instead of up to 255 + a whole group commit
    # (FUNNEL_EVENTS_MAX_BATCH x the requests committed together: 10,000 events are ~20 MB). It is at
    # least 255 + 1,000 (the default FUNNEL_EVENTS_MAX_BATCH), so one request's batch for the user never
    # drops a subscriber that is within its buffer; what it drops is one that is behind when several
    # requests' events for its user (or a raised max batch) arrive in one commit. A subscriber with
    # nothing waiting is keeping up: it gets any message whole.
    HARD_CAP = 5

    def __init__(
        self, wanted: Callable[[LiveEvent], bool] | None, limit: int, *, user: int | None = None
    ) -> None:
        if (wanted is None) == (user is None):
            raise ValueError("an EventFeed follows one user or a predicate: exactly one of the two")
        self._wanted = wanted
        self.user = user
        self._limit = limit
        self.cap = self.HARD_CAP * limit
        self._items: deque[LiveEvent | HubStatus] = deque()
        self._unread = 0  # the events in _items (not the statuses)
        self._wake = asyncio.Event()
        self.dropped = False
        self._why = ""

    def offer(self, events: list[LiveEvent]) -> None:
        if self.dropped:
            return
        wanted = self._wanted
        mine = events if wanted is None else [e for e in events if wanted(e)]
        if not mine:
            return
        # Behind is what earlier messages left unread: a reader that keeps up (nothing unread) takes a
        # message of 600 events for its user whole, or of 10,000, so it holds at most one message.
        behind = self._unread
        if behind >= self._limit:
            self._drop(f"more than {self._limit} events were waiting for it")
        elif behind and behind + len(mine) > self.cap:
            self._drop(
                f"{behind} events were waiting for it when {len(mine)} more came, "
                f"more than the {self.cap} it may hold"
            )
        else:
            self._items.extend(mine)
            self._unread += len(mine)
        self._wake.set()

    def _drop(self, why: str) -> None:
        self.dropped = True
        self._why = why
        self._items.clear()  # free the memory now: this subscriber is finished
        self._unread = 0

    def offer_status(self, status: HubStatus) -> None:
        self._items.append(status)
        self._wake.set()

    async def next(self) -> LiveEvent | HubStatus:
        while not self._items:
            if self.dropped:
                raise Dropped(f"subscriber dropped: {self._why}")
            self._wake.clear()
            await self._wake.wait()
        item = self._items.popleft()
        if type(item) is not HubStatus:
            self._unread -= 1
        return item

    @property
    def waiting(self) -> int:
        return len(self._items)


class ChangeFlag(Subscriber):
    """Remembers only that a matching event arrived since the last ``take`` (and the latest status)."""

    def __init__(self, wanted: Callable[[LiveEvent], bool]) -> None:
        self._wanted = wanted
        self._changed = False
        self._status: HubStatus | None = None
        self._wake = asyncio.Event()

    def offer(self, events: list[LiveEvent]) -> None:
        if not self._changed and any(self._wanted(e) for e in events):
            self._changed = True
            self._wake.set()

    def offer_status(self, status: HubStatus) -> None:
        self._status = status
        self._wake.set()

    async def wait(self) -> None:
        while not (self._changed or self._status):
            self._wake.clear()
            await self._wake.wait()

    def take(self) -> tuple[bool, HubStatus | None]:
        """(changed, status) since the last take, and reset both."""
        changed, status = self._changed, self._status
        self._changed, self._status = False, None
        return changed, status


class Hub:
    def __init__(
        self,
        cache: Cache,
        channel: str = keys.CHANNEL_EVENTS,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._cache = cache
        self._channel = channel
        self._on_reconnect = on_reconnect
        self._subscribers: set[Subscriber] = set()
        self._by_user: dict[int, set[Subscriber]] = {}  # the subscribers with ``user`` set, by user
        self._unkeyed: set[Subscriber] = set()  # the others: offered every event
        self._task: asyncio.Task[None] | None = None
        self.status = HubStatus(up=True)
        self.messages = 0  # received, for tests and stats

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @asynccontextmanager
    async def subscribed(self, subscriber: Subscriber) -> AsyncIterator[Subscriber]:
        self._subscribers.add(subscriber)
        if subscriber.user is not None:
            self._by_user.setdefault(subscriber.user, set()).add(subscriber)
        else:
            self._unkeyed.add(subscriber)
        if not self.running:
            # A new pump knows nothing of Redis yet. The status a stopped pump left behind (down, when
            # its last subscriber left during an outage) is not news: kept, the pump's first failure
            # would change nothing and tell no one, and this subscriber would never hear of the outage.
            self.status = HubStatus(up=True)
            self._task = asyncio.create_task(self._run(), name="funnelgate-pubsub-hub")
        elif not self.status.up:
            subscriber.offer_status(self.status)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)
            self._unkeyed.discard(subscriber)
            if subscriber.user is not None:
                watching = self._by_user.get(subscriber.user, set())
                watching.discard(subscriber)
                if not watching:
                    self._by_user.pop(subscriber.user, None)
            if not self._subscribers:
                await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        # asyncio.wait, not ``await task``: that raises the pump's CancelledError, which cannot be told
        # from one aimed at our caller (suppressing it swallowed the caller's cancellation), and it
        # would cancel the pump again, in the finally that releases its Redis subscription. wait()
        # returns when the pump is done and raises only when this task is cancelled: then the pump,
        # cancelled and no longer the hub's, is still let finish releasing, and the caller's
        # cancellation goes on (a second one stops the waiting).
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            await asyncio.wait([task])
            raise
        if not task.cancelled():
            task.result()  # a pump that ended with an error instead raises it here, as ``await`` did

    def _set_status(self, status: HubStatus) -> None:
        changed = status.up != self.status.up
        self.status = status
        if changed:
            (log.info if status.up else log.warning)(
                "pub/sub hub: %s", "Redis is back" if status.up else status.reason
            )
            for subscriber in list(self._subscribers):
                subscriber.offer_status(status)

    async def _run(self) -> None:
        # The loops end when this task is no longer the hub's, not only when cancelled: a read that
        # loses a cancellation in a race (seen once in 9 Redis restarts) left a second pump behind, and
        # every event reached subscribers twice, and shutdown waited for it forever (redis-py #2028
        # describes such a race in its reads).
        me = asyncio.current_task()
        delay = BACKOFF_S[0]
        while self._task is me:
            try:
                subscription = await self._cache.open_subscription(self._channel)
            except StoreUnavailable as exc:
                if self._task is not me:
                    return  # a stale pump's failure is not the hub's status
                self._set_status(HubStatus(up=False, reason=f"Redis is unavailable: {exc}"))
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_S[1])
                continue
            try:
                if self._task is not me:
                    return  # the finally releases the subscription; the hub has moved on
                was_down = not self.status.up
                self._set_status(HubStatus(up=True))
                delay = BACKOFF_S[0]
                if was_down and self._on_reconnect is not None:
                    await self._on_reconnect()
                await self._pump(subscription, me)
            except StoreUnavailable as exc:
                if self._task is me:
                    self._set_status(HubStatus(up=False, reason=f"Redis is unavailable: {exc}"))
            finally:
                await subscription.close()

    async def _pump(self, subscription: Subscription, me: asyncio.Task[None] | None) -> None:
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        pinged_at: float | None = None
        while self._task is me:
            message = await subscription.get(POLL_S)
            if self._task is not me:
                return  # a read that outlived the hub's interest dispatches nothing
            now = loop.time()
            if message is None:
                if pinged_at is None and now - quiet_since >= PING_AFTER_S:
                    await subscription.ping()
                    pinged_at = now
                elif pinged_at is not None and now - pinged_at >= PONG_TIMEOUT_S:
                    raise StoreUnavailable(f"no answer to PING for {PONG_TIMEOUT_S:.0f} s")
                continue
            quiet_since, pinged_at = now, None
            if message:
                self.dispatch(message)

    def dispatch(self, message: bytes) -> None:
        """Parse one published message and offer its events to every subscriber (never blocks)."""
        self.messages += 1
        try:
            events = orjson.loads(message)["events"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("pub/sub hub: ignored a malformed message on %s", self._channel)
            return
        by_user = self._by_user
        if by_user:
            split: dict[int, list[LiveEvent]] = {}
            for event in events:
                user = event.get("userId")
                if user in by_user:
                    split.setdefault(user, []).append(event)
            for user, theirs in split.items():
                for subscriber in list(by_user.get(user, ())):
                    subscriber.offer(theirs)
        for subscriber in list(self._unkeyed):
            subscriber.offer(events)
