"""Which operation of a document runs, decided before strawberry executes it (GraphQL spec, GetOperation).

strawberry 0.341 gets two cases wrong, both fixed here for HTTP and for ``funnelgate query``:
  * a document with several operations and no ``operationName`` runs the first one; the spec says it is
    a request error ("Must provide operation name...");
  * a subscription sent to the one-shot execution path (POST, GET, the CLI) is executed like a query,
    and its async generator fails as a null root field (HTTP 200, INTERNAL_SERVER_ERROR). Subscriptions
    run over WebSocket (graphql-transport-ws) only.
Both become GraphQL request errors with ``extensions.code`` ``BAD_REQUEST`` (no execution, ``data`` null).

The parsed documents are kept in one LRU shared with the schema's parse step (:class:`SharedParserCache`),
so looking at the operations costs no second parse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from strawberry.extensions import SchemaExtension

BAD_REQUEST = "BAD_REQUEST"
PARSE_CACHE_SIZE = 512


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_document(document: str) -> DocumentNode:
    return parse(document)


class SharedParserCache(SchemaExtension):
    """strawberry's ParserCache over :func:`parse_document`. A syntax error is left for strawberry's own
    parse to raise inside its error handling (raised from this hook it would skip the other extensions'
    ``on_operation`` exits, and with them the error policy)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and not context.parse_options:
            with contextlib.suppress(GraphQLError):
                context.graphql_document = parse_document(context.query)
        yield


def operation_problem(
    document: str | None, operation_name: str | None, transport: str
) -> GraphQLError | None:
    """A request error when ``document`` names no single operation to run, or a subscription where
    ``transport`` (e.g. "POST") cannot serve one; None when execution may go on (syntax errors,
    unknown operation names and validation are left to strawberry)."""
    if not isinstance(document, str) or not document:
        return None
    try:
        parsed = parse_document(document)
    except GraphQLError:
        return None
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) > 1:
            return request_error(
                f"the document holds {len(operations)} operations: name the one to run in operationName"
            )
        chosen = operations[0] if operations else None
    else:
        chosen = next((op for op in operations if op.name and op.name.value == operation_name), None)
    if chosen is not None and chosen.operation is OperationType.SUBSCRIPTION:
        return request_error(
            f"subscriptions are not served over {transport}: open a WebSocket to /graphql "
            "with the graphql-transport-ws protocol"
        )
    return None


def request_error(message: str, code: str = BAD_REQUEST) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})
