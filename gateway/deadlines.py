"""The current request's deadline, shared by every backend call made on its behalf.

A deadline is an instant on the monotonic clock, held in a ContextVar: every task the request spawns
(resolvers, DataLoader batches) inherits it, and a call made outside any request (a CLI job) sees none.
The web layer sets it once per request (``with deadline_in(seconds): ...``); adapters ask ``remaining()``
and turn it into their backend's time limit (MongoDB: ``maxTimeMS`` through ``pymongo.timeout``), so a
query the client gave up on stops on the server too instead of running on.

Nesting only ever tightens: an inner ``deadline_in`` cannot extend the outer one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("funnelgate_deadline", default=None)


def current() -> float | None:
    """The deadline as a ``time.monotonic()`` instant, or None when nothing set one."""
    return _deadline.get()


def remaining() -> float | None:
    """Seconds left before the deadline (0.0 once it has passed), or None when there is no deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


@contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Run the block with a deadline ``seconds`` from now, or the enclosing one if that is sooner."""
    if seconds < 0:
        raise ValueError(f"a deadline needs seconds >= 0, got {seconds}")
    wanted = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(wanted if outer is None else min(outer, wanted))
    try:
        yield
    finally:
        _deadline.reset(token)
