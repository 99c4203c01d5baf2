"""Cache hit/miss counters per key family, kept in-process (exported as metrics later)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class CacheStats:
    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, dict[str, int]]:
        families = sorted(set(self.hits) | set(self.misses) | set(self.errors))
        return {
            f: {"hits": self.hits[f], "misses": self.misses[f], "errors": self.errors[f]} for f in families
        }
