"""GraphQL over HTTP as the spec says (issue 19), checked without Node: application/graphql-response+json
when the client accepts it, with its status codes and no `data` on request errors; application/json,
byte for byte as before, for everyone else.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.web.app import create_app
from gateway.web.negotiation import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, negotiate

NEW = {"Accept": f"{GRAPHQL_RESPONSE_JSON}, {APPLICATION_JSON};q=0.9"}  # what Apollo Client sends
LEGACY = ({}, {"Accept": APPLICATION_JSON}, {"Accept": "*/*"})

# name -> (POST JSON body, status under +json, code of the first error or None)
CASES: dict[str, tuple[dict[str, Any], int, str | None]] = {
    "ok": ({"query": "{ health { status } }"}, 200, None),
    "parse failure": ({"query": "{ health { status "}, 400, "GRAPHQL_PARSE_FAILED"),
    "validation failure": ({"query": "{ nope }"}, 400, "GRAPHQL_VALIDATION_FAILED"),
    "variable coercion failure": (
        {"query": "query($id: Int!) { user(id: $id) { id } }", "variables": {"id": "x"}},
        400,
        "BAD_USER_INPUT",
    ),
    "no single operation": (
        {"query": "query A { health { status } } query B { __typename }"},
        400,
        "BAD_REQUEST",
    ),
    "field error": ({"query": "{ user(id: 999) { id } }"}, 200, "NOT_FOUND"),
}


@pytest.fixture
async def client(services):
    async with TestClient(TestServer(create_app(services, response_cache=False))) as c:
        yield c


async def test_the_spec_media_type_and_its_status_codes(client):
    for name, (body, status, code) in CASES.items():
        response = await client.post("/graphql", json=body, headers=NEW)
        answer = await response.json(content_type=None)
        assert (response.status, response.content_type) == (status, GRAPHQL_RESPONSE_JSON), name
        assert response.charset == "utf-8"
        assert ("data" in answer) is (status == 200), (name, answer)  # request errors carry no data
        assert [e["extensions"]["code"] for e in answer.get("errors", [])][:1] == ([code] if code else []), (
            name
        )


async def test_legacy_clients_get_what_they_always_got(client):
    for name, (body, _, code) in CASES.items():
        answers = []
        for headers in LEGACY:
            response = await client.post("/graphql", json=body, headers=headers)
            assert (response.status, response.content_type) == (200, APPLICATION_JSON), name
            answers.append(await response.read())
        assert answers[0] == answers[1] == answers[2], name
        answer = json.loads(answers[0])
        assert "data" in answer, name  # null for request errors, as before
        if code is None:
            assert "errors" not in answer


async def test_requests_that_are_not_graphql(client):
    json_body = {"Content-Type": "application/json"}
    response = await client.post("/graphql", data=b"{nope", headers={**NEW, **json_body})
    assert (response.status, response.content_type) == (400, GRAPHQL_RESPONSE_JSON)
    assert (await response.json(content_type=None))["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    response = await client.post("/graphql", data=b"{nope", headers=json_body)
    assert (response.status, response.content_type) == (400, APPLICATION_JSON)
    assert await response.json() == {
        "errors": [{"message": "Unable to parse request body as JSON", "extensions": {"code": "BAD_REQUEST"}}]
    }

    response = await client.put("/graphql", json={"query": "{ __typename }"}, headers=NEW)
    assert (response.status, response.headers["Allow"]) == (405, "GET, HEAD, POST")
    response = await client.get("/graphql", params={"query": "{ __typename }"}, headers=NEW)
    assert (response.status, response.content_type) == (200, GRAPHQL_RESPONSE_JSON)


async def test_a_cached_answer_keeps_the_negotiated_type(services):
    query = {"query": "{ funnel { overallConversionRate } }"}
    async with TestClient(TestServer(create_app(services))) as client:
        seen = []
        for headers in (NEW, NEW, {}):
            response = await client.post("/graphql", json=query, headers=headers)
            seen.append((response.headers.get("X-Cache"), response.content_type, await response.read()))
    assert [(hit, media) for hit, media, _ in seen] == [
        ("miss", GRAPHQL_RESPONSE_JSON),
        ("hit", GRAPHQL_RESPONSE_JSON),
        ("hit", APPLICATION_JSON),
    ]
    assert seen[0][2] == seen[1][2] == seen[2][2]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/*", APPLICATION_JSON),
        ("application/json", APPLICATION_JSON),
        ("text/html", APPLICATION_JSON),  # nothing acceptable: the spec allows the default instead of 406
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {APPLICATION_JSON}", GRAPHQL_RESPONSE_JSON),  # graphql-http
        (f"{APPLICATION_JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),  # a tie: the spec's type
        (f"{APPLICATION_JSON}, {GRAPHQL_RESPONSE_JSON};q=0.5", APPLICATION_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0, */*", APPLICATION_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, */*;q=0.1", GRAPHQL_RESPONSE_JSON),
        (f"application/*;q=0.5, {GRAPHQL_RESPONSE_JSON};q=0.4", APPLICATION_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=nonsense, {APPLICATION_JSON}", APPLICATION_JSON),
    ],
)
def test_negotiate(accept, expected):
    assert negotiate(accept) == expected
