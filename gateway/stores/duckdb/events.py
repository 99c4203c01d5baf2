"""``record_events`` on DuckDB: the realtime write as one transaction.

Inside one BEGIN ... COMMIT, under the store's write lock, in as few statements as the tables allow
(each DuckDB statement costs ~1-3 ms of CPU before its first row, more than a few hundred rows do):
  1. visits and interactions: ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id`` tells which ids
     are new (a stored id is skipped by its unique index);
  2. users: ``INSERT ... ON CONFLICT DO NOTHING`` (an existing user document is never changed), only
     when the group has new users, and only those with a new event (a duplicate creates no one);
  3. sessions: the new events' deltas (``stores/event_fold.py``) in ONE upsert -- a new session
     inserted, a stored one extended (end, interactions, converted, value, ``pages_visited`` when it
     got visits) -- which returns each session's start; ``start_time`` (indexed: an update is a
     delete + insert in each of its indexes) is updated only for the few whose start a late event
     moves earlier.
Rows reach DuckDB as Arrow tables found by name (a replacement scan), not registered views: a
register/unregister pair is two catalog changes, ~1.5 ms of CPU per table per commit.
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
from gateway.stores.duckdb import changes, schema
from gateway.stores.duckdb.changes import Columns
from gateway.stores.duckdb.connection import Cursor
from gateway.stores.event_fold import SessionDelta, new_event_ids, session_deltas, users_with_new_events

_SESSIONS = schema.TABLES[USER_SESSIONS]

# How a stored session absorbs a delta (``excluded`` is the delta row); see stores/event_fold.py. The
# start is left out: it is indexed (an update is a delete + insert in each of its indexes) and a late
# event moves it earlier only rarely, so those few rows get their own UPDATE.
_ABSORB = """
    end_time = greatest(s.end_time, excluded.end_time),
    total_interactions = coalesce(s.total_interactions, 0) + excluded.total_interactions,
    converted = coalesce(s.converted, false) OR excluded.converted,
    conversion_value = coalesce(s.conversion_value, 0.0) + excluded.conversion_value,
    pages_visited = CASE WHEN len(excluded.pages_visited) = 0 THEN s.pages_visited
                         ELSE list_concat(coalesce(s.pages_visited, []), excluded.pages_visited) END
"""
_START = "UPDATE user_sessions AS s SET start_time = d.start_time FROM {source} AS d WHERE s.session_id = d.session_id"


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


def _execute(cur: Cursor, sql: str, incoming: pa.Table) -> Any:
    """Run ``sql``, which reads the rows as ``incoming``: DuckDB finds the Arrow table among this frame's
    locals (a replacement scan). ``cur.register`` would cost a catalog change to add the view and
    another to drop it, ~1 ms of CPU each time, more than the INSERT of a few hundred rows itself."""
    result = cur.execute(sql)
    del incoming
    return result


def _insert(cur: Cursor, collection: str, docs: Sequence[Mapping[str, Any]], tail: str) -> Columns:
    """Insert the documents (the first of each key); ``tail``'s RETURNING columns, as arrays."""
    if not docs:
        return {}
    table = schema.TABLES[collection]
    frame = _arrow(table, schema.unique_by_key(table, docs, keep="first"))
    return _execute(cur, _insert_sql(table, "incoming", tail), frame).fetchnumpy()


def _fold_sessions(cur: Cursor, deltas: list[SessionDelta]) -> None:
    """New sessions inserted and stored ones extended by ONE upsert; then the start of the few whose
    start a late event moves earlier (the upsert returns the stored start of those it extended)."""
    if not deltas:
        return
    frame = _arrow(_SESSIONS, [d.as_new_session() for d in deltas])
    target = f"user_sessions AS s ({schema.columns_sql(_SESSIONS)})"
    upsert = (
        f"INSERT INTO {target} SELECT {schema.cast_select(_SESSIONS, 'incoming')} FROM incoming "
        f"ON CONFLICT (session_id) DO UPDATE SET {_ABSORB} RETURNING session_id, start_time"
    )
    start = dict(_execute(cur, upsert, frame).fetchall())  # a stored session keeps its start here
    earlier = [d for d in deltas if start[d.session_id] is None or d.start_time < start[d.session_id]]
    if earlier:
        moved = pa.Table.from_pydict(
            {"session_id": [d.session_id for d in earlier], "start_time": [d.start_time for d in earlier]}
        )
        _execute(cur, _START.format(source="incoming"), moved).fetchall()


def record(cur: Cursor, batch: EventBatch) -> list[str]:
    """Run in the store's thread with its write lock held."""
    cur.begin()
    try:
        visits = _insert(
            cur,
            PAGE_VISITS,
            batch.visits,
            f"ON CONFLICT DO NOTHING RETURNING event_id AS new_event_id, {changes.INSERTED[PAGE_VISITS]}",
        )
        interactions = _insert(
            cur, USER_INTERACTIONS, batch.interactions, "ON CONFLICT DO NOTHING RETURNING event_id"
        )
        new: set[str] = set()
        for stored, column in ((visits, "new_event_id"), (interactions, "event_id")):
            new.update(stored[column].tolist() if stored else [])
        users = _insert(
            cur,
            USERS,
            users_with_new_events(batch, new),
            f"ON CONFLICT DO NOTHING RETURNING user_id AS new_user_id, {changes.INSERTED[USERS]}",
        )
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
