"""Live sessions on DuckDB: recorded as deltas with their events, folded into ``user_sessions`` later.

Extending a stored session is an ``INSERT ... ON CONFLICT DO UPDATE``: in DuckDB a delete and an
insert of the whole row in every index, logged whole to the WAL, ``pages_visited`` list included. Done
for every group commit it was ~40 % of the commit's time, and it grew the WAL by 300-700 bytes per
event, so a checkpoint stalled capture every few seconds (measured: docs/architecture.md). So
``record`` appends each new event's session delta (``stores/event_fold.py``) to ``session_deltas``, a
table without indexes, in the same transaction as the events: as durable and as atomic as they are,
and an append costs what an event insert costs. The process also merges each session's pending deltas
in memory (:class:`Merged`), so :meth:`PendingSessions.fold` writes one row per session however many
groups touched it -- one upsert for a step of sessions (capture.py) -- and deletes their deltas, in
one transaction. The table is read only when a process opens a file a killed one left deltas in.

Nothing but capture ever sees a delta: the store folds before any call that reads or writes sessions
(``DuckDBStore._settle``), so every answer is the one an eager fold would give; lookups by key fold
only when a key has pending deltas (enrichment reads users it does not remember, which never have
any). The store also folds in the background when deltas pile up or grow old, when it closes, and when
it opens: deltas a killed process left are folded before anything is read.

``pages_visited`` keeps the visit-time order however groups arrive (the rule of event_fold.py). A
delta records, when it is appended, whether its visits come after every visit the store knows of the
session (``LastVisits``, events.py: stored or pending). At the fold a session's pages are appended
when its first pending visits come after its stored ones (so flagged, or after the stored end, read
for the step's sessions) and every later delta was so flagged; otherwise the list is rebuilt from
page_visits.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from gateway.stores.collections import USER_SESSIONS
from gateway.stores.duckdb import rollback, schema, writes
from gateway.stores.duckdb.connection import Cursor
from gateway.stores.event_fold import SessionDelta

# The background fold starts past this many pending deltas, or when the oldest is this old: few enough
# that a read which must fold first does not wait long, many enough that each session's row is
# rewritten once per many groups (a fold's cost follows the sessions it touches, not the events).
FOLD_ROWS = 50_000
FOLD_AGE_S = 10.0

TABLE = "session_deltas"
_COLUMNS = (
    ("seq", "BIGINT"),  # the group commit that recorded it: the order deltas merge in
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
# Without CAST: the INSERT casts to the columns' types itself (events.py, _insert_sql), for less CPU.
_NAMES = ", ".join(c for c, _ in _COLUMNS)
_APPEND = f"INSERT INTO {TABLE} ({_NAMES}) SELECT {_NAMES} FROM incoming"
_LEFT = f"SELECT {_NAMES} FROM {TABLE} ORDER BY seq"
_CHOSEN = "session_id IN (SELECT session_id FROM incoming)"
_HAS_TABLE = (
    "SELECT count(*) > 0 FROM duckdb_tables() "
    f"WHERE database_name = current_database() AND schema_name = 'main' AND table_name = '{TABLE}'"
)

_SESSIONS = schema.TABLES[USER_SESSIONS]
_STORED_ENDS = f"SELECT session_id, end_time FROM user_sessions WHERE {_CHOSEN}"
# How a stored session absorbs its merged deltas (``excluded``); NULL pages mark a rebuild, done in the
# same transaction. The start is left out: a late event moves it earlier only rarely, so those few rows
# get their own UPDATE, decided by the stored start the upsert returns.
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
# pages_in_order (stores/event_fold.py) in SQL. DuckDB reads page_visits' session index for an IN list
# of up to 50 ids and scans the table past that: fine for a fold's few late sessions, not for all.
_PAGES = """
    SELECT session_id, list(page_type ORDER BY "timestamp", event_id) AS pages, max("timestamp") AS last
    FROM page_visits WHERE session_id IN ({marks}) GROUP BY session_id
"""
_SET_PAGES = "UPDATE user_sessions AS s SET pages_visited = r.pages FROM incoming AS r WHERE s.session_id = r.session_id"


def naive(at: datetime) -> datetime:
    """UTC without tzinfo, as DuckDB's TIMESTAMP columns hold and return it."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


@dataclass(slots=True)  # one per pending session, updated per live write: see SessionDelta
class Merged:
    """One session's pending deltas merged in recording order: ``total`` is their sum, the row the fold
    writes. The head is the first delta with visits: its pages may be appended to the stored ones if it
    was flagged ``ordered`` or starts after the stored end; the later ones' only if each was flagged."""

    total: SessionDelta
    head_start: datetime | None = None  # None: no pending visit
    head_ordered: bool = False
    rest_ordered: bool = True
    deltas: int = 0  # rows of session_deltas merged here
    since: float = field(default_factory=time.monotonic)  # when it became pending

    @classmethod
    def first(cls, d: SessionDelta, ordered: bool) -> Merged:
        start, end = naive(d.start_time), naive(d.end_time)
        merged = cls(SessionDelta(d.session_id, d.user_id, d.device, start, end))
        merged.add(d, ordered)
        return merged

    def add(self, d: SessionDelta, ordered: bool) -> None:
        # Runs per session of every live write (capture's critical path): no call but the naive UTC
        # conversion, and that only for an aware time (live capture's are naive already).
        total = self.total
        self.deltas += 1
        start, end = d.start_time, d.end_time
        if start.tzinfo is not None or end.tzinfo is not None:
            start, end = naive(start), naive(end)
        if start < total.start_time:  # min() and max(): on a tie the kept value stays
            total.start_time = start
        if end > total.end_time:
            total.end_time = end
        total.interactions += d.interactions
        total.converted = total.converted or d.converted
        total.conversion_value += d.conversion_value
        if d.pages:
            if self.head_start is None:
                self.head_start, self.head_ordered = start, ordered
            else:
                self.rest_ordered = self.rest_ordered and ordered
            total.pages.extend(d.pages)

    def pages_to_write(self, stored: bool, stored_end: datetime | None) -> list[str] | None:
        """[]: the stored pages stay; a list: appended to them (or the pages of a new session); None:
        rebuilt from page_visits."""
        if self.head_start is None:
            return []
        if not self.rest_ordered:
            return None
        if not stored or stored_end is None or self.head_ordered or self.head_start > stored_end:
            return self.total.pages
        return None


class PendingSessions:
    """The deltas of one file not folded yet, merged per session (oldest pending first), how many
    rows, since when. Changed and iterated only under the store's write lock, on the store's threads;
    the event loop reads only ``any`` and ``due`` (plain attributes). Until the file's table was looked
    at the pending deltas are unknown: ``read_left`` reads what a killed process left."""

    def __init__(self) -> None:
        self._ready = False  # the table exists
        self._unknown = True  # deltas may be pending that ``_merged`` does not hold
        self._merged: dict[str, Merged] = {}
        self._users: Counter[int] = Counter()  # user -> their sessions in ``_merged``
        self.rows = 0
        self._seq = 0
        self._since = 0.0  # monotonic time since which something is pending

    @property
    def count(self) -> int:
        """Sessions pending."""
        return len(self._merged)

    def any(self) -> bool:
        return self._unknown or bool(self._merged)

    def sessions(self, users: Sequence[int] = (), sessions: Sequence[str] = ()) -> list[str]:
        """The pending sessions among ``sessions`` and those of ``users``."""
        mine = {u for u in users if u in self._users}
        out = [s for s in sessions if s in self._merged]
        if mine:
            out += [s for s, m in self._merged.items() if m.total.user_id in mine]
        return out

    def oldest(self, count: int | None = None) -> list[str]:
        """The pending sessions, the longest pending first."""
        return list(itertools.islice(self._merged, count))

    def behind(self) -> bool:
        """More deltas pending than a background fold should leave."""
        return self.rows >= FOLD_ROWS

    def due(self) -> bool:
        """Worth folding in the background now."""
        if self._unknown:
            return True
        return self.behind() or (self.rows > 0 and time.monotonic() - self._since >= FOLD_AGE_S)

    def append(self, cur: Cursor, deltas: Sequence[SessionDelta], ordered: Sequence[bool]) -> None:
        """Inside the caller's transaction; :meth:`appended` once it committed."""
        if not deltas:
            return
        self.read_left(cur)  # first: a left-over delta read back later would be merged twice
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

    def appended(self, deltas: Sequence[SessionDelta], ordered: Sequence[bool]) -> None:
        if not deltas:
            return
        self._ready = True
        self._seq += 1
        self._merge(zip(deltas, ordered, strict=True))
        self.rows += len(deltas)

    def _merge(self, deltas: Iterable[tuple[SessionDelta, bool]]) -> None:
        if not self._merged:
            self._since = time.monotonic()
        merged, users = self._merged, self._users
        for d, ordered in deltas:
            current = merged.get(d.session_id)
            if current is None:
                merged[d.session_id] = Merged.first(d, ordered)
                users[d.user_id] += 1
            else:
                current.add(d, ordered)

    def read_left(self, cur: Cursor) -> None:
        """Once per file: whether it has the table (not made here: a file without live capture keeps
        none), and the deltas a previous process left in it, merged as if this one had recorded them."""
        if not self._unknown:
            return
        # Looked up, not tried: inside a transaction (record's) a failed statement aborts it.
        if not cur.execute(_HAS_TABLE).fetchall()[0][0]:
            self._ready = self._unknown = False
            return
        rows = cur.execute(_LEFT).fetchall()
        left = [
            (SessionDelta(sid, user, device, start, end, list(pages), n, conv, value), bool(ordered))
            for _, sid, user, device, start, end, pages, n, conv, value, ordered in rows
        ]
        self._merge(left)
        self.rows += len(left)
        self._ready, self._unknown = True, False
        self._seq = max((row[0] for row in rows), default=0)

    def fold(self, cur: Cursor, sessions: Sequence[str] | None = None) -> dict[str, datetime]:
        """Fold the pending deltas of ``sessions`` (None: all) into user_sessions and delete them, in
        one transaction (the caller holds the write lock). Returns the sessions whose pages were
        rebuilt and their latest visit; the cheap path knew the others' already
        (``LastVisits.appended``)."""
        self.read_left(cur)
        chosen = [s for s in (self._merged if sessions is None else sessions) if s in self._merged]
        if not chosen:
            return {}
        cur.begin()
        try:
            rebuilt = _fold(cur, {s: self._merged[s] for s in chosen})
            cur.commit()
        except BaseException:
            rollback.undo(cur)
            raise
        for session_id in chosen:
            folded = self._merged.pop(session_id)
            self.rows -= folded.deltas
            self._users[folded.total.user_id] -= 1
            if not self._users[folded.total.user_id]:
                del self._users[folded.total.user_id]
        oldest = next(iter(self._merged.values()), None)
        self._since = oldest.since if oldest is not None else 0.0
        return rebuilt


def _fold(cur: Cursor, merged: dict[str, Merged]) -> dict[str, datetime]:
    ids = pa.table({"session_id": pa.array(list(merged), pa.string())})
    stored = dict(writes.on_arrow(cur, _STORED_ENDS, ids).fetchall())
    rows = writes.arrow_rows(
        _SESSIONS,
        [
            {**m.total.as_new_session(), "pages_visited": m.pages_to_write(s in stored, stored.get(s))}
            for s, m in merged.items()
        ],
    )
    start: dict[str, datetime] = {}  # after the upsert: a stored session keeps its stored start
    late: list[str] = []  # marked NULL: rebuilt below
    for session_id, started, reordered in writes.on_arrow(cur, _UPSERT, rows).fetchall():
        start[session_id] = started
        if reordered:
            late.append(session_id)
    rebuilt: dict[str, datetime] = {}
    if late:
        found = cur.execute(_PAGES.format(marks=", ".join("?" * len(late))), late).fetchall()
        pages = pa.Table.from_pydict(
            {"session_id": [r[0] for r in found], "pages": [r[1] for r in found]},
            schema=pa.schema([("session_id", pa.string()), ("pages", pa.list_(pa.string()))]),
        )
        writes.on_arrow(cur, _SET_PAGES, pages).fetchall()
        rebuilt = {session_id: last for session_id, _, last in found}
    earlier = [
        (s, m.total.start_time)
        for s, m in merged.items()
        if start[s] is None or m.total.start_time < start[s]
    ]
    if earlier:
        moved = pa.Table.from_pydict(
            {"session_id": [s for s, _ in earlier], "start_time": [at for _, at in earlier]},
            schema=pa.schema([("session_id", pa.string()), ("start_time", pa.timestamp("us"))]),
        )
        writes.on_arrow(cur, _START, moved).fetchall()
    writes.on_arrow(cur, f"DELETE FROM {TABLE} WHERE {_CHOSEN}", ids).fetchall()
    return rebuilt
