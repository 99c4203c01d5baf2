"""The VectorIndex Protocol on Milvus (pymilvus ``AsyncMilvusClient``): Milvus Lite file or Milvus server.

Reads go through the design names, which are aliases of the serving versions (``gateway.stores.vectors``);
building a version is ``build.VersionBuilder``; index sizes and search parameters are ``sizing``. After a
restart a collection is "released", so the first read of a process loads it.
"""

from __future__ import annotations

import asyncio
import numbers
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from gateway.errors import BadInput, StoreUnavailable
from gateway.stores.milvus.build import VersionBuilder
from gateway.stores.milvus.connection import BULK_TIMEOUT_S, UNREACHABLE, MilvusConnection
from gateway.stores.milvus.sizing import plan_of, search_params
from gateway.stores.vectors import VECTOR_COLLECTIONS, IndexPlan, VectorCollection, version_of

MAX_SEARCH_LIMIT = 16_384  # Milvus' topk ceiling
_KEY_FIELDS = ("id", "user_id")  # what get_vectors may look vectors up by (INT64 fields)

T = TypeVar("T")
Hit = tuple[int, float, dict[str, Any]]


class MilvusIndex:
    name = "milvus"

    def __init__(self, conn: MilvusConnection) -> None:
        self._conn = conn
        self.uri = conn.uri
        self._builder = VersionBuilder(conn)
        self._loaded: set[str] = set()
        self._outputs: dict[str, list[str]] = {}  # per collection: the fields a hit carries back
        self._nlists: dict[str, int | None] = {}  # per version (immutable): its index's nlist
        self._load_lock = asyncio.Lock()

    @classmethod
    async def open(cls, uri: str, timeout_s: float = 10.0, verify: bool = True) -> MilvusIndex:
        """Open ``uri`` (a Milvus Lite ``.db`` path or a server URL).

        With ``verify`` (the default) the server is pinged now, so a wrong URL fails at start with
        StoreUnavailable; ``verify=False`` lets a gateway start while a Milvus server is down (every
        call then raises StoreUnavailable until it is back). Milvus Lite always starts here.
        """
        index = cls(await MilvusConnection.open(uri, timeout_s))
        if verify:
            try:
                await index.ping()
            except StoreUnavailable:
                await index.close()
                raise
        return index

    async def ping(self) -> None:
        conn = self._conn
        await conn.guard("ping", conn.client.list_collections(timeout=conn.timeout))

    async def close(self) -> None:
        await self._conn.close()

    # -- building a version aside --------------------------------------------------------------------
    async def create_version(self, spec: VectorCollection, version: int, dim: int) -> str:
        return await self._builder.create_version(spec, version, dim)

    async def insert(
        self, collection: str, rows: Sequence[dict[str, Any]], partition: str | None = None
    ) -> int:
        return await self._builder.insert(collection, rows, partition)

    async def build_index(self, collection: str) -> IndexPlan:
        return await self._builder.build_index(collection)

    async def switch(self, name: str, collection: str) -> list[str]:
        dropped = await self._builder.switch(name, collection)
        self._loaded.difference_update(dropped)
        return dropped

    async def serving(self, name: str) -> str | None:
        return await self._builder.serving(name)

    async def describe_index(self, collection: str) -> IndexPlan | None:
        conn = self._conn
        if not await conn.has(collection):
            return None
        described = await conn.guard(
            "describe_index", conn.client.describe_index(collection, "embedding", timeout=conn.timeout)
        )
        return plan_of(described or {})

    # -- reads ---------------------------------------------------------------------------------------
    async def resolve(self, name: str) -> str:
        conn = self._conn
        try:
            described = await conn.client.describe_alias(name, timeout=conn.timeout)
            return str(described["collection_name"])
        except UNREACHABLE:
            pass  # not an alias (or Milvus is down: has() below says which)
        if await conn.has(name):
            return name  # a plain collection, written before the aliases
        raise StoreUnavailable(f"Milvus collection {name} does not exist yet: run `funnelgate embed`")

    async def get_vectors(
        self,
        collection: str,
        ids: Sequence[int],
        *,
        partition: str | None = None,
        key_field: str = "id",
    ) -> list[list[float] | None]:
        if not ids:
            return []
        if key_field not in _KEY_FIELDS:
            raise BadInput(f"vectors are looked up by {' or '.join(_KEY_FIELDS)}, not {key_field!r}")
        ids = [_checked_id(i) for i in ids]
        unique = list(dict.fromkeys(ids))
        await self._ensure_loaded(collection)
        conn = self._conn
        partitions = {"partition_names": [partition]} if partition is not None else {}
        if key_field == "id":
            call = conn.client.get(
                collection, ids=unique, output_fields=["embedding"], timeout=conn.timeout, **partitions
            )
        else:  # a typed INT64 field, unique within the partition (user_id in a page partition)
            call = conn.client.query(
                collection,
                filter=f"{key_field} in {unique}",
                output_fields=[key_field, "embedding"],
                timeout=conn.timeout,
                **partitions,
            )
        rows = await self._read(collection, "get", call)
        found = {int(row[key_field]): [float(x) for x in row["embedding"]] for row in rows}
        return [found.get(i) for i in ids]

    async def search(
        self,
        collection: str,
        vectors: Sequence[Sequence[float]],
        limit: int,
        *,
        filter: str | None = None,
        min_score: float | None = None,
        partition: str | None = None,
    ) -> list[list[Hit]]:
        if not vectors:
            return []
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise BadInput(f"search limit must be an integer in 1..{MAX_SEARCH_LIMIT}, got {limit!r}")
        await self._ensure_loaded(collection)
        conn = self._conn
        partitions = {"partition_names": [partition]} if partition is not None else {}
        exhaustive = bool(filter) or min_score is not None
        hits = await self._read(
            collection,
            "search",
            conn.client.search(
                collection,
                data=[[float(x) for x in v] for v in vectors],
                filter=filter or "",
                limit=limit,
                output_fields=self._outputs.get(collection, ["metadata"]),
                search_params=search_params(exhaustive, min_score, self._nlists.get(collection)),
                anns_field="embedding",
                timeout=conn.timeout,
                **partitions,
            ),
        )
        out = [[(int(h["id"]), float(h["distance"]), _fields(h["entity"])) for h in per] for per in hits]
        if min_score is not None:  # the range bounds were widened by a hair: cut exactly here
            out = [[h for h in per if h[1] >= min_score] for per in out]
        return out

    async def partitions(self, collection: str) -> list[str]:
        await self._ensure_loaded(collection)
        conn = self._conn
        names = await self._read(
            collection, "list_partitions", conn.client.list_partitions(collection, timeout=conn.timeout)
        )
        return sorted(str(n) for n in names if n != "_default")

    async def count(self, collection: str, filter: str | None = None) -> int:
        conn = self._conn
        if not await conn.has(collection):
            return 0
        if filter is None:
            stats = await conn.guard(
                "get_collection_stats", conn.client.get_collection_stats(collection, timeout=conn.timeout)
            )
            return int(stats.get("row_count", 0))
        await self._ensure_loaded(collection)
        rows = await self._read(
            collection,
            "count",
            conn.client.query(collection, filter=filter, output_fields=["count(*)"], timeout=conn.timeout),
        )
        return int(rows[0]["count(*)"]) if rows else 0

    async def rows_between(self, collection: str, low: int, high: int, limit: int) -> list[dict[str, Any]]:
        """Every row with ``low <= id < high`` — id, embedding and every scalar field (typed ones and
        metadata) — up to ``limit`` in no set order (a backup walks the id space with it, splitting a
        range that returns ``limit`` rows)."""
        await self._ensure_loaded(collection)
        conn = self._conn
        rows = await self._read(
            collection,
            "query",
            conn.client.query(
                collection,
                filter=f"id >= {int(low)} and id < {int(high)}",
                output_fields=["id", "embedding", *self._outputs.get(collection, ["metadata"])],
                limit=limit,
                timeout=BULK_TIMEOUT_S,
            ),
        )
        return [
            {
                **{k: v for k, v in r.items() if k not in ("id", "embedding")},
                "id": int(r["id"]),
                "embedding": [float(x) for x in r["embedding"]],
                "metadata": dict(r.get("metadata") or {}),
            }
            for r in rows
        ]

    # -- helpers -------------------------------------------------------------------------------------
    async def _ensure_loaded(self, collection: str) -> None:
        if collection in self._loaded:
            return
        conn = self._conn
        async with self._load_lock:
            if collection in self._loaded:
                return
            if not await conn.has(collection):
                raise StoreUnavailable(
                    f"Milvus collection {collection} does not exist yet: run `funnelgate embed`"
                )
            state = await conn.guard(
                "get_load_state", conn.client.get_load_state(collection, timeout=conn.timeout)
            )
            if getattr(state.get("state"), "name", str(state.get("state"))) != "Loaded":
                await conn.guard(
                    "load_collection", conn.client.load_collection(collection, timeout=BULK_TIMEOUT_S)
                )
            await self._learn_outputs(collection)
            if any(version_of(spec.name, collection) is not None for spec in VECTOR_COLLECTIONS):
                plan = await self.describe_index(collection)  # a version: its index never changes
                self._nlists[collection] = plan.nlist if plan else None
            self._loaded.add(collection)

    async def _learn_outputs(self, collection: str) -> None:
        """Hits carry every scalar field back, never the vector ("*" would include it)."""
        conn = self._conn
        described = await conn.guard(
            "describe_collection", conn.client.describe_collection(collection, timeout=conn.timeout)
        )
        self._outputs[collection] = [
            str(f["name"])
            for f in described.get("fields", [])
            if f["name"] not in ("id", "embedding") and not str(f.get("type", "")).endswith("VECTOR")
        ]

    async def _read(self, collection: str, what: str, awaitable: Awaitable[T]) -> T:
        try:
            return await self._conn.guard(what, awaitable)
        except StoreUnavailable:
            # The collection may have been dropped or released by another process: check again next time.
            self._loaded.discard(collection)
            raise


def _fields(entity: dict[str, Any]) -> dict[str, Any]:
    """A hit's typed fields and its metadata, as one dict (metadata cannot shadow a typed field)."""
    out = dict(entity.get("metadata") or {})
    out.update({k: v for k, v in entity.items() if k not in ("metadata", "embedding", "id")})
    return out


def _checked_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadInput(f"vector ids are integers, got {value!r}")
    return int(value)
