"""The three funnel questions answered from a funnel index: the funnel (with its breakdown), the
cohort trend and the user lists. Matching is match.py, statistics stats.py; the step arithmetic
(rates from counts) is the one every store shares, ``gateway.stores.funnel_math.step_results``.

Nothing here writes into the index: a query may run on a snapshot other threads are reading.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from gateway.models import FunnelBreakdown, FunnelQuery, FunnelResult, Interval, TrendPoint, UserPage
from gateway.stores.duckdb.funnel_index.arrays import DAY_US
from gateway.stores.duckdb.funnel_index.layout import FunnelIndex
from gateway.stores.duckdb.funnel_index.match import Matched, match
from gateway.stores.duckdb.funnel_index.stats import (
    group_parts,
    middles_between,
    parts_stats,
    seconds,
    stats_table,
    whole_us,
)
from gateway.stores.funnel_math import StepStats, mean_seconds, step_results

EPOCH_DAY = date(1970, 1, 1)


def funnel(index: FunnelIndex, query: FunnelQuery) -> FunnelResult:
    matched = match(index, query)
    if query.breakdown is None:
        [overall] = stats_table(matched, None, 1)
        steps, rate = step_results(query.steps, overall)
        return FunnelResult(steps=steps, overall_conversion_rate=rate)
    overall, groups = _breakdown(index, matched, query.breakdown.value)
    steps, rate = step_results(query.steps, overall)
    breakdowns = []
    for key, table in groups:
        if table[0][0]:  # groups without a step-1 user are not reported
            group_steps, group_rate = step_results(query.steps, table)
            breakdowns.append(FunnelBreakdown(key=key, steps=group_steps, overall_conversion_rate=group_rate))
    return FunnelResult(steps=steps, overall_conversion_rate=rate, breakdowns=breakdowns)


def _breakdown(
    index: FunnelIndex, matched: Matched, attribute: str
) -> tuple[list[StepStats], list[tuple[str | None, list[StepStats]]]]:
    """Groups first; each step's overall numbers then follow from the groups': counts and sums add up,
    and the overall middles lie between the groups' extreme middles (stats.middles_between)."""
    keys: list[str | None] = [*index.names[attribute], None]
    tables: list[list[StepStats]] = [[] for _ in keys]
    overall: list[StepStats] = []
    for k, users in enumerate(matched.users):
        zero = matched.anchored_step0 and k == 0
        pairs = []
        dur_us = whole_us(matched.dur[k])
        for g, parts in enumerate(group_parts(index, attribute, users)):
            stats, pair = parts_stats(parts, dur_us, matched.rel[k], zero)
            tables[g].append(stats)
            if pair is not None:
                pairs.append(pair)
        if not len(users):
            overall.append((0, None, None))
            continue
        total = float(dur_us.sum())
        if zero:
            median = 0.0
        else:
            low, high = min(p[0] for p in pairs), max(p[1] for p in pairs)
            median = seconds(middles_between(matched.rel[k], low, high))
        overall.append((len(users), mean_seconds(total, len(users)), median))
    return overall, list(zip(keys, tables, strict=True))


def _period_days(anchor: np.ndarray, interval: Interval) -> np.ndarray:
    """Days since 1970-01-01 of each anchor's cohort period (weeks start on Monday)."""
    days = anchor // DAY_US
    if interval is Interval.DAY:
        return days
    if interval is Interval.WEEK:
        return days - (days + 3) % 7  # 1970-01-01 was a Thursday
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)


def trend(index: FunnelIndex, query: FunnelQuery, interval: Interval) -> list[TrendPoint]:
    matched = match(index, query)
    if not len(matched.users[0]):
        return []
    periods, local = np.unique(_period_days(matched.anchor0, interval), return_inverse=True)
    code_of = np.zeros(index.n_users, np.int64)
    code_of[matched.users[0]] = local
    table = stats_table(matched, code_of, len(periods))
    points = []
    for g, day in enumerate(periods.tolist()):
        steps, rate = step_results(query.steps, table[g])
        points.append(TrendPoint(period=EPOCH_DAY + timedelta(days=day), steps=steps, conversion_rate=rate))
    return points


def funnel_users(
    index: FunnelIndex, query: FunnelQuery, step_index: int, converted: bool, first: int, after: int | None
) -> UserPage:
    """Users whose number of steps reached is exactly step_index + 1 (all steps when converted)."""
    matched = match(index, query)
    reached = np.zeros(index.n_users, np.int16)
    for users in matched.users:
        reached[users] += 1
    target = len(query.steps) if converted else step_index + 1
    ids = np.sort(index.uids[reached == target])
    total = len(ids)
    if after is not None:
        ids = ids[np.searchsorted(ids, after, side="right") :]
    page = ids[: first + 1].tolist()
    return UserPage(user_ids=page[:first], total=total, has_next=len(page) > first)
