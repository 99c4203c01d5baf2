"""``record_events`` on DuckDB: the realtime write as one transaction.

Inside one BEGIN ... COMMIT, under the store's write lock:
  1. visits and interactions: ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id`` tells which ids
     are new (a stored id is skipped by its unique index);
  2. users: ``INSERT ... ON CONFLICT DO NOTHING`` (an existing user document is never changed);
  3. sessions: the new events' deltas (``stores/event_fold.py``): new sessions inserted; stored ones
     extended by up to three UPDATEs, each touching only the rows and columns that change -- the
     scalars (end, interactions, converted, value) of all, ``pages_visited`` of those with new visits
     (a list column rewrite costs ~5x a scalar one), ``start_time`` (indexed: an update is a delete +
     insert in each of its indexes) of the few whose start a late event moves earlier.
The commit writes and fsyncs the WAL (verified with strace, docs/architecture.md), so once this returns
the events survive a SIGKILL. An error rolls everything back: nothing of the batch is stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from gateway.errors import BadInput
from gateway.models import EventBatch
from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS, USER_SESSIONS, USERS
from gateway.stores.duckdb import changes, schema, writes
from gateway.stores.duckdb.changes import Columns
from gateway.stores.duckdb.connection import Cursor
from gateway.stores.event_fold import SessionDelta, new_event_ids, session_deltas

_SESSIONS = schema.TABLES[USER_SESSIONS]

# How a stored session absorbs a delta (``d`` is the delta row); see stores/event_fold.py.
_SCALARS = """
    end_time = greatest(s.end_time, d.end_time),
    total_interactions = coalesce(s.total_interactions, 0) + d.total_interactions,
    converted = coalesce(s.converted, false) OR d.converted,
    conversion_value = coalesce(s.conversion_value, 0.0) + d.conversion_value
"""
_PAGES = "pages_visited = list_concat(coalesce(s.pages_visited, []), d.pages_visited)"
_START = "start_time = least(s.start_time, d.start_time)"
_STORED = "SELECT session_id, start_time FROM user_sessions WHERE session_id IN (SELECT unnest($ids))"


def _insert_sql(table: schema.Table, source: str, tail: str) -> str:
    target = f"{schema.quote(table.name)} ({schema.columns_sql(table)})"
    return f"INSERT INTO {target} SELECT {schema.cast_select(table, source)} FROM {source} {tail}"


def _arrow(table: schema.Table, docs: Sequence[Mapping[str, Any]]) -> pa.Table:
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


def _insert(cur: Cursor, collection: str, docs: Sequence[Mapping[str, Any]], tail: str) -> list[Any]:
    if not docs:
        return []
    table = schema.TABLES[collection]
    frame = _arrow(table, schema.unique_by_key(table, docs, keep="first"))
    with writes.registered(cur, frame) as source:
        return cur.execute(_insert_sql(table, source, tail)).fetchall()


def _update(cur: Cursor, deltas: Sequence[SessionDelta], assignments: str) -> None:
    if not deltas:
        return
    frame = _arrow(_SESSIONS, [d.as_new_session() for d in deltas])
    with writes.registered(cur, frame) as source:
        staged = f"(SELECT {schema.cast_select(_SESSIONS, source)} FROM {source})"
        writes.run_sql(
            cur,
            f"UPDATE user_sessions AS s SET {assignments} FROM {staged} AS d WHERE s.session_id = d.session_id",
        )


def _fold_sessions(cur: Cursor, deltas: list[SessionDelta]) -> None:
    if not deltas:
        return
    rows = cur.execute(_STORED, {"ids": [d.session_id for d in deltas]}).fetchall()
    stored = dict(rows)
    _insert(cur, USER_SESSIONS, [d.as_new_session() for d in deltas if d.session_id not in stored], "")
    extended = [d for d in deltas if d.session_id in stored]
    _update(cur, extended, _SCALARS)
    _update(cur, [d for d in extended if d.pages], _PAGES)
    _update(cur, [d for d in extended if d.start_time < stored[d.session_id]], _START)


def _insert_reported(cur: Cursor, collection: str, docs: Sequence[Mapping[str, Any]], first: str) -> Columns:
    """Insert the new documents; their ``first`` column and what the change feed wants of them."""
    if not docs:
        return {}
    table = schema.TABLES[collection]
    frame = _arrow(table, schema.unique_by_key(table, docs, keep="first"))
    tail = f"ON CONFLICT DO NOTHING RETURNING {first}, {changes.INSERTED[collection]}"
    with writes.registered(cur, frame) as source:
        return cur.execute(_insert_sql(table, source, tail)).fetchnumpy()


def record(cur: Cursor, batch: EventBatch) -> list[str]:
    """Run in the store's thread with its write lock held."""
    cur.begin()
    try:
        new: set[str] = set()
        visits = _insert_reported(cur, PAGE_VISITS, batch.visits, "event_id AS new_event_id")
        new.update(visits["new_event_id"].tolist() if visits else [])
        rows = _insert(
            cur, USER_INTERACTIONS, batch.interactions, "ON CONFLICT DO NOTHING RETURNING event_id"
        )
        new.update(row[0] for row in rows)
        users = _insert_reported(cur, USERS, batch.users, "user_id AS new_user_id")
        _fold_sessions(cur, session_deltas(batch, new))
        cur.commit()
    except BaseException:
        cur.rollback()
        raise
    # Committed: the funnel index and the funnel_analytics rows follow (changes.py), still under the
    # write lock, so no index build can pin the data between the commit and this report.
    for table, stored in ((PAGE_VISITS, visits), (USERS, users)):
        feed = changes.feed_of(cur, table)
        if feed is not None and stored and len(next(iter(stored.values()))):
            feed.inserted(table, {k: v for k, v in stored.items() if not k.startswith("new_")})
    return new_event_ids(batch, new)
