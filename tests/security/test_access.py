"""Authentication, roles and PII masking over HTTP and WebSocket (issue 12)."""

from __future__ import annotations

import pytest

from gateway.roles import Role
from gateway.security.credentials import mint_token
from tests.security.conftest import KEYS, bearer, client_of, with_keys, with_settings

AGGREGATES = '{ funnel { overallConversionRate } dashboard { sessions } topPaths { path } sentiment(pageType: "payment_page") { texts } health { status } }'
USER_LEVEL = {
    "user": "{ user(id: 1) { id } }",
    "users": "{ users { totalCount } }",
    "session": '{ session(id: "s1") { id } }',
    "journey": "{ journey(userId: 1) { furthestStep } }",
    "similarUsers": "{ similarUsers(userId: 1) { userId } }",
    "droppedOff": '{ droppedOff(afterStep: "home_page") { totalCount } }',
    "converted": "{ converted { totalCount } }",
}
FORM_VALUES = '{ session(id: "s1") { interactions { element value } } }'
GRAPHQL_RESPONSE = {"Accept": "application/graphql-response+json"}


async def test_missing_or_bad_credentials_are_401_and_healthz_stays_open(services):
    async with client_of(with_keys(services)) as client:
        for headers in ({}, {"Authorization": "Bearer fgk_nope"}, {"Authorization": "Basic abc"}):
            response = await client.post("/graphql", json={"query": "{ health { status } }"}, headers=headers)
            assert response.status == 401, headers
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            body = await response.json()
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await client.get("/graphql", params={"query": "{ health { status } }"})).status == 401
        assert (await client.get("/healthz")).status == 200
        page = await client.get("/graphql", headers={"Accept": "text/html"})  # GraphiQL itself is open
        assert page.status == 200 and "graphiql" in (await page.text()).lower()


async def test_a_viewer_reads_aggregates_and_nothing_user_level(services):
    async with client_of(with_keys(services)) as client:
        response = await client.post("/graphql", json={"query": AGGREGATES}, headers=bearer(Role.VIEWER))
        body = await response.json()
        assert response.status == 200 and "errors" not in body, body
        for field, query in USER_LEVEL.items():
            response = await client.post(
                "/graphql", json={"query": query}, headers={**bearer(Role.VIEWER), **GRAPHQL_RESPONSE}
            )
            body = await response.json()
            assert response.status == 403, field
            [error] = body["errors"]
            assert error["extensions"]["code"] == "FORBIDDEN" and error["extensions"]["fields"] == [field]
            assert "needs analyst" in error["message"] and "data" not in body
        # Legacy clients: HTTP 200, data null, the same error.
        response = await client.post(
            "/graphql", json={"query": USER_LEVEL["users"]}, headers=bearer(Role.VIEWER)
        )
        body = await response.json()
        assert response.status == 200 and body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_analyst_reads_user_level_data_with_form_values_masked(services):
    async with client_of(with_keys(services)) as client:
        for query in USER_LEVEL.values():
            response = await client.post("/graphql", json={"query": query}, headers=bearer(Role.ANALYST))
            body = await response.json()
            assert "errors" not in body, (query, body)
        analyst = await (
            await client.post("/graphql", json={"query": FORM_VALUES}, headers=bearer(Role.ANALYST))
        ).json()
        admin = await (
            await client.post("/graphql", json={"query": FORM_VALUES}, headers=bearer(Role.ADMIN))
        ).json()
    assert "errors" not in analyst and "errors" not in admin
    assert [i["value"] for i in analyst["data"]["session"]["interactions"]] == [None, None]
    assert [i["element"] for i in analyst["data"]["session"]["interactions"]] == ["search-box", "feedback"]
    assert admin["data"]["session"]["interactions"][1]["value"].startswith("I love this store")


async def test_cached_answers_never_cross_roles(services):
    """The whole-response cache keys on the role: an analyst never gets the admin's unmasked answer."""
    async with client_of(with_keys(services)) as client:
        first = await client.post("/graphql", json={"query": FORM_VALUES}, headers=bearer(Role.ADMIN))
        assert first.headers.get("X-Cache") == "miss"
        again = await client.post("/graphql", json={"query": FORM_VALUES}, headers=bearer(Role.ADMIN))
        assert again.headers.get("X-Cache") == "hit"
        analyst = await client.post("/graphql", json={"query": FORM_VALUES}, headers=bearer(Role.ANALYST))
        assert analyst.headers.get("X-Cache") == "miss"
        assert (await analyst.json())["data"]["session"]["interactions"][1]["value"] is None


async def test_jwt_roles(services):
    secret = "j" * 40
    configured = with_settings(services, jwt_secret=secret)
    token = mint_token(configured.settings, "alice", Role.ANALYST, 60)
    async with client_of(configured) as client:
        response = await client.post(
            "/graphql", json={"query": USER_LEVEL["users"]}, headers={"Authorization": f"Bearer {token}"}
        )
        assert "errors" not in await response.json()
        expired = mint_token(configured.settings, "alice", Role.ANALYST, -120)
        response = await client.post(
            "/graphql", json={"query": USER_LEVEL["users"]}, headers={"Authorization": f"Bearer {expired}"}
        )
        assert response.status == 401 and "expired" in (await response.json())["errors"][0]["message"]


async def _ws_init(client, payload):
    ws = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"])
    await ws.send_json({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
    return ws


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"Authorization": "Bearer fgk_wrong"},
        {"headers": {"Authorization": "Bearer fgk_wrong"}},
        {"headers": "Bearer fgk_wrong"},
    ],
)
async def test_a_websocket_without_a_good_credential_is_closed_4403(services, payload):
    async with client_of(with_keys(services)) as client:
        ws = await _ws_init(client, payload)
        message = await ws.receive(timeout=5)
        assert message.type.name in ("CLOSE", "CLOSED", "CLOSING") and ws.close_code == 4403
        await ws.close()


@pytest.mark.parametrize(
    "where",
    [
        lambda value: {"Authorization": value},
        lambda value: {"authorization": value},
        lambda value: {"headers": {"Authorization": value}},  # Hasura's and Apollo's examples
    ],
    ids=["top level", "lower case", "in headers"],
)
async def test_a_websocket_authenticates_in_connection_init_and_keeps_its_role(services, where):
    subscription = "subscription { health(intervalSeconds: 0.1, count: 1) { status } }"
    async with client_of(with_keys(services)) as client:
        ws = await _ws_init(client, where(f"Bearer {KEYS[Role.VIEWER]}"))
        ack = await ws.receive_json(timeout=5)
        assert ack == {"type": "connection_ack", "payload": {"role": "viewer"}}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        event = await ws.receive_json(timeout=5)
        assert event["payload"] == {"data": {"health": {"status": "ok"}}}  # no cost on events
        assert (await ws.receive_json(timeout=5))["type"] == "complete"
        # The connection's role holds for every operation on it.
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": USER_LEVEL["users"]}})
        refused = await ws.receive_json(timeout=5)
        assert refused["type"] == "error" and refused["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        await ws.close()


EVENT = [{"type": "page_view", "eventId": "edge-1", "userId": 42, "pageType": "search", "duration": 1.5}]


async def test_capture_and_admin_operations_need_the_admin_role(services):
    invalidate = "mutation { invalidateCache(scope: RESPONSES) { keysRemoved } }"
    track = (
        'mutation { trackEvents(events: [{type: "page_view", userId: 42, pageType: "search"}]) { accepted } }'
    )
    pin = 'mutation { setDefaultFunnel(steps: ["search_page", "payment_page"]) { steps } }'
    default = await services.store.default_funnel()
    async with client_of(with_keys(services, rate_limits=(("admin", 1),))) as client:
        response = await client.post("/events", json=EVENT)
        assert response.status == 401
        assert (await response.json())["code"] == "UNAUTHENTICATED"  # /events' own error shape
        for role in (Role.VIEWER, Role.ANALYST):
            response = await client.post("/events", json=EVENT, headers=bearer(role))
            assert response.status == 403, role
            assert (await response.json())["code"] == "FORBIDDEN"
            for mutation in (invalidate, track, pin):
                body = await (
                    await client.post("/graphql", json={"query": mutation}, headers=bearer(role))
                ).json()
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (role, mutation)
            # A mutation is used, not read: the message says what the role may not do in words that fit.
            assert body["errors"][0]["message"] == (
                f"the {role.label} role may not use setDefaultFunnel (needs admin)"
            )
        assert await services.store.default_funnel() == default  # the refused pin changed nothing
        for n in range(3):  # capture is not counted against the GraphQL rate limit (admin: 1 here)
            response = await client.post(
                "/events", json=[{**EVENT[0], "eventId": f"edge-{n}"}], headers=bearer(Role.ADMIN)
            )
            assert response.status == 200, await response.text()
        body = await (
            await client.post("/graphql", json={"query": invalidate}, headers=bearer(Role.ADMIN))
        ).json()
        assert "errors" not in body, body


async def test_the_dashboard_and_its_files_load_without_a_key_but_their_data_does_not(services):
    async with client_of(with_keys(services)) as client:
        page = await client.get("/", headers={"Accept": "application/xhtml+xml"})
        assert page.status == 200 and "<html" in (await page.text()).lower()
        style = await client.get("/static/common/auth.css", headers={"Accept": "text/css"})
        assert style.status == 200 and "text/css" in style.headers["Content-Type"]
        data = await client.get("/graphql", params={"query": "{ health { status } }"})
        assert data.status == 401
        misdirected = await client.get("/", headers={"Host": "evil.example"})
        assert misdirected.status == 421  # the pages keep the Host check
        assert (await misdirected.json())["errors"][0]["extensions"]["code"] == "MISDIRECTED_REQUEST"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Accept": "*/*"},  # curl's default
        {"Accept": "text/html"},  # a browser's
        {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"},
        {"Upgrade": "websocket", "Connection": "Upgrade"},  # only /graphql's WebSocket may defer auth
    ],
)
async def test_metrics_and_events_need_their_role_whatever_the_accept_or_upgrade_header(services, headers):
    async with client_of(with_keys(services)) as client:
        assert (await client.get("/metrics", headers=headers)).status == 401
        assert (await client.get("/metrics", headers={**headers, **bearer(Role.VIEWER)})).status == 403
        assert (await client.get("/metrics", headers={**headers, **bearer(Role.ADMIN)})).status == 200
        events = await client.post("/events", json=[], headers={**headers, **bearer(Role.ANALYST)})
        assert events.status == 403
