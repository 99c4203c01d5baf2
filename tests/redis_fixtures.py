"""Redis for the tests: a private redis-server per test, and one 3-master Redis Cluster per session.

``redis_cache`` runs each test that takes it twice: on one Redis (``single``) and on the cluster
(``cluster``), the same suite for both implementations of the Cache Protocol. The cluster leg skips,
saying so in capitals, only where the cluster cannot start (no redis-server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.embedded.redis_server import RedisServer
from gateway.stores.redis.cache import RedisCache
from gateway.stores.redis.cluster import RedisClusterCache

REDIS_MODES = ["single", "cluster"]
_CLUSTER_FAILURE: list[str] = []


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[list[int]]:
    """The ports of a fresh 3-master cluster on loopback, shared by the session (flush it per test)."""
    from tests.redis_cluster import ClusterUnavailable, running_redis_cluster

    try:
        with running_redis_cluster() as ports:
            yield ports
    except ClusterUnavailable as exc:
        _CLUSTER_FAILURE.append(str(exc))
        pytest.skip(f"REDIS CLUSTER LEG SKIPPED: the cluster could not start: {exc}")


async def flush_cluster(ports: list[int]) -> None:
    for port in ports:
        node = RedisCache.connect(f"redis://127.0.0.1:{port}/0")
        try:
            await node.pipeline([("FLUSHALL",)])
        finally:
            await node.close()


def cluster_env(ports: list[int]) -> dict[str, str]:
    return {"FUNNEL_REDIS_URL": f"redis://127.0.0.1:{ports[0]}", "FUNNEL_REDIS_CLUSTER": "on"}


@pytest.fixture
def redis_mode(request: pytest.FixtureRequest) -> str:
    """``single`` unless a test module parametrises it (indirect) over REDIS_MODES."""
    return getattr(request, "param", "single")


@pytest.fixture
async def redis_env(request: pytest.FixtureRequest, redis_mode: str) -> dict[str, str]:
    """Settings environment for the chosen mode: {} (the private redis-server) or a flushed cluster."""
    if redis_mode == "single":
        return {}
    ports = request.getfixturevalue("redis_cluster")
    await flush_cluster(ports)
    return cluster_env(ports)


@pytest.fixture(params=REDIS_MODES)
async def redis_cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RedisCache]:
    if request.param == "cluster":
        ports = request.getfixturevalue("redis_cluster")
        await flush_cluster(ports)
        cache: RedisCache = RedisClusterCache.connect(f"redis://127.0.0.1:{ports[0]}")
        try:
            yield cache
        finally:
            await cache.close()
        return
    server = RedisServer(tmp_path / "redis")
    cache = RedisCache.connect(await server.start())
    try:
        yield cache
    finally:
        await cache.close()
        await server.stop()


def cluster_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _CLUSTER_FAILURE:
        terminalreporter.section("REDIS CLUSTER LEG SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.line(f"the Redis Cluster did not start: {_CLUSTER_FAILURE[0]}", red=True)


async def numsub(cache: Any, channel: str) -> int:
    """``PUBSUB NUMSUB channel``: the connections subscribed to it. A cluster node counts only its own
    subscribers (classic pub/sub: a subscription lives on one node, messages reach every node), and
    which node a subscription or a keyless command goes to is the client's choice, so on a cluster every
    node is asked and the counts summed."""
    if isinstance(cache, RedisClusterCache):
        replies = [
            await node.execute_command("PUBSUB", "NUMSUB", channel) for node in cache._cluster.get_nodes()
        ]
        return sum(int(count) for [_, count] in replies)
    [[_, count]] = await cache.pipeline([("PUBSUB", "NUMSUB", channel)])
    return int(count)
