"""What a GraphQL client sees of an error: a message and ``extensions.code``, never a stack trace.

Errors raised on purpose (:class:`gateway.errors.FunnelError`) keep their message and get their code;
GraphQL's own validation errors pass through; anything else is logged here and masked.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from gateway.errors import FunnelError

log = logging.getLogger("funnelgate.graphql")


def _is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, (FunnelError, GraphQLError))


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
            original = error.original_error
            if isinstance(original, FunnelError):
                error.extensions = {**(error.extensions or {}), "code": original.code}
            elif original is None and not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
        return super()._process_errors(errors)
