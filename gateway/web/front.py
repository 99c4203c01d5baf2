"""The one aiohttp middleware: every request passes the steps of the request path in one call, in the
order ``gateway/web/app.py`` documents:

1. HTTP metrics (:class:`gateway.web.observability.HttpMetrics`): counted and timed whatever answers,
   the edge's own refusals included (a WebSocket when its handshake is answered, not when it closes);
2. the edge (:func:`gateway.web.edge.admit`): Host, CORS, authentication, route roles, rate limit;
3. on /graphql, the request reader (:class:`gateway.web.requests.RequestReader`): the body decoded once,
   persisted queries resolved; only for a request with a principal (an open one, a WebSocket handshake
   or the GraphiQL page, skips it and the cache: nothing there may act with a role it was not given);
4. the whole-response cache (:class:`gateway.web.response_cache.ResponseCache`): a hit is answered here,
   a miss goes to the view and may be stored;
5. the route's handler (the GraphQL view, the pages, /events, /metrics, /healthz).

Around them all runs the body deadline (:mod:`gateway.web.body_deadline`): a request whose body is still
coming is answered 408 if the rest does not arrive within ``FUNNEL_BODY_TIMEOUT_S``, whichever step
reads it; a body that does not match its ``Content-Encoding`` is a 400 ``BAD_REQUEST``, whichever
step reads it. A step that fails unexpectedly is answered 500 ``INTERNAL_SERVER_ERROR`` in the route's error
shape (aiohttp's own answer is a text page), its trace logged.

Each step is a plain function of its own module; they used to be one middleware each, and a cached
answer is only one Redis call, so nesting four coroutines per request (and aiohttp's call into each)
was a measurable part of it (``bench/bench_api.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.web import body_deadline, edge
from gateway.web.observability import STARTED, HttpMetrics
from gateway.web.requests import RequestReader
from gateway.web.response_cache import ResponseCache

log = logging.getLogger("funnelgate.web")


def unreadable_body(exc: Exception) -> str:
    """The reason a body could not be read, as aiohttp's parser gave it (the error, or its cause)."""
    cause = exc if isinstance(exc, HttpProcessingError) else exc.__cause__
    reason = getattr(cause, "message", None) or str(cause or exc)
    return f"the request body could not be read as its headers describe it: {reason}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(
    measure: HttpMetrics,
    policy: edge.EdgePolicy,
    reader: RequestReader,
    responses: ResponseCache | None,
    graphql_path: str,
    body_timeout_s: float,
) -> Any:
    admit, decorate, record = edge.admit, edge.decorate, measure.record
    router_refusal = edge.router_refusal
    arm, BodyTimeout = body_deadline.arm, body_deadline.BodyTimeout
    principal_key = edge.PRINCIPAL

    @web.middleware
    async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[STARTED] = started = time.perf_counter()  # a WebSocket is timed to its 101 (observability)
        status = 500
        response: web.StreamResponse | None
        timer = arm(request, body_timeout_s)
        try:
            response = admit(policy, request)
            if response is None:
                if request.path != graphql_path or principal_key not in request:
                    # Unauthenticated on /graphql (a WebSocket handshake, the GraphiQL page): nothing
                    # to read, resolve or cache for it; the view gives it no access (NOBODY).
                    response = await handler(request)
                else:
                    response = await reader.prepare(request)
                    if response is None:
                        if responses is None:
                            response = await handler(request)
                        else:
                            response = await responses.lookup(request)
                            if response is None:
                                response = await responses.fill(request, handler)
                decorate(request, response)
            status = response.status
            return response
        except web.HTTPException as exc:
            if exc.status == 413:  # request.read() past client_max_size
                refusal: web.Response | None = edge.body_too_large(request, policy.settings)
            else:
                refusal = router_refusal(request, exc)
            if refusal is not None:
                status = refusal.status
                decorate(request, refusal)
                return refusal
            status = exc.status
            decorate(request, exc)  # a router's 404/405 is readable by an allowed origin too
            raise
        except BodyTimeout:
            response = body_deadline.refusal(request, body_timeout_s, request.path == graphql_path)
            status = response.status
            decorate(request, response)
            return response
        except (web.RequestPayloadError, HttpProcessingError) as exc:
            # The body is not what its headers say (a Content-Encoding it does not match; with
            # aiohttp's pure-Python parser, broken chunking): the client's mistake, found only when a
            # step reads it.
            response = edge.error_response(request, 400, unreadable_body(exc), "BAD_REQUEST")
            # The connection's byte stream is past saving: close it after the answer. Marked at its
            # end, the body is not read again after the handler (aiohttp would re-raise the error
            # there and log it as unhandled).
            response.force_close()
            request.content.feed_eof()
            status = response.status
            decorate(request, response)
            return response
        except Exception:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                raise  # the socket may be open already: no HTTP answer can follow
            # A fault of ours: the trace goes to the log, the client gets the route's error shape.
            log.exception("%s %s failed", request.method, request.path)
            response = edge.error_response(
                request, 500, "internal error: the gateway logged it", "INTERNAL_SERVER_ERROR"
            )
            status = response.status
            decorate(request, response)
            return response
        finally:
            if timer is not None:
                timer.cancel()
            record(request, status, started)

    return front
