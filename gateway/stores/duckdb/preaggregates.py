"""The embedded store's funnel_analytics rows as answers, kept exact under writes.

The rule of what a row is and which funnels rows answer is ``gateway.stores.preaggregates``; this
module decides *when* the stored rows may be trusted:

* A day's rows answer only once this process has computed them itself (``verified``): the first
  answerable funnel of a day computes the whole day (every device at once, one engine call), rewrites
  the day's rows if they differ and answers from that result; later ones read the rows. Rows found in
  the file are never trusted blind: an interrupted ingest, or a file from before rows carried medians,
  would otherwise answer wrongly.
* Every write is seen through the change feed (changes.py): visits landing on day d make d unverified
  and stale; a changed or new user document does so for the days of that user's visits (the funnel
  index knows them; without it, every day); deleted visits make every day stale; rows written by anyone
  else make their day unverified. A day is only marked verified if nothing touched it while it was
  being computed.
* ``funnel_analytics`` reads first recompute the stale days they cover, so the table is current for
  every reader; ingest rewrites all days (``jobs/refresh.py``).

Rows are maintained for the default funnel only; without one (nothing ingested) the table is left as
it is written.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import numpy as np

from gateway.models import FunnelQuery, FunnelResult
from gateway.stores import preaggregates as rule
from gateway.stores.collections import DEFAULT_FUNNEL, FUNNEL_ANALYTICS, PAGE_VISITS, USERS
from gateway.stores.duckdb import funnel as sqlf
from gateway.stores.duckdb import schema, writes
from gateway.stores.duckdb.changes import Columns
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.funnel_index.arrays import DAY_US, day_of_us
from gateway.stores.duckdb.funnel_index.live import LiveIndex

Compute = Callable[[Cursor, FunnelQuery], FunnelResult]
_TABLE = schema.TABLES[FUNNEL_ANALYTICS]
_ROWS_OF_DAY = f'SELECT {schema.columns_sql(_TABLE)} FROM funnel_analytics WHERE "date" = $day'
_DEFAULT_STEPS = "SELECT steps FROM funnel_definitions WHERE name = $name"
INDEX = "funnel_index"  # FunnelResult.source of the index engine (funnels.py)


class DayRows:
    def __init__(self, db: DuckDBConnection, live: LiveIndex | None) -> None:
        self._db = db
        self._live = live
        self._lock = threading.Lock()
        self._version: defaultdict[date, int] = defaultdict(int)  # writes that touched the day
        self._epoch = 0  # writes that touched every day
        self._verified: dict[date, tuple[tuple[str, ...], int, int]] = {}  # day -> (steps, version, epoch)
        self._stale: set[date] = set()
        self._all_stale = False
        self.answered = 0  # funnels answered from the rows (observability: tests, bench)

    # -- answering ---------------------------------------------------------------------------------
    def answer(self, cur: Cursor, query: FunnelQuery, compute: Compute) -> FunnelResult | None:
        """The answer from the day's rows, or computed with the whole day (which refreshes the rows);
        None when the rows cannot answer ``query``."""
        day = rule.answerable_day(query)
        if day is None:
            return None
        steps = _default_steps(cur)
        if steps is None or tuple(query.steps) != steps:
            return None
        if self._is_verified(day, steps):
            answer = rule.answer_from_rows(query, _rows_of_day(cur, day))
            if answer is not None:
                with self._lock:
                    self.answered += 1
            return answer
        full = self._recompute(cur, day, steps, compute)
        return rule.narrowed(query, full)

    def refresh(self, cur: Cursor, start: date | None, end: date | None, compute: Compute) -> None:
        """Recompute the stale days in [start, end] (before the rows are read)."""
        steps = _default_steps(cur)
        if steps is None:
            return
        with self._lock:
            days = {d for d in self._stale if _inside(d, start, end)}
            everything = self._all_stale
        if everything:
            days |= _days_with_rows_or_visits(cur, steps[0], start, end)
        for day in sorted(days):
            if not self._is_verified(day, steps):
                self._recompute(cur, day, steps, compute)

    def replaced(self, start: date, end: date) -> None:
        """Rows of [start, end] were rewritten by the caller (ingest): they are no longer stale."""
        with self._lock:
            self._stale = {d for d in self._stale if not start <= d <= end}

    def _recompute(self, cur: Cursor, day: date, steps: tuple[str, ...], compute: Compute) -> FunnelResult:
        with self._lock:
            token = (self._version[day], self._epoch)
        full = compute(cur, rule.day_query(steps, day))
        if self._live is not None and full.source != INDEX:
            # The index is still being built: answer, but leave the rows to the index, so their last
            # bits never depend on which engine happened to be ready (ingest reruns give equal rows).
            return full
        rows = rule.rows_for_day(day, full)
        if _sorted_rows(_rows_of_day(cur, day)) != _sorted_rows(rows):
            with self._db.write_lock:
                writes.delete_rows(cur, FUNNEL_ANALYTICS, '"date" = $day', {"day": day})
                if rows:
                    writes.insert_batch(cur, _TABLE, rows)
        with self._lock:
            if token == (self._version[day], self._epoch):  # nothing landed on the day meanwhile
                self._verified[day] = (steps, *token)
                self._stale.discard(day)
        return full

    def _is_verified(self, day: date, steps: tuple[str, ...]) -> bool:
        with self._lock:
            return self._verified.get(day) == (steps, self._version[day], self._epoch)

    def default_changed(self) -> None:
        """The default funnel changed (its rows were deleted): no day is verified, every day is stale,
        so a read of the rows computes them for the new steps."""
        with self._lock:
            self._epoch += 1
            self._all_stale = True
            self._verified.clear()

    # -- the change feed ---------------------------------------------------------------------------
    def inserted(self, table: str, rows: Columns) -> None:
        if table == PAGE_VISITS:
            ts = rows["ts"]
            ts = ts.compressed() if isinstance(ts, np.ma.MaskedArray) else np.asarray(ts)
            self._touch(day_of_us(int(d) * DAY_US) for d in np.unique(ts // DAY_US).tolist())
        elif table == USERS:
            self._touch_users(rows["user_id"])
        elif table == FUNNEL_ANALYTICS:
            self._unverify(rows["date"])

    def deleted(self, table: str, rows: Columns | None) -> None:
        if table == PAGE_VISITS:
            with self._lock:
                self._epoch += 1
                self._all_stale = True
        elif table == USERS and rows is not None:
            self._touch_users(rows["user_id"])
        elif table == FUNNEL_ANALYTICS and rows is not None:
            self._unverify(rows["date"])

    def _touch(self, days: Iterable[date]) -> None:
        with self._lock:
            for day in days:
                self._version[day] += 1
                self._stale.add(day)

    def _touch_users(self, user_ids: Any) -> None:
        days = self._live.days_of_users(np.asarray(user_ids, np.int64)) if self._live else None
        if days is None:  # no index to ask: any day may hold their visits
            with self._lock:
                self._epoch += 1
                self._all_stale = True
        else:
            self._touch(days)

    def _unverify(self, days: Any) -> None:
        with self._lock:
            for day in _dates(days):
                self._verified.pop(day, None)


def _default_steps(cur: Cursor) -> tuple[str, ...] | None:
    row = writes.first_row(cur, _DEFAULT_STEPS, {"name": DEFAULT_FUNNEL})
    return tuple(row[0]) if row and row[0] else None


def _rows_of_day(cur: Cursor, day: date) -> list[dict[str, Any]]:
    return [schema.to_document(_TABLE, row) for row in cur.execute(_ROWS_OF_DAY, {"day": day}).fetchall()]


def _sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["device"], r["step_index"]))


def _days_with_rows_or_visits(
    cur: Cursor, first_step: str, start: date | None, end: date | None
) -> set[date]:
    params: dict[str, Any] = {"step": first_step}
    rows_range = sqlf.day_range_sql('"date"', start, end, params)
    visits_range = sqlf.day_range_sql('"timestamp"', start, end, params)
    sql = (
        f'SELECT "date" FROM funnel_analytics WHERE {rows_range} UNION '
        f'SELECT CAST("timestamp" AS DATE) FROM page_visits WHERE page_type = $step AND {visits_range}'
    )
    return {row[0] for row in cur.execute(sql, params).fetchall() if row[0] is not None}


def _inside(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def _dates(column: Any) -> list[date]:
    """A fetched DATE column (datetime64, NULLs masked) as dates."""
    values = column.compressed() if isinstance(column, np.ma.MaskedArray) else np.asarray(column)
    return values.astype("datetime64[D]").tolist()
