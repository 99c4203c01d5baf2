import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from gateway.embedded.redis_server import RedisNotInstalled, RedisServer
from gateway.errors import StoreUnavailable
from gateway.stores.redis.cache import RedisCache
from tests.redis_fixtures import numsub


async def test_set_many_is_one_call_and_keeps_bytes_as_they_are(redis_cache):
    # A loader writes a whole batch: one script call, not a SET per entry (45 ms against 9 for 1,000).
    # Counted on one server (a cluster's calls are per node: test_redis_cluster.py).
    single = not redis_cache.clustered
    if single:
        await redis_cache.pipeline([("CONFIG", "RESETSTAT")])
    items = [("bin", b"\xff\x00\x80", 60), ("empty", b"", 60), ("text", b"caf\xc3\xa9", 30)]
    await redis_cache.set_many(items)
    if single:
        [stats] = await redis_cache.pipeline([("INFO", "commandstats")])
        evalsha = stats["cmdstat_evalsha"]  # a first call fails NOSCRIPT and is sent again after SCRIPT LOAD
        assert evalsha["calls"] - evalsha["failed_calls"] == 1  # the SETs inside it count too: not checked
    assert await redis_cache.get_many(["bin", "empty", "text"]) == [b"\xff\x00\x80", b"", b"caf\xc3\xa9"]
    assert 0 < await redis_cache.ttl("text") <= 30 < await redis_cache.ttl("bin") <= 60


async def test_set_absent_sets_only_absent_keys_in_one_call(redis_cache):
    await redis_cache.set_many([("there", b"old", 60)])
    single = not redis_cache.clustered
    if single:
        await redis_cache.pipeline([("CONFIG", "RESETSTAT")])
    items = [("there", b"new", 60), ("fresh", b"\xff\x00", 30), ("also", b"x", 60)]
    assert await redis_cache.set_absent(items) == [False, True, True]
    if single:  # one script call, not a SET NX per key (counted as in the test above)
        [stats] = await redis_cache.pipeline([("INFO", "commandstats")])
        evalsha = stats["cmdstat_evalsha"]
        assert evalsha["calls"] - evalsha["failed_calls"] == 1
    assert await redis_cache.get_many(["there", "fresh", "also"]) == [b"old", b"\xff\x00", b"x"]
    assert 0 < await redis_cache.ttl("fresh") <= 30 < await redis_cache.ttl("also") <= 60
    assert await redis_cache.set_absent([]) == []


async def test_get_many_set_many_ttl(redis_cache):
    assert await redis_cache.get_many([]) == []
    began = int(time.time())
    await redis_cache.set_many([("a", b"1", 100), ("b", b"2", 50)])
    ended = int(time.time()) + 1
    assert await redis_cache.get_many(["a", "missing", "b", "a"]) == [b"1", None, b"2", b"1"]
    # The expiry set, as an absolute moment (EXPIRETIME): no bound on how soon the test asks.
    expire_a, expire_b = await redis_cache.pipeline([("EXPIRETIME", "a"), ("EXPIRETIME", "b")])
    assert began + 100 <= int(expire_a) <= ended + 100 and began + 50 <= int(expire_b) <= ended + 50
    assert 0 < await redis_cache.ttl("a") <= 100  # ttl() reads it back (in seconds left)
    assert await redis_cache.ttl("missing") == -2
    assert await redis_cache.delete(["a", "b", "missing"]) == 2
    assert await redis_cache.incr("n") == 1 and await redis_cache.incr("n", 4) == 5


async def test_publish_reaches_a_subscriber(redis_cache):
    received = []

    async def listen():
        async for message in redis_cache.subscribe("chan"):
            received.append(message)
            return

    task = asyncio.create_task(listen())
    for _ in range(100):  # until the subscription is registered
        if await redis_cache.publish("chan", b"hello"):
            break
        await asyncio.sleep(0.02)
    await asyncio.wait_for(task, 5)
    assert received == [b"hello"]


async def test_a_subscription_takes_a_large_message_as_it_is_without_stringifying_it(
    redis_cache, monkeypatch
):
    # redis-py 8.1's default pub/sub handler builds "Push response: " + str(message) for a DEBUG line on
    # every message, whatever the level: the cache hands redis-py its own handler, which does not.
    built: list[str] = []
    monkeypatch.setattr(logging.Logger, "debug", lambda self, msg, *a, **k: built.append(str(msg)[:40]))
    message = b'{"events": [' + b",".join(b'{"eventId": "e-%d"}' % i for i in range(20_000)) + b"]}"
    subscription = await redis_cache.open_subscription("big")
    try:
        await redis_cache.publish("big", message)
        got = None
        for _ in range(50):
            got = await subscription.get(0.1)
            if got is not None:
                break
    finally:
        await subscription.close()
    assert got == message  # every byte, once
    assert not [line for line in built if line.startswith("Push response")]


async def _until_numsub(cache: RedisCache, channel: str, count: int) -> None:
    """Until the server counts ``count`` subscribers (a bound of ~10 s: it only fails a leak)."""
    for _ in range(1000):
        if await numsub(cache, channel) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"PUBSUB NUMSUB {channel} never reached {count}")


class _HangingSubscribe:
    """Each pubsub the cache makes sends its SUBSCRIBE (so it holds a connection of the pool, and the
    server counts it), then hangs inside subscribe() until its task is cancelled."""

    def __init__(self, cache: RedisCache, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pubsubs: list[Any] = []
        self.held: list[Any] = []  # each pubsub's connection while it hung
        self.inside = asyncio.Event()
        make = cache._client.pubsub

        def pubsub(**kwargs: Any) -> Any:
            made = make(**kwargs)
            subscribe = made.subscribe

            async def subscribe_then_hang(*channels: Any) -> None:
                await subscribe(*channels)
                self.held.append(made.connection)
                self.inside.set()
                await asyncio.Event().wait()

            made.subscribe = subscribe_then_hang
            self.pubsubs.append(made)
            return made

        monkeypatch.setattr(cache._client, "pubsub", pubsub)

    async def cancel_inside(self, cache: RedisCache, channel: str, call: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(call)
        await asyncio.wait_for(self.inside.wait(), 10)
        await _until_numsub(cache, channel, 1)  # the server holds the subscription
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)  # a bound: only a close that hangs reaches it
        assert done and task.cancelled()  # the cancellation went on: closing did not swallow it
        [pubsub], [connection] = self.pubsubs, self.held
        assert connection is not None  # it had taken a connection of its own...
        assert pubsub.connection is None  # ...and handed it back (aclose releases it, then forgets it)
        if not cache.clustered:
            assert connection not in cache._client.connection_pool._in_use_connections
        await _until_numsub(cache, channel, 0)  # the server no longer holds the subscription


async def test_a_cancellation_inside_open_subscription_releases_the_connection(redis_cache, monkeypatch):
    hanging = _HangingSubscribe(redis_cache, monkeypatch)
    await hanging.cancel_inside(
        redis_cache, "cancelled-open", redis_cache.open_subscription("cancelled-open")
    )


async def test_a_cancellation_inside_subscribe_releases_the_connection(redis_cache, monkeypatch):
    hanging = _HangingSubscribe(redis_cache, monkeypatch)
    messages = redis_cache.subscribe("cancelled-iterator")
    await hanging.cancel_inside(redis_cache, "cancelled-iterator", anext(messages))


async def test_server_stop_reaps_the_child(tmp_path):
    server = RedisServer(tmp_path / "r")
    await server.start()
    pid = server.pid
    await server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    await server.stop()  # idempotent


async def test_server_stop_ends_a_stopped_child_with_sigterm(tmp_path):
    # A hung redis-server (SIGSTOP) keeps SIGTERM pending: stop() used to wait its whole timeout and then
    # SIGKILL it (SIGTERM of serve took 6.7 s, 5 of them here). SIGCONT lets the SIGTERM act.
    server = RedisServer(tmp_path / "r")
    await server.start()
    process = server.process
    assert process is not None
    os.kill(process.pid, signal.SIGSTOP)
    await server.stop()
    assert process.returncode is not None and process.returncode != -signal.SIGKILL


async def test_missing_executable_names_install_command(tmp_path):
    server = RedisServer(tmp_path / "r")
    server.executable = None
    with pytest.raises(RedisNotInstalled, match="apt-get install -y redis-server"):
        await server.start()


async def test_unreachable_redis_is_store_unavailable():
    cache = RedisCache.connect("redis://127.0.0.1:1/0", timeout_s=0.3)
    try:
        with pytest.raises(StoreUnavailable):
            await cache.ping()
        with pytest.raises(StoreUnavailable):
            await cache.get_many(["x"])
    finally:
        await cache.close()


async def test_delete_prefixes_leaves_other_keys(redis_cache):
    items = [(f"query:user:{i}", b"x", 60) for i in range(2500)] + [
        ("metrics:realtime", b"y", 60),
        ("keep:me", b"z", 60),
    ]
    await redis_cache.set_many(items)
    assert await redis_cache.delete_prefixes(["query:", "metrics:"]) == 2501
    assert await redis_cache.get_many(["keep:me", "query:user:7", "metrics:realtime"]) == [b"z", None, None]


SLOW_LISTENER = """#!{python}
import socket, sys, time
args = sys.argv[1:]
path = args[args.index("--unixsocket") + 1]
server = socket.socket(socket.AF_UNIX)
server.bind(path)  # the socket file exists from here on...
time.sleep(0.5)
server.listen()  # ...but connections are refused until here, as with a real redis-server under load
while True:
    conn, _ = server.accept()
    while conn.recv(64):
        conn.sendall(b"+PONG\\r\\n")
"""


async def test_start_waits_until_the_server_answers_not_until_its_socket_exists(tmp_path):
    fake = tmp_path / "slow-redis-server"
    fake.write_text(SLOW_LISTENER.format(python=sys.executable))
    fake.chmod(0o755)
    server = RedisServer(tmp_path / "r", executable=str(fake))
    url = await server.start()
    try:
        cache = RedisCache.connect(url)
        try:
            await cache.ping()  # refused if start() returned between bind and listen
        finally:
            await cache.close()
    finally:
        await server.stop()
