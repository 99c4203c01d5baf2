"""The Redis-first batching pattern, on a real Redis."""

import time
from collections.abc import Sequence

from gateway.cache.stats import CacheStats
from gateway.stores.redis.cache import RedisCache
from loaders.cached import CachedLoader


class Squares(CachedLoader[int, dict]):
    family = "test:squares"
    ttl = 123

    def __init__(self, cache, stats):
        super().__init__(cache, stats)
        self.calls: list[list[int]] = []

    def cache_key(self, key: int) -> str:
        return f"test:squares:{key}"

    async def fetch(self, keys: Sequence[int]) -> list[dict | None]:
        self.calls.append(list(keys))
        return [{"n": k * k} if k >= 0 else None for k in keys]


async def test_one_backend_call_per_tick_then_served_from_redis(redis_cache):
    stats = CacheStats()
    first = Squares(redis_cache, stats)
    began = int(time.time())
    assert await first.load_many([3, -1, 2]) == [{"n": 9}, None, {"n": 4}]
    ended = int(time.time()) + 1
    assert first.calls == [[3, -1, 2]]
    # cached for the family's 123 s from the load (EXPIRETIME: no bound on how soon the test asks)
    [expires] = await redis_cache.pipeline([("EXPIRETIME", "test:squares:3")])
    assert began + 123 <= int(expires) <= ended + 123
    assert await redis_cache.ttl("test:squares:-1") == -2  # missing entities are not cached

    second = Squares(redis_cache, stats)  # a new request: fresh loader, same Redis
    assert await second.load_many([2, 3, 5]) == [{"n": 4}, {"n": 9}, {"n": 25}]
    assert second.calls == [[5]]
    assert stats.snapshot()["test:squares"] == {"hits": 2, "misses": 4, "errors": 0}


async def test_cache_outage_degrades_to_the_backend():
    broken = RedisCache.connect("redis://127.0.0.1:1/0", timeout_s=0.2)
    stats = CacheStats()
    loader = Squares(broken, stats)
    try:
        assert await loader.load_many([1, 2]) == [{"n": 1}, {"n": 4}]
    finally:
        await broken.close()
    assert loader.calls == [[1, 2]]
    assert stats.errors["test:squares"] == 2  # the read and the write were skipped, not fatal
