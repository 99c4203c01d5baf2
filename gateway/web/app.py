"""The aiohttp application: /graphql (GraphiQL, POST/GET, graphql-transport-ws), /healthz, POST /events,
and the dashboard at / with its static files (:mod:`gateway.web.pages`), /metrics (Prometheus; the edge
asks the admin role for it, see ``edge.ROUTE_ROLES``).

Requests pass one middleware (:mod:`gateway.web.front`), which takes them, in order, through: the HTTP
metrics (outermost, so the edge's own refusals are counted), the edge (Host, CORS, authentication, rate
limit: :mod:`gateway.web.edge`), on /graphql the request reader (persisted queries:
:mod:`gateway.web.requests`) and the whole-response cache (:mod:`gateway.web.response_cache`), then the
route's handler; inside strawberry the guard applies the limits, roles and cost (:mod:`gateway.web.guard`).
"""

from __future__ import annotations

import logging
import weakref
from functools import lru_cache

import strawberry
from aiohttp import web
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.cache import responses
from gateway.cache.stats import CacheStats
from gateway.ops.metrics import SUBSCRIPTIONS
from gateway.security.credentials import Authenticator
from gateway.security.limits import Limits
from gateway.security.persisted import PersistedQueries
from gateway.security.ratelimit import RateLimiter
from gateway.services import Services
from gateway.stores.contracts import Cache
from gateway.web import edge, front, pages
from gateway.web.errors import ErrorPolicy, FunnelSchema
from gateway.web.events import post_events
from gateway.web.execution import PerEventMemo
from gateway.web.funnel_sources import FunnelSources
from gateway.web.guard import guard, mask_fields, schema_rules
from gateway.web.health import SERVICES, healthz
from gateway.web.observability import (
    METRICS_PROBE,
    HttpMetrics,
    RootResolverTiming,
    metrics_endpoint,
    operation_extension,
)
from gateway.web.requests import RequestReader
from gateway.web.response_cache import ResponseCache
from gateway.web.view import SOCKETS, FunnelGraphQLView
from gateway.web.websocket import INIT_TIMEOUT, SocketPolicy
from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription
from schema.scalars import SCALAR_MAP

log = logging.getLogger("funnelgate")
GRAPHQL_PATH = "/graphql"
LIMITER = web.AppKey("rate_limiter", RateLimiter)
ROUTES = frozenset({GRAPHQL_PATH, "/healthz", "/events", "/metrics"})


def build_schema(limits: Limits | None = None, slow_operation_ms: int = 1000) -> strawberry.Schema:
    """The schema with the guard (limits, roles, cost; parse and validation cached and off the loop)."""
    limits = limits or Limits()
    schema = FunnelSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=PerEventMemo,
    )
    rules = schema_rules(schema)
    mask_fields(schema, rules)
    # Operation metrics first: their timing and status cover everything the others do.
    schema.extensions = (
        operation_extension(slow_operation_ms),
        RootResolverTiming,
        ErrorPolicy,
        FunnelSources,
        guard(limits, rules),
    )
    return schema


@lru_cache(maxsize=8)
def schema_for(limits: Limits, slow_operation_ms: int = 1000) -> strawberry.Schema:
    """One schema per set of limits, per process (building one walks every type)."""
    return build_schema(limits, slow_operation_ms)


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
    settings = services.settings
    limits = Limits.from_settings(settings)
    schema = schema or schema_for(limits, settings.slow_operation_ms)
    authenticator = Authenticator(settings)
    limiter = RateLimiter(services.cache, settings.rate_window_s)
    mode = settings.persisted_queries
    if mode == "off":  # no manifest: hashes are refused
        persisted = PersistedQueries(services.cache, services.cache_stats, mode, {}, settings.max_query_chars)
    else:  # the manifest file is followed: `funnelgate persist` needs no restart
        persisted = PersistedQueries.from_file(
            services.cache,
            services.cache_stats,
            mode,
            settings.persisted_queries_path,
            settings.max_query_chars,
        )
    middleware = front.middleware(
        HttpMetrics(ROUTES),
        edge.EdgePolicy(settings, authenticator, limiter, GRAPHQL_PATH),
        RequestReader(persisted, limits),
        ResponseCache(_cache_of, cacheable_roots(schema), limits) if response_cache else None,
        GRAPHQL_PATH,
        settings.body_timeout_s,
    )
    # A request body is a document (FUNNEL_MAX_QUERY_CHARS) plus its variables; past it aiohttp raises
    # 413, which the front middleware answers in the route's shape (edge.body_too_large).
    app = web.Application(middlewares=[middleware], client_max_size=settings.graphql_body_limit)
    app[SERVICES] = services
    realtime = services.realtime
    if realtime is not None:  # read at scrape time; the newest app's hub wins (one per process)
        SUBSCRIPTIONS.set_function(lambda: float(realtime.client_subscriptions))
    app[LIMITER] = limiter
    app[SOCKETS] = weakref.WeakKeyDictionary()
    app[METRICS_PROBE] = {}
    view = FunnelGraphQLView(
        services,
        authenticator=authenticator,
        limits=limits,
        socket_policy=SocketPolicy(settings, limits, limiter, persisted, authenticator.enabled),
        connection_init_wait_timeout=INIT_TIMEOUT,
        # The handler refuses one more with its own coded error first; strawberry's check stays behind it.
        max_subscriptions_per_connection=settings.max_operations_per_socket,
        schema=schema,
        graphql_ide="graphiql",
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        allowed_origins=list(settings.cors_origins),  # the WebSocket Origin check
    )
    expect = edge.expect_handler  # an Expect other than 100-continue: 417 in the route's error shape
    app.router.add_route("*", GRAPHQL_PATH, view, expect_handler=expect)
    app.router.add_get("/healthz", healthz, expect_handler=expect)
    app.router.add_post("/events", post_events, expect_handler=expect)
    app.router.add_get("/metrics", metrics_endpoint, expect_handler=expect)
    app.on_shutdown.append(_close_websockets)
    app.on_cleanup.append(_close_limiter)
    pages.add_routes(app, settings.max_page_size)
    return app


async def _close_websockets(app: web.Application) -> None:
    """At shutdown, open subscriptions end (1001 going away): aiohttp would otherwise wait for them."""
    sockets: weakref.WeakKeyDictionary[web.WebSocketResponse, str] = app[SOCKETS]
    for ws in [*sockets]:
        await ws.close(code=1001, message=b"server shutting down")


async def _close_limiter(app: web.Application) -> None:
    await app[LIMITER].close()
