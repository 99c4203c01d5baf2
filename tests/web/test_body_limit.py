"""A /graphql body over the limit (``FUNNEL_MAX_BODY_BYTES``, 1 MiB by default) is answered 413 with code
``PAYLOAD_TOO_LARGE`` in the route's error shape, naming the limit and its setting (aiohttp answered
``Maximum request body size 1048576 exceeded.`` as text/plain). A body of exactly the limit is read."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from gateway.config import Settings
from gateway.web.edge import body_too_large
from gateway.web.negotiation import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON

LIMIT = 1_048_576
MESSAGE = "the request body is larger than 1,048,576 bytes (FUNNEL_MAX_BODY_BYTES)"


def body_of(size: int) -> bytes:
    """A request for ``{ __typename }`` whose JSON body is exactly ``size`` bytes."""
    empty = json.dumps({"query": "{ __typename }", "variables": {"x": ""}}).encode()
    body = json.dumps({"query": "{ __typename }", "variables": {"x": "a" * (size - len(empty))}}).encode()
    assert len(body) == size
    return body


@pytest.mark.parametrize("accept", [None, APPLICATION_JSON, GRAPHQL_RESPONSE_JSON])
async def test_a_body_over_the_limit_is_a_coded_413(http: TestClient, accept) -> None:
    headers = {"Content-Type": "application/json", **({"Accept": accept} if accept else {})}
    response = await http.post("/graphql", data=body_of(LIMIT + 1), headers=headers)
    assert response.status == 413
    assert response.content_type == (accept or APPLICATION_JSON)
    assert await response.json(content_type=None) == {
        "errors": [{"message": MESSAGE, "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]
    }


@pytest.mark.parametrize("accept", [APPLICATION_JSON, GRAPHQL_RESPONSE_JSON])
async def test_a_body_of_exactly_the_limit_is_answered(http: TestClient, accept) -> None:
    headers = {"Content-Type": "application/json", "Accept": accept}
    response = await http.post("/graphql", data=body_of(LIMIT), headers=headers)
    assert response.status == 200, await response.text()
    assert (await response.json(content_type=None))["data"] == {"__typename": "Query"}


def test_the_message_names_the_setting_that_sets_the_limit() -> None:
    request = make_mocked_request("POST", "/graphql")
    raised = replace(Settings(), max_query_chars=500_000)  # 4 x 500,000 is above 1 MiB
    answer = json.loads(body_too_large(request, raised).text or "")
    assert answer["errors"][0]["message"] == (
        "the request body is larger than 2,000,000 bytes (4 x FUNNEL_MAX_QUERY_CHARS, above FUNNEL_MAX_BODY_BYTES)"
    )
    smaller = replace(Settings(), max_body_bytes=100_000)
    answer = json.loads(body_too_large(request, smaller).text or "")
    assert answer["errors"][0]["message"] == (
        "the request body is larger than 100,000 bytes (FUNNEL_MAX_BODY_BYTES)"
    )
