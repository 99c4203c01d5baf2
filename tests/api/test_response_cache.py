"""Whole-response cache over HTTP: identical reads answered from one Redis GET, never staler than their parts."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.cache import keys
from gateway.cache import responses as response_cache
from gateway.web.app import create_app
from tests.redis_fixtures import REDIS_MODES

# One suite, two implementations of the cache: the private Redis and a 3-master Redis Cluster.
pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)

DASHBOARD = '{ dashboard(range: {start: "2015-01-05", end: "2015-01-06"}) { sessions users } }'


@pytest.fixture
async def http(counted):
    async with TestClient(TestServer(create_app(counted))) as client:
        yield client


def response_keys(cache) -> dict[str, int]:
    return {k: ttl for k, ttl in cache.written.items() if k.startswith("query:response:")}


async def post(http, query: str, variables: dict | None = None):
    resp = await http.post("/graphql", json={"query": query, "variables": variables})
    return resp, await resp.read()


async def test_identical_request_is_served_from_redis(http, counted):
    began = int(time.time())
    first, body = await post(http, DASHBOARD)
    ended = int(time.time()) + 1
    assert first.headers.get("X-Cache") == "miss"
    calls = counted.store.total
    second, again = await post(http, DASHBOARD)
    assert second.headers.get("X-Cache") == "hit"
    assert again == body
    assert counted.store.total == calls
    [(key, ttl)] = response_keys(counted.cache).items()
    assert ttl == response_cache.MAX_AGE  # the dashboard's own TTL (a closed past range: 24 h) is longer
    # ...and Redis expires it MAX_AGE after the first answer (an absolute moment: no bound on wall time)
    [expires] = await counted.cache.pipeline([("EXPIRETIME", key)])
    assert began + response_cache.MAX_AGE <= int(expires) <= ended + response_cache.MAX_AGE


async def test_ttl_is_the_shortest_of_the_values_inside(http, counted, monkeypatch):
    monkeypatch.setattr(response_cache, "MAX_AGE", 10**6)
    # An open-ended dashboard lives TTL_DAILY; the user document TTL_QUERY_LONG: the response gets the shorter.
    await post(http, "{ dashboard { sessions } user(id: 4) { device } }")
    [ttl] = response_keys(counted.cache).values()
    assert ttl == keys.TTL_DAILY < keys.TTL_QUERY_LONG


async def test_different_variables_are_different_entries(http, counted):
    query = "query($id: Int!) { user(id: $id) { device } }"
    await post(http, query, {"id": 4})
    resp, _ = await post(http, query, {"id": 5})
    assert resp.headers.get("X-Cache") == "miss"
    assert len(response_keys(counted.cache)) == 2


@pytest.mark.parametrize(
    "query",
    [
        "{ health { status } }",  # live status must never be cached
        "{ users(first: 2) { totalCount } dashboard { sessions } }",  # one uncached root spoils the lot
        '{ funnel(steps: ["home_page", "nowhere"]) { overallConversionRate } }',  # an error
        "{ nope }",  # invalid
    ],
)
async def test_not_cached(http, counted, query):
    await post(http, query)
    resp, _ = await post(http, query)
    assert "X-Cache" not in resp.headers or resp.headers["X-Cache"] != "hit"
    assert response_keys(counted.cache) == {}


async def test_malformed_body_falls_through_to_graphql(http):
    resp = await http.post("/graphql", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert "X-Cache" not in resp.headers


async def test_ingest_invalidation_drops_cached_responses(http, counted):
    await post(http, DASHBOARD)
    assert response_keys(counted.cache)
    await counted.cache.delete_prefixes(keys.DERIVED_PREFIXES)
    resp, _ = await post(http, DASHBOARD)
    assert resp.headers.get("X-Cache") == "miss"


async def test_a_served_dataset_is_answered_from_redis_too(services):
    # After `funnelgate ingest` the store serves a generation (``d{dataset}:`` keys): the entry written
    # under it must be the one the next identical request reads (it used to read the unscoped key: every
    # request of an ingested deployment was a miss that wrote an entry nobody read).
    services.store.wrapped.dataset = "5.abc123"  # type: ignore[attr-defined]
    async with TestClient(TestServer(create_app(services))) as client:
        first, body = await post(client, DASHBOARD)
        second, again = await post(client, DASHBOARD)
    assert (first.headers.get("X-Cache"), second.headers.get("X-Cache")) == ("miss", "hit")
    assert again == body
