"""The one batching pattern every loader follows: Redis first, then one backend call for the misses.

``batch_load_fn`` gets every key loaded in one tick: one MGET for all of them, one ``fetch`` for the
misses, one write (`set_many`, with the family's TTL) for what came back, results in key order.
A cache outage degrades to the backend instead of failing the query. Misses already being fetched for
another request (or another loader of this one) are awaited, not fetched again (gateway/cache/flight.py);
``cancel_pending`` stops the batches of a request that timed out or whose client left.

A loader is one row of the table in :mod:`loaders` (a :class:`Lookup`: key family, TTL, cache key,
backend call) served by :class:`TableLoader`; subclassing :class:`CachedLoader` works too.

A loader whose values live events change names a version token per key (``version_key``, see
gateway/cache/versions.py): its entries are stamped with the tokens they were computed under, read in the
same MGET as the current tokens, and served only while those are unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader

from gateway.cache import codec, hints, versions
from gateway.cache.aside import read_cached, write_cached
from gateway.cache.flight import flight_key, flights
from gateway.cache.stats import CacheStats
from gateway.stores.contracts import Cache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger(__name__)


class CachedLoader(DataLoader, Generic[K, V]):
    family: str = ""  # key family for hit/miss counters, e.g. "query:user"
    ttl: int = 3600

    def __init__(self, cache: Cache, stats: CacheStats) -> None:
        super().__init__()
        # Not ``self.cache``: aiodataloader uses that name for its per-request memo switch.
        self.redis = cache
        self.stats = stats
        self._batches: set[asyncio.Task[Any]] = set()

    def cache_key(self, key: K) -> str:
        raise NotImplementedError

    async def fetch(self, keys: Sequence[K]) -> Sequence[V | None]:
        """Answer ``keys`` from the backend in one call, in key order (None = missing)."""
        raise NotImplementedError

    def cacheable(self, value: V | None) -> bool:
        return _found(value)

    def version_key(self, key: K) -> str | None:
        """The version token this key's value depends on (besides the epoch), or None: not versioned."""
        return None

    def cancel_pending(self) -> None:
        """Cancel this loader's batches still running (their request is gone)."""
        for task in list(self._batches):
            task.cancel()

    async def batch_load_fn(self, keys: Sequence[K]) -> list[V | None]:
        task = asyncio.current_task()
        if task is not None:
            self._batches.add(task)
        try:
            return await self._load_batch(keys)
        finally:
            if task is not None:
                self._batches.discard(task)

    async def _load_batch(self, keys: Sequence[K]) -> list[V | None]:
        hints.record(self.ttl)
        cache_keys = [self.cache_key(k) for k in keys]
        per_key = [self._versions(k) for k in keys]
        version_keys = list(dict.fromkeys(v for vs in per_key for v in vs))
        read = await self._read(cache_keys + version_keys)
        tokens = dict(zip(version_keys, map(versions.decode, read[len(keys) :]), strict=True))
        results: list[Any] = [None] * len(keys)
        missing: list[int] = []
        for i, blob in enumerate(read[: len(keys)]):
            mine = [tokens[v] for v in per_key[i]]
            payload = versions.unstamp(blob, mine) if per_key[i] else blob
            if payload is None:
                missing.append(i)
            else:
                results[i] = codec.loads(payload)
                hints.depend(per_key[i], mine)  # type: ignore[arg-type]  # all present: unstamp checked
        self.stats.hits[self.family] += len(keys) - len(missing)
        self.stats.misses[self.family] += len(missing)
        if missing:

            async def fetch_and_store(indexes: list[int]) -> list[tuple[V | None, list[str] | None]]:
                """Fetch, stamp and write the misses at ``indexes``: (value, its tokens) per key."""
                asked = [missing[j] for j in indexes]
                fetched = await self.fetch([keys[i] for i in asked])
                stamped = await self._tokens_for([per_key[i] for i in asked], tokens)
                writes, out = [], []
                for i, value in zip(asked, fetched, strict=True):
                    stamp = None if stamped is None else [stamped[v] for v in per_key[i]]
                    out.append((value, stamp))
                    if not self.cacheable(value) or (per_key[i] and stamp is None):
                        continue
                    payload = codec.dumps(value)
                    writes.append(
                        (cache_keys[i], versions.stamp(stamp, payload) if stamp else payload, self.ttl)
                    )
                await self._write(writes)
                return out

            # Keys already being fetched (for another request, or another batch) are awaited, not fetched.
            flight_keys = [flight_key(self.redis, cache_keys[i]) for i in missing]
            answers = await flights().run_many(flight_keys, fetch_and_store)
            for i, (value, stamp) in zip(missing, answers, strict=True):
                results[i] = value
                hints.depend(per_key[i], stamp)
        return results

    def _versions(self, key: K) -> list[str]:
        own = self.version_key(key)
        return [] if own is None else versions.entity_versions(own)

    async def _tokens_for(
        self, needed: list[list[str]], tokens: dict[str, str | None]
    ) -> dict[str, str] | None:
        """Every token the misses will be stamped with, absent ones created; None when that failed."""
        wanted = list(dict.fromkeys(v for vs in needed for v in vs))
        if not wanted:
            return {}
        ensured = await versions.ensure_tokens(self.redis, wanted, [tokens[v] for v in wanted])
        return None if ensured is None else dict(zip(wanted, ensured, strict=True))

    async def _read(self, cache_keys: list[str]) -> list[bytes | None]:
        return await read_cached(self.redis, self.stats, self.family, cache_keys)

    async def _write(self, items: list[tuple[str, bytes, int]]) -> None:
        await write_cached(self.redis, self.stats, self.family, items)


def _found(value: object) -> bool:
    # Missing entities are not cached: an ingest may create them any moment.
    return value is not None


@dataclass(frozen=True)
class Lookup(Generic[K, V]):
    """What one loader caches, and how it asks its backend for the misses (in key order, None = missing)."""

    family: str  # key family, for hit/miss counters: e.g. "query:user"
    ttl: int
    cache_key: Callable[[K], str]
    fetch: Callable[[Any, Sequence[K]], Awaitable[Sequence[V | None]]]  # (backend, keys)
    cacheable: Callable[[V | None], bool] = _found
    version_key: Callable[[K], str] | None = None  # the version token live events replace (keys.version_*)


class TableLoader(CachedLoader[K, V]):
    """A CachedLoader defined by one :class:`Lookup`, bound to the backend it fetches from."""

    def __init__(self, cache: Cache, stats: CacheStats, lookup: Lookup[K, V], backend: Any) -> None:
        super().__init__(cache, stats)
        self.lookup = lookup
        self.backend = backend
        self.family, self.ttl = lookup.family, lookup.ttl

    def cache_key(self, key: K) -> str:
        return self.lookup.cache_key(key)

    async def fetch(self, keys: Sequence[K]) -> Sequence[V | None]:
        return await self.lookup.fetch(self.backend, keys)

    def cacheable(self, value: V | None) -> bool:
        return self.lookup.cacheable(value)

    def version_key(self, key: K) -> str | None:
        return None if self.lookup.version_key is None else self.lookup.version_key(key)
