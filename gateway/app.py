"""The aiohttp application: /graphql (GraphiQL, POST/GET, graphql-transport-ws) and /healthz."""

from __future__ import annotations

from typing import Any

import strawberry
from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway import health
from gateway import response_cache as whole_responses
from gateway.cache_stats import CacheStats
from gateway.context import Context, new_context
from gateway.graphql_errors import ErrorPolicy
from gateway.services import Services
from gateway.stores.contracts import Cache
from resolvers.query import Query
from resolvers.subscription import Subscription

SERVICES = web.AppKey("services", Services)


def build_schema() -> strawberry.Schema:
    # Parsing and validating the same document again on every request costs more than answering a
    # cached funnel; both caches are keyed by the document text, so they are safe to share.
    return strawberry.Schema(
        query=Query,
        subscription=Subscription,
        extensions=[ErrorPolicy, lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)],
    )


class FunnelGraphQLView(GraphQLView):
    """Only the hook is overridden: every request gets fresh loaders over the shared services."""

    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    async def get_context(self, request: web.Request, response: Any) -> Context:  # type: ignore[override]
        return new_context(self.services, request)


async def healthz(request: web.Request) -> web.Response:
    report = await health.check(request.app[SERVICES])
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


def _cache_of(request: web.Request) -> tuple[Cache, CacheStats]:
    services = request.app[SERVICES]
    return services.cache, services.cache_stats


def create_app(
    services: Services, schema: strawberry.Schema | None = None, *, response_cache: bool = True
) -> web.Application:
    middlewares = [whole_responses.middleware(_cache_of, "/graphql")] if response_cache else []
    app = web.Application(middlewares=middlewares)
    app[SERVICES] = services
    view = FunnelGraphQLView(
        services,
        schema=schema or build_schema(),
        graphql_ide="graphiql",
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
    )
    app.router.add_route("*", "/graphql", view)
    app.router.add_get("/healthz", healthz)
    return app
