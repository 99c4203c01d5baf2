"""Pre-aggregates that answer: what a ``funnel_analytics`` row is, and which funnels its rows answer
exactly.

A row is one step of **one calendar day's funnel**, for one device or for everyone (``device="all"``):
the default funnel, ORDERED, no window, counting only that day's visits (``start = end = day``), with
the step's users, its mean time on page and its exact median time to convert. A day's rows are
therefore that day's answer itself, computed by the store's own engine, and they answer exactly:

* ``funnel(steps = the rows' steps, order ORDERED, no window, start = end = that day)``, with
  * no device filter (the ``all`` rows), or a device filter (that device's rows; a device without rows
    had nobody reach step 1 that day: the answer is the all-zero funnel);
  * no breakdown, or a device breakdown when every user of the day has a device (the device rows then
    add up to the ``all`` rows at every step; otherwise the users without one form a group whose
    median the rows cannot give, so the store computes).

Everything else is computed, because no sum of rows is exact:

* several days: a user active on two days is one user of the range but counted in both days' rows, and
  a user's step-1 visit on one day and purchase on the next make a conversion no single day has;
* medians of groups or days do not combine into the median of their union;
* a sex filter or breakdown, another order, a window or other steps describe other funnels.

Ingest writes every day's rows (``jobs/refresh.py``). A store that serves them must know they are
current: the embedded store recomputes a day's rows when a write lands on that day before it answers
from them (``stores/duckdb/preaggregates.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from gateway.models import (
    Breakdown,
    Document,
    FunnelBreakdown,
    FunnelQuery,
    FunnelResult,
    StepOrder,
    UserFilter,
)
from gateway.stores.funnel_math import StepStats, step_results

ALL_DEVICES = "all"
SOURCE = "funnel_analytics"  # FunnelResult.source of an answer read from the rows


def answerable_day(query: FunnelQuery) -> date | None:
    """The day whose rows may answer ``query`` (steps are checked against the rows), else None."""
    f = query.filter
    if (
        query.order is StepOrder.ORDERED
        and query.window_seconds is None
        and f.sex is None
        and f.device != ALL_DEVICES  # the rows' name for everyone, not a device anyone has
        and query.breakdown in (None, Breakdown.DEVICE)
        and f.start is not None
        and f.start == f.end
    ):
        return f.start
    return None


def day_query(steps: Sequence[str], day: date) -> FunnelQuery:
    """The funnel a day's rows hold: everyone and every device at once."""
    return FunnelQuery(tuple(steps), UserFilter(start=day, end=day), breakdown=Breakdown.DEVICE)


def rows_for_day(day: date, result: FunnelResult) -> list[Document]:
    """The rows of one day from ``day_query``'s result: ``all`` and each device with users that day."""
    if not result.steps or not result.steps[0].users:
        return []
    groups = [(ALL_DEVICES, result.steps)]
    groups += [(b.key, b.steps) for b in result.breakdowns if b.key is not None]
    return [
        {
            "date": day,
            "device": device,
            "funnel_step": step.name,
            "step_index": index,
            "unique_users": step.users,
            "conversion_rate": step.conversion_rate,
            "drop_off_rate": step.drop_off_rate,
            "avg_time_spent": step.avg_time_spent,
            "median_time_to_convert": step.median_time_to_convert,
        }
        for device, steps in groups
        for index, step in enumerate(steps)
    ]


def answer_from_rows(query: FunnelQuery, rows: Sequence[Document]) -> FunnelResult | None:
    """The answer to ``query`` (see ``answerable_day``) from **all** the current rows of its day, or
    None when the rows cannot give it exactly (other steps, users without a device in a breakdown).
    No rows means nobody reached step 1 that day."""
    steps = tuple(query.steps)
    by_device: dict[str, list[Document]] = {}
    for row in sorted(rows, key=lambda r: (r["device"], r["step_index"])):
        by_device.setdefault(row["device"], []).append(row)
    if any(tuple(r["funnel_step"] for r in group) != steps for group in by_device.values()):
        return None
    if any(r.get("unique_users") and r.get("median_time_to_convert") is None for r in rows):
        return None  # written before rows carried medians: not one day's funnel
    empty: list[StepStats] = [(0, None, None)] * len(steps)

    def stats(device: str) -> list[StepStats]:
        group = by_device.get(device)
        if group is None:
            return empty
        return [(r["unique_users"], r["avg_time_spent"], r["median_time_to_convert"]) for r in group]

    device = query.filter.device
    total = stats(ALL_DEVICES if device is None else device)
    groups = [device] if device is not None else sorted(d for d in by_device if d != ALL_DEVICES)
    if query.breakdown is Breakdown.DEVICE and device is None:
        for k in range(len(steps)):
            if sum(stats(g)[k][0] for g in groups) != total[k][0]:
                return None  # someone has no device: their group is not in the rows
    step_list, rate = step_results(steps, total)
    breakdowns = []
    if query.breakdown is Breakdown.DEVICE:
        for key in groups:
            if stats(key)[0][0]:
                group_steps, group_rate = step_results(steps, stats(key))
                breakdowns.append(FunnelBreakdown(key, group_steps, group_rate))
    return FunnelResult(step_list, rate, breakdowns, source=SOURCE)


def narrowed(query: FunnelQuery, result: FunnelResult) -> FunnelResult:
    """``day_query``'s result cut down to what ``query`` (same day and steps) asks, exactly."""
    rows = rows_for_day(query.filter.start or date.min, result)
    answer = answer_from_rows(query, rows)
    if answer is None:  # only the full breakdown needs the group without a device: it is ``result``
        return result
    return replace(answer, source=result.source)
