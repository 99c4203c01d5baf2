"""The whole-response cache on the request path (:class:`ResponseCache`: ``lookup`` before the view,
``fill`` around it on a miss; composed by :mod:`gateway.web.front`); what is cacheable, and for how long, is decided
in :mod:`gateway.cache.responses`. An entry carries the version tokens its parts were computed under
(gateway/cache/versions.py) and is served only while they are all unchanged: one GET, plus one MGET of
those tokens when there are any, both inside Redis (one round trip, ``versions.read_valid``).

It runs after the edge (the role is known) and the request reader (the query, APQ resolved): the key is
the role plus the *normalised* operation (:mod:`gateway.web.documents`), so the same operation written
differently, POSTed or sent as a GET, is one entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.cache import responses, versions
from gateway.cache.aside import write_cached
from gateway.cache.hints import collecting
from gateway.cache.stats import CacheStats
from gateway.errors import StoreUnavailable
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

    def known(self, prepared: GraphQLRequest, role: str) -> str | None:
        """The key already computed for a shared request and this role ("": not cacheable), else None.
        The same request object answers every identical body (gateway/web/requests.py): keys live on it."""
        derived = prepared.derived
        return None if derived is None else derived.get((self, role))

    async def key(self, prepared: GraphQLRequest, role: str) -> str | None:
        known = self.known(prepared, role)
        if known is not None:
            return known or None
        key = await self._key(prepared, role)
        derived = prepared.derived
        if derived is not None:
            derived[(self, role)] = key or ""
        return key

    async def _key(self, prepared: GraphQLRequest, role: str) -> str | None:
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


CACHE_KEY = web.RequestKey("response_cache_key", str)  # set by lookup on a miss that fill may store


class ResponseCache:
    """``roots``: the query root fields that may be served from the cache (see responses.cacheable_roots)."""

    def __init__(
        self,
        cache_of: Callable[[web.Request], tuple[Cache, CacheStats]],
        roots: frozenset[str],
        limits: Limits,
    ) -> None:
        self.cache_of = cache_of
        self.keys = _Keys(roots, limits)

    async def lookup(self, request: web.Request) -> web.Response | None:
        """The cached answer to a prepared request, or None (not cacheable, or a miss: then ``fill``)."""
        prepared = request.get(PREPARED)
        principal = request.get(PRINCIPAL)
        if prepared is None or principal is None:
            # No principal: a request the edge let through unauthenticated (with authentication off
            # every request has one). It has no role, so no entry is its to read (or fill).
            return None
        role = principal.role.label
        key = self.keys.known(prepared, role)
        if key is None:
            key = await self.keys.key(prepared, role)
        if not key:
            return None
        cache, stats = self.cache_of(request)
        try:  # the entry and its version tokens checked in Redis, in one round trip
            cached = await versions.read_valid(cache, key)
        except StoreUnavailable:  # an outage reads as a miss (counted)
            stats.errors[responses.FAMILY] += 1
            cached = None
        if cached is None:
            stats.misses[responses.FAMILY] += 1
            request[CACHE_KEY] = key
            return None
        stats.hits[responses.FAMILY] += 1
        # Only error-free 200 bodies are stored: the same bytes under either media type.
        media = negotiate(request.headers.get("Accept"))
        return web.Response(body=cached, content_type=media, charset="utf-8", headers=_HIT)

    async def fill(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The view's answer, stored when it may be (after a ``lookup`` that missed)."""
        key = request.get(CACHE_KEY)
        if key is None:
            return await handler(request)
        cache, stats = self.cache_of(request)
        scope = getattr(cache, "scope", None)
        before = scope() if scope is not None else None
        with collecting() as hints:
            response = await handler(request)
        body = getattr(response, "body", None)
        ttl = responses.ttl(hints.max_age)
        storable = response.status == 200 and isinstance(body, bytes) and b'"errors"' not in body
        # Built while the served generation or its default funnel changed: parts may be of the old one.
        rescoped = scope is not None and scope() != before
        if storable and ttl and hints.complete and not rescoped:
            entry = versions.stamp_pairs(hints.depends_on, body)  # type: ignore[arg-type]
            await write_cached(cache, stats, responses.FAMILY, [(key, entry, ttl)])
            response.headers["X-Cache"] = "miss"
        return response


_HIT = {"X-Cache": "hit"}
