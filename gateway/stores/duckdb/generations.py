"""Generations of the embedded store: the next dataset built in a file beside the live one, swapped in
with one ``os.replace`` (the contract: ``gateway/stores/datasets.py``).

Steps, and what a kill at each leaves:

1. ``begin``: remove a killed build's leftovers (``funnel.duckdb.building`` and its ``.wal``), ATTACH a
   fresh ``funnel.duckdb.building`` to the live store's database and create its tables **without any
   index**. The live file is never written by a build.
2. ``write``: plain INSERTs (a columnar append per batch: no ART insert, no conflict check, no change
   feed). The cost per document stays flat however large the data (ops research Q1: the old path's
   per-batch changed-rows check scanned the whole table, O(N²) overall).
3. ``carry_over``: what a re-ingest keeps, copied by SQL from the live tables (users the new data does
   not name, with their history) or read for folding at step 4 (live events of the named users).
4. ``seal``: the indexes built once (a repeated key fails here, before anything is switched), the
   generation's id written (``funnelgate_meta``), CHECKPOINT and DETACH; then the file is opened as a
   DuckDBStore of its own, the carried live events are folded in with ``record_events`` and the caller
   writes the default funnel and ``funnel_analytics`` through it.
5. ``activate``: close the new file (a checkpoint: no ``.wal`` left), CHECKPOINT and close the live one,
   refuse if a ``.wal`` of the live file survived (DuckDB would refuse to open the swapped file with it:
   "WAL does not match database file", the ops research's WAL trap), ``os.replace`` the new file onto the
   live one, fsync the directory, and reopen the live store in place: it builds its funnel index afresh.

A kill before the ``os.replace`` leaves the live file as it was (plus leftovers removed next time); after
it, the new one. The data-dir lock keeps serve and ingest apart on an embedded store, so no reader is
open on the old file while it is replaced, except in the same process (tests), whose calls in flight
finish before the live connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from gateway.errors import BadInput, StoreUnavailable
from gateway.models import Document
from gateway.stores.batches import batches
from gateway.stores.collections import (
    INGEST_ID_PREFIXES,
    PAGE_VISITS,
    USER_INTERACTIONS,
    USER_SESSIONS,
    USERS,
)
from gateway.stores.datasets import CarriedOver, Sink, fold_live_events, generation_of, new_dataset_id
from gateway.stores.duckdb import event_ids, schema, writes
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection

if TYPE_CHECKING:
    from gateway.stores.duckdb.store import DuckDBStore

log = logging.getLogger("funnelgate.ingest")

BUILD_SUFFIX = ".building"
BUILD_ALIAS = "fg_build"
META_TABLE = "funnelgate_meta"


def building_path(live: Path) -> Path:
    return live.with_name(live.name + BUILD_SUFFIX)


def wal_of(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def remove_leftovers(live: Path, *, quiet: bool = False) -> list[Path]:
    """Delete what a killed build left (``*.building`` and its WAL); only ever call this while holding
    the data-dir lock, when no build can be running. Returns what was removed."""
    removed = []
    for leftover in (building_path(live), wal_of(building_path(live))):
        if leftover.exists():
            leftover.unlink()
            removed.append(leftover)
    if removed and not quiet:
        log.warning("removed the leftovers of a killed build: %s", ", ".join(p.name for p in removed))
    return removed


def read_dataset(cur: Cursor) -> str:
    """The id of the generation in the current database ("" for a file no build wrote)."""
    return read_meta(cur, "dataset")


def read_meta(cur: Cursor, key: str) -> str:
    """A value of ``funnelgate_meta`` ("" when absent, or in a file without the table)."""
    try:
        row = writes.first_row(cur, f"SELECT value FROM {META_TABLE} WHERE key = $key", {"key": key})
    except duckdb.CatalogException:
        return ""
    return str(row[0]) if row else ""


def write_meta(cur: Cursor, key: str, value: str) -> None:
    """Set a value of ``funnelgate_meta`` in the current database (the table made if a build did not)."""
    writes.run_sql(cur, f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    writes.run_sql(
        cur,
        f"INSERT INTO {META_TABLE} VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        {"key": key, "value": value},
    )


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def switch_files(building: Path, live: Path) -> None:
    """The one step: the closed, checkpointed new file replaces the live one (both closed)."""
    for wal in (wal_of(building), wal_of(live)):
        if wal.exists():
            raise StoreUnavailable(
                f"{wal.name} survived its checkpoint: switching now would make DuckDB refuse the new file "
                "(its WAL would not match); nothing was switched, the previous data is served"
            )
    _fsync(building)
    os.replace(building, live)
    _fsync(live.parent, directory=True)


class FileBuild:
    def __init__(self, live: DuckDBStore, cur: Cursor, live_catalog: str, generation: int) -> None:
        self._live = live
        self._cur: Cursor | None = cur  # on the live database, with the build attached and USEd
        self._live_catalog = live_catalog
        self.path = building_path(live.path)
        self.generation = generation
        self.dataset = new_dataset_id(generation)
        self.store: DuckDBStore | None = None  # the sealed new file
        self._live_visits: list[Document] = []
        self._live_interactions: list[Document] = []
        self._activated = False

    @classmethod
    async def begin(cls, live: DuckDBStore) -> FileBuild:
        def start(cur: Cursor) -> tuple[Cursor, str, int]:
            remove_leftovers(live.path)
            catalog = str(writes.first_row(cur, "SELECT current_database()")[0])  # type: ignore[index]
            generation = generation_of(read_dataset(cur)) + 1
            build = live.connection.dedicated_cursor()
            try:
                path = str(building_path(live.path)).replace("'", "''")
                writes.run_sql(build, f"ATTACH '{path}' AS {BUILD_ALIAS}")
                writes.run_sql(build, f"USE {BUILD_ALIAS}")
                for table in schema.TABLES.values():
                    writes.run_sql(build, schema.bare_table_ddl(table))
            except BaseException:
                build.close()
                raise
            return build, catalog, generation

        cur, catalog, generation = await live.connection.run("begin a build", start)
        return cls(live, cur, catalog, generation)

    # -- the bulk phase ------------------------------------------------------------------------------
    async def _on_build(self, action: str, fn: Any) -> Any:
        cur = self._cur
        if cur is None:
            raise StoreUnavailable(f"the build is sealed or abandoned ({action})")
        try:
            return await asyncio.to_thread(fn, cur)
        except duckdb.ConstraintException as exc:
            raise BadInput(f"the new data repeats a key ({action}): {exc}; nothing was switched") from exc
        except duckdb.Error as exc:
            raise StoreUnavailable(f"DuckDB failed {action} in {self.path.name}: {exc}") from exc

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        if collection not in schema.TABLES:
            raise BadInput(f"unknown collection {collection!r}")
        table = schema.TABLES[collection]
        docs = schema.checked_documents(table, documents)
        if not docs:
            return 0

        def append(cur: Cursor) -> int:
            return sum(writes.append_batch(cur, table, b) for b in batches(docs, writes.WRITE_BATCH))

        return int(await self._on_build(f"write {collection}", append))

    async def carry_over(self, named: Collection[int]) -> CarriedOver:
        await self._live.fold_sessions()  # the live file's sessions are copied whole
        live = schema.quote(self._live_catalog)
        ids = pa.table({"user_id": pa.array(sorted(named), pa.int64())})

        def carry(cur: Cursor) -> tuple[CarriedOver, list[Document], list[Document]]:
            out = CarriedOver()
            cur.register("fg_named", ids)
            try:
                absent = "NOT EXISTS (SELECT 1 FROM fg_named n WHERE n.user_id = l.user_id)"
                counts = {}
                for collection in (USERS, USER_SESSIONS, PAGE_VISITS, USER_INTERACTIONS):
                    table = schema.TABLES[collection]
                    source = f"{live}.main.{schema.quote(collection)} l"
                    row = writes.first_row(
                        cur,
                        f"INSERT INTO {schema.quote(collection)} ({schema.columns_sql(table)}) "
                        f"SELECT {schema.columns_sql(table, 'l')} FROM {source} WHERE {absent}",
                    )
                    counts[collection] = int(row[0]) if row else 0
                out.users, out.sessions = counts[USERS], counts[USER_SESSIONS]
                out.visits, out.interactions = counts[PAGE_VISITS], counts[USER_INTERACTIONS]
                days = cur.execute(
                    f'SELECT DISTINCT CAST(l."timestamp" AS DATE) FROM {live}.main.page_visits l '
                    f'WHERE {absent} AND l."timestamp" IS NOT NULL'
                ).fetchall()
                out.days = {d for (d,) in days}
                live_events = []
                for collection in (PAGE_VISITS, USER_INTERACTIONS):
                    table = schema.TABLES[collection]
                    prefix = INGEST_ID_PREFIXES[collection]
                    rows = cur.execute(
                        f"SELECT {schema.columns_sql(table, 'l')} FROM {live}.main.{schema.quote(collection)} l "
                        f"SEMI JOIN fg_named n ON n.user_id = l.user_id "
                        f"WHERE NOT starts_with(l.event_id, $prefix)",
                        {"prefix": prefix},
                    ).fetchall()
                    live_events.append([schema.to_document(table, row) for row in rows])
            finally:
                cur.unregister("fg_named")
            return out, live_events[0], live_events[1]

        out, self._live_visits, self._live_interactions = await self._on_build("carry over", carry)
        out.live_events = len(self._live_visits) + len(self._live_interactions)
        out.days |= {v["timestamp"].date() for v in self._live_visits if v.get("timestamp") is not None}
        return out

    # -- sealing and switching -----------------------------------------------------------------------
    async def seal(self) -> DuckDBStore:
        from gateway.stores.duckdb.store import DuckDBStore

        def finish(cur: Cursor) -> None:
            for table in schema.TABLES.values():
                for ddl in schema.key_index_ddl(table):
                    writes.run_sql(cur, ddl)
                for ddl in schema.lookup_index_ddl(table.name):
                    writes.run_sql(cur, ddl)
            event_ids.build_checked(cur)
            writes.run_sql(cur, f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
            writes.run_sql(
                cur,
                f"INSERT INTO {META_TABLE} VALUES ('dataset', $dataset), ('generation', $generation)",
                {"dataset": self.dataset, "generation": str(self.generation)},
            )
            writes.run_sql(cur, f"USE {schema.quote(self._live_catalog)}")
            writes.run_sql(cur, f"CHECKPOINT {BUILD_ALIAS}")
            writes.run_sql(cur, f"DETACH {BUILD_ALIAS}")

        await self._on_build("seal", finish)
        self._close_cursor()
        # Its own funnel index computes the new funnel_analytics rows (one funnel per day) in
        # milliseconds each; the rows themselves are being written, so none is read back here.
        self.store = await DuckDBStore.open(self.path, index=True, preaggregates=False)
        await self._fold_live_events(self.store)
        return self.store

    async def _fold_live_events(self, store: DuckDBStore) -> None:
        visits, interactions = self._live_visits, self._live_interactions
        self._live_visits, self._live_interactions = [], []
        if visits or interactions:
            await fold_live_events(store, visits, interactions)

    async def activate(self) -> None:
        store = self.store
        if store is None:
            raise StoreUnavailable("activate before seal")
        await store.connection.run("checkpoint", lambda cur: writes.run_sql(cur, "CHECKPOINT"))
        await store.close()
        self.store = None
        await self._live.replace_file(self.path)
        self._activated = True
        log.info("dataset %s (generation %d) is now served", self.dataset, self.generation)

    async def retire(self, grace_s: float) -> int:
        return 0  # the old file went with the os.replace; no process could write to it meanwhile

    async def abandon(self) -> None:
        if self._activated:
            return
        if self._cur is not None:
            with contextlib.suppress(duckdb.Error):
                writes.run_sql(self._cur, f"USE {schema.quote(self._live_catalog)}")
                writes.run_sql(self._cur, f"DETACH {BUILD_ALIAS}")
            self._close_cursor()
        if self.store is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.store.close()
            self.store = None
        remove_leftovers(self._live.path, quiet=True)

    def _close_cursor(self) -> None:
        if self._cur is not None:
            with contextlib.suppress(duckdb.Error):
                self._cur.close()
            self._cur = None


def export_all(
    db: DuckDBConnection, sinks: dict[str, Sink], batch: int, settle: Callable[[], None] | None = None
) -> dict[str, int]:
    """Every document of the sinks' collections in key order, inside one read transaction (one snapshot
    of the whole file), on a cursor of its own (a worker thread). ``settle`` runs under the write lock
    just before the snapshot is taken (live sessions folded: no delta can commit in between)."""
    counts: dict[str, int] = {}
    cur = db.dedicated_cursor()
    with db.write_lock:
        if settle is not None:
            settle()
        writes.run_sql(cur, "BEGIN TRANSACTION")
        writes.run_sql(cur, f"SELECT count(*) FROM {schema.quote(USERS)}")  # the snapshot starts here
    try:
        for collection, sink in sinks.items():
            table = schema.TABLES[collection]
            order = ", ".join(schema.quote(k) for k in table.key)
            result = cur.execute(
                f"SELECT {schema.columns_sql(table)} FROM {schema.quote(collection)} ORDER BY {order}"
            )
            counts[collection] = 0
            while rows := result.fetchmany(batch):
                sink([schema.to_document(table, row) for row in rows])
                counts[collection] += len(rows)
    finally:
        writes.run_sql(cur, "COMMIT")
        cur.close()
    return counts
