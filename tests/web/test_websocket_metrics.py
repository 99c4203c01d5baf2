"""A WebSocket is an HTTP request until its handshake is answered (101), then a connection: the request
metrics count and time it at its 101, and ``funnelgate_websockets_open`` holds it until it closes. It
used to be observed in ``funnelgate_http_request_seconds`` when its handler returned, at its close: a
dashboard left open an hour was a 3,600 s request in the p99."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from gateway.ops.metrics import REGISTRY
from gateway.web.app import create_app

ROUTE = {"route": "/graphql"}


def _readings() -> tuple[float, float, float, float]:
    """/graphql's observations in the latency histogram, its GET 101s and GET answers of any status in
    the request counter, and the open-sockets gauge."""

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    gets = sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "funnelgate_http_requests"
        for sample in family.samples
        if sample.name == "funnelgate_http_requests_total"
        and sample.labels["route"] == "/graphql"
        and sample.labels["method"] == "GET"
    )
    return (
        value("funnelgate_http_request_seconds_count", ROUTE),
        value("funnelgate_http_requests_total", {**ROUTE, "method": "GET", "status": "101"}),
        gets,
        value("funnelgate_websockets_open"),
    )


async def test_a_websocket_is_counted_and_timed_at_its_handshake_not_at_its_close(services):
    timed, upgrades, gets, open_now = _readings()
    async with TestClient(TestServer(create_app(services))) as client:
        ws = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"])
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"  # the 101 is long sent
        # Open: its handshake is one request, counted and observed once.
        assert _readings() == (timed + 1, upgrades + 1, gets + 1, open_now + 1)
        response = await client.post("/graphql", json={"query": "{ __typename }"})
        assert response.status == 200
        assert _readings() == (timed + 2, upgrades + 1, gets + 1, open_now + 1)
        await ws.close()
    # The server has stopped (every handler returned): the close observed nothing, counted nothing.
    assert _readings() == (timed + 2, upgrades + 1, gets + 1, open_now)
