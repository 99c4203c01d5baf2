"""FUNNEL_MAX_CONNECTIONS_PER_ADDRESS: the app served as ``funnelgate serve`` serves it
(``server.app_runner``), with raw sockets. Idle connections, which never send a request head, hold their
places; one more from the same address is answered 429 ``TOO_MANY_CONNECTIONS`` in the route's shape and
closed; another address, and the same one once a place is free, are served."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from unittest import mock

import pytest
from aiohttp import web

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.ops.metrics import REGISTRY
from gateway.web import connection_cap
from gateway.web.app import create_app
from gateway.web.connection_cap import ConnectionCounts, refusal
from gateway.web.server import app_runner
from tests.security.conftest import with_settings
from tests.security.test_slow_clients import BOUND_S, served, split_response, until_closed

MESSAGE = "2 connections are open from this address (FUNNEL_MAX_CONNECTIONS_PER_ADDRESS)"
GRAPHQL_SHAPED = {"errors": [{"message": MESSAGE, "extensions": {"code": "TOO_MANY_CONNECTIONS"}}]}


async def idle(port: int, count: int, host: str = "127.0.0.1") -> list[asyncio.StreamWriter]:
    """``count`` connections that send nothing (they hold their places until closed)."""
    opened = [await asyncio.open_connection(host, port) for _ in range(count)]
    return [writer for _, writer in opened]


async def exchange(port: int, request: bytes, local: str | None = None) -> bytes:
    """Send ``request`` on a new connection; everything received until the server closes it."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(local, 0) if local else None
    )
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(until_closed(reader), BOUND_S)
    finally:
        writer.close()


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


@pytest.mark.parametrize(
    ("request_bytes", "shaped"),
    [
        (get("/graphql?query=%7B__typename%7D"), GRAPHQL_SHAPED),
        (get("/healthz"), GRAPHQL_SHAPED),
        # /events has its own shape; its body (here 1 MB) is read and dropped, not answered with a reset
        (
            b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1048576\r\n\r\n" + b" " * 1048576,
            {"error": MESSAGE, "code": "TOO_MANY_CONNECTIONS"},
        ),
    ],
)
async def test_one_more_connection_than_the_cap_is_answered_429_in_the_routes_shape(
    services, request_bytes, shaped
):
    opened = with_settings(services, max_connections_per_address=2)
    async with served(opened) as port:
        held = await idle(port, 2)
        try:
            raw = await exchange(port, request_bytes)
        finally:
            for writer in held:
                writer.close()
    status, headers, body = split_response(raw)
    assert status == "HTTP/1.1 429 Too Many Requests"
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == shaped


async def test_another_address_is_served_while_one_is_at_the_cap(services):
    opened = with_settings(services, max_connections_per_address=2)
    async with served(opened) as port:
        held = await idle(port, 2)
        try:
            refused = await exchange(port, get("/healthz"))
            # Linux routes all of 127/8 to loopback: 127.0.0.2 is another client address.
            other = await exchange(port, get("/healthz"), local="127.0.0.2")
        finally:
            for writer in held:
                writer.close()
    assert split_response(refused)[0].split()[1] == "429"
    assert split_response(other)[0].split()[1] in ("200", "503")  # the app's answer (backends' health)


async def test_a_closed_connection_gives_its_place_back(services):
    opened = with_settings(services, max_connections_per_address=1)
    async with served(opened) as port:
        [held] = await idle(port, 1)
        assert split_response(await exchange(port, get("/healthz")))[0].split()[1] == "429"
        held.close()
        # The server learns of the close when its loop reads it: ask until it is answered (bounded).
        statuses = []
        for _ in range(100):
            statuses.append(split_response(await exchange(port, get("/healthz")))[0].split()[1])
            if statuses[-1] != "429":
                break
            await asyncio.sleep(0.05)
    assert statuses[-1] in ("200", "503")


async def test_a_refused_connection_that_sends_nothing_is_closed_unanswered(services):
    opened = with_settings(services, max_connections_per_address=1)
    with mock.patch.object(connection_cap, "REFUSAL_WAIT_S", 0.3):
        async with served(opened) as port:
            held = await idle(port, 1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                received = await asyncio.wait_for(until_closed(reader), BOUND_S)
            finally:
                writer.close()
                held[0].close()
    assert received == b""


async def test_zero_means_no_cap(services):
    opened = with_settings(services, max_connections_per_address=0)
    runner = app_runner(create_app(opened), opened.settings)
    await runner.setup()
    try:
        assert isinstance(runner.server, web.Server)  # aiohttp's own factory, not wrapped
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        held = await idle(port, 40)
        try:
            answered = await exchange(port, get("/healthz"))
        finally:
            for writer in held:
                writer.close()
    finally:
        await runner.cleanup()
    assert split_response(answered)[0].split()[1] in ("200", "503")


async def test_counts_per_address():
    counts = ConnectionCounts(2)
    assert [counts.admit("a"), counts.admit("a"), counts.admit("a"), counts.admit("b")] == [
        True,
        True,
        False,
        True,
    ]
    counts.release("a")
    assert counts.admit("a") is True
    counts.release("b")
    assert counts.open == {"a": 2} and counts.refused == 1
    assert [counts.linger("a") for _ in range(17)] == [True] * 16 + [False]
    counts.lingered("a")
    assert counts.lingering == {"a": 15}
    counts.close()


def test_the_refusal_names_the_setting_and_takes_the_path_without_its_query():
    status, headers, body = split_response(refusal(b"POST /events?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", 7))
    assert status == "HTTP/1.1 429 Too Many Requests" and int(headers["content-length"]) == len(body)
    assert json.loads(body) == {
        "error": "7 connections are open from this address (FUNNEL_MAX_CONNECTIONS_PER_ADDRESS)",
        "code": "TOO_MANY_CONNECTIONS",
    }
    # Not even a request line: the GraphQL shape, as for any path but /events.
    assert "errors" in json.loads(split_response(refusal(b"\r\n\r\n", 7))[2])


def test_the_setting():
    assert load_settings(env={}, make_dir=False).max_connections_per_address == 512
    assert load_settings(env={"FUNNEL_MAX_CONNECTIONS_PER_ADDRESS": "0"}, make_dir=False).max_connections_per_address == 0  # fmt: skip
    with pytest.raises(ConfigError, match="FUNNEL_MAX_CONNECTIONS_PER_ADDRESS"):
        load_settings(env={"FUNNEL_MAX_CONNECTIONS_PER_ADDRESS": "-1"}, make_dir=False)


@asynccontextmanager
async def capped(opened, cap: int) -> AsyncIterator[tuple[int, ConnectionCounts]]:
    """The app served as serve() serves it, capped at ``cap``; yields the port and the counts."""
    settings = dataclasses.replace(opened.settings, max_connections_per_address=cap)
    runner = app_runner(create_app(dataclasses.replace(opened, settings=settings)), settings)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1], runner.connections
    finally:
        await runner.cleanup()


async def eventually(check, bound: int = 200) -> None:
    for _ in range(bound):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never became true")


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_flood_of_refused_connections_holds_at_most_the_lingering_bound(services):
    before = {
        how: _metric("funnelgate_http_connections_refused_total", how=how) for how in ("lingered", "reset")
    }
    open_before = _metric("funnelgate_http_connections_open")
    async with capped(services, 1) as (port, counts):
        held = await idle(port, 1)
        flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
        try:
            await eventually(lambda: counts.refused == 40)
            # 16 wait for their heads; the other 24 were reset at once, unanswered.
            assert counts.lingering == {"127.0.0.1": connection_cap.MAX_LINGERING}
            ended = await asyncio.gather(*(asyncio.wait_for(until_closed(r), BOUND_S) for r, _ in flood[16:]))
            assert ended == [b""] * 24
        finally:
            for _, writer in flood:
                writer.close()
            for writer in held:
                writer.close()
        await eventually(lambda: not counts.lingering and counts.open == {})  # every place given back
    refused = {
        how: _metric("funnelgate_http_connections_refused_total", how=how) - before[how] for how in before
    }
    assert refused == {"lingered": 16, "reset": 24}
    assert _metric("funnelgate_http_connections_open") == open_before


async def test_a_refused_head_gets_the_answer_without_a_body_and_a_long_head_in_pieces_is_answered(services):
    async with capped(services, 1) as (port, _):
        held = await idle(port, 1)
        try:
            head = await exchange(port, b"HEAD /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            # A 20 KB request line, sent in 2 KB pieces: more than the 8 KB first taken as a whole head.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = f"GET /graphql?query={'x' * 20_000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
            for i in range(0, len(request), 2048):
                writer.write(request[i : i + 2048])
                await writer.drain()
            long_one = await asyncio.wait_for(until_closed(reader), BOUND_S)
            writer.close()
        finally:
            held[0].close()
    status, headers, body = split_response(head)
    assert status == "HTTP/1.1 429 Too Many Requests" and int(headers["content-length"]) > 0 and body == b""
    assert json.loads(split_response(long_one)[2]) == {
        "errors": [
            {"message": MESSAGE.replace("2 ", "1 ", 1), "extensions": {"code": "TOO_MANY_CONNECTIONS"}}
        ]
    }


async def test_refusals_are_logged_when_they_start_then_counted(services, caplog):
    with mock.patch.object(connection_cap, "LOG_EVERY_S", 0.2), caplog.at_level("WARNING", "funnelgate.web"):
        async with capped(services, 1) as (port, _):
            held = await idle(port, 1)
            try:
                for _ in range(3):
                    await exchange(port, get("/healthz"))
                await eventually(lambda: any("more connection" in r.getMessage() for r in caplog.records))
            finally:
                held[0].close()
    messages = [r.getMessage() for r in caplog.records if r.name == "funnelgate.web"]
    assert messages[0].startswith("refusing connections from 127.0.0.1: 1 are open from it")
    assert (
        messages[1] == "refused 2 more connection(s) in the last minute (FUNNEL_MAX_CONNECTIONS_PER_ADDRESS)"
    )
