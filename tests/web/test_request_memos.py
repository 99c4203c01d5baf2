"""What the request path remembers between requests (accepted API keys, admitted Host values, small
request bodies with what they were read into, response-cache keys per role) changes no answer: a refusal
is decided again every time, a role never gets another role's key, and every memory is bounded."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from graphql import parse, print_ast
from multidict import CIMultiDict

from gateway.cache import keys, responses
from gateway.cache.stats import CacheStats
from gateway.config import load_settings
from gateway.errors import Unauthenticated
from gateway.roles import ANONYMOUS, Role
from gateway.security.credentials import Authenticator, key_entry, new_api_key
from gateway.security.limits import Limits
from gateway.security.persisted import Operation, PersistedQueries, write_manifest
from gateway.web.edge import PRINCIPAL
from gateway.web.requests import MEMO_BODIES, MEMO_BODY_BYTES, PREPARED, GraphQLRequest, RequestReader
from gateway.web.response_cache import _Keys
from tests.security.conftest import KEYS, bearer, client_of, with_keys, with_settings

FORM_VALUES = '{ session(id: "s1") { interactions { element value } } }'
FUNNEL = "query Steps { funnel { steps { name users } } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def response_key(role: Role, text: str, variables: Any = None) -> str:
    """The whole-response key computed from scratch (as gateway/cache/responses.py defines it)."""
    digest = responses.document_digest(print_ast(parse(text)), None, Limits().fingerprint())
    return responses.request_key(role.label, digest, variables)


# -- API keys -----------------------------------------------------------------------------------------
def test_an_unknown_key_is_refused_every_time_and_is_not_remembered(tmp_path):
    known = new_api_key()
    auth = Authenticator(
        load_settings(
            env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_API_KEYS": key_entry("ci", Role.VIEWER, known)}
        )
    )
    assert auth.authenticate(known) is auth.authenticate(known)  # remembered: the same principal
    for _ in range(3):
        for _ in range(100):
            try:
                auth.authenticate(new_api_key())
            except Unauthenticated as exc:
                assert "unknown API key" in str(exc)
            else:
                raise AssertionError("an unknown key was accepted")
    assert len(auth._accepted) == 1  # one configured key: never more than one remembered


async def test_a_key_taken_out_of_the_configuration_is_refused_on_every_request(services):
    query = {"query": "{ health { status } }"}
    async with client_of(with_keys(services)) as client:
        for _ in range(2):
            assert (await client.post("/graphql", json=query, headers=bearer(Role.VIEWER))).status == 200
    # The same key set without the viewer's key: a new process (or app) no longer knows it.
    revoked = tuple(e for e in with_keys(services).settings.api_keys if not e.startswith("viewer-client:"))
    async with client_of(with_settings(services, api_keys=revoked)) as client:
        assert (await client.post("/graphql", json=query, headers=bearer(Role.ADMIN))).status == 200
        for _ in range(3):
            refused = await client.post("/graphql", json=query, headers=bearer(Role.VIEWER))
            assert refused.status == 401
            assert (await refused.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        for _ in range(3):  # and a key that was never configured, after it
            wrong = {"Authorization": f"Bearer {KEYS[Role.VIEWER]}x"}
            assert (await client.post("/graphql", json=query, headers=wrong)).status == 401


async def test_a_refused_host_stays_refused_after_an_admitted_one(services):
    async with client_of(services) as client:
        for _ in range(2):
            assert (await client.get("/graphql", params={"query": "{ health { status } }"})).status == 200
            refused = await client.get("/healthz", headers={"Host": "evil.example"})
            assert refused.status == 200  # /healthz is exempt
            refused = await client.get(
                "/graphql", params={"query": "{ health { status } }"}, headers={"Host": "evil.example"}
            )
            assert refused.status == 421


# -- the same body, read once -------------------------------------------------------------------------
async def test_one_body_read_by_two_roles_gets_each_roles_answer_and_key(services):
    body = json.dumps({"query": FORM_VALUES})
    json_body = {"Content-Type": "application/json"}
    async with client_of(with_keys(services)) as client:

        async def ask(role: Role) -> tuple[str | None, Any]:
            response = await client.post("/graphql", data=body, headers={**bearer(role), **json_body})
            return response.headers.get("X-Cache"), (await response.json())["data"]

        def value(data: Any) -> Any:
            return data["session"]["interactions"][1]["value"]

        cache, admin = await ask(Role.ADMIN)
        assert cache == "miss" and value(admin).startswith("I love this store")
        cache, analyst = await ask(Role.ANALYST)  # the same bytes: read from memory, keyed by its own role
        assert cache == "miss" and value(analyst) is None
        for _ in range(2):
            cache, again = await ask(Role.ANALYST)
            assert cache == "hit" and value(again) is None
            cache, again = await ask(Role.ADMIN)
            assert cache == "hit" and value(again) == value(admin)
    stored = await services.cache.get_many([response_key(r, FORM_VALUES) for r in (Role.ADMIN, Role.ANALYST)])
    assert all(entry is not None for entry in stored)


async def test_an_allow_list_refusal_is_repeated_and_a_registered_body_still_runs(services, tmp_path):
    manifest = tmp_path / "persisted.json"
    write_manifest(manifest, [Operation(sha(FUNNEL), FUNNEL, "Steps")])
    configured = with_settings(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    other = {"query": "{ health { status } }"}
    async with client_of(configured) as client:
        for _ in range(3):
            refused = await client.post("/graphql", json=other)
            assert refused.status == 400
            assert (await refused.json())["errors"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
            allowed = await (await client.post("/graphql", json={"query": FUNNEL})).json()
            assert "errors" not in allowed and allowed["data"]["funnel"]["steps"]


async def test_apq_registration_writes_every_time_and_a_found_hash_keeps_answering(services):
    with_text = {"query": FUNNEL, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(FUNNEL)}}}
    by_hash = {"extensions": with_text["extensions"]}
    stored = keys.persisted_query(sha(FUNNEL))
    async with client_of(services) as client:
        unknown = await (await client.post("/graphql", json=by_hash)).json()
        assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        for _ in range(2):
            await services.cache.delete([stored])
            assert "errors" not in await (await client.post("/graphql", json=with_text)).json()
            assert await services.cache.get_many([stored]) == [FUNNEL.encode()]  # written again
        first = await (await client.post("/graphql", json=by_hash)).json()
        assert "errors" not in first
        again = await (await client.post("/graphql", json=by_hash)).json()  # the same bytes, from memory
        assert again["data"] == first["data"]


class _Request(dict):
    """What RequestReader.prepare reads of an aiohttp request."""

    method = "POST"
    query: dict[str, str] = {}
    headers = CIMultiDict({"Content-Type": "application/json"})

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self[PRINCIPAL] = ANONYMOUS  # the edge admitted it

    async def read(self) -> bytes:
        return self.body


async def test_the_body_memory_is_bounded_and_skips_large_bodies():
    reader = RequestReader(PersistedQueries(None, CacheStats(), "apq", {}), Limits())  # type: ignore[arg-type]

    async def prepared(body: bytes) -> GraphQLRequest:
        request = _Request(body)
        assert await reader.prepare(request) is None  # type: ignore[arg-type]
        return request[PREPARED]

    small = json.dumps({"query": FUNNEL, "variables": {"w": 1}}).encode()
    first = await prepared(small)
    assert first.shared and first.variables == {"w": 1} and first.query == FUNNEL
    assert await prepared(small) is first  # read once
    for i in range(MEMO_BODIES + 50):
        await prepared(json.dumps({"query": FUNNEL, "variables": {"v": i}}).encode())
    assert len(reader._bodies.data) == MEMO_BODIES
    large = json.dumps({"query": FUNNEL, "variables": {"pad": "x" * MEMO_BODY_BYTES}}).encode()
    one, two = await prepared(large), await prepared(large)
    assert one is not two and not one.shared and one == two and one.query == FUNNEL
    assert small not in reader._bodies.data  # the oldest went first
    assert len(reader._bodies.data) == MEMO_BODIES


async def test_a_shared_request_keeps_a_key_per_role_equal_to_the_computed_one():
    keys_ = _Keys(frozenset({"funnel"}), Limits())
    text = "query Q($w: Int!) { funnel(conversionWindowSeconds: $w) { overallConversionRate } }"
    shared = GraphQLRequest(text, {"w": 60}, None, None, derived={})
    for _ in range(2):
        for role in (Role.VIEWER, Role.ADMIN):
            assert await keys_.key(shared, role.label) == response_key(role, text, {"w": 60})
    not_cacheable = GraphQLRequest("mutation { trackEvents(events: []) { accepted } }", None, None, None, {})
    for _ in range(2):
        assert await keys_.key(not_cacheable, "viewer") is None
