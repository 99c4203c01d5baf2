"""Every period of a funnel trend, the empty ones as zeros.

The stores answer only the periods in which someone entered the funnel; a client drawing a time series
from that sees a gap of months as two neighbouring points. The grid is filled here, once, above every
store and engine (SQL, the funnel index, the MongoDB pipeline), so they all keep returning only what
they counted and none of them has to agree on how to pad.

The grid is the filter's range when it has one, each missing side taken from the data: from the period
holding ``start`` (else the first period with data) to the period holding ``end`` (else the last).
Periods are keyed exactly as the stores key them (``funnel_math.period_start``: the UTC calendar day,
the Monday of its ISO week, the first of its month). The grid is capped at ``MAX_TREND_PERIODS``: a day
trend from 1970 or a range 1970..2999 would otherwise be hundreds of thousands of points. When the
filter gives both ends the cap is checked before the store is asked (:func:`check_trend_size`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from gateway.errors import BadInput
from gateway.models import Interval, TrendPoint
from gateway.stores.funnel_math import period_start, step_results

# About 2.7 years of days, 19 years of weeks, 83 years of months: more than a chart can show, little
# enough that the padded answer stays small.
MAX_TREND_PERIODS = 1000

_COARSER = {
    Interval.DAY: "a coarser interval (WEEK or MONTH) or ",
    Interval.WEEK: "a coarser interval (MONTH) or ",
    Interval.MONTH: "",
}


def period_count(first: date, last: date, interval: Interval) -> int:
    """Periods from the one holding ``first`` to the one holding ``last``, both included (0 when
    ``first`` is later)."""
    a, b = period_start(first, interval), period_start(last, interval)
    if a > b:
        return 0
    if interval is Interval.DAY:
        return (b - a).days + 1
    if interval is Interval.WEEK:
        return (b - a).days // 7 + 1
    return (b.year - a.year) * 12 + b.month - a.month + 1


def trend_list_size(arguments: Mapping[str, Any]) -> int:
    """How many points a ``funnelTrend`` with these (coerced) arguments can answer, for the cost
    estimate: the grid of a closed range, else the cap -- zero-filled, any store can answer that many."""
    bounds = arguments.get("filter") or {}
    interval, start, end = arguments.get("interval"), bounds.get("start"), bounds.get("end")
    if isinstance(interval, Interval) and isinstance(start, date) and isinstance(end, date):
        return min(period_count(start, end, interval), MAX_TREND_PERIODS)
    return MAX_TREND_PERIODS


def check_trend_size(first: date, last: date, interval: Interval) -> None:
    """BadInput when the grid from ``first`` to ``last`` would hold more than MAX_TREND_PERIODS."""
    count = period_count(first, last, interval)
    if count > MAX_TREND_PERIODS:
        name = interval.name
        raise BadInput(
            f"funnelTrend by {name} from {first.isoformat()} to {last.isoformat()} would return {count} "
            f"periods, more than the limit of {MAX_TREND_PERIODS}: use {_COARSER[interval]}"
            "a narrower filter start/end"
        )


def fill_periods(
    points: Sequence[TrendPoint],
    steps: Sequence[str],
    interval: Interval,
    start: date | None = None,
    end: date | None = None,
) -> list[TrendPoint]:
    """``points`` (one per period with entrants, any order) on the full grid of periods, ascending.

    A period nobody entered gets the point of an empty cohort, from the same arithmetic as a counted
    one: zero users at every step, every rate 0 except each later step's drop-off rate (1 - 0), no
    times, conversion rate 0. With no points and a side of the range open there is no grid: ``[]``.
    """
    if points:
        first = min(p.period for p in points) if start is None else start
        last = max(p.period for p in points) if end is None else end
    elif start is not None and end is not None:
        first, last = start, end
    else:
        return []
    check_trend_size(first, last, interval)
    by_period = {p.period: p for p in points}
    empty_steps, empty_rate = step_results(steps, [(0, None, None)] * len(steps))
    for period in _periods(first, last, interval):
        if period not in by_period:
            by_period[period] = TrendPoint(period=period, steps=list(empty_steps), conversion_rate=empty_rate)
    return [by_period[period] for period in sorted(by_period)]


def _periods(first: date, last: date, interval: Interval) -> Iterator[date]:
    period, stop = period_start(first, interval), period_start(last, interval)
    if period > stop:
        return
    yield period
    while period < stop:  # never steps past ``stop``: after 9999-12-31 there is no date
        period = _next(period, interval)
        yield period


def _next(period: date, interval: Interval) -> date:
    if interval is Interval.DAY:
        return period + timedelta(days=1)
    if interval is Interval.WEEK:
        return period + timedelta(days=7)
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)
