"""The Cache Protocol on a Redis Cluster (redis-py asyncio ``RedisCluster``), selected by FUNNEL_REDIS_CLUSTER.

A cluster refuses a command whose keys hash to different slots (CROSSSLOT), which is the shape of every
batched call here. Each multi-key operation is therefore split per *node*, one round trip per node, the
nodes asked concurrently, never one round trip per key:

==========================  ==========================================================================
operation                   on the cluster
==========================  ==========================================================================
get_many (loaders' MGET,    ``mget_nonatomic``: one MGET per slot, sent as one pipeline per node
entries + version tokens)
set_many, set_absent,       the cluster pipeline: commands grouped by the node owning their key, one
pipeline (snapshot reads)   write and one read per node
delete, delete_prefixes     UNLINK per slot through the pipeline; SCAN runs on every primary
execute_many (capture)      ONE script call per node with every key declared in KEYS (the script has
                            the ``allow-cross-slot-keys`` flag: one node's keys may lie in many slots)
incr, ttl, publish          single-key (or no key): routed as is
==========================  ==========================================================================

Nothing here needs atomicity across keys: cache-aside tolerates a partial miss, and capture's writes
were never atomic (``Cache.execute_many``). Hash tags are used only where one slot is worth its heat:
the live aggregates (``realtime:{live}:…``, :mod:`gateway.cache.keys`).

Pub/sub is *classic* (PUBLISH/SUBSCRIBE): Redis Cluster forwards every message to every node over the
cluster bus, so a subscriber on any node sees a message published on any other. Sharded pub/sub would
pin each channel to the node of its slot and spare the bus, but the gateway has two channels and one
message per group commit, so it would only move the subscribers of ``events`` onto one node. See
docs/scaling.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import NoScriptError

from gateway.stores.redis.cache import RedisCache, RedisSubscription, _text

# The commands of ONE slot. Every key is declared in KEYS (a cluster routes a script by its declared keys,
# which must share a slot, and a ``#!lua`` script may touch no other key); ARGV[1] is the commands as
# JSON with each key replaced by its index in KEYS. ("MSETEX", ttl, k, v, ...) as in cache.py.
_EXECUTE_DECLARED = """#!lua
local commands = cjson.decode(ARGV[1])
for _, c in ipairs(commands) do
  if c[1] == 'MSETEX' then
    for j = 3, #c, 2 do redis.call('SET', KEYS[c[j]], c[j + 1], 'EX', c[2]) end
  else
    c[2] = KEYS[c[2]]
    redis.call(unpack(c))
  end
end
return #commands
"""
_EXECUTE_SHA = hashlib.sha1(_EXECUTE_DECLARED.encode()).hexdigest()
_KEYLESS = {"PUBLISH"}


class _SlotBatch:
    """The commands of one slot, each key declared once."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self.commands: list[list[Any]] = []

    def key(self, key: str) -> int:
        position = self.index.get(key)
        if position is None:
            self.keys.append(key)
            position = self.index[key] = len(self.keys)  # Lua arrays start at 1
        return position

    def call(self) -> tuple[Any, ...]:
        """The Redis call: the command itself when it is alone, else the script over all of them."""
        if len(self.commands) == 1:
            command = self.commands[0]
            if command[0] != "MSETEX":
                return (command[0], self.keys[command[1] - 1], *command[2:])
            if len(command) == 4:  # ("MSETEX", ttl, key index, value)
                return ("SET", self.keys[command[2] - 1], command[3], "EX", command[1])
        payload = orjson.dumps(self.commands, default=_text)
        return ("EVALSHA", _EXECUTE_SHA, len(self.keys), *self.keys, payload)


class RedisClusterCache(RedisCache):
    name = "redis-cluster"
    clustered = True

    def __init__(self, client: RedisCluster, where: str, *, cooldown_s: float = 1.0) -> None:
        super().__init__(client, where, cooldown_s=cooldown_s)  # type: ignore[arg-type]
        self._cluster = client
        self._script_loaded = False

    @classmethod
    def connect(
        cls,
        url: str,
        timeout_s: float = 2.0,
        *,
        cooldown_s: float = 1.0,
        nodes: Sequence[tuple[str, int]] = (),
    ) -> RedisClusterCache:
        """The cluster reached through ``url``'s node or any of ``nodes`` (host, port): the slots are
        discovered from the first that answers, so one node down does not leave the gateway without a
        cache. ``url``'s options (password, TLS) apply to every node."""
        client = RedisCluster.from_url(
            url,
            startup_nodes=[ClusterNode(host, port) for host, port in nodes] or None,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        return cls(client, url, cooldown_s=cooldown_s)

    async def _discovered(self) -> None:
        # Commands discover the slots on first use; a PubSub looks them up without doing so.
        if self._cluster._initialize:
            await self._call(self._cluster.initialize())

    async def open_subscription(self, channel: str) -> RedisSubscription:
        await self._discovered()
        return await super().open_subscription(channel)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        await self._discovered()
        async for message in super().subscribe(channel):
            yield message

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = await self._call(self._cluster.mget_nonatomic(list(keys)))
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return sum(await self._per_slot("UNLINK", list(dict.fromkeys(keys))))

    async def delete_prefixes(self, prefixes: Sequence[str]) -> int:
        """SCAN every primary (the cluster client walks them all), UNLINK per slot in batches of 1,000;
        the walk is guarded like every call (a cluster that does not answer is StoreUnavailable)."""

        async def drop() -> int:
            removed = 0
            for prefix in prefixes:
                batch: list[str] = []
                async for key in self._cluster.scan_iter(match=f"{prefix}*", count=1000):
                    batch.append(key.decode() if isinstance(key, bytes) else key)
                    if len(batch) >= 1000:
                        removed += await self.delete(batch)
                        batch = []
                removed += await self.delete(batch)
            return removed

        return await self._guarded(drop, "SCAN + UNLINK")

    async def _per_slot(self, command: str, keys: list[str]) -> list[int]:
        slots: dict[int, list[str]] = {}
        for key in keys:
            slots.setdefault(self._cluster.keyslot(key), []).append(key)

        async def run() -> list[int]:
            async with self._cluster.pipeline() as pipe:
                for slot_keys in slots.values():
                    pipe.execute_command(command, *slot_keys)
                return [int(n) for n in await pipe.execute()]

        return list(await self._call(run()))

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> None:
        """Per slot: a lone command as itself, several as one script call with their keys declared;
        every slot of a node in one pipeline write (one round trip per node); PUBLISH afterwards, so a
        subscriber that reads on a message finds the writes."""
        if not commands:
            return
        slots: dict[int, _SlotBatch] = {}
        afterwards: list[Sequence[Any]] = []

        def batch_of(key: str) -> _SlotBatch:
            slot = self._cluster.keyslot(key)
            return slots.get(slot) or slots.setdefault(slot, _SlotBatch())

        for command in commands:
            name = command[0]
            if name in _KEYLESS:
                afterwards.append(command)
            elif name == "MSETEX":
                split: dict[int, tuple[_SlotBatch, list[Any]]] = {}
                for i in range(2, len(command), 2):
                    batch = batch_of(command[i])
                    split.setdefault(id(batch), (batch, ["MSETEX", command[1]]))[1].extend(
                        (batch.key(command[i]), command[i + 1])
                    )
                for batch, part in split.values():
                    batch.commands.append(part)
            else:
                batch = batch_of(command[1])
                batch.commands.append([name, batch.key(command[1]), *command[2:]])
        calls = [batch.call() for batch in slots.values()]
        if not self._script_loaded and any(call[0] == "EVALSHA" for call in calls):
            await self._call(self._cluster.script_load(_EXECUTE_DECLARED))  # on every primary
            self._script_loaded = True
        await self._call(self._pipelined(calls))
        for command in afterwards:
            await self._call(self._cluster.execute_command(*command))

    async def _pipelined(self, calls: list[tuple[Any, ...]]) -> None:
        async with self._cluster.pipeline() as pipe:
            for call in calls:
                pipe.execute_command(*call)
            replies = await pipe.execute(raise_on_error=False)
        missing = [
            call for call, reply in zip(calls, replies, strict=True) if isinstance(reply, NoScriptError)
        ]
        failed = [r for r in replies if isinstance(r, Exception) and not isinstance(r, NoScriptError)]
        if failed:
            raise failed[0]
        if missing:  # a node that restarted, or joined, has an empty script cache: load, rerun only those
            await self._cluster.script_load(_EXECUTE_DECLARED)
            async with self._cluster.pipeline() as pipe:
                for call in missing:
                    pipe.execute_command(*call)
                await pipe.execute()


def connect(
    url: str, *, cluster: bool, timeout_s: float = 2.0, nodes: Sequence[tuple[str, int]] = ()
) -> RedisCache:
    """The adapter for one Redis (``cluster=False``) or a Redis Cluster reached through ``url`` or
    any of ``nodes``."""
    if cluster:
        return RedisClusterCache.connect(url, timeout_s, nodes=nodes)
    return RedisCache.connect(url, timeout_s)
