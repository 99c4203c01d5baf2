"""A request's body must arrive within ``FUNNEL_BODY_TIMEOUT_S`` of its head, or it is answered 408.

aiohttp has no such deadline: a handler awaiting ``request.read()`` waits as long as the client keeps
the connection open, one byte every few seconds or none at all, and ``FUNNEL_REQUEST_TIMEOUT_S`` only
covers execution, which starts after the body is read. So the front middleware arms one timer per
request that still has body bytes to come (:func:`arm`); when it fires before the last byte, the body's
stream is failed with :class:`BodyTimeout`, which wakes whichever reader waits on it (the request
reader, ``POST /events``, anything added later) and reaches the middleware, which answers 408 and closes
the connection (:func:`refusal`).

:class:`BodyTimeout` is a ``TimeoutError`` because aiohttp, after the response, drains what is left of an
unread body ("lingering") and treats a ``TimeoutError`` from that stream as the end of it, closing the
connection quietly; any other exception there is logged as an unhandled error.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.streams import StreamReader

from gateway.config import env_name
from gateway.web.negotiation import not_a_request


class BodyTimeout(TimeoutError):
    """The client did not send its whole request body in time."""


def _expire(content: StreamReader, seconds: float) -> None:
    if not content.is_eof():  # all of it arrived: whoever reads it later must get it
        content.set_exception(BodyTimeout(f"the request body did not arrive within {seconds:g} s"))


def arm(request: web.Request, seconds: float) -> asyncio.TimerHandle | None:
    """Fail the request's body stream ``seconds`` from now unless it is complete by then; None when the
    body is complete already (or there is none). The caller cancels the handle once the handler is done."""
    content = request.content
    if content.is_eof():
        return None
    return asyncio.get_running_loop().call_later(seconds, _expire, content, seconds)


def refusal(request: web.Request, seconds: float, graphql: bool) -> web.Response:
    """408 for a body that came too slowly, shaped as the route's other refusals (/graphql: as a request
    that is not one; elsewhere: ``{"error", "code"}`` as ``POST /events``). The connection closes after
    it: the rest of the body, if it ever came, would be read as the next request."""
    reason = f"the request body did not arrive within {seconds:g} s ({env_name('body_timeout_s')})"
    if graphql:
        response = not_a_request(request.headers.get("Accept"), 408, reason)
    else:
        body = json.dumps({"error": reason, "code": "REQUEST_TIMEOUT"})
        response = web.Response(text=body, status=408, content_type="application/json")
    response.force_close()
    return response
