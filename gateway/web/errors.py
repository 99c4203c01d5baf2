"""What a GraphQL client sees of an error: a message and ``extensions.code``, never a stack trace.

Errors raised on purpose (:class:`gateway.errors.FunnelError`) keep their message and get their code;
GraphQL's own errors get a client-side code: ``GRAPHQL_PARSE_FAILED`` (syntax), ``GRAPHQL_VALIDATION_FAILED``
(the document does not fit the schema), ``BAD_USER_INPUT`` (a variable value that cannot be coerced);
anything else is logged here and masked as ``INTERNAL_SERVER_ERROR``.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from gateway.errors import FunnelError

log = logging.getLogger("funnelgate.graphql")


def _is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, (FunnelError, GraphQLError))


def client_code(error: GraphQLError) -> str | None:
    """The code of an error the client caused (or a FunnelError's own), None for anything else."""
    original = error.original_error
    if isinstance(original, FunnelError):
        return original.code
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if original is None:
        return "GRAPHQL_VALIDATION_FAILED"
    if error.path is None and isinstance(original, GraphQLError):
        return "BAD_USER_INPUT"  # raised before execution about a variable's value
    return None


class ErrorPolicy(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected, error_message="Internal server error")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        log.error("unexpected error at %s", error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        for error in errors:
            if (error.extensions or {}).get("code"):
                continue
            code = client_code(error)
            if code is not None:
                error.extensions = {**(error.extensions or {}), "code": code}
        return super()._process_errors(errors)
