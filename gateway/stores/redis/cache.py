"""The Cache Protocol on Redis (redis-py asyncio with hiredis), behind a circuit breaker (breaker.py):
while Redis is down or hung, every call fails at once with StoreUnavailable (a cache miss upstream)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import StoreUnavailable
from gateway.ops.metrics import POOL_CAPACITY, POOL_IN_USE, POOL_OPEN
from gateway.stores.redis.breaker import CircuitBreaker

# RedisClusterException is no RedisError: the cluster client raises it when no node it knows answers
# ("Redis Cluster cannot be connected"), an outage like any refused connection, not a fault of ours.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, RedisClusterException)
T = TypeVar("T")

# execute_many: ARGV[1] is the commands as one JSON array of arrays, decoded by the script (cjson). One
# argument instead of thousands: redis-py encodes each argument in Python (~1 us each), and a pipeline
# costs ~30 us a command. ("MSETEX", ttl, key, value, ...) is SET key value EX ttl per pair.
# Large values travel beside the JSON, unescaped: inside it, every quote of a JSON value cost orjson an
# escape and cjson an unescape (most of the script's decoding: a group's message is ~400 kB, its states
# ~300 kB). A command's last argument given as bytes (PUBLISH's message) is an argument of its own,
# ARGV[n], its place in the JSON holding [n]; a MSETEX's values (all str, or all bytes) are sent
# concatenated as ARGV[n]: ("MSETEX", ttl, [n], key, byte length, key, byte length, ...). The keys are
# not declared in KEYS: fine on one Redis; on Redis Cluster this must become per-slot calls (cluster.py).
_EXECUTE_MANY = """
local call, sub = redis.call, string.sub
local commands = cjson.decode(ARGV[1])
for _, c in ipairs(commands) do
  if c[1] == 'MSETEX' then
    local ttl, blob = c[2], c[3]
    if type(blob) == 'table' then
      local values, at = ARGV[blob[1]], 1
      for j = 4, #c, 2 do
        local after = at + c[j + 1]
        call('SET', c[j], sub(values, at, after - 1), 'EX', ttl)
        at = after
      end
    else
      for j = 3, #c, 2 do call('SET', c[j], c[j + 1], 'EX', ttl) end
    end
  else
    local last = c[#c]
    if type(last) == 'table' then c[#c] = ARGV[last[1]] end
    call(unpack(c))
  end
end
return #commands
"""

# set_absent: SET KEYS[i] ARGV[2i] NX EX ARGV[2i-1]; per key 1 when set, 0 when it existed.
_SET_ABSENT = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('SET', key, ARGV[2 * i], 'NX', 'EX', ARGV[2 * i - 1]) and 1 or 0
end
return out
"""


async def _message_as_is(message: Any) -> Any:
    """The pub/sub message handler given to redis-py: the message, untouched. redis-py 8.1's own
    (hiredis parser) builds ``"Push response: " + str(message)`` for a DEBUG log line on every message,
    whatever the log level: ~2 ms of the event loop for a group's 400 kB of published events."""
    return message


def _cluster_unreachable(exc: RedisClusterException) -> bool:
    """Whether the cluster client failed to find the cluster (no node answered, the slots not covered,
    the nodes disagreeing during a failover): an outage. Its other RedisClusterExceptions are refusals
    of the call itself before any network (keys of different slots, a command it cannot route, a node
    that is no cluster): faults to see, not an outage to hide behind the breaker."""
    message = str(exc)
    return any(
        part in message for part in ("cannot be connected", "slots are not covered", "could not agree")
    )


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, RedisTimeoutError | TimeoutError) or "timeout" in str(exc).lower()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"cannot send a {type(value).__name__} to Redis")


def _joined(values: Sequence[Any]) -> bytes | None:
    """MSETEX's values as one blob (all str or all bytes; None when not: they stay in the JSON)."""
    if not values:
        return None
    try:
        return "".join(values).encode() if type(values[0]) is str else b"".join(values)
    except TypeError:
        return None


def _lengths(values: Sequence[Any], blob: bytes) -> list[int]:
    """Each value's length in bytes (ASCII text: its length in characters, no encoding per value)."""
    if type(values[0]) is bytes or len(blob) == sum(map(len, values)):
        return list(map(len, values))
    return [len(value.encode()) for value in values]


class RedisCache:
    name = "redis"
    clustered = False

    def __init__(self, client: aioredis.Redis, where: str, *, cooldown_s: float = 1.0) -> None:
        self._client = client
        self.where = where
        self._execute_many = client.register_script(_EXECUTE_MANY)
        self._scripts: dict[str, Any] = {}
        self.breaker = CircuitBreaker(self._client.ping, cooldown_s=cooldown_s)

    @classmethod
    def connect(cls, url: str, timeout_s: float = 2.0, *, cooldown_s: float = 1.0) -> RedisCache:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )
        _export_pool(client.connection_pool)
        return cls(client, url, cooldown_s=cooldown_s)

    async def _guarded(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        if not self.breaker.allow():
            raise StoreUnavailable(f"redis {what} skipped: {self.breaker.describe()}")
        try:
            result = await call()
        except RedisClusterException as exc:
            if not _cluster_unreachable(exc):
                raise  # the call is wrong, not the cluster down: neither an outage nor the breaker's
            self.breaker.failed(exc, timed_out=_timed_out(exc))
            raise StoreUnavailable(f"redis {what} failed: {exc}") from exc
        except _UNREACHABLE as exc:
            self.breaker.failed(exc, timed_out=_timed_out(exc))
            raise StoreUnavailable(f"redis {what} failed: {exc}") from exc
        except RedisError as exc:  # Redis answered (an error reply): not an outage
            self.breaker.succeeded()
            raise StoreUnavailable(f"redis {what} failed: {exc}") from exc
        self.breaker.succeeded()
        return result

    async def ping(self) -> None:
        try:
            await self._guarded(self._client.ping, "PING")
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"redis at {self.where} is unreachable: {exc.__cause__ or exc}") from exc

    async def close(self) -> None:
        await self.breaker.close()
        await self._client.aclose()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = await self._guarded(lambda: self._client.mget(list(keys)), "MGET")
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def set_many(self, items: Sequence[tuple[str, bytes, int]]) -> None:
        """One script call (``execute_many``'s MSETEX per TTL), not a pipeline of SETs: a loader's
        write of 1,000 entries took 45 ms pipelined (redis-py builds each command in Python), 9 ms so,
        more than the MGET that later reads them back."""
        by_ttl: dict[int, list[Any]] = {}
        for key, value, ttl in items:
            by_ttl.setdefault(ttl, []).extend((key, value))
        await self.execute_many([("MSETEX", ttl, *pairs) for ttl, pairs in by_ttl.items()])

    async def set_absent(self, items: Sequence[tuple[str, bytes, int]]) -> list[bool]:
        """One script call on one server (a pipeline of 1,000 SET NX, a cold listing's version tokens,
        took 70-100 ms, most of it redis-py building each command); a cluster pipelines them per node,
        as its keys lie in many slots."""
        if not items:
            return []
        if not self.clustered:
            args = [x for _, value, ttl in items for x in (ttl, value)]
            done = await self.run_script(_SET_ABSENT, [key for key, _, _ in items], args)
            return [bool(d) for d in done]

        async def pipeline() -> list[bool]:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value, ttl in items:
                    pipe.set(key, value, ex=ttl, nx=True)
                return [bool(done) for done in await pipe.execute()]

        return await self._guarded(pipeline, "SET NX pipeline")

    async def ttl(self, key: str) -> int:
        return int(await self._call(self._client.ttl(key)))

    async def delete(self, keys: Sequence[str]) -> int:
        return int(await self._call(self._client.delete(*keys))) if keys else 0

    async def delete_prefixes(self, prefixes: Sequence[str]) -> int:
        """Drop every key under these prefixes (SCAN + UNLINK, never KEYS: it would block Redis). The
        whole walk is one guarded call: a Redis that is down is StoreUnavailable (an outage), not a
        ConnectionError escaping from the SCAN as a fault of ours."""

        async def drop() -> int:
            removed = 0
            for prefix in prefixes:
                batch: list[bytes] = []
                async for key in self._client.scan_iter(match=f"{prefix}*", count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        removed += int(await self._client.unlink(*batch))
                        batch = []
                if batch:
                    removed += int(await self._client.unlink(*batch))
            return removed

        return await self._guarded(drop, "SCAN + UNLINK")

    async def incr(self, key: str, amount: int = 1) -> int:
        return int(await self._call(self._client.incrby(key, amount)))

    async def publish(self, channel: str, message: bytes) -> int:
        return int(await self._call(self._client.publish(channel, message)))

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        if not commands:
            return []

        async def pipeline() -> list[Any]:
            async with self._client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())

        return await self._guarded(pipeline, "pipeline")

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> None:
        if not commands:
            return
        blobs: list[bytes] = []  # ARGV[2]...
        sent: list[Sequence[Any]] | None = None  # the commands with their bytes taken out (a copy)
        for i, command in enumerate(commands):
            if command[0] == "MSETEX":
                values = command[3::2]
                blob = _joined(values)
                if blob is None:
                    continue
                blobs.append(blob)
                wire = [command[0], command[1], [len(blobs) + 1], *command[2:]]
                wire[4::2] = _lengths(values, blob)
            elif type(command[-1]) is bytes:
                blobs.append(command[-1])
                wire = [*command[:-1], [len(blobs) + 1]]
            else:
                continue
            if sent is None:
                sent = list(commands)
            sent[i] = wire
        args = [orjson.dumps(commands if sent is None else sent, default=_text), *blobs]
        await self._guarded(lambda: self._execute_many(keys=[], args=args), "script")

    async def run_script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)

        # EVALSHA directly: redis-py's Script call wraps it in imports and copies, a measurable part of a
        # cached response's one round trip (bench_api). A server that lost the script (restarted,
        # SCRIPT FLUSH) answers NOSCRIPT, and the Script then loads it and runs it. A cluster keeps
        # redis-py's Script, which knows how to route and load it per node.
        async def call() -> Any:
            if self.clustered:
                return await script(keys=list(keys), args=list(args))
            try:
                return await self._client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await script(keys=list(keys), args=list(args))

        return await self._guarded(call, "script")

    async def open_subscription(self, channel: str) -> RedisSubscription:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True, push_handler_func=_message_as_is)
        try:
            await pubsub.subscribe(channel)
        except (*_UNREACHABLE, RedisError) as exc:
            await RedisSubscription(pubsub).close()
            raise StoreUnavailable(f"redis SUBSCRIBE {channel} failed: {exc}") from exc
        except BaseException:
            # Cancelled (or failed otherwise) with the pool's connection taken, SUBSCRIBE perhaps sent:
            # the connection is this pubsub's alone, so release it (the server then drops the
            # subscription) before the cancellation goes on, or it is held until the process ends.
            await RedisSubscription(pubsub).close()
            raise
        return RedisSubscription(pubsub)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages published on ``channel`` until the consumer stops iterating."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True, push_handler_func=_message_as_is)
        try:  # the SUBSCRIBE inside: a cancellation during it must release the connection too
            await pubsub.subscribe(channel)
            async for message in pubsub.listen():
                if message and message.get("type") == "message":
                    yield message["data"]
        finally:
            await RedisSubscription(pubsub).close()  # releases it even when UNSUBSCRIBE fails

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        async def call() -> Any:
            return await awaitable

        try:
            return await self._guarded(call, "call")
        except StoreUnavailable:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # refused by the breaker before it was awaited
            raise


def _export_pool(pool: Any) -> None:
    """Read the pool's sizes when /metrics is scraped (redis-py keeps them; no per-call cost). The pool
    is held weakly: a closed cache must not be kept alive by its gauges. The newest cache wins."""
    ref = weakref.ref(pool)

    def size(attribute: str) -> Callable[[], float]:
        def read() -> float:
            current = ref()
            return float(len(getattr(current, attribute, ()))) if current is not None else 0.0

        return read

    POOL_IN_USE.labels("redis").set_function(size("_in_use_connections"))
    POOL_OPEN.labels("redis").set_function(
        lambda: size("_in_use_connections")() + size("_available_connections")()
    )
    POOL_CAPACITY.labels("redis").set(float(getattr(pool, "max_connections", 0) or 0))


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
