"""What each realtime subscription yields; the resolvers (resolvers/subscription.py) only map to types.

Each stream yields values, or a :class:`StoreUnavailable` *instance* when Redis is down: GraphQL sends
that as a payload with ``errors`` (code UNAVAILABLE) and the subscription stays open, to resume when the
hub is back. Leaving the ``async with`` of the hub (the client unsubscribes or disconnects, the
generator is closed) unregisters the subscriber; the last one out ends the hub's Redis subscription.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime
from typing import Any

from gateway import deadlines
from gateway.analytics import default_funnel, funnels
from gateway.errors import QueryTimeout, StoreUnavailable
from gateway.models import FunnelDefinition, FunnelResult, UserFilter
from gateway.realtime.aggregates import Snapshot
from gateway.realtime.captured import PAGE_VIEW
from gateway.realtime.hub import ChangeFlag, EventFeed, HubStatus, LiveEvent
from gateway.realtime.runtime import Realtime, running
from gateway.services import Services

ACTIVITY_BUFFER = 256  # undelivered events a userActivity subscriber may fall behind before it is dropped


def _unavailable(status: HubStatus) -> StoreUnavailable:
    return StoreUnavailable(f"{status.reason}; live updates resume when Redis is back")


async def user_activity(
    runtime: Realtime | None, user_id: int
) -> AsyncIterator[LiveEvent | StoreUnavailable]:
    realtime = running(runtime)
    feed = EventFeed(None, ACTIVITY_BUFFER, user=user_id)
    async with realtime.hub.subscribed(feed):
        while True:
            item = await feed.next()  # raises Dropped when this subscriber fell too far behind
            if isinstance(item, HubStatus):
                if not item.up:
                    yield _unavailable(item)
                continue
            yield item


def changes_funnel(steps: Sequence[str] | None, where: UserFilter) -> Callable[[LiveEvent], bool]:
    """Whether a published event can change a funnel over ``steps`` filtered by ``where``: a page view
    of one of its steps, by a user of its device and sex, on one of its days. ``steps`` None (a default
    funnel derived from the visits): any page view, whoever and whenever, since any can reorder it."""
    wanted = None if steps is None else frozenset(steps)

    def changes(event: LiveEvent) -> bool:
        if event.get("type") != PAGE_VIEW:
            return False
        if wanted is None:
            return True
        if event.get("pageType") not in wanted:
            return False
        if where.device is not None and event.get("device") != where.device:
            return False
        if where.sex is not None and event.get("sex") != where.sex:
            return False
        if where.start is None and where.end is None:
            return True
        day = datetime.fromisoformat(event["timestamp"]).date()
        return (where.start or date.min) <= day <= (where.end or date.max)

    return changes


async def _funnel(services: Services, definition: FunnelDefinition) -> FunnelResult:
    """One computation of the funnel under the request timeout and its backend deadline, as a query
    gets: a subscription lives on, each of its computations does not."""
    timeout_s = services.settings.request_timeout_s
    with deadlines.deadline_in(timeout_s):
        try:
            async with asyncio.timeout(timeout_s):
                return await funnels.funnel(services, definition, None)
        except TimeoutError:
            raise QueryTimeout(
                f"the funnel took longer than {timeout_s:g} s and was stopped (FUNNEL_REQUEST_TIMEOUT_S)"
            ) from None


async def funnel_updates(
    services: Services,
    definition: FunnelDefinition,
    interval_s: float,
    seen: Callable[[FunnelResult], Any] = lambda result: result,
) -> AsyncIterator[FunnelResult | StoreUnavailable | QueryTimeout]:
    """The funnel now, then again whenever events change its answer, at most once per ``interval_s``
    (an event that could change it but did not -- a step its user had already reached -- sends nothing);
    a recomputation that runs past the request timeout is sent as that error, and the next change
    retries. ``seen``: what the client sees of an answer (its selected fields); an answer it would see
    as the last one it got is not sent.

    The pace holds for the computations too, not only for the messages: each one starts at least
    ``interval_s`` after the previous one ended (or after the last message went out), sent or not. Paced
    by the messages alone, a client whose answer did not move (it selected ``steps { name }``, or every
    event was by users already counted) had the funnel recomputed for every event that arrived."""
    realtime = running(services.realtime)
    first = await _funnel(services, definition)  # checks the definition; errors end it here
    steps: Sequence[str] | None = definition.steps or tuple(s.name for s in first.steps)
    if definition.steps is None and await default_funnel.is_derived(services.store, services.stored_defaults):
        steps = None  # derived: its steps themselves move with any page view
    flag = ChangeFlag(changes_funnel(steps, definition.filter))
    loop = asyncio.get_running_loop()
    async with realtime.hub.subscribed(flag):
        yield first
        last: FunnelResult | None = first  # what the client holds; None after an error message
        paced_at = loop.time()  # the last computation ended, or the last message went out
        while True:
            await flag.wait()
            await asyncio.sleep(max(0.0, paced_at + interval_s - loop.time()))  # coalesce meanwhile
            changed, status = flag.take()
            if status is not None and not status.up:
                yield _unavailable(status)
                last = None
                continue
            if changed or status is not None:  # back after an outage: events may have been missed
                try:
                    result = await _funnel(services, definition)
                except (StoreUnavailable, QueryTimeout) as exc:
                    yield exc
                    last = None
                    paced_at = loop.time()
                    continue
                paced_at = loop.time()  # sent or not, the next computation waits an interval
                # An event of a step by a user already counted there changes nothing: say nothing.
                if last is None or seen(result) != seen(last):
                    yield result
                    last = result
                    paced_at = loop.time()


async def realtime_metrics(
    realtime: Realtime, interval_s: float
) -> AsyncIterator[Snapshot | StoreUnavailable]:
    async with realtime.watching_pages():  # the steps follow pages posted to any replica
        while True:
            try:
                yield await realtime.snapshot()
            except StoreUnavailable as exc:
                yield StoreUnavailable(f"Redis is unavailable ({exc}); live metrics resume when it is back")
            await asyncio.sleep(interval_s)
