"""A vector index that may be broken at start and repaired later, without taking the gateway down.

Milvus Lite raises at open (or at the first ping) when ``milvus.db`` is corrupt or garbage; that used to
make ``serve`` exit, funnels and all. :class:`RecoveringVectors` keeps the failure instead: every vector
call raises StoreUnavailable with the reason (vector fields answer UNAVAILABLE, /healthz names the
vector index), and the open is tried again at most every ``RETRY_S`` seconds on the next call or health
probe, so a repaired or re-embedded directory is served without a restart. Measured with milvus-lite
3.2.2: a failed open leaves the process able to open the same directory again once it is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.errors import StoreUnavailable
from gateway.stores.milvus import lite_socket
from gateway.stores.milvus.connection import is_lite
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.vectors import IndexPlan, VectorCollection

RETRY_S = 10.0
log = logging.getLogger("funnelgate")


class RecoveringVectors:
    name = "milvus"

    def __init__(self, uri: str, timeout_s: float, verify: bool) -> None:
        self.uri = uri
        self._timeout = timeout_s
        self._verify = verify
        self._index: MilvusIndex | None = None
        self._lite: lite_socket.LiteServer | None = None  # Milvus Lite on its private unix socket
        self._error: str | None = None
        self._last_try = float("-inf")
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, uri: str, timeout_s: float = 10.0, verify: bool = True) -> RecoveringVectors:
        vectors = cls(uri, timeout_s, verify)
        await vectors._try_open()
        return vectors

    @property
    def broken(self) -> str | None:
        """Why the index could not be opened, or None while it is open."""
        return self._error if self._index is None else None

    async def _try_open(self) -> None:
        self._last_try = time.monotonic()
        try:
            self._index = await self._open()
        except StoreUnavailable as exc:
            self._error = str(exc)
            log.error("vector index unavailable (vector fields answer UNAVAILABLE): %s", exc)
            return
        if self._error is not None:
            log.warning("vector index %s is open again", self.uri)
        self._error = None

    async def _open(self) -> MilvusIndex:
        if not is_lite(self.uri):
            return await MilvusIndex.open(self.uri, self._timeout, verify=self._verify)
        lite = await asyncio.to_thread(lite_socket.start, Path(self.uri))
        if lite is None:  # no private socket possible here: pymilvus' own loopback TCP server
            return await MilvusIndex.open(self.uri, self._timeout, verify=self._verify)
        try:
            index = await MilvusIndex.open(lite.uri, self._timeout, verify=True)
        except BaseException:
            await asyncio.to_thread(lite.stop)
            raise
        self._lite = lite
        return index

    async def _current(self) -> MilvusIndex:
        if self._index is None:
            async with self._lock:
                if self._index is None and time.monotonic() - self._last_try >= RETRY_S:
                    await self._try_open()
            if self._index is None:
                raise StoreUnavailable(f"the vector index could not be opened: {self._error}")
        return self._index

    async def ping(self) -> None:
        await (await self._current()).ping()

    async def close(self) -> None:
        index, self._index = self._index, None
        self._last_try = float("inf")  # closed for good: no reopening
        self._error = "closed"
        if index is not None:
            await index.close()
        lite, self._lite = self._lite, None
        if lite is not None:
            await asyncio.to_thread(lite.stop)

    # -- the VectorIndex contract, each call on the index once it is open --------------------------------
    async def create_version(self, spec: VectorCollection, version: int, dim: int) -> str:
        return await (await self._current()).create_version(spec, version, dim)

    async def insert(
        self, collection: str, rows: Sequence[dict[str, Any]], partition: str | None = None
    ) -> int:
        return await (await self._current()).insert(collection, rows, partition)

    async def build_index(self, collection: str) -> IndexPlan:
        return await (await self._current()).build_index(collection)

    async def describe_index(self, collection: str) -> IndexPlan | None:
        return await (await self._current()).describe_index(collection)

    async def switch(self, name: str, collection: str) -> list[str]:
        return await (await self._current()).switch(name, collection)

    async def serving(self, name: str) -> str | None:
        return await (await self._current()).serving(name)

    async def resolve(self, name: str) -> str:
        return await (await self._current()).resolve(name)

    async def get_vectors(
        self,
        collection: str,
        ids: Sequence[int],
        *,
        partition: str | None = None,
        key_field: str = "id",
    ) -> list[list[float] | None]:
        index = await self._current()
        return await index.get_vectors(collection, ids, partition=partition, key_field=key_field)

    async def search(
        self,
        collection: str,
        vectors: Sequence[Sequence[float]],
        limit: int,
        *,
        filter: str | None = None,
        min_score: float | None = None,
        partition: str | None = None,
    ) -> list[list[tuple[int, float, dict[str, Any]]]]:
        index = await self._current()
        return await index.search(
            collection, vectors, limit, filter=filter, min_score=min_score, partition=partition
        )

    async def partitions(self, collection: str) -> list[str]:
        return await (await self._current()).partitions(collection)

    async def count(self, collection: str, filter: str | None = None) -> int:
        return await (await self._current()).count(collection, filter)

    async def rows_between(self, collection: str, low: int, high: int, limit: int) -> list[dict[str, Any]]:
        return await (await self._current()).rows_between(collection, low, high, limit)

    def __getattr__(self, name: str) -> Any:
        # Attributes beyond the contract (tests, tuning) reach the open index as they are.
        if name.startswith("_"):
            raise AttributeError(name)
        index = self.__dict__.get("_index")
        if index is None:
            raise StoreUnavailable(f"the vector index could not be opened: {self.__dict__.get('_error')}")
        return getattr(index, name)
