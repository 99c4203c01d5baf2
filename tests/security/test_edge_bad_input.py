"""What a client can get wrong at the edge, case by case, over HTTP: each answer is the expected 4xx or a
coded GraphQL error, never a 5xx (the credentials, the body size, persisted-query envelopes, page sizes)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from gateway.roles import Role
from tests.security.conftest import bearer, client_of, with_keys
from tests.security.test_slow_clients import served, split_response, until_closed

HEALTH = {"query": "{ health { status } }"}


def _b64(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


UNSIGNED_JWT = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64({"sub": "eve", "role": "admin"}) + "."


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",  # no credential after the scheme
        "Bearer ",
        "bearer",
        "Bearer a b",  # two tokens
        "Token fgk_test-admin-key",  # another scheme
        f"Bearer {UNSIGNED_JWT}",  # alg none: never accepted
        "Bearer not.a.jwt",
        "Bearer " + "x" * 4_000,  # a long unknown key (past 8,190 bytes aiohttp's parser answers 400)
        "Bearer fgk_test-admin-key-0123456789abcdefghijklmno",  # one character short of a real key
    ],
)
async def test_each_malformed_credential_is_401_unauthenticated(services, authorization):
    async with client_of(with_keys(services)) as client:
        response = await client.post("/graphql", json=HEALTH, headers={"Authorization": authorization})
        assert response.status == 401
        body = await response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_body_over_the_size_limit_is_413_and_the_credential_is_checked_first(services):
    # max(FUNNEL_MAX_BODY_BYTES (1 MiB), 4 x FUNNEL_MAX_QUERY_CHARS (20,000 by default)): 1 MiB here.
    body = json.dumps({"query": "{ health { status } }" + " " * (1 << 20)})
    headers = {"Content-Type": "application/json"}
    async with client_of(with_keys(services)) as client:
        anonymous = await client.post("/graphql", data=body, headers=headers)
        assert anonymous.status == 401  # nothing is read for a caller without a credential
        admin = await client.post("/graphql", data=body, headers={**headers, **bearer(Role.ADMIN)})
        assert admin.status == 413
        # the connection and the server are fine afterwards
        after = await client.post("/graphql", json=HEALTH, headers=bearer(Role.VIEWER))
        assert after.status == 200 and (await after.json())["data"] == {"health": {"status": "ok"}}


@pytest.mark.parametrize(
    ("extensions", "status"),
    [
        ({"persistedQuery": "abc"}, 400),  # not an object
        ({"persistedQuery": {"version": 1}}, 400),  # no hash
        ({"persistedQuery": {"version": 1, "sha256Hash": 12}}, 400),  # not a string
        ({"persistedQuery": {"version": 1, "sha256Hash": "zz" * 32}}, 400),  # not hex
        ({"persistedQuery": {"version": "1", "sha256Hash": "ab" * 32}}, 400),  # version not a number
        ("not an object", 400),
    ],
)
async def test_malformed_persisted_query_envelopes_are_400(services, extensions, status):
    async with client_of(with_keys(services)) as client:
        response = await client.post(
            "/graphql", json={**HEALTH, "extensions": extensions}, headers=bearer(Role.VIEWER)
        )
        text = await response.text()
    assert response.status == status, text


NOT_AN_ENVELOPE = 'extensions.persistedQuery must be an object {"version": 1, "sha256Hash": "<64 hexadecimal digits>"}, got '


@pytest.mark.parametrize(
    ("persisted", "message"),
    [
        ("x", NOT_AN_ENVELOPE + "a string"),
        ([1], NOT_AN_ENVELOPE + "an array"),
        ({"version": 2, "sha256Hash": "ab" * 32}, "Unsupported persisted query version"),  # Apollo's words
    ],
)
async def test_a_persisted_query_that_is_no_envelope_says_what_one_is(services, persisted, message):
    async with client_of(with_keys(services)) as client:
        response = await client.post(
            "/graphql", json={"extensions": {"persistedQuery": persisted}}, headers=bearer(Role.VIEWER)
        )
        body = await response.json(content_type=None)
    assert response.status == 400
    assert body["errors"][0]["message"] == message
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_get_with_extensions_that_are_not_json_is_400(services):
    async with client_of(with_keys(services)) as client:
        response = await client.get(
            "/graphql", params={"extensions": "{not json"}, headers=bearer(Role.VIEWER)
        )
        assert response.status == 400, await response.text()


@pytest.mark.parametrize("first", [-1, 0, 1001, 2**31])
async def test_a_page_size_outside_its_range_is_bad_user_input(services, first):
    query = "query($n: Int!) { users(first: $n) { totalCount } }"
    async with client_of(with_keys(services)) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"n": first}}, headers=bearer(Role.ANALYST)
        )
        body = await response.json()
    assert response.status < 500
    codes = [e["extensions"]["code"] for e in body["errors"]]
    assert codes == ["BAD_USER_INPUT"], body


@pytest.mark.parametrize("path", ["/graphql", "/events", "/metrics"])
async def test_a_credential_with_a_byte_past_utf8_is_401_not_a_fault(services, path):
    # Raw bytes: "Bearer fgk_" then 0xE9, as a key typed with an "é" into a page's key dialog is sent
    # (Latin-1). aiohttp reads it as a lone surrogate, which hashing the key used to raise on: a 500
    # with a traceback on every route that checks credentials.
    async with served(with_keys(services)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
                + b"Authorization: Bearer fgk_\xe9\r\nConnection: close\r\nContent-Length: 2\r\n\r\n[]"
            )
            raw = await asyncio.wait_for(until_closed(reader), 10)
        finally:
            writer.close()
    status, _, body = split_response(raw)
    assert status.split()[1] == "401"
    assert "UNAUTHENTICATED" in body.decode()
