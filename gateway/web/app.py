"""The aiohttp application: /graphql (GraphiQL, POST/GET, graphql-transport-ws), /healthz, POST /events."""

from __future__ import annotations

import strawberry
from aiohttp import web
from strawberry.extensions import ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.cache import responses
from gateway.cache.stats import CacheStats
from gateway.services import Services
from gateway.stores.contracts import Cache
from gateway.web import response_cache as whole_responses
from gateway.web.errors import ErrorPolicy, FunnelSchema
from gateway.web.events import post_events
from gateway.web.funnel_sources import FunnelSources
from gateway.web.health import SERVICES, healthz
from gateway.web.operations import PARSE_CACHE_SIZE, SharedParserCache
from gateway.web.view import FunnelGraphQLView
from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription
from schema.scalars import SCALAR_MAP


def build_schema() -> strawberry.Schema:
    # Parsing and validating the same document again on every request costs more than answering a
    # cached funnel; both caches are keyed by the document text, so they are safe to share.
    return FunnelSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[
            ErrorPolicy,
            FunnelSources,
            SharedParserCache,
            lambda: ValidationCache(maxsize=PARSE_CACHE_SIZE),
        ],
    )


def cacheable_roots(schema: strawberry.Schema) -> frozenset[str]:
    """The Query fields whose answers the response cache may keep, read off the fields' metadata."""
    query = schema.get_type_by_name("Query")
    fields = getattr(query, "fields", [])
    names = schema.config.name_converter
    return responses.cacheable_roots((names.get_graphql_name(f), f.metadata) for f in fields)


def _cache_of(request: web.Request) -> tuple[Cache, CacheStats]:
    services = request.app[SERVICES]
    return services.cache, services.cache_stats


def create_app(
    services: Services, schema: strawberry.Schema | None = None, *, response_cache: bool = True
) -> web.Application:
    schema = schema or build_schema()
    roots = cacheable_roots(schema)
    middlewares = [whole_responses.middleware(_cache_of, "/graphql", roots)] if response_cache else []
    app = web.Application(middlewares=middlewares)
    app[SERVICES] = services
    view = FunnelGraphQLView(
        services,
        schema=schema,
        graphql_ide="graphiql",
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
    )
    app.router.add_route("*", "/graphql", view)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/events", post_events)
    return app
