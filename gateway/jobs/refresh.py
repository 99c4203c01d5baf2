"""Recompute the pre-aggregated ``funnel_analytics`` rows for a date range from the stored visits.

One row per (cohort day, device, funnel step), plus device ``"all"`` for everyone (users without a
device included there only). Computed with the store's own funnel_trend, so the rows agree with what a
live funnel query over the same days answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from gateway.models import Breakdown, Document, FunnelQuery, Interval, UserFilter
from gateway.stores.contracts import DocumentStore

ALL_DEVICES = "all"


async def refresh_funnel_analytics(store: DocumentStore, steps: Sequence[str], start: date, end: date) -> int:
    """Replace the funnel_analytics rows dated in [start, end]; returns the number of rows written."""
    funnel_steps = tuple(steps)
    # The device values present: the breakdown keys of users who started the funnel in the range.
    overall = await store.funnel(
        FunnelQuery(funnel_steps, UserFilter(start=start, end=end), breakdown=Breakdown.DEVICE)
    )
    devices = [b.key for b in overall.breakdowns if b.key is not None]
    rows: list[Document] = []
    for device in [*devices, ALL_DEVICES]:
        user_filter = UserFilter(device=None if device == ALL_DEVICES else device, start=start, end=end)
        points = await store.funnel_trend(FunnelQuery(funnel_steps, user_filter), Interval.DAY)
        for point in points:
            for index, step in enumerate(point.steps):
                rows.append(
                    {
                        "date": point.period,
                        "device": device,
                        "funnel_step": step.name,
                        "step_index": index,
                        "unique_users": step.users,
                        "conversion_rate": step.conversion_rate,
                        "drop_off_rate": step.drop_off_rate,
                        "avg_time_spent": step.avg_time_spent,
                    }
                )
    return await store.replace_funnel_analytics(start, end, rows)
