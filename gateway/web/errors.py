"""What a GraphQL client sees of an error, and what the log keeps of it.

Client side (:class:`ErrorPolicy`): a message and ``extensions.code``, never a stack trace. Errors raised
on purpose (:class:`gateway.errors.FunnelError`) keep their message and get their code; GraphQL's own
errors get a client-side code: ``GRAPHQL_PARSE_FAILED`` (syntax), ``GRAPHQL_VALIDATION_FAILED`` (the
document does not fit the schema), ``BAD_USER_INPUT`` (a variable value that cannot be coerced, before
execution or, for an argument it is passed to, during it), in GraphQL's words (``null``, not Python's
``None``; a variable's value as graphql-js prints it: :mod:`gateway.web.variable_echo`); anything else
is masked as ``INTERNAL_SERVER_ERROR``. Every message is cut to MAX_MESSAGE_CHARS and redacted (no
data-dir path, no password: :func:`gateway.config.redact`).

Log side (:class:`FunnelSchema`, strawberry's ``process_errors`` hook, which logged every error at ERROR
with its traceback and the whole request text): a client's mistake is one INFO line, a backend outage
one WARNING line, and only an unexpected error gets ERROR with its traceback.
"""

from __future__ import annotations

import logging
import re

import strawberry
from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from gateway.config import redact
from gateway.errors import FunnelError, QueryTimeout, StoreUnavailable
from gateway.security.limits import QUERY_TOO_DEEP, QUERY_TOO_LARGE
from gateway.web.log_throttle import LogThrottle, left_out, path_key
from gateway.web.variable_echo import variable_message

log = logging.getLogger("funnelgate.graphql")

MAX_MESSAGE_CHARS = 1000  # echoed values are cut to 200 where they are written (gateway.errors.shown)
MAX_LOGGED_CHARS = 300

# graphql-core's own wording when it coerces a field's arguments during execution: validation lets a
# nullable variable reach a non-null argument that has a default, and a null sent for it fails only here.
_ARGUMENT_COERCION = re.compile(r"Argument '[^']+' (has invalid value|of required type)\b")
_NULL_VARIABLE = re.compile(
    r"has invalid value(?P<at>[^:]*): Expected variable '\$(?P<variable>\w+)' provided to non-null type "
    r"'(?P<type>[^']+)' not to be None\."
)

# The codes of what graphql-core refuses itself (validation, a variable's value), in its own words.
_GRAPHQL_CORE_CODES = frozenset({"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"})


def _is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, (FunnelError, GraphQLError))


def client_code(error: GraphQLError) -> str | None:
    """The code of an error the client caused (or a FunnelError's own), None for anything else."""
    original = error.original_error
    if isinstance(original, FunnelError):
        return original.code
    if isinstance(error, GraphQLSyntaxError):
        # The parser stops at the size, token and comment limits (gateway/security/limits.py), and at
        # Python's recursion limit: a document nested that deep is far past FUNNEL_MAX_DEPTH.
        if "nested too deeply" in error.message:
            return QUERY_TOO_DEEP
        return QUERY_TOO_LARGE if "Parsing aborted" in error.message else "GRAPHQL_PARSE_FAILED"
    if original is None:
        return "GRAPHQL_VALIDATION_FAILED"
    if error.path is None and isinstance(original, GraphQLError):
        return "BAD_USER_INPUT"  # raised before execution about a variable's value
    if _is_argument_coercion(error):
        return "BAD_USER_INPUT"
    return None


def _is_argument_coercion(error: GraphQLError) -> bool:
    """graphql-core refused a field's argument value while executing: it raised the error itself (no
    exception underneath) at the argument's node; a resolver's own GraphQLError names no node."""
    original = error.original_error
    return (
        isinstance(original, GraphQLError)
        and original.original_error is None
        and bool(original.nodes)
        and _ARGUMENT_COERCION.match(error.message) is not None
    )


def _argument_message(message: str) -> str:
    """graphql-core's message about an argument, in GraphQL's words: ``null``, never Python's None."""
    message = _NULL_VARIABLE.sub(
        lambda m: (
            f"got null{m['at']} from variable '${m['variable']}', but it is a non-null {m['type']}: "
            "leave the variable out for the default"
        ),
        message,
    )
    return message.replace("not to be None", "not to be null")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class ErrorPolicy(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected, error_message="Internal server error")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked

    def _process_result(self, result: object) -> None:
        # strawberry's checks isinstance against a runtime Protocol (~10 us each in Python 3.11), for
        # every subscription message too; an attribute read answers the same question.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        settings = getattr(getattr(self.execution_context.context, "services", None), "settings", None)
        for error in errors:
            if not (error.extensions or {}).get("code"):
                code = client_code(error)
                if code is not None:
                    error.extensions = {**(error.extensions or {}), "code": code}
                if _is_argument_coercion(error):
                    error.message = _argument_message(error.message)
                elif code in _GRAPHQL_CORE_CODES and not isinstance(error.original_error, FunnelError):
                    # graphql-core's own refusal of a null (a list item, a variable) names Python's None.
                    error.message = error.message.replace("not to be None.", "not to be null.")
                    if code == "BAD_USER_INPUT":  # a variable's value, echoed as graphql-js would
                        error.message = variable_message(error.message, self.execution_context.variables)
                if code == QUERY_TOO_LARGE:
                    error.message += " (limits: FUNNEL_MAX_QUERY_CHARS, FUNNEL_MAX_TOKENS)"
                elif code == QUERY_TOO_DEEP:
                    error.message += " (limit: FUNNEL_MAX_DEPTH)"
            message = _cut(error.message, MAX_MESSAGE_CHARS)
            error.message = redact(message, settings) if settings is not None else message
        return super()._process_errors(errors)


# Outages and timeouts: one line per field and 10 s (every query fails alike while a backend is down).
_THROTTLE = LogThrottle()


def log_error(error: GraphQLError) -> None:
    """One line per client mistake, per outage or timeout of a field (at most one per 10 s: the next
    says how many were left out); a traceback only for what nobody expected."""
    where = ".".join(str(p) for p in error.path) if error.path else "request"
    message = _cut(error.message, MAX_LOGGED_CHARS)
    original = error.original_error
    if _is_unexpected(error):
        log.error("unexpected error at %s: %s", where, message, exc_info=original)
    elif isinstance(original, StoreUnavailable):
        if (skipped := _THROTTLE.admit(f"unavailable {path_key(where)}")) is not None:
            log.warning("backend unavailable at %s: %s%s", where, message, left_out(skipped))
    elif isinstance(original, QueryTimeout):
        # The caller gets a TIMEOUT code like a client mistake, but an operator should see it: queries
        # reaching their deadline mean an undersized backend or a missing index as often as a greedy query.
        if (skipped := _THROTTLE.admit(f"timeout {path_key(where)}")) is not None:
            log.warning("query timed out at %s: %s%s", where, message, left_out(skipped))
    else:
        code = (error.extensions or {}).get("code") or client_code(error) or "GRAPHQL_ERROR"
        log.info("client error %s at %s: %s", code, where, message)


class FunnelSchema(strawberry.Schema):
    """strawberry's Schema with the gateway's error logging (its ``process_errors`` hook)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            log_error(error)


__all__ = ["ErrorPolicy", "FunnelSchema", "client_code", "log_error"]
