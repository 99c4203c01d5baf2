"""The funnel in DuckDB SQL: the same numbers as ``gateway.stores.funnel_math``, computed in the engine.

Every funnel question is answered from one relation, ``reached(k, user_id, anchor, t, d)``: a row per
user and step k the user reached, with the anchor and the step's time (epoch microseconds) and ``d``,
the user's total duration on the step's page. Summaries and trends group it by step (and breakdown
value or cohort period); user lists count its rows per user (the steps reached are always a prefix).
Times stay integers of microseconds so ``(t - anchor) / 1e6`` is exactly ``timedelta.total_seconds()``.

ORDERED is a chain of per-step aggregates, each over one page's visits joined to the users who reached
the step before (later steps are small, so this is the fast path of the default funnel). STRICT and
UNORDERED first build one wide row per user, then unfold it into ``reached``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from gateway.models import (
    Breakdown,
    FunnelQuery,
    Interval,
    StepOrder,
    UserFilter,
)
from gateway.stores.days import day_bounds
from gateway.stores.funnel_math import StepStats

Params = dict[str, Any]


def day_range_sql(column: str, start: date | None, end: date | None, params: Params) -> str:
    """SQL for ``column`` (TIMESTAMP or DATE) on the inclusive days [start, end]; 'true' when open."""
    low, high = day_bounds(start, end)
    conditions = ["true"]
    if low is not None:
        conditions.append(f"{column} >= $low")
        params["low"] = low
    if high is not None:
        conditions.append(f"{column} < $high")
        params["high"] = high
    return " AND ".join(conditions)


def user_filter_sql(filter: UserFilter, params: Params, column: str = "user_id") -> str:
    """`` AND column IN (users with that device/sex)``, or '' when the filter names neither."""
    conditions = []
    if filter.device is not None:
        conditions.append("device = $device")
        params["device"] = filter.device
    if filter.sex is not None:
        conditions.append("sex = $sex")
        params["sex"] = filter.sex
    if not conditions:
        return ""
    return f" AND {column} IN (SELECT user_id FROM users WHERE {' AND '.join(conditions)})"


def _visit_filter(query: FunnelQuery, params: Params) -> str:
    """Conditions (after WHERE) on page_visits for the query's date range and user attributes."""
    days = day_range_sql('"timestamp"', query.filter.start, query.filter.end, params)
    return f'"timestamp" IS NOT NULL AND {days}' + user_filter_sql(query.filter, params)


def _within(column: str, anchor: str, window: bool) -> str:
    return f" AND {column} <= {anchor} + $window_us" if window else ""


def _ordered_ctes(query: FunnelQuery, params: Params, window: bool) -> str:
    """ORDERED: s0 = first step-1 visit per user; s_k = among the step-k visits of users with a time in
    s_{k-1}, the first at or after that time (within the window), plus their total duration there."""
    where = _visit_filter(query, params)
    ctes = [
        f'v{k} AS (SELECT user_id, epoch_us("timestamp") AS ts, duration FROM page_visits '
        f"WHERE page_type = $s{k} AND {where})"
        for k in range(len(query.steps))
    ]
    ctes.append(
        "s0 AS (SELECT user_id, min(ts) AS anchor, min(ts) AS t, coalesce(sum(duration), 0.0) AS d "
        "FROM v0 GROUP BY user_id)"
    )
    for k in range(1, len(query.steps)):
        ctes.append(
            f"s{k} AS (SELECT v.user_id, any_value(p.anchor) AS anchor, "
            f"min(v.ts) FILTER (WHERE v.ts >= p.t{_within('v.ts', 'p.anchor', window)}) AS t, "
            f"coalesce(sum(v.duration), 0.0) AS d "
            f"FROM v{k} v JOIN s{k - 1} p ON p.user_id = v.user_id AND p.t IS NOT NULL GROUP BY v.user_id)"
        )
    unfolded = " UNION ALL ".join(
        f"SELECT {k} AS k, user_id, anchor, t, d FROM s{k} WHERE t IS NOT NULL"
        for k in range(len(query.steps))
    )
    return ",\n".join(ctes) + f",\nreached AS ({unfolded})"


def _events_cte(query: FunnelQuery, params: Params) -> str:
    """ev(user_id, step, ts, duration): the filtered visits to listed steps, step = index in the funnel."""
    names = [f"$s{k}" for k in range(len(query.steps))]
    case = " ".join(f"WHEN {name} THEN {k}" for k, name in enumerate(names))
    return (
        f'ev AS (SELECT user_id, CASE page_type {case} END AS step, epoch_us("timestamp") AS ts, duration '
        f"FROM page_visits WHERE page_type IN ({', '.join(names)}) AND {_visit_filter(query, params)})"
    )


def _durations(n: int) -> str:
    # A visit without a duration counts as 0 s, like MongoDB's $sum.
    return ", ".join(f"coalesce(sum(CASE WHEN step = {k} THEN duration END), 0.0) AS d{k}" for k in range(n))


def _strict_ctes(n: int, window: bool) -> str:
    """STRICT, any attempt. Listed visits sorted by (ts, step) fall into runs: a visit continues the run
    of the visit before it when it repeats that step or is the next one, else it starts a new run. A
    run that starts at step 1 is an attempt, and its visit to step k reaches k; t_k is the earliest such
    visit (within the window of the first step-1 visit). ``start`` is the step a visit starts a run at
    (NULL when it continues one); the last start up to a visit is its run's."""
    within = " AND ts <= anchor + $window_us" if window else ""
    times = ", ".join(f"min(ts) FILTER (WHERE attempt AND step = {k}{within}) AS t{k}" for k in range(n))
    # Peers (same ts and step) share one frame end, so they land in one run whatever order they take.
    return f"""
seq AS (
  SELECT user_id, step, ts, duration,
         CASE WHEN coalesce(step - lag(step) OVER o NOT IN (0, 1), true) THEN step END AS start,
         min(ts) FILTER (WHERE step = 0) OVER (PARTITION BY user_id) AS anchor
  FROM ev WINDOW o AS (PARTITION BY user_id ORDER BY ts, step)),
walked AS (
  SELECT *, last_value(start IGNORE NULLS) OVER (PARTITION BY user_id ORDER BY ts, step) = 0 AS attempt
  FROM seq),
wide AS (
  SELECT user_id, max(anchor) AS anchor, {times}, {_durations(n)}
  FROM walked GROUP BY user_id HAVING max(anchor) IS NOT NULL)"""


def _unordered_ctes(n: int, window: bool) -> str:
    """UNORDERED. anchor = first listed visit; step k is reached when steps 1..k all have a first visit
    (within the window); its time is the latest of those first visits."""
    aggs = ", ".join(f"min(CASE WHEN step = {k} THEN ts END) AS m{k}" for k in range(n))
    # greatest() skips NULLs in DuckDB, hence the explicit IS NOT NULL guards.
    chain = [f"CASE WHEN m0 IS NOT NULL{_within('m0', 'anchor', window)} THEN m0 END AS t0"] + [
        f"CASE WHEN t{k - 1} IS NOT NULL AND m{k} IS NOT NULL{_within(f'm{k}', 'anchor', window)} "
        f"THEN greatest(t{k - 1}, m{k}) END AS t{k}"
        for k in range(1, n)
    ]
    durations = ", ".join(f"d{k}" for k in range(n))
    return f"""
agg AS (SELECT user_id, min(ts) AS anchor, {aggs}, {_durations(n)} FROM ev GROUP BY user_id),
wide AS (SELECT user_id, anchor, {", ".join(chain)}, {durations} FROM agg)"""


def reached_sql(query: FunnelQuery, group: Breakdown | None = None) -> tuple[str, Params]:
    """``WITH ..., reached AS (...)`` for the query; with a group, reached also has ``grp``, the user's
    device or sex (NULL without a user document)."""
    n = len(query.steps)
    params: Params = {f"s{k}": step for k, step in enumerate(query.steps)}
    window = query.window_seconds is not None
    if window:
        params["window_us"] = int(query.window_seconds or 0) * 1_000_000
    if query.order is StepOrder.ORDERED:
        sql = "WITH " + _ordered_ctes(query, params, window)
    else:
        body = _strict_ctes(n, window) if query.order is StepOrder.STRICT else _unordered_ctes(n, window)
        unfolded = " UNION ALL ".join(
            f"SELECT {k} AS k, user_id, anchor, t{k} AS t, d{k} AS d FROM wide WHERE t{k} IS NOT NULL"
            for k in range(n)
        )
        sql = f"WITH {_events_cte(query, params)},{body},\nreached AS ({unfolded})"
    if group is not None:
        sql = sql.replace("reached AS (", "reached_users AS (", 1)
        sql += (
            f",\nreached AS (SELECT r.*, u.{group.value} AS grp "
            "FROM reached_users r LEFT JOIN users u ON u.user_id = r.user_id)"
        )
    if "$window_us" not in sql:  # a one-step ORDERED funnel has nothing to time; DuckDB rejects unused params
        params.pop("window_us", None)
    return sql, params


def _stats(query: FunnelQuery) -> str:
    # In ORDERED/STRICT funnels step 1 *is* the anchor: no need to sort a column of zeros.
    skip = "" if query.order is StepOrder.UNORDERED else " FILTER (WHERE k > 0)"
    # The mean as funnel_math.mean_seconds: whole microseconds per user, summed (exact), divided once.
    return f"k, count(*), sum(round_even(d * 1e6, 0)) / (count(*) * 1e6), median((t - anchor) / 1e6){skip}"


def summary_sql(query: FunnelQuery) -> tuple[str, Params]:
    """Rows (is_total, grp, k, users, avg, median): per step, and per group and step with a breakdown."""
    sql, params = reached_sql(query, query.breakdown)
    if query.breakdown is None:
        return f"{sql}\nSELECT true, NULL, {_stats(query)} FROM reached GROUP BY k", params
    select = (
        f"SELECT GROUPING(grp) = 1, grp, {_stats(query)} FROM reached GROUP BY GROUPING SETS ((k), (k, grp))"
    )
    return f"{sql}\n{select}", params


_TRUNC = {Interval.DAY: "day", Interval.WEEK: "week", Interval.MONTH: "month"}


def trend_sql(query: FunnelQuery, interval: Interval) -> tuple[str, Params]:
    """Rows (period, k, users, avg, median) per cohort period of the anchor (DuckDB weeks start Monday)."""
    sql, params = reached_sql(query)
    period = f"CAST(date_trunc('{_TRUNC[interval]}', make_timestamp(anchor)) AS DATE)"
    return f"{sql}\nSELECT {period} AS period, {_stats(query)} FROM reached GROUP BY period, k", params


def keyset_page_sql(prefix: str, hits: str, after: bool) -> str:
    """One row (total, ids of the page): ``hits`` selects user_id; the page is ids > $after (when
    ``after``), ascending, at most $limit of them (callers ask one more than they show, to learn whether
    a next page exists)."""
    with_part = (
        f"{prefix}, hits AS MATERIALIZED ({hits})" if prefix else f"WITH hits AS MATERIALIZED ({hits})"
    )
    cursor = "WHERE user_id > $after " if after else ""
    return f"""{with_part}
SELECT (SELECT count(*) FROM hits),
       (SELECT list(user_id ORDER BY user_id) FROM
          (SELECT user_id FROM hits {cursor}ORDER BY user_id LIMIT $limit))"""


def funnel_users_sql(query: FunnelQuery, step_index: int, converted: bool, after: bool) -> tuple[str, Params]:
    """Users whose number of steps reached is exactly step_index + 1 (or all steps when converted)."""
    sql, params = reached_sql(query)
    params["steps_reached"] = len(query.steps) if converted else step_index + 1
    hits = "SELECT user_id FROM reached GROUP BY user_id HAVING count(*) = $steps_reached"
    return keyset_page_sql(sql, hits, after), params


# -- rows -> results (the arithmetic of gateway.stores.funnel_math.summarise) ----------------------------


def grouped_stats(query: FunnelQuery, rows: Iterable[Sequence[Any]]) -> dict[Any, list[StepStats]]:
    """Rows ending in (k, users, avg, median), keyed by what precedes k -> per-key stats for every step
    (steps nobody reached get zeros)."""
    n = len(query.steps)
    table: dict[Any, list[StepStats]] = defaultdict(lambda: empty_stats(n))
    for row in rows:
        *key, k, users, avg, median = row
        if k == 0 and query.order is not StepOrder.UNORDERED:
            median = 0.0  # step 1 is the anchor
        table[tuple(key)][k] = (int(users), avg, median)
    return dict(table)


def empty_stats(n: int) -> list[StepStats]:
    return [(0, None, None)] * n
