"""TTL hints: the loaders record the TTL of every cached value they serve to the current request.

The response cache (gateway/cache/responses.py, gateway/web/response_cache.py) reads them to decide how long a whole response may live.
A context variable carries them, so loaders need no extra argument and record nothing outside a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class CacheHints:
    """The TTLs of the cached values one request used; None until the first one."""

    __slots__ = ("max_age",)

    def __init__(self) -> None:
        self.max_age: int | None = None

    def add(self, ttl: int) -> None:
        self.max_age = ttl if self.max_age is None else min(self.max_age, ttl)


_hints: ContextVar[CacheHints | None] = ContextVar("funnelgate_cache_hints", default=None)


def record(ttl: int) -> None:
    """Called by loaders for every cached value they serve; a no-op outside an HTTP request."""
    hints = _hints.get()
    if hints is not None:
        hints.add(ttl)


@contextmanager
def collecting() -> Iterator[CacheHints]:
    hints = CacheHints()
    token = _hints.set(hints)
    try:
        yield hints
    finally:
        _hints.reset(token)
