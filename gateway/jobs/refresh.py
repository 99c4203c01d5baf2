"""Recompute the pre-aggregated ``funnel_analytics`` rows for a date range from the stored visits.

A day's rows are that day's funnel (``gateway.stores.preaggregates``: everyone as device ``"all"``, and
each device), asked of the store itself, so the rows are exactly what a funnel query for the day
answers. One store call per day: with the embedded store's funnel index a day costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from gateway.models import Document
from gateway.stores.contracts import DocumentStore
from gateway.stores.preaggregates import day_query, rows_for_day


async def refresh_funnel_analytics(store: DocumentStore, steps: Sequence[str], start: date, end: date) -> int:
    """Replace the funnel_analytics rows dated in [start, end]; returns the number of rows written."""
    rows: list[Document] = []
    day = start
    while day <= end:
        rows += rows_for_day(day, await store.funnel(day_query(steps, day)))
        day += timedelta(days=1)
    return await store.replace_funnel_analytics(start, end, rows)
