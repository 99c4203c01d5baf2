"""Which engine answers a funnel question in the embedded store, and the SQL engine's result shaping.

* ``funnel``, ``funnel_trend`` and ``funnel_users`` are answered from the funnel index when it holds
  every committed write (funnel_index/live.py); while it is being built or rebuilt, with the SQL of
  funnel.py, so no query waits. Both give the reference answers; the test suite holds them to it.
* A ``funnel`` that one day's funnel_analytics rows answer exactly is answered from them
  (preaggregates.py); the result's ``source`` says which of the three answered.

Everything runs in the connection's pool, one thread hop per question, on immutable index snapshots:
no lock is held across queries, so distinct funnels use every core numpy and DuckDB release the GIL on.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace

from gateway.models import FunnelBreakdown, FunnelQuery, FunnelResult, Interval, TrendPoint, UserPage
from gateway.stores.duckdb import funnel as sqlf
from gateway.stores.duckdb import writes
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.funnel_index import engine
from gateway.stores.duckdb.funnel_index.layout import FunnelIndex
from gateway.stores.duckdb.funnel_index.live import LiveIndex
from gateway.stores.duckdb.preaggregates import DayRows
from gateway.stores.funnel_math import step_results

INDEX, SQL = "funnel_index", "sql"


class FunnelEngines:
    def __init__(self, db: DuckDBConnection, live: LiveIndex | None, rows: DayRows | None) -> None:
        self._db = db
        self._live = live
        self._rows = rows
        self._calls_lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # heavy computations per engine (tests count them)

    async def funnel(self, query: FunnelQuery) -> FunnelResult:
        return await self._db.run("funnel", lambda cur: self._funnel(cur, query))

    async def trend(self, query: FunnelQuery, interval: Interval) -> list[TrendPoint]:
        plain = replace(query, breakdown=None)

        def run(cur: Cursor) -> list[TrendPoint]:
            index = self._index()
            if index is not None:
                return engine.trend(index, plain, interval)
            return _sql_trend(cur, plain, interval)

        return await self._db.run("funnel_trend", run)

    async def users(
        self, query: FunnelQuery, step_index: int, converted: bool, first: int, after: int | None
    ) -> UserPage:
        plain = replace(query, breakdown=None)

        def run(cur: Cursor) -> UserPage:
            index = self._index()
            if index is not None:
                return engine.funnel_users(index, plain, step_index, converted, first, after)
            return _sql_users(cur, plain, step_index, converted, first, after)

        return await self._db.run("funnel_users", run)

    def compute(self, cur: Cursor, query: FunnelQuery) -> FunnelResult:
        """The funnel from the index when it is current, else from SQL (no pre-aggregates)."""
        index = self._index()
        if index is not None:
            return replace(engine.funnel(index, query), source=INDEX)
        return replace(_sql_funnel(cur, query), source=SQL)

    def _funnel(self, cur: Cursor, query: FunnelQuery) -> FunnelResult:
        if self._rows is not None:
            answer = self._rows.answer(cur, query, self.compute)
            if answer is not None:
                return answer
        return self.compute(cur, query)

    def _index(self) -> FunnelIndex | None:
        index = self._live.current() if self._live is not None else None
        with self._calls_lock:
            self.calls[INDEX if index is not None else SQL] += 1
        return index


# -- the SQL engine: rows of funnel.py's statements -> results ---------------------------------------


def _sql_funnel(cur: Cursor, query: FunnelQuery) -> FunnelResult:
    n = len(query.steps)
    sql, params = sqlf.summary_sql(query)
    table = sqlf.grouped_stats(query, cur.execute(sql, params).fetchall())
    steps, overall = step_results(query.steps, table.get((True, None), sqlf.empty_stats(n)))
    breakdowns = []
    groups = sorted((key[1] for key in table if not key[0]), key=lambda g: (g is None, g or ""))
    for group in groups:
        group_steps, group_overall = step_results(query.steps, table[(False, group)])
        breakdowns.append(
            FunnelBreakdown(key=group, steps=group_steps, overall_conversion_rate=group_overall)
        )
    return FunnelResult(steps=steps, overall_conversion_rate=overall, breakdowns=breakdowns)


def _sql_trend(cur: Cursor, query: FunnelQuery, interval: Interval) -> list[TrendPoint]:
    sql, params = sqlf.trend_sql(query, interval)
    table = sqlf.grouped_stats(query, cur.execute(sql, params).fetchall())
    points = []
    for (period,) in sorted(table):
        steps, overall = step_results(query.steps, table[(period,)])
        points.append(TrendPoint(period=period, steps=steps, conversion_rate=overall))
    return points


def _sql_users(
    cur: Cursor, query: FunnelQuery, step_index: int, converted: bool, first: int, after: int | None
) -> UserPage:
    sql, params = sqlf.funnel_users_sql(query, step_index, converted, after is not None)
    if after is not None:
        params["after"] = after
    params["limit"] = first + 1
    total, ids = writes.first_row(cur, sql, params) or (0, None)
    ids = list(ids or [])
    return UserPage(user_ids=ids[:first], total=int(total), has_next=len(ids) > first)
