"""graphql-transport-ws gets what HTTP gets (gateway/web/websocket.py): a context per operation, the
credential's expiry, the rate limit, the persisted-query allow-list, the request timeout, the PII mask,
malformed frames closed with 4400 (a reason a close frame holds) instead of crashing the handler, and a
mistake in one operation's document answered for that operation alone."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest

import gateway.web.context as context_module
from gateway.roles import Role
from gateway.security import credentials
from gateway.security.credentials import Authenticator, mint_token
from gateway.security.persisted import Operation, sha256, write_manifest
from gateway.web import app as app_module
from gateway.web import websocket
from tests.realtime.conftest import wait_for_subscription
from tests.security.conftest import KEYS, bearer, client_of, with_keys, with_settings

SOCKET = {"protocols": ["graphql-transport-ws"]}
GRAPHQL_RESPONSE = "application/graphql-response+json"
SECRET = "w" * 40


async def open_ws(client: Any, credential: str) -> Any:
    ws = await client.ws_connect("/graphql", **SOCKET)
    await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {credential}"}})
    ack = await ws.receive_json(timeout=10)
    assert ack["type"] == "connection_ack", ack
    return ws


async def run(ws: Any, op: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """One query over the socket: its first message (next or error), after which it is complete."""
    await ws.send_json({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables}})
    first = await ws.receive_json(timeout=20)
    if first["type"] == "next":
        assert (await ws.receive_json(timeout=20)) == {"id": op, "type": "complete"}
    return first


async def closed(ws: Any) -> tuple[int | None, str]:
    """Read until the server closes; its close code and reason."""
    while True:
        message = await ws.receive(timeout=30)
        if message.type.name in ("CLOSE", "CLOSED", "CLOSING"):
            return ws.close_code, str(message.extra or "")


# 1. A context per operation


async def test_each_operation_has_its_own_loaders_and_funnel_sources(services, monkeypatch):
    built = []
    original = context_module.build_loaders

    def spy(opened: Any) -> Any:
        built.append(original(opened))
        return built[-1]

    monkeypatch.setattr(context_module, "build_loaders", spy)
    async with client_of(with_keys(services)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        before = len(built)
        funnel = await run(ws, "1", "{ secretName: funnel { overallConversionRate } }")
        assert "secretName" in funnel["payload"]["extensions"]["funnelSources"]
        dashboard = await run(ws, "2", "{ dashboard { sessions } }")
        # The second operation does not report the first one's fields.
        assert "funnelSources" not in (dashboard["payload"].get("extensions") or {})
        assert len(built) - before == 2 and built[-1] is not built[-2]
        await ws.close()


async def test_a_socket_sees_what_an_event_changed(services):
    query = "{ user(id: 6) { sessions { id pagesVisited } } }"
    async with client_of(with_keys(services)) as client:
        ws = await open_ws(client, KEYS[Role.ANALYST])
        before = (await run(ws, "1", query))["payload"]["data"]
        event = [{"type": "page_view", "eventId": "ws-fresh-1", "userId": 6, "pageType": "home_page"}]
        response = await client.post("/events", json=event, headers=bearer(Role.ADMIN))
        assert response.status == 200, await response.text()
        over_http = await client.post("/graphql", json={"query": query}, headers=bearer(Role.ANALYST))
        expected = (await over_http.json())["data"]
        assert expected != before  # the event changed the answer...
        assert (await run(ws, "2", query))["payload"]["data"] == expected  # ...on the open socket too
        await ws.close()


# 2. Credential expiry


def test_a_jwt_holds_until_its_exp_plus_the_leeway_and_an_api_key_has_no_end(services):
    settings = with_keys(services, jwt_secret=SECRET).settings
    authenticator = Authenticator(settings)
    exp = int(time.time()) + 600
    token = jwt.encode({"sub": "alice", "role": "analyst", "exp": exp}, SECRET, algorithm="HS256")
    for _ in range(2):  # verified, then remembered
        principal, until = authenticator.authenticate_until(token)
        assert principal.subject == "jwt:alice" and until == exp + credentials.LEEWAY_S
    assert authenticator.authenticate_until(KEYS[Role.VIEWER])[1] is None


async def test_an_operation_after_the_credential_expired_closes_the_socket_4403(services, monkeypatch):
    configured = with_keys(services, jwt_secret=SECRET)
    token = mint_token(configured.settings, "alice", Role.ADMIN, 600)
    async with client_of(configured) as client:
        ws = await open_ws(client, token)
        assert (await run(ws, "1", "{ health { status } }"))["type"] == "next"
        later = time.time() + 600 + credentials.LEEWAY_S + 1
        monkeypatch.setattr(websocket, "clock", lambda: later)
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": "{ health { status } }"}})
        code, reason = await closed(ws)
        assert code == 4403 and "expired" in reason


async def test_a_running_subscription_ends_when_the_credential_expires(services, monkeypatch):
    configured = with_keys(services, jwt_secret=SECRET)
    token = mint_token(configured.settings, "alice", Role.VIEWER, 600)
    # The socket's clock runs 2 s short of the token's end (a real token, a moved clock).
    offset = 600 + credentials.LEEWAY_S - 2
    monkeypatch.setattr(websocket, "clock", lambda: time.time() + offset)
    async with client_of(configured) as client:
        ws = await open_ws(client, token)
        subscription = "subscription { health(intervalSeconds: 0.1, count: 0) { status } }"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        # An endless subscription: only the expiry ends it (were it refused at subscribe, the
        # close would say the same, so this also holds on a machine too slow to see an event first).
        while (message := await ws.receive(timeout=30)).type.name == "TEXT":
            assert message.json()["type"] == "next"
        assert ws.close_code == 4403 and "expired" in str(message.extra)


# 3. Rate limit and request timeout


async def test_operations_count_against_the_credentials_rate_limit(services):
    limits = (("viewer", 3), ("analyst", 3), ("admin", 3))
    async with client_of(with_keys(services, rate_limits=limits, rate_window_s=3600)) as client:
        for _ in range(2):
            response = await client.post(
                "/graphql", json={"query": "{ health { status } }"}, headers=bearer(Role.VIEWER)
            )
            assert response.status == 200
        ws = await open_ws(client, KEYS[Role.VIEWER])
        assert (await run(ws, "1", "{ health { status } }"))["type"] == "next"  # the third request
        refused = await run(ws, "2", "{ health { status } }")
        assert refused["type"] == "error" and refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # The socket stays open, and HTTP shares the count.
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=10))["type"] == "pong"
        response = await client.post(
            "/graphql", json={"query": "{ health { status } }"}, headers=bearer(Role.VIEWER)
        )
        assert response.status == 429
        # Another credential has its own count.
        other = await open_ws(client, KEYS[Role.ANALYST])
        assert (await run(other, "1", "{ health { status } }"))["type"] == "next"
        await ws.close()
        await other.close()


async def test_an_operation_completed_before_it_ran_is_counted_and_forgotten(services, monkeypatch):
    # subscribe + complete in one burst: strawberry cancels the task before it starts. It used to cost
    # no rate limit and leave its extensions (any size) in the handler for the socket's lifetime.
    handlers: list[Any] = []
    created = websocket.FunnelTransportWS.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        created(self, *args, **kwargs)
        handlers.append(self)

    monkeypatch.setattr(websocket.FunnelTransportWS, "__init__", spy)
    limits = (("viewer", 5), ("analyst", 5), ("admin", 5))
    async with client_of(with_keys(services, rate_limits=limits, rate_window_s=3600)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        padding = {"padding": "x" * 10_000}
        for i in range(20):
            payload = {"query": "{ health { status } }", "extensions": padding}
            await ws.send_json({"id": f"o{i}", "type": "subscribe", "payload": payload})
            await ws.send_json({"id": f"o{i}", "type": "complete"})
        await ws.send_json({"type": "ping"})
        while (await ws.receive_json(timeout=20))["type"] != "pong":
            pass
        assert handlers[-1].extensions == {}
        # 20 sent against a limit of 5: the next operation is refused.
        refused = await run(ws, "after", "{ health { status } }")
        assert refused["type"] == "error" and refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        await ws.close()


async def test_a_registration_that_is_not_a_document_is_not_stored_over_the_socket(services):
    text = "this is { not graphql"
    named = {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}
    async with client_of(with_keys(services, persisted_queries="apq")) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": text, "extensions": named}})
        await ws.receive(timeout=20)  # refused, as the same text without a hash is
        by_hash = await client.post("/graphql", json={"extensions": named}, headers=bearer(Role.VIEWER))
        assert "PERSISTED_QUERY_NOT_FOUND" in await by_hash.text()


async def test_an_address_holds_at_most_its_share_of_sockets(services):
    import aiohttp

    async with client_of(with_keys(services, max_sockets_per_address=2)) as client:
        first = await client.ws_connect("/graphql", **SOCKET)  # not authenticated yet: still counted
        second = await open_ws(client, KEYS[Role.VIEWER])
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/graphql", **SOCKET)
        assert refused.value.status == 429
        await first.close()
        third = await open_ws(client, KEYS[Role.VIEWER])  # a closed socket frees its place
        await second.close()
        await third.close()


async def test_the_sockets_cap_refusal_is_json_with_a_code(services):
    # Like the edge's refusals of the same handshake: the GraphQL error shape, in the media type the
    # client accepts, with a code; still 429, and readable by an allowed origin (its CORS headers).
    app = "https://app.example"
    handshake = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "graphql-transport-ws",
        "Origin": app,
    }
    async with client_of(with_keys(services, max_sockets_per_address=1, cors_origins=(app,))) as client:
        held = await client.ws_connect("/graphql", headers={"Origin": app}, **SOCKET)
        for accept, media in ((None, "application/json"), (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE)):
            headers = handshake if accept is None else {**handshake, "Accept": accept}
            refused = await client.get("/graphql", headers=headers)
            assert refused.status == 429
            assert refused.content_type == media
            assert refused.headers["Access-Control-Allow-Origin"] == app
            assert await refused.json(content_type=None) == {
                "errors": [
                    {
                        "message": "1 WebSockets are open from this address (FUNNEL_MAX_SOCKETS_PER_ADDRESS)",
                        "extensions": {"code": "TOO_MANY_SOCKETS"},
                    }
                ]
            }
        await held.close()


async def next_of(ws: Any, wanted: set[str]) -> set[str]:
    """Read until each operation in ``wanted`` has sent a ``next``; fails on an error or a complete."""
    seen: set[str] = set()
    while seen != wanted:
        message = await ws.receive_json(timeout=20)
        assert message["type"] == "next", message
        seen.add(message["id"])
    return seen


async def test_one_operation_over_the_sockets_cap_is_refused_with_a_code(services):
    # strawberry's own refusal (its fixed 100) said "Subscription limit reached": no code, no setting.
    forever = {"query": "subscription { health(intervalSeconds: 0.1) { status } }"}
    async with client_of(with_keys(services, max_operations_per_socket=3)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        for op in ("1", "2", "3"):
            await ws.send_json({"id": op, "type": "subscribe", "payload": forever})
        await next_of(ws, {"1", "2", "3"})  # all three run
        await ws.send_json({"id": "4", "type": "subscribe", "payload": forever})
        refused = None
        while refused is None:  # the three keep sending while the fourth is refused
            message = await ws.receive_json(timeout=20)
            if message["id"] == "4":
                refused = message
            else:
                assert message["type"] == "next", message
        assert refused["type"] == "error"
        [error] = refused["payload"]
        assert error["extensions"] == {"code": "TOO_MANY_OPERATIONS"}
        assert "3 operations" in error["message"] and "FUNNEL_MAX_OPERATIONS_PER_SOCKET" in error["message"]
        await next_of(ws, {"1", "2", "3"})  # the socket and the first three carry on
        # Completing one frees its place: a new operation (a query this time) runs.
        await ws.send_json({"id": "1", "type": "complete"})
        await ws.send_json({"id": "5", "type": "subscribe", "payload": {"query": "{ health { status } }"}})
        five = [m async for m in _until_complete(ws, "5")]
        assert [m["type"] for m in five] == ["next", "complete"], five
        await ws.close()


async def _until_complete(ws: Any, op: str) -> Any:
    """The messages of ``op`` until its complete (or error); other operations' messages are skipped."""
    while True:
        message = await ws.receive_json(timeout=20)
        if message.get("id") != op:
            continue
        yield message
        if message["type"] in ("complete", "error"):
            return


async def test_queries_time_out_and_subscriptions_do_not(services):
    query = "{ funnelTrend(interval: DAY) { period conversionRate } topPaths(limit: 5) { path } }"
    async with client_of(with_keys(services, request_timeout_s=0.001)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        answer = await run(ws, "1", query)
        assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "TIMEOUT"
        # A subscription outlives the request timeout: both of its events arrive (0.1 s apart).
        subscription = "subscription { health(intervalSeconds: 0.1, count: 2) { status } }"
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": subscription}})
        messages = [await ws.receive_json(timeout=20) for _ in range(3)]
        assert [m["type"] for m in messages] == ["next", "next", "complete"]
        await ws.close()


async def test_each_funnel_updates_computation_runs_under_the_request_timeout(services):
    subscription = 'subscription { funnelUpdates(steps: ["home_page", "search_page"]) { steps { users } } }'
    async with client_of(with_keys(services, request_timeout_s=0.001)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        message = await ws.receive_json(timeout=20)
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["TIMEOUT"], message
        await ws.close()


# 4. Persisted-query allow-list


async def test_the_allowlist_applies_over_the_socket(services, tmp_path):
    allowed, other = "{ health { status } }", "{ users(first: 3) { totalCount } }"
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, [Operation(sha256(allowed), allowed)])
    configured = with_keys(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    async with client_of(configured) as client:
        ws = await open_ws(client, KEYS[Role.ADMIN])
        assert (await run(ws, "1", allowed))["payload"]["data"] == {"health": {"status": "ok"}}
        refused = await run(ws, "2", other)
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
        # By hash alone, the registered operation runs.
        named = {"persistedQuery": {"version": 1, "sha256Hash": sha256(allowed)}}
        await ws.send_json({"id": "3", "type": "subscribe", "payload": {"extensions": named}})
        assert (await ws.receive_json(timeout=20))["payload"]["data"] == {"health": {"status": "ok"}}
        assert (await ws.receive_json(timeout=20)) == {"id": "3", "type": "complete"}
        # An unregistered text with its hash: not allowed, as without it (not "not found").
        other_named = {"persistedQuery": {"version": 1, "sha256Hash": sha256(other)}}
        payload = {"query": other, "extensions": other_named}
        await ws.send_json({"id": "4", "type": "subscribe", "payload": payload})
        with_hash = await ws.receive_json(timeout=20)
        assert with_hash["type"] == "error", with_hash
        assert with_hash["payload"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
        await ws.close()


# 5. Malformed frames


MALFORMED = [
    "[1, 2]",
    '"str"',
    "1",
    '{"type": 7}',
    '{"type": "subscribe", "id": "1", "payload": "x"}',
    '{"type": "subscribe", "id": ["a"], "payload": {"query": "{ health { status } }"}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": 123}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ health { status } }", "variables": [1]}}',
    '{"type": "complete", "id": {"a": 1}}',
    '{"type": "subscribe", "id": "%s", "payload": {"query": "{ health { status } }"}}' % ("x" * 65),
    "[" * 50_000 + "]" * 50_000,
]


@pytest.mark.parametrize("authenticated", [False, True], ids=["before-init", "after-ack"])
@pytest.mark.parametrize("frame", MALFORMED, ids=range(len(MALFORMED)))
async def test_a_malformed_frame_closes_4400_with_a_reason_and_no_traceback(
    services, caplog, frame, authenticated
):
    caplog.set_level(logging.ERROR)
    async with client_of(with_keys(services)) as client:
        if authenticated:
            ws = await open_ws(client, KEYS[Role.VIEWER])
        else:
            ws = await client.ws_connect("/graphql", **SOCKET)
        await ws.send_str(frame)
        code, reason = await closed(ws)
    assert code == 4400 and reason
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# 6. PII over userActivity


@pytest.mark.parametrize(("role", "expected"), [(Role.ANALYST, None), (Role.ADMIN, "call me on 0123")])
async def test_user_activity_masks_form_values_below_admin(services, role, expected):
    async with client_of(with_keys(services)) as client:
        ws = await open_ws(client, KEYS[role])
        subscription = "subscription { userActivity(userId: 2) { eventId element value } }"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        await wait_for_subscription(services.cache)
        event = {
            "type": "interaction", "eventId": f"pii-{role.label}", "userId": 2, "pageType": "payment_page",
            "interactionType": "form", "element": "note", "value": "call me on 0123",
        }  # fmt: skip
        response = await client.post("/events", json=[event], headers=bearer(Role.ADMIN))
        assert response.status == 200
        message = await ws.receive_json(timeout=20)
        assert message["payload"]["data"]["userActivity"] == {
            "eventId": f"pii-{role.label}", "element": "note", "value": expected,
        }  # fmt: skip
        await ws.close()


# 7. connection_init wait


async def test_a_socket_that_never_initialises_is_closed_4408(services, monkeypatch):
    assert timedelta(seconds=10) >= websocket.INIT_TIMEOUT  # not strawberry's minute
    monkeypatch.setattr(app_module, "INIT_TIMEOUT", timedelta(seconds=0.2))
    async with client_of(with_settings(services)) as client:
        ws = await client.ws_connect("/graphql", **SOCKET)
        code, _ = await closed(ws)
    assert code == 4408


async def test_a_null_connection_init_payload_means_no_parameters(services):
    async with client_of(with_settings(services)) as client:  # authentication off: nothing to send
        ws = await client.ws_connect("/graphql", **SOCKET)
        await ws.send_json({"type": "connection_init", "payload": None})
        assert (await ws.receive_json(timeout=10)) == {"type": "connection_ack", "payload": {"role": "admin"}}
        await ws.close()


# 8. Close reasons fit a close frame (RFC 6455: 125 bytes, the code's 2 included)


@pytest.mark.parametrize(
    ("frame", "starts"),
    [
        ({"type": "x" * 300}, "Unknown message type: xxx"),
        ({"type": "é" * 200}, "Unknown message type: ééé"),  # 2 bytes each: the cut falls inside one
        (
            {"type": "subscribe", "id": "1", "payload": {"query": "{ health { status } }", "variables": [1]}},
            None,
        ),
    ],
    ids=["ascii", "two-byte characters", "short"],
)
async def test_every_close_reason_fits_a_close_frame(services, frame, starts):
    # aiohttp's client (like a browser) refuses a close frame over 125 bytes: it saw no 4400 at all, only
    # "Control frame payload cannot be larger than 125 bytes" (324 bytes of reason for the first frame).
    async with client_of(with_keys(services)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        await ws.send_json(frame)
        code, reason = await closed(ws)
    assert code == 4400
    assert 0 < len(reason.encode()) <= 123
    if starts is None:
        assert reason == "Invalid message: payload.variables must be an object"  # short: kept whole
    else:
        assert reason.startswith(starts) and reason.endswith("...")
        assert len(reason.encode()) >= 123 - 1  # cut only as far as the last whole character needs
        assert reason[:-3] == f"Unknown message type: {frame['type']}"[: len(reason) - 3]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (b"x" * 123, b"x" * 123),
        (b"x" * 124, b"x" * 120 + b"..."),
        ("é".encode() * 62, "é".encode() * 60 + b"..."),  # 124 bytes: 120 kept end between characters
        (b"y" + "é".encode() * 62, b"y" + "é".encode() * 59 + b"..."),  # byte 120 would halve an é
        ("€".encode() * 42, "€".encode() * 40 + b"..."),  # 3 bytes each: 120 is a boundary
        (b"ab" + "€".encode() * 41, b"ab" + "€".encode() * 39 + b"..."),  # 2 + 39 * 3 = 119
    ],
)
def test_a_close_reason_is_cut_on_a_character_boundary(reason, expected):
    assert websocket.close_reason(reason) == expected
    assert len(expected) <= 123


# 9. A mistake in one operation is that operation's: an `error` for its id, the socket goes on

LIVE = {"query": "subscription { health(intervalSeconds: 0.1, count: 0) { status } }"}


async def _the_error_of(ws: Any, op: str, live: str) -> dict[str, Any]:
    """``op``'s message (it must be its only one, an error); ``live``'s ``next`` messages are skipped."""
    while True:
        message = await ws.receive_json(timeout=20)
        if message.get("id") == live:
            assert message["type"] == "next", message
            continue
        assert message["id"] == op and message["type"] == "error", message
        return message


async def _still_running(ws: Any, live: str) -> None:
    """``live`` sends two more events: it survived what came before (and nothing else arrives)."""
    for _ in range(2):
        message = await ws.receive_json(timeout=20)
        assert message == {"id": live, "type": "next", "payload": {"data": {"health": {"status": "ok"}}}}


# (document, operationName) -> (code, message): HTTP's answer to the same request (checked below too)
OPERATION_MISTAKES: dict[str, tuple[str, str | None, str, str]] = {
    "unknown name of a subscription": (
        "subscription A { health { status } }", "B", "BAD_REQUEST", 'Unknown operation named "B".'
    ),
    "unknown name of a query": ("query A { health { status } }", "B", "BAD_REQUEST", 'Unknown operation named "B".'),
    "no operation at all": (
        "fragment F on Query { health { status } }", None, "BAD_REQUEST", "Can't get GraphQL operation type"
    ),
    "syntax error": (
        "subscription { health { status ", None, "GRAPHQL_PARSE_FAILED", "Syntax Error: Expected Name, found <EOF>."
    ),
    "over FUNNEL_MAX_QUERY_CHARS (200 here)": (
        "subscription { health { status } }" + " " * 200, None, "QUERY_TOO_LARGE",
        "Syntax Error: Source contains more than 200 code points. Parsing aborted. "
        "(limits: FUNNEL_MAX_QUERY_CHARS, FUNNEL_MAX_TOKENS)",
    ),
    "over FUNNEL_MAX_TOKENS (40 here)": (
        "subscription{" + "a{b}" * 12 + "}", None, "QUERY_TOO_LARGE",  # 51 tokens in 62 characters
        "Syntax Error: Document contains more than 40 tokens. Parsing aborted. "
        "(limits: FUNNEL_MAX_QUERY_CHARS, FUNNEL_MAX_TOKENS)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("mistake", OPERATION_MISTAKES)
async def test_a_mistake_in_a_subscribe_is_an_error_for_it_and_the_sockets_other_subscription_runs_on(
    services, caplog, mistake
):
    # Each once closed the socket with 4400 (a syntax error, the size and token limits: strawberry's
    # parser reports those as syntax errors) or answered INTERNAL_SERVER_ERROR with a traceback (an
    # unknown operationName); either way a live subscription on the same socket ended, or the log lied.
    document, operation_name, code, text = OPERATION_MISTAKES[mistake]
    caplog.set_level(logging.INFO, logger="funnelgate.graphql")
    async with client_of(with_keys(services, max_query_chars=200, max_tokens=40)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        await ws.send_json({"id": "live", "type": "subscribe", "payload": LIVE})
        await _still_running(ws, "live")
        caplog.clear()
        payload = {"query": document, "operationName": operation_name}
        await ws.send_json({"id": "bad", "type": "subscribe", "payload": payload})
        [error] = (await _the_error_of(ws, "bad", "live"))["payload"]
        assert (error["extensions"], error["message"]) == ({"code": code}, text)
        await _still_running(ws, "live")
        assert not ws.closed
        await ws.close()
        logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "funnelgate.graphql"]
        assert logged == [(logging.INFO, f"client error {code} at request: {text.split(' (limits')[0]}")]
        # HTTP answers the same request with the same code and message.
        response = await client.post(
            "/graphql", json=payload, headers={**bearer(Role.VIEWER), "Accept": GRAPHQL_RESPONSE}
        )
        assert response.status == 400
        [over_http] = (await response.json())["errors"]
        assert (over_http["extensions"]["code"], over_http["message"]) == (code, text)


async def test_an_unknown_operation_name_is_echoed_as_json_and_cut(services):
    name = 'a"' + "x" * 1_000
    async with client_of(with_keys(services)) as client:
        ws = await open_ws(client, KEYS[Role.VIEWER])
        payload = {"query": "query A { health { status } }", "operationName": name}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        message = await ws.receive_json(timeout=20)
        await ws.close()
    [error] = message["payload"]
    # JSON's quote escape; the first 200 characters of that JSON text ("a\" is 4, then 196 x); the
    # name's own length.
    assert error["message"] == 'Unknown operation named "a\\"' + "x" * 196 + "... (1,002 characters)."
    assert error["extensions"] == {"code": "BAD_REQUEST"}
