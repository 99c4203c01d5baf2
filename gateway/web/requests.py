"""The GraphQL request, read once: :meth:`RequestReader.prepare` decodes a POST body or GET parameters into
(query, variables, operationName, extensions), resolves persisted queries (Apollo APQ and the allow-list,
``gateway/security/persisted.py``), and leaves the result on the request for the response cache and the
view (which would otherwise decode the body again).

What it cannot decode (bad JSON, a batch, wrong types) it leaves alone: the view answers those with
its own errors. A persisted-query problem is answered here, as Apollo Server answers it
(``PersistedQueryNotFound`` with HTTP 200 and ``Cache-Control: private, no-cache, must-revalidate``, so
neither a CDN nor the client keeps the miss).

A polling dashboard sends the same bytes again and again, so a small POST body (``MEMO_BODY_BYTES``)
that was read successfully is remembered with its result, a :class:`GraphQLRequest` shared by every
identical request (``shared``): decoding, the surrogate scan and the persisted-query lookup run once. Only
what cannot change is kept: a plain query (the allow-list is fixed for the process) and a hash found
by lookup (SHA-256 fixes its text). A refusal is never kept, so it is decided, and refused, every time;
nor is a hash sent with its text (APQ registration: each one writes the text to Redis again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.security.persisted import PersistedQueries, PersistedQueryProblem
from gateway.web import request_json
from gateway.web.documents import LRU
from gateway.web.negotiation import negotiate

MEMO_BODY_BYTES = 8 * 1024
MEMO_BODIES = 256  # at most MEMO_BODIES * MEMO_BODY_BYTES (2 MB) of bodies, plus what they decode to


@dataclass(frozen=True)
class GraphQLRequest:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    # Shared by every identical request (the body memo): a place for what later steps compute from the
    # request alone (the response cache's key per role); None for a request read for itself only.
    derived: dict[Any, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def shared(self) -> bool:
        return self.derived is not None


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


class RequestReader:
    def __init__(self, persisted: PersistedQueries) -> None:
        self.persisted = persisted
        self._bodies = LRU(MEMO_BODIES)

    async def prepare(self, request: web.Request) -> web.Response | None:
        """Read a GraphQL request into ``request[PREPARED]``; a response only for a persisted-query
        problem. Requests it cannot read, and WebSocket handshakes, are left to the view."""
        body = None
        if request.method == "POST" and request.content_type == "application/json":
            body = await request.read()
            known = self._bodies.get(body) if len(body) <= MEMO_BODY_BYTES else None
            if known is not None:
                request[PREPARED] = known
                return None
            payload = _decode(request, body)
        elif request.method == "GET" and ("query" in request.query or "extensions" in request.query):
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return None
            payload = _decode(request, None)
        else:
            return None
        if payload is None:
            return None
        query, extensions = payload.get("query"), payload.get("extensions")
        try:
            resolved = await self.persisted.resolve(query, extensions)
        except PersistedQueryProblem as problem:
            return _problem_response(request, problem)
        keep = body is not None and len(body) <= MEMO_BODY_BYTES and not (query and _names_hash(extensions))
        request[PREPARED] = prepared = GraphQLRequest(
            resolved,
            payload.get("variables"),
            payload.get("operationName"),
            extensions,
            derived={} if keep else None,
        )
        if keep:
            self._bodies.put(body, prepared)
        return None


def _names_hash(extensions: dict[str, Any] | None) -> bool:
    return bool(extensions) and extensions.get("persistedQuery") is not None  # type: ignore[union-attr]


def _problem_response(request: web.Request, problem: PersistedQueryProblem) -> web.Response:
    body = json.dumps({"errors": [{"message": problem.message, "extensions": {"code": problem.code}}]})
    return web.Response(
        text=body,
        status=problem.status,
        content_type=negotiate(request.headers.get("Accept")),
        headers={"Cache-Control": "private, no-cache, must-revalidate"},
    )
