"""The per-request GraphQL context: shared services plus loaders built fresh for this request, and who is
asking (the principal: set by the edge on HTTP, at ``connection_init`` on a WebSocket). On a WebSocket
each operation gets its own (:mod:`gateway.web.websocket`), carrying the connection's principal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.roles import ANONYMOUS, Principal
from gateway.services import Services
from loaders import Loaders, build_loaders


@dataclass
class Context:
    services: Services
    loaders: Loaders
    request: Any = None  # the aiohttp request (None for CLI queries)
    # response key -> what answered that funnel field; reported in extensions (web/funnel_sources.py)
    funnel_sources: dict[str, str] = field(default_factory=dict)
    principal: Principal = ANONYMOUS  # with authentication off, or a local CLI query: the operator
    connection_params: dict[str, Any] | None = None  # graphql-transport-ws connection_init payload
    # When the WebSocket's credential stops holding (epoch s; None: never, e.g. an API key).
    credential_expires_at: float | None = None


def new_context(services: Services, request: Any = None, principal: Principal = ANONYMOUS) -> Context:
    return Context(services=services, loaders=build_loaders(services), request=request, principal=principal)
