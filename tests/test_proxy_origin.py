"""The dashboard and GraphiQL open their subscriptions on the page's own origin. Behind the proxy of
docs/deploy/nginx.conf (the block between its BEGIN/END PROXY markers, as tests/replicas.py builds it),
that handshake must still be same-origin to the gateway: the ``Host`` the proxy forwards has to keep
the port the browser used. With ``Host $host`` (the name alone) a page on ``http://localhost:8080``
(docker-compose's replicas profile) sent ``Origin: http://localhost:8080`` and the gateway saw
``Host: localhost``: another origin, so every subscription through the proxy was refused 403 (Chromium
156 included: seen with the gateway's log saying "Rejected WebSocket connection").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.services import Services
from gateway.web.app import create_app
from tests.api.conftest import services  # noqa: F401  (fixture)
from tests.replicas import INSTALL_HINT, free_port, nginx_executable, nginx_in_front

pytestmark = pytest.mark.slow


@pytest.fixture
async def proxied(tmp_path: Path, services: Services) -> AsyncIterator[str]:  # noqa: F811
    if nginx_executable() is None:
        pytest.skip(INSTALL_HINT)
    port = free_port()
    async with (
        TestServer(create_app(services), host="127.0.0.1", port=port),
        nginx_in_front(tmp_path / "nginx", [port]) as url,
    ):
        yield url


async def handshake(url: str, origin: str) -> str | int:
    """The first message after connection_init on a socket opened with this Origin, or the HTTP status
    of a refused handshake."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(
                f"{url}/graphql", protocols=["graphql-transport-ws"], headers={"Origin": origin}
            )
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status
        try:
            await ws.send_json({"type": "connection_init"})
            return str((await ws.receive_json(timeout=10))["type"])
        finally:
            await ws.close()


async def test_a_page_of_the_proxy_s_own_origin_opens_subscriptions(proxied: str) -> None:
    # The origin a browser sends from a page served through the proxy: scheme, host and the proxy's port.
    assert await handshake(proxied, proxied) == "connection_ack"


async def test_a_page_of_another_origin_is_still_refused_through_the_proxy(proxied: str) -> None:
    port = int(proxied.rsplit(":", 1)[1])
    assert await handshake(proxied, f"http://127.0.0.1:{port + 1}") == 403
    assert await handshake(proxied, "http://evil.example") == 403
