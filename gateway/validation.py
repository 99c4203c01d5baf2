"""Argument checks every DocumentStore adapter applies, so they reject bad input identically."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from gateway.errors import BadInput
from gateway.models import Breakdown, FunnelQuery, StepOrder


def check_range(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise BadInput(f"inverted date range: start {start.isoformat()} is after end {end.isoformat()}")


def check_ids(keys: Sequence[Any], kind: type, what: str) -> list[Any]:
    """Lookup keys of one plain type (bools are not ints here); returns them as a list."""
    for key in keys:
        if not isinstance(key, kind) or isinstance(key, bool):
            raise BadInput(f"{what} must be {kind.__name__}s, got {key!r}")
    return list(keys)


def check_count(value: object, what: str) -> int:
    """A page size or limit: an integer >= 0."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadInput(f"{what} must be an integer >= 0, got {value!r}")
    return value


def check_after(after: object) -> None:
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
        raise BadInput(f"after must be a user id (int) or None, got {after!r}")


def check_query(query: FunnelQuery) -> None:
    if not query.steps:
        raise BadInput("a funnel needs at least one step")
    if any(not isinstance(step, str) or not step for step in query.steps):
        raise BadInput("funnel steps must be non-empty page types")
    if len(set(query.steps)) != len(query.steps):
        raise BadInput(f"funnel steps must be distinct, got {list(query.steps)}")
    if not isinstance(query.order, StepOrder):
        raise BadInput(f"unknown step order {query.order!r}")
    if query.breakdown is not None and not isinstance(query.breakdown, Breakdown):
        raise BadInput(f"unknown breakdown {query.breakdown!r}")
    window = query.window_seconds
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
        raise BadInput(f"window_seconds must be an integer >= 0, got {window!r}")
    check_range(query.filter.start, query.filter.end)


def check_step_index(query: FunnelQuery, step_index: int, converted: bool) -> None:
    n = len(query.steps)
    if converted:
        return
    if not isinstance(step_index, int) or isinstance(step_index, bool) or not 0 <= step_index < n:
        raise BadInput(f"step_index must be in 0..{n - 1}, got {step_index!r}")
