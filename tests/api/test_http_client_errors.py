"""What a client sends wrong is a 4xx or a GraphQL error with a client-side code, never a 500.

Each case once answered HTTP 500 or INTERNAL_SERVER_ERROR, or ran the wrong operation (issue 9, item 3).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from gateway.web.app import create_app
from gateway.web.negotiation import GRAPHQL_RESPONSE_JSON
from gateway.web.query_runner import run_query
from tests.api.conftest import error_codes, run

CLIENT_CODES = {
    "BAD_REQUEST",
    "BAD_USER_INPUT",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "NOT_FOUND",
}
JSON = {"Content-Type": "application/json"}
SENTIMENT = "query($p: String!) { sentiment(pageType: $p) { texts } }"
TRACK = (
    b'{"query": "mutation($e: [EventInput!]!) { trackEvents(events: $e) { accepted } }", "variables": {"e": '
    b'[{"type": "conversion", "userId": 1, "pageType": "payment_confirmation_page", %s}]}}'
)
TWO_OPERATIONS = "query A { health { status } } query B { funnel { overallConversionRate } }"

# name -> (POST keyword arguments, expected status, expected code or a fragment of the 4xx text)
POSTS: dict[str, tuple[dict[str, Any], int, str]] = {
    "body is a JSON string": ({"data": b'"x"', "headers": JSON}, 400, "expected a JSON object, got a string"),
    "body is a JSON number": ({"data": b"12", "headers": JSON}, 400, "expected a JSON object, got a number"),
    "body is JSON null": ({"data": b"null", "headers": JSON}, 400, "expected a JSON object, got null"),
    "a form body (curl -d without a Content-Type)": (
        {
            "data": b'{"query": "{ health { status } }"}',
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        400,
        "Unsupported content type: POST a JSON body with Content-Type: application/json",
    ),
    "body is not UTF-8": (
        {"data": b'{"query": "{ health { status } }\xff"}', "headers": JSON},
        400,
        "not valid UTF-8",
    ),
    "lone surrogate in a string variable": (
        {"data": json.dumps({"query": SENTIMENT, "variables": {"p": "\ud800"}}).encode(), "headers": JSON},
        400,
        "lone UTF-16 surrogate",
    ),
    # Python's json module reads NaN, Infinity and -Infinity, and 1e400 as infinity: none is JSON (RFC
    # 8259), and POST /events refused the same body as "not valid JSON" while /graphql ran it.
    "NaN in a Float variable": (
        {"data": b'{"query": "query($m: Float) { pageTypes }", "variables": {"m": NaN}}', "headers": JSON},
        400,
        "the JSON holds NaN, which is not a JSON value (RFC 8259)",
    ),
    "Infinity in a JSON-typed event field": (
        {"data": TRACK % b'"value": Infinity', "headers": JSON},
        400,
        "the JSON holds Infinity, which is not a JSON value (RFC 8259)",
    ),
    "-Infinity in a JSON-typed event field": (
        {"data": TRACK % b'"timestamp": -Infinity', "headers": JSON},
        400,
        "the JSON holds -Infinity, which is not a JSON value (RFC 8259)",
    ),
    "a number past a double's range": (
        {"data": TRACK % b'"value": 1e400', "headers": JSON},
        400,
        "the JSON number 1e400 is out of a double's range",
    ),
    "subscription over POST": (
        {"json": {"query": "subscription { health(count: 1) { status } }"}},
        200,
        "BAD_REQUEST",
    ),
    "two operations, no operationName": ({"json": {"query": TWO_OPERATIONS}}, 200, "BAD_REQUEST"),
    "syntax error": ({"json": {"query": "{ health { status "}}, 200, "GRAPHQL_PARSE_FAILED"),
    "variable of the wrong type": (
        {"json": {"query": "query($id: Int!) { user(id: $id) { id } }", "variables": {"id": "x"}}},
        200,
        "BAD_USER_INPUT",
    ),
    "null variable for a non-null argument with a default": (
        {"json": {"query": "query($n: Int) { users(first: $n) { totalCount } }", "variables": {"n": None}}},
        200,
        "BAD_USER_INPUT",
    ),
    "impossible date variable": (
        {
            "json": {
                "query": 'query($d: Date!) { sentiment(pageType: "search_page", date: $d) { texts } }',
                "variables": {"d": "2015-02-30"},
            }
        },
        200,
        "BAD_USER_INPUT",
    ),
}

GETS: dict[str, tuple[dict[str, str], int, str]] = {
    "NaN in GET variables": (
        {"query": SENTIMENT, "variables": '{"p": NaN}'},
        400,
        "the JSON holds NaN, which is not a JSON value (RFC 8259)",
    ),
    "subscription over GET": (
        {"query": "subscription { health(count: 1) { status } }"},
        200,
        "BAD_REQUEST",
    ),
    "two operations over GET": ({"query": TWO_OPERATIONS}, 200, "BAD_REQUEST"),
    "lone surrogate in GET variables": (
        {"query": SENTIMENT, "variables": json.dumps({"p": "\ud800"})},
        400,
        "lone UTF-16 surrogate",
    ),
    "GET variables not an object": ({"query": SENTIMENT, "variables": '"x"'}, 400, "object"),
}

# The same parameter twice: aiohttp's get() ran the first, silently (a proxy or cache may read the last).
REPEATED_GETS = {
    "query": "query=%7B%20pageTypes%20%7D&query=%7B%20health%20%7B%20status%20%7D%20%7D",
    "operationName": "query=query%20A%20%7B%20pageTypes%20%7D&operationName=A&operationName=B",
    "variables": "query=%7B%20pageTypes%20%7D&variables=%7B%7D&variables=%7B%7D&variables=%7B%7D",
    "extensions": "query=%7B%20pageTypes%20%7D&extensions=%7B%7D&extensions=%7B%7D",
}


@pytest.mark.parametrize(
    ("name", "times"), [("query", 2), ("operationName", 2), ("variables", 3), ("extensions", 2)]
)
async def test_a_get_parameter_given_twice_is_refused(services, name, times):
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.get(f"/graphql?{REPEATED_GETS[name]}")
        text = await response.text()
    assert response.status == 400, text
    assert f"the {name} parameter is given {times} times: send it once" in text


def _mismatch(status: int, text: str, expected_status: int, expected: str) -> str | None:
    """None when the answer is the expected one, else what came back."""
    if status == expected_status == 200:
        body = json.loads(text)
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
        if body["data"] is None and codes == [expected]:
            return None
    elif status == expected_status and expected in text:
        return None
    return f"{status} {text[:200]}"


async def test_client_mistakes_over_http_are_client_errors(services):
    wrong = {}
    async with TestClient(TestServer(create_app(services))) as client:
        for name, (kwargs, expected_status, expected) in POSTS.items():
            response = await client.post("/graphql", **kwargs)
            wrong[name] = _mismatch(response.status, await response.text(), expected_status, expected)
        for name, (params, expected_status, expected) in GETS.items():
            response = await client.get("/graphql", params=params)
            wrong[name] = _mismatch(response.status, await response.text(), expected_status, expected)
        assert {name: got for name, got in wrong.items() if got is not None} == {}
        # The named operation of the same document still runs.
        response = await client.post("/graphql", json={"query": TWO_OPERATIONS, "operationName": "A"})
        body = await response.json()
        assert body.pop("extensions")["cost"]["requested"] > 0  # every answer says what it cost
        assert body == {"data": {"health": {"status": "ok"}}}


async def test_a_null_variable_for_a_non_null_argument_says_null_over_http(services):
    # Validation lets a nullable variable reach `first: Int! = 100` (it has a default); graphql-core
    # refuses the null only while executing, where its message said Python's None and had no code. The
    # guard refuses it before execution (a request error: no path), in graphql-core's words made GraphQL's.
    query = "query($n: Int) { users(first: $n) { totalCount } }"
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.post("/graphql", json={"query": query, "variables": {"n": None}})
        body = await response.json()
        left_out = await client.post("/graphql", json={"query": query, "variables": {}})
        default = await left_out.json()
    assert response.status == 200
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"fields": ["users"], "code": "BAD_USER_INPUT"}
    assert error["message"] == (
        "Argument 'first' got null from variable '$n', but it is a non-null Int!: "
        "leave the variable out for the default"
    )
    assert "path" not in error
    assert default["data"] == {"users": {"totalCount": 6}}  # the fixture's six users, first: 100


async def test_every_graphql_error_code_is_a_client_code_or_internal(services):
    # The same cases without HTTP (funnelgate query, scripts): the same codes.
    for query in (TWO_OPERATIONS, "subscription { health(count: 1) { status } }", "{ health { status "):
        result = await run(services, query)
        assert result["data"] is None
        assert set(error_codes(result)) <= CLIENT_CODES, result


async def test_a_lone_surrogate_over_websocket_closes_with_4400(services):
    payload = {"query": "subscription { health(count: 1) { status } }", "variables": {"p": "\ud800"}}
    async with (
        TestClient(TestServer(create_app(services))) as client,
        client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_str(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.CLOSE
    assert message.data == 4400


async def test_several_operations_without_a_name_are_refused_over_websocket_as_over_http(services):
    two = "subscription A { health(count: 1) { status } } subscription B { health(count: 1) { status } }"
    async with (
        TestClient(TestServer(create_app(services))) as client,
        client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": two}})
        refused = await ws.receive_json(timeout=5)
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": two, "operationName": "B"}})
        named = await ws.receive_json(timeout=5)
    assert refused["type"] == "error" and refused["id"] == "1"
    [error] = refused["payload"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["message"] == "the document holds 2 operations: name the one to run in operationName"
    assert named["type"] == "next" and named["id"] == "2"
    assert named["payload"]["data"]["health"]["status"]


async def test_a_mutation_over_get_is_405_with_allow_post(services):
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.get("/graphql", params={"query": "mutation { invalidateCache(scope: ALL) }"})
        body = await response.json()
    assert response.status == 405 and response.headers["Allow"] == "POST"
    [error] = body["errors"]
    assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert error["message"] == (
        "mutations are not allowed when using GET (a GET may only run queries): send it with POST"
    )


UNKNOWN_NAME = 'Unknown operation named "C".'


@pytest.mark.parametrize(("accept", "status"), [("application/json", 200), (GRAPHQL_RESPONSE_JSON, 400)])
async def test_an_unknown_operation_name_is_a_request_error_as_two_unnamed_are(services, accept, status):
    # strawberry answered it 400 whatever the media type; the other request errors (several operations
    # and no operationName) follow GraphQL over HTTP: 200 for application/json, 400 for its own type.
    async with TestClient(TestServer(create_app(services))) as client:
        responses = [
            await client.post("/graphql", json=payload, headers={"Accept": accept})
            for payload in ({"query": TWO_OPERATIONS, "operationName": "C"}, {"query": TWO_OPERATIONS})
        ]
        unknown, unnamed = [(r.status, await r.json(content_type=None)) for r in responses]
    assert (unknown[0], unnamed[0]) == (status, status)
    assert unknown[1]["errors"] == [{"message": UNKNOWN_NAME, "extensions": {"code": "BAD_REQUEST"}}]
    assert unknown[1].get("data") == unnamed[1].get("data")  # none ran


async def test_an_unknown_operation_name_is_a_coded_request_error_in_a_one_shot_query(services):
    # funnelgate query (local) runs this: it raised strawberry's CannotGetOperationTypeError.
    result = await run_query(services, TWO_OPERATIONS, None, "C")
    assert result == {
        "data": None,
        "errors": [{"message": UNKNOWN_NAME, "extensions": {"code": "BAD_REQUEST"}}],
    }


async def test_an_unknown_operation_name_is_echoed_as_json_and_cut_over_http(services):
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.post("/graphql", json={"query": TWO_OPERATIONS, "operationName": "x" * 300})
        body = await response.json()
    # The echo is JSON cut to 200 characters: the opening quote and 199 x, then the name's length.
    assert body["errors"][0]["message"] == 'Unknown operation named "' + "x" * 199 + "... (300 characters)."


async def test_a_document_without_an_operation_is_a_coded_request_error(services):
    fragments_only = "fragment F on Query { __typename }"
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.post("/graphql", json={"query": fragments_only})
        body = await response.json()
    expected = [{"message": "Can't get GraphQL operation type", "extensions": {"code": "BAD_REQUEST"}}]
    assert (response.status, body["errors"]) == (200, expected)
    assert (await run_query(services, fragments_only))["errors"] == expected  # funnelgate query raised
