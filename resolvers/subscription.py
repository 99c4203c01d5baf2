"""Subscription root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from gateway.services import check_health
from gateway.validation import check_polling
from schema.health import Health


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Backend health every `intervalSeconds`, `count` times (0 = forever)."
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
