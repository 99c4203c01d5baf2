"""The one day-range rule of every backend: the inclusive calendar days [start, end] are the instants
from start's midnight up to, not including, the midnight after end. None leaves that side open.

Stored days (``users.date``, ``funnel_analytics.date``) compare the same way: a day is its midnight.
Each adapter renders these bounds in its own query language once (DuckDB SQL, a MongoDB condition).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta


def midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def day_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start midnight, midnight after end), None for an open side."""
    low = midnight(start) if start is not None else None
    try:
        high = midnight(end + timedelta(days=1)) if end is not None else None
    except OverflowError:  # end = date.max: nothing lies beyond it
        high = None
    return low, high
