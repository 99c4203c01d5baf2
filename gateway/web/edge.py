"""The HTTP edge: :func:`admit` decides, without awaiting anything, whether a request goes on (the front
middleware, :mod:`gateway.web.front`, calls it first and :func:`decorate` on what is answered). In order,

1. **Host** (DNS rebinding): the ``Host`` header must name an allowed host (``FUNNEL_ALLOWED_HOSTS``,
   loopback names by default, ``*`` for any; the address ``FUNNEL_HOST`` binds is added); otherwise 421
   with code ``MISDIRECTED_REQUEST``. ``/healthz`` is exempt: load balancers probe it by address.
2. **CORS** (``FUNNEL_CORS_ORIGINS``, none by default): a preflight from an allowed origin for GET or POST
   with the ``authorization``, ``content-type`` and ``accept`` headers gets 204 and the ``Access-Control-*``
   answers; any other preflight 403 ``FORBIDDEN``, naming the origin, method or header refused.
   Responses to allowed origins carry ``Access-Control-Allow-Origin`` (401 and 429 included, so a
   browser can read why). The WebSocket ``Origin`` is checked by the view
   against the same list (refused: 403 ``FORBIDDEN``, :func:`websocket_origin_refusal`). A request a browser sends on behalf of a page of another site
   (``Sec-Fetch-Site: cross-site`` or ``same-site``, e.g. an ``<img src="/graphql?query=…">``, which needs
   no preflight) is refused with 403 unless its origin is allowed: the response would be unreadable, but
   the query would run, with the visitor's access.
3. **Authentication** (when credentials are configured): ``Authorization: Bearer <API key or JWT>``;
   missing or bad: 401 with ``WWW-Authenticate: Bearer`` and code ``UNAUTHENTICATED``. Open:
   ``/healthz``, preflights, the GraphiQL page and the dashboard's files (GET, and HEAD as GET), and
   WebSocket handshakes (a GET with ``Upgrade: websocket`` and ``Connection: upgrade`` and no
   operation; their credential comes in ``connection_init``). An open request gets no principal, and
   nothing after the edge reads its absence as a role: with authentication on it is no access. With
   authentication off every request acts as the local operator. Refusals on /events take that route's own error shape.
   Routes other than /graphql need the role ``ROUTE_ROLES`` gives them (403 ``FORBIDDEN`` below it):
   ``POST /events`` writes, like the ``trackEvents`` mutation, so it needs admin; so does ``GET /metrics``
   (operation names and backend timings are for operators; Prometheus sends an admin API key).
4. **Rate limit** (``gateway/security/ratelimit.py``), on /graphql: per credential, per client address
   with authentication off, a limit per role; over it 429 with ``Retry-After`` and code ``RATE_LIMITED``.
   ``POST /events`` is not counted: capture is bounded by its own batch and body limits.

Every refusal here is JSON with a code, in the route's error shape (:func:`error_response`): a client
reads a refusal the same way whichever step gave it. So are the router's 404 and 405 on every path
(:func:`router_refusal`, ``NOT_FOUND`` / ``METHOD_NOT_ALLOWED`` with ``Allow``), /graphql's own 405, and
aiohttp's 413 for a body over ``FUNNEL_MAX_BODY_BYTES`` (:func:`body_too_large`, ``PAYLOAD_TOO_LARGE``),
and its 417 for an ``Expect`` other than ``100-continue`` (:func:`expect_handler`, ``EXPECTATION_FAILED``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import HttpVersion11, web

from gateway.config import Settings, env_name
from gateway.errors import Unauthenticated, shown_header
from gateway.roles import ANONYMOUS, Principal, Role
from gateway.security.credentials import Authenticator, bearer
from gateway.security.ratelimit import RateLimiter
from gateway.web.negotiation import negotiate

PRINCIPAL = web.RequestKey("principal", Principal)

ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = frozenset({"authorization", "content-type", "accept"})
PREFLIGHT_MAX_AGE_S = 600
EXPOSED_HEADERS = "Retry-After, X-Cache"
OPEN_PATHS = frozenset({"/healthz"})
# The gateway's own pages (the dashboard and its files) hold no data: what they show comes from their
# own /graphql requests, which carry the credential. Host and CORS checks still apply to them.
PAGE_PATHS = ("/", "/static/")
# Routes outside GraphQL, and the role each needs.
ROUTE_ROLES = {"/events": Role.ADMIN, "/metrics": Role.ADMIN}
CROSS_SITE = frozenset({"cross-site", "same-site"})
# The methods that read: HEAD is answered as GET (status and headers, no body) wherever GET is.
READS = frozenset({"GET", "HEAD"})
HOSTS_KEPT = 64


# Routes with their own error shape ({"error": message, "code": code}, gateway/web/events.py): a client of
# /events reads the same shape whether the route or the edge refused it.
PLAIN_ERROR_PATHS = frozenset({"/events"})


def error_response(
    request: web.Request, status: int, message: str, code: str, **headers: str
) -> web.Response:
    """The refusal in the route's own shape: GraphQL-shaped, in the media type the client accepts, except
    on PLAIN_ERROR_PATHS."""
    if request.path in PLAIN_ERROR_PATHS:
        body = json.dumps({"error": message, "code": code})
        return web.Response(
            text=body, status=status, content_type="application/json", headers=headers or None
        )
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    media = negotiate(request.headers.get("Accept"))
    return web.Response(text=body, status=status, content_type=media, headers=headers or None)


# The router's own refusals (aiohttp raises them before any handler; a page raises 404 for a file it does
# not serve): aiohttp's text ("404: Not Found") is no answer a GraphQL or /events client can read.
ROUTER_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def router_refusal(request: web.Request, exc: web.HTTPException) -> web.Response | None:
    """The router's 404/405 in the route's error shape (:func:`error_response`, ``Allow`` kept), not
    aiohttp's plain text; None for any other status (a 304 from a page, a redirect)."""
    code = ROUTER_CODES.get(exc.status)
    if code is None:
        return None
    allow = exc.headers.get("Allow")
    if allow is None:
        return error_response(request, exc.status, f"{request.path}: {exc.reason}", code)
    return method_not_allowed(request, allow)


async def expect_handler(request: web.Request) -> web.Response | None:
    """aiohttp's handling of ``Expect`` (it runs before any middleware): ``100-continue`` is answered
    ``100 Continue`` as aiohttp does; any other expectation 417 ``EXPECTATION_FAILED`` in the route's
    error shape, where aiohttp answers a text page ("Unknown Expect: ..."), which no GraphQL or /events
    client can read. It is answered before the edge: no CORS headers, not in the HTTP metrics."""
    expect = request.headers.get("Expect", "")
    if expect.lower() != "100-continue":
        message = f"Expect {shown_header(expect, 80)} is not supported (only 100-continue)"
        return error_response(request, 417, message, "EXPECTATION_FAILED")
    if request.version == HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp's: the 100 is not part of the response's size
    return None


def body_too_large(request: web.Request, settings: Settings) -> web.Response:
    """aiohttp's 413 for a body over ``client_max_size`` (``Settings.graphql_body_limit``) in the route's
    error shape, naming the limit and the setting that controls it, as every other limit is answered."""
    limit = settings.graphql_body_limit
    setting = env_name("max_body_bytes")
    if limit != settings.max_body_bytes:
        setting = f"4 x {env_name('max_query_chars')}, above {setting}"
    message = f"the request body is larger than {limit:,} bytes ({setting})"
    return error_response(request, 413, message, "PAYLOAD_TOO_LARGE")


def method_not_allowed(request: web.Request, allow: str) -> web.Response:
    message = f"{request.method} is not allowed on {request.path} (allowed: {allow})"
    return error_response(request, 405, message, ROUTER_CODES[405], Allow=allow)


def host_name(host: str) -> str:
    """The name part of a Host header value: ``example.com:8000`` -> ``example.com``, ``[::1]:80`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass
class EdgePolicy:
    settings: Settings
    authenticator: Authenticator
    limiter: RateLimiter
    graphql_path: str = "/graphql"

    def __post_init__(self) -> None:
        self.any_host = "*" in self.settings.allowed_hosts
        hosts = set(self.settings.allowed_hosts)
        if self.settings.host not in ("", "0.0.0.0", "::"):
            hosts.add(self.settings.host.lower().strip("[]"))  # the address it listens on names it too
        self.hosts = frozenset(hosts)
        self.any_origin = "*" in self.settings.cors_origins
        self.origins = frozenset(self.settings.cors_origins)
        self.limits = {role: self.settings.rate_limit(role.label) for role in Role}
        # Host header values already admitted (a client sends the same one every time); refused ones
        # are never kept, and past HOSTS_KEPT new values are checked without being kept.
        self.admitted_hosts: set[str] = set()

    def host_allowed(self, host: str) -> bool:
        if self.any_host or host in self.admitted_hosts:
            return True
        if host_name(host) not in self.hosts:
            return False
        if len(self.admitted_hosts) < HOSTS_KEPT:
            self.admitted_hosts.add(host)
        return True

    def rate_limit(self, role: Role) -> int:
        return self.limits[role]

    def origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/") in self.origins


ALLOWED_ORIGIN = web.RequestKey("allowed_origin", str)  # set by admit: the origin decorate echoes


def admit(policy: EdgePolicy, request: web.Request) -> web.Response | None:
    """The edge's refusal of a request (421, a preflight's answer, 403, 401, 429), or None when it may go
    on; an admitted request carries its principal (``PRINCIPAL``) when it was authenticated. Refusals
    from step 3 on carry the CORS headers of an allowed origin already."""
    if request.path in OPEN_PATHS:
        return None
    # 1. Host
    if not policy.host_allowed(request.host or ""):
        host = shown_header(request.host or "", 80)
        message = f"Host {host} is not served here (allowed hosts: {env_name('allowed_hosts')})"
        return error_response(request, 421, message, "MISDIRECTED_REQUEST")
    # 2. CORS
    headers = request.headers
    origin = headers.get("Origin")
    allowed_origin = origin if origin is not None and policy.origin_allowed(origin) else None
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
        return _preflight(request, policy, origin, allowed_origin is not None)
    if allowed_origin is None and headers.get("Sec-Fetch-Site") in CROSS_SITE:
        message = "a page of another site may not call this API (FUNNEL_CORS_ORIGINS)"
        return error_response(request, 403, message, "FORBIDDEN")
    if allowed_origin is not None:
        request[ALLOWED_ORIGIN] = allowed_origin
    refusal = _authenticate(request, policy)
    if refusal is not None:
        decorate(request, refusal)
    return refusal


def decorate(request: web.Request, response: web.StreamResponse) -> None:
    """The CORS answer headers for an admitted request from an allowed origin (none otherwise)."""
    origin = request.get(ALLOWED_ORIGIN)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")


def _preflight(request: web.Request, policy: EdgePolicy, origin: str | None, allowed: bool) -> web.Response:
    method = request.headers["Access-Control-Request-Method"].strip().upper()
    asked = {
        h.strip().lower()
        for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
        if h.strip()
    }
    reason = _preflight_refusal(origin, allowed, method, asked)
    if reason is not None:
        return error_response(request, 403, f"CORS preflight refused: {reason}", "FORBIDDEN", Vary="Origin")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": origin or "",
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ", ".join(sorted(asked or {"content-type"})),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            "Vary": "Origin",
        },
    )


def _preflight_refusal(origin: str | None, allowed: bool, method: str, asked: set[str]) -> str | None:
    """Why a preflight is refused, naming what was refused and what is allowed; None when it is not.
    Methods and headers are fixed here; only the origins are a setting."""
    if not allowed:
        if origin is None:
            return "the preflight has no Origin header"
        return origin_refused(origin)
    if method not in ("GET", "POST"):
        return f"method {shown_header(method, 40)} is not allowed (allowed: {ALLOWED_METHODS})"
    refused = sorted(asked - ALLOWED_HEADERS)
    if refused:
        names = ", ".join(shown_header(name, 40) for name in refused[:5])
        if len(refused) > 5:
            names += f" and {len(refused) - 5} more"
        which = f"header {names} is" if len(refused) == 1 else f"headers {names} are"
        return f"{which} not allowed (allowed: {', '.join(sorted(ALLOWED_HEADERS))})"
    return None


def origin_refused(origin: str) -> str:
    """Why a request from ``origin`` (a preflight, a WebSocket handshake) is refused."""
    return f"origin {shown_header(origin, 80)} is not allowed ({env_name('cors_origins')})"


def websocket_origin_refusal(request: web.Request) -> web.Response:
    """The view's refusal of a WebSocket handshake from an origin ``FUNNEL_CORS_ORIGINS`` does not list
    (strawberry checks it; its own answer is a bare ``Forbidden``): 403 ``FORBIDDEN`` in the route's
    error shape, as the edge refuses a preflight from the same origin."""
    message = f"WebSocket refused: {origin_refused(request.headers.get('Origin', ''))}"
    return error_response(request, 403, message, "FORBIDDEN")


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",")}


def is_websocket_handshake(request: web.Request) -> bool:
    """A WebSocket opening handshake and nothing else: a GET with ``Upgrade: websocket`` and
    ``Connection: upgrade`` that carries no operation. Only such a request may pass the edge without a
    credential (it authenticates at ``connection_init``); an Upgrade header on a POST, or on a GET with
    a ``query``, is an ordinary request and authenticates like one."""
    headers = request.headers
    return (
        request.method == "GET"
        and "websocket" in _tokens(headers.get("Upgrade", ""))
        and "upgrade" in _tokens(",".join(headers.getall("Connection", ())))
        and not _carries_operation(request)
    )


def _is_page(request: web.Request) -> bool:
    path = request.path
    return request.method in READS and (path == PAGE_PATHS[0] or path.startswith(PAGE_PATHS[1]))


def _carries_operation(request: web.Request) -> bool:
    return "query" in request.query or "extensions" in request.query


def _is_graphiql_page(request: web.Request, graphql_path: str) -> bool:
    """The GraphiQL page (static; its requests carry their own credential), as the view decides it: on
    the GraphQL path only (the same Accept on /metrics is a scraper's, which must authenticate)."""
    accept = request.headers.get("Accept", "")
    return (
        request.method in READS
        and request.path == graphql_path
        and ("text/html" in accept or "*/*" in accept)
        and not _carries_operation(request)
    )


def rate_subject(principal: Principal, auth_enabled: bool, remote: str | None) -> str:
    """Whose count a request adds to: its credential's, or with authentication off its address's."""
    return principal.subject if auth_enabled else f"ip:{remote}"


def _authenticate(request: web.Request, policy: EdgePolicy) -> web.Response | None:
    # 3. Authentication
    if not policy.authenticator.enabled:
        principal = ANONYMOUS
        subject = rate_subject(principal, False, request.remote)
    elif (
        request.method == "OPTIONS"
        or (request.path == policy.graphql_path and is_websocket_handshake(request))
        or _is_graphiql_page(request, policy.graphql_path)
        or _is_page(request)
    ):
        # Open: preflights, the GraphQL WebSocket handshake (it authenticates at connection_init; an
        # Upgrade header on a POST, or on a GET that carries an operation, does not make it one), the
        # GraphiQL page and the dashboard's files (GET, and HEAD as GET: uptime monitors probe with
        # it). Nothing else: every other route answers only a credential. No principal is set: later
        # steps treat its absence as no access (front.py).
        return None
    else:
        credential = bearer(request.headers.get("Authorization"))
        if credential is None:
            return error_response(
                request, 401, "authentication required: send Authorization: Bearer <API key or JWT>",
                "UNAUTHENTICATED", **{"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        try:
            principal = policy.authenticator.authenticate(credential)
        except Unauthenticated as exc:
            return error_response(
                request, 401, str(exc), exc.code, **{"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        subject = rate_subject(principal, True, request.remote)
    request[PRINCIPAL] = principal
    path = request.path
    needed = ROUTE_ROLES.get(path)
    if needed is not None and not principal.may(needed):
        return error_response(
            request, 403, f"{path} needs the {needed.label} role (yours: {principal.role.label})", "FORBIDDEN"
        )
    if path != policy.graphql_path:
        return None
    # 4. Rate limit
    decision = policy.limiter.check(subject, policy.rate_limit(principal.role))
    if not decision.allowed:
        return error_response(
            request,
            429,
            policy.limiter.refusal(decision, principal.role.label),
            "RATE_LIMITED",
            **{"Retry-After": str(decision.retry_after_s)},
        )
    return None
