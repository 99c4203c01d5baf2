"""Realtime tests: the API fixture (tests/api) served over HTTP and WebSocket, and event helpers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.cache import keys
from gateway.config import load_settings
from gateway.embedded.redis_server import RedisServer
from gateway.errors import StoreUnavailable
from gateway.services import Services, open_services
from gateway.stores.contracts import Cache
from gateway.web.app import create_app
from tests.api.conftest import counted, services  # noqa: F401  (re-exported fixtures)
from tests.redis_fixtures import numsub as redis_numsub


@pytest.fixture
async def http(services: Services) -> AsyncIterator[TestClient]:  # noqa: F811
    async with TestClient(TestServer(create_app(services))) as client:
        yield client


@pytest.fixture
async def counted_http(counted: Services) -> AsyncIterator[TestClient]:  # noqa: F811
    async with TestClient(TestServer(create_app(counted))) as client:
        yield client


@pytest.fixture
async def empty(tmp_path: Path, redis_env: dict[str, str]) -> AsyncIterator[Services]:
    """Services on an empty data dir: nothing ingested, no default funnel stored (a shop fed only by
    live events)."""
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data"), **redis_env})
    async with open_services(settings) as opened:
        yield opened


@pytest.fixture
async def shared_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server of the test's own, for gateways that share it (and outages of it)."""
    server = RedisServer(tmp_path / "shared-redis")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def page_view(event_id: str, user_id: int, page: str, **extra: Any) -> dict[str, Any]:
    return {"type": "page_view", "eventId": event_id, "userId": user_id, "pageType": page, **extra}


async def post_events(http: TestClient, body: Any) -> tuple[int, dict[str, Any]]:
    resp = await http.post("/events", json=body)
    return resp.status, await resp.json()


class GraphQLSocket:
    """A graphql-transport-ws client over one aiohttp WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._ids = 0

    async def init(self) -> None:
        await self.ws.send_json({"type": "connection_init"})
        assert (await self.ws.receive_json(timeout=10))["type"] == "connection_ack"

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._ids += 1
        op = str(self._ids)
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send_json({"id": op, "type": "subscribe", "payload": payload})
        return op

    async def complete(self, op: str) -> None:
        await self.ws.send_json({"id": op, "type": "complete"})

    async def receive(self, wait_s: float = 20) -> dict[str, Any]:
        while True:
            message = await self.ws.receive_json(timeout=wait_s)
            if message.get("type") == "ping":
                await self.ws.send_json({"type": "pong"})
                continue
            return message


async def open_socket(http: TestClient) -> GraphQLSocket:
    ws = await http.ws_connect("/graphql", protocols=["graphql-transport-ws"])
    socket = GraphQLSocket(ws)
    await socket.init()
    return socket


async def wait_until(condition: Callable[[], bool], within_s: float = 30.0) -> None:
    """Poll until ``condition()`` (a bound, not a timing assertion: it only fails a hung test)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def numsub(cache: Cache) -> int:
    """``PUBSUB NUMSUB`` of the events channel: how many connections are subscribed to it."""
    return await redis_numsub(cache, keys.CHANNEL_EVENTS)


async def wait_for_subscription(cache: Cache, count: int = 1, within_s: float = 30.0) -> None:
    """Until ``count`` connections are subscribed to the events channel (a PUBLISH now reaches them).
    After an outage the cache's breaker refuses calls until its probe closes it: not yet, ask again."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        with contextlib.suppress(StoreUnavailable):
            if await numsub(cache) == count:
                return
        assert asyncio.get_running_loop().time() < deadline, "subscriptions not in place in time"
        await asyncio.sleep(0.01)
