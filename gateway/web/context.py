"""The per-request GraphQL context: shared services plus loaders built fresh for this request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.services import Services
from loaders import Loaders, build_loaders


@dataclass
class Context:
    services: Services
    loaders: Loaders
    request: Any = None  # the aiohttp request (None for CLI queries)


def new_context(services: Services, request: Any = None) -> Context:
    return Context(services=services, loaders=build_loaders(services), request=request)
