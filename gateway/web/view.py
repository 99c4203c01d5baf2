"""The GraphQL view: strawberry's aiohttp view with a few of its hooks overridden.

* ``get_context``: every request gets fresh loaders over the shared services, and its principal (the
  edge (``web/edge.py``) authenticated it; a WebSocket authenticates in ``on_ws_connect``, from the
  ``connection_init`` payload: ``{"Authorization": "Bearer …"}``; a refusal closes it with 4403).
* ``graphql_transport_ws_handler_class``: the WebSocket protocol handler (:mod:`gateway.web.websocket`):
  a context per operation, the rate limit, persisted-query rule and request timeout per operation, the
  credential's expiry, and malformed frames closed with 4400.
* ``parse_http_body``: the request the reader already decoded (and whose persisted query it resolved),
  when there is one (:mod:`gateway.web.requests`; a copy of one shared by identical bodies). A POST
  body strawberry would read as JSON is never read here (415): only the reader reads JSON bodies.
* ``reject_websocket``: a handshake from an origin ``FUNNEL_CORS_ORIGINS`` does not list is 403 with code
  ``FORBIDDEN`` in the route's error shape (:func:`gateway.web.edge.websocket_origin_refusal`), not
  strawberry's bare ``Forbidden``.
* ``render_graphql_ide``: our own GraphiQL page, its files served by the gateway (:mod:`gateway.web.pages`).
* ``decode_json`` / ``parse_json``: client JSON must be UTF-8 Unicode text (:mod:`gateway.web.request_json`)
  and a request body a JSON object (or strawberry's batch array); anything else is HTTP 400, not a 500.
  ``encode_json``: answers and subscription messages are encoded by orjson (UTF-8, not ASCII escapes).
* ``execute_single``: a document must name one operation, and it must not be a subscription
  (:mod:`gateway.web.operations`). Execution runs under the request timeout (``FUNNEL_REQUEST_TIMEOUT_S``,
  also the deadline backends read, :mod:`gateway.deadlines`); when it fires, or the client leaves (the
  server cancels the handler), the request's loader batches are cancelled, which stops their backend
  calls (a running DuckDB statement is interrupted). A timeout answers ``TIMEOUT`` (HTTP 504 with
  ``application/graphql-response+json``).
* ``get_sub_response`` / ``process_result`` / ``create_response``: GraphQL-over-HTTP content negotiation
  (:mod:`gateway.web.negotiation`). The media type is chosen once per request, in
  ``get_sub_response``, and kept on the sub-response (and the request): ``process_result`` only sees the
  request, ``create_response`` only the sub-response.
* ``__call__``: HEAD is answered as GET would be (status and headers, no body), which strawberry
  refuses with 405. strawberry's own 4xx (bad JSON, no query, a form body), text in strawberry, are a
  GraphQL error response with a code for every client, in the negotiated type
  (:func:`gateway.web.negotiation.not_a_request`). A method other than GET, HEAD and POST (a PUT) is
  405 with ``Allow`` and code ``METHOD_NOT_ALLOWED``, as the router answers it on the other routes
  (``edge.router_refusal``); a GET mutation 405 with ``Allow: POST``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import weakref
from typing import Any, TypeGuard

import orjson
from aiohttp import web
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from gateway import deadlines
from gateway.errors import QueryTimeout, Unauthenticated, json_type
from gateway.roles import ANONYMOUS, NOBODY, Principal
from gateway.security.credentials import Authenticator, bearer
from gateway.security.limits import Limits
from gateway.services import Services
from gateway.web import documents, pages, request_json
from gateway.web.context import Context, new_context
from gateway.web.edge import PRINCIPAL, error_response, method_not_allowed, websocket_origin_refusal
from gateway.web.negotiation import negotiate, not_a_request, response_body
from gateway.web.observability import websocket_opened
from gateway.web.operations import parsed_problem
from gateway.web.requests import PREPARED
from gateway.web.websocket import BoundedCloseWebSocket, FunnelTransportWS, SocketPolicy

log = logging.getLogger("funnelgate.graphql")

MEDIA = web.ResponseKey("media_type", str)  # on the sub-response: the negotiated media type
# Open WebSockets and their client addresses (FUNNEL_MAX_SOCKETS_PER_ADDRESS), closed at shutdown.
SOCKETS: web.AppKey[weakref.WeakKeyDictionary[web.WebSocketResponse, str]] = web.AppKey("websockets")
SUB_RESPONSE = web.RequestKey("sub_response", web.Response)
HEAD_AS_GET = web.RequestKey("head_as_get", bool)  # the GET copy of a HEAD request (_as_get)


class _NoOverlapWarning(logging.Filter):
    """aiohttp logs a WebSocket handshake whose subprotocols are none of ours as a WARNING each time a
    response is checked or prepared for it: four lines per such client (strawberry checks three times,
    then prepares one). It is a client's mistake: :meth:`FunnelGraphQLView.pick_websocket_subprotocol`
    logs it once, at INFO, like every client error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "overlap server-known ones" not in record.getMessage()


logging.getLogger("aiohttp.websocket").addFilter(_NoOverlapWarning())
# Not RATE_LIMITED: no Retry-After would help, only closing one of the address's sockets.
TOO_MANY_SOCKETS = "TOO_MANY_SOCKETS"


ALLOWED = "GET, HEAD, POST"  # HEAD as GET (__call__)

# strawberry's bare reasons, with what the client should send instead (curl -d sends a form type).
_HINTS = {
    "Unsupported content type": (
        "Unsupported content type: POST a JSON body with Content-Type: application/json "
        "(or GET /graphql?query=...)"
    ),
}


class FunnelGraphQLView(GraphQLView):
    graphql_transport_ws_handler_class = FunnelTransportWS  # type: ignore[assignment]  # Context, not None

    def __init__(
        self,
        services: Services,
        *,
        authenticator: Authenticator,
        limits: Limits,
        socket_policy: SocketPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.authenticator = authenticator
        self.limits = limits
        self.socket_policy = socket_policy
        self.timeout_s = services.settings.request_timeout_s

    async def get_context(self, request: web.Request, response: Any) -> Context:  # type: ignore[override]
        default = NOBODY if self.authenticator.enabled else ANONYMOUS  # NOBODY: a WebSocket before its init
        return new_context(self.services, request, request.get(PRINCIPAL, default))

    async def on_ws_connect(self, context: Context) -> Any:  # type: ignore[override]
        """graphql-transport-ws ``connection_init``: the payload carries ``Authorization`` (at its top
        level, or in ``headers`` as Hasura's and Apollo's clients send it); the ack payload says which
        role the connection has."""
        if not self.authenticator.enabled:
            return {"role": context.principal.role.label}
        raw = _authorization(context.connection_params)
        credential = bearer(raw) if isinstance(raw, str) else None
        if credential is None:
            raise ConnectionRejectionError(
                {"reason": "authentication required: Authorization in connection_init"}
            )
        try:
            principal: Principal
            principal, context.credential_expires_at = self.authenticator.authenticate_until(credential)
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"reason": str(exc)}) from None
        context.principal = principal
        return {"role": principal.role.label}

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET that names its document by hash only (APQ, ``extensions``) is a query, not a visit.
        return "extensions" not in request.query_params and super().should_render_graphql_ide(request)

    async def pick_websocket_subprotocol(self, request: web.Request) -> str | None:
        chosen = await super().pick_websocket_subprotocol(request)
        asked = request.headers.get("Sec-WebSocket-Protocol")
        if chosen is None and asked:  # strawberry closes it (4406): said once, as a client error
            log.info(
                "client error BAD_WEBSOCKET_PROTOCOL from %s: subprotocols %s, this server speaks %s",
                request.remote,
                repr(asked[:100]),
                ", ".join(self.protocols),
            )
        return chosen

    async def create_websocket_response(
        self, request: web.Request, subprotocol: str | None
    ) -> web.WebSocketResponse:
        # A socket is held before it authenticates (up to connection_init's 5 s) and for as long as
        # its subscriptions run: one address may not hold more than its share.
        cap = self.services.settings.max_sockets_per_address
        address = request.remote or ""
        sockets = request.app.get(SOCKETS)
        open_here = (
            0
            if not cap or sockets is None
            else sum(1 for w, at in sockets.items() if at == address and not w.closed)
        )
        if cap and open_here >= cap:
            # In the route's error shape with a code, like the edge's refusals of the same handshake.
            message = f"{cap} WebSockets are open from this address (FUNNEL_MAX_SOCKETS_PER_ADDRESS)"
            refusal = error_response(request, 429, message, TOO_MANY_SOCKETS)
            raise web.HTTPTooManyRequests(text=refusal.text, content_type=refusal.content_type)
        # strawberry's, with every close reason cut to what a close frame holds (websocket.py).
        ws = BoundedCloseWebSocket(protocols=[subprotocol] if subprotocol else [])
        await ws.prepare(request)
        websocket_opened(request, request.path)  # the request is answered (101); the socket lives on
        if sockets is not None:
            sockets[ws] = address
        return ws

    def is_websocket_request(self, request: web.Request) -> TypeGuard[web.Request]:
        return HEAD_AS_GET not in request and super().is_websocket_request(request)

    async def reject_websocket(self, request: web.Request) -> web.Response:
        return websocket_origin_refusal(request)

    async def parse_http_body(self, request_adapter: AsyncHTTPRequestAdapter) -> Any:
        request: web.Request | None = getattr(request_adapter, "request", None)
        prepared = None if request is None else request.get(PREPARED)
        if prepared is None:
            if (
                request is not None
                and request_adapter.method == "POST"
                and request_json.body_kind(request.headers.getall("Content-Type", [])) != "other"
            ):
                # The reader reads every JSON body (or refuses it): one that reaches here unread would
                # skip what it enforces (the allow-list), so strawberry may not read it either.
                raise HTTPException(415, request_json.UNSUPPORTED)
            return await super().parse_http_body(request_adapter)
        variables, extensions = prepared.variables, prepared.extensions
        if prepared.shared:  # one object for every identical body: nothing downstream may change it
            variables, extensions = copy.deepcopy(variables), copy.deepcopy(extensions)
        return GraphQLRequestData(
            query=prepared.query,
            variables=variables,
            operation_name=prepared.operation_name,
            extensions=extensions,
            protocol="http",
        )

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        return pages.graphiql_page(request.path)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self.run(request=_as_get(request) if request.method == "HEAD" else request)
        except HTTPException as exc:
            if exc.status_code == 405:  # JSON with a code for every client, as on every other route
                return method_not_allowed(request, ALLOWED)
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                # A mutation over GET: GraphQL over HTTP says 405 (strawberry answers 400).
                message = f"{exc.reason} (a GET may only run queries): send it with POST"
                return error_response(request, 405, message, "METHOD_NOT_ALLOWED", Allow="POST")
            reason = _HINTS.get(exc.reason, exc.reason)
            return not_a_request(request.headers.get("Accept"), exc.status_code, reason)

    async def get_sub_response(self, request: web.Request) -> web.Response:
        sub_response = web.Response()
        sub_response[MEDIA] = negotiate(request.headers.get("Accept"))
        request[SUB_RESPONSE] = sub_response
        return sub_response

    async def process_result(self, request: web.Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        sub_response = request[SUB_RESPONSE]
        body, status = response_body(result, sub_response[MEDIA], processed)
        sub_response.set_status(status)
        return body  # type: ignore[return-value]  # GraphQLHTTPResponse without "data"

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: web.Response
    ) -> web.Response:
        response = super().create_response(response_data, sub_response)
        response.content_type = sub_response[MEDIA]  # the charset (utf-8) stays
        return response

    def decode_json(self, data: str | bytes) -> object:
        return request_json.decode(data)

    def encode_json(self, data: object) -> str:
        # orjson, as text: strawberry sends bytes as a binary WebSocket frame, which graphql-transport-ws
        # does not allow. Every subscription message and HTTP answer is encoded here (json.dumps was
        # ~10 % of a userActivity message's cost).
        try:
            return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()
        except orjson.JSONEncodeError:  # what orjson refuses and JSON allows: an int past 64 bits (a cost)
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    def parse_json(self, data: str | bytes) -> Any:
        # Used for POST bodies and for GET's `variables`/`extensions`: each must be an object (an array
        # is strawberry's batch, which it refuses itself).
        try:
            value = self.decode_json(data)
        except request_json.BadJson as exc:
            raise HTTPException(400, str(exc)) from exc
        except json.JSONDecodeError as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(value, dict | list):
            raise HTTPException(400, f"expected a JSON object, got {json_type(value)}")
        return value

    async def execute_single(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: web.Response,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        query = request_data.query
        if isinstance(query, str) and query:
            document = await documents.parse(query, self.limits)
            problem = (
                None
                if document is None
                else parsed_problem(document, request_data.operation_name, request_adapter.method)
            )
            if problem is not None:
                return PreExecutionError(data=None, errors=[problem])
        try:
            with deadlines.deadline_in(self.timeout_s):
                async with asyncio.timeout(self.timeout_s):
                    return await super().execute_single(
                        request=request,
                        request_adapter=request_adapter,
                        sub_response=sub_response,
                        context=context,
                        root_value=root_value,
                        request_data=request_data,
                    )
        except TimeoutError:
            context.loaders.cancel_pending()
            error = QueryTimeout(
                f"the request took longer than {self.timeout_s:g} s and was stopped (FUNNEL_REQUEST_TIMEOUT_S)"
            )
            log.info("client error TIMEOUT at request: %s", error)
            return PreExecutionError(
                data=None,
                errors=[GraphQLError(str(error), original_error=error, extensions={"code": error.code})],
            )
        except asyncio.CancelledError:
            context.loaders.cancel_pending()  # the client left: stop the backend work it started
            raise


def _as_get(request: web.Request) -> web.Request:
    """A HEAD request as the GET it is answered as (the GraphiQL page, a query in the URL): strawberry
    knows only GET and POST. The answer goes out for the HEAD request, which aiohttp sends without its
    body. No WebSocket opens on a HEAD (RFC 6455: a GET): the copy is marked so
    ``is_websocket_request`` says no. (Its headers are kept as received: handing ``clone`` new ones
    would re-encode them as UTF-8, which a header byte that is not UTF-8 cannot be.)"""
    as_get = request.clone(method="GET")
    as_get[HEAD_AS_GET] = True
    return as_get


def _authorization(params: object) -> object:
    """The ``Authorization`` entry of a ``connection_init`` payload (any case), at its top level or in
    its ``headers`` object; None when neither has one."""
    if not isinstance(params, dict):
        return None
    for source in (params, params.get("headers")):
        if isinstance(source, dict):
            for key, value in source.items():
                if isinstance(key, str) and key.lower() == "authorization":
                    return value
    return None
