"""A real private redis-server per test, stopped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.embedded.redis_server import RedisServer
from gateway.stores.redis.cache import RedisCache


@pytest.fixture
async def redis_cache(tmp_path: Path) -> AsyncIterator[RedisCache]:
    server = RedisServer(tmp_path / "redis")
    cache = RedisCache.connect(await server.start())
    try:
        yield cache
    finally:
        await cache.close()
        await server.stop()
