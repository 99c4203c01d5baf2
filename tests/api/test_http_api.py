"""The same schema over HTTP: aiohttp's test server on the real app."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from pytest import approx

from gateway.web.app import create_app
from tests.api.conftest import run


async def test_funnel_over_http_matches_run_query(services):
    query = "{ funnel(filter: {device: MOBILE}) { overallConversionRate steps { name users } } }"
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.post("/graphql", json={"query": query})
        assert response.status == 200
        body = await response.json()
        again = await client.post("/graphql", json={"query": query})  # served from Redis this time
        assert await again.json() == body
    assert body["data"]["funnel"]["overallConversionRate"] == approx(0.5)
    assert [s["users"] for s in body["data"]["funnel"]["steps"]] == [2, 2, 1, 1]
    assert body == await run(services, query)


async def test_errors_over_http_carry_codes(services):
    query = "query($id: Int!) { user(id: $id) { id } }"
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.post("/graphql", json={"query": query, "variables": {"id": 999}})
        body = await response.json()
    assert body["data"] == {"user": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert body == await run(services, query, {"id": 999})
