"""What a browser and a busy client meet: the Host check, CORS, the WebSocket Origin, rate limits."""

from __future__ import annotations

import asyncio
import json

from gateway.roles import Role
from tests.security.conftest import bearer, client_of, with_keys, with_settings

APP = "https://dash.example.com"
QUERY = {"query": "{ health { status } }"}


def preflight(
    origin: str, method: str = "POST", headers: str = "authorization, content-type"
) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_an_unknown_host_header_is_refused_and_healthz_is_exempt(services):
    async with client_of(services) as client:
        assert (await client.post("/graphql", json=QUERY)).status == 200  # 127.0.0.1:port
        for host in ("rebind.evil.example", "rebind.evil.example:8000", "10.0.0.5"):
            response = await client.post("/graphql", json=QUERY, headers={"Host": host})
            assert response.status == 421, host
        assert (await client.get("/healthz", headers={"Host": "10.0.0.5:8000"})).status == 200
    async with client_of(with_settings(services, allowed_hosts=("gateway.example.com",))) as client:
        assert (
            await client.post("/graphql", json=QUERY, headers={"Host": "gateway.example.com"})
        ).status == 200
        assert (await client.post("/graphql", json=QUERY, headers={"Host": "[::1]:8000"})).status == 421


async def test_a_misdirected_request_is_refused_in_each_routes_json_shape(services):
    message = "Host 'rebind.evil.example' is not served here (allowed hosts: FUNNEL_ALLOWED_HOSTS)"
    async with client_of(services) as client:
        graphql = await client.post("/graphql", json=QUERY, headers={"Host": "rebind.evil.example"})
        assert (graphql.status, graphql.content_type) == (421, "application/json")
        assert await graphql.json() == {
            "errors": [{"message": message, "extensions": {"code": "MISDIRECTED_REQUEST"}}]
        }
        # A client that asks for the GraphQL media type gets it, as for every other GraphQL error.
        spec = await client.post(
            "/graphql",
            json=QUERY,
            headers={"Host": "rebind.evil.example", "Accept": "application/graphql-response+json"},
        )
        assert (spec.status, spec.content_type) == (421, "application/graphql-response+json")
        assert (await spec.json(content_type=None))["errors"][0]["extensions"][
            "code"
        ] == "MISDIRECTED_REQUEST"
        events = await client.post("/events", json=[], headers={"Host": "rebind.evil.example"})
        assert (events.status, events.content_type) == (421, "application/json")
        assert await events.json() == {"error": message, "code": "MISDIRECTED_REQUEST"}


async def test_cors_preflight_and_answers_for_an_allowed_origin(services):
    async with client_of(with_keys(services, cors_origins=(APP,))) as client:
        response = await client.options("/graphql", headers=preflight(APP))
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
        assert response.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        assert int(response.headers["Access-Control-Max-Age"]) > 0 and "Origin" in response.headers["Vary"]
        # The actual request, and a 401 too, carry the origin so the page can read them.
        ok = await client.post("/graphql", json=QUERY, headers={"Origin": APP, **bearer(Role.VIEWER)})
        assert ok.status == 200 and ok.headers["Access-Control-Allow-Origin"] == APP
        denied = await client.post("/graphql", json=QUERY, headers={"Origin": APP})
        assert denied.status == 401 and denied.headers["Access-Control-Allow-Origin"] == APP
        # Refused: another origin, another method, another header; each says what, in JSON.
        refusals = (
            (
                preflight("https://evil.example"),
                "origin 'https://evil.example' is not allowed (FUNNEL_CORS_ORIGINS)",
            ),
            (preflight(APP, "PUT"), "method 'PUT' is not allowed (allowed: GET, POST)"),
            (
                preflight(APP, "POST", "x-secret, content-type"),
                "header 'x-secret' is not allowed (allowed: accept, authorization, content-type)",
            ),
            (
                preflight(APP, "POST", "X-B, x-a"),
                "headers 'x-a', 'x-b' are not allowed (allowed: accept, authorization, content-type)",
            ),
        )
        for headers, reason in refusals:
            refused = await client.options("/graphql", headers=headers)
            assert (refused.status, refused.content_type) == (403, "application/json"), reason
            assert await refused.json() == {
                "errors": [
                    {"message": f"CORS preflight refused: {reason}", "extensions": {"code": "FORBIDDEN"}}
                ]
            }
            assert refused.headers["Vary"] == "Origin"
            assert "Access-Control-Allow-Origin" not in refused.headers
        other = await client.post(
            "/graphql", json=QUERY, headers={"Origin": "https://evil.example", **bearer(Role.VIEWER)}
        )
        assert "Access-Control-Allow-Origin" not in other.headers


async def test_no_origin_is_allowed_by_default(services):
    async with client_of(services) as client:
        assert (await client.options("/graphql", headers=preflight(APP))).status == 403
        # /events answers a refused preflight in its own shape, as it answers every other refusal.
        events = await client.options("/events", headers=preflight(APP))
        assert (events.status, events.content_type) == (403, "application/json")
        assert await events.json() == {
            "error": f"CORS preflight refused: origin {APP!r} is not allowed (FUNNEL_CORS_ORIGINS)",
            "code": "FORBIDDEN",
        }
        no_origin = await client.options("/graphql", headers={"Access-Control-Request-Method": "POST"})
        assert no_origin.status == 403
        assert (await no_origin.json())["errors"][0]["message"] == (
            "CORS preflight refused: the preflight has no Origin header"
        )
        response = await client.get("/graphql", params=QUERY, headers={"Origin": APP})
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_page_of_another_site_cannot_make_a_browser_run_a_query(services):
    """<img src="http://127.0.0.1:8000/graphql?query=…"> needs no preflight; the browser marks it."""
    async with client_of(with_settings(services, cors_origins=(APP,))) as client:
        for site in ("cross-site", "same-site"):
            response = await client.get("/graphql", params=QUERY, headers={"Sec-Fetch-Site": site})
            assert response.status == 403, site
        allowed = await client.get(
            "/graphql", params=QUERY, headers={"Sec-Fetch-Site": "cross-site", "Origin": APP}
        )
        assert allowed.status == 200
        for site in ("same-origin", "none"):  # GraphiQL on this origin; a typed URL
            assert (
                await client.get("/graphql", params=QUERY, headers={"Sec-Fetch-Site": site})
            ).status == 200


async def test_the_cross_site_refusal_is_coded_in_each_routes_shape(services):
    message = "a page of another site may not call this API (FUNNEL_CORS_ORIGINS)"
    async with client_of(services) as client:
        graphql = await client.get("/graphql", params=QUERY, headers={"Sec-Fetch-Site": "cross-site"})
        assert graphql.status == 403
        assert await graphql.json(content_type=None) == {
            "errors": [{"message": message, "extensions": {"code": "FORBIDDEN"}}]
        }
        events = await client.post("/events", json=[], headers={"Sec-Fetch-Site": "cross-site"})
        assert (events.status, events.content_type) == (403, "application/json")
        assert await events.json() == {"error": message, "code": "FORBIDDEN"}


async def test_websocket_origin_follows_the_same_list(services):
    async with client_of(with_settings(services, cors_origins=(APP,))) as client:
        ws = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"], headers={"Origin": APP})
        await ws.close()
        response = await client.get(
            "/graphql",
            headers={
                "Origin": "https://evil.example",
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": "graphql-transport-ws",
            },
        )
        # JSON with a code in the route's shape, as the preflight from the same origin is refused.
        assert (response.status, response.content_type) == (403, "application/json")
        message = "WebSocket refused: origin 'https://evil.example' is not allowed (FUNNEL_CORS_ORIGINS)"
        assert await response.json() == {
            "errors": [{"message": message, "extensions": {"code": "FORBIDDEN"}}]
        }


async def _raw_answer(client, head: bytes) -> tuple[int, dict]:
    """Status and JSON body of the answer to a request head sent as raw bytes (a client library would
    refuse, or re-encode, a header byte that is not UTF-8)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head)
        await writer.drain()
        answer_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status_line, *header_lines = answer_head.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1]) for line in header_lines if line.lower().startswith("content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), 30)
    finally:
        writer.close()
    return int(status_line.split()[1]), json.loads(body)


async def test_a_header_byte_that_is_not_utf8_is_echoed_as_the_byte(services):
    """aiohttp decodes headers with surrogateescape: byte 0xE9 arrives as U+DCE9, which repr would show
    as \\udce9. The messages show the byte, \\xe9, as Python's backslashreplace writes it."""
    async with client_of(with_settings(services, cors_origins=(APP,))) as client:
        port = client.port
        host = await _raw_answer(
            client, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\xe9\r\nConnection: close\r\n\r\n"
        )
        assert host == (
            421,
            {
                "errors": [
                    {
                        "message": "Host '127.0.0.1\\xe9' is not served here (allowed hosts: FUNNEL_ALLOWED_HOSTS)",
                        "extensions": {"code": "MISDIRECTED_REQUEST"},
                    }
                ]
            },
        )
        origin = b"https://evil\xe9.example"
        preflight_head = (
            b"OPTIONS /graphql HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: %s\r\n"
            b"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n" % (port, origin)
        )
        refused = "origin 'https://evil\\xe9.example' is not allowed (FUNNEL_CORS_ORIGINS)"
        assert await _raw_answer(client, preflight_head) == (
            403,
            {
                "errors": [
                    {"message": f"CORS preflight refused: {refused}", "extensions": {"code": "FORBIDDEN"}}
                ]
            },
        )
        handshake = (
            b"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: %s\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n" % (port, origin)
        )
        assert await _raw_answer(client, handshake) == (
            403,
            {"errors": [{"message": f"WebSocket refused: {refused}", "extensions": {"code": "FORBIDDEN"}}]},
        )


async def test_rate_limit_per_credential_with_retry_after(services):
    limits = (("viewer", 3), ("analyst", 5), ("admin", 0))
    async with client_of(with_keys(services, rate_limits=limits)) as client:
        statuses = [
            (await client.post("/graphql", json=QUERY, headers=bearer(Role.VIEWER))).status for _ in range(3)
        ]
        refused = await client.post("/graphql", json=QUERY, headers=bearer(Role.VIEWER))
        assert statuses == [200, 200, 200] and refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= services.settings.rate_window_s
        assert (await refused.json())["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # Another credential, another count; and admin is unlimited (0).
        assert (await client.post("/graphql", json=QUERY, headers=bearer(Role.ANALYST))).status == 200
        for _ in range(10):
            assert (await client.post("/graphql", json=QUERY, headers=bearer(Role.ADMIN))).status == 200


async def test_without_authentication_the_client_address_is_limited(services):
    async with client_of(with_settings(services, rate_limits=(("admin", 2),))) as client:
        statuses = [(await client.get("/graphql", params=QUERY)).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert (await client.get("/healthz")).status == 200  # never limited


async def test_a_routers_404_still_carries_the_cors_answer(services):
    async with client_of(with_keys(services, cors_origins=(APP,))) as client:
        response = await client.get("/nope", headers={"Origin": APP, **bearer(Role.VIEWER)})
        assert response.status == 404
        assert response.headers["Access-Control-Allow-Origin"] == APP


async def test_an_upgrade_header_does_not_carry_a_get_query_past_authentication(services):
    async with client_of(with_keys(services)) as client:
        response = await client.get(
            "/graphql", params=QUERY, headers={"Upgrade": "websocket", "Connection": "Upgrade"}
        )
        assert response.status == 401
        assert (await response.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
