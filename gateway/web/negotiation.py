"""GraphQL-over-HTTP content negotiation (https://graphql.github.io/graphql-over-http/draft/).

* ``application/graphql-response+json`` is answered when the client's ``Accept`` prefers it (graphql-http,
  Apollo Client and urql send it). With it, a *request error* (parse or validation failure, a variable
  that cannot be coerced, no single operation to run: execution never started) is HTTP 400 with **no**
  ``data`` entry; 500 when the error is the server's own, 504 for a timeout, 403 for a role that may
  not read a field. Field errors keep ``data`` and HTTP 200.
* ``application/json`` (legacy clients, also for a missing ``Accept``, wildcards only, or nothing we can
  produce) is answered exactly as before: HTTP 200 and ``"data": null`` for request errors.

A request that is not a GraphQL request at all (bad JSON, a media type we do not read, no query) is a 4xx
either way (:func:`not_a_request`), with a GraphQL error response in the negotiated type for every
client: ``{"errors": [{"message": ..., "extensions": {"code": ...}}]}``, the code named after the status
(``BAD_REQUEST`` for 400). strawberry answers these with a text reason, which Apollo, urql or
graphql-request cannot read: they parse the body as JSON whatever the status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from aiohttp import web
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
_OURS = (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON)
# The status of a request error under application/graphql-response+json, by code (400 otherwise).
_STATUS_BY_CODE = {"INTERNAL_SERVER_ERROR": 500, "TIMEOUT": 504, "FORBIDDEN": 403, "UNAUTHENTICATED": 401}


def _accept_entries(accept: str) -> list[tuple[str, float]]:
    entries = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        entries.append((media, q))
    return entries


def _quality(media: str, entries: list[tuple[str, float]]) -> float:
    """The q of the most specific range in ``Accept`` that matches ``media`` (RFC 9110 §12.5.1), 0 if none."""
    kind = media.split("/")[0]
    best: tuple[int, float] | None = None
    for pattern, q in entries:
        specificity = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(pattern)
        if specificity is not None and (best is None or specificity > best[0]):
            best = (specificity, q)
    return best[1] if best else 0.0


# A client sends the same Accept on every request, and parsing it was about a tenth of the gateway's own
# Python work on a cached hit (bench_api): the answer is remembered per header value (bounded).
@lru_cache(maxsize=256)
def negotiate(accept: str | None) -> str:
    """The response media type for an ``Accept`` header.

    The higher q wins; on a tie a type the client names beats one it only reaches through a wildcard,
    and the spec's type beats ``application/json``. No Accept, wildcards only, or nothing acceptable:
    ``application/json`` (the spec allows it instead of 406, and legacy clients expect it).
    """
    if not accept or not accept.strip():
        return APPLICATION_JSON
    entries = _accept_entries(accept)
    named = {media for media, q in entries if q > 0 and media in _OURS}
    new, old = _quality(GRAPHQL_RESPONSE_JSON, entries), _quality(APPLICATION_JSON, entries)
    if not named or new == old == 0:
        return APPLICATION_JSON
    if new != old:
        return GRAPHQL_RESPONSE_JSON if new > old else APPLICATION_JSON
    return GRAPHQL_RESPONSE_JSON if GRAPHQL_RESPONSE_JSON in named else APPLICATION_JSON


def is_request_error(result: ExecutionResult) -> bool:
    """True when execution never started: the spec's "request error", answered without ``data``.

    strawberry returns a PreExecutionError for parse and validation failures (and the gateway for a
    document naming no single operation); graphql-core reports a variable it cannot coerce, or an
    unknown operation, as ``data`` None with errors that have no ``path``. A field error always has a
    path, even when it nulls the whole ``data`` (the one root field of a subscription, which is
    non-null; query and mutation root fields are nullable).
    """
    if isinstance(result, PreExecutionError):
        return True
    errors = result.errors or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)


def response_body(result: ExecutionResult, media: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """strawberry's processed ``body`` adjusted to the negotiated media type, and the HTTP status."""
    if media != GRAPHQL_RESPONSE_JSON or not is_request_error(result):
        return dict(body), 200
    codes = {(error.get("extensions") or {}).get("code") for error in body.get("errors") or []}
    status = max((_STATUS_BY_CODE.get(str(code), 400) for code in codes), default=400)
    return {key: value for key, value in body.items() if key != "data"}, status


# The code of a transport-level refusal, by its status; every other 4xx here is a malformed request.
TRANSPORT_CODES = {
    404: "NOT_FOUND",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def not_a_request(accept: str | None, status: int, reason: str) -> web.Response:
    """The answer to a request that is not a GraphQL request (see the module's docstring)."""
    code = TRANSPORT_CODES.get(status, "BAD_REQUEST")
    body = json.dumps({"errors": [{"message": reason, "extensions": {"code": code}}]})
    return web.Response(text=body, status=status, content_type=negotiate(accept))
