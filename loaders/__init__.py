"""Per-request DataLoaders, one per entity/key; build_loaders is called once per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.services import Services


@dataclass
class Loaders:
    pass


def build_loaders(services: Services) -> Loaders:
    return Loaders()
