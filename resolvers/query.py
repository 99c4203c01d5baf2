"""Query root: each resolver maps arguments to a loader or service call and returns schema types."""

from __future__ import annotations

import strawberry

from gateway import health
from schema.health import Health


@strawberry.type
class Query:
    @strawberry.field(description="Status of every backend the gateway uses.")
    async def health(self, info: strawberry.Info) -> Health:
        return Health.from_report(await health.check(info.context.services))
