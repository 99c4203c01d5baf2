"""Cache hit/miss counters per key family, kept in-process and mirrored into Prometheus
(``funnelgate_cache_lookups``): callers write ``stats.hits[family] += 1`` and both move."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway.ops.metrics import CACHE_LOOKUPS


class _Mirrored(Counter[str]):
    """A Counter whose increments also move the Prometheus counter of (family, ``result``)."""

    def __init__(self, result: str) -> None:
        super().__init__()
        self._result = result
        self._children: dict[str, Any] = {}

    def __setitem__(self, family: str, value: int) -> None:
        delta = value - self.get(family, 0)
        super().__setitem__(family, value)
        if delta > 0:
            child = self._children.get(family)
            if child is None:
                child = self._children[family] = CACHE_LOOKUPS.labels(family, self._result)
            child.inc(delta)


@dataclass
class CacheStats:
    hits: Counter[str] = field(default_factory=lambda: _Mirrored("hit"))
    misses: Counter[str] = field(default_factory=lambda: _Mirrored("miss"))
    errors: Counter[str] = field(default_factory=lambda: _Mirrored("error"))

    def snapshot(self) -> dict[str, dict[str, int]]:
        families = sorted(set(self.hits) | set(self.misses) | set(self.errors))
        return {
            f: {"hits": self.hits[f], "misses": self.misses[f], "errors": self.errors[f]} for f in families
        }
