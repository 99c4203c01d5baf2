"""Backend calls timed into ``funnelgate_backend_call_seconds`` and into the running operation's trace.

:class:`Timed` wraps a backend (document store, vector index, cache) once, in ``open_services``: every
coroutine method called through it is timed; everything else (attributes, sync methods, async
iterators) passes straight through. The method is looked up on each call, so a test that patches the
backend still reaches its patch.

The trace is what the slow-operation log prints: while an operation runs, :func:`tracing` holds a list
in a context variable and each timed call appends ``(backend.call, seconds)`` to it. Tasks the
operation starts (DataLoader batches) copy the context and so append to the same list.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from gateway.errors import StoredEvents
from gateway.ops.metrics import observe_backend

T = TypeVar("T")
Trace = list[tuple[str, float]]
MAX_TRACE = 200  # an operation making more calls than this is logged with the first ones only

_trace: ContextVar[Trace | None] = ContextVar("funnelgate_trace", default=None)


@contextlib.contextmanager
def tracing() -> Iterator[Trace]:
    trace: Trace = []
    _trace.set(trace)
    try:
        yield trace
    finally:
        # Not reset(token): strawberry may resume the hook in another context (subscriptions), where
        # the token is refused. Each operation sets its own list anyway.
        _trace.set(None)


def _record(role: str, call: str, outcome: str, seconds: float) -> None:
    observe_backend(role, call, outcome, seconds)
    trace = _trace.get()
    if trace is not None and len(trace) < MAX_TRACE:
        trace.append((f"{role}.{call}", seconds))


class Timed:
    """``Timed(store, "document_store")`` behaves as ``store`` with its coroutine methods timed."""

    def __init__(self, inner: Any, role: str) -> None:
        self._inner = inner
        self._role = role

    @property
    def wrapped(self) -> Any:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not _is_coroutine_method(attr):
            return attr
        role = self._role

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await attr(*args, **kwargs)
            except StoredEvents:  # a verdict on the batch (a replayed id), not a failing backend
                _record(role, name, "refused", time.perf_counter() - started)
                raise
            except BaseException:
                _record(role, name, "error", time.perf_counter() - started)
                raise
            _record(role, name, "ok", time.perf_counter() - started)
            return result

        return timed


def timed(backend: T, role: str) -> T:
    """``backend`` behind :class:`Timed`, typed as itself (it answers every call the same way)."""
    return cast(T, Timed(backend, role))


_COROUTINE_FLAGS = 0x80  # CO_COROUTINE


def _is_coroutine_method(attr: Any) -> bool:
    code = getattr(getattr(attr, "__func__", attr), "__code__", None)
    return code is not None and bool(code.co_flags & _COROUTINE_FLAGS)
