"""Rate limits counted in a real Redis: exact within a process, shared through Redis across replicas."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import keys
from gateway.security.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_over_the_limit_is_refused_until_the_window_ends(redis_cache):
    clock = Clock(60 * 20_000 + 15.0)  # 15 s into a 60 s window
    limiter = RateLimiter(redis_cache, 60, clock=clock)
    decisions = [limiter.check("key:a", 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after_s == 45 and decisions[-1].limit == 3
    assert limiter.check("key:b", 3).allowed  # another credential has its own count
    assert limiter.check("key:c", 0).allowed  # 0: unlimited
    clock.now += 45  # the next window
    assert limiter.check("key:a", 3).allowed
    await limiter.close()


async def test_counts_reach_redis_and_other_replicas_see_them(redis_cache):
    clock = Clock(2_000_000.0)
    one = RateLimiter(redis_cache, 60, clock=clock)
    two = RateLimiter(redis_cache, 60, clock=clock)
    for _ in range(3):
        assert one.check("key:a", 4).allowed
    await one.flush()
    window = int(clock.now // 60)
    assert await redis_cache.get_many([keys.rate_limit("key:a", window)]) == [b"3"]
    assert 0 < await redis_cache.ttl(keys.rate_limit("key:a", window)) <= 61
    # The other replica counts its own request, and learns the total at its flush.
    assert two.check("key:a", 4).allowed
    await two.flush()
    assert not two.check("key:a", 4).allowed
    await one.close()
    await two.close()


class SlowCache:
    """The real cache, its pipelines held ``before`` and ``after`` Redis runs them (a slow network)."""

    def __init__(self, cache, before: float, after: float) -> None:
        self.cache, self.before, self.after = cache, before, after
        self.in_round_trip = asyncio.Event()

    async def pipeline(self, commands):
        self.in_round_trip.set()
        await asyncio.sleep(self.before)
        replies = await self.cache.pipeline(commands)
        await asyncio.sleep(self.after)
        return replies


@pytest.mark.parametrize(("before", "after"), [(0.0, 0.3), (0.3, 0.0)])
async def test_close_during_a_round_trip_sends_each_request_once(redis_cache, before, after):
    # close() while the scheduled flush waits for Redis: before the commands reached it, or after Redis
    # counted them but before the reply came. Either way Redis ends up with each request once.
    clock = Clock(4_000_000.0)
    slow = SlowCache(redis_cache, before, after)
    limiter = RateLimiter(slow, 60, flush_s=0.01, clock=clock)  # type: ignore[arg-type]
    for _ in range(5):
        assert limiter.check("key:c", 100).allowed
    await asyncio.wait_for(slow.in_round_trip.wait(), 10)
    await limiter.close()
    window = int(clock.now // 60)
    assert await redis_cache.get_many([keys.rate_limit("key:c", window)]) == [b"5"]


async def test_overlapping_flushes_send_each_request_once(redis_cache):
    # flush() is public: called while the scheduled one waits for Redis, it must not send the same
    # requests again.
    clock = Clock(3_000_000.0)
    limiter = RateLimiter(redis_cache, 60, clock=clock)
    for _ in range(3):
        assert limiter.check("key:o", 10).allowed
    await asyncio.gather(limiter.flush(), limiter.flush(), limiter.flush())
    window = int(clock.now // 60)
    assert await redis_cache.get_many([keys.rate_limit("key:o", window)]) == [b"3"]
    # 3 counted of 10: seven more are allowed, the eleventh is not.
    assert [limiter.check("key:o", 10).allowed for _ in range(8)] == [True] * 7 + [False]
    await limiter.close()
    assert await redis_cache.get_many([keys.rate_limit("key:o", window)]) == [b"10"]


async def test_counting_goes_on_locally_while_redis_is_down():
    from gateway.stores.redis.cache import RedisCache

    broken = RedisCache.connect("redis://127.0.0.1:1/0", timeout_s=0.2)
    limiter = RateLimiter(broken, 60)
    try:
        assert [limiter.check("ip:1.2.3.4", 2).allowed for _ in range(3)] == [True, True, False]
        await limiter.flush()  # fails quietly, the count stays
        assert not limiter.check("ip:1.2.3.4", 2).allowed
    finally:
        await limiter.close()
        await broken.close()
