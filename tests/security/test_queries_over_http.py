"""Query limits over HTTP, persisted queries (APQ and the allow-list), and the normalised response cache."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from gateway.cache import keys
from gateway.cli import main
from gateway.web import documents
from tests.security.conftest import client_of, with_settings

ACCEPT = {"Accept": "application/graphql-response+json"}
FUNNEL = "query Steps { funnel { steps { name users } } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text: str | None, digest: str | None = None, version: int = 1) -> dict:
    body: dict = {
        "extensions": {"persistedQuery": {"version": version, "sha256Hash": digest or sha(text or "")}}
    }
    if text is not None:
        body["query"] = text
    return body


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ user(id: 1) { " + "sessions { user { " * 15 + "id" + " } }" * 15 + " } }", "QUERY_TOO_DEEP"),
        # Past Python's recursion limit the parser gives up: still a depth problem, under 2,000 tokens.
        ("{ user(id: 1) { " + "sessions { " * 400 + "id" + " }" * 400 + " } }", "QUERY_TOO_DEEP"),
        ("{ " + " ".join(f"a{i}: health {{ status }}" for i in range(21)) + " }", "TOO_MANY_ALIASES"),
        ("{ " + " ".join(f"h{i}: __typename" for i in range(700)) + " }", "QUERY_TOO_LARGE"),
        ("{ health { status } }" + " " * 900_000, "QUERY_TOO_LARGE"),  # the 0.9 MB document
        ("{ users(first: 1000) { edges { node { sessions(first: 1000) { id } } } } }", "QUERY_TOO_COSTLY"),
        ("{ users(first: 1001) { totalCount } }", "BAD_USER_INPUT"),
    ],
)
async def test_each_limit_is_refused_before_execution_with_its_code(services, query, code):
    async with client_of(services) as client:
        response = await client.post("/graphql", json={"query": query}, headers=ACCEPT)
        body = await response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == code, body
    assert response.status == 400 and "data" not in body
    assert len(error["message"]) < 300


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ user(id: 1) { sessions(first: 5000) { id } } health { status } }", None),
        ("query($n: Int!) { health { status } users(first: $n) { totalCount } }", {"n": 0}),
        ("{ health { status } ...F } fragment F on Query { converted(first: 1001) { totalCount } }", None),
    ],
)
async def test_a_page_size_out_of_range_stops_the_whole_operation(services, query, variables):
    # Checked with the cost, before anything runs: `health` beside it is not answered either.
    async with client_of(services) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=ACCEPT
        )
        body = await response.json()
    assert response.status == 400 and "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "FUNNEL_MAX_PAGE_SIZE" in error["message"] and "1000" in error["message"]


async def test_the_cost_is_in_every_answer_and_in_the_refusal(services):
    async with client_of(services) as client:
        ok = await (await client.post("/graphql", json={"query": FUNNEL})).json()
        assert ok["extensions"]["cost"] == {"requested": 111, "budget": 200_000}
        refused = await (
            await client.post(
                "/graphql",
                json={"query": "{ users(first: 1000) { edges { node { sessions(first: 1000) { id } } } } }"},
            )
        ).json()
    error = refused["errors"][0]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COSTLY",
        "cost": error["extensions"]["cost"],
        "budget": 200_000,
    }
    assert error["extensions"]["cost"] > 200_000 and f"{error['extensions']['cost']:,}" in error["message"]


async def test_introspection_can_be_switched_off(services):
    async with client_of(with_settings(services, introspection=False)) as client:
        body = await (await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()
    assert body["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"


async def test_a_large_document_is_parsed_off_the_event_loop(services, monkeypatch):
    threads = []
    real = documents.parse_limited

    def recording(query, limits):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(query, limits)

    monkeypatch.setattr(documents, "parse_limited", recording)
    large = "{ health { status } }" + "\n" * (documents.OFF_LOOP_CHARS + 10)
    async with client_of(services) as client:
        body = await (await client.post("/graphql", json={"query": large})).json()
    assert body["data"] == {"health": {"status": "ok"}}
    assert threads == [False]  # parsed once, in a worker thread


@pytest.mark.parametrize(("copies", "off_loop"), [(documents.OFF_LOOP_SELECTIONS, False), (1_300, True)])
async def test_a_short_document_of_many_selections_is_validated_off_the_event_loop(services, monkeypatch, copies, off_loop):  # fmt: skip
    # 1,300 copies of one field fit in 3,919 characters (under OFF_LOOP_CHARS) and held the loop 0.3 s
    # in graphql-core's field merging (review).
    threads = []
    real = documents.validate_document

    def recording(*args):
        threads.append(threading.current_thread() is not threading.main_thread())
        return real(*args)

    monkeypatch.setattr(documents, "validate_document", recording)
    query = "{ user(id: 1) { " + " ".join(["id"] * (copies - 1)) + " } }"  # `copies` selections
    assert len(query) < documents.OFF_LOOP_CHARS  # short: only the selections can send it off the loop
    async with client_of(services) as client:
        await client.post("/graphql", json={"query": query})
    assert threads == [off_loop]


async def test_automatic_persisted_queries(services):
    async with client_of(services) as client:
        miss = await client.post("/graphql", json=persisted(None, sha(FUNNEL)), headers=ACCEPT)
        assert miss.status == 200 and miss.headers["Cache-Control"].startswith("private, no-cache")
        assert await miss.json() == {
            "errors": [
                {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
            ]
        }
        registered = await (await client.post("/graphql", json=persisted(FUNNEL))).json()
        assert "errors" not in registered
        assert 0 < await services.cache.ttl(keys.persisted_query(sha(FUNNEL))) <= keys.TTL_PERSISTED_QUERY
        by_hash = await (await client.post("/graphql", json=persisted(None, sha(FUNNEL)))).json()
        assert by_hash["data"] == registered["data"]
        params = {
            "extensions": json.dumps(persisted(None, sha(FUNNEL))["extensions"]),
            "operationName": "Steps",
        }
        by_get = await client.get("/graphql", params=params)
        assert (await by_get.json())["data"] == registered["data"]
        mismatch = await client.post("/graphql", json=persisted(FUNNEL, sha("something else")))
        assert mismatch.status == 400
        version = await client.post("/graphql", json=persisted(FUNNEL, version=2))
        assert version.status == 400


async def test_the_allow_list_runs_only_registered_operations(services, tmp_path, capsys):
    document = tmp_path / "steps.graphql"
    document.write_text(FUNNEL)
    bad = tmp_path / "deep.graphql"
    bad.write_text("{ user(id: 1) { " + "sessions { user { " * 15 + "id" + " } }" * 15 + " } }")
    manifest = tmp_path / "persisted.json"
    argv = ["persist", "--data-dir", str(tmp_path / "d"), "--persisted-queries-file", str(manifest)]
    assert main([*argv, str(bad)]) == 1  # a document over a limit is reported and not registered
    assert "FUNNEL_MAX_DEPTH" in capsys.readouterr().err and not manifest.exists()
    assert main([*argv, str(document)]) == 0
    assert sha(FUNNEL) in capsys.readouterr().out
    configured = with_settings(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    async with client_of(configured) as client:
        by_text = await (await client.post("/graphql", json={"query": FUNNEL})).json()
        assert "errors" not in by_text
        by_hash = await (await client.post("/graphql", json=persisted(None, sha(FUNNEL)))).json()
        assert by_hash["data"] == by_text["data"]
        other = "{ health { status } }"
        refused = await client.post("/graphql", json={"query": other})
        assert refused.status == 400
        assert (await refused.json())["errors"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
        # An APQ client: the hash alone is not found, then its text with the hash is not allowed (the
        # text is known: "not found" again would be wrong), and nothing is registered by either.
        unknown = await client.post("/graphql", json=persisted(None, sha(other)))
        assert unknown.status == 200
        assert (await unknown.json())["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        with_text = await client.post("/graphql", json=persisted(other))
        assert with_text.status == 400
        assert (await with_text.json())["errors"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
        assert await services.cache.get_many([keys.persisted_query(sha(other))]) == [None]
        again = await client.post("/graphql", json=persisted(None, sha(other)))
        assert (await again.json())["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        registered = await (await client.post("/graphql", json=persisted(FUNNEL))).json()
        assert registered["data"] == by_text["data"]  # a registered text with its hash runs


async def test_hashes_are_refused_when_persisted_queries_are_off(services):
    async with client_of(with_settings(services, persisted_queries="off")) as client:
        body = await (await client.post("/graphql", json=persisted(FUNNEL))).json()
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_formatting_does_not_bypass_the_response_cache(services):
    spaced = "# the steps\nquery Steps {\n  funnel {\n    steps { name, users }\n  }\n}\n"
    async with client_of(services) as client:
        first = await client.post("/graphql", json={"query": FUNNEL, "operationName": "Steps"})
        assert first.headers.get("X-Cache") == "miss"
        again = await client.post("/graphql", json={"query": spaced, "operationName": "Steps"})
        assert again.headers.get("X-Cache") == "hit"
        by_get = await client.get("/graphql", params={"query": spaced, "operationName": "Steps"})
        assert by_get.headers.get("X-Cache") == "hit"
        assert await again.read() == await first.read()
