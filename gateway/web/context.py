"""The per-request GraphQL context: shared services plus loaders built fresh for this request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.services import Services
from loaders import Loaders, build_loaders


@dataclass
class Context:
    services: Services
    loaders: Loaders
    request: Any = None  # the aiohttp request (None for CLI queries)
    # response key -> what answered that funnel field; reported in extensions (web/funnel_sources.py)
    funnel_sources: dict[str, str] = field(default_factory=dict)


def new_context(services: Services, request: Any = None) -> Context:
    return Context(services=services, loaders=build_loaders(services), request=request)
