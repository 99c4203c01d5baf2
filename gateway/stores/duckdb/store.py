"""The embedded document store: one DuckDB file behind the DocumentStore Protocol.

Every call runs off the event loop through a DuckDBConnection (``connection``: a thread pool, a
cursor per thread, one writer at a time). Funnels are answered by ``funnels`` (the in-memory funnel
index, its SQL fallback in ``funnel``, the funnel_analytics rows), reports by ``reports``. Bulk writes
go through a registered pandas DataFrame (one INSERT ... SELECT per batch, see ``writes``), which tells
the change feed what it stored, so the index and the rows follow every write; live capture's writes
are ``capture``'s. Tables are created on first use, the lookup indexes by ``ensure_indexes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import BadInput
from gateway.models import (
    DashboardMetrics,
    Document,
    FunnelQuery,
    FunnelResult,
    IndexSpec,
    Interval,
    PathCount,
    TrendPoint,
    UserFilter,
    UserPage,
    WriteResult,
)
from gateway.stores.batches import batches
from gateway.stores.collections import (
    COLLECTIONS,
    DEFAULT_FUNNEL,
    FUNNEL_ANALYTICS,
    FUNNEL_DEFINITIONS,
    PAGE_VISITS,
    USER_INTERACTIONS,
    USER_SESSIONS,
    USERS,
)
from gateway.stores.duckdb import event_ids, generations, reports, schema, writes
from gateway.stores.duckdb.capture import LiveCapture
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.funnel_index.live import LiveIndex
from gateway.stores.duckdb.funnels import FunnelEngines
from gateway.stores.duckdb.lookups import KeyLookups
from gateway.stores.duckdb.preaggregates import DayRows
from gateway.stores.duckdb.served import DEFAULT_REVISION, FileGenerations
from gateway.validation import (
    check_after,
    check_count,
    check_dates,
    check_default_funnel,
    check_funnel_query,
    check_ids,
    check_interval,
    check_page_type,
    check_range,
    check_step_index,
)

T = TypeVar("T")


class DuckDBStore(KeyLookups, LiveCapture, FileGenerations):
    name = "duckdb"

    def __init__(self, db: DuckDBConnection, *, index: bool = True, preaggregates: bool = True) -> None:
        self.options = {"index": index, "preaggregates": preaggregates}
        self.dataset = ""  # the generation served (stores/datasets.py), read by open()
        self._attach(db)

    def _attach(self, db: DuckDBConnection) -> None:
        index = self.options["index"]
        preaggregates = self.options["preaggregates"]
        self._db = db
        self.path = db.path
        # Derived state follows the writes through the change feed; the index first, since the rows
        # ask it which days a changed user's visits fall on.
        self.funnel_index = LiveIndex(db) if index else None
        self.day_rows = DayRows(db, self.funnel_index) if preaggregates else None
        for listener in (self.funnel_index, self.day_rows):
            if listener is not None:
                db.changes.subscribe(listener)
        self._attach_capture()
        self.funnels = FunnelEngines(db, self.funnel_index, self.day_rows)

    @classmethod
    async def open(cls, path: str | Path, *, index: bool = True, preaggregates: bool = True) -> DuckDBStore:
        """Open (creating it if needed) the database file and start building the funnel index in the
        background: funnels are answered with SQL until it is ready, so opening never waits for it.
        ``index``/``preaggregates`` False: funnels always computed with SQL / never read from rows."""
        store = cls(await DuckDBConnection.open(Path(path)), index=index, preaggregates=preaggregates)
        await store._started()
        return store

    async def _started(self) -> None:
        self.dataset, self.default_revision = await self._db.run(
            "read the dataset id and the default's revision",
            lambda cur: (generations.read_dataset(cur), generations.read_meta(cur, DEFAULT_REVISION)),
        )
        await self.fold_sessions()  # what a killed process left pending, before anything reads
        if self.funnel_index is not None:
            self.funnel_index.start()

    async def wait_for_funnel_index(self, seconds: float = 600.0) -> bool:
        """Wait until the funnel index holds every write (tests, benches); False without one."""
        if self.funnel_index is None:
            return False
        return await asyncio.to_thread(self.funnel_index.wait_ready, seconds)

    async def rebuild_funnel_index(self, seconds: float = 600.0) -> bool:
        """Build the index afresh from the file and wait for it (after a bulk load: merged inserts
        leave users unclustered, and a fresh build lays the same data out the same way every time)."""
        if self.funnel_index is None:
            return False
        self.funnel_index.invalidate()
        return await self.wait_for_funnel_index(seconds)

    @staticmethod
    def _table(collection: str) -> schema.Table:
        if collection not in schema.TABLES:
            raise BadInput(f"unknown collection {collection!r}")
        return schema.TABLES[collection]

    # -- lifecycle ---------------------------------------------------------------------------------
    async def ensure_indexes(self) -> None:
        """The keys' indexes (made with the tables; the event tables' is the register's, which opening
        the file makes or mends: ``event_ids.ensure``) and the lookup columns' (``schema.LOOKUP_COLUMNS``);
        any other index of the collections' tables, which a file made by an older version holds, is
        dropped: DuckDB never read it, and every write paid for it."""

        def create(cur: Cursor) -> None:
            with self._db.write_lock:
                unkept = cur.execute(
                    schema.UNKEPT_INDEXES_SQL,
                    {"tables": list(schema.TABLES), "kept": schema.KEPT_INDEX_NAMES},
                ).fetchall()
                for (index,) in unkept:
                    writes.run_sql(cur, f"DROP INDEX {schema.quote(index)}")
                for table in schema.TABLES.values():
                    for ddl in schema.key_index_ddl(table):
                        writes.run_sql(cur, ddl)
                    for ddl in schema.lookup_index_ddl(table.name):
                        writes.run_sql(cur, ddl)

        await self._db.run("ensure_indexes", create)

    async def indexes(self) -> dict[str, list[IndexSpec]]:
        def read(cur: Cursor) -> list[tuple[str, tuple[str, ...], bool]]:
            keys = [
                (t, tuple(cols), True) for t, cols in cur.execute(schema.CONSTRAINT_INDEXES_SQL).fetchall()
            ]
            for table, expressions, unique in cur.execute(schema.CREATED_INDEXES_SQL).fetchall():
                keys.append((table, schema.parse_index_expressions(expressions), bool(unique)))
            return keys

        found: dict[str, list[IndexSpec]] = {}
        for table, columns, unique in await self._db.run("indexes", read):
            # The event tables' key is the register's one index over both (schema.REGISTER_KEYED).
            owners = (
                event_ids.EVENT_TABLES if (table, columns) == (event_ids.TABLE, ("event_id",)) else (table,)
            )
            spec = IndexSpec(columns, unique=unique)
            for owner in owners:
                if owner in COLLECTIONS and spec not in found.setdefault(owner, []):
                    found[owner].append(spec)
        return found

    async def ping(self) -> None:
        await self._db.run("ping", lambda cur: cur.execute("SELECT 1").fetchall())

    async def close(self) -> None:
        await self._stop_background()
        if self.funnel_index is not None:
            self.funnel_index.close()
        await self._db.close()

    # -- lookups by many keys (lookups.py) -----------------------------------------------------------
    async def users_by_ids(self, user_ids: Sequence[int]) -> list[Document | None]:
        ids = check_ids(user_ids, int, "user ids")
        return await self._one_per_key(USERS, "user_id", "BIGINT", ids)

    async def sessions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        ids = check_ids(user_ids, int, "user ids")
        await self._settle(users=ids)
        return await self._many_per_key(USER_SESSIONS, "user_id", "BIGINT", ids, "start_time, session_id")

    async def sessions_by_ids(self, session_ids: Sequence[str]) -> list[Document | None]:
        ids = check_ids(session_ids, str, "session ids")
        await self._settle(sessions=ids)
        return await self._one_per_key(USER_SESSIONS, "session_id", "VARCHAR", ids)

    async def visits_by_session_ids(self, session_ids: Sequence[str]) -> list[list[Document]]:
        ids = check_ids(session_ids, str, "session ids")
        return await self._many_per_key(PAGE_VISITS, "session_id", "VARCHAR", ids, '"timestamp", event_id')

    async def visits_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        ids = check_ids(user_ids, int, "user ids")
        return await self._many_per_key(PAGE_VISITS, "user_id", "BIGINT", ids, '"timestamp", event_id')

    async def interactions_by_session_ids(self, session_ids: Sequence[str]) -> list[list[Document]]:
        ids = check_ids(session_ids, str, "session ids")
        return await self._many_per_key(
            USER_INTERACTIONS, "session_id", "VARCHAR", ids, '"timestamp", event_id'
        )

    async def interactions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        ids = check_ids(user_ids, int, "user ids")
        return await self._many_per_key(USER_INTERACTIONS, "user_id", "BIGINT", ids, '"timestamp", event_id')

    async def _page(self, action: str, sql: str, params: dict[str, Any], first: int) -> UserPage:
        params["limit"] = first + 1

        def fetch(cur: Cursor) -> tuple[int, list[int]]:
            total, ids = writes.first_row(cur, sql, params) or (0, None)
            return int(total), list(ids or [])

        total, ids = await self._db.run(action, fetch)
        return UserPage(user_ids=ids[:first], total=total, has_next=len(ids) > first)

    async def list_users(self, filter: UserFilter, first: int, after: int | None) -> UserPage:
        check_count(first, "first")
        check_after(after)
        check_range(filter.start, filter.end)
        sql, params = reports.list_users_sql(filter, after)
        return await self._page("list_users", sql, params, first)

    async def page_types(self) -> list[str]:
        sql = "SELECT DISTINCT page_type FROM page_visits WHERE page_type IS NOT NULL ORDER BY page_type"
        rows = await self._db.run("page_types", lambda cur: cur.execute(sql).fetchall())
        return [row[0] for row in rows]

    async def page_reach(self) -> dict[str, int]:
        sql = (
            "SELECT page_type, count(DISTINCT user_id) FROM page_visits"
            " WHERE page_type IS NOT NULL GROUP BY page_type"
        )
        rows = await self._db.run("page_reach", lambda cur: cur.execute(sql).fetchall())
        return {page: int(users) for page, users in rows}

    async def count(self, collection: str) -> int:
        table = self._table(collection)
        sql = f"SELECT count(*) FROM {schema.quote(table.name)}"
        if collection == USER_SESSIONS:
            await self._settle(every=True)
        rows = await self._db.run(f"count {collection}", lambda cur: cur.execute(sql).fetchall())
        return int(rows[0][0])

    # -- analytics ---------------------------------------------------------------------------------
    async def _query(
        self, action: str, sql: str, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return await self._db.run(action, lambda cur: cur.execute(sql, params or {}).fetchall())

    async def funnel(self, query: FunnelQuery) -> FunnelResult:
        check_funnel_query(query)
        return await self.funnels.funnel(query)

    async def funnel_trend(self, query: FunnelQuery, interval: Interval) -> list[TrendPoint]:
        check_funnel_query(query)
        check_interval(interval)
        return await self.funnels.trend(query, interval)

    async def funnel_users(
        self, query: FunnelQuery, step_index: int, converted: bool, first: int, after: int | None
    ) -> UserPage:
        check_funnel_query(query)
        check_count(first, "first")
        check_after(after)
        check_step_index(query, step_index, converted)
        return await self.funnels.users(query, step_index, converted, first, after)

    async def dashboard(
        self, start: date | None, end: date | None, device: str | None = None, sex: str | None = None
    ) -> DashboardMetrics:
        check_range(start, end)
        await self._settle(every=True)
        sql = reports.dashboard_sql(start, end, device, sex)
        return reports.dashboard_metrics(await self._query("dashboard", *sql))

    async def top_paths(self, limit: int, filter: UserFilter) -> list[PathCount]:
        check_count(limit, "limit")
        check_range(filter.start, filter.end)
        if limit == 0:
            return []
        await self._settle(every=True)
        rows = await self._query("top_paths", *reports.top_paths_sql(limit, filter))
        return [PathCount(path=list(path), sessions=int(sessions)) for path, sessions in rows]

    async def form_texts(self, page_type: str, day: date | None) -> list[str]:
        check_page_type(page_type)
        return [row[0] for row in await self._query("form_texts", *reports.form_texts_sql(page_type, day))]

    async def activity_by_user_page(self) -> list[Document]:
        rows = await self._query("activity_by_user_page", reports.ACTIVITY_SQL)
        return [dict(zip(reports.ACTIVITY_FIELDS, row, strict=True)) for row in rows]

    async def funnel_analytics(
        self, start: date | None, end: date | None, device: str | None
    ) -> list[Document]:
        check_range(start, end)
        table = schema.TABLES[FUNNEL_ANALYTICS]
        sql, params = reports.funnel_analytics_sql(start, end, device)

        def read(cur: Cursor) -> list[tuple[Any, ...]]:
            if self.day_rows is not None:  # days written to since their rows were computed: now
                self.day_rows.refresh(cur, start, end, self.funnels.compute)
            return cur.execute(sql, params).fetchall()

        return [schema.to_document(table, row) for row in await self._db.run("funnel_analytics", read)]

    async def default_funnel(self) -> list[str] | None:
        sql = "SELECT steps FROM funnel_definitions WHERE name = $name"
        rows = await self._query("default_funnel", sql, {"name": DEFAULT_FUNNEL})
        return list(rows[0][0] or []) if rows else None

    # -- writes (each holds the write lock; see writes.py) --------------------------------------

    async def insert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        table = self._table(collection)
        docs = schema.checked_documents(table, documents)
        if not docs:
            return WriteResult(written=0)

        def insert(cur: Cursor) -> WriteResult:
            written = 0
            for number, batch in enumerate(batches(docs, writes.WRITE_BATCH)):
                with self._db.write_lock:
                    if not number:  # folded first: a visit written here is one LastVisits never saw
                        self.folded_first(cur)
                    written += writes.insert_batch(cur, table, batch)
            return WriteResult(written=written, duplicates=len(docs) - written)

        return await self._db.run(f"insert into {collection}", insert)

    async def upsert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        table = self._table(collection)
        docs = schema.checked_documents(table, documents)
        if not docs:
            return WriteResult(written=0)

        def upsert(cur: Cursor) -> WriteResult:
            with self._db.write_lock:
                self.folded_first(cur)
                held_back = writes.upsert_rows(cur, table, docs)
            return WriteResult(written=len(docs) - held_back, duplicates=held_back)

        return await self._db.run(f"upsert into {collection}", upsert)

    async def replace_funnel_analytics(self, start: date, end: date, rows: Sequence[Document]) -> int:
        check_dates(start, end)
        table = schema.TABLES[FUNNEL_ANALYTICS]
        docs = schema.checked_documents(table, rows)

        def replace_rows(cur: Cursor) -> int:
            with self._db.write_lock:
                where = '"date" >= $start AND "date" <= $end'
                writes.delete_rows(cur, FUNNEL_ANALYTICS, where, {"start": start, "end": end})
                writes.upsert_rows(cur, table, docs)
            if self.day_rows is not None:
                self.day_rows.replaced(start, end)
            return len(docs)

        return await self._db.run("replace funnel_analytics", replace_rows)

    async def set_default_funnel(self, steps: Sequence[str]) -> None:
        check_default_funnel(steps)
        await self.upsert_many(FUNNEL_DEFINITIONS, [{"name": DEFAULT_FUNNEL, "steps": list(steps)}])

    async def delete_users(self, user_ids: Sequence[int]) -> int:
        ids = list(dict.fromkeys(check_ids(user_ids, int, "user ids")))
        if not ids:
            return 0
        where = "user_id IN (SELECT unnest(CAST($ids AS BIGINT[])))"

        def delete(cur: Cursor) -> int:
            with self._db.write_lock:
                self.folded_first(cur)  # in this call: no group commits a delta of theirs in between
                # Their history first: an interrupted call leaves the users, so a retry finds them again.
                # Both event tables in one transaction: the register's key is built again once at most.
                writes.delete_events(cur, where, {"ids": ids})
                writes.delete_rows(cur, USER_SESSIONS, where, {"ids": ids})
                return writes.delete_rows(cur, USERS, where, {"ids": ids})

        return await self._db.run("delete_users", delete)
