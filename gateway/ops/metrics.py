"""Every Prometheus metric of the gateway, defined here and nowhere else (docs/operations.md lists them).

The metrics live in one registry of their own (not prometheus_client's global one), so a test or a
second app in one process sees only funnelgate's families. Hot-path helpers keep the label children
they have already resolved: ``.labels()`` takes a lock and builds a tuple, a dict lookup does not.

Label values are bounded: operation names come from clients, so only the first
``MAX_OPERATION_NAMES`` distinct names get a series of their own, the rest are counted as ``other``.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# The *_created series (a timestamp per labelled child) double the exposition and no alert needs them.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_OPERATION_NAMES = 200
OTHER = "other"
ANONYMOUS = "anonymous"

# Seconds: a cached funnel answers in ~1 ms, a cold one over the Kaggle set in ~0.1-1 s.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

GRAPHQL_REQUESTS = Counter(
    "funnelgate_graphql_operations",
    "GraphQL operations executed, by operation name, type and outcome (ok or the first error code).",
    ["operation", "type", "status"],
    registry=REGISTRY,
)
GRAPHQL_SECONDS = Histogram(
    "funnelgate_graphql_operation_seconds",
    "Time to execute one GraphQL operation (parse to result), by operation name and outcome.",
    ["operation", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RESOLVER_SECONDS = Histogram(
    "funnelgate_resolver_seconds",
    "Time in one root field's resolver, by parent type and field.",
    ["parent", "field"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "funnelgate_http_requests",
    "HTTP requests answered, by route, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "funnelgate_http_request_seconds",
    "Time to answer one HTTP request, by route (a WebSocket until its handshake is answered, not its life).",
    ["route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BACKEND_SECONDS = Histogram(
    "funnelgate_backend_call_seconds",
    "Time of one call into a backend (document_store, vector_index, cache), by method and outcome.",
    ["backend", "call", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
CACHE_LOOKUPS = Counter(
    "funnelgate_cache_lookups",
    "Cache-aside lookups by key family and result (hit, miss, error).",
    ["family", "result"],
    registry=REGISTRY,
)
POOL_IN_USE = Gauge(
    "funnelgate_pool_connections_in_use",
    "Connections or workers busy now: mongo (checked-out PyMongo connections), duckdb (executor jobs "
    "running or queued), redis (redis-py connections in use).",
    ["pool"],
    registry=REGISTRY,
)
POOL_OPEN = Gauge(
    "funnelgate_pool_connections_open",
    "Connections open (in use or idle) per pool; for duckdb the executor's worker threads.",
    ["pool"],
    registry=REGISTRY,
)
POOL_CAPACITY = Gauge(
    "funnelgate_pool_connections_max",
    "The configured ceiling of each pool.",
    ["pool"],
    registry=REGISTRY,
)
POOL_WAIT_FAILURES = Counter(
    "funnelgate_pool_checkout_failures",
    "Connection checkouts that failed (pool exhausted past its wait timeout, or connection error).",
    ["pool", "reason"],
    registry=REGISTRY,
)
HTTP_CONNECTIONS_OPEN = Gauge(
    "funnelgate_http_connections_open",
    "Client connections open now, idle ones included (counted by FUNNEL_MAX_CONNECTIONS_PER_ADDRESS's "
    "cap; not counted when it is 0).",
    registry=REGISTRY,
)
HTTP_CONNECTIONS_REFUSED = Counter(
    "funnelgate_http_connections_refused",
    "Connections refused past FUNNEL_MAX_CONNECTIONS_PER_ADDRESS: lingered (waited for the head, then "
    "answered 429) or reset (past 16 such waits from one address).",
    ["how"],
    registry=REGISTRY,
)
WEBSOCKETS_OPEN = Gauge(
    "funnelgate_websockets_open",
    "GraphQL WebSockets open now (handshake answered 101, not yet closed).",
    registry=REGISTRY,
)
SUBSCRIPTIONS = Gauge(
    "funnelgate_subscriptions_active",
    "Live GraphQL subscriptions fed by this process's pub/sub hub.",
    registry=REGISTRY,
)
EVENTS = Counter(
    "funnelgate_events",
    "Captured events by result: accepted (valid, stored now or before), duplicate, rejected.",
    ["result"],
    registry=REGISTRY,
)
# Events per group commit: one when idle, thousands under pressure (gateway/realtime/writer.py).
_GROUP_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
CAPTURE_GROUPS = Histogram(
    "funnelgate_capture_group_events",
    "Events per group commit of live capture, by outcome (ok: committed; error: the store failed, "
    "nothing of the group acknowledged).",
    ["outcome"],
    buckets=_GROUP_BUCKETS,
    registry=REGISTRY,
)
REDIS_RESTARTS = Counter(
    "funnelgate_redis_restarts",
    "Times the private redis-server died and was started again by the supervisor.",
    registry=REGISTRY,
)
BACKEND_UP = Gauge(
    "funnelgate_backend_up",
    "1 when the last health probe of a backend succeeded, 0 when it failed.",
    ["backend"],
    registry=REGISTRY,
)
SLOW_OPERATIONS = Counter(
    "funnelgate_slow_operations",
    "GraphQL operations slower than FUNNEL_SLOW_OPERATION_MS (each also logged).",
    registry=REGISTRY,
)
JOB_PROGRESS = Gauge(
    "funnelgate_job_progress",
    "Ingest and embed progress: items done so far in the current stage.",
    ["job", "stage"],
    registry=REGISTRY,
)
JOB_TOTAL = Gauge(
    "funnelgate_job_total",
    "Ingest and embed progress: items the current stage will process (0 when unknown).",
    ["job", "stage"],
    registry=REGISTRY,
)

# Series whose label values are known in advance exist from start-up, at 0: a series that appears with
# its first increment hides that increment from rate() and increase(), so the first rejected events or
# the first failed group commit after a restart never showed in the alerts built on them.
for _result in ("accepted", "duplicate", "rejected"):
    EVENTS.labels(_result)
for _outcome in ("ok", "error"):
    CAPTURE_GROUPS.labels(_outcome)

_names_lock = threading.Lock()
_operation_names: set[str] = set()
_backend_children: dict[tuple[str, str, str], Any] = {}


def operation_label(name: str | None) -> str:
    """The label value for a client-chosen operation name, bounded in number."""
    if not name:
        return ANONYMOUS
    if name in _operation_names:
        return name
    with _names_lock:
        if len(_operation_names) >= MAX_OPERATION_NAMES:
            return OTHER
        _operation_names.add(name)
    return name


_children: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, resolved once per label set (the hot path skips the lock)."""
    key = (id(metric), *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def observe_backend(backend: str, call: str, outcome: str, seconds: float) -> None:
    key = (backend, call, outcome)
    child = _backend_children.get(key)
    if child is None:
        child = _backend_children[key] = BACKEND_SECONDS.labels(backend, call, outcome)
    child.observe(seconds)


def exposition() -> bytes:
    """The registry in the Prometheus text format (what ``GET /metrics`` answers)."""
    return generate_latest(REGISTRY)
