"""The DuckDB SQL of the non-funnel questions: user listings, the session dashboard, top paths, form
texts, per-(user, page) activity and the pre-computed funnel rows. Each builder returns (sql, params)
with named ``$`` parameters; the store runs them and shapes the rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from gateway.models import DashboardMetrics, DeviceMetrics, UserFilter
from gateway.stores.collections import FUNNEL_ANALYTICS
from gateway.stores.duckdb import funnel as sqlf
from gateway.stores.duckdb import schema
from gateway.stores.money import cents

Params = dict[str, Any]


def list_users_sql(filter: UserFilter, after: int | None) -> tuple[str, Params]:
    """Users by device/sex and by their first-visit ``date``, as a keyset page (see keyset_page_sql)."""
    params: Params = {}
    conditions = ["true"]
    for column in ("device", "sex"):
        if getattr(filter, column) is not None:
            conditions.append(f"{column} = ${column}")
            params[column] = getattr(filter, column)
    conditions.append(sqlf.day_range_sql('"date"', filter.start, filter.end, params))
    if after is not None:
        params["after"] = after
    hits = f"SELECT user_id FROM users WHERE {' AND '.join(conditions)}"
    return sqlf.keyset_page_sql("", hits, after is not None), params


def dashboard_sql(
    start: date | None, end: date | None, device: str | None = None, sex: str | None = None
) -> tuple[str, Params]:
    """Rows (is_total, device, users, sessions, conversions, revenue, summed duration in µs, sessions
    with a duration): the total and one row per session device, over the sessions of users with that device and sex when given."""
    params: Params = {}
    who = UserFilter(device=device, sex=sex)
    where = sqlf.day_range_sql("start_time", start, end, params) + sqlf.user_filter_sql(who, params)
    sql = f"""
        SELECT GROUPING(device) = 1, device, count(DISTINCT user_id), count(*),
               count(*) FILTER (WHERE converted),
               coalesce(sum(conversion_value) FILTER (WHERE converted), 0.0),
               sum(date_diff('microsecond', start_time, end_time)), count(date_diff('microsecond', start_time, end_time))
        FROM user_sessions WHERE {where} GROUP BY GROUPING SETS ((), (device))"""
    return sql, params


def dashboard_metrics(rows: Sequence[Sequence[Any]]) -> DashboardMetrics:
    with_sessions = [row for row in rows if row[3]]  # an empty input still yields a zero total row

    def metrics(row: Sequence[Any]) -> DeviceMetrics:
        # Whole microseconds summed, divided once (integers: a correctly rounded quotient, the float
        # MongoDB's whole milliseconds give too): 0.15 for 100 and 200 ms, not 0.15000000000000002.
        timed = int(row[7])
        duration = int(row[6]) / (timed * 1_000_000) if timed else None
        return DeviceMetrics(row[1], int(row[2]), int(row[3]), int(row[4]), cents(row[5]), duration)

    total = next((row for row in with_sessions if row[0]), None)
    if total is None:
        return DashboardMetrics(0, 0, 0, 0.0, None, [])
    devices = sorted(
        (metrics(row) for row in with_sessions if not row[0]),
        key=lambda m: (m.device is None, m.device or ""),
    )
    t = metrics(total)
    return DashboardMetrics(t.users, t.sessions, t.conversions, t.revenue, t.avg_session_duration, devices)


def top_paths_sql(limit: int, filter: UserFilter) -> tuple[str, Params]:
    params: Params = {"limit": limit}
    where = sqlf.day_range_sql("start_time", filter.start, filter.end, params) + sqlf.user_filter_sql(
        filter, params
    )
    # A session without a page view (only interactions or a conversion) has no path: len([]) = 0 and
    # len(NULL) is NULL, so both leave it out.
    sql = f"""
        SELECT pages_visited AS path, count(*) AS sessions
        FROM user_sessions WHERE {where} AND len(pages_visited) > 0
        GROUP BY path ORDER BY sessions DESC, array_to_string(path, '>') LIMIT $limit"""
    return sql, params


def form_texts_sql(page_type: str, day: date | None) -> tuple[str, Params]:
    params: Params = {"page_type": page_type}
    where = sqlf.day_range_sql('"timestamp"', day, day, params)
    sql = f"""
        SELECT value FROM user_interactions
        WHERE interaction_type = 'form' AND free_text AND page_type = $page_type AND value <> '' AND {where}
        ORDER BY "timestamp", event_id"""
    return sql, params


ACTIVITY_FIELDS = (
    "user_id",
    "page_type",
    "visits",
    "total_duration",
    "first_visit",
    "clicks",
    "scrolls",
    "hovers",
    "forms",
)
# Visits set the rows: an interaction on a page the user has no visit to does not make a row.
ACTIVITY_SQL = """
    WITH v AS (
      SELECT user_id, page_type, count(*) AS visits, coalesce(sum(duration), 0.0) AS total_duration,
             min("timestamp") AS first_visit
      FROM page_visits GROUP BY user_id, page_type),
    i AS (
      SELECT user_id, page_type,
             count(*) FILTER (WHERE interaction_type = 'click') AS clicks,
             count(*) FILTER (WHERE interaction_type = 'scroll') AS scrolls,
             count(*) FILTER (WHERE interaction_type = 'hover') AS hovers,
             count(*) FILTER (WHERE interaction_type = 'form') AS forms
      FROM user_interactions GROUP BY user_id, page_type)
    SELECT v.user_id, v.page_type, v.visits, v.total_duration, v.first_visit,
           coalesce(i.clicks, 0), coalesce(i.scrolls, 0), coalesce(i.hovers, 0), coalesce(i.forms, 0)
    FROM v LEFT JOIN i ON i.user_id = v.user_id AND i.page_type IS NOT DISTINCT FROM v.page_type
    ORDER BY v.user_id, v.page_type"""


def funnel_analytics_sql(start: date | None, end: date | None, device: str | None) -> tuple[str, Params]:
    table = schema.TABLES[FUNNEL_ANALYTICS]
    params: Params = {}
    conditions = [sqlf.day_range_sql('"date"', start, end, params)]
    if device is not None:
        conditions.append("device = $device")
        params["device"] = device
    sql = (
        f"SELECT {schema.columns_sql(table)} FROM funnel_analytics WHERE {' AND '.join(conditions)} "
        'ORDER BY "date", device, step_index'
    )
    return sql, params
