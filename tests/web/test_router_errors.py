"""aiohttp's own 404 and 405 ("404: Not Found", text/plain) answered as JSON with a code on every route,
in the route's error shape: GraphQL's ``errors`` everywhere but /events (``{"error", "code"}``), ``Allow``
kept on 405. What the routes answer themselves (pages, files, GraphiQL, Prometheus text, WebSockets)
is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.web.negotiation import GRAPHQL_RESPONSE_JSON

NEW = {"Accept": GRAPHQL_RESPONSE_JSON}


def graphql_error(message: str, code: str) -> dict[str, object]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


@pytest.mark.parametrize(
    ("method", "path", "allow", "body"),
    [
        ("GET", "/nope", None, graphql_error("/nope: Not Found", "NOT_FOUND")),
        ("POST", "/graphql/nope", None, graphql_error("/graphql/nope: Not Found", "NOT_FOUND")),
        (
            "GET",
            "/static/graphiql/missing.js",  # the page handler's own 404: a file it does not serve
            None,
            graphql_error("/static/graphiql/missing.js: Not Found", "NOT_FOUND"),
        ),
        (
            "PUT",
            "/graphql",  # strawberry's refusal, answered by the view
            "GET, HEAD, POST",
            graphql_error("PUT is not allowed on /graphql (allowed: GET, HEAD, POST)", "METHOD_NOT_ALLOWED"),
        ),
        (
            "DELETE",
            "/healthz",
            "GET,HEAD",
            graphql_error("DELETE is not allowed on /healthz (allowed: GET,HEAD)", "METHOD_NOT_ALLOWED"),
        ),
        (
            "POST",
            "/metrics",
            "GET,HEAD",
            graphql_error("POST is not allowed on /metrics (allowed: GET,HEAD)", "METHOD_NOT_ALLOWED"),
        ),
        (
            "POST",
            "/",
            "GET,HEAD",
            graphql_error("POST is not allowed on / (allowed: GET,HEAD)", "METHOD_NOT_ALLOWED"),
        ),
        (
            "GET",
            "/events",  # its own shape, as before
            "POST",
            {"error": "GET is not allowed on /events (allowed: POST)", "code": "METHOD_NOT_ALLOWED"},
        ),
    ],
)
async def test_a_router_refusal_is_json_with_a_code(http: TestClient, method, path, allow, body) -> None:
    response = await http.request(method, path)
    assert response.status == (405 if allow else 404)
    assert response.content_type == "application/json"
    assert response.headers.get("Allow") == allow
    assert await response.json() == body


async def test_a_client_of_the_spec_gets_its_media_type(http: TestClient) -> None:
    missing = await http.get("/nope", headers=NEW)
    put = await http.put("/graphql", json={"query": "{ __typename }"}, headers=NEW)
    assert (missing.status, missing.content_type) == (404, GRAPHQL_RESPONSE_JSON)
    assert (put.status, put.content_type, put.headers["Allow"]) == (
        405,
        GRAPHQL_RESPONSE_JSON,
        "GET, HEAD, POST",
    )
    assert (await put.json(content_type=None))["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_head_gets_the_status_without_a_body(http: TestClient) -> None:
    missing = await http.head("/nope")
    health = await http.head("/healthz")
    assert (missing.status, missing.content_type, await missing.read()) == (404, "application/json", b"")
    assert (health.status, await health.read()) == (200, b"")


async def test_what_the_routes_answer_themselves_is_unchanged(http: TestClient, web_assets: Path) -> None:
    metrics = await http.get("/metrics")
    assert (metrics.status, metrics.content_type) == (200, "text/plain")
    assert (await metrics.text()).startswith("# HELP ")
    dashboard = await http.get("/", headers={"Accept": "text/html"})
    graphiql = await http.get("/graphql", headers={"Accept": "text/html"})
    assert [(r.status, r.content_type) for r in (dashboard, graphiql)] == [(200, "text/html")] * 2
    script = await http.get("/static/dashboard/app.js")
    assert (script.status, script.content_type) == (200, "text/javascript")
    # A GraphQL request error is still GraphQL's, code and all (not taken for a router refusal).
    response = await http.post("/graphql", json={"query": "{ nope }"})
    assert (await response.json())["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_websocket_still_opens(http: TestClient) -> None:
    async with http.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=30))["type"] == "connection_ack"


async def test_a_fault_in_a_handler_is_a_coded_json_500_without_the_trace(
    http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(services: object) -> dict[str, object]:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr("gateway.web.health.check_health", broken)
    response = await http.get("/healthz")
    assert response.status == 500
    body = await response.json()
    assert body == graphql_error("internal error: the gateway logged it", "INTERNAL_SERVER_ERROR")
    assert "secret detail" not in await response.text()
