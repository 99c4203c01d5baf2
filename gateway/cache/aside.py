"""Cache-aside on the Cache Protocol, shared by the loaders, the services and the response cache.

``read_cached``/``write_cached`` are one MGET and one write (`set_many`); an outage is counted and degrades
to the backend instead of failing the query. ``read_through`` does the same for one computed value
(a funnel, a dashboard, a sentiment score): read the key, compute on a miss, write it back with its TTL;
identical misses in flight at the same time share one computation (:mod:`gateway.cache.flight`).
With ``versions`` (gateway/cache/versions.py) the entry is read in the same MGET as its version tokens
and served only if it was computed under the current ones.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from gateway.cache import codec, hints, keys, versions
from gateway.cache.flight import flight_key, flights
from gateway.cache.stats import CacheStats
from gateway.errors import StoreUnavailable
from gateway.models import as_declared
from gateway.stores.contracts import Cache

T = TypeVar("T")

log = logging.getLogger(__name__)


async def read_cached(
    cache: Cache, stats: CacheStats, family: str, cache_keys: list[str]
) -> list[bytes | None]:
    """One MGET; an outage reads as all-miss (counted), so queries fall through to the backend."""
    try:
        return await cache.get_many(cache_keys)
    except StoreUnavailable as exc:
        stats.errors[family] += 1
        log.warning("cache read skipped for %s: %s", family, exc)
        return [None] * len(cache_keys)


async def write_cached(
    cache: Cache, stats: CacheStats, family: str, items: list[tuple[str, bytes, int]]
) -> None:
    """One set_many with TTLs; an outage skips the write (counted)."""
    try:
        await cache.set_many(items)
    except StoreUnavailable as exc:
        stats.errors[family] += 1
        log.warning("cache write skipped for %s: %s", family, exc)


async def read_through(
    cache: Cache,
    stats: CacheStats,
    key: str,
    ttl: int,
    compute: Callable[[], Awaitable[T]],
    result_type: Any,
    version_keys: Sequence[str] = (),
) -> T:
    """``result_type`` is what ``compute`` returns (e.g. ``list[TrendPoint]``): a hit is rebuilt as it."""
    family = keys.family(key)
    hints.record(ttl)
    blob, *raw_tokens = await read_cached(cache, stats, family, [key, *version_keys])
    tokens = [versions.decode(t) for t in raw_tokens]
    if version_keys:
        blob = versions.unstamp(blob, tokens)
    if blob is not None:
        stats.hits[family] += 1
        hints.depend(version_keys, tokens)  # type: ignore[arg-type]  # all present: unstamp checked
        return cast(T, as_declared(result_type, codec.loads(blob)))
    stats.misses[family] += 1

    async def compute_and_store() -> tuple[T, list[str] | None]:
        value = await compute()
        payload = codec.dumps(value)
        stamped_with = None
        if version_keys:
            stamped_with = await versions.ensure_tokens(cache, version_keys, tokens)
            if stamped_with is None:
                return value, None
            payload = versions.stamp(stamped_with, payload)
        await write_cached(cache, stats, family, [(key, payload, ttl)])
        return value, stamped_with

    # Every miss in flight shares the first one's computation, and records the tokens it ran under.
    value, stamped_with = await flights().run(flight_key(cache, key), compute_and_store)
    if version_keys:
        hints.depend(version_keys, stamped_with)
    return value
