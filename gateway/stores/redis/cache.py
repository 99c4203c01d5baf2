"""The Cache Protocol on Redis (redis-py asyncio with hiredis)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import StoreUnavailable

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# execute_many: ARGV[1] is the commands as one JSON array of arrays, decoded by the script (cjson). One
# argument instead of thousands: redis-py encodes each argument in Python (~1 us each), and a pipeline
# costs ~30 us a command. ("MSETEX", ttl, key, value, ...) is SET key value EX ttl per pair. The keys
# are not declared in KEYS: fine on one Redis; on Redis Cluster this must become per-slot calls.
_EXECUTE_MANY = """
local commands = cjson.decode(ARGV[1])
for _, c in ipairs(commands) do
  if c[1] == 'MSETEX' then
    for j = 3, #c, 2 do redis.call('SET', c[j], c[j + 1], 'EX', c[2]) end
  else
    redis.call(unpack(c))
  end
end
return #commands
"""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"cannot send a {type(value).__name__} to Redis")


class RedisCache:
    name = "redis"

    def __init__(self, client: aioredis.Redis, where: str) -> None:
        self._client = client
        self.where = where
        self._execute_many = client.register_script(_EXECUTE_MANY)

    @classmethod
    def connect(cls, url: str, timeout_s: float = 2.0) -> RedisCache:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )
        return cls(client, url)

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"redis at {self.where} is unreachable: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self._client.mget(list(keys))
            return [v.encode() if isinstance(v, str) else v for v in values]
        except (*_UNREACHABLE, RedisError) as exc:
            raise StoreUnavailable(f"redis MGET failed: {exc}") from exc

    async def set_many(self, items: Sequence[tuple[str, bytes, int]]) -> None:
        if not items:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value, ttl in items:
                    pipe.set(key, value, ex=ttl)
                await pipe.execute()
        except (*_UNREACHABLE, RedisError) as exc:
            raise StoreUnavailable(f"redis SET pipeline failed: {exc}") from exc

    async def set_absent(self, items: Sequence[tuple[str, bytes, int]]) -> list[bool]:
        if not items:
            return []
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value, ttl in items:
                    pipe.set(key, value, ex=ttl, nx=True)
                return [bool(done) for done in await pipe.execute()]
        except (*_UNREACHABLE, RedisError) as exc:
            raise StoreUnavailable(f"redis SET NX pipeline failed: {exc}") from exc

    async def ttl(self, key: str) -> int:
        return int(await self._call(self._client.ttl(key)))

    async def delete(self, keys: Sequence[str]) -> int:
        return int(await self._call(self._client.delete(*keys))) if keys else 0

    async def delete_prefixes(self, prefixes: Sequence[str]) -> int:
        """Drop every key under these prefixes (SCAN + UNLINK, never KEYS: it would block Redis)."""
        removed = 0
        for prefix in prefixes:
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += int(await self._call(self._client.unlink(*batch)))
                    batch = []
            if batch:
                removed += int(await self._call(self._client.unlink(*batch)))
        return removed

    async def incr(self, key: str, amount: int = 1) -> int:
        return int(await self._call(self._client.incrby(key, amount)))

    async def publish(self, channel: str, message: bytes) -> int:
        return int(await self._call(self._client.publish(channel, message)))

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        if not commands:
            return []
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())
        except (*_UNREACHABLE, RedisError) as exc:
            raise StoreUnavailable(f"redis pipeline failed: {exc}") from exc

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> None:
        if not commands:
            return
        payload = orjson.dumps(commands, default=_text)
        try:
            await self._execute_many(keys=[], args=[payload])
        except (*_UNREACHABLE, RedisError) as exc:
            raise StoreUnavailable(f"redis script failed: {exc}") from exc

    async def open_subscription(self, channel: str) -> RedisSubscription:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
        except (*_UNREACHABLE, RedisError) as exc:
            await RedisSubscription(pubsub).close()
            raise StoreUnavailable(f"redis SUBSCRIBE {channel} failed: {exc}") from exc
        return RedisSubscription(pubsub)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages published on ``channel`` until the consumer stops iterating."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        try:
            async for message in pubsub.listen():
                if message and message.get("type") == "message":
                    yield message["data"]
        finally:
            await pubsub.unsubscribe(channel)
            await pubsub.aclose()

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except (*_UNREACHABLE, RedisError) as exc:
            raise StoreUnavailable(f"redis call failed: {exc}") from exc


class RedisSubscription:
    """The Subscription contract on one redis-py PubSub (one connection of the pool, its own)."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub
        self._closed = False

    async def get(self, timeout_s: float) -> bytes | None:
        try:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout_s)
        except (*_UNREACHABLE, RedisError, RuntimeError) as exc:
            raise StoreUnavailable(f"redis subscription lost: {exc}") from exc
        if not message:
            return None
        if message.get("type") == "message":
            data = message["data"]
            return data.encode() if isinstance(data, str) else bytes(data)
        return b"" if message.get("type") == "pong" else None

    async def ping(self) -> None:
        try:
            await self._pubsub.ping()
        except (*_UNREACHABLE, RedisError, RuntimeError) as exc:
            raise StoreUnavailable(f"redis subscription lost: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # a dead connection cannot unsubscribe; closing is enough
            await asyncio.wait_for(self._pubsub.unsubscribe(), 1.0)
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
