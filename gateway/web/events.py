"""``POST /events``: a JSON array of events, or ``{"batch": [...]}``; the rules are gateway/realtime/events.py.

=======  =====================================================================================
status   when
=======  =====================================================================================
200      at least one event accepted: ``{"accepted": [...], "duplicates": [...], "rejected": [...]}``;
         every accepted id is durably stored (it survives a SIGKILL right after this answer)
400      every event rejected (same body, plus ``"error"`` and ``"code": "BAD_USER_INPUT"``), or the
         body is not a JSON array / ``{"batch": [...]}``, or holds no events:
         ``{"error": ..., "code": "BAD_REQUEST"}``
401      no credential, or a bad one (the edge, ``gateway/web/edge.py``; with ``WWW-Authenticate``):
         ``{"error": ..., "code": "UNAUTHENTICATED"}``; 403 a role below admin, or a page of another
         site (``FORBIDDEN``)
405      another method than POST (the router; ``METHOD_NOT_ALLOWED``, with ``Allow``)
408      the body did not arrive within FUNNEL_BODY_TIMEOUT_S (the front middleware,
         ``gateway/web/body_deadline.py``): ``code`` ``REQUEST_TIMEOUT``; nothing was stored
413      more than FUNNEL_EVENTS_MAX_BYTES bytes or FUNNEL_EVENTS_MAX_BATCH events: ``code``
         ``PAYLOAD_TOO_LARGE``
500      a fault of the gateway's (the front middleware logs it, ``INTERNAL_SERVER_ERROR``): some events
         may be stored, none was acknowledged; a retry with the same eventIds stores nothing twice. A
         fault while validating any event (``ValidationFault``) fails the whole batch this way, before
         anything is written: it is not the event's fault, so it is never one of ``rejected``
503      the document store could not take the write: nothing was acknowledged, retry (``UNAVAILABLE``)
=======  =====================================================================================
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.config import redact
from gateway.errors import BadInput, StoreUnavailable, shown
from gateway.realtime.capture import TooManyEvents, capture
from gateway.web import request_json
from gateway.web.health import SERVICES


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": message, "code": code}), status=status, content_type="application/json"
    )


async def _body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None past ``limit`` bytes (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


SHAPE = 'expected a JSON array of events, or {"batch": [...]}'


def _events_of(payload: Any) -> list[Any] | str:
    """The events of a body, or why it holds none."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("batch"), list):
        if set(payload) == {"batch"}:
            return list(payload["batch"])
        others = sorted(k for k in payload if k != "batch")
        named = ", ".join(shown(k, 40) for k in others[:5])  # a message stays short, whatever was sent
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        return f"{SHAPE} alone: unknown key(s) {named}{more} beside it"
    return SHAPE


async def post_events(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    limit = services.settings.events_max_bytes
    body = await _body(request, limit)
    if body is None:
        return _error(
            413, "PAYLOAD_TOO_LARGE", f"the body is larger than {limit} bytes (FUNNEL_EVENTS_MAX_BYTES)"
        )
    try:
        payload = orjson.loads(body.removeprefix(request_json.UTF8_BOM))  # as /graphql reads a body
    except orjson.JSONDecodeError as exc:
        # The same words as /graphql for bytes that are not UTF-8 (orjson's name the str it made).
        reason = request_json.not_utf8(body) or str(exc)
        return _error(400, "BAD_REQUEST", f"the body is not valid JSON: {reason}")
    events = _events_of(payload)
    if isinstance(events, str):
        return _error(400, "BAD_REQUEST", events)
    try:
        result = await capture(services.realtime, events)
    except TooManyEvents as exc:
        return _error(413, "PAYLOAD_TOO_LARGE", str(exc))
    except BadInput as exc:
        return _error(400, "BAD_REQUEST", str(exc))
    except StoreUnavailable as exc:  # redacted as GraphQL errors are: no data-dir path, no password
        message = redact(str(exc), services.settings)
        return _error(503, "UNAVAILABLE", f"events were not stored, retry: {message}")
    answer = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [{"index": r.index, "eventId": r.event_id, "reason": r.reason} for r in result.rejected],
    }
    status = 200
    if not result.accepted:  # a refusal like any other, verdicts kept: a client reads error/code first
        status = 400
        answer |= {"error": "every event was rejected; see rejected", "code": "BAD_USER_INPUT"}
    return web.Response(body=orjson.dumps(answer), status=status, content_type="application/json")
