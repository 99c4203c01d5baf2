"""graphql-transport-ws as the gateway serves it: strawberry's handler, with what an HTTP request gets
from the edge and the view applied to every ``subscribe`` message too (the view names this class in
``graphql_transport_ws_handler_class``).

* **Frames**: a message must be a JSON object with a string ``type``; ``subscribe`` needs a string
  ``id`` (at most ``MAX_ID_BYTES``) and a ``payload`` object whose ``query`` is a string (absent only with
  ``extensions.persistedQuery``), ``variables``/``extensions`` objects and ``operationName`` a string
  when present; ``complete`` a string ``id``. Anything else, and JSON that is malformed or nests too
  deeply, closes the socket with 4400 and a reason, before or after ``connection_init``. Every close
  reason (ours, strawberry's, aiohttp's) is cut to ``MAX_CLOSE_REASON_BYTES`` by the socket itself
  (:class:`BoundedCloseWebSocket`): RFC 6455 holds a close frame to 125 bytes, and a strict client
  (aiohttp's, a browser) drops a longer one as a protocol error, never seeing the code.
* **Mistakes in an operation are the operation's**: a document that is not GraphQL, is over
  ``FUNNEL_MAX_QUERY_CHARS`` or ``FUNNEL_MAX_TOKENS``, or does not hold the operation ``operationName``
  names gets an ``error`` message for that id with the code HTTP gives (``GRAPHQL_PARSE_FAILED``,
  ``QUERY_TOO_LARGE``, ``BAD_REQUEST``); strawberry closed the socket with 4400 instead (ending every
  other subscription on it), or masked an unknown name as ``INTERNAL_SERVER_ERROR`` with a traceback.
* **A context per operation**: fresh loaders (their memo would otherwise answer later operations with
  what the first one read, and grow for as long as the socket lives) and per-request state (e.g.
  ``funnelSources``); the connection keeps only its principal and its credential's expiry.
* **Credential expiry**: a JWT holds until its ``exp`` plus the leeway, as on HTTP. Then the socket is
  closed with 4403 (its running subscriptions end with it); a ``subscribe`` that arrives later is
  answered the same way. graphql-ws clients reconnect after 4403, asking ``connectionParams`` again,
  which is where a fresh token comes from.
* **Rate limit**: every operation counts against its credential's limit (``FUNNEL_RATE_LIMITS``), with
  the HTTP requests of the same credential; over it the operation gets an ``error`` message with code
  ``RATE_LIMITED``, and the socket stays open.
* **Operations per socket**: at most ``FUNNEL_MAX_OPERATIONS_PER_SOCKET`` run at once (subscriptions,
  and queries or mutations not answered yet); one more gets an ``error`` message with code
  ``TOO_MANY_OPERATIONS`` (strawberry's own refusal had no code and named no setting), the socket and
  its running operations carry on, and a place frees when one of them completes.
* **Persisted queries**: the same rule as HTTP (``gateway/security/persisted.py``): with
  ``FUNNEL_PERSISTED_QUERIES=allowlist`` only registered operations run (``OPERATION_NOT_ALLOWED``).
* **Request timeout**: a query or mutation runs under ``FUNNEL_REQUEST_TIMEOUT_S`` (and its backend
  deadline), answered ``TIMEOUT`` like HTTP; a subscription lives as long as the client wants it.
* ``connection_init`` must arrive within ``INIT_TIMEOUT`` (5 s) of the handshake (else 4408): a socket that
  never authenticates is not held for strawberry's default minute. How many sockets one client address
  may hold open is the view's check (``FUNNEL_MAX_SOCKETS_PER_ADDRESS``, 429 ``TOO_MANY_SOCKETS`` at the
  handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import WSCloseCode, web
from graphql import GraphQLError, OperationType
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import CompleteMessage
from strawberry.types.execution import PreExecutionError
from strawberry.utils.aio import aclosing

from gateway import deadlines
from gateway.config import Settings
from gateway.errors import QueryTimeout, json_type
from gateway.security.limits import Limits
from gateway.security.persisted import PersistedQueries, PersistedQueryProblem
from gateway.security.ratelimit import RateLimiter
from gateway.web import documents
from gateway.web.context import Context, new_context
from gateway.web.edge import rate_subject
from gateway.web.errors import log_error
from gateway.web.operations import ambiguity, chosen_operation, unknown_operation
from gateway.web.requests import resolve_persisted

log = logging.getLogger("funnelgate.graphql")

INIT_TIMEOUT = timedelta(seconds=5)
EXPIRED = 4403  # graphql-ws's Forbidden: its clients reconnect (asking connectionParams again)
# RFC 6455 5.5: a control frame's payload is at most 125 bytes, the close code taking 2 of them.
MAX_CLOSE_REASON_BYTES = 123
CUT = b"..."
# strawberry echoes a duplicate id in its close reason: 64 bytes leave it whole.
MAX_ID_BYTES = 64
TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"
clock: Callable[[], float] = time.time  # the credential expiry's clock (epoch s, like JWT ``exp``)

_OPTIONAL = (("variables", dict), ("extensions", dict), ("operationName", str))


@dataclass(frozen=True)
class SocketPolicy:
    """What the handler needs besides the view's services: the edge's limiter and persisted queries."""

    settings: Settings
    limits: Limits
    limiter: RateLimiter
    persisted: PersistedQueries
    auth_enabled: bool


def close_reason(reason: bytes) -> bytes:
    """``reason`` as a close frame can carry it: at most ``MAX_CLOSE_REASON_BYTES`` of UTF-8, a longer
    one cut on a character boundary and ending ``...``. (graphql-ws's server limits its own reasons too,
    replacing one of 124 characters or more by a fixed text; a cut keeps what the client needs to read.)"""
    if len(reason) <= MAX_CLOSE_REASON_BYTES:
        return reason
    kept = reason[: MAX_CLOSE_REASON_BYTES - len(CUT)]
    return kept.decode("utf-8", "ignore").encode() + CUT  # "ignore" drops a character cut in two


class BoundedCloseWebSocket(web.WebSocketResponse):
    """The gateway's WebSockets (``view.py`` makes them): every close, whoever asks for it (this
    handler, strawberry's, the shutdown), sends a reason a close frame can hold. Some echo the client
    (strawberry's ``Unknown message type: …``)."""

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        return await super().close(code=code, message=close_reason(message), drain=drain)


def frame_problem(message: object) -> str | None:
    """Why a decoded graphql-transport-ws message cannot be handled (a close reason),
    None when its shape is fine. Values strawberry checks itself (connection_init's payload) pass."""
    if not isinstance(message, dict):
        return f"a message must be a JSON object, not {json_type(message)}"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message needs a string type"
    if kind not in ("subscribe", "complete"):
        return None
    if not isinstance(message.get("id"), str) or not message["id"]:
        return f"a {kind} message needs a non-empty string id"
    if len(message["id"].encode()) > MAX_ID_BYTES:
        return f"an operation id is at most {MAX_ID_BYTES} bytes"
    if kind == "complete":
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "a subscribe payload must be a JSON object"
    for name, kind_of in _OPTIONAL:
        if payload.get(name) is not None and not isinstance(payload[name], kind_of):
            return f"payload.{name} must be {json_type(kind_of())}"
    query = payload.get("query")
    named = (payload.get("extensions") or {}).get("persistedQuery") is not None
    if not isinstance(query, str) and not (query is None and named):
        return "payload.query must be a string"
    return None


def coded(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


async def _replay(results: list[Any]) -> AsyncGenerator[Any, None]:
    for result in results:
        yield result


class FunnelTransportWS(BaseGraphQLTransportWSHandler[Context, Any]):
    context: Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy: SocketPolicy = self.view.socket_policy  # type: ignore[attr-defined]
        self.expiry_task: asyncio.Task[None] | None = None
        self.extensions: dict[str, dict[str, Any] | None] = {}  # by operation id, until it starts

    async def handle_message(self, message: Any) -> None:
        problem = frame_problem(message)
        if problem is not None:
            await self.handle_invalid_message(f"Invalid message: {problem}")
            return
        if message["type"] == "connection_init" and message.get("payload", {}) is None:
            del message["payload"]  # the protocol allows null (no parameters); strawberry closes on it
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        expires = self.context.credential_expires_at
        if self.connection_acknowledged and expires is not None and self.expiry_task is None:
            self.expiry_task = asyncio.create_task(self._close_at(expires))

    async def _close_at(self, expires: float) -> None:
        await asyncio.sleep(max(0.0, expires - clock()))
        await self._close_expired()

    async def _close_expired(self) -> None:
        await self.websocket.close(EXPIRED, "Forbidden: the credential expired; reconnect with a fresh one")

    async def handle_subscribe(self, message: Any) -> None:
        expires = self.context.credential_expires_at
        if self.connection_acknowledged and expires is not None and clock() >= expires:
            await self._close_expired()
            return
        payload = message["payload"]
        payload.setdefault("query", None)  # a persisted query named by its hash alone
        if self.connection_acknowledged and message["id"] not in self.operations:
            # Counted here, when the client sends it: an operation completed before its task ran
            # would otherwise cost nothing. One over the socket's cap never runs, so it costs nothing.
            limited = self.over_capacity() or self.rate_limited()
            if limited is not None:
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [limited.formatted]}
                )
                return
            self.extensions[message["id"]] = payload.get("extensions")
        await super().handle_subscribe(message)
        if message["id"] not in self.operations:  # refused (e.g. over the per-socket limit): never runs
            self.extensions.pop(message["id"], None)

    async def cleanup_operation(self, operation_id: str) -> None:
        # A `complete` that arrives before the operation's task ran: its extensions go with it.
        self.extensions.pop(operation_id, None)
        await super().cleanup_operation(operation_id)

    async def shutdown(self) -> None:
        if self.expiry_task is not None:
            self.expiry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.expiry_task
        await super().shutdown()

    def operation_context(self) -> Context:
        """A context of the operation's own: fresh loaders and state, the connection's principal."""
        connection = self.context
        context = new_context(connection.services, connection.request, connection.principal)
        context.connection_params = connection.connection_params
        context.credential_expires_at = connection.credential_expires_at
        return context

    def over_capacity(self) -> GraphQLError | None:
        """The TOO_MANY_OPERATIONS error when the socket already runs as many operations as it may."""
        cap = self.policy.settings.max_operations_per_socket
        if len(self.operations) < cap:
            return None
        return coded(
            f"{cap} operations are already running on this socket (FUNNEL_MAX_OPERATIONS_PER_SOCKET): "
            "complete one first, or open another socket",
            TOO_MANY_OPERATIONS,
        )

    def rate_limited(self) -> GraphQLError | None:
        """The RATE_LIMITED error when this operation is one too many for its credential, else None."""
        principal = self.context.principal
        policy = self.policy
        subject = rate_subject(principal, policy.auth_enabled, getattr(self.context.request, "remote", None))
        decision = policy.limiter.check(subject, policy.settings.rate_limit(principal.role.label))
        if decision.allowed:
            return None
        return coded(policy.limiter.refusal(decision, principal.role.label), "RATE_LIMITED")

    async def refusal(self, operation: Operation[Context, Any], context: Context) -> GraphQLError | None:
        """Why the operation must not run (the persisted-query rule); resolves its document."""
        extensions = self.extensions.pop(operation.id, None)
        policy = self.policy
        try:
            query = await resolve_persisted(policy.persisted, policy.limits, operation.query, extensions)
        except PersistedQueryProblem as problem:
            return coded(problem.message, problem.code)
        if not isinstance(query, str):
            return coded("payload.query must be a string", "BAD_REQUEST")
        operation.query = query
        document = await documents.parse(query, policy.limits)
        if document is None:  # not GraphQL within the limits: strawberry's parse says why, as on HTTP
            return None
        unnamed = ambiguity(document, operation.operation_name)
        if unnamed is not None or chosen_operation(document, operation.operation_name) is not None:
            return unnamed
        return unknown_operation(operation.operation_name)

    async def is_subscription(self, operation: Operation[Context, Any]) -> bool:
        document = await documents.parse(operation.query, self.policy.limits)
        chosen = None if document is None else chosen_operation(document, operation.operation_name)
        return chosen is not None and chosen.operation is OperationType.SUBSCRIPTION

    async def run_operation(self, operation: Operation[Context, Any]) -> None:
        """strawberry's ``run_operation`` with the operation's own context, the refusals above and the
        request timeout on a query or mutation."""
        context = self.operation_context()
        try:
            problem = await self.refusal(operation, context)
            if problem is not None:
                log_error(problem)  # the client's mistake: one INFO line
                await operation.send_initial_errors([problem])
                return
            if await self.is_subscription(operation):
                source = await self._stream(operation, context)
                async with aclosing(source):
                    await self._send_result_stream(operation, source)
            else:
                results = await self._bounded(operation, context)
                if results is None:
                    return
                await self._send_result_stream(operation, _replay(results))
            await operation.send_operation_message(CompleteMessage(id=operation.id, type="complete"))
        except _OperationStreamClosed:
            return
        except asyncio.CancelledError:
            context.loaders.cancel_pending()  # completed by the client, or the socket closed
            raise
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _handle_pre_execution_error(
        self, operation: Operation[Context, Any], result: PreExecutionError
    ) -> None:
        """A request error (syntax, a size or token limit, validation, a limit) ends that operation with
        an ``error`` message. strawberry closed the whole socket with 4400 on a syntax error (and on the
        size and token limits, which the parser reports as syntax errors), ending every other operation
        on it; graphql-transport-ws keeps 4400 for messages that break the protocol."""
        assert result.errors
        await operation.send_initial_errors(result.errors)

    async def _stream(self, operation: Operation[Context, Any], context: Context) -> Any:
        return await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=context,
            root_value=self.root_value,
            operation_name=operation.operation_name,
        )

    async def _bounded(self, operation: Operation[Context, Any], context: Context) -> list[Any] | None:
        """A query's or mutation's results, computed under the request timeout; None when it fired
        (the operation was answered ``TIMEOUT``)."""
        timeout_s = self.policy.settings.request_timeout_s
        try:
            with deadlines.deadline_in(timeout_s):
                async with asyncio.timeout(timeout_s):
                    source = await self._stream(operation, context)
                    async with aclosing(source):
                        return [result async for result in source]
        except TimeoutError:
            context.loaders.cancel_pending()
            error = QueryTimeout(
                f"the request took longer than {timeout_s:g} s and was stopped (FUNNEL_REQUEST_TIMEOUT_S)"
            )
            log.info("client error TIMEOUT at request: %s", error)
            await operation.send_initial_errors(
                [GraphQLError(str(error), original_error=error, extensions={"code": error.code})]
            )
            return None
