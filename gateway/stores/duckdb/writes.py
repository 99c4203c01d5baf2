"""Bulk writes into DuckDB tables: batches inserted from a registered DataFrame, replace-by-key without
UPDATE, and deletes that stay fast on indexed tables. Callers hold the store's write lock.

Every write to users, page_visits and funnel_analytics goes through ``_insert`` or ``delete_rows``
(``delete_events``: both event tables at once), which report what they stored or removed to the
cursor's change feed (``changes.py``): new write paths built on these functions keep the funnel index
and the pre-aggregates current without further work.

Statements run in autocommit mode unless a function says otherwise (events and their register's ids
go in, and out, in one transaction).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from gateway.errors import BadInput
from gateway.stores.batches import batches
from gateway.stores.duckdb import changes, event_ids, rollback, schema
from gateway.stores.duckdb.changes import Columns

T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection

WRITE_BATCH = 50_000


def run_sql(cur: Cursor, sql: str, params: dict[str, Any] | None = None) -> None:
    """Execute a statement and drain its result (DuckDB refuses new work while a result is pending)."""
    cur.execute(sql, params or {}).fetchall()


def first_row(cur: Cursor, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
    # fetchall, not fetchone: a half-read result blocks the cursor's next statement.
    rows = cur.execute(sql, params or {}).fetchall()
    return rows[0] if rows else None


def arrow_rows(table: schema.Table, docs: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The documents as an Arrow table of the table's columns: what ``schema.frame`` builds with pandas,
    at a third of its cost for the few hundred rows of a group commit (values cast on insert)."""
    data: dict[str, list[Any]] = {}
    for column, _ in table.columns:
        if column == "attributes":
            data[column] = [json.dumps(d.get("attributes") or {}, separators=(",", ":")) for d in docs]
        elif column in ("coord_x", "coord_y"):
            axis = column[-1]
            data[column] = [(d.get("coordinates") or {}).get(axis) for d in docs]
        else:
            data[column] = [d.get(column) for d in docs]
    try:
        return pa.Table.from_pydict(data)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise BadInput(f"cannot build {table.name} rows: {exc}") from exc


def on_arrow(cur: Cursor, sql: str, incoming: Any) -> Any:
    """Run ``sql``, which reads the Arrow table ``incoming`` by that name: DuckDB finds it among this
    frame's locals (a replacement scan). ``registered`` would cost a catalog change to add the view and
    another to drop it, ~1 ms of CPU each time, more than the INSERT of a few hundred rows itself (the
    cost that matters to live capture's small, frequent groups)."""
    result = cur.execute(sql)
    del incoming
    return result


@contextmanager
def registered(cur: Cursor, frame: Any, name: str = "incoming") -> Iterator[str]:
    """The DataFrame (or Arrow table) as a view named ``name`` on this cursor only."""
    cur.register(name, frame)
    try:
        yield name
    finally:
        cur.unregister(name)


def delete_rows(cur: Cursor, table: str, where: str, params: dict[str, Any]) -> int:
    """DELETE the rows of ``table`` matching ``where`` (an event table's with their registered ids, in
    one transaction); returns how many.

    DuckDB removes deleted keys from each ART index when the delete commits, at roughly 0.1-0.3 ms per
    row and index on a file database. Dropping a table's indexes around a large delete and building
    them again would be far cheaper past a few thousand rows, but is not safe here: DuckDB 2.0.1 builds
    an index over the rows a transaction still open on another cursor can see (a long read, the funnel
    index's build), deleted ones included, and keeps them -- a unique key then refuses their keys for
    good, a lookup index returns other rows after a reopen. A serving store always has other cursors.
    """
    return _delete_from(cur, (table,), where, params)


def delete_events(cur: Cursor, where: str, params: dict[str, Any]) -> int:
    """:func:`delete_rows` of both event tables in one transaction (``where`` fits both), and their ids
    out of the register."""
    return _delete_from(cur, event_ids.EVENT_TABLES, where, params)


def _delete_from(cur: Cursor, tables: Sequence[str], where: str, params: dict[str, Any]) -> int:
    shared = False
    if tables[0] in event_ids.EVENT_TABLES:
        counted = event_ids.sizes(cur, tables, where, params)
        doomed, shared = counted.doomed, counted.shared
    else:
        [table] = tables
        row = first_row(cur, f"SELECT count(*) FROM {schema.quote(table)} WHERE {where}", params)
        doomed = {table: int(row[0]) if row else 0}
    touched = [t for t in tables if doomed[t]]
    if touched:
        _delete(cur, touched, where, params, shared)
    return sum(doomed.values())


def _delete(cur: Cursor, tables: Sequence[str], where: str, params: dict[str, Any], shared: bool) -> None:
    feeds = {t: changes.feed_of(cur, t) for t in tables}
    returning = {t: changes.DELETED[t] if feeds[t] is not None else None for t in tables}
    gone: dict[str, Columns | None] = {}
    if tables[0] not in event_ids.EVENT_TABLES:
        [table] = tables
        sql = f"DELETE FROM {schema.quote(table)} WHERE {where}"
        if returning[table] is None:
            run_sql(cur, sql, params)
            gone[table] = None
        else:
            gone[table] = cur.execute(f"{sql} RETURNING {returning[table]}", params).fetchnumpy()
    else:
        # The rows first, returning their ids, then exactly those ids from the register (their key),
        # in one transaction: a failed statement leaves the tables and the register as they were.
        cur.begin()
        try:
            ids = []
            for table in tables:
                columns = ", ".join(c for c in ("event_id AS fg_gone_id", returning[table]) if c)
                rows = cur.execute(
                    f"DELETE FROM {schema.quote(table)} WHERE {where} RETURNING {columns}", params
                ).fetchnumpy()
                ids.append(rows.pop("fg_gone_id"))
                gone[table] = rows if returning[table] is not None else None
            event_ids.unregister(cur, tables, ids, shared)
            cur.commit()
        except BaseException:
            rollback.undo(cur)
            raise
    for table, feed in feeds.items():
        if feed is not None:
            feed.deleted(table, gone[table])


def _insert_sql(table: schema.Table, source: str, tail: str = "ON CONFLICT DO NOTHING") -> str:
    target = f"{schema.quote(table.name)} ({schema.columns_sql(table)})"
    values = f"SELECT {schema.cast_select(table, source)} FROM {source}"
    return f"INSERT INTO {target} {values} {tail}"


def _insert(cur: Cursor, table: schema.Table, source: str) -> int:
    """INSERT the rows of ``source`` whose key is not stored yet; returns how many were written."""
    if table.name in event_ids.EVENT_TABLES:
        return _insert_events(cur, table, source)
    feed = changes.feed_of(cur, table.name)
    written, stored = _run_insert(cur, table.name, _insert_sql(table, source), feed is not None)
    if written and feed is not None:
        feed.inserted(table.name, stored)
    return written


def _run_insert(cur: Cursor, table: str, sql: str, fed: bool) -> tuple[int, Columns]:
    """Run the INSERT ``sql``: the rows written, and (``fed``) the change feed's columns of them."""
    if not fed:
        row = first_row(cur, sql)
        return (int(row[0]) if row else 0), {}
    stored = cur.execute(f"{sql} RETURNING {changes.INSERTED[table]}").fetchnumpy()
    return len(next(iter(stored.values()))), stored


def _insert_events(cur: Cursor, table: schema.Table, source: str) -> int:
    """Events and their ids in the register (their key), in one transaction: plainly when every id is
    new -- the register refuses the statement otherwise --, then again with only the ids it takes. The
    change feed hears of the rows once they are committed."""
    feed = changes.feed_of(cur, table.name)
    register = f"INSERT INTO {event_ids.TABLE} SELECT event_id FROM {source}"
    for only_new in (False, True):
        cur.begin()
        try:
            if only_new:
                fresh = cur.execute(f"{register} ON CONFLICT DO NOTHING RETURNING event_id").fetchnumpy()
                tail = "WHERE event_id IN (SELECT event_id FROM fg_fresh_ids)"
                with registered(
                    cur, pa.table({"event_id": pa.array(fresh["event_id"], pa.string())}), "fg_fresh_ids"
                ):
                    written, stored = _run_insert(
                        cur, table.name, _insert_sql(table, source, tail), feed is not None
                    )
            else:
                run_sql(cur, register)
                written, stored = _run_insert(
                    cur, table.name, _insert_sql(table, source, ""), feed is not None
                )
            cur.commit()
        except duckdb.ConstraintException:
            rollback.undo(cur)
            if only_new:
                raise
            continue
        except BaseException:
            rollback.undo(cur)
            raise
        if written and feed is not None:
            feed.inserted(table.name, stored)
        return written
    raise AssertionError("unreachable: the second attempt returns or raises")


def insert_batch(cur: Cursor, table: schema.Table, batch: Sequence[Mapping[str, Any]]) -> int:
    """Insert one batch (a repeated key: the first one wins); returns the rows written, the others being
    keys already stored or repeated."""
    frame = schema.frame(table, schema.unique_by_key(table, batch, keep="first"))
    with registered(cur, frame) as source:
        return _insert(cur, table, source)


def upsert_rows(cur: Cursor, table: schema.Table, docs: Sequence[Mapping[str, Any]]) -> int:
    """Replace by key (a repeated key: the last one wins): delete the stored rows an incoming document
    changes, then insert what is not stored yet. Unchanged documents cost no write at all, and no UPDATE
    is issued (DuckDB's UPDATE of indexed columns is delete+insert anyway, with known index bugs).

    An event whose id an event of the other type holds is another event (an id is one event whatever its
    type: the register): it is left out, neither written nor deleting anything. Returns how many of
    ``docs`` were left out so (each repeat counted), for the caller's ``duplicates``."""
    held_back = 0
    for batch in batches(docs, WRITE_BATCH):
        held = _held_by_the_other_type(cur, table, batch)
        if held:
            keys = schema.keys_of(table, batch)
            kept = [d for d, key in zip(batch, keys, strict=True) if str(key) not in held]
            held_back += len(batch) - len(kept)
            batch = kept
        if not batch:
            continue
        frame = schema.frame(table, schema.unique_by_key(table, batch, keep="last"))
        with registered(cur, frame) as source:
            staged = f"(SELECT {schema.cast_select(table, source)} FROM {source})"
            delete_rows(cur, table.name, schema.changed_rows_sql(table, staged), {})
            _insert(cur, table, source)
    return held_back


def _held_by_the_other_type(cur: Cursor, table: schema.Table, batch: Sequence[Mapping[str, Any]]) -> set[str]:
    """The event ids of ``batch`` (as stored: text) that the other event table holds (none for a table
    that is not one): one join of the batch's ids with that table's, as ``changed_rows_sql`` joins the
    batch with this one."""
    if table.name not in event_ids.EVENT_TABLES:
        return set()
    [other] = [t for t in event_ids.EVENT_TABLES if t != table.name]
    unique = dict.fromkeys(str(key) for key in schema.keys_of(table, batch))
    ids = pa.table({"event_id": pa.array(list(unique), pa.string())})
    with registered(cur, ids, "fg_upsert_ids"):
        rows = cur.execute(
            f"SELECT DISTINCT o.event_id FROM {schema.quote(other)} o JOIN fg_upsert_ids u USING (event_id)"
        ).fetchall()
    return {row[0] for row in rows}


def append_batch(cur: Cursor, table: schema.Table, batch: Sequence[Mapping[str, Any]]) -> int:
    """Plain INSERT of one batch into a table without indexes (a bulk load: ``generations.py``). No
    conflict check and no change feed: nothing reads the table yet, and the keys are checked once, when
    the unique indexes are built."""
    frame = schema.frame(table, batch)
    with registered(cur, frame) as source:
        target = f"{schema.quote(table.name)} ({schema.columns_sql(table)})"
        row = first_row(cur, f"INSERT INTO {target} SELECT {schema.cast_select(table, source)} FROM {source}")
    return int(row[0]) if row else 0
