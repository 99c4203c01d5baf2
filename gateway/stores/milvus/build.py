"""Building a collection version aside, then switching the alias to it (the embed job's side of Milvus).

Order, and why: create ``{name}_v{NNNN}`` (dropping a leftover of a killed build first) -> insert ->
flush -> index -> load -> point the alias at it -> drop the other versions. Until the switch, search reads
the previous version through the alias; after it, the new one, already loaded. Dropping comes last
because dropping a collection takes its alias with it on Milvus Lite (a server refuses instead).
"""

from __future__ import annotations

import asyncio
import numbers
from collections.abc import Sequence
from typing import Any

import grpc
from pymilvus import AsyncMilvusClient, DataType

from gateway.errors import BadInput, StoreUnavailable
from gateway.stores.milvus.connection import BULK_TIMEOUT_S, UNREACHABLE, MilvusConnection
from gateway.stores.milvus.sizing import index_params, index_plan
from gateway.stores.vectors import VARCHAR_LENGTH, IndexPlan, VectorCollection, version_name, version_of

INSERT_BATCH = 10_000
_TYPES = {"int64": DataType.INT64, "varchar": DataType.VARCHAR, "bool": DataType.BOOL}


class VersionBuilder:
    def __init__(self, conn: MilvusConnection) -> None:
        self._conn = conn
        self._layout: dict[str, tuple[VectorCollection, int]] = {}  # collections built here: row checks

    async def create_version(self, spec: VectorCollection, version: int, dim: int) -> str:
        conn = self._conn
        name = version_name(spec.name, version)
        schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
        for field, kind in spec.scalars:
            extra = {"max_length": VARCHAR_LENGTH} if kind == "varchar" else {}
            schema.add_field(field, _TYPES[kind], **extra)
        schema.add_field("metadata", DataType.JSON)
        if await conn.has(name):  # left by an embed that was killed before its switch
            await conn.guard("drop_collection", conn.client.drop_collection(name, timeout=conn.timeout))
        await conn.guard(
            "create_collection", conn.client.create_collection(name, schema=schema, timeout=BULK_TIMEOUT_S)
        )
        self._layout[name] = (spec, dim)
        return name

    async def insert(self, collection: str, rows: Sequence[dict[str, Any]], partition: str | None) -> int:
        conn, layout = self._conn, self._layout.get(collection)
        if partition is not None:
            exists = await conn.guard(
                "has_partition", conn.client.has_partition(collection, partition, timeout=conn.timeout)
            )
            if not exists:
                await conn.guard(
                    "create_partition",
                    conn.client.create_partition(collection, partition, timeout=conn.timeout),
                )
        inserted = 0
        for start in range(0, len(rows), INSERT_BATCH):
            batch = [_checked_row(row, layout) for row in rows[start : start + INSERT_BATCH]]
            extra = {"partition_name": partition} if partition is not None else {}
            result = await conn.guard(
                "insert", conn.client.insert(collection, batch, timeout=BULK_TIMEOUT_S, **extra)
            )
            inserted += int(result.get("insert_count", len(batch)))
        return inserted

    async def build_index(self, collection: str) -> IndexPlan:
        conn = self._conn
        await conn.guard("flush", conn.client.flush(collection, timeout=BULK_TIMEOUT_S))
        plan = index_plan(await self._smallest_partition(collection))
        params = AsyncMilvusClient.prepare_index_params()
        params.add_index(field_name="embedding", **index_params(plan))
        try:
            await conn.client.create_index(collection, params, timeout=BULK_TIMEOUT_S)
        except grpc.RpcError as exc:
            if not (isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNIMPLEMENTED):
                raise StoreUnavailable(f"milvus create_index failed: {exc}") from exc
            # pymilvus#3711: after accepting the index request, the async client asks Milvus Lite for
            # AllocTimestamp, which Lite does not implement. Wait for the index state ourselves.
            await self._wait_index_built(collection)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"milvus create_index failed: {exc}") from exc
        await conn.guard("load_collection", conn.client.load_collection(collection, timeout=BULK_TIMEOUT_S))
        return plan

    async def _smallest_partition(self, collection: str) -> int:
        conn = self._conn
        names = await conn.guard(
            "list_partitions", conn.client.list_partitions(collection, timeout=conn.timeout)
        )
        sizes = []
        for name in names:
            stats = await conn.guard(
                "get_partition_stats", conn.client.get_partition_stats(collection, name, timeout=conn.timeout)
            )
            sizes.append(int(stats.get("row_count", 0)))
        return min((s for s in sizes if s > 0), default=0)

    async def _wait_index_built(self, collection: str) -> None:
        conn = self._conn
        deadline = asyncio.get_running_loop().time() + BULK_TIMEOUT_S
        while True:
            info = await conn.guard(
                "describe_index", conn.client.describe_index(collection, "embedding", timeout=conn.timeout)
            )
            state = str(info.get("state", "Finished"))
            if state == "Finished":
                return
            if state == "Failed":
                raise StoreUnavailable(f"milvus index build on {collection} failed: {info}")
            if asyncio.get_running_loop().time() > deadline:
                raise StoreUnavailable(f"milvus index build on {collection} did not finish in time")
            await asyncio.sleep(0.2)

    async def switch(self, name: str, collection: str) -> list[str]:
        """Point alias ``name`` at ``collection``, then drop every other version of ``name``."""
        conn = self._conn
        existing = await conn.collections()
        if await self.serving(name, existing) is not None:
            await conn.guard("alter_alias", conn.client.alter_alias(collection, name, timeout=conn.timeout))
        else:
            if name in existing:
                # A plain collection of that name, written by a gateway from before the aliases: it must
                # go before the alias can take its name (the only moment search may miss, once).
                await conn.guard("drop_collection", conn.client.drop_collection(name, timeout=conn.timeout))
            await conn.guard("create_alias", conn.client.create_alias(collection, name, timeout=conn.timeout))
        dropped = [c for c in existing if c != collection and version_of(name, c) is not None]
        for old in dropped:
            await conn.guard("drop_collection", conn.client.drop_collection(old, timeout=conn.timeout))
        return dropped

    async def serving(self, name: str, existing: Sequence[str] | None = None) -> str | None:
        conn = self._conn
        for collection in existing if existing is not None else await conn.collections():
            if version_of(name, collection) is None:
                continue
            aliases = await conn.guard(
                "list_aliases", conn.client.list_aliases(collection, timeout=conn.timeout)
            )
            if name in _alias_names(aliases):
                return collection
        return None


def _alias_names(answer: Any) -> list[str]:
    # pymilvus answers a list of names, or a dict {"aliases": [...]} depending on the version.
    if isinstance(answer, dict):
        answer = answer.get("aliases", [])
    return [str(a) for a in answer or []]


def _checked_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadInput(f"vector ids are integers, got {value!r}")
    return int(value)


def _checked_row(row: dict[str, Any], layout: tuple[VectorCollection, int] | None) -> dict[str, Any]:
    try:
        embedding = row["embedding"]
        vector_id = _checked_id(row["id"])
    except KeyError as exc:
        raise BadInput(f"a vector row needs id and embedding, missing {exc}") from None
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadInput(f"row {vector_id}: metadata must be a dict")
    out: dict[str, Any] = {"id": vector_id, "embedding": embedding, "metadata": metadata}
    if layout is None:
        return {**row, **out}
    spec, dim = layout
    if len(embedding) != dim:
        raise BadInput(f"row {vector_id}: embedding has {len(embedding)} dims, expected {dim}")
    for field, kind in spec.scalars:
        value = row.get(field)
        if kind == "varchar":
            out[field] = "" if value is None else str(value)[:VARCHAR_LENGTH]  # "" = unknown
        elif kind == "bool":
            out[field] = bool(value)
        else:
            out[field] = _checked_id(value)
    return out
