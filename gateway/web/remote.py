"""``funnelgate query --url``: one GraphQL operation against a running gateway, over HTTP.

The embedded data directory is held by the server, so a second process cannot open it; asking the
server is the way to query it while it runs (and the way to query any remote gateway).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway.errors import ConfigError, StoreUnavailable

ACCEPT = "application/graphql-response+json, application/json;q=0.9"
URL_HINT = "--url takes http(s)://host[:port] or its /graphql"
TIMEOUT_S = 300  # an uncached funnel over a big dataset takes a while


def check_url(url: str, endpoint: str = "/graphql") -> str:
    """The URL of the gateway's ``endpoint`` (``/graphql`` or ``/events``) that ``--url`` names.

    Every command that takes ``--url`` reads it the same way: a base URL (no path, or ``/``) means
    that server's own endpoint; ``/events`` also follows a path the user copied from ``query`` (a
    ``…/graphql`` URL) or a proxy's prefix. ``/graphql`` refuses a URL naming ``/events`` (a URL copied from
    ``replay``): the gateway would answer GraphQL with the events route's "expected a JSON array". Anything
    else is used as given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--url", f"expected http(s)://host[:port] (the gateway), got {url!r}")
    path = parts.path.rstrip("/")
    if endpoint == "/graphql" and path.endswith("/events"):
        graphql = parts._replace(path=path.removesuffix("/events") + "/graphql").geturl()
        raise ConfigError(
            "--url",
            f"{url} is the gateway's events endpoint, not a GraphQL endpoint: a query needs {graphql} "
            f"({URL_HINT})",
        )
    if endpoint == "/events" and not path.endswith("/events"):
        path = path.removesuffix("/graphql") + "/events"
    elif not path:
        path = endpoint
    return parts._replace(path=path).geturl()


def _headers(credential: str | None) -> dict[str, str]:
    headers = {"Accept": ACCEPT}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    return headers


async def post_query(
    url: str,
    document: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    credential: str | None = None,
) -> dict[str, Any]:
    """The server's GraphQL response (``credential``: an API key or JWT, sent as a Bearer token). A non-GraphQL answer (a 4xx with a text reason, a proxy's page)
    comes back as ``{"errors": [{"message": ..., "extensions": {"code": "HTTP_<status>"}}]}``, a 404 or 405
    with the server's code when its answer has one (a gateway's ``NOT_FOUND``)."""
    payload: dict[str, Any] = {"query": document}
    if variables is not None:
        payload["variables"] = variables
    if operation_name is not None:
        payload["operationName"] = operation_name
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http,
            http.post(check_url(url), json=payload, headers=_headers(credential)) as response,
        ):
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StoreUnavailable(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    code = f"HTTP_{status}"
    if status in (404, 405):
        # Not /graphql: a GraphQL answer is never 404/405 (a gateway's other routes answer them in the
        # GraphQL error shape too, so the shape does not tell): say what --url should be, with the
        # server's own code when it gave one.
        error = first_error(body)
        text = f"{url} is not a GraphQL endpoint ({URL_HINT}): {error[0] if error else text}"
        code = error[1] if error and error[1] else code
    elif isinstance(body, dict) and ("data" in body or "errors" in body):
        return body
    return {"errors": [{"message": f"HTTP {status}: {text.strip()[:500]}", "extensions": {"code": code}}]}


def first_error(body: object) -> tuple[str, str | None] | None:
    """The first error's message and code of a GraphQL-shaped answer
    (``{"errors": [{"message": ..., "extensions": {"code": ...}}]}``), else None."""
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, str):
        return None
    extensions = first.get("extensions") if isinstance(first, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return message, code if isinstance(code, str) else None
