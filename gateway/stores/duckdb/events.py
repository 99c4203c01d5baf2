"""``record_events`` on DuckDB: the realtime write as one transaction.

Inside one BEGIN ... COMMIT, under the store's write lock:
  1. visits and interactions: ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id`` tells which ids
     are new (a stored id is skipped by its unique index);
  2. users: ``INSERT ... ON CONFLICT DO NOTHING`` (an existing user document is never changed);
  3. sessions: the new events' deltas (``stores/event_fold.py``) in one
     ``INSERT ... ON CONFLICT (session_id) DO UPDATE`` that creates or extends each session.
The commit writes and fsyncs the WAL (verified with strace, docs/architecture.md), so once this returns
the events survive a SIGKILL. An error rolls everything back: nothing of the batch is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.models import EventBatch
from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS, USER_SESSIONS, USERS
from gateway.stores.duckdb import schema, writes
from gateway.stores.duckdb.connection import Cursor
from gateway.stores.event_fold import new_event_ids, session_deltas

_SESSIONS = schema.TABLES[USER_SESSIONS]

# How a stored session absorbs a delta (``excluded`` is the delta row); see stores/event_fold.py.
_EXTEND = """
    start_time = least(user_sessions.start_time, excluded.start_time),
    end_time = greatest(user_sessions.end_time, excluded.end_time),
    pages_visited = list_concat(coalesce(user_sessions.pages_visited, []), excluded.pages_visited),
    total_interactions = coalesce(user_sessions.total_interactions, 0) + excluded.total_interactions,
    converted = coalesce(user_sessions.converted, false) OR excluded.converted,
    conversion_value = coalesce(user_sessions.conversion_value, 0.0) + excluded.conversion_value
"""


def _insert_sql(table: schema.Table, source: str, tail: str) -> str:
    target = f"{schema.quote(table.name)} ({schema.columns_sql(table)})"
    return f"INSERT INTO {target} SELECT {schema.cast_select(table, source)} FROM {source} {tail}"


def _insert(cur: Cursor, collection: str, docs: Sequence[Mapping[str, Any]], tail: str) -> list[Any]:
    if not docs:
        return []
    table = schema.TABLES[collection]
    frame = schema.frame(table, schema.unique_by_key(table, docs, keep="first"))
    with writes.registered(cur, frame) as source:
        return cur.execute(_insert_sql(table, source, tail)).fetchall()


def record(cur: Cursor, batch: EventBatch) -> list[str]:
    """Run in the store's thread with its write lock held."""
    cur.begin()
    try:
        new: set[str] = set()
        for collection, docs in ((PAGE_VISITS, batch.visits), (USER_INTERACTIONS, batch.interactions)):
            rows = _insert(cur, collection, docs, "ON CONFLICT DO NOTHING RETURNING event_id")
            new.update(row[0] for row in rows)
        _insert(cur, USERS, batch.users, "ON CONFLICT DO NOTHING")
        deltas = [d.as_new_session() for d in session_deltas(batch, new)]
        _insert(cur, USER_SESSIONS, deltas, f"ON CONFLICT (session_id) DO UPDATE SET {_EXTEND}")
        cur.commit()
    except BaseException:
        cur.rollback()
        raise
    return new_event_ids(batch, new)
