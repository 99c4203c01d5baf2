"""The GraphQL request, read once: the middleware that decodes a POST body or GET parameters into
(query, variables, operationName, extensions), resolves persisted queries (Apollo APQ and the allow-list,
``gateway/security/persisted.py``), and leaves the result on the request for the response cache and the
view (which would otherwise decode the body again).

What it cannot decode (bad JSON, a batch, wrong types) it leaves alone: the view answers those with
its own errors. A persisted-query problem is answered here, as Apollo Server answers it
(``PersistedQueryNotFound`` with HTTP 200 and ``Cache-Control: private, no-cache, must-revalidate``, so
neither a CDN nor the client keeps the miss).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.security.persisted import PersistedQueries, PersistedQueryProblem
from gateway.web import request_json
from gateway.web.negotiation import negotiate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class GraphQLRequest:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


PREPARED = web.RequestKey("graphql_request", GraphQLRequest)
_KINDS = (("query", str), ("variables", dict), ("extensions", dict), ("operationName", str))


def _decode(request: web.Request, body: bytes | None) -> dict[str, Any] | None:
    """The request's fields as JSON values, None when they are not a well-formed single request."""
    try:
        if body is not None:
            payload = request_json.decode(body)
            if not isinstance(payload, dict):
                return None
        else:
            params = request.query
            payload = {"query": params.get("query"), "operationName": params.get("operationName")}
            for name in ("variables", "extensions"):
                raw = params.get(name)
                payload[name] = request_json.decode(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    for name, kind in _KINDS:
        value = payload.get(name)
        if value is not None and not isinstance(value, kind):
            return None
    return payload


def middleware(persisted: PersistedQueries, path: str) -> Any:
    @web.middleware
    async def graphql_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != path:
            return await handler(request)
        if request.method == "POST" and request.content_type == "application/json":
            payload = _decode(request, await request.read())
        elif request.method == "GET" and ("query" in request.query or "extensions" in request.query):
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await handler(request)
            payload = _decode(request, None)
        else:
            return await handler(request)
        if payload is None:
            return await handler(request)
        extensions = payload.get("extensions")
        try:
            query = await persisted.resolve(payload.get("query"), extensions)
        except PersistedQueryProblem as problem:
            body = json.dumps(
                {"errors": [{"message": problem.message, "extensions": {"code": problem.code}}]}
            )
            return web.Response(
                text=body,
                status=problem.status,
                content_type=negotiate(request.headers.get("Accept")),
                headers={"Cache-Control": "private, no-cache, must-revalidate"},
            )
        request[PREPARED] = GraphQLRequest(
            query, payload.get("variables"), payload.get("operationName"), extensions
        )
        return await handler(request)

    return graphql_request
