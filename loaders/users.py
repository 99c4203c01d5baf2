"""User documents by id."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.cache import keys
from gateway.cache.stats import CacheStats
from gateway.models import Document
from gateway.stores.contracts import Cache, DocumentStore
from loaders.cached import CachedLoader


class UsersById(CachedLoader[int, Document]):
    family = "query:user"
    ttl = keys.TTL_QUERY_LONG

    def __init__(self, cache: Cache, stats: CacheStats, store: DocumentStore) -> None:
        super().__init__(cache, stats)
        self.store = store

    def cache_key(self, key: int) -> str:
        return keys.user(key)

    async def fetch(self, keys: Sequence[int]) -> Sequence[Document | None]:
        return await self.store.users_by_ids(list(keys))
