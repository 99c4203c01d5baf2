"""The GraphQL request, read once: :meth:`RequestReader.prepare` decodes a POST body or GET parameters into
(query, variables, operationName, extensions), resolves persisted queries (Apollo APQ and the allow-list,
``gateway/security/persisted.py``), and leaves the result on the request for the response cache and the
view (which would otherwise decode the body again).

It is the only reader of a JSON body (``request_json.body_kind``: ``application/json``; another media type
naming JSON is refused with 415), so nothing reaches execution without passing it. What it cannot
decode (bad JSON, nesting past ``request_json.MAX_DEPTH``, a batch, wrong types, a GET ``variables`` or
``extensions`` parameter that is not JSON, a field given twice: a GET parameter or a key of the body's
top-level object) is answered here with 400 (``negotiation.not_a_request``),
never left to fail later. A persisted-query problem is answered here, as Apollo Server answers it
(``PersistedQueryNotFound`` with HTTP 200 and ``Cache-Control: private, no-cache, must-revalidate``, so
neither a CDN nor the client keeps the miss). An APQ registration (a hash sent with its text) is parsed
first (``documents.parse``, cached for execution): a text over the size or token limits, or not GraphQL,
is not stored, and execution refuses it with the code the same text gets without a hash.

Only an authenticated request is read (with authentication off every request is): one the edge let
through without a principal is left to the view, which gives it no access.

A polling dashboard sends the same bytes again and again, so a small POST body (``MEMO_BODY_BYTES``)
that was read successfully is remembered with its result, a :class:`GraphQLRequest` shared by every
identical request (``shared``): decoding, the surrogate scan and the persisted-query lookup run once. Only
what cannot change while the manifest stays the same is kept: a plain query and a hash found by lookup
(SHA-256 fixes its text). The manifest file is followed (``PersistedQueries.refresh``): when a changed
file replaces it, every remembered body is dropped, so an operation removed from the allow-list stops
running. A refusal is never kept, so it is decided, and refused, every time; nor is a hash sent with its
text (APQ registration: each one writes the text to Redis again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.errors import json_type
from gateway.security.limits import Limits
from gateway.security.persisted import PersistedQueries, PersistedQueryProblem
from gateway.web import documents, request_json
from gateway.web.documents import LRU
from gateway.web.edge import PRINCIPAL, READS
from gateway.web.negotiation import negotiate, not_a_request

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
_KINDS: tuple[tuple[str, type], ...] = (
    ("query", str),
    ("variables", dict),
    ("extensions", dict),
    ("operationName", str),
)

# Which of two `query` entries of a body would run? json keeps the last, a proxy or WAF in front may read
# the first: a field given twice is refused, as a GET parameter is (request_json._unique_top_level).
_FIELDS = frozenset(name for name, _ in _KINDS)


class NotARequest(Exception):
    """A body or GET parameters that are not one well-formed GraphQL request: HTTP ``status``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


_KIND_NAMES: dict[type, str] = {str: "a string", dict: "an object"}


def _decode(request: web.Request, body: bytes | None) -> dict[str, Any]:
    """The request's fields as JSON values; :class:`NotARequest` says why they are not one request."""
    if body is not None:
        try:
            payload = request_json.decode(body, unique_keys=_FIELDS)
        except request_json.BadJson as exc:
            raise NotARequest(str(exc)) from None
        except json.JSONDecodeError:
            raise NotARequest("Unable to parse request body as JSON") from None
        if not isinstance(payload, dict):
            batch = " (batches are not supported)" if isinstance(payload, list) else ""
            raise NotARequest(f"expected a JSON object, got {json_type(payload)}{batch}")
    else:
        params = request.query
        for name, _ in _KINDS:
            # Which of two queries would run? aiohttp's get() picks the first, a proxy or cache in front
            # may read the last: ``?query={a}&query={b}`` is refused, not resolved by either guess.
            given = len(params.getall(name, []))
            if given > 1:
                raise NotARequest(f"the {name} parameter is given {given} times: send it once")
        payload = {"query": params.get("query"), "operationName": params.get("operationName")}
        for name in ("variables", "extensions"):
            raw = params.get(name)
            try:
                payload[name] = request_json.decode(raw) if raw else None
            except json.JSONDecodeError as exc:  # BadJson included: its text is its reason
                raise NotARequest(f"the {name} parameter is not valid JSON: {exc}") from None
    for field_name, kind in _KINDS:
        value = payload.get(field_name)
        if value is not None and not isinstance(value, kind):
            got = json_type(value)
            raise NotARequest(f"`{field_name}` must be {_KIND_NAMES[kind]} or null, got {got}")
    return payload


class RequestReader:
    def __init__(self, persisted: PersistedQueries, limits: Limits) -> None:
        self.persisted = persisted
        self.limits = limits
        self._bodies = LRU(MEMO_BODIES)
        self._generation = persisted.generation  # the manifest the remembered bodies were read under

    async def prepare(self, request: web.Request) -> web.Response | None:
        """Read a GraphQL request into ``request[PREPARED]``; a response when it is not one (HTTP 400,
        a JSON-like media type we do not read: 415) or for a persisted-query problem. Requests without
        a JSON body or an operation in the URL (forms, WebSocket handshakes, the GraphiQL page) are left
        to the view, which never reads a JSON body itself."""
        if PRINCIPAL not in request:  # unauthenticated (front.py does not call us): read and store nothing
            return None
        body = None
        try:
            if request.method == "POST":
                kind = request_json.body_kind(request.headers.getall("Content-Type", []))
                if kind == "other":
                    return None
                if kind == "refused":
                    raise NotARequest(request_json.UNSUPPORTED, 415)
                body = await request.read()
                await self.persisted.refresh()  # before the memo: it may hold what a new manifest refuses
                if self.persisted.generation != self._generation:
                    self._bodies, self._generation = LRU(MEMO_BODIES), self.persisted.generation
                known = self._bodies.get(body) if len(body) <= MEMO_BODY_BYTES else None
                if known is not None:
                    request[PREPARED] = known
                    return None
                payload = _decode(request, body)
            elif request.method in READS and any(name in request.query for name, _ in _KINDS):  # HEAD as GET
                payload = _decode(request, None)
            else:
                return None
        except NotARequest as refused:
            return not_a_request(request.headers.get("Accept"), refused.status, refused.reason)
        query, extensions = payload.get("query"), payload.get("extensions")
        register = _registers(query, extensions)
        try:
            resolved = await resolve_persisted(self.persisted, self.limits, query, extensions)
        except PersistedQueryProblem as problem:
            return _problem_response(request, problem)
        # Read under the manifest the memo holds: a reload during the awaits above may have dropped it.
        current = self.persisted.generation == self._generation
        keep = body is not None and len(body) <= MEMO_BODY_BYTES and not register and current
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


async def resolve_persisted(
    persisted: PersistedQueries, limits: Limits, query: Any, extensions: dict[str, Any] | None
) -> Any:
    """The query to run (``persisted.resolve``), for HTTP and WebSocket alike. A text registered with its
    hash is stored only when it is a document within the size and token limits: otherwise nothing is
    stored and the caller refuses it as it refuses the same text sent without a hash."""
    if _registers(query, extensions) and await documents.parse(query, limits) is None:
        return await persisted.resolve(query, extensions, store=False)
    return await persisted.resolve(query, extensions)


def _registers(query: Any, extensions: dict[str, Any] | None) -> bool:
    """A query text sent with its hash: an APQ registration."""
    named = extensions is not None and extensions.get("persistedQuery") is not None
    return isinstance(query, str) and bool(query) and named


def _problem_response(request: web.Request, problem: PersistedQueryProblem) -> web.Response:
    body = json.dumps({"errors": [{"message": problem.message, "extensions": {"code": problem.code}}]})
    return web.Response(
        text=body,
        status=problem.status,
        content_type=negotiate(request.headers.get("Accept")),
        headers={"Cache-Control": "private, no-cache, must-revalidate"},
    )
