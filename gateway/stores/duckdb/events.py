"""``record_events`` on DuckDB: the realtime write as one transaction.

Inside one BEGIN ... COMMIT, under the store's write lock, in as few statements as the tables allow
(each DuckDB statement costs ~1-3 ms of CPU before its first row, more than a few hundred rows do):
  1. the group's ids into the register of stored ids (``event_ids.py``), the event tables' key: an id
     is one event whatever its type. Then visits and interactions, plain ``INSERT``s: every id new --
     the common case. When one is already stored, as any type, or repeated in the group, the
     register's unique index refuses the statement and the transaction is rolled back. With
     ``refuse_stored`` (live capture) the stored ids are named (``StoredEvents``) and nothing is
     written: the caller plans the group again without them. Otherwise it is done again with
     ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id`` on the register, which tells which ids
     are new, and only their events inserted (the plain inserts return no ids: they stored every
     one of the group; visits return only the change feed's columns). ``ON CONFLICT`` costs ~6 ms of
     CPU per commit whatever its size (measured at 100 and at 1,500 events), as much as the plain
     insert of a few hundred rows, so only a group holding a replayed id pays it (and the failed
     attempt before it);
  2. users: ``INSERT ... ON CONFLICT DO NOTHING`` (an existing user document is never changed), only
     when the group has new users, and only those with a new event (a duplicate creates no one);
  3. sessions: the new events' deltas (``stores/event_fold.py``) appended to ``session_deltas``, folded
     into user_sessions later (``pending_sessions.py``: why, and how reads never see the difference).
Rows reach DuckDB as Arrow tables found by name (a replacement scan), not registered views: a
register/unregister pair is two catalog changes, ~1.5 ms of CPU per table per commit.
The commit writes and fsyncs the WAL (verified with strace, docs/architecture.md), so once this returns
the events survive a SIGKILL. An error rolls everything back: nothing of the batch is stored.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from gateway.errors import StoredEvents
from gateway.models import EventBatch
from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS, USERS
from gateway.stores.duckdb import changes, event_ids, rollback, schema, writes
from gateway.stores.duckdb.changes import Columns
from gateway.stores.duckdb.connection import Cursor
from gateway.stores.duckdb.pending_sessions import PendingSessions, naive
from gateway.stores.event_fold import SessionDelta, new_event_ids, session_deltas, users_with_new_events


class LastVisits:
    """The latest visit timestamp of the sessions live capture wrote lately (at most ``max_sessions``,
    least recently written forgotten first), so a visit after it is appended even when it starts
    before the session's stored end. It only holds what this store's ``record`` wrote (pending deltas
    included): it listens to the change feed and forgets everything when page_visits change any other
    way (an insert or delete elsewhere could make a remembered time wrong), and the store makes a new
    one per file."""

    def __init__(self, max_sessions: int = 100_000) -> None:
        self._max = max_sessions
        self._at: OrderedDict[str, datetime] = OrderedDict()
        self._recording = False

    def ordered(self, deltas: Sequence[SessionDelta]) -> list[bool]:
        """Per delta: it has visits, all after every visit remembered of its session."""
        at = self._at
        return [
            d.first_visit is not None and d.session_id in at and naive(d.first_visit) > at[d.session_id]
            for d in deltas
        ]

    def appended(self, deltas: Sequence[SessionDelta]) -> None:
        """After the commit. A session not remembered gets the delta's latest visit: if stored visits
        come later, the fold rebuilds its pages (the delta is not flagged ``ordered`` and does not
        start after the stored end), and with them every later delta's."""
        at = self._at
        for d in deltas:
            if d.last_visit is not None:  # naive UTC, as the rebuilt ones read back from DuckDB
                last, known = naive(d.last_visit), at.pop(d.session_id, None)
                at[d.session_id] = last if known is None else max(known, last)
        self._trim()

    def rebuilt(self, latest: Mapping[str, datetime]) -> None:
        """After a fold: the sessions whose pages it rebuilt, and their latest visit."""
        at = self._at
        for session_id, last in latest.items():
            at.pop(session_id, None)
            at[session_id] = last
        self._trim()

    def _trim(self) -> None:
        while len(self._at) > self._max:
            self._at.popitem(last=False)

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
    # No CAST in the SELECT: an INSERT casts each value to its column's type itself, with the same
    # cast (same values, same errors), and the explicit CASTs cost 0.1-0.4 ms of CPU per statement.
    columns = schema.columns_sql(table)
    return f"INSERT INTO {schema.quote(table.name)} ({columns}) SELECT {columns} FROM {source} {tail}"


# What a visit insert returns: the change feed's columns, and (with ON CONFLICT) which ids were new.
_FED = changes.INSERTED[PAGE_VISITS]


def _insert(cur: Cursor, collection: str, docs: Sequence[Mapping[str, Any]], tail: str) -> Columns:
    """Insert the documents (the first of each key); ``tail``'s RETURNING columns, as arrays ({} without
    RETURNING)."""
    if not docs:
        return {}
    table = schema.TABLES[collection]
    frame = writes.arrow_rows(table, schema.unique_by_key(table, docs, keep="first"))
    result = writes.on_arrow(cur, _insert_sql(table, "incoming", tail), frame)
    if "RETURNING" not in tail:
        result.fetchall()
        return {}
    return result.fetchnumpy()


def _register(cur: Cursor, ids: list[str], tail: str) -> Any:
    """INSERT the ids into the register (``event_ids.py``), with ``tail``."""
    frame = pa.table({"event_id": pa.array(ids, pa.string())})
    return writes.on_arrow(cur, f"INSERT INTO {event_ids.TABLE} SELECT event_id FROM incoming {tail}", frame)


def _unregistered(cur: Cursor, batch: EventBatch) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """The visits and interactions whose id no stored event of any type has, registering them: an id is
    one event, so a visit's id makes the batch's interactions with it repeats (visits come first)."""
    ids = list(
        dict.fromkeys([d["event_id"] for d in batch.visits] + [d["event_id"] for d in batch.interactions])
    )
    fresh = set(
        _register(cur, ids, "ON CONFLICT DO NOTHING RETURNING event_id").fetchnumpy()["event_id"].tolist()
    )
    visits: list[Mapping[str, Any]] = [d for d in batch.visits if d["event_id"] in fresh]
    visited = {d["event_id"] for d in batch.visits}
    return visits, [d for d in batch.interactions if d["event_id"] in fresh and d["event_id"] not in visited]


def _stored(cur: Cursor, batch: EventBatch, withheld: Sequence[str] = ()) -> set[str]:
    """The batch's ids the register holds (the plain insert's failure does not say which): its ``ON
    CONFLICT`` insert, rolled back. A read of the register would scan it (DuckDB reads an index for
    ``IN`` of up to 50 constants only); the insert probes its index, so the cost follows the batch."""
    ids = list(dict.fromkeys([*[d["event_id"] for d in (*batch.visits, *batch.interactions)], *withheld]))
    cur.begin()
    try:
        fresh = _register(cur, ids, "ON CONFLICT DO NOTHING RETURNING event_id").fetchnumpy()["event_id"]
    finally:
        cur.rollback()
    return set(ids).difference(fresh.tolist())


def record(
    cur: Cursor,
    batch: EventBatch,
    last_visits: LastVisits,
    pending: PendingSessions,
    refuse_stored: bool = False,
    withheld: Sequence[str] = (),
) -> list[str]:
    """Run in the store's thread with its write lock held."""
    if refuse_stored and withheld and (held := _stored(cur, batch, withheld)):
        # Events the caller refused are asked about first (their ids are not in the batch, so the
        # plain insert cannot tell): a group with a refused event pays this probe, others never.
        raise StoredEvents(held)
    try:
        written = _write(cur, batch, last_visits, pending, skip_stored=False)
    except duckdb.ConstraintException:
        # An id is stored, or repeated in the batch (rolled back: nothing is written yet).
        if refuse_stored and (held := _stored(cur, batch)):
            raise StoredEvents(held) from None
        written = _write(cur, batch, last_visits, pending, skip_stored=True)  # an id is stored: which
    visits, users, new, deltas, ordered = written
    pending.appended(deltas, ordered)
    last_visits.appended(deltas)
    # Committed: the funnel index and the funnel_analytics rows follow (changes.py), still under the
    # write lock, so no index build can pin the data between the commit and this report.
    with last_visits.recording():
        for table, stored in ((PAGE_VISITS, visits), (USERS, users)):
            feed = changes.feed_of(cur, table)
            if feed is not None and stored and len(next(iter(stored.values()))):
                feed.inserted(table, {k: v for k, v in stored.items() if not k.startswith("new_")})
    return new_event_ids(batch, new)


def _write(
    cur: Cursor, batch: EventBatch, last_visits: LastVisits, pending: PendingSessions, skip_stored: bool
) -> tuple[Columns, Columns, set[str], list[SessionDelta], list[bool]]:
    """The transaction: committed, or rolled back and raised."""
    visits_in: Sequence[Mapping[str, Any]]
    interactions_in: Sequence[Mapping[str, Any]]
    cur.begin()
    try:
        if skip_stored:  # only the events whose id the register takes
            visits_in, interactions_in = _unregistered(cur, batch)
        else:
            # Plain INSERTs store every row or raise (then the retry above takes the register's ON
            # CONFLICT): the register's key refuses an id stored as any type, or repeated in the group.
            # Every id of the group is new, so nothing returns them.
            ids = [d["event_id"] for d in batch.visits] + [d["event_id"] for d in batch.interactions]
            _register(cur, ids, "").fetchall()
            visits_in, interactions_in = batch.visits, batch.interactions
        visits = _insert(cur, PAGE_VISITS, visits_in, f"RETURNING {_FED}")
        _insert(cur, USER_INTERACTIONS, interactions_in, "")
        new: set[str] = {d["event_id"] for d in visits_in}
        new.update([d["event_id"] for d in interactions_in])
        users = _insert(
            cur,
            USERS,
            users_with_new_events(batch, new),
            f"ON CONFLICT DO NOTHING RETURNING user_id AS new_user_id, {changes.INSERTED[USERS]}",
        )
        deltas = session_deltas(batch, new)
        ordered = last_visits.ordered(deltas)
        pending.append(cur, deltas, ordered)
        cur.commit()
    except BaseException:
        rollback.undo(cur)
        raise
    return visits, users, new, deltas, ordered
