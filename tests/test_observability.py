"""/metrics, the slow-operation log and the access log, on the real embedded stack (issue 13)."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from strawberry.schema.config import StrawberryConfig

from gateway.web.app import create_app
from gateway.web.errors import ErrorPolicy, FunnelSchema
from gateway.web.observability import CombinedAccessLogger, OperationMetrics
from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription
from schema.scalars import SCALAR_MAP
from tests.api.conftest import services  # noqa: F401  (the API fixture data: users 1 and 2 exist)

FAMILIES = {
    "funnelgate_graphql_operations",
    "funnelgate_graphql_operation_seconds",
    "funnelgate_resolver_seconds",
    "funnelgate_http_requests",
    "funnelgate_http_request_seconds",
    "funnelgate_backend_call_seconds",
    "funnelgate_cache_lookups",
    "funnelgate_pool_connections_in_use",
    "funnelgate_pool_connections_open",
    "funnelgate_pool_connections_max",
    "funnelgate_subscriptions_active",
    "funnelgate_websockets_open",
    "funnelgate_events",
    "funnelgate_redis_restarts",
    "funnelgate_backend_up",
    "funnelgate_job_progress",
}


async def _scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    names = set()
    for family in text_string_to_metric_families(await resp.text()):
        names.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    samples[("__families__", ())] = names  # type: ignore[assignment]
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _sum(samples: dict, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    )


@pytest.fixture
async def client(services):  # noqa: F811
    async with TestClient(TestServer(create_app(services))) as c:
        yield c


async def test_metrics_families_present_and_moving_after_a_query(client):
    before = await _scrape(client)
    assert before[("__families__", ())] >= FAMILIES - {
        "funnelgate_job_progress",
        "funnelgate_resolver_seconds",
    }

    query = "query MetricsProbe { dashboard { sessions } }"
    for _ in range(2):  # the second is a whole-response cache hit
        resp = await client.post("/graphql", json={"query": query})
        assert resp.status == 200 and "errors" not in await resp.json()
    capture = await client.post(
        "/events",
        json=[
            {"type": "page_view", "eventId": "metrics-1", "userId": 1, "pageType": "home_page"},
            {"type": "page_view", "eventId": "metrics-2", "userId": 2, "pageType": "Home Page"},
        ],
    )
    assert capture.status == 200
    after = await _scrape(client)

    # The operation ran once through strawberry; the cached answer never reached it.
    ops = "funnelgate_graphql_operations_total"
    assert (
        _value(after, ops, operation="MetricsProbe", type="query", status="ok")
        - _value(before, ops, operation="MetricsProbe", type="query", status="ok")
        == 1
    )
    seconds = "funnelgate_graphql_operation_seconds_count"
    assert (
        _value(after, seconds, operation="MetricsProbe", status="ok")
        == _value(before, seconds, operation="MetricsProbe", status="ok") + 1
    )
    # The registry is the process's: a count >= 1 was met by any earlier test. This probe resolved it once.
    resolver = "funnelgate_resolver_seconds_count"
    assert (
        _value(after, resolver, parent="Query", field="dashboard")
        - _value(before, resolver, parent="Query", field="dashboard")
        == 1
    )
    http = "funnelgate_http_requests_total"
    assert (
        _value(after, http, route="/graphql", method="POST", status="200")
        - _value(before, http, route="/graphql", method="POST", status="200")
        == 2
    )
    # Backend calls were timed: the store answered the dashboard, the cache was read and written.
    calls = "funnelgate_backend_call_seconds_count"
    assert _sum(after, calls, backend="document_store") > _sum(before, calls, backend="document_store")
    assert _sum(after, calls, backend="cache") > _sum(before, calls, backend="cache")
    # One miss then one hit of the whole-response family.
    lookups = "funnelgate_cache_lookups_total"
    assert (
        _value(after, lookups, family="query:response", result="hit")
        - _value(before, lookups, family="query:response", result="hit")
        == 1
    )
    assert (
        _value(after, lookups, family="query:response", result="miss")
        - _value(before, lookups, family="query:response", result="miss")
        == 1
    )
    # One event accepted, one rejected (its page type is not a slug).
    events = "funnelgate_events_total"
    assert _value(after, events, result="rejected") - _value(before, events, result="rejected") == 1
    assert _value(after, events, result="accepted") - _value(before, events, result="accepted") == 1
    # Pools: the DuckDB executor and the redis-py pool report their ceilings and open connections.
    assert _value(after, "funnelgate_pool_connections_max", pool="duckdb") == 4
    assert _value(after, "funnelgate_pool_connections_open", pool="redis") >= 1
    assert _value(after, "funnelgate_subscriptions_active") == 0


async def test_subscriptions_gauge_reads_the_hub(client, services):  # noqa: F811
    # The gauge is read from the process's pub/sub hub when /metrics is scraped.
    hub = services.realtime.hub
    assert _value(await _scrape(client), "funnelgate_subscriptions_active") == 0
    fake = object()
    hub._subscribers.add(fake)
    try:
        assert _value(await _scrape(client), "funnelgate_subscriptions_active") == 1
    finally:
        hub._subscribers.discard(fake)


async def test_the_process_s_page_watch_is_no_subscription(client, services):  # noqa: F811
    # realtimeMetrics streams share one hub subscriber of the process's own (170dc41, ab4dfa4): it is
    # no client's subscription, and two dashboards are not one.
    realtime = services.realtime
    async with realtime.watching_pages(), realtime.watching_pages():
        assert realtime.hub.subscribers == 1  # the watch, once for both streams
        assert _value(await _scrape(client), "funnelgate_subscriptions_active") == 0
        fake = object()
        realtime.hub._subscribers.add(fake)
        try:
            assert _value(await _scrape(client), "funnelgate_subscriptions_active") == 1
        finally:
            realtime.hub._subscribers.discard(fake)
    assert realtime.hub.subscribers == 0


async def test_a_scrape_reports_the_backends_as_they_are_now(client, services, monkeypatch):  # noqa: F811
    # Nothing calls /healthz here: Prometheus alone watches the gateway. The gauge must still move.
    assert _value(await _scrape(client), "funnelgate_backend_up", backend="cache") == 1

    async def refused() -> None:
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(services.cache.wrapped, "ping", refused)
    down = await _scrape(client)
    assert _value(down, "funnelgate_backend_up", backend="cache") == 0
    assert _value(down, "funnelgate_backend_up", backend="document_store") == 1
    monkeypatch.undo()
    assert _value(await _scrape(client), "funnelgate_backend_up", backend="cache") == 1


async def test_concurrent_scrapes_share_one_probe_and_read_no_vectors(client, services, monkeypatch):  # noqa: F811
    # Two Prometheus servers (or a retried scrape) behind a backend that is slow to answer: one probe
    # for all, not one connection attempt per scrape; and no Milvus read for the embeddings report,
    # which sets no metric.
    import gateway.web.observability as observability

    pings = 0

    async def slow_ping() -> None:
        nonlocal pings
        pings += 1
        await asyncio.sleep(0)

    async def no_vector_reads(*args, **kwargs):
        raise AssertionError("a scrape read the vectors")

    monkeypatch.setattr(services.cache.wrapped, "ping", slow_ping)
    monkeypatch.setattr(services.vectors, "serving", no_vector_reads)
    monkeypatch.setattr(services.vectors, "rows_between", no_vector_reads)
    # Three scrapes arrive before the first one's probe has run: they share it.
    await asyncio.gather(*(observability._probed(client.app) for _ in range(3)))
    assert pings == 1
    scraped = await _scrape(client)  # a later scrape probes again, and reads no vectors either
    assert pings == 2
    assert _value(scraped, "funnelgate_backend_up", backend="cache") == 1


async def test_a_probe_that_fails_still_answers_the_scrape(client, services, monkeypatch):  # noqa: F811
    import gateway.web.observability as observability

    async def broken(services, timeout_s=2.0):
        raise RuntimeError("probe bug")

    monkeypatch.setattr(observability, "probe_backends", broken)
    response = await client.get("/metrics")
    assert response.status == 200
    assert "funnelgate_http_requests_total" in await response.text()


def _schema_logging_every_operation() -> FunnelSchema:
    slow_always = type("SlowAlways", (OperationMetrics,), {"slow_s": 0.0})
    return FunnelSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[slow_always, ErrorPolicy],
    )


async def test_slow_operation_log_has_shape_and_timings_but_no_values(services, caplog):  # noqa: F811
    app = create_app(services, _schema_logging_every_operation(), response_cache=False)
    query = """query Secretive($window: Int!, $first: Int!) {
        users(first: $first) { totalCount }
        funnel(conversionWindowSeconds: $window, order: STRICT) { steps { users } }
    }"""
    with caplog.at_level(logging.WARNING, logger="funnelgate.slow"):
        async with TestClient(TestServer(app)) as client:
            resp = await client.post(
                "/graphql", json={"query": query, "variables": {"window": 4321, "first": 2}}
            )
            await resp.read()
    lines = [r.getMessage() for r in caplog.records if r.name == "funnelgate.slow"]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "query Secretive" in line
    assert "users(first) { totalCount }" in line
    assert "funnel(conversionWindowSeconds,order) { steps { users } }" in line
    assert "4321" not in line and "STRICT" not in line  # no variable, no literal
    assert "status=ok" in line
    assert re.search(r"backend=\S*document_store\.\w+x\d+=[\d.]+ms", line), line


async def test_access_log_is_combined_format_without_query_strings(services, caplog):  # noqa: F811
    logger = logging.getLogger("funnelgate.access")
    server = TestServer(create_app(services))
    await server.start_server(access_log=logger, access_log_class=CombinedAccessLogger)  # as serve does
    with caplog.at_level(logging.INFO, logger="funnelgate.access"):
        async with TestClient(server) as client:
            resp = await client.get(
                "/graphql",
                params={"query": "{ health { status } }", "variables": '{"x": "QUERY_SECRET"}'},
                headers={"User-Agent": 'probe "quoted"', "Referer": "http://example/page?REF_SECRET=1"},
            )
            await resp.read()
    lines = [r.getMessage() for r in caplog.records if r.name == "funnelgate.access"]
    assert len(lines) == 1, lines
    combined = re.compile(
        r"^(?P<host>\S+) - - \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] "
        r'"GET /graphql HTTP/1\.1" 200 (?P<size>\d+|-) "http://example/page" "probe \\"quoted\\"" [\d.]+$'
    )
    assert combined.match(lines[0]), lines[0]
    assert "SECRET" not in lines[0]


async def test_invented_http_methods_share_one_series(client):
    for method in ("BREW", "WHEN", "PROPFIND"):
        await client.request(method, "/graphql")
    samples = await _scrape(client)
    methods = {dict(ls).get("method") for (n, ls) in samples if n == "funnelgate_http_requests_total"}
    assert "other" in methods and not methods & {"BREW", "WHEN", "PROPFIND"}
