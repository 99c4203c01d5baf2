"""Recompute the pre-aggregated ``funnel_analytics`` rows for a date range from the stored visits.

A day's rows are that day's funnel (``gateway.stores.preaggregates``: everyone as device ``"all"``, and
each device), asked of the store itself, so the rows are exactly what a funnel query for the day
answers. One store call per day: with the embedded store's funnel index a day costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from gateway.models import Document
from gateway.stores.contracts import DocumentStore
from gateway.stores.preaggregates import day_query, rows_for_day


async def refresh_funnel_analytics(
    store: DocumentStore, steps: Sequence[str], start: date, end: date, days: Iterable[date] | None = None
) -> int:
    """Replace the funnel_analytics rows dated in [start, end]; returns the number of rows written.
    ``days``: the only days in the range that can have visits (ingest knows them: its dates may span
    centuries with a few users each); None computes every day of the range."""
    if days is None:
        wanted = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    else:
        wanted = sorted(d for d in set(days) if start <= d <= end)
    rows: list[Document] = []
    for day in wanted:
        rows += rows_for_day(day, await store.funnel(day_query(steps, day)))
    return await store.replace_funnel_analytics(start, end, rows)
