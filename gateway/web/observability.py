"""What the web layer reports about itself: GraphQL operation metrics and the slow-operation log
(:class:`OperationMetrics`), root-field resolver timing (:class:`RootResolverTiming`), HTTP metrics
(:class:`HttpMetrics`), the access log (:class:`CombinedAccessLogger`) and ``GET /metrics``.

No user data leaves through these: the slow-operation log prints the operation's *shape* (field names,
argument names, never their values or the variables), and the access log drops query strings (a GET
/graphql carries the query and its variables there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from gateway.ops import metrics
from gateway.ops.timing import tracing
from gateway.services import probe_backends
from gateway.web.health import SERVICES

log = logging.getLogger(__name__)
slow_log = logging.getLogger("funnelgate.slow")
SHAPE_CHARS = 400


def operation_extension(slow_ms: int) -> type[SchemaExtension]:
    """The extension class for a threshold (0: no slow-operation log)."""
    return type("OperationMetrics", (OperationMetrics,), {"slow_s": slow_ms / 1000 if slow_ms else None})


class OperationMetrics(SchemaExtension):
    slow_s: float | None = 1.0

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        with tracing() as trace:
            yield
        seconds = time.perf_counter() - started
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # no document (a syntax error): nothing ran
            kind = "unknown"
        if kind == "subscription":
            return  # lasts as long as the client listens: its duration says nothing about speed
        name = metrics.operation_label(context.operation_name)
        status = _status(context)
        metrics.child(metrics.GRAPHQL_REQUESTS, name, kind, status).inc()
        metrics.child(metrics.GRAPHQL_SECONDS, name, status).observe(seconds)
        if self.slow_s is not None and seconds >= self.slow_s:
            metrics.SLOW_OPERATIONS.inc()
            slow_log.warning(
                "slow operation %.0f ms %s status=%s shape=%s backend=%s",
                seconds * 1000,
                name,
                status,
                shape(context.graphql_document, context.operation_name),
                _summary(trace),
            )


class RootResolverTiming(SchemaExtension):
    """Times root fields only: nested fields return at once (one attribute test), so big lists pay
    little. Async resolvers are timed until their awaitable finishes."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        if info.path.prev is not None:
            return _next(root, info, *args, **kwargs)
        started = time.perf_counter()
        result = _next(root, info, *args, **kwargs)
        child = metrics.child(metrics.RESOLVER_SECONDS, info.parent_type.name, info.field_name)
        if hasattr(result, "__await__"):
            return _timed_await(result, child, started)
        child.observe(time.perf_counter() - started)
        return result


async def _timed_await(awaitable: Any, child: Any, started: float) -> Any:
    try:
        return await awaitable
    finally:
        child.observe(time.perf_counter() - started)


def _status(context: Any) -> str:
    result = getattr(context, "result", None)
    errors = getattr(result, "errors", None) or getattr(context, "pre_execution_errors", None)
    if not errors:
        return "ok"
    code = (getattr(errors[0], "extensions", None) or {}).get("code")
    return str(code) if code else "error"


def _summary(trace: list[tuple[str, float]]) -> str:
    """Backend calls of the operation: ``callxcount=total ms``, slowest first."""
    totals: dict[str, list[float]] = {}
    for call, seconds in trace:
        entry = totals.setdefault(call, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds
    ordered = sorted(totals.items(), key=lambda item: -item[1][1])
    return ",".join(f"{call}x{int(n)}={total * 1000:.1f}ms" for call, (n, total) in ordered) or "none"


def shape(document: Any, operation_name: str | None) -> str:
    """``query Name { field(arg,arg) { sub } }``: names only, no literal values, cut to SHAPE_CHARS."""
    if document is None:
        return "?"
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next(
        (op for op in operations if operation_name is None or (op.name and op.name.value == operation_name)),
        None,
    )
    if chosen is None:
        return "?"
    head = chosen.operation.value + (f" {chosen.name.value}" if chosen.name else "")
    text = f"{head} {_selection(chosen.selection_set)}"
    return text if len(text) <= SHAPE_CHARS else text[: SHAPE_CHARS - 3] + "..."


def _selection(selection_set: SelectionSetNode | None) -> str:
    if selection_set is None:
        return ""
    parts = []
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            args = f"({','.join(a.name.value for a in node.arguments)})" if node.arguments else ""
            sub = _selection(node.selection_set)
            parts.append(f"{node.name.value}{args}{' ' + sub if sub else ''}")
        elif isinstance(node, FragmentSpreadNode):
            parts.append(f"...{node.name.value}")
        elif isinstance(node, InlineFragmentNode):
            on = f" on {node.type_condition.name.value}" if node.type_condition else ""
            parts.append(f"...{on} {_selection(node.selection_set)}")
    return "{ " + " ".join(parts) + " }"


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


STARTED = web.RequestKey("http_started", float)  # front.py: when the request was taken up
UPGRADED = web.RequestKey("websocket_upgraded", bool)  # websocket_opened: counted at its handshake


class HttpMetrics:
    """Count and time every request by route; a path outside ``routes`` counts as ``other`` (scanners
    would otherwise create a series per URL they try). :mod:`gateway.web.front` calls ``record`` once
    per request, whatever answered it (the edge's refusals included).

    A WebSocket's handler returns only when the socket closes: timed to then, a dashboard open for an
    hour was a 3,600 s request in the latency histogram (its top bucket, and the p99 with it). A socket
    is counted and timed when its handshake is answered (:func:`websocket_opened`, status 101), and
    ``record`` at its close only takes it off ``funnelgate_websockets_open``."""

    def __init__(self, routes: frozenset[str]) -> None:
        self.routes = routes

    def record(self, request: web.BaseRequest, status: int, started: float) -> None:
        if UPGRADED in request:
            metrics.WEBSOCKETS_OPEN.dec()
            return
        path = request.path
        route = path if path in self.routes else "other"
        # Any token is a method to aiohttp: a client's invented ones count as "other", not a series each.
        method = request.method if request.method in METHODS else "other"
        metrics.child(metrics.HTTP_REQUESTS, route, method, str(status)).inc()
        metrics.child(metrics.HTTP_SECONDS, route).observe(time.perf_counter() - started)


def websocket_opened(request: web.Request, route: str) -> None:
    """A WebSocket handshake just answered 101: the request is counted and timed now, as every other
    request is when it is answered; the socket is counted open until ``HttpMetrics.record`` sees it end."""
    request[UPGRADED] = True
    metrics.child(metrics.HTTP_REQUESTS, route, request.method, "101").inc()
    started = request.get(STARTED)
    if started is not None:
        metrics.child(metrics.HTTP_SECONDS, route).observe(time.perf_counter() - started)
    metrics.WEBSOCKETS_OPEN.inc()


# The probe a scrape is waiting for, shared by every scrape that arrives meanwhile (_probed).
METRICS_PROBE: web.AppKey[dict[str, asyncio.Task[Any]]] = web.AppKey("metrics_probe", dict)


async def metrics_endpoint(request: web.Request) -> web.Response:
    # funnelgate_backend_up is what the last health probe found, and only /healthz and the health field
    # probed: a gateway that Prometheus alone watches (no load balancer calling /healthz) reported its
    # backends as they were at the last such call, or not at all, so FunnelgateBackendDown never fired.
    # Each scrape probes them now (each ping bounded, as for /healthz).
    await _probed(request.app)
    body = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


async def _probed(app: web.Application) -> None:
    """Ping the backends for funnelgate_backend_up: the pings only (not the health report's embeddings
    query, a Milvus read per scrape that sets no metric), and one probe at a time: scrapes that arrive
    while one runs (two Prometheus servers, a retried scrape behind a hung backend) wait for it rather
    than each opening connections to a backend that is not answering. A probe that fails is logged; the
    scrape still answers with every other metric."""
    shared = app[METRICS_PROBE]
    task = shared.get("running")
    if task is None or task.done():
        task = asyncio.ensure_future(probe_backends(app[SERVICES]))
        shared["running"] = task
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        raise
    except Exception:  # never a 500 for the scrape: the gauge keeps its last value
        log.exception("metrics: the backend probe failed")


class CombinedAccessLogger(AbstractAccessLogger):
    """Apache combined log format plus the response time in seconds; the query string is left out."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        now = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        headers = request.headers
        size = response.body_length
        self.logger.info(
            '%s - - [%s] "%s %s HTTP/%d.%d" %d %s "%s" "%s" %.6f',
            request.remote or "-",
            now,
            request.method,
            request.raw_path.split("?", 1)[0],
            request.version.major,
            request.version.minor,
            response.status,
            size if size else "-",
            _quoted(headers.get("Referer", "-").split("?", 1)[0]),
            _quoted(headers.get("User-Agent", "-")),
            time,
        )


def _quoted(value: str) -> str:
    # A header may hold a quote or a line break: neither may break the line's format.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")[:300]
