"""A WebSocket asking for a subprotocol the gateway does not speak is one client-error line at INFO.

aiohttp logged it as a WARNING each time strawberry checked or prepared a response for the handshake:
four WARNING lines per such client ("Client protocols ['nope'] don't overlap server-known ones ..."),
which anyone can trigger, for a mistake of the client's.
"""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient


async def test_an_unknown_subprotocol_is_logged_once_at_info(
    http: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with http.ws_connect("/graphql", protocols=["nope"]) as ws:
            await ws.receive()
        assert ws.close_code == 4406  # strawberry: "Subprotocol not acceptable"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    said = [r for r in caplog.records if "nope" in r.getMessage()]
    assert [(r.levelno, r.name) for r in said] == [(logging.INFO, "funnelgate.graphql")]
    assert "BAD_WEBSOCKET_PROTOCOL" in said[0].getMessage()
