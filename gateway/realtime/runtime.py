"""The realtime runtime of one gateway process: the group-commit writer, the pub/sub hub, the snapshot.

One commit (:meth:`Realtime._commit`), for a group of valid events from any number of requests:

  1. enrichment: two store reads (users, their sessions) -> the documents (``enrichment.plan``);
  2. ``DocumentStore.record_events``: one durable write; it says which events are new (a group holding
     an id stored before is planned again without it: :meth:`Realtime._record`);
  3. for the new events only, ONE Redis pipeline: the version tokens they change (invalidation), the
     live aggregates (counters, HyperLogLogs, active users, session state), and one ``PUBLISH`` of the
     new events on ``keys.CHANNEL_EVENTS``;
  4. the submitters are answered (the writer does that): after the commit, and after the cache can no
     longer serve an answer the events changed. Step 3 of one group overlaps steps 1-2 of the next;
     the effects of successive groups still run in commit order.

Redis is not needed to capture: if step 3 fails (or Redis failed less than a second ago) the events
are still stored and acknowledged; the process remembers that some tokens may not have been replaced
and replaces ``ver:epoch`` -- every versioned entry -- as soon as Redis answers again (the next commit,
the hub's reconnection, or the cache's breaker closing), so nothing cached before the outage is served
after it. Until then the cache's breaker is held open, so this process reads no cached entry at all: the
debt is paid by the breaker's probe before it lets reads through (``stores/redis/breaker.py``). It is
written down in the data directory (``DEBT_FILE``) until paid, so a process stopped before Redis came
back pays it on its next start. Without
that, a gateway with no subscriber and no further event served its answers from before the outage for
as long as they lived (a Redis that paused, or a network blip, keeps them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from gateway.analytics import default_funnel
from gateway.cache import keys, versions
from gateway.errors import StoredEvents, StoreUnavailable
from gateway.realtime import aggregates
from gateway.realtime.captured import PAGE_VIEW, Event
from gateway.realtime.digest import NewEvents, gather
from gateway.realtime.enrichment import Planned, PlannerMemory, plan
from gateway.realtime.events import utc_now
from gateway.realtime.hub import Hub, HubStatus, LiveEvent, Subscriber
from gateway.realtime.invalidation import version_bumps
from gateway.realtime.writer import GroupCommitWriter
from gateway.stores.datasets import cache_scope

if TYPE_CHECKING:
    from gateway.services import Services

log = logging.getLogger("funnelgate.realtime")

REDIS_TIMEOUT_S = 1.0  # the capture pipeline waits no longer for Redis (events are already stored)
REDIS_PAUSE_S = 1.0  # after a failure, skip Redis this long (no 1 s wait on every commit meanwhile)
SNAPSHOT_MAX_AGE_S = 1.0  # realtimeMetrics subscribers of one process share a snapshot this fresh
DEFAULT_FUNNEL_MAX_AGE_S = 60.0
# In the data directory while version tokens may be unreplaced (``Realtime._owe``): read at start.
DEBT_FILE = "redis-debt"
DEBT_RETRY_S = 1.0  # how often an unpaid debt tries Redis again without any request to do it


async def _done() -> None:
    return None


def published_event(event: Event, planned: Planned) -> dict[str, Any]:
    """An event as subscribers receive it: the stored facts plus what the client reported. The
    timestamp stays a datetime: orjson writes it exactly as ``isoformat()`` does, without the call."""
    return {
        "eventId": event.event_id,
        "type": event.type,
        "userId": event.user_id,
        "sessionId": planned.session_of[event.event_id],
        "pageType": event.page_type,
        "timestamp": event.timestamp,
        "device": planned.user_device.get(event.user_id),
        "sex": planned.user_sex.get(event.user_id),
        "reportedDevice": event.device,
        "duration": event.duration,
        "interactionType": event.interaction_type,
        "element": event.element,
        "value": event.value,
    }


def published_message(planned: Planned, group: NewEvents) -> bytes:
    """The message published on ``keys.CHANNEL_EVENTS``: ``{"events": [...]}``, the new events in order."""
    return orjson.dumps({"events": [published_event(e, planned) for e in group.events]})


class Realtime:
    def __init__(self, services: Services) -> None:
        self._services = services
        settings = services.settings
        self.gap = timedelta(seconds=settings.session_gap_s)
        self.max_skew = timedelta(seconds=settings.events_max_skew_s)
        self.max_age = timedelta(days=settings.events_max_age_days)
        self.max_batch = settings.events_max_batch
        self.writer = GroupCommitWriter(self._commit)
        # Users are remembered a little longer than a session can pause (then a new one starts anyway).
        self.memory = PlannerMemory(ttl_s=self.gap.total_seconds() + settings.events_max_skew_s)
        self.hub = Hub(services.cache, on_reconnect=self.settle)
        self.redis_debt = False  # some version tokens may not have been replaced (Redis failed)
        self._redis_paused_until = 0.0
        self._snapshot: tuple[float, str, aggregates.Snapshot] | None = None  # (clock, scope, snapshot)
        self._effects_tail: asyncio.Future[None] | None = None
        self._default_funnel: tuple[float, str, list[str]] | None = None  # (clock, cache scope, steps)
        self._default_derived = False  # the remembered default is derived from the visits (or none yet)
        # The cache's breaker (Redis adapters have one): held open while a debt is unpaid, and paying it
        # is the last thing its probe does before reads go through again.
        self._breaker = getattr(services.cache, "breaker", None)
        self._unhook = self._breaker.before_close(self._pay_before_reads) if self._breaker else None
        self._payer: asyncio.Task[None] | None = None  # pays the debt while no call would (_owe)
        self._closing = False  # close() has begun: no new payer
        self._page_watchers = 0  # realtimeMetrics streams open (watching_pages)
        self._page_watch: AbstractAsyncContextManager[Subscriber] | None = None
        # The debt outlives the process: a gateway stopped (or killed) during a Redis outage after
        # storing events left tokens unreplaced, and nothing else would replace them once Redis is back
        # (a Redis with persistence keeps the entries from before): its next run pays it.
        self._debt_file = settings.data_dir / DEBT_FILE
        self._debt_unwritable = False  # the file could not be written (said once per debt)
        self._debt_recorded = self._debt_file.exists()
        if self._debt_recorded:
            self._owe("a previous run stored events while Redis was unreachable")

    async def _commit(self, events: list[Event]) -> tuple[set[str], dict[str, str], Awaitable[None]]:
        clock = asyncio.get_running_loop().time()
        planned, new = await self._record(events, clock)
        self.memory.remember(planned, new, clock)
        if self._default_derived:
            self.forget_default_on_pages(
                e.page_type for e in planned.events if e.event_id in new and e.type == PAGE_VIEW
            )
        if not new and not self.redis_debt:
            return new, planned.refused, _done()
        # The next group may commit meanwhile; effects run one group after the other, in commit order.
        # A group of duplicates only (a client retrying after a failure) has none, but still waits for
        # the debt to be paid: its answer must not precede the cache's invalidation.
        previous = self._effects_tail
        self._effects_tail = asyncio.ensure_future(self._effects_after(previous, planned, new))
        return new, planned.refused, self._effects_tail

    async def _record(self, events: list[Event], clock: float) -> tuple[Planned, set[str]]:
        """Plan and write the group; the plan, and the ids newly stored.

        The plan cannot know which ids are stored already (asking would cost every group a read). A
        stored id's event is a duplicate and changes nothing, but the plan would have let it start or
        shape a session: ``rt-{its id}`` may be its first owner's session, and the group's new events
        after it would join that. So the store refuses a group holding a stored id, writing nothing,
        and the group is planned again without those ids. Only a group with a replayed id pays it.
        The events the plan refused are asked about too (``withheld``): a replay of a stored event that
        no longer fits its session, or names it under another user, is a duplicate, not a rejection."""
        store = self._services.store
        planned = await plan(store, events, self.gap, self.memory, clock)
        if not planned.events and not planned.refused:
            return planned, set()
        try:
            # The refused events too: a stored one is a replay, answered as a duplicate, not rejected.
            written = await store.record_events(
                planned.batch, refuse_stored=True, withheld=list(planned.refused)
            )
            return planned, set(written)
        except StoredEvents as stored:
            fresh = [e for e in events if e.event_id not in stored.ids]
        planned = await plan(store, fresh, self.gap, self.memory, clock)
        # Another writer may store one of them meanwhile (MongoDB, several gateways): a duplicate then.
        return planned, set(await store.record_events(planned.batch)) if planned.events else set()

    async def _effects_after(
        self, previous: asyncio.Future[None] | None, planned: Planned, new: set[str]
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its failure was its own group's to report
        if not new:
            await self.settle()
            return
        try:
            await self._effects(planned, new)
        except Exception:
            # Its version tokens may not have been replaced (a fault of ours, Redis may be fine): replace
            # ver:epoch now; if Redis fails that too, the debt holds the cache closed until it is paid.
            self.redis_debt = True
            await self.settle()
            raise

    async def _effects(self, planned: Planned, new: set[str]) -> None:
        group = gather(planned, new)  # the new events, walked once for all three
        bumped = version_bumps(planned, group)
        if self.redis_debt:
            bumped.append(keys.version_epoch())
        tokens = aggregates.interleaved(bumped, [versions.new_token()] * len(bumped))
        commands: list[tuple[Any, ...]] = [("MSETEX", keys.TTL_VERSION, *tokens)]
        commands += aggregates.commands(planned, group, utc_now())
        # The message is bytes: execute_many passes it to Redis as it is (not escaped into its JSON).
        commands.append(("PUBLISH", keys.CHANNEL_EVENTS, published_message(planned, group)))
        await self._redis(commands)

    async def _redis(self, commands: Sequence[tuple[Any, ...]]) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() < self._redis_paused_until:
            self._owe("Redis failed less than a second ago")
            return False
        try:
            await asyncio.wait_for(self._services.cache.execute_many(commands), REDIS_TIMEOUT_S)
        except (StoreUnavailable, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {REDIS_TIMEOUT_S:g} s"  # a TimeoutError says nothing
            if not self.redis_debt:
                log.warning(
                    "realtime: Redis failed (%s); events are stored, aggregates and pub/sub wait", reason
                )
            self._owe(f"realtime: {reason}")
            self._redis_paused_until = loop.time() + REDIS_PAUSE_S
            return False
        self.redis_debt = False
        self._debt_unwritable = False
        if self._debt_recorded:  # paid
            self._debt_file.unlink(missing_ok=True)
            self._debt_recorded = False
        return True

    def _owe(self, reason: str) -> None:
        """Some version tokens may not have been replaced: until ``ver:epoch`` is, no cached entry of
        this process may be read (the breaker, held open, makes every read a miss). Written down in
        the data directory first, so a restart before Redis is back still pays it."""
        # Recorded again if the file is gone while this process still owes: another process on the data
        # directory (a second run, a CLI command) read it at its start, paid, and removed it.
        if not self._debt_recorded or not self._debt_file.exists():
            try:
                self._debt_file.parent.mkdir(parents=True, exist_ok=True)
                self._debt_file.write_text(f"{utc_now().isoformat()} {reason}\n")
                self._debt_recorded = True
            except OSError as exc:
                # Said once per debt: _owe runs on every commit and every DEBT_RETRY_S while Redis is
                # down, and a read-only data directory would log an ERROR each time.
                if not self._debt_unwritable:
                    log.error(
                        "realtime: could not record the unpaid cache debt in %s (a restart before Redis "
                        "is back will not pay it): %s",
                        self._debt_file,
                        exc,
                    )
                self._debt_unwritable = True
        self.redis_debt = True
        if self._breaker is not None:
            self._breaker.trip(f"version tokens not replaced: {reason}")
        # The breaker probes Redis only when a call is refused: a replica that gets no request after
        # Redis is back would never pay, and every other replica would serve the entries from before.
        if not self._closing and (self._payer is None or self._payer.done()):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a runtime built outside one): the next call pays
                return
            self._payer = loop.create_task(self._pay_when_back(), name="funnelgate-cache-debt")

    async def _pay_when_back(self) -> None:
        while self.redis_debt:
            await asyncio.sleep(DEBT_RETRY_S)
            with contextlib.suppress(StoreUnavailable):
                await self.settle()  # refused while the breaker is open, which makes it probe and pay

    async def settle(self) -> None:
        """Replace ``ver:epoch`` if a commit could not replace its tokens (called when Redis is back)."""
        if self.redis_debt:
            self._redis_paused_until = 0.0
            await self._redis([("SET", keys.version_epoch(), versions.new_token(), "EX", keys.TTL_VERSION)])

    async def _pay_before_reads(self) -> None:
        """The breaker's last step before it closes: pay the debt, or stay open (raise)."""
        await self.settle()
        if self.redis_debt:
            raise StoreUnavailable("the version epoch could not be replaced yet")

    async def default_funnel(self) -> list[str]:
        """The default funnel's steps (``analytics/default_funnel``: stored, else derived from the
        visits), remembered DEFAULT_FUNNEL_MAX_AGE_S; a derived one is forgotten as soon as a page view
        of a page outside it is stored, so a new page joins the live steps at the next snapshot. Any
        is forgotten when the cache scope moves (``datasets.cache_scope``): another generation served,
        or the default changed by ``setDefaultFunnel`` on any gateway (this one's store follows it)."""
        now = asyncio.get_running_loop().time()
        scope = cache_scope(self._services.store)
        remembered = self._default_funnel
        if remembered is None or now - remembered[0] > DEFAULT_FUNNEL_MAX_AGE_S or remembered[1] != scope:
            default = await default_funnel.resolve(self._services.store, self._services.stored_defaults)
            self._default_derived = default is None or default.derived
            remembered = self._default_funnel = (now, scope, list(default.steps) if default else [])
        return remembered[2]

    def forget_default_on_pages(self, pages: Iterable[str | None]) -> None:
        """Forget a remembered derived default when one of these page views is of a page outside it."""
        remembered = self._default_funnel
        if remembered is None or not self._default_derived:
            return
        steps = remembered[2]
        if any(page not in steps for page in pages):
            self._default_funnel = None

    def forget_default(self) -> None:
        self._default_funnel = None

    @contextlib.asynccontextmanager
    async def watching_pages(self) -> AsyncIterator[None]:
        """While entered, the page views every replica publishes reach this process's remembered default
        (``realtimeMetrics`` holds it): a new page stored through another gateway forgets a derived
        default here too, as this process's own commits do, and so does the hub coming back after an
        outage (messages published meanwhile are lost). Without it, each replica's live steps followed
        only the pages posted to it, for up to DEFAULT_FUNNEL_MAX_AGE_S. One watch per process however
        many streams enter: it is the process's state, and a watch per stream would read every published
        event once per open dashboard."""
        self._page_watchers += 1
        if self._page_watchers == 1:
            self._page_watch = self.hub.subscribed(_PageWatch(self))
            await self._page_watch.__aenter__()
        try:
            yield
        finally:
            self._page_watchers -= 1
            if self._page_watchers == 0 and self._page_watch is not None:
                watch, self._page_watch = self._page_watch, None
                await watch.__aexit__(None, None, None)

    @property
    def client_subscriptions(self) -> int:
        """The hub's subscribers that are GraphQL subscriptions: not the process's page watch, which
        every realtimeMetrics stream shares (funnelgate_subscriptions_active)."""
        return self.hub.subscribers - (1 if self._page_watch is not None else 0)

    async def snapshot(self, now: datetime | None = None) -> aggregates.Snapshot:
        """The live metrics (Redis reads, one pipeline), shared by this process's subscribers for 1 s."""
        clock = asyncio.get_running_loop().time()
        scope = cache_scope(self._services.store)  # a new default's steps at once, not a second later
        shared = self._snapshot
        if (
            now is None
            and shared is not None
            and clock - shared[0] < SNAPSHOT_MAX_AGE_S
            and shared[1] == scope
        ):
            return shared[2]
        at = now or utc_now()
        steps = await self.default_funnel()
        cache = self._services.cache
        replies = await cache.pipeline(aggregates.snapshot_commands(steps, at))
        snap = aggregates.snapshot(steps, at, replies)
        if cache_scope(self._services.store) == scope:  # else its steps may be the old default's
            blob = orjson.dumps(snap, default=str)
            await cache.set_many([(keys.realtime_metrics(), blob, keys.TTL_REALTIME)])
        self._snapshot = (clock, scope, snap)
        return snap

    async def close(self) -> None:
        # No payer starts from here on: draining the writer below may owe the epoch again (captures
        # whose effects Redis refuses), and a payer started then would outlive the runtime. The debt
        # stays written down for the next run.
        self._closing = True
        if self._unhook is not None:
            self._unhook()
        await self.writer.close()
        if self._payer is not None:
            self._payer.cancel()
            await asyncio.wait([self._payer])
        await self.hub.stop()


class _PageWatch(Subscriber):
    """Offered every published event: hands the page views' pages to the runtime (never blocks)."""

    def __init__(self, realtime: Realtime) -> None:
        self._realtime = realtime

    def offer(self, events: list[LiveEvent]) -> None:
        self._realtime.forget_default_on_pages(
            e.get("pageType") for e in events if e.get("type") == PAGE_VIEW
        )

    def offer_status(self, status: HubStatus) -> None:
        if status.up:  # back after an outage: page views published meanwhile were missed
            self._realtime.forget_default()


def running(realtime: Realtime | None) -> Realtime:
    """The process's runtime (``Services.realtime``); services built without open_services have none."""
    if realtime is None:
        raise StoreUnavailable(
            "realtime capture is not running in this process (services without open_services)"
        )
    return realtime
