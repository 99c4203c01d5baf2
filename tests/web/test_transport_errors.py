"""Every refusal /graphql gives before execution is JSON with a code, for every client: GraphQL clients
(Apollo, urql, graphql-request) parse the body of any answer as JSON, and strawberry's text reasons
("No GraphQL query found in the request", text/plain) broke them. The status stays what it was, and the
media type follows ``Accept`` as for every GraphQL answer (GraphQL over HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.web.app import create_app

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LEGACY = "application/json"
SPEC = "application/graphql-response+json"
QUERY = b'{"query": "{ __typename }"}'

# name -> (method, path, request keyword arguments, status, code, a fragment of the message)
CASES: dict[str, tuple[str, str, dict[str, Any], int, str, str]] = {
    "a body that is not JSON": (
        "post", "/graphql", {"data": b"{nope", "headers": JSON}, 400, "BAD_REQUEST",
        "Unable to parse request body as JSON",
    ),
    "a batch": (
        "post", "/graphql", {"data": b"[]", "headers": JSON}, 400, "BAD_REQUEST", "batches are not supported"
    ),
    "no query in the body": (
        "post", "/graphql", {"data": b"{}", "headers": JSON}, 400, "BAD_REQUEST", "No GraphQL query found"
    ),
    "an empty query": (
        "post", "/graphql", {"data": b'{"query": ""}', "headers": JSON}, 400, "BAD_REQUEST",
        "No GraphQL query found",
    ),
    "a query that is not a string": (
        "post", "/graphql", {"data": b'{"query": 1}', "headers": JSON}, 400, "BAD_REQUEST",
        "`query` must be a string or null, got a number",
    ),
    "a form body": (
        "post", "/graphql", {"data": QUERY, "headers": FORM}, 400, "BAD_REQUEST",
        "Unsupported content type: POST a JSON body with Content-Type: application/json",
    ),
    "a text/plain body": (
        "post", "/graphql", {"data": QUERY, "headers": {"Content-Type": "text/plain"}}, 400, "BAD_REQUEST",
        "Unsupported content type",
    ),
    "another media type naming JSON": (
        "post", "/graphql", {"data": QUERY, "headers": {"Content-Type": "application/jsonx"}}, 415,
        "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type: POST a JSON body",
    ),
    "a GET parameter given twice": (
        "get", "/graphql?query=%7Ba%7D&query=%7Bb%7D", {}, 400, "BAD_REQUEST",
        "the query parameter is given 2 times: send it once",
    ),
    "GET variables that are not JSON": (
        "get", "/graphql?query=%7Ba%7D&variables=nope", {}, 400, "BAD_REQUEST",
        "the variables parameter is not valid JSON",
    ),
    "a GET without a query": ("get", "/graphql", {}, 400, "BAD_REQUEST", "No GraphQL query found"),
    "a WebSocket handshake aiohttp cannot accept": (
        "get", "/graphql", {"headers": {"Upgrade": "websocket", "Connection": "upgrade"}}, 400, "BAD_REQUEST",
        "No GraphQL query found",
    ),
    "an expectation other than 100-continue": (
        "post", "/graphql", {"data": QUERY, "headers": {**JSON, "Expect": "teapot"}}, 417, "EXPECTATION_FAILED",
        "Expect 'teapot' is not supported (only 100-continue)",
    ),
    # Already JSON before: they stay so, with their codes.
    "a mutation over GET": (
        "get", "/graphql?query=mutation%7BinvalidateCache%7BkeysRemoved%7D%7D", {}, 405, "METHOD_NOT_ALLOWED",
        "a GET may only run queries",
    ),
    "a PUT": ("put", "/graphql", {"data": QUERY, "headers": JSON}, 405, "METHOD_NOT_ALLOWED", "PUT is not allowed"),
    "a body over the limit": (
        "post", "/graphql", {"data": b" " * 1_100_000, "headers": JSON}, 413, "PAYLOAD_TOO_LARGE",
        "FUNNEL_MAX_BODY_BYTES",
    ),
}  # fmt: skip
# Without Accept, or with */*, a browser is taken to be visiting: the GraphiQL page answers these.
PAGE_VISITS = {"a GET without a query", "a WebSocket handshake aiohttp cannot accept"}


@pytest.mark.parametrize("accept", [None, LEGACY, "*/*", SPEC])
async def test_every_refusal_before_execution_is_coded_json_in_the_negotiated_type(services, accept):
    wrong = {}
    async with TestClient(TestServer(create_app(services))) as client:
        for name, (method, path, kwargs, status, code, fragment) in CASES.items():
            if name in PAGE_VISITS and accept in (None, "*/*"):
                continue
            headers = {**kwargs.get("headers", {}), **({"Accept": accept} if accept else {})}
            response = await client.request(method, path, **{**kwargs, "headers": headers})
            text = await response.text()
            expected_type = SPEC if accept == SPEC else LEGACY
            try:
                [error] = json.loads(text)["errors"]
            except (ValueError, KeyError, TypeError):
                wrong[name] = (response.status, response.content_type, text[:100])
                continue
            got = (
                response.status,
                response.content_type,
                error["extensions"]["code"],
                fragment in error["message"],
            )
            if got != (status, expected_type, code, True):
                wrong[name] = (*got, error["message"])
    assert wrong == {}


# name -> (body, the field named in the refusal, or None where the body runs)
BODIES: dict[str, tuple[bytes, str | None]] = {
    "query twice": (b'{"query": "{ __typename }", "query": "{ pageTypes }"}', "query"),
    "query twice, once escaped": (b'{"query": "{ __typename }", "\\u0071uery": "{ pageTypes }"}', "query"),
    "operationName twice": (
        b'{"query": "query A { __typename } query B { pageTypes }", "operationName": "A", "operationName": "B"}',
        "operationName",
    ),
    "variables twice": (b'{"query": "{ __typename }", "variables": {}, "variables": {}}', "variables"),
    "extensions twice": (b'{"query": "{ __typename }", "extensions": {}, "extensions": {}}', "extensions"),
    # Only the request object's own fields: a key repeated inside a value, or one the gateway ignores.
    "a key twice inside variables": (b'{"query": "{ __typename }", "variables": {"a": 1, "a": 2}}', None),
    "an unknown field twice": (b'{"query": "{ __typename }", "id": 1, "id": 2}', None),
}


@pytest.mark.parametrize("name", list(BODIES))
async def test_a_request_field_given_twice_in_the_body_is_refused(services, name):
    body, field = BODIES[name]
    async with TestClient(TestServer(create_app(services))) as client:
        response = await client.post("/graphql", data=body, headers=JSON)
        answer = await response.json()
    if field is None:
        assert (response.status, answer["data"]) == (200, {"__typename": "Query"})
        return
    assert response.status == 400
    assert answer == {
        "errors": [
            {
                "message": f"the {field} field is given more than once in the JSON object: send it once",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }


async def test_expect_100_continue_still_runs_and_events_refuse_other_expectations_in_their_shape(services):
    async with TestClient(TestServer(create_app(services))) as client:
        continued = await client.post("/graphql", data=QUERY, headers=JSON, expect100=True)
        assert (continued.status, (await continued.json())["data"]) == (200, {"__typename": "Query"})
        refused = await client.post("/events", data=b"[]", headers={**JSON, "Expect": "teapot"})
        assert refused.status == 417
        assert await refused.json() == {
            "error": "Expect 'teapot' is not supported (only 100-continue)",
            "code": "EXPECTATION_FAILED",
        }
