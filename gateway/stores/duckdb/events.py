"""``record_events`` on DuckDB: the realtime write as one transaction.

Inside one BEGIN ... COMMIT, under the store's write lock, in as few statements as the tables allow
(each DuckDB statement costs ~1-3 ms of CPU before its first row, more than a few hundred rows do):
  1. visits and interactions: a plain ``INSERT ... RETURNING``, every id new -- the common case; when
     one is already stored its unique index refuses the statement, the transaction is rolled back and
     done again with ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id``, which tells which ids
     are new. ``ON CONFLICT`` costs ~6 ms of CPU per commit whatever its size (measured at 100 and at
     1,500 events), as much as the plain insert of a few hundred rows, so only a group holding a
     replayed id pays it (and the failed attempt before it). While a table's unique key is missing
     (a bulk delete failed to build it again: ``writes.UNKEYED``) every group takes ``ON CONFLICT``,
     which then fails loudly instead of storing a replay twice;
  2. users: ``INSERT ... ON CONFLICT DO NOTHING`` (an existing user document is never changed), only
     when the group has new users, and only those with a new event (a duplicate creates no one);
  3. sessions: the new events' deltas (``stores/event_fold.py``) in ONE upsert -- a new session
     inserted, a stored one extended (end, interactions, converted, value, ``pages_visited`` when it
     got visits) -- which returns each session's start; ``start_time`` (indexed: an update is a
     delete + insert in each of its indexes) is updated only for the few whose start a late event
     moves earlier, and ``pages_visited`` rebuilt from the visits only for the few a late visit
     reorders.
Rows reach DuckDB as Arrow tables found by name (a replacement scan), not registered views: a
register/unregister pair is two catalog changes, ~1.5 ms of CPU per table per commit.
The commit writes and fsyncs the WAL (verified with strace, docs/architecture.md), so once this returns
the events survive a SIGKILL. An error rolls everything back: nothing of the batch is stored.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from gateway.errors import BadInput
from gateway.models import EventBatch
from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS, USER_SESSIONS, USERS
from gateway.stores.duckdb import changes, schema, writes
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
                         WHEN s.end_time IS NULL OR excluded.start_time > s.end_time
                              OR list_contains({in_order}, excluded.session_id)
                         THEN list_concat(coalesce(s.pages_visited, []), excluded.pages_visited)
                         ELSE NULL END
"""
# ``pages_visited`` (visit-time order, stores/event_fold.py): the new pages are appended when they are
# known to come after every stored visit -- all the new events after the stored end (``s.`` is the row
# before this update), or the session in ``{in_order}`` (:class:`LastVisits` knows its latest visit);
# otherwise NULL, a mark that _PAGES/_SET_PAGES replace in the same transaction. The end alone would
# not do: a page view's end is its timestamp + duration, so the next page of the same visitor usually
# comes before it, and the rebuild scans page_visits (an IN list of ids does not use the session
# index): at 1.5M visits 2.5 ms for one session, 60 ms for 400 -- fine for late visits, not for all.
_START = "UPDATE user_sessions AS s SET start_time = d.start_time FROM {source} AS d WHERE s.session_id = d.session_id"
_PAGES = """
    SELECT session_id, list(page_type ORDER BY "timestamp", event_id) AS pages, max("timestamp") AS last
    FROM page_visits WHERE session_id IN ({marks}) GROUP BY session_id
"""  # pages_in_order (stores/event_fold.py) in SQL
_SET_PAGES = "UPDATE user_sessions AS s SET pages_visited = r.pages FROM incoming AS r WHERE s.session_id = r.session_id"


class LastVisits:
    """The latest visit timestamp of the sessions live capture wrote lately (at most ``max_sessions``,
    least recently written forgotten first), so a visit after it is appended even when it starts
    before the session's stored end. It only holds what this store's ``record`` committed: it listens
    to the change feed and forgets everything when page_visits change any other way (an insert or
    delete elsewhere could make a remembered time wrong), and the store makes a new one per file."""

    def __init__(self, max_sessions: int = 100_000) -> None:
        self._max = max_sessions
        self._at: OrderedDict[str, datetime] = OrderedDict()
        self._recording = False

    def in_order(self, deltas: Sequence[SessionDelta]) -> list[str]:
        at = self._at
        return [
            d.session_id
            for d in deltas
            if d.first_visit is not None and d.session_id in at and d.first_visit > at[d.session_id]
        ]

    def learn(self, deltas: Sequence[SessionDelta], rebuilt: Mapping[str, datetime]) -> None:
        """After the commit: a rebuilt session's latest visit is the rebuild's; any other that got
        visits was created by them or had them appended (all after its stored visits)."""
        at = self._at
        for d in deltas:
            last = rebuilt.get(d.session_id, d.last_visit)
            if last is not None:
                at.pop(d.session_id, None)
                at[d.session_id] = last
        while len(at) > self._max:
            at.popitem(last=False)

    @contextmanager
    def recording(self) -> Iterator[None]:
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    def inserted(self, table: str, rows: Columns) -> None:
        if table == PAGE_VISITS and not self._recording:
            self._at.clear()

    def deleted(self, table: str, rows: Columns | None) -> None:
        if table == PAGE_VISITS:
            self._at.clear()


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


def _string_list(values: Sequence[str]) -> str:
    """A VARCHAR[] literal. Written into the statement rather than bound: a statement with a parameter
    is prepared first, which cost the upsert ~10 % more CPU per event (bench-like groups of 1,000)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"CAST([{quoted}] AS VARCHAR[])"


def _insert(cur: Cursor, collection: str, docs: Sequence[Mapping[str, Any]], tail: str) -> Columns:
    """Insert the documents (the first of each key); ``tail``'s RETURNING columns, as arrays."""
    if not docs:
        return {}
    table = schema.TABLES[collection]
    frame = _arrow(table, schema.unique_by_key(table, docs, keep="first"))
    return _execute(cur, _insert_sql(table, "incoming", tail), frame).fetchnumpy()


def _fold_sessions(cur: Cursor, deltas: list[SessionDelta], last_visits: LastVisits) -> dict[str, datetime]:
    """New sessions inserted and stored ones extended by ONE upsert; then the start of the few whose
    start a late event moves earlier (the upsert returns the stored start of those it extended), and
    the pages of the few a late visit reordered (returned: their latest visit)."""
    if not deltas:
        return {}
    frame = _arrow(_SESSIONS, [d.as_new_session() for d in deltas])
    target = f"user_sessions AS s ({schema.columns_sql(_SESSIONS)})"
    absorb = _ABSORB.replace("{in_order}", _string_list(last_visits.in_order(deltas)))
    upsert = (
        f"INSERT INTO {target} SELECT {schema.cast_select(_SESSIONS, 'incoming')} FROM incoming "
        f"ON CONFLICT (session_id) DO UPDATE SET {absorb} "
        "RETURNING session_id, start_time, pages_visited IS NULL"
    )
    start: dict[str, Any] = {}  # a stored session keeps its start here
    late: list[str] = []  # marked NULL by the upsert: rebuilt below
    for session_id, started, reordered in _execute(cur, upsert, frame).fetchall():
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
        _execute(cur, _SET_PAGES, pages).fetchall()
        rebuilt = {session_id: last for session_id, _, last in rows}
    earlier = [d for d in deltas if start[d.session_id] is None or d.start_time < start[d.session_id]]
    if earlier:
        moved = pa.Table.from_pydict(
            {"session_id": [d.session_id for d in earlier], "start_time": [d.start_time for d in earlier]}
        )
        _execute(cur, _START.format(source="incoming"), moved).fetchall()
    return rebuilt


def record(cur: Cursor, batch: EventBatch, last_visits: LastVisits) -> list[str]:
    """Run in the store's thread with its write lock held."""
    skip_stored = PAGE_VISITS in writes.UNKEYED or USER_INTERACTIONS in writes.UNKEYED
    try:
        written = _write(cur, batch, last_visits, skip_stored)
    except duckdb.ConstraintException:
        if skip_stored:
            raise
        written = _write(cur, batch, last_visits, skip_stored=True)  # an id is stored: which ones
    visits, users, new, deltas, rebuilt = written
    # Committed: the funnel index and the funnel_analytics rows follow (changes.py), still under the
    # write lock, so no index build can pin the data between the commit and this report.
    with last_visits.recording():
        for table, stored in ((PAGE_VISITS, visits), (USERS, users)):
            feed = changes.feed_of(cur, table)
            if feed is not None and stored and len(next(iter(stored.values()))):
                feed.inserted(table, {k: v for k, v in stored.items() if not k.startswith("new_")})
    last_visits.learn(deltas, rebuilt)
    return new_event_ids(batch, new)


def _write(
    cur: Cursor, batch: EventBatch, last_visits: LastVisits, skip_stored: bool
) -> tuple[Columns, Columns, set[str], list[SessionDelta], dict[str, datetime]]:
    """The transaction: committed, or rolled back and raised."""
    conflict = "ON CONFLICT DO NOTHING " if skip_stored else ""
    cur.begin()
    try:
        visits = _insert(
            cur,
            PAGE_VISITS,
            batch.visits,
            f"{conflict}RETURNING event_id AS new_event_id, {changes.INSERTED[PAGE_VISITS]}",
        )
        interactions = _insert(cur, USER_INTERACTIONS, batch.interactions, f"{conflict}RETURNING event_id")
        new: set[str] = set()
        for stored, column in ((visits, "new_event_id"), (interactions, "event_id")):
            new.update(stored[column].tolist() if stored else [])
        users = _insert(
            cur,
            USERS,
            users_with_new_events(batch, new),
            f"ON CONFLICT DO NOTHING RETURNING user_id AS new_user_id, {changes.INSERTED[USERS]}",
        )
        deltas = session_deltas(batch, new)
        rebuilt = _fold_sessions(cur, deltas, last_visits)
        cur.commit()
    except BaseException:
        cur.rollback()
        raise
    return visits, users, new, deltas, rebuilt
