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


async def test_datetimes_carry_their_utc_offset_fresh_and_cached(services):
    # Issue 9, item 5: "2015-01-02T09:00:00" read as local time is hours off outside UTC.
    query = """{ session(id: "s3") { startTime endTime visits { timestamp } interactions { timestamp } }
                 journey(userId: 3) { visits { timestamp } } }"""
    answers = []
    for response_cache in (False, True):
        async with TestClient(TestServer(create_app(services, response_cache=response_cache))) as client:
            # computed, then from the loaders' Redis entries; then stored, then a whole cached response
            for _ in range(2):
                response = await client.post("/graphql", json={"query": query})
                answers.append((await response.json(), response.headers.get("X-Cache")))
    first = answers[0][0]
    assert all(body == first for body, _ in answers)
    assert answers[-1][1] == "hit"
    session = first["data"]["session"]
    stamps = [session["startTime"], session["endTime"]]
    stamps += [v["timestamp"] for v in session["visits"] + session["interactions"]]
    stamps += [v["timestamp"] for v in first["data"]["journey"]["visits"]]
    # s3 (tests/api/fixture_data.py): 09:00 to 09:05 on 2015-01-02; visits 09:00, 09:01, 09:04; its
    # form 09:04:30; user 3's journey is those three visits. Every stamp, to the hour: none shifted.
    visits = ["09:00:00", "09:01:00", "09:04:00"]
    assert stamps == [
        f"2015-01-02T{t}.000000+00:00" for t in ["09:00:00", "09:05:00", *visits, "09:04:30", *visits]
    ]
