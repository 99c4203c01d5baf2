"""Whole-response cache for repeated read-only GraphQL POSTs (dashboards polling the same query).

Parsing, validating and executing a GraphQL document costs several times more than reading a cached
answer from Redis, so an identical request (same document, variables and operation name) is answered
from one GET. A response is stored only when:
  * every root field is a cacheable read (``CACHEABLE_ROOTS``: no health, no listings, no mutation),
  * the response has no errors, and
  * execution went through cache-aware loaders, which record the TTL of each value they served
    (``gateway.cache_hints.record``). The response lives for the shortest of those TTLs, capped at ``MAX_AGE`` seconds,
    so it is never much staler than the values inside it.
Keys live under ``query:response:``, so an ingest or embed drops them with every other derived key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from aiohttp import web
from graphql import FieldNode, OperationDefinitionNode, OperationType, parse
from graphql.error import GraphQLError

from gateway import keys
from gateway.cache_aside import read_cached, write_cached
from gateway.cache_hints import collecting
from gateway.cache_stats import CacheStats
from gateway.stores.contracts import Cache

log = logging.getLogger(__name__)

MAX_AGE = 300
FAMILY = "query:response"
CACHEABLE_ROOTS = frozenset(
    {"funnel", "funnelTrend", "droppedOff", "converted", "dashboard", "sentiment", "user", "session",
     "journey", "similarUsers", "topPaths"}
)  # fmt: skip


@lru_cache(maxsize=512)
def _cacheable_document(document: str, operation_name: str | None) -> bool:
    try:
        parsed = parse(document)
    except GraphQLError:
        return False
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [op for op in operations if op.name and op.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    selections = operations[0].selection_set.selections
    return all(isinstance(s, FieldNode) and s.name.value in CACHEABLE_ROOTS for s in selections)


def _request_key(body: bytes) -> str | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None
    operation = payload.get("operationName")
    if not _cacheable_document(payload["query"], operation if isinstance(operation, str) else None):
        return None
    return f"query:response:{keys.digest([payload['query'], payload.get('variables'), operation])}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(cache_of: Callable[[web.Request], tuple[Cache, CacheStats]], path: str) -> Any:
    @web.middleware
    async def response_cache(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != path or request.content_type != "application/json":
            return await handler(request)
        key = _request_key(await request.read())
        if key is None:
            return await handler(request)
        cache, stats = cache_of(request)
        [blob] = await read_cached(cache, stats, FAMILY, [key])
        if blob is not None:
            stats.hits[FAMILY] += 1
            return web.Response(body=blob, content_type="application/json", headers={"X-Cache": "hit"})
        stats.misses[FAMILY] += 1
        with collecting() as hints:
            response = await handler(request)
        body = getattr(response, "body", None)
        if response.status == 200 and isinstance(body, bytes) and hints.max_age and b'"errors"' not in body:
            await write_cached(cache, stats, FAMILY, [(key, body, min(hints.max_age, MAX_AGE))])
            response.headers["X-Cache"] = "miss"
        return response

    return response_cache
