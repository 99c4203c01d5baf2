"""The aiohttp app on the real embedded stack: /healthz up and down, GraphQL over HTTP and WebSocket."""

from __future__ import annotations

from typing import cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.embedded.redis_server import RedisServer
from gateway.jobs.embed import embed_all
from gateway.services import NO_EMBEDDINGS
from gateway.stores.contracts import DocumentStore
from gateway.web.app import create_app
from tests.analytics.journeys import MemoryStore, varied_journeys


@pytest.fixture
async def client(services):
    async with TestClient(TestServer(create_app(services))) as c:
        yield c


async def test_healthz_reports_every_dependency_up(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    deps = body["dependencies"]
    assert {role: d["backend"] for role, d in deps.items()} == {
        "document_store": "duckdb",
        "vector_index": "milvus",
        "cache": "redis",
    }
    assert all(d["status"] == "up" for d in deps.values())


async def test_health_says_there_are_no_embeddings_yet_then_which_version_serves(client, services):
    query = "{ health { status dependencies { role up embeddings } } }"
    resp = await client.get("/healthz")
    body = await resp.json()
    # Nothing embedded is not an outage: still 200, and the vector index says what is missing.
    assert resp.status == 200 and body["status"] == "ok"
    assert body["dependencies"]["vector_index"]["embeddings"] == NO_EMBEDDINGS
    assert "embeddings" not in body["dependencies"]["document_store"]
    answer = await (await client.post("/graphql", json={"query": query})).json()
    embeddings = {d["role"]: d["embeddings"] for d in answer["data"]["health"]["dependencies"]}
    assert embeddings == {"document_store": None, "vector_index": NO_EMBEDDINGS, "cache": None}

    await embed_all(
        cast(DocumentStore, MemoryStore(varied_journeys(40))), services.vectors, services.settings.model_dir
    )
    await embed_all(
        cast(DocumentStore, MemoryStore(varied_journeys(40, seed=1))),
        services.vectors,
        services.settings.model_dir,
    )
    body = await (await client.get("/healthz")).json()
    assert body["dependencies"]["vector_index"]["embeddings"] == "model version 2"


async def test_healthz_503_when_redis_stops(tmp_path, services):
    # A Redis of our own, so stopping it doesn't disturb the fixture's teardown.
    from gateway.stores.redis.cache import RedisCache

    server = RedisServer(tmp_path / "own-redis")
    cache = RedisCache.connect(await server.start(), timeout_s=0.5)
    services.cache = cache
    try:
        async with TestClient(TestServer(create_app(services))) as c:
            assert (await c.get("/healthz")).status == 200
            await server.stop()
            resp = await c.get("/healthz")
            assert resp.status == 503
            body = await resp.json()
            assert body["status"] == "degraded"
            assert body["dependencies"]["cache"]["status"] == "down"
            assert body["dependencies"]["document_store"]["status"] == "up"
    finally:
        await cache.close()
        await server.stop()


async def test_graphql_post_and_get(client):
    query = "{ health { status dependencies { role backend up } } }"
    resp = await client.post("/graphql", json={"query": query})
    assert resp.status == 200
    body = await resp.json()
    assert "errors" not in body
    assert body["data"]["health"]["status"] == "ok"
    roles = {d["role"]: d["up"] for d in body["data"]["health"]["dependencies"]}
    assert roles == {"document_store": True, "vector_index": True, "cache": True}

    resp = await client.get("/graphql", params={"query": "{ health { status } }"})
    assert (await resp.json())["data"] == {"health": {"status": "ok"}}


async def test_graphiql_served_to_browsers(client):
    resp = await client.get("/graphql", headers={"Accept": "text/html"})
    assert resp.status == 200
    assert "graphiql" in (await resp.text()).lower()


async def test_graphql_validation_error_has_code(client):
    resp = await client.post("/graphql", json={"query": "{ nope }"})
    body = await resp.json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_subscription_over_graphql_transport_ws(client):
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { health(intervalSeconds: 0.1, count: 2) { status } }"},
            }
        )
        first = await ws.receive_json(timeout=5)
        second = await ws.receive_json(timeout=5)
        done = await ws.receive_json(timeout=5)
    assert first == {"id": "1", "type": "next", "payload": {"data": {"health": {"status": "ok"}}}}
    assert second["payload"]["data"]["health"]["status"] == "ok"
    assert done == {"id": "1", "type": "complete"}


async def test_subscription_bad_argument_is_an_error(client):
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init"})
        await ws.receive_json(timeout=5)
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { health(count: -1) { status } }"},
            }
        )
        msg = await ws.receive_json(timeout=5)
    errors = msg["payload"]["errors"] if msg["type"] == "next" else msg["payload"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
