"""Funnel math in plain Python: per-user step matching and the step summary.

This is the reference semantics of :class:`gateway.models.FunnelQuery`. The MongoDB adapter feeds it
the per-user sequences its pipeline groups; the DuckDB adapter computes the same thing in SQL and the
test suite checks the two agree on random data.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.models import (
    FunnelBreakdown,
    FunnelResult,
    FunnelStepResult,
    Interval,
    StepOrder,
    TrendPoint,
)


@dataclass(frozen=True)
class UserMatch:
    """How far one user got: ``times[k]`` is when step k was reached; ``anchor`` starts the clock."""

    user_id: int
    group: str | None
    anchor: datetime
    times: list[datetime]
    time_on_step: list[float]  # the user's total duration on each step's page (all steps, reached or not)


def match_steps(
    events: Sequence[tuple[int, datetime]], n_steps: int, order: StepOrder, window_seconds: int | None
) -> tuple[datetime | None, list[datetime]]:
    """Match one user's visits to listed steps, given as (step index, timestamp) pairs in any order.

    Returns (anchor, times of the steps reached, in step order).
    """
    ordered = sorted(events, key=lambda e: (e[1], e[0]))
    if order is StepOrder.UNORDERED:
        return _match_unordered(ordered, n_steps, window_seconds)
    firsts = [t for s, t in ordered if s == 0]
    if not firsts:
        return None, []
    anchor = firsts[0]
    limit = anchor + timedelta(seconds=window_seconds) if window_seconds is not None else None
    times = [anchor]
    if order is StepOrder.ORDERED:
        for step in range(1, n_steps):
            nxt = next((t for s, t in ordered if s == step and t >= times[-1]), None)
            if nxt is None or (limit is not None and nxt > limit):
                break
            times.append(nxt)
        return anchor, times
    # STRICT: any attempt counts. ``depth`` = steps in the attempt under way (0: none); a step-1 visit
    # starts a new one (the old one, if any, is broken by it anyway), a repeat of the current step is
    # skipped, the next step extends it, any other listed step breaks it. t_k is the first time any
    # attempt got k steps deep: attempts only start at step-1 visits, so every t_k >= t_{k-1}.
    depth = 0
    for s, t in ordered:
        if limit is not None and t > limit:
            break
        if s == 0:
            depth = 1
        elif depth and s == depth and depth < n_steps:
            depth += 1
            if depth > len(times):
                times.append(t)
        elif s != depth - 1:
            depth = 0
    return anchor, times


def _match_unordered(
    ordered: Sequence[tuple[int, datetime]], n_steps: int, window_seconds: int | None
) -> tuple[datetime | None, list[datetime]]:
    if not ordered:
        return None, []
    anchor = ordered[0][1]
    limit = anchor + timedelta(seconds=window_seconds) if window_seconds is not None else None
    first: dict[int, datetime] = {}
    for s, t in ordered:
        first.setdefault(s, t)
    times: list[datetime] = []
    for step in range(n_steps):
        seen = first.get(step)
        if seen is None or (limit is not None and seen > limit):
            break
        times.append(max(times[-1], seen) if times else seen)
    return anchor, times


def mean_seconds(total_us: float, users: int) -> float:
    """The mean of ``users``' seconds on a page from their total in whole microseconds (each user's own
    total rounded to the microsecond first): integers add up exactly in any order, and one division of
    two exact numbers is correctly rounded, so every engine gives the same float -- 0.1, 0.2 and 0.3 s
    average to 0.2, not 0.20000000000000004 or 0.19999999999999998 as float sums in two orders do."""
    return float(total_us) / (users * 1_000_000)


def exact_seconds(median: float) -> float:
    """A median in seconds as the decimal it is. Times are whole microseconds, so a median (one of them,
    or the mean of two) is a multiple of 0.5 µs; the float arithmetic that found it can miss that
    decimal by an ulp (34.632 and 34.634 average to 34.632999999999996). Seven places give it back."""
    return round(float(median), 7)


# (users, avg_time_spent, median_time_to_convert) of one step.
StepStats = tuple[int, float | None, float | None]


def step_results(steps: Sequence[str], stats: Sequence[StepStats]) -> tuple[list[FunnelStepResult], float]:
    """The rates of every step from per-step counts and timings, and the overall conversion rate.

    Shared by every way of counting (this module's matching, the DuckDB SQL) so the arithmetic is one.
    """
    first = stats[0][0]
    results = []
    for k, name in enumerate(steps):
        users, avg, median = stats[k]
        prev = stats[k - 1][0] if k else users
        rate = (users / prev if prev else 0.0) if k else (1.0 if users else 0.0)
        results.append(
            FunnelStepResult(
                name=name,
                users=users,
                conversion_rate=rate,
                # (prev - users) / prev, not 1 - rate: one rounding, so 9953 of 20000 dropping off is
                # 0.49765, not 1 - 0.50235 = 0.49765000000000004.
                drop_off_rate=((prev - users) / prev if prev else 1.0) if k else 0.0,
                conversion_from_start=users / first if first else 0.0,
                avg_time_spent=float(avg) if users and avg is not None else None,
                median_time_to_convert=exact_seconds(median) if users and median is not None else None,
            )
        )
    overall = stats[-1][0] / first if first else 0.0
    return results, overall


def summarise(steps: Sequence[str], matches: Iterable[UserMatch]) -> tuple[list[FunnelStepResult], float]:
    """Step results and overall conversion rate for the users in ``matches``."""
    reached: list[list[UserMatch]] = [[] for _ in steps]
    for m in matches:
        for k in range(len(m.times)):
            reached[k].append(m)
    stats: list[StepStats] = [
        (
            len(users),
            mean_seconds(sum(round(m.time_on_step[k] * 1e6) for m in users), len(users)) if users else None,
            statistics.median((m.times[k] - m.anchor).total_seconds() for m in users) if users else None,
        )
        for k, users in enumerate(reached)
    ]
    return step_results(steps, stats)


def funnel_result(steps: Sequence[str], matches: Sequence[UserMatch], breakdown: bool) -> FunnelResult:
    step_results, overall = summarise(steps, matches)
    breakdowns: list[FunnelBreakdown] = []
    if breakdown:
        groups: dict[str | None, list[UserMatch]] = defaultdict(list)
        for m in matches:
            if m.times:
                groups[m.group].append(m)
        for key in sorted(groups, key=lambda g: (g is None, g or "")):
            group_steps, group_overall = summarise(steps, groups[key])
            breakdowns.append(
                FunnelBreakdown(key=key, steps=group_steps, overall_conversion_rate=group_overall)
            )
    return FunnelResult(steps=step_results, overall_conversion_rate=overall, breakdowns=breakdowns)


def period_start(moment: datetime | date, interval: Interval) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    if interval is Interval.DAY:
        return day
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def trend(steps: Sequence[str], matches: Sequence[UserMatch], interval: Interval) -> list[TrendPoint]:
    cohorts: dict[date, list[UserMatch]] = defaultdict(list)
    for m in matches:
        if m.times:
            cohorts[period_start(m.anchor, interval)].append(m)
    points = []
    for period in sorted(cohorts):
        step_results, overall = summarise(steps, cohorts[period])
        points.append(TrendPoint(period=period, steps=step_results, conversion_rate=overall))
    return points


def default_order(reach: Mapping[str, int]) -> list[str]:
    """The default funnel's rule: pages by decreasing number of distinct users who reached them, ties
    by name (a stable order). ``reach`` is page -> distinct users. Ingest orders the CSV's pages with it;
    a store without a stored default orders its visits' pages with it (``analytics/default_funnel``)."""
    return sorted(reach, key=lambda page: (-reach[page], page))
