"""Only a real WebSocket handshake passes the edge without a credential, and nothing after the edge reads a
missing principal as a role: with authentication on, no principal is no access (the response cache, the
request reader and APQ registration included). /events refuses in its own error shape."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import make_mocked_request

from gateway.cache.stats import CacheStats
from gateway.roles import Role
from gateway.security.limits import Limits
from gateway.security.persisted import PersistedQueries, sha256
from gateway.web.requests import PREPARED, GraphQLRequest, RequestReader
from gateway.web.response_cache import ResponseCache
from tests.security.conftest import bearer, client_of, with_keys

# A user-level query an admin reads in full (the form value is PII): cacheable.
SESSION = '{ session(id: "s1") { id interactions { element value } } }'
HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade"}


async def test_an_upgrade_header_on_a_post_neither_skips_authentication_nor_reads_the_admin_cache(services):
    async with client_of(with_keys(services)) as client:
        admin = await client.post("/graphql", json={"query": SESSION}, headers=bearer(Role.ADMIN))
        assert admin.status == 200 and admin.headers.get("X-Cache") == "miss"  # the admin entry exists
        cached = await client.post("/graphql", json={"query": SESSION}, headers=bearer(Role.ADMIN))
        assert cached.headers.get("X-Cache") == "hit"
        for headers in ({"Upgrade": "websocket"}, HANDSHAKE, {**HANDSHAKE, "Sec-WebSocket-Version": "13"}):
            response = await client.post("/graphql", json={"query": SESSION}, headers=headers)
            assert response.status == 401, headers
            assert "X-Cache" not in response.headers
            body = await response.json()
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" and "data" not in body
        # A GET that carries an operation is no handshake either, with or without Connection: upgrade.
        for headers in ({"Upgrade": "websocket"}, HANDSHAKE):
            response = await client.get("/graphql", params={"query": SESSION}, headers=headers)
            assert response.status == 401, headers


async def test_a_post_with_an_upgrade_header_is_rate_limited_like_any_other(services):
    async with client_of(with_keys(services, rate_limits=(("viewer", 2),))) as client:
        headers = {**bearer(Role.VIEWER), **HANDSHAKE}
        statuses = [
            (await client.post("/graphql", json={"query": "{ health { status } }"}, headers=headers)).status
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_a_real_handshake_still_opens_without_a_credential(services):
    async with client_of(with_keys(services)) as client:
        ws = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"])
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": bearer(Role.VIEWER)["Authorization"]}}
        )
        ack = await ws.receive_json(timeout=10)
        await ws.close()
    assert ack == {"type": "connection_ack", "payload": {"role": "viewer"}}


class _NoCache:
    """A cache nobody may touch: a request without a principal must not reach it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the cache was used ({name}) for a request without a principal")


async def test_without_a_principal_the_response_cache_reads_nothing():
    def cache_of(request: Any) -> Any:
        raise AssertionError("the response cache looked up an entry for a request without a principal")

    responses = ResponseCache(cache_of, frozenset({"health"}), Limits())
    request = make_mocked_request("POST", "/graphql")
    request[PREPARED] = GraphQLRequest("{ health { status } }", None, None, None)
    assert await responses.lookup(request) is None


async def test_without_a_principal_the_reader_reads_and_registers_nothing():
    persisted = PersistedQueries(_NoCache(), CacheStats(), "apq", {})  # type: ignore[arg-type]
    reader = RequestReader(persisted, Limits())
    query = "{ health { status } }"
    extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}})
    # An APQ registration: read with a principal, it would write the text to the cache.
    request = make_mocked_request("GET", "/graphql?" + urlencode({"query": query, "extensions": extensions}))
    assert await reader.prepare(request) is None
    assert PREPARED not in request


async def test_events_refusals_use_the_events_error_shape(services):
    event = [{"type": "page_view", "eventId": "shape-1", "userId": 42, "pageType": "search"}]
    async with client_of(with_keys(services)) as client:
        missing = await client.post("/events", json=event)
        bad = await client.post("/events", json=event, headers={"Authorization": "Bearer nope"})
        viewer = await client.post("/events", json=event, headers=bearer(Role.VIEWER))
        answers = [(r.status, r.content_type, await r.json()) for r in (missing, bad, viewer)]
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        graphql = await client.post("/graphql", json={"query": "{ health { status } }"})
        graphql_body = await graphql.json()
    assert [(status, media, body["code"]) for status, media, body in answers] == [
        (401, "application/json", "UNAUTHENTICATED"),
        (401, "application/json", "UNAUTHENTICATED"),
        (403, "application/json", "FORBIDDEN"),
    ]
    assert all(set(body) == {"error", "code"} and isinstance(body["error"], str) for *_, body in answers)
    assert "viewer" in answers[2][2]["error"]  # says which role it has
    # /graphql keeps the GraphQL shape
    assert graphql.status == 401 and graphql_body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
