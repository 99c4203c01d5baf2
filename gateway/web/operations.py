"""Which operation of a document runs, decided before strawberry executes it (GraphQL spec, GetOperation).

strawberry 0.341 gets three cases wrong, fixed here for HTTP and for ``funnelgate query`` (the first
for WebSocket operations too, ``websocket.py``):
  * a document with several operations and no ``operationName`` runs the first one; the spec says it is
    a request error ("Must provide operation name...");
  * a subscription sent to the one-shot execution path (POST, GET, the CLI) is executed like a query,
    and its async generator fails as a null root field (HTTP 200, INTERNAL_SERVER_ERROR). Subscriptions
    run over WebSocket (graphql-transport-ws) only;
  * an ``operationName`` the document does not hold, or a document without any operation (fragments
    only), raises out of ``Schema.execute`` (``CannotGetOperationTypeError``): its HTTP view answers a
    plain 400, the one-shot runner failed.
All become GraphQL request errors with ``extensions.code`` ``BAD_REQUEST`` (no execution, ``data`` null).

The documents are parsed once, within the limits, by :mod:`gateway.web.documents` (shared with the
schema's parse step and the response cache).
"""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType
from strawberry.schema.exceptions import CannotGetOperationTypeError

from gateway.errors import shown
from gateway.security.limits import Limits
from gateway.web import documents

BAD_REQUEST = "BAD_REQUEST"


def operation_problem(
    document: str | None, operation_name: str | None, transport: str, limits: Limits
) -> GraphQLError | None:
    """A request error when ``document`` names no single operation to run, or a subscription where
    ``transport`` (e.g. "POST") cannot serve one; None when execution may go on (syntax errors,
    limits and validation are left to strawberry)."""
    if not isinstance(document, str) or not document:
        return None
    parsed = documents.parsed_or_none(document, limits)
    return None if parsed is None else parsed_problem(parsed, operation_name, transport)


def parsed_problem(parsed: DocumentNode, operation_name: str | None, transport: str) -> GraphQLError | None:
    """:func:`operation_problem` of a parsed document."""
    unnamed = ambiguity(parsed, operation_name)
    if unnamed is not None:
        return unnamed
    chosen = chosen_operation(parsed, operation_name)
    if chosen is None:  # a name the document does not hold, or no operation at all
        return unknown_operation(operation_name)
    if chosen is not None and chosen.operation is OperationType.SUBSCRIPTION:
        return request_error(
            f"subscriptions are not served over {transport}: open a WebSocket to /graphql "
            "with the graphql-transport-ws protocol"
        )
    return None


def ambiguity(parsed: DocumentNode, operation_name: str | None) -> GraphQLError | None:
    """The request error of a document holding several operations and no ``operationName`` (every
    transport: HTTP and WebSocket alike); None otherwise."""
    count = sum(isinstance(d, OperationDefinitionNode) for d in parsed.definitions)
    if operation_name is None and count > 1:
        return request_error(f"the document holds {count} operations: name the one to run in operationName")
    return None


def unknown_operation(operation_name: str | None) -> GraphQLError:
    """The refusal of a document without the operation to run (an ``operationName`` it does not hold, or
    no operation at all): graphql-js's words (strawberry's HTTP reason), the name shown as JSON and cut."""
    if operation_name is None:
        return request_error(CannotGetOperationTypeError(None).as_http_error_reason())
    return request_error(f"Unknown operation named {shown(operation_name)}.")


def chosen_operation(parsed: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the named one, or the only one; None when there is no such one."""
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == operation_name), None)


def request_error(message: str, code: str = BAD_REQUEST) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})
