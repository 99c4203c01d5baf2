"""HEAD is answered as GET would be (same status and headers, no body) wherever GET is open or served:
uptime monitors probe with HEAD. What GET keeps closed, HEAD does too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.roles import Role
from tests.security.conftest import bearer, client_of, with_keys

# Headers that describe the body a GET would carry, and the pages' own: a HEAD must give the same.
COMPARED = (
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "ETag",
    "Cache-Control",
    "Content-Security-Policy",
    "WWW-Authenticate",
)


def described(response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in COMPARED}


@pytest.mark.parametrize(
    ("path", "headers", "content_type"),
    [
        ("/", {}, "text/html"),
        ("/static/dashboard/app.js", {}, "text/javascript"),
        ("/graphql", {"Accept": "text/html"}, "text/html"),  # GraphiQL, as a browser asks
        ("/graphql", {"Accept": "*/*"}, "text/html"),  # as curl -I and most monitors ask
    ],
)
async def test_open_pages_answer_head_as_get_without_a_credential(
    services, web_assets: Path, path, headers, content_type
):
    async with client_of(with_keys(services)) as client:
        get = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert (get.status, get.content_type) == (200, content_type)
        assert len(await get.read()) > 0
        assert (head.status, head.content_type, await head.read()) == (200, content_type, b"")
        assert described(head) == described(get)


async def test_head_on_graphql_with_a_credential_is_the_graphiql_page_not_405(services, web_assets: Path):
    async with client_of(with_keys(services)) as client:
        headers = {"Accept": "text/html", **bearer(Role.ADMIN)}
        get = await client.get("/graphql", headers=headers)
        head = await client.head("/graphql", headers=headers)
        assert (head.status, head.content_type, await head.read()) == (200, "text/html", b"")
        assert described(head) == described(get)


async def test_head_with_a_query_in_the_url_answers_as_get(services):
    async with client_of(with_keys(services)) as client:
        params = {"query": "{ health { status } }"}
        head = await client.head("/graphql", params=params, headers=bearer(Role.VIEWER))
        assert (head.status, head.content_type, await head.read()) == (200, "application/json", b"")
        get = await client.get("/graphql", params=params, headers=bearer(Role.VIEWER))
        assert (get.status, get.content_type) == (200, "application/json")
        assert (await get.json())["data"]["health"]["status"] in ("ok", "degraded")  # the operation ran
        # A mutation is no more allowed by HEAD than by GET.
        mutation = {"query": "mutation { invalidateCache }"}
        refused = await client.head("/graphql", params=mutation, headers=bearer(Role.ADMIN))
        assert (refused.status, refused.headers["Allow"], await refused.read()) == (405, "POST", b"")


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        ("/graphql", {"query": "{ health { status } }"}, {}),  # data: as closed as GET
        ("/graphql", {}, {"Accept": "application/json"}),  # no page asked for: an API request
        ("/metrics", {}, {}),
    ],
)
async def test_what_get_keeps_closed_head_keeps_closed(services, path, params, headers):
    async with client_of(with_keys(services)) as client:
        get = await client.get(path, params=params, headers=headers)
        head = await client.head(path, params=params, headers=headers)
        assert (get.status, head.status) == (401, 401)
        assert head.headers["WWW-Authenticate"] == "Bearer"
        assert await head.read() == b""
        assert described(head) == described(get)


async def test_graphql_allows_head_and_says_so(services):
    async with client_of(with_keys(services)) as client:
        put = await client.put("/graphql", json={"query": "{ __typename }"}, headers=bearer(Role.ADMIN))
        assert (put.status, put.headers["Allow"]) == (405, "GET, HEAD, POST")
        body = await put.json()
        assert body["errors"][0]["message"] == "PUT is not allowed on /graphql (allowed: GET, HEAD, POST)"


async def test_no_websocket_opens_on_head(services, web_assets: Path):
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "graphql-transport-ws",
        "Accept": "text/html",
    }
    async with client_of(with_keys(services)) as client:
        for credential in ({}, bearer(Role.ADMIN)):
            head = await client.head("/graphql", headers={**upgrade, **credential})
            assert (head.status, head.content_type) == (200, "text/html"), credential  # the page, not 101
            assert "Sec-WebSocket-Accept" not in head.headers


async def test_a_header_byte_that_is_not_utf8_does_not_break_head(services, web_assets: Path):
    # aiohttp keeps such a byte as a surrogate (surrogateescape); a GET copy of the HEAD request made
    # with new headers would re-encode them as UTF-8 and fail. Sent raw: a client library would refuse.
    async with client_of(with_keys(services)) as client:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        try:
            writer.write(
                b"HEAD /graphql HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/html\r\n"
                b"User-Agent: monitor\xe9\r\nConnection: close\r\n\r\n" % client.port
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 30)
        finally:
            writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Type: text/html" in head and body == b""
