"""Mutation root: event capture (``trackEvents``, the same path as POST /events) and the admin operations
the design calls "manual cache refresh endpoints" (role-gated through resolvers/permissions.py).

Every mutation field is nullable, as the query fields are. Mutations run one after another; with a
non-null field, the first that failed nulled the whole ``data`` and the ones after it never ran, so a
client sending ``trackEvents`` then a ``refreshAnalytics`` it got wrong learnt nothing of the events
already stored (which were accepted, which rejected). Now a failed mutation answers null with its
coded error, the results of the others stay, and each runs whatever another's outcome: send
mutations that depend on each other in separate requests.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from gateway.analytics.pinned import MAX_PINNED_STEPS, pin
from gateway.errors import BadInput
from gateway.jobs.refresh import refresh_funnel_analytics
from gateway.realtime.capture import capture
from gateway.realtime.invalidation import invalidate_scope
from gateway.roles import Role, requires
from resolvers.permissions import AdminOnly
from schema.inputs import DateRange
from schema.realtime import (
    CacheScope,
    DefaultFunnelResult,
    EventInput,
    InvalidationResult,
    RefreshResult,
    TrackEventsResult,
)

MAX_REFRESH_DAYS = 3_660  # ten years: ~10 s of funnel queries on the embedded store


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description=(
            "Capture events (at most FUNNEL_EVENTS_MAX_BATCH): each is validated on its own; accepted ones "
            "are durably stored when this returns. Replaying an eventId changes nothing."
        ),
        metadata=requires(Role.ADMIN),
    )
    async def track_events(self, info: strawberry.Info, events: list[EventInput]) -> TrackEventsResult | None:
        result = await capture(info.context.services.realtime, [event.to_wire() for event in events])
        return TrackEventsResult.from_result(result)

    @strawberry.mutation(
        description="Drop cached entries of a scope (and every cached whole response).",
        permission_classes=[AdminOnly],
        metadata=requires(Role.ADMIN),
    )
    async def invalidate_cache(self, info: strawberry.Info, scope: CacheScope) -> InvalidationResult | None:
        removed = await invalidate_scope(info.context.services.cache, scope.value)
        return InvalidationResult(scope=scope, keys_removed=removed)

    @strawberry.mutation(
        description=(
            "Recompute the pre-aggregated funnel_analytics rows of the default funnel for a range of at most "
            f"{MAX_REFRESH_DAYS:,} days."
        ),
        permission_classes=[AdminOnly],
        metadata=requires(Role.ADMIN),
    )
    async def refresh_analytics(
        self, info: strawberry.Info, range_: Annotated[DateRange, strawberry.argument(name="range")]
    ) -> RefreshResult | None:
        if range_.start is None or range_.end is None:
            raise BadInput("refreshAnalytics needs a closed range: start and end")
        days = (range_.end - range_.start).days + 1
        if days > MAX_REFRESH_DAYS:  # a day costs a funnel query: centuries would outlast any timeout
            raise BadInput(
                f"refreshAnalytics covers at most {MAX_REFRESH_DAYS} days per call, got {days}: "
                "split the range (a day without visits still costs a query)"
            )
        store = info.context.services.store
        steps = await store.default_funnel()
        if not steps:
            # A default derived from live page views moves as they arrive: rows of it would go stale
            # unseen, so only an ingested default is pre-aggregated (its funnels are computed meanwhile).
            raise BadInput(
                "no stored default funnel to pre-aggregate: ingest or setDefaultFunnel sets one (a default "
                "derived from live page views changes as they arrive and is always computed)"
            )
        rows = await refresh_funnel_analytics(store, steps, range_.start, range_.end)
        return RefreshResult(start=range_.start, end=range_.end, steps=list(steps), rows=rows)

    @strawberry.mutation(
        description=(
            "Pin the default funnel (what funnel fields answer without steps) on the served data: 2.."
            f"{MAX_PINNED_STEPS} distinct page types with page views. steps: [] removes the stored one, "
            "pinned or ingested: the default is derived from the page views again (a no-op when none is "
            "stored). Every gateway uses the new default within about a second; no answer cached on the "
            "old one is served again, and its funnel_analytics rows are dropped (refreshAnalytics "
            "recomputes them). funnelUpdates subscriptions opened before keep watching the old steps' "
            "pages (reopen them), and behaviour vectors keep the outcome they were embedded with (run "
            "`funnelgate embed` after changing the last step). An ingest stores its own default."
        ),
        permission_classes=[AdminOnly],
        metadata=requires(Role.ADMIN),
    )
    async def set_default_funnel(self, info: strawberry.Info, steps: list[str]) -> DefaultFunnelResult | None:
        default, revision = await pin(info.context.services, steps)
        return DefaultFunnelResult(
            steps=list(default.steps) if default else [],
            derived=default is None or default.derived,
            revision=revision,
        )
