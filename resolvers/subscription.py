"""Subscription root. The realtime streams (gateway/realtime/streams.py) yield records, or an error
instance when Redis is down: sent as a payload with ``errors`` (code UNAVAILABLE) while the subscription
stays open and resumes when Redis is back; hence the nullable item types.

``health`` stays non-null, unlike the query and mutation root fields: a subscription selects exactly
one root field, so there is no sibling whose data a nullable one could keep (and a backend down is a
value of its report, not an error).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from gateway.models import FunnelDefinition, from_fields
from gateway.realtime import streams
from gateway.roles import Role, requires
from gateway.security.field_rules import FUNNEL, price
from gateway.services import check_health
from gateway.validation import check_polling, check_user_id
from resolvers.funnel_arguments import takes_funnel
from resolvers.selection import visible
from schema.funnel import Funnel
from schema.health import Health
from schema.realtime import ActivityEvent, RealtimeMetrics


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Backend health every `intervalSeconds`, `count` times (0 = forever).",
        metadata=requires(Role.VIEWER),
    )
    async def health(
        self, info: strawberry.Info, interval_seconds: float = 5.0, count: int = 0
    ) -> AsyncGenerator[Health, None]:
        check_polling(interval_seconds, count)
        sent = 0
        while count == 0 or sent < count:
            yield Health.from_report(await check_health(info.context.services))
            sent += 1
            if count == 0 or sent < count:
                await asyncio.sleep(interval_seconds)

    @strawberry.subscription(
        description=(
            "Live metrics every `intervalSeconds`: active users, events per minute, today's unique users per "
            "step of the default funnel, by device."
        ),
        metadata=requires(Role.VIEWER),
    )
    async def realtime_metrics(
        self, info: strawberry.Info, interval_seconds: float = 5.0
    ) -> AsyncGenerator[RealtimeMetrics | None, None]:
        check_polling(interval_seconds)
        async for item in streams.realtime_metrics(info.context.services.realtime, interval_seconds):
            yield item if isinstance(item, Exception) else RealtimeMetrics.from_snapshot(item)  # type: ignore[misc]

    @strawberry.subscription(
        description=(
            "The funnel now, then again whenever new events change the fields selected: at most one "
            "message per `intervalSeconds`, however many events arrive."
        ),
        metadata=requires(Role.VIEWER) | price(FUNNEL),
    )
    @takes_funnel
    async def funnel_updates(
        self, info: strawberry.Info, definition: FunnelDefinition, interval_seconds: float = 1.0
    ) -> AsyncGenerator[Funnel | None, None]:
        check_polling(interval_seconds)
        services = info.context.services
        # Compared as the client sees it: a change to a field it did not select sends nothing.
        seen = lambda result: visible(info, from_fields(Funnel, result))  # noqa: E731
        async for item in streams.funnel_updates(services, definition, interval_seconds, seen):
            yield item if isinstance(item, Exception) else from_fields(Funnel, item)  # type: ignore[misc]

    @strawberry.subscription(
        description="A user's events as they are stored, in arrival order.", metadata=requires(Role.ANALYST)
    )
    async def user_activity(
        self, info: strawberry.Info, user_id: int
    ) -> AsyncGenerator[ActivityEvent | None, None]:
        check_user_id(user_id)
        async for item in streams.user_activity(info.context.services.realtime, user_id):
            yield item if isinstance(item, Exception) else ActivityEvent.from_live(item)  # type: ignore[misc]
