"""The aiohttp middleware of the whole-response cache; what is cacheable, and for how long, is decided
in :mod:`gateway.cache.responses`. An entry carries the version tokens its parts were computed under
(gateway/cache/versions.py) and is served only while they are all unchanged: one GET, plus one MGET of
those tokens when there are any, both inside Redis (one round trip, ``versions.read_valid``).

It runs after the edge (the role is known) and the request reader (the query, APQ resolved): the key is
the role plus the *normalised* operation (:mod:`gateway.web.documents`), so the same operation written
differently, POSTed or sent as a GET, is one entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.cache import responses, versions
from gateway.cache.aside import write_cached
from gateway.cache.hints import collecting
from gateway.cache.stats import CacheStats
from gateway.errors import StoreUnavailable
from gateway.roles import ANONYMOUS
from gateway.security.limits import Limits
from gateway.stores.contracts import Cache
from gateway.web import documents
from gateway.web.edge import PRINCIPAL
from gateway.web.negotiation import negotiate
from gateway.web.requests import PREPARED, GraphQLRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Keys:
    """The per-document part of the key, computed once per parsed document (and operation name)."""

    def __init__(self, roots: frozenset[str], limits: Limits) -> None:
        self.roots = roots
        self.limits = limits
        self.policy = limits.fingerprint()
        self._digests = documents.LRU(documents.CACHE_SIZE)
        # (text, operation name, role) -> the whole key ("": not cacheable), for requests without
        # variables (a polling dashboard's): the key is then a function of these three alone, and
        # computing it (parse lookup, JSON and SHA-256 of the parts) was a tenth of a hit's own work.
        self._plain = documents.LRU(documents.CACHE_SIZE)

    async def key(self, prepared: GraphQLRequest, role: str) -> str | None:
        if not prepared.query:
            return None
        plain = None if prepared.variables else (prepared.query, prepared.operation_name, role)
        if plain is not None:
            known = self._plain.get(plain)
            if known is not None:
                return known or None
        document = await documents.parse(prepared.query, self.limits)
        if document is None:
            return None
        memo = (id(document), prepared.operation_name)
        hit = self._digests.get(memo)
        if hit is None or hit[0] is not document:
            digest = None
            if responses.cacheable(document, prepared.operation_name, self.roots):
                text = documents.normalised(document)
                digest = responses.document_digest(text, prepared.operation_name, self.policy)
            hit = (document, digest)
            self._digests.put(memo, hit)
        key = None if hit[1] is None else responses.request_key(role, hit[1], prepared.variables)
        if plain is not None:
            self._plain.put(plain, key or "")
        return key


def middleware(
    cache_of: Callable[[web.Request], tuple[Cache, CacheStats]], roots: frozenset[str], limits: Limits
) -> Any:
    """``roots``: the query root fields that may be served from the cache (see responses.cacheable_roots)."""
    keys = _Keys(roots, limits)

    @web.middleware
    async def response_cache(request: web.Request, handler: Handler) -> web.StreamResponse:
        prepared = request.get(PREPARED)
        if prepared is None:
            return await handler(request)
        key = await keys.key(prepared, request.get(PRINCIPAL, ANONYMOUS).role.label)
        if key is None:
            return await handler(request)
        cache, stats = cache_of(request)
        cached = await _read_valid(cache, stats, key)
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


async def _read_valid(cache: Cache, stats: CacheStats, key: str) -> bytes | None:
    """The cached body if every version token it recorded is unchanged, else None (a miss): the entry
    and its tokens are checked in Redis, in one round trip; an outage reads as a miss (counted)."""
    try:
        return await versions.read_valid(cache, key)
    except StoreUnavailable:
        stats.errors[responses.FAMILY] += 1
        return None
