"""What errors leave in the log and in the answer (issue 9, item 6): a client's mistake is one short INFO
line without a traceback, an outage one WARNING line, only the unexpected gets ERROR with its traceback;
echoed input is cut, and no data-dir path reaches an API client.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.errors import QueryTimeout, StoreUnavailable
from gateway.web.app import create_app
from tests.api.conftest import FailingProxy, error_codes, run

BIG = "x" * 900_000
CLIENT_MISTAKES = [
    ("query($p: String!) { sentiment(pageType: $p) { texts } }", {"p": BIG}, "BAD_USER_INPUT"),
    (
        "query($s: [String!]) { funnel(steps: $s) { overallConversionRate } }",
        {"s": [BIG, "home_page"]},
        "BAD_USER_INPUT",
    ),
    ("query($id: Int!) { user(id: $id) { id } }", {"id": BIG}, "BAD_USER_INPUT"),
    ("query($c: String) { users(after: $c) { totalCount } }", {"c": BIG}, "BAD_USER_INPUT"),
    ("query($s: String!) { session(id: $s) { id } }", {"s": BIG}, "NOT_FOUND"),
    ("{ user(id: 999) { id } }", None, "NOT_FOUND"),
    ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED"),
    # Refused by graphql-core while executing (the argument has a default), once logged GRAPHQL_ERROR.
    ("query($n: Int) { users(first: $n) { totalCount } }", {"n": None}, "BAD_USER_INPUT"),
]


async def test_client_mistakes_log_one_short_line_and_echo_little(services, caplog):
    caplog.set_level(logging.INFO)
    for query, variables, code in CLIENT_MISTAKES:
        caplog.clear()
        result = await run(services, query, variables)
        assert error_codes(result) == [code], result
        assert len(json.dumps(result)) < 2_000, (query, len(json.dumps(result)))
        records = [
            r
            for r in caplog.records
            if r.levelno >= logging.INFO and r.name.startswith(("funnelgate", "strawberry"))
        ]
        assert [(r.name, r.levelname) for r in records] == [("funnelgate.graphql", "INFO")], query
        assert records[0].exc_info is None
        assert len(records[0].getMessage()) < 600
        assert code in records[0].getMessage()


async def test_unexpected_errors_keep_their_traceback(services, caplog):
    broken = dataclasses.replace(
        services, store=FailingProxy(services.store, {"funnel": lambda: RuntimeError("disk on fire")})
    )
    result = await run(broken, "{ funnel { overallConversionRate } }")
    assert error_codes(result) == ["INTERNAL_SERVER_ERROR"]
    [record] = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("funnelgate", "strawberry"))
    ]
    assert record.levelname == "ERROR" and record.exc_info is not None
    assert "disk on fire" in record.getMessage()


async def test_outages_are_one_warning_and_no_path_reaches_the_client(services, caplog):
    data_dir = str(services.settings.data_dir)
    broken = dataclasses.replace(
        services,
        store=FailingProxy(
            services.store,
            {
                "funnel": lambda: StoreUnavailable(
                    f"cannot open DuckDB file '{data_dir}/funnel.duckdb': locked"
                )
            },
        ),
        cache=FailingProxy(
            services.cache,
            {"ping": lambda: StoreUnavailable(f"redis at unix://{data_dir}/redis/redis.sock is unreachable")},
        ),
    )
    result = await run(broken, "{ funnel { overallConversionRate } health { dependencies { role error } } }")
    assert error_codes(result) == ["UNAVAILABLE"]
    assert data_dir not in json.dumps(result)
    assert (
        result["errors"][0]["message"] == "cannot open DuckDB file '$FUNNEL_DATA_DIR/funnel.duckdb': locked"
    )
    [record] = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("funnelgate", "strawberry"))
    ]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert data_dir in record.getMessage()  # the log keeps the full text

    async with TestClient(TestServer(create_app(broken))) as client:
        response = await client.get("/healthz")
        body = await response.text()
    assert response.status == 503
    assert data_dir not in body and "$FUNNEL_DATA_DIR/redis/redis.sock" in body


@pytest.mark.parametrize("field", ["user(id: 1)", 'session(id: "s1")'])
async def test_found_entities_log_nothing(services, caplog, field):
    caplog.set_level(logging.INFO)
    await run(services, f"{{ {field} {{ __typename }} }}")
    assert [r for r in caplog.records if r.name.startswith(("funnelgate.graphql", "strawberry"))] == []


async def test_a_query_stopped_at_its_deadline_is_one_warning_for_the_operator(services, caplog):
    slow = dataclasses.replace(
        services,
        store=FailingProxy(
            services.store, {"funnel": lambda: QueryTimeout("funnel stopped at its deadline")}
        ),
    )
    result = await run(slow, "{ funnel { overallConversionRate } }")
    assert error_codes(result) == ["TIMEOUT"]
    [record] = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("funnelgate", "strawberry"))
    ]
    assert "timed out" in record.getMessage() and record.exc_info is None
