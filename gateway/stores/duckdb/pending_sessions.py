"""Live sessions on DuckDB: recorded as deltas with their events, folded into ``user_sessions`` later.

Extending a stored session is an ``INSERT ... ON CONFLICT DO UPDATE``: in DuckDB a delete and an
insert of the whole row in every index, logged whole to the WAL, ``pages_visited`` list included. Done
for every group commit it was ~40 % of the commit's time, and it grew the WAL by 300-700 bytes per
event, so a checkpoint stalled capture every few seconds (measured: docs/architecture.md). So
``record`` appends each new event's session delta (``stores/event_fold.py``) to ``session_deltas``, a
table without indexes, in the same transaction as the events: as durable and as atomic as they are,
and an append costs what an event insert costs. :meth:`PendingSessions.fold` later folds every pending
delta into ``user_sessions`` in one transaction, one upsert per session however many groups touched
it, then empties the table.

Nothing but capture ever sees a delta: the store folds before any call that reads or writes sessions
(``DuckDBStore._settle``), so every answer is the one an eager fold would give; lookups by key fold
only when a key has pending deltas (enrichment reads users it does not remember, which never have
any). The store also folds in the background when deltas pile up or grow old, when it closes, and when
it opens: deltas a killed process left are folded before anything is read.

``pages_visited`` keeps the visit-time order however groups arrive (the rule of event_fold.py). A
delta records, when it is appended, whether its visits come after every visit the store knows of the
session (``LastVisits``, events.py: stored or pending). At the fold a session's pages are appended
when its first pending visits come after its stored ones (so flagged, or after the stored end) and
every later delta was so flagged; otherwise the list is rebuilt from page_visits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from gateway.stores.collections import USER_SESSIONS
from gateway.stores.duckdb import schema, writes
from gateway.stores.duckdb.connection import Cursor
from gateway.stores.event_fold import SessionDelta

# A fold runs in the background past this many pending deltas, or when the oldest is this old: few
# enough that a read which must fold first does not wait long, many enough that each session's row is
# rewritten once per many groups (a fold's cost follows the sessions it touches, not the events).
FOLD_ROWS = 50_000
FOLD_AGE_S = 10.0

TABLE = "session_deltas"
_COLUMNS = (
    ("seq", "BIGINT"),  # the group commit that recorded it: the order deltas fold in
    ("session_id", "VARCHAR"),
    ("user_id", "BIGINT"),
    ("device", "VARCHAR"),
    ("start_time", "TIMESTAMP"),
    ("end_time", "TIMESTAMP"),
    ("pages_visited", "VARCHAR[]"),
    ("total_interactions", "BIGINT"),
    ("converted", "BOOLEAN"),
    ("conversion_value", "DOUBLE"),
    ("ordered", "BOOLEAN"),  # its visits come after every visit known when it was recorded
)
_DDL = f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {t}' for c, t in _COLUMNS)})"
_APPEND = f"INSERT INTO {TABLE} SELECT {', '.join(f'CAST({c} AS {t})' for c, t in _COLUMNS)} FROM incoming"

_SESSIONS = schema.TABLES[USER_SESSIONS]
# Each session's pending deltas as one row of user_sessions, its pages NULL when they must be rebuilt.
# The head is the session's first delta with visits: appended if flagged, or after the stored end
# (every stored visit starts at or before it; the stored row is the one before any pending delta).
_FOLDED = f"""
WITH heads AS (
    SELECT session_id, min(seq) FILTER (WHERE len(pages_visited) > 0) AS head FROM {TABLE} GROUP BY session_id
), merged AS (
    SELECT d.session_id,
           arg_min(d.user_id, d.seq) AS user_id,
           arg_min(d.device, d.seq) AS device,
           min(d.start_time) AS start_time,
           max(d.end_time) AS end_time,
           flatten(list(d.pages_visited ORDER BY d.seq)) AS pages,
           sum(d.total_interactions) AS total_interactions,
           bool_or(d.converted) AS converted,
           sum(d.conversion_value) AS conversion_value,
           coalesce(bool_and(d.ordered) FILTER (WHERE len(d.pages_visited) > 0 AND d.seq > h.head), true)
               AS rest_ordered,
           bool_or(d.ordered) FILTER (WHERE d.seq = h.head) AS head_ordered,
           min(d.start_time) FILTER (WHERE d.seq = h.head) AS head_start
    FROM {TABLE} AS d JOIN heads AS h USING (session_id)
    GROUP BY d.session_id
)
SELECT m.session_id, m.user_id, m.start_time, m.end_time, m.device,
       CASE WHEN len(m.pages) = 0 THEN m.pages
            WHEN m.rest_ordered AND (s.session_id IS NULL OR s.end_time IS NULL OR m.head_ordered
                                     OR m.head_start > s.end_time) THEN m.pages
       END AS pages_visited,
       m.total_interactions, m.converted, m.conversion_value
FROM merged AS m LEFT JOIN user_sessions AS s USING (session_id)
"""
# How a stored session absorbs its folded deltas (``excluded``). The start is left out: it is indexed
# (an update is a delete + insert in each of its indexes) and a late event moves it earlier only rarely,
# so those few rows get their own UPDATE. NULL pages mark a rebuild, done in the same transaction.
_UPSERT = f"""
INSERT INTO user_sessions AS s ({schema.columns_sql(_SESSIONS)})
SELECT {schema.cast_select(_SESSIONS, "incoming")} FROM incoming
ON CONFLICT (session_id) DO UPDATE SET
    end_time = greatest(s.end_time, excluded.end_time),
    total_interactions = coalesce(s.total_interactions, 0) + excluded.total_interactions,
    converted = coalesce(s.converted, false) OR excluded.converted,
    conversion_value = coalesce(s.conversion_value, 0.0) + excluded.conversion_value,
    pages_visited = CASE WHEN excluded.pages_visited IS NULL THEN NULL
                         WHEN len(excluded.pages_visited) = 0 THEN s.pages_visited
                         ELSE list_concat(coalesce(s.pages_visited, []), excluded.pages_visited) END
RETURNING session_id, start_time, pages_visited IS NULL
"""
_START = "UPDATE user_sessions AS s SET start_time = d.start_time FROM incoming AS d WHERE s.session_id = d.session_id"
# pages_in_order (stores/event_fold.py) in SQL. An IN list of ids does not use the session index: at
# 1.5M visits 2.5 ms for one session, 60 ms for 400 -- fine for late visits, not for all.
_PAGES = """
    SELECT session_id, list(page_type ORDER BY "timestamp", event_id) AS pages, max("timestamp") AS last
    FROM page_visits WHERE session_id IN ({marks}) GROUP BY session_id
"""
_SET_PAGES = "UPDATE user_sessions AS s SET pages_visited = r.pages FROM incoming AS r WHERE s.session_id = r.session_id"


class PendingSessions:
    """The deltas of one file not folded yet: which users and sessions they touch, how many, how old.
    Changed only under the store's write lock. Until the file's table was looked at, and while it holds
    deltas a previous process left, the pending deltas are unknown: every read must fold first."""

    def __init__(self) -> None:
        self._ready = False  # the table exists
        self._unknown = True  # deltas may be pending that ``users``/``sessions`` do not list
        self.users: set[int] = set()
        self.sessions: set[str] = set()
        self.rows = 0
        self._seq = 0
        self._oldest = 0.0  # monotonic time of the oldest pending delta

    def any(self) -> bool:
        return self._unknown or self.rows > 0

    def touches(self, users: Sequence[int] = (), sessions: Sequence[str] = ()) -> bool:
        return (
            self._unknown or any(u in self.users for u in users) or any(s in self.sessions for s in sessions)
        )

    def due(self) -> bool:
        """Worth folding in the background now."""
        if self._unknown:
            return True
        return self.rows >= FOLD_ROWS or (self.rows > 0 and time.monotonic() - self._oldest >= FOLD_AGE_S)

    def append(self, cur: Cursor, deltas: Sequence[SessionDelta], ordered: Sequence[bool]) -> None:
        """Inside the caller's transaction; :meth:`appended` once it committed."""
        if not deltas:
            return
        if not self._ready:  # in the transaction: ready once it committed (appended)
            cur.execute(_DDL).fetchall()
        frame = pa.Table.from_pydict(
            {
                "seq": pa.array([self._seq + 1] * len(deltas), type=pa.int64()),
                "session_id": [d.session_id for d in deltas],
                "user_id": pa.array([d.user_id for d in deltas], type=pa.int64()),
                "device": pa.array([d.device for d in deltas], type=pa.string()),
                "start_time": [d.start_time for d in deltas],
                "end_time": [d.end_time for d in deltas],
                "pages_visited": pa.array([d.pages for d in deltas], type=pa.list_(pa.string())),
                "total_interactions": pa.array([d.interactions for d in deltas], type=pa.int64()),
                "converted": pa.array([d.converted for d in deltas], type=pa.bool_()),
                "conversion_value": pa.array([d.conversion_value for d in deltas], type=pa.float64()),
                "ordered": pa.array(list(ordered), type=pa.bool_()),
            }
        )
        writes.on_arrow(cur, _APPEND, frame).fetchall()

    def appended(self, deltas: Sequence[SessionDelta]) -> None:
        if not deltas:
            return
        self._ready = True
        self._seq += 1
        if self.rows == 0:
            self._oldest = time.monotonic()
        self.rows += len(deltas)
        self.users.update(d.user_id for d in deltas)
        self.sessions.update(d.session_id for d in deltas)

    def _look(self, cur: Cursor) -> None:
        """Whether this file has the table (not made here: a file without live capture keeps none), and
        deltas in it: a previous process's, not listed in ``users``/``sessions``."""
        try:
            (left,) = cur.execute(f"SELECT count(*) > 0 FROM {TABLE}").fetchall()[0]
        except duckdb.CatalogException:
            self._ready, self._unknown = False, False
        else:
            self._ready, self._unknown = True, bool(left)

    def fold(self, cur: Cursor) -> dict[str, datetime]:
        """Fold every pending delta into user_sessions and empty the table, in one transaction (the
        caller holds the write lock). Returns the sessions whose pages were rebuilt and their latest
        visit; the cheap path knew the others' already (``LastVisits.appended``)."""
        if self._unknown:
            self._look(cur)
        if not self.any():
            return {}
        cur.begin()
        try:
            rebuilt = _fold(cur)
            cur.execute(f"DELETE FROM {TABLE}").fetchall()
            cur.commit()
        except BaseException:
            cur.rollback()
            raise
        self._unknown = False
        self.users.clear()
        self.sessions.clear()
        self.rows = 0
        return rebuilt


def _fold(cur: Cursor) -> dict[str, datetime]:
    merged = cur.sql(_FOLDED).to_arrow_table()
    start: dict[str, datetime] = {}  # after the upsert: a stored session keeps its stored start
    late: list[str] = []  # marked NULL: rebuilt below
    for session_id, started, reordered in writes.on_arrow(cur, _UPSERT, merged).fetchall():
        start[session_id] = started
        if reordered:
            late.append(session_id)
    rebuilt: dict[str, datetime] = {}
    if late:
        rows = cur.execute(_PAGES.format(marks=", ".join("?" * len(late))), late).fetchall()
        pages = pa.Table.from_pydict(
            {"session_id": [r[0] for r in rows], "pages": [r[1] for r in rows]},
            schema=pa.schema([("session_id", pa.string()), ("pages", pa.list_(pa.string()))]),
        )
        writes.on_arrow(cur, _SET_PAGES, pages).fetchall()
        rebuilt = {session_id: last for session_id, _, last in rows}
    ids = merged.column("session_id").to_pylist()
    starts = merged.column("start_time").to_pylist()
    earlier = [
        (sid, at) for sid, at in zip(ids, starts, strict=True) if start[sid] is None or at < start[sid]
    ]
    if earlier:
        moved = pa.Table.from_pydict(
            {"session_id": [sid for sid, _ in earlier], "start_time": [at for _, at in earlier]},
            schema=pa.schema([("session_id", pa.string()), ("start_time", pa.timestamp("us"))]),
        )
        writes.on_arrow(cur, _START, moved).fetchall()
    return rebuilt
