"""A body that does not match its ``Content-Encoding`` is the client's mistake: 400 ``BAD_REQUEST`` in the
route's error shape, on /graphql and on /events (it was a 500 and two tracebacks in the log)."""

from __future__ import annotations

import gzip
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.web.app import create_app

QUERY = b'{"query": "{ __typename }"}'
REASON = (
    "the request body could not be read as its headers describe it: "
    "Can not decode content-encoding: {encoding}"
)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_is_not_its_content_encoding_is_a_coded_400_on_graphql(
    http: TestClient, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    with caplog.at_level(logging.INFO):
        response = await http.post("/graphql", data=QUERY, headers=headers)
    assert (response.status, response.headers.get("Connection")) == (400, "close")
    assert await response.json() == {
        "errors": [{"message": REASON.format(encoding=encoding), "extensions": {"code": "BAD_REQUEST"}}]
    }
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_body_that_is_not_its_content_encoding_is_a_coded_400_on_events(http: TestClient) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = await http.post("/events", data=b"[{}]", headers=headers)
    assert response.status == 400
    assert await response.json() == {"error": REASON.format(encoding="gzip"), "code": "BAD_REQUEST"}


async def test_a_body_in_its_content_encoding_is_read(http: TestClient) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = await http.post("/graphql", data=gzip.compress(QUERY), headers=headers)
    assert response.status == 200
    assert (await response.json())["data"] == {"__typename": "Query"}


async def test_a_parser_error_raised_while_reading_is_a_coded_400(services) -> None:
    # aiohttp's pure-Python parser (AIOHTTP_NO_EXTENSIONS) raises its own error for broken chunking
    # when the body is read, not RequestPayloadError; a handler standing in for the read raises it.
    from aiohttp.http_exceptions import TransferEncodingError

    async def reads_a_broken_body(request: web.Request) -> web.Response:
        raise TransferEncodingError("Not enough data to satisfy transfer length header.")

    app = create_app(services)
    app.router.add_post("/events-broken", reads_a_broken_body)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            "/events-broken", data=b"[]", headers={"Content-Type": "application/json"}
        )
        body = await response.json()
    assert (response.status, response.headers.get("Connection")) == (400, "close")
    reason = "Not enough data to satisfy transfer length header."
    assert body["errors"] == [
        {
            "message": f"the request body could not be read as its headers describe it: {reason}",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]
