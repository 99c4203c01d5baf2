"""Sessions: each user's sessions, and single sessions by id."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.cache import keys
from gateway.cache.stats import CacheStats
from gateway.models import Document
from gateway.stores.contracts import Cache, DocumentStore
from loaders.cached import CachedLoader


class SessionsByUser(CachedLoader[int, list[Document]]):
    """A user's sessions sorted by start. An empty list is an answer (a known user without sessions)
    and is cached like any other; ingest invalidates what it changes."""

    family = "query:user_sessions"
    ttl = keys.TTL_QUERY_LONG

    def __init__(self, cache: Cache, stats: CacheStats, store: DocumentStore) -> None:
        super().__init__(cache, stats)
        self.store = store

    def cache_key(self, key: int) -> str:
        return keys.user_sessions(key)

    async def fetch(self, keys: Sequence[int]) -> Sequence[list[Document] | None]:
        return await self.store.sessions_by_user_ids(list(keys))


class SessionById(CachedLoader[str, Document]):
    """One stored session document. The design's ``session:{id}`` key is kept for live session state
    (realtime capture), so a replayed history and a live session never share a key."""

    family = "query:session"
    ttl = keys.TTL_QUERY_LONG

    def __init__(self, cache: Cache, stats: CacheStats, store: DocumentStore) -> None:
        super().__init__(cache, stats)
        self.store = store

    def cache_key(self, key: str) -> str:
        return keys.session_doc(key)

    async def fetch(self, keys: Sequence[str]) -> Sequence[Document | None]:
        return await self.store.sessions_by_ids(list(keys))
