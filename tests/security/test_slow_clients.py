"""Slow clients against the app served as ``funnelgate serve`` serves it (``server.app_runner``), on
an ephemeral port, with raw sockets: a request head trickled a byte at a time is cut off after
FUNNEL_HEADER_TIMEOUT_S, a body that stalls or trickles is answered 408 after FUNNEL_BODY_TIMEOUT_S,
and a normal client on another connection is served meanwhile.

Without these deadlines aiohttp kept such a head for 3630 s (its keep-alive default) and a handler
waited for the body as long as the client kept the connection, so every bound below (10 s, against
0.5 s settings) fails without them; none says how fast the deadline fires."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.services import Services
from gateway.web import body_deadline
from gateway.web.app import create_app
from gateway.web.server import app_runner
from tests.security.conftest import with_settings

BOUND_S = 10  # "closed eventually": generous against 0.5 s settings on two busy cores
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n"


@asynccontextmanager
async def served(opened: Services) -> AsyncIterator[int]:
    """The app on a real listening socket, with serve()'s runner options; yields the port."""
    runner = app_runner(create_app(opened), opened.settings)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionError:
        pass
    return received


async def trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    """Send ``data`` a byte at a time until it is sent or the server hangs up."""
    with suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every_s)


async def served_normally(port: int) -> tuple[int, object]:
    """A normal client's answers on connections of its own: /healthz, then a query's status and data."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
            assert health.status in (200, 503)
        async with http.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"}) as resp:
            return resp.status, (await resp.json())["data"]


def split_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


# 1. The request head


async def test_a_head_sent_a_byte_at_a_time_is_cut_off_without_an_answer(services):
    opened = with_settings(services, header_timeout_s=0.5)
    async with served(opened) as port:
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        # 400 bytes at one per 0.2 s would take 80 s to finish the head.
        senders = [asyncio.create_task(trickle(w, HEAD, 0.2)) for _, w in connections]
        try:
            received = await asyncio.wait_for(
                asyncio.gather(*(until_closed(r) for r, _ in connections), served_normally(port)), BOUND_S
            )
        finally:
            for sender in senders:
                sender.cancel()
            for _, w in connections:
                w.close()
        assert received[:-1] == [b""] * 20  # closed, and never answered
        assert received[-1] == (200, {"__typename": "Query"})


async def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(services):
    opened = with_settings(services, header_timeout_s=0.5)
    async with served(opened) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            raw = await asyncio.wait_for(until_closed(reader), BOUND_S)
        finally:
            writer.close()
        status, headers, _ = split_response(raw)
        # One answer on a keep-alive connection; then nothing came, and the server closed it.
        assert status.split()[1] in ("200", "503") and headers.get("connection") != "close"


async def test_a_websocket_outlives_the_header_timeout(services):
    # aiohttp's keep-alive timer closes only a connection waiting for a request head: an open socket is
    # a request being handled, so a subscription lasts longer than the deadline (here 6x it).
    opened = with_settings(services, header_timeout_s=0.5)
    async with served(opened) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/graphql"
        async with http.ws_connect(url, protocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json(timeout=BOUND_S))["type"] == "connection_ack"
            await asyncio.sleep(3.0)
            query = "subscription { health(intervalSeconds: 0.1) { status } }"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
            message = await ws.receive_json(timeout=BOUND_S)
            assert message["type"] == "next" and message["id"] == "1", message
            assert not ws.closed


# 2. The request body


@pytest.mark.parametrize(
    ("path", "accept"),
    [("/graphql", "application/json"), ("/graphql", "application/graphql-response+json"), ("/events", "")],
)
async def test_a_body_that_stalls_is_answered_408_and_the_connection_closed(services, path, accept):
    opened = with_settings(services, body_timeout_s=0.5)
    async with served(opened) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Accept: {accept}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"query":"'  # 10 of the 1000 bytes, then nothing
        )
        try:
            raw, normal = await asyncio.wait_for(
                asyncio.gather(until_closed(reader), served_normally(port)), BOUND_S
            )
        finally:
            writer.close()
        status, headers, body = split_response(raw)
        assert status.startswith("HTTP/1.1 408 ") and headers["connection"] == "close"
        reason = "the request body did not arrive within 0.5 s (FUNNEL_BODY_TIMEOUT_S)"
        if path == "/events":
            assert json.loads(body) == {"error": reason, "code": "REQUEST_TIMEOUT"}
        else:  # JSON for every GraphQL client, in the type it accepts, with the code /events gives
            assert headers["content-type"].startswith(accept)
            assert json.loads(body)["errors"] == [
                {"message": reason, "extensions": {"code": "REQUEST_TIMEOUT"}}
            ]
        assert normal == (200, {"__typename": "Query"})


async def test_a_body_trickling_in_does_not_push_the_deadline_back(services):
    opened = with_settings(services, body_timeout_s=0.5)
    async with served(opened) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        sender = asyncio.create_task(trickle(writer, b"[" + b" " * 999, 0.1))  # 100 s for all of it
        try:
            raw = await asyncio.wait_for(until_closed(reader), BOUND_S)
        finally:
            sender.cancel()
            writer.close()
        status, _, body = split_response(raw)
        assert status.startswith("HTTP/1.1 408 ") and json.loads(body)["code"] == "REQUEST_TIMEOUT"


async def test_a_body_sent_in_pieces_within_the_deadline_is_read_whole(services):
    opened = with_settings(services, body_timeout_s=30.0)
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * 5000}}).encode()
    async with served(opened) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:100]
        )
        await asyncio.sleep(0.3)
        writer.write(body[100:])
        try:
            raw = await asyncio.wait_for(until_closed(reader), 60)
        finally:
            writer.close()
        status, _, answer = split_response(raw)
        assert status.startswith("HTTP/1.1 200 ") and json.loads(answer)["data"] == {"__typename": "Query"}


# 3. The deadline itself


def _request_with_body() -> tuple[web.Request, aiohttp.StreamReader]:
    content = aiohttp.StreamReader(mock.Mock(), 2**16, loop=asyncio.get_running_loop())
    return make_mocked_request("POST", "/events", payload=content), content


async def test_a_body_complete_before_the_deadline_is_still_readable_after_it(monkeypatch):
    expired = asyncio.Event()  # set once the deadline has really fired (not hoped for after a sleep)
    expire = body_deadline._expire

    def observed(content: aiohttp.StreamReader, seconds: float) -> None:
        expire(content, seconds)
        expired.set()

    monkeypatch.setattr(body_deadline, "_expire", observed)
    request, content = _request_with_body()
    timer = body_deadline.arm(request, 0.05)
    assert timer is not None
    content.feed_data(b"[1]")
    content.feed_eof()
    await asyncio.wait_for(expired.wait(), 30)  # a bound: only a deadline that never fires reaches it
    assert await request.read() == b"[1]"


async def test_an_incomplete_body_fails_every_reader_at_the_deadline():
    request, content = _request_with_body()
    body_deadline.arm(request, 0.05)
    content.feed_data(b"[1")
    with pytest.raises(body_deadline.BodyTimeout, match=r"did not arrive within 0\.05 s"):
        await request.read()


async def test_no_deadline_for_a_request_without_a_body_to_wait_for():
    assert body_deadline.arm(make_mocked_request("GET", "/healthz"), 0.05) is None


async def test_a_get_carries_a_document_up_to_the_character_limit(services):
    # The document limit holds for GET too: aiohttp's own request-line limit (8,190 bytes) cut a GET of
    # ~2,700 percent-encoded characters with a plain-text 400.
    limit = services.settings.max_query_chars
    document = "{ health { status } } #" + "x" * (limit - 24)  # a comment pads it to limit - 1
    assert len(document) == limit - 1
    encoded = "".join(f"%{byte:02X}" for byte in document.encode())  # every byte encoded: 3x the length
    async with served(services) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET /graphql?query={encoded} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            raw = await asyncio.wait_for(until_closed(reader), BOUND_S)
        finally:
            writer.close()
    status, _, body = split_response(raw)
    assert status.split()[1] == "200"
    assert json.loads(body)["data"]["health"]["status"] in ("ok", "degraded")
