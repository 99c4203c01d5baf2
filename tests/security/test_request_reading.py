"""The request reader is the only reader of a GraphQL request: a JSON body under any media type other than
``application/json`` is refused (415) instead of reaching strawberry unread (and skipping the allow-list);
a malformed body or GET parameter is a 400, never a 500; an APQ registration over the document limits
stores nothing and is refused like the same text without a hash."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.cache import keys
from gateway.roles import Role
from gateway.security.persisted import Operation, sha256, write_manifest
from tests.security.conftest import bearer, client_of, with_keys

ALLOWED = "{ health { status } }"
NOT_ALLOWED = "{ users(first: 3) { totalCount } }"
INVALIDATE = "mutation { invalidateCache(scope: RESPONSES) { keysRemoved } }"
NEW = {"Accept": "application/graphql-response+json"}
JSON = {"Content-Type": "application/json"}


def _apq(query: str) -> dict:
    return {"query": query, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}}}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/jsonx",
        "application/json-seq",
        "text/x-application/json",
        "application/json, text/plain",
        "application/x-json",
        "application/graphql-response+json",
    ],
)
async def test_a_json_body_under_another_media_type_is_415_and_never_runs(services, tmp_path, content_type):
    manifest = tmp_path / "allowed.json"
    write_manifest(manifest, [Operation(sha256(ALLOWED), ALLOWED)])
    settings = with_keys(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    async with client_of(settings) as client:
        for query in (NOT_ALLOWED, INVALIDATE, ALLOWED):
            headers = {**bearer(Role.ADMIN), "Content-Type": content_type}
            response = await client.post("/graphql", data=json.dumps({"query": query}), headers=headers)
            assert response.status == 415, (query, await response.text())
            assert "data" not in await response.text()
        coded = await client.post(
            "/graphql",
            data=json.dumps({"query": NOT_ALLOWED}),
            headers={**bearer(Role.ADMIN), **NEW, "Content-Type": content_type},
        )
        assert coded.status == 415
        code = (await coded.json(content_type=None))["errors"][0]["extensions"]["code"]
        assert code == "UNSUPPORTED_MEDIA_TYPE"


async def test_application_json_in_any_case_with_parameters_is_read_and_the_allow_list_applies(
    services, tmp_path
):
    manifest = tmp_path / "allowed.json"
    write_manifest(manifest, [Operation(sha256(ALLOWED), ALLOWED)])
    settings = with_keys(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    async with client_of(settings) as client:
        for content_type in ("application/json", "Application/JSON", "application/json; charset=utf-8"):
            headers = {**bearer(Role.ADMIN), "Content-Type": content_type}
            refused = await client.post("/graphql", data=json.dumps({"query": NOT_ALLOWED}), headers=headers)
            body = await refused.json()
            assert body["errors"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED", content_type
            allowed = await client.post("/graphql", data=json.dumps({"query": ALLOWED}), headers=headers)
            assert (await allowed.json())["data"] == {"health": {"status": "ok"}}, content_type


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
)
async def test_forms_and_other_bodies_keep_the_hint(services, content_type):
    async with client_of(with_keys(services)) as client:
        headers = {**bearer(Role.ADMIN), "Content-Type": content_type}
        response = await client.post("/graphql", data=json.dumps({"query": ALLOWED}), headers=headers)
        [error] = (await response.json())["errors"]
    assert response.status == 400
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["message"].startswith(
        "Unsupported content type: POST a JSON body with Content-Type: application/json"
    )


DEEP = "[" * 50_000 + "]" * 50_000
DEEP_VARIABLES = (
    '{"query": "{ health { status } }", "variables": ' + '{"a":' * 30_000 + "1" + "}" * 30_000 + "}"
)

# name -> (method, keyword arguments, a fragment of the reason)
MALFORMED = {
    "a deeply nested body": ("post", {"data": DEEP, "headers": JSON}, "nests more than 100 levels"),
    "deeply nested variables": (
        "post",
        {"data": DEEP_VARIABLES, "headers": JSON},
        "nests more than 100 levels",
    ),
    "variables one level past the limit": (  # the body: its object, variables, 99 lists
        "post",
        {
            "data": json.dumps({"query": ALLOWED, "variables": {"a": json.loads("[" * 99 + "]" * 99)}}),
            "headers": JSON,
        },
        "nests more than 100 levels",
    ),
    "deeply nested GET variables": (
        "get",
        {"params": {"query": ALLOWED, "variables": "[" * 500 + "]" * 500}},
        "the variables parameter is not valid JSON: the JSON nests more than 100 levels",
    ),
    "GET variables that are not JSON": (
        "get",
        {"params": {"query": ALLOWED, "variables": "notjson"}},
        "the variables parameter is not valid JSON",
    ),
    "GET extensions that are not JSON": (
        "get",
        {"params": {"query": ALLOWED, "extensions": "{"}},
        "the extensions parameter is not valid JSON",
    ),
    "a batch": ("post", {"json": [{"query": ALLOWED}]}, "expected a JSON object, got an array"),
    "a query that is a number": ("post", {"json": {"query": 1}}, "`query` must be a string or null"),
    "variables that are a list": (
        "post",
        {"json": {"query": ALLOWED, "variables": [1]}},
        "`variables` must be an object or null",
    ),
    "not JSON at all": ("post", {"data": "{nope", "headers": JSON}, "Unable to parse request body as JSON"),
    # The request object's fields are read one by one (duplicates: request_json._unique_top_level): a
    # mistake between them is still the parser's.
    "a trailing comma": ("post", {"data": '{"query": "{ a }",}', "headers": JSON}, "Unable to parse"),
    "text after the object": ("post", {"data": '{"query": "{ a }"} x', "headers": JSON}, "Unable to parse"),
    "no colon": ("post", {"data": '{"query" "{ a }"}', "headers": JSON}, "Unable to parse"),
    "a field without its value": ("post", {"data": '{"query": ', "headers": JSON}, "Unable to parse"),
    "whitespace only": ("post", {"data": " ", "headers": JSON}, "Unable to parse"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_every_malformed_request_is_a_400_never_a_500(services, caplog, name):
    method, arguments, reason = MALFORMED[name]
    caplog.set_level(logging.ERROR)
    async with client_of(with_keys(services)) as client:
        send = getattr(client, method)
        headers = {**arguments.pop("headers", {}), **bearer(Role.ADMIN)}
        legacy = await send("/graphql", headers=headers, **arguments)
        legacy_text = await legacy.text()
        coded = await send("/graphql", headers={**headers, **NEW}, **arguments)
        coded_body = await coded.json(content_type=None)
        # the server is fine afterwards
        after = await client.post("/graphql", json={"query": ALLOWED}, headers=bearer(Role.VIEWER))
        assert after.status == 200
    assert (legacy.status, coded.status) == (400, 400)
    assert reason in legacy_text
    assert coded_body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert reason in coded_body["errors"][0]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_variables_at_the_nesting_limit_are_a_graphql_error_not_a_500(services):
    variables = {"p": json.loads("[" * 98 + "]" * 98)}  # 100 levels with the body and variables objects
    query = "query($p: String!) { sentiment(pageType: $p) { texts } }"
    async with client_of(with_keys(services)) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=bearer(Role.ADMIN)
        )
        body = await response.json()
    assert response.status == 200
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def _stored(services, query: str) -> bytes | None:
    [blob] = await services.cache.get_many([keys.persisted_query(sha256(query))])
    return blob


async def test_an_apq_registration_over_the_limits_stores_nothing_and_is_refused_like_the_query(services):
    too_long = "#" + "x" * 30_000 + "\n{ health { status } }"  # FUNNEL_MAX_QUERY_CHARS is 20,000
    too_many_tokens = "{ health { status } }" + " { health { status } }" * 10  # 50+ tokens
    unparsable = "{ health { status "
    fine = "{ health { status } } # registered"
    settings = with_keys(services, max_tokens=40)
    async with client_of(settings) as client:
        for query, code in (
            (too_long, "QUERY_TOO_LARGE"),
            (too_many_tokens, "QUERY_TOO_LARGE"),
            (unparsable, "GRAPHQL_PARSE_FAILED"),
        ):
            registered = await (
                await client.post("/graphql", json=_apq(query), headers=bearer(Role.ADMIN))
            ).json()
            plain = await (
                await client.post("/graphql", json={"query": query}, headers=bearer(Role.ADMIN))
            ).json()
            assert [e["extensions"]["code"] for e in registered["errors"]] == [code], query[:40]
            assert [e["extensions"]["code"] for e in plain["errors"]] == [code], query[:40]
            assert await _stored(services, query) is None, query[:40]
        stored = await (await client.post("/graphql", json=_apq(fine), headers=bearer(Role.ADMIN))).json()
        assert stored["data"] == {"health": {"status": "ok"}}
        assert await _stored(services, fine) == fine.encode()


async def test_an_apq_registration_without_a_credential_stores_nothing(services):
    query = "{ health { status } } # unauthenticated"
    async with client_of(with_keys(services)) as client:
        for headers in ({}, {"Upgrade": "websocket", "Connection": "Upgrade"}):
            response = await client.post("/graphql", json=_apq(query), headers=headers)
            assert response.status == 401
    assert await _stored(services, query) is None


async def test_a_deeply_nested_websocket_message_closes_with_4400(services):
    async with client_of(with_keys(services)) as client:
        before_init = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"])
        await before_init.send_str(DEEP)
        await before_init.receive(timeout=10)
        ws = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"])
        await ws.send_json({"type": "connection_init", "payload": bearer(Role.VIEWER)})
        assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
        await ws.send_str('{"type": "ping", "payload": ' + DEEP + "}")
        await ws.receive(timeout=10)
    assert (before_init.close_code, ws.close_code) == (4400, 4400)
