"""The cluster adapter on a real 3-master Redis Cluster: round trips per node, capture's script, pub/sub."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisClusterException

from gateway.cache.stats import CacheStats
from gateway.errors import StoreUnavailable
from gateway.stores.redis.cache import RedisCache
from gateway.stores.redis.cluster import RedisClusterCache, connect
from tests.loaders.test_cached_loader import Squares
from tests.redis_fixtures import flush_cluster


@pytest.fixture
async def cluster(redis_cluster: list[int]) -> AsyncIterator[RedisClusterCache]:
    await flush_cluster(redis_cluster)
    cache = RedisClusterCache.connect(f"redis://127.0.0.1:{redis_cluster[0]}")
    await cache.ping()  # slot discovery happens here, outside any count
    try:
        yield cache
    finally:
        await cache.close()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[int]]:
    """Socket writes per server port: one per round trip (a pipeline is one write, then its replies)."""
    sent: Counter[int] = Counter()
    original = AbstractConnection._send_packed_command

    async def counted(self: Any, command: Any) -> None:
        sent[int(self.port)] += 1
        await original(self, command)

    monkeypatch.setattr(AbstractConnection, "_send_packed_command", counted)
    yield sent


async def node_of(ports: list[int], key: str) -> int:
    """The port of the master owning ``key``, asked of the servers (not the client's slot table)."""
    node = RedisCache.connect(f"redis://127.0.0.1:{ports[0]}/0")
    try:
        [slot] = await node.pipeline([("CLUSTER", "KEYSLOT", key)])
        [ranges] = await node.pipeline([("CLUSTER", "SLOTS")])
    finally:
        await node.close()
    for first, last, master, *_ in ranges:
        if first <= int(slot) <= last:
            return int(master[1])
    raise AssertionError(f"slot {slot} not covered")


async def test_plain_mget_across_slots_is_refused_by_the_cluster(redis_cluster):
    # Why the adapter exists: the single-Redis adapter's MGET on a cluster node fails.
    owner = await node_of(redis_cluster, "query:user:1")
    node = RedisCache.connect(f"redis://127.0.0.1:{owner}/0")
    try:
        with pytest.raises(StoreUnavailable, match="hash to the same slot"):
            await node.get_many(["query:user:1", "query:user:2", "query:user:3", "query:user:4"])
    finally:
        await node.close()


async def test_a_100_key_loader_batch_costs_at_most_one_round_trip_per_node(cluster, redis_cluster, writes):
    owners = {await node_of(redis_cluster, f"test:squares:{k}") for k in range(100)}
    assert owners == set(redis_cluster)  # the batch really spans the three masters
    # Open a connection to every node first: a new connection's handshake (CLIENT SETINFO) is a cost
    # of the pool, paid once per connection, not of a batch.
    await cluster.get_many([f"warm:{k}" for k in range(100)])
    writes.clear()

    stats = CacheStats()
    first = Squares(cluster, stats)
    assert await first.load_many(list(range(100))) == [{"n": k * k} for k in range(100)]
    assert first.calls == [list(range(100))]
    # All misses: one read and one write pipeline, each one round trip per node.
    assert dict(writes) == {port: 2 for port in redis_cluster}

    writes.clear()
    second = Squares(cluster, stats)
    assert await second.load_many(list(range(100))) == [{"n": k * k} for k in range(100)]
    assert second.calls == []  # every value came from the cluster
    assert dict(writes) == {port: 1 for port in redis_cluster}
    assert stats.snapshot()["test:squares"] == {"hits": 100, "misses": 100, "errors": 0}


async def test_execute_many_is_one_round_trip_per_node_with_every_key_declared(
    cluster, redis_cluster, writes
):
    users = [f"user:active:{u}" for u in range(30)]
    commands: list[tuple[Any, ...]] = [
        ("MSETEX", 60, *(part for key in users for part in (key, f"v{key}"))),
        ("HINCRBY", "realtime:{live}:minute:x", "events", 3),
        ("HINCRBYFLOAT", "realtime:{live}:minute:x", "revenue", 2.5),
        ("EXPIRE", "realtime:{live}:minute:x", 100),
        ("PFADD", "realtime:{live}:uniques:x", 1, 2, 3, 2),
        ("SET", "ver:epoch", "t1", "EX", 50),
    ]
    warm = [("MSETEX", 5, *(p for u in range(30) for p in (f"warm:{u}", "x"))), ("HSET", "w", "a", 1)]
    await cluster.execute_many([*warm, ("EXPIRE", "w", 5)])
    writes.clear()  # connections opened and the script loaded on every node: the steady state
    await cluster.execute_many(commands)
    assert dict(writes) == {port: 1 for port in redis_cluster}

    assert await cluster.get_many([*users, "ver:epoch"]) == [f"v{k}".encode() for k in users] + [b"t1"]
    replies = await cluster.pipeline(
        [
            ("HGETALL", "realtime:{live}:minute:x"),
            ("PFCOUNT", "realtime:{live}:uniques:x"),
            ("TTL", "realtime:{live}:minute:x"),
        ]
    )
    fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in replies[0].items()}
    assert {k: float(v) for k, v in fields.items()} == {"events": 3.0, "revenue": 2.5}
    assert replies[1] == 3 and 90 <= replies[2] <= 100
    assert 0 < await cluster.ttl(users[7]) <= 60


async def test_a_node_that_lost_its_scripts_loads_them_again(cluster, redis_cluster):
    for port in redis_cluster:
        node = RedisCache.connect(f"redis://127.0.0.1:{port}/0")
        await node.pipeline([("SCRIPT", "FLUSH")])
        await node.close()
    await cluster.execute_many([("MSETEX", 60, *(p for u in range(20) for p in (f"k{u}", "x")))])
    assert await cluster.get_many([f"k{u}" for u in range(20)]) == [b"x"] * 20


async def test_delete_and_delete_prefixes_span_every_node(cluster, redis_cluster):
    await cluster.set_many([(f"query:user:{i}", b"x", 60) for i in range(2500)] + [("keep:me", b"z", 60)])
    assert await cluster.delete(["query:user:1", "query:user:2", "query:user:1", "nope"]) == 2
    assert await cluster.delete_prefixes(["query:"]) == 2498
    assert await cluster.get_many(["keep:me", "query:user:7"]) == [b"z", None]


async def test_a_message_published_on_any_node_reaches_a_subscriber_on_another(cluster, redis_cluster):
    subscription = await cluster.open_subscription("events")
    local_receivers = []
    try:
        for port in redis_cluster:  # publish through each master in turn, the subscriber's included
            node = RedisCache.connect(f"redis://127.0.0.1:{port}/0")
            try:
                local_receivers.append(await node.publish("events", f"from {port}".encode()))
            finally:
                await node.close()
        received = []
        while len(received) < 3:
            message = await asyncio.wait_for(subscription.get(5.0), 30)
            if message:
                received.append(message.decode())
        await subscription.ping()  # the hub's liveness check works on the cluster connection too
        assert await asyncio.wait_for(subscription.get(5.0), 30) == b""
    finally:
        await subscription.close()
    # PUBLISH counts the receivers on its own node: the subscriber sits on exactly one of the three,
    # and the two messages published elsewhere reach it over the cluster bus.
    assert sorted(local_receivers) == [0, 0, 1]
    assert received == [f"from {port}" for port in redis_cluster]


async def test_a_cluster_whose_node_does_not_answer_is_an_outage_not_a_fault() -> None:
    # The node FUNNEL_REDIS_URL names is down (stopped; or gone after a failover): redis-py's cluster
    # client raises RedisClusterException ("Redis Cluster cannot be connected"), which is no RedisError.
    # It escaped the adapter, and every query and every POST /events answered 500 INTERNAL_SERVER_ERROR
    # instead of running without the cache. It must be StoreUnavailable, and open the breaker.
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        down = probe.getsockname()[1]
    cache = RedisClusterCache.connect(f"redis://127.0.0.1:{down}", timeout_s=0.5, cooldown_s=60)
    try:
        with pytest.raises(StoreUnavailable):
            await cache.get_many(["a", "b"])
        with pytest.raises(StoreUnavailable):
            await cache.execute_many([("SET", "a", "1"), ("PUBLISH", "events", b"{}")])
        with pytest.raises(StoreUnavailable):
            await cache.ping()
        with pytest.raises(StoreUnavailable):
            await cache.open_subscription("events")
        with pytest.raises(StoreUnavailable):
            await cache.delete_prefixes(["query:"])
        assert cache.breaker.state == "open"  # later calls fail fast, without waiting on the network
    finally:
        await cache.close()


async def test_the_cluster_is_found_through_another_node_when_the_url_s_node_is_down(
    redis_cluster: list[int],
) -> None:
    # FUNNEL_REDIS_URL's node is down (stopped, or gone after a failover): the cluster itself is fine,
    # and the gateway must still find it through FUNNEL_REDIS_CLUSTER_NODES instead of running with no
    # cache until that one node comes back.
    await flush_cluster(redis_cluster)
    with socket.socket() as probe:  # a port nobody listens on: the node that is down
        probe.bind(("127.0.0.1", 0))
        down = probe.getsockname()[1]
    nodes = [("127.0.0.1", port) for port in redis_cluster]
    cache = connect(f"redis://127.0.0.1:{down}", cluster=True, nodes=nodes)
    try:
        await cache.set_many([("left", b"1", 60), ("right", b"2", 60)])  # slots 4555 and 14820: two masters
        assert await cache.get_many(["left", "right", "absent"]) == [b"1", b"2", None]
    finally:
        await cache.close()
    alone = connect(f"redis://127.0.0.1:{down}", cluster=True)  # that node alone: no cache at all
    try:
        with pytest.raises(StoreUnavailable):
            await alone.get_many(["left"])
    finally:
        await alone.close()


async def test_a_call_the_cluster_client_cannot_route_is_a_fault_not_an_outage() -> None:
    # RedisClusterException is also the cluster client's refusal of a call before any network: keys of
    # different slots in one command, a command it cannot route, a node that is no cluster. Counted as
    # an outage, three of them opened the breaker: the whole cache off, logged as Redis down, the bug
    # hidden. Only a failure to find the cluster is an outage.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = probe.getsockname()[1]
    cache = RedisClusterCache.connect(f"redis://127.0.0.1:{down}", timeout_s=0.5, cooldown_s=60)

    async def cross_slot() -> None:
        raise RedisClusterException("MGET - all keys must map to the same key slot")

    async def no_cluster() -> None:
        raise RedisClusterException(
            "Redis Cluster cannot be connected. Please provide at least one reachable node"
        )

    try:
        for _ in range(5):
            with pytest.raises(RedisClusterException, match="same key slot"):
                await cache._guarded(cross_slot, "MGET")
        assert cache.breaker.state == "closed"
        for _ in range(3):
            with pytest.raises(StoreUnavailable, match="cannot be connected"):
                await cache._guarded(no_cluster, "MGET")
        assert cache.breaker.state == "open"
    finally:
        await cache.close()
