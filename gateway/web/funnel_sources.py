"""The response's ``extensions.funnelSources``: for each funnel field of the operation, what produced
its numbers — ``funnel_analytics`` (pre-aggregated rows, see ``gateway/stores/preaggregates.py``),
``funnel_index`` or ``sql`` (the embedded store's engines). A field answered from the Redis cache
reports the source of the answer it was cached from. Backends that do not say are left out."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension


class FunnelSources(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        # Resolvers record into the request's context (resolvers/query.py); a CLI query has one too.
        sources = getattr(self.execution_context.context, "funnel_sources", None)
        return {"funnelSources": dict(sources)} if sources else {}
