"""TTL and version hints: the loaders record the TTL of every cached value they serve to the current
request, and the version tokens (gateway/cache/versions.py) it was computed under.

The response cache (gateway/cache/responses.py, gateway/web/response_cache.py) reads them to decide how
long a whole response may live and which tokens must be unchanged for it to be served again.
A context variable carries them, so loaders need no extra argument and record nothing outside a request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar


class CacheHints:
    """The TTLs of the cached values one request used; None until the first one."""

    __slots__ = ("complete", "depends_on", "max_age")

    def __init__(self) -> None:
        self.max_age: int | None = None
        self.depends_on: dict[str, str] = {}  # version key -> the token the parts were computed under
        self.complete = True  # False: a part's tokens are unknown or changed mid-request: don't store

    def add(self, ttl: int) -> None:
        self.max_age = ttl if self.max_age is None else min(self.max_age, ttl)

    def depend(self, version_keys: Sequence[str], tokens: Sequence[str] | None) -> None:
        if tokens is None:
            self.complete = False
            return
        for key, token in zip(version_keys, tokens, strict=True):
            if self.depends_on.setdefault(key, token) != token:
                self.complete = False  # two parts saw different data


_hints: ContextVar[CacheHints | None] = ContextVar("funnelgate_cache_hints", default=None)


def record(ttl: int) -> None:
    """Called by loaders for every cached value they serve; a no-op outside an HTTP request."""
    hints = _hints.get()
    if hints is not None:
        hints.add(ttl)


def depend(version_keys: Sequence[str], tokens: Sequence[str] | None) -> None:
    """Called for every versioned value served (None: its tokens are unknown); a no-op outside a request."""
    hints = _hints.get()
    if hints is not None and version_keys:
        hints.depend(version_keys, tokens)


@contextmanager
def collecting() -> Iterator[CacheHints]:
    hints = CacheHints()
    token = _hints.set(hints)
    try:
        yield hints
    finally:
        _hints.reset(token)
