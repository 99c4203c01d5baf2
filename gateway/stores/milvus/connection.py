"""One pymilvus ``AsyncMilvusClient`` and the translation of its errors into the gateway's.

The same code serves both modes: a URI ending in ``.db`` starts Milvus Lite in-process on that directory
(one process per directory, it holds a file lock), anything else is a server URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
from pymilvus import AsyncMilvusClient
from pymilvus.exceptions import DataTypeNotMatchException, MilvusException, ParamError

from gateway.errors import BadInput, StoreUnavailable

BULK_TIMEOUT_S = 600.0  # flush / index build on 100k+ rows takes seconds, not milliseconds
UNREACHABLE = (MilvusException, grpc.RpcError, OSError, asyncio.TimeoutError)
_BAD_ARGUMENT = (ParamError, DataTypeNotMatchException)

T = TypeVar("T")
log = logging.getLogger(__name__)


class _QuietLiteIndexWait(logging.Filter):
    """Drop the ERROR tracebacks of the known-harmless Lite index wait (pymilvus#3711): pymilvus logs the
    UNIMPLEMENTED answer, and Lite's in-process gRPC server logs the NotImplementedError behind it.

    And those of an alias that does not exist: every vector read resolves its alias first
    (``MilvusIndex.resolve``), which answers "run funnelgate embed" (UNAVAILABLE) when there is none. Before
    the first embed each such request logged an ERROR of ~20 lines from pymilvus beside that one WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "UNIMPLEMENTED" in message and "index]" in message:
            return False
        if "[describe_alias]" in message and "does not exist" in message:
            return False
        tb = record.exc_info[2] if record.exc_info else None
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is None or tb.tb_frame.f_code.co_name != "AllocTimestamp"


for _logger in ("pymilvus.decorators", "grpc._server"):
    logging.getLogger(_logger).addFilter(_QuietLiteIndexWait())


def is_lite(uri: str) -> bool:
    return uri.endswith(".db") and "://" not in uri


# pymilvus pings every 10 s even when idle; Milvus Lite's gRPC server allows one ping per 5 min, so an
# idle gateway got GOAWAY "too_many_pings" (an E-level line from gRPC's C core and a reconnect) within a
# minute. A local server (its .db directory, or its unix socket) cannot vanish behind a NAT or a proxy:
# ping rarely. A Milvus server over TCP keeps pymilvus' own keepalive.
_LOCAL_KEEPALIVE = {"grpc.keepalive_time_ms": 600_000}


def _is_local(uri: str) -> bool:
    return is_lite(uri) or uri.startswith("unix:")


class MilvusConnection:
    def __init__(self, client: AsyncMilvusClient, uri: str, timeout_s: float) -> None:
        self.client = client
        self.uri = uri
        self.timeout = timeout_s
        self._closed = False

    @classmethod
    async def open(cls, uri: str, timeout_s: float) -> MilvusConnection:
        try:
            # Milvus Lite starts its in-process server inside the constructor: keep that off the loop.
            options = {"grpc_options": _LOCAL_KEEPALIVE} if _is_local(uri) else {}
            client = await asyncio.to_thread(AsyncMilvusClient, uri, timeout=timeout_s, **options)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"cannot open Milvus at {uri}: {exc}") from exc
        return cls(client, uri, timeout_s)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.client.close()
        except UNREACHABLE as exc:
            log.debug("closing the Milvus client failed: %s", exc)
        if is_lite(self.uri):
            # The Lite server (and its directory lock) would otherwise live until the process exits.
            from milvus_lite.server_manager import server_manager_instance

            await asyncio.to_thread(server_manager_instance.release_server, self.uri)

    async def guard(self, what: str, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except _BAD_ARGUMENT as exc:
            raise BadInput(f"milvus {what} rejected its arguments: {exc}") from exc
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"milvus {what} failed at {self.uri}: {exc}") from exc

    async def has(self, collection: str) -> bool:
        """A collection or an alias of that name exists."""
        return bool(
            await self.guard("has_collection", self.client.has_collection(collection, timeout=self.timeout))
        )

    async def collections(self) -> list[str]:
        """Collection names (aliases are not listed)."""
        names: Any = await self.guard("list_collections", self.client.list_collections(timeout=self.timeout))
        return [str(n) for n in names]
