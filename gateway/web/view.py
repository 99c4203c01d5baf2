"""The GraphQL view: strawberry's aiohttp view with one hook overridden."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView

from gateway.services import Services
from gateway.web.context import Context, new_context


class FunnelGraphQLView(GraphQLView):
    """Only the hook is overridden: every request gets fresh loaders over the shared services."""

    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    async def get_context(self, request: web.Request, response: Any) -> Context:  # type: ignore[override]
        return new_context(self.services, request)
