"""The VectorIndex Protocol on Milvus (pymilvus ``AsyncMilvusClient``): Milvus Lite file or Milvus server.

The same code serves both: a URI ending in ``.db`` starts Milvus Lite in-process on that directory
(one process per directory, it holds a file lock), anything else is a server URL. Collections are
created without an index, bulk loaded, then indexed (IVF_FLAT, COSINE) and loaded for search; after a
restart a collection is "released", so the first search of a process loads it.
"""

from __future__ import annotations

import asyncio
import logging
import numbers
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import grpc
from pymilvus import AsyncMilvusClient, DataType
from pymilvus.exceptions import DataTypeNotMatchException, MilvusException, ParamError

from gateway.errors import BadInput, StoreUnavailable

NLIST = 1024
NPROBE = 10
METRIC = "COSINE"
INDEX_TYPE = "IVF_FLAT"
INSERT_BATCH = 10_000
MAX_SEARCH_LIMIT = 16_384  # Milvus' topk ceiling

_BULK_TIMEOUT_S = 600.0  # flush / index build on 100k+ rows takes seconds, not milliseconds
_UNREACHABLE = (MilvusException, grpc.RpcError, OSError, asyncio.TimeoutError)
_BAD_ARGUMENT = (ParamError, DataTypeNotMatchException)

T = TypeVar("T")
log = logging.getLogger(__name__)


class _QuietLiteIndexWait(logging.Filter):
    """Drop the ERROR tracebacks of the known-harmless Lite index wait (pymilvus#3711): pymilvus logs the
    UNIMPLEMENTED answer, and Lite's in-process gRPC server logs the NotImplementedError behind it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "UNIMPLEMENTED" in message and "index]" in message:
            return False
        tb = record.exc_info[2] if record.exc_info else None
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is None or tb.tb_frame.f_code.co_name != "AllocTimestamp"


for _logger in ("pymilvus.decorators", "grpc._server"):
    logging.getLogger(_logger).addFilter(_QuietLiteIndexWait())


def _is_lite(uri: str) -> bool:
    return uri.endswith(".db") and "://" not in uri


class MilvusIndex:
    name = "milvus"

    def __init__(self, client: AsyncMilvusClient, uri: str, timeout_s: float) -> None:
        self._client = client
        self.uri = uri
        self._timeout = timeout_s
        self._loaded: set[str] = set()
        self._dims: dict[str, int] = {}  # collections this process created, for row checks
        self._load_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, uri: str, timeout_s: float = 10.0, verify: bool = True) -> MilvusIndex:
        """Open ``uri`` (a Milvus Lite ``.db`` path or a server URL).

        With ``verify`` (the default) the server is pinged now, so a wrong URL fails at start with
        StoreUnavailable; ``verify=False`` lets a gateway start while a Milvus server is down (every
        call then raises StoreUnavailable until it is back). Milvus Lite always starts here.
        """
        try:
            # Milvus Lite starts its in-process server inside the constructor: keep that off the loop.
            client = await asyncio.to_thread(AsyncMilvusClient, uri, timeout=timeout_s)
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"cannot open Milvus at {uri}: {exc}") from exc
        index = cls(client, uri, timeout_s)
        if verify:
            try:
                await index.ping()
            except StoreUnavailable:
                await index.close()
                raise
        return index

    async def ping(self) -> None:
        await self._guard("ping", self._client.list_collections(timeout=self._timeout))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._client.close()
        except _UNREACHABLE as exc:
            log.debug("closing the Milvus client failed: %s", exc)
        if _is_lite(self.uri):
            # The Lite server (and its directory lock) would otherwise live until the process exits.
            from milvus_lite.server_manager import server_manager_instance

            await asyncio.to_thread(server_manager_instance.release_server, self.uri)

    # -- bulk build ----------------------------------------------------------------------------------
    async def recreate(self, collection: str, dim: int) -> None:
        schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("metadata", DataType.JSON)
        self._loaded.discard(collection)
        self._dims[collection] = dim
        if await self._guard(
            "has_collection", self._client.has_collection(collection, timeout=self._timeout)
        ):
            await self._guard(
                "drop_collection", self._client.drop_collection(collection, timeout=self._timeout)
            )
        await self._guard(
            "create_collection",
            self._client.create_collection(collection, schema=schema, timeout=self._timeout),
        )

    async def insert(self, collection: str, rows: Sequence[dict[str, Any]]) -> int:
        inserted = 0
        for start in range(0, len(rows), INSERT_BATCH):
            batch = [
                _checked_row(row, self._dims.get(collection)) for row in rows[start : start + INSERT_BATCH]
            ]
            result = await self._guard(
                "insert", self._client.insert(collection, batch, timeout=_BULK_TIMEOUT_S)
            )
            inserted += int(result.get("insert_count", len(batch)))
        return inserted

    async def build_index(self, collection: str) -> None:
        await self._guard("flush", self._client.flush(collection, timeout=_BULK_TIMEOUT_S))
        params = AsyncMilvusClient.prepare_index_params()
        params.add_index(
            field_name="embedding", index_type=INDEX_TYPE, metric_type=METRIC, params={"nlist": NLIST}
        )
        try:
            await self._client.create_index(collection, params, timeout=_BULK_TIMEOUT_S)
        except grpc.RpcError as exc:
            if not (isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNIMPLEMENTED):
                raise StoreUnavailable(f"milvus create_index failed: {exc}") from exc
            # pymilvus#3711: after accepting the index request, the async client asks Milvus Lite for
            # AllocTimestamp, which Lite does not implement. Wait for the index state ourselves.
            await self._wait_index_built(collection)
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"milvus create_index failed: {exc}") from exc
        await self._guard(
            "load_collection", self._client.load_collection(collection, timeout=_BULK_TIMEOUT_S)
        )
        self._loaded.add(collection)

    async def _wait_index_built(self, collection: str) -> None:
        deadline = asyncio.get_running_loop().time() + _BULK_TIMEOUT_S
        while True:
            info = await self._guard(
                "describe_index", self._client.describe_index(collection, "embedding", timeout=self._timeout)
            )
            state = str(info.get("state", "Finished"))
            if state == "Finished":
                return
            if state == "Failed":
                raise StoreUnavailable(f"milvus index build on {collection} failed: {info}")
            if asyncio.get_running_loop().time() > deadline:
                raise StoreUnavailable(f"milvus index build on {collection} did not finish in time")
            await asyncio.sleep(0.2)

    # -- reads ---------------------------------------------------------------------------------------
    async def get_vectors(self, collection: str, ids: Sequence[int]) -> list[list[float] | None]:
        if not ids:
            return []
        ids = [_checked_id(i) for i in ids]
        unique = list(dict.fromkeys(ids))
        await self._ensure_loaded(collection)
        rows = await self._read(
            collection,
            "get",
            self._client.get(collection, ids=unique, output_fields=["embedding"], timeout=self._timeout),
        )
        found = {int(row["id"]): [float(x) for x in row["embedding"]] for row in rows}
        return [found.get(i) for i in ids]

    async def search(
        self,
        collection: str,
        vectors: Sequence[Sequence[float]],
        limit: int,
        filter: str | None = None,
    ) -> list[list[tuple[int, float, dict[str, Any]]]]:
        if not vectors:
            return []
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise BadInput(f"search limit must be an integer in 1..{MAX_SEARCH_LIMIT}, got {limit!r}")
        await self._ensure_loaded(collection)
        hits = await self._read(
            collection,
            "search",
            self._client.search(
                collection,
                data=[[float(x) for x in v] for v in vectors],
                filter=filter or "",
                limit=limit,
                output_fields=["metadata"],
                search_params={"metric_type": METRIC, "params": {"nprobe": NPROBE}},
                anns_field="embedding",
                timeout=self._timeout,
            ),
        )
        return [
            [
                (int(hit["id"]), float(hit["distance"]), dict(hit["entity"].get("metadata") or {}))
                for hit in per
            ]
            for per in hits
        ]

    async def count(self, collection: str) -> int:
        if not await self._guard(
            "has_collection", self._client.has_collection(collection, timeout=self._timeout)
        ):
            return 0
        stats = await self._guard(
            "get_collection_stats", self._client.get_collection_stats(collection, timeout=self._timeout)
        )
        return int(stats.get("row_count", 0))

    async def rows_between(self, collection: str, low: int, high: int, limit: int) -> list[dict[str, Any]]:
        """Every row (id, embedding, metadata) with ``low <= id < high``, up to ``limit`` in no set order
        (a backup walks the id space with it, splitting a range that returns ``limit`` rows)."""
        await self._ensure_loaded(collection)
        rows = await self._read(
            collection,
            "query",
            self._client.query(
                collection,
                filter=f"id >= {int(low)} and id < {int(high)}",
                output_fields=["id", "embedding", "metadata"],
                limit=limit,
                timeout=_BULK_TIMEOUT_S,
            ),
        )
        return [
            {
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
        async with self._load_lock:
            if collection in self._loaded:
                return
            exists = await self._guard(
                "has_collection", self._client.has_collection(collection, timeout=self._timeout)
            )
            if not exists:
                raise StoreUnavailable(
                    f"Milvus collection {collection} does not exist yet: run `funnelgate embed`"
                )
            state = await self._guard(
                "get_load_state", self._client.get_load_state(collection, timeout=self._timeout)
            )
            if getattr(state.get("state"), "name", str(state.get("state"))) != "Loaded":
                await self._guard(
                    "load_collection", self._client.load_collection(collection, timeout=_BULK_TIMEOUT_S)
                )
            self._loaded.add(collection)

    async def _read(self, collection: str, what: str, awaitable: Awaitable[T]) -> T:
        try:
            return await self._guard(what, awaitable)
        except StoreUnavailable:
            # The collection may have been dropped or released by another process: check again next time.
            self._loaded.discard(collection)
            raise

    async def _guard(self, what: str, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except _BAD_ARGUMENT as exc:
            raise BadInput(f"milvus {what} rejected its arguments: {exc}") from exc
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"milvus {what} failed at {self.uri}: {exc}") from exc


def _checked_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadInput(f"vector ids are integers, got {value!r}")
    return int(value)


def _checked_row(row: dict[str, Any], dim: int | None) -> dict[str, Any]:
    try:
        embedding = row["embedding"]
        metadata = row.get("metadata") or {}
        vector_id = _checked_id(row["id"])
    except KeyError as exc:
        raise BadInput(f"a vector row needs id and embedding, missing {exc}") from None
    if dim is not None and len(embedding) != dim:
        raise BadInput(f"row {vector_id}: embedding has {len(embedding)} dims, expected {dim}")
    if not isinstance(metadata, dict):
        raise BadInput(f"row {vector_id}: metadata must be a dict")
    return {"id": vector_id, "embedding": embedding, "metadata": metadata}
