"""Redis-first for a single computed value (a funnel, a dashboard, a sentiment score).

The same rules as :class:`loaders.cached.CachedLoader`, for answers that are one value per request
rather than a batch of keys: read the key, compute on a miss, write it back with its TTL. A cache outage
degrades to computing instead of failing the query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway import cache_hints, codec, keys
from gateway.cache_stats import CacheStats
from gateway.stores.base import Cache
from loaders.cached import read_cached, write_cached

T = TypeVar("T")


async def read_through(
    cache: Cache,
    stats: CacheStats,
    key: str,
    ttl: int,
    compute: Callable[[], Awaitable[T]],
    decode: Callable[[Any], T],
) -> T:
    """``decode`` rebuilds the value from what :func:`gateway.codec.loads` returns (plain JSON types)."""
    family = keys.family(key)
    cache_hints.record(ttl)
    [blob] = await read_cached(cache, stats, family, [key])
    if blob is not None:
        stats.hits[family] += 1
        return decode(codec.loads(blob))
    stats.misses[family] += 1
    value = await compute()
    await write_cached(cache, stats, family, [(key, codec.dumps(value), ttl)])
    return value
