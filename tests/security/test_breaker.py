"""The Redis circuit breaker against a real redis-server stopped with SIGSTOP (it accepts connections and
never answers, the worst case): while it is stopped queries do not touch it; when it resumes, a
background probe closes the circuit and the cache is used again."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal

from gateway.embedded.redis_server import RedisServer
from gateway.stores.redis.cache import RedisCache
from tests.api.conftest import data_of

QUERY = '{ dashboard(range: {start: "2015-01-01", end: "2015-01-31"}) { sessions } user(id: 1) { device } }'


async def test_a_stopped_redis_costs_nothing_while_the_circuit_is_open(services, tmp_path):
    server = RedisServer(tmp_path / "own-redis")
    cache = RedisCache.connect(await server.start(), timeout_s=0.3, cooldown_s=0.2)
    own = dataclasses.replace(services, cache=cache)
    breaker = cache.breaker
    expected = {"dashboard": {"sessions": 6}, "user": {"device": "DESKTOP"}}  # tests/api/fixture_data.py
    assert await data_of(own, QUERY) == expected
    assert breaker.state == "closed" and own.cache_stats.errors == {}
    os.kill(server.pid, signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        assert await data_of(own, QUERY) == expected  # the first query meets the hung Redis: it times out
        assert breaker.state != "closed" and breaker.trips == 1
        failures, refused = breaker.failures, breaker.short_circuited
        for _ in range(5):
            assert await data_of(own, QUERY) == expected  # answered by the store
        assert breaker.failures == failures  # no call reached Redis, so none waited for its timeout
        assert breaker.short_circuited >= refused + 10  # each query's reads and writes were refused
        # Probes run in the background after each cooldown while it stays stopped; none closes it.
        for _ in range(200):
            if breaker.probes >= 1 and breaker.state == "open":
                break
            await data_of(own, QUERY)
            await asyncio.sleep(0.05)
        assert breaker.probes >= 1 and breaker.state == "open"
    finally:
        os.kill(server.pid, signal.SIGCONT)  # type: ignore[arg-type]
    try:
        for _ in range(400):  # queries keep coming; after a cooldown a probe succeeds
            await data_of(own, QUERY)
            if breaker.state == "closed":
                break
            await asyncio.sleep(0.05)
        assert breaker.state == "closed"
        hits = own.cache_stats.hits["metrics:dashboard"]
        await data_of(own, QUERY)
        await data_of(own, QUERY)
        assert own.cache_stats.hits["metrics:dashboard"] > hits  # Redis serves again
    finally:
        await cache.close()
        await server.stop()


async def test_the_message_counts_the_outage_not_the_last_probe(monkeypatch):
    # A probe every cooldown reopens the circuit; the message read "circuit open for 0.0s" all outage long.
    from gateway.stores.redis import breaker as breaker_module

    clock = [100.0]
    monkeypatch.setattr(breaker_module.time, "monotonic", lambda: clock[0])

    async def still_down() -> None:
        raise ConnectionError("refused")

    breaker = breaker_module.CircuitBreaker(still_down, cooldown_s=1.0)
    breaker.failed(TimeoutError("no answer"), timed_out=True)  # opens at 100
    clock[0] = 101.5
    assert not breaker.allow()  # past the cooldown: a probe starts
    assert breaker._probing is not None
    await breaker._probing  # it fails: open again, at 101.5
    assert breaker.state == "open" and breaker.opened_at == 101.5
    clock[0] = 103.4
    assert breaker.describe() == "not answering for 3s (circuit open; retried every 1s)"


def test_an_outage_under_a_second_old_does_not_read_as_zero_seconds(monkeypatch):
    from gateway.stores.redis import breaker as breaker_module

    clock = [100.0]
    monkeypatch.setattr(breaker_module.time, "monotonic", lambda: clock[0])

    async def down() -> None:
        raise ConnectionError("refused")

    breaker = breaker_module.CircuitBreaker(down, cooldown_s=1.0)
    breaker.failed(TimeoutError("no answer"), timed_out=True)
    clock[0] = 100.4
    assert breaker.describe() == "not answering for under 1s (circuit open; retried every 1s)"
