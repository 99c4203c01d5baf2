"""Subscription root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from gateway.errors import BadInput
from gateway.services import check_health
from schema.health import Health


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Backend health every `intervalSeconds`, `count` times (0 = forever)."
    )
    async def health(
        self, info: strawberry.Info, interval_seconds: float = 5.0, count: int = 0
    ) -> AsyncGenerator[Health, None]:
        if interval_seconds < 0.1 or count < 0:
            raise BadInput("intervalSeconds must be >= 0.1 and count >= 0")
        sent = 0
        while count == 0 or sent < count:
            yield Health.from_report(await check_health(info.context.services))
            sent += 1
            if count == 0 or sent < count:
                await asyncio.sleep(interval_seconds)
