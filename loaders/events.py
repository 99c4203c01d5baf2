"""What happened inside sessions: page visits and interactions, per session id."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.cache import keys
from gateway.cache.stats import CacheStats
from gateway.models import Document
from gateway.stores.contracts import Cache, DocumentStore
from loaders.cached import CachedLoader


class VisitsBySession(CachedLoader[str, list[Document]]):
    family = "query:session_visits"
    ttl = keys.TTL_QUERY_LONG

    def __init__(self, cache: Cache, stats: CacheStats, store: DocumentStore) -> None:
        super().__init__(cache, stats)
        self.store = store

    def cache_key(self, key: str) -> str:
        return keys.session_visits(key)

    async def fetch(self, keys: Sequence[str]) -> Sequence[list[Document] | None]:
        return await self.store.visits_by_session_ids(list(keys))


class InteractionsBySession(CachedLoader[str, list[Document]]):
    family = "query:session_interactions"
    ttl = keys.TTL_QUERY_LONG

    def __init__(self, cache: Cache, stats: CacheStats, store: DocumentStore) -> None:
        super().__init__(cache, stats)
        self.store = store

    def cache_key(self, key: str) -> str:
        return keys.session_interactions(key)

    async def fetch(self, keys: Sequence[str]) -> Sequence[list[Document] | None]:
        return await self.store.interactions_by_session_ids(list(keys))
