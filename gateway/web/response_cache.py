"""The aiohttp middleware of the whole-response cache; what is cacheable, and for how long, is decided
in :mod:`gateway.cache.responses`. An entry carries the version tokens its parts were computed under
(gateway/cache/versions.py) and is served only while they are all unchanged: one GET, plus one MGET of
those tokens when there are any."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.cache import responses, versions
from gateway.cache.aside import read_cached, write_cached
from gateway.cache.hints import collecting
from gateway.cache.stats import CacheStats
from gateway.stores.contracts import Cache
from gateway.web.negotiation import negotiate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(
    cache_of: Callable[[web.Request], tuple[Cache, CacheStats]], path: str, roots: frozenset[str]
) -> Any:
    """``roots``: the query root fields that may be served from the cache (see responses.cacheable_roots)."""

    @web.middleware
    async def response_cache(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != path or request.content_type != "application/json":
            return await handler(request)
        key = responses.request_key(await request.read(), roots)
        if key is None:
            return await handler(request)
        cache, stats = cache_of(request)
        [blob] = await read_cached(cache, stats, responses.FAMILY, [key])
        cached = await _still_valid(cache, stats, blob)
        if cached is not None:
            stats.hits[responses.FAMILY] += 1
            # Only error-free 200 bodies are stored: the same bytes under either media type.
            media = negotiate(request.headers.get("Accept"))
            return web.Response(body=cached, content_type=media, charset="utf-8", headers={"X-Cache": "hit"})
        stats.misses[responses.FAMILY] += 1
        with collecting() as hints:
            response = await handler(request)
        body = getattr(response, "body", None)
        ttl = responses.ttl(hints.max_age)
        storable = response.status == 200 and isinstance(body, bytes) and b'"errors"' not in body
        if storable and ttl and hints.complete:
            entry = versions.stamp_pairs(hints.depends_on, body)  # type: ignore[arg-type]
            await write_cached(cache, stats, responses.FAMILY, [(key, entry, ttl)])
            response.headers["X-Cache"] = "miss"
        return response

    return response_cache


async def _still_valid(cache: Cache, stats: CacheStats, blob: bytes | None) -> bytes | None:
    """The cached body if every version token it recorded is unchanged, else None (a miss)."""
    unpacked = versions.unstamp_pairs(blob) if blob is not None else None
    if unpacked is None:
        return None
    recorded, body = unpacked
    if recorded:
        current = await read_cached(cache, stats, responses.FAMILY, list(recorded))
        if [versions.decode(t) for t in current] != list(recorded.values()):
            return None
    return body
