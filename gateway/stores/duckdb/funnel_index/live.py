"""The store's funnel index over time: built in the background, kept current by the change feed.

Readers (funnel queries on the store's pool threads) call :meth:`LiveIndex.current`. It returns an
immutable snapshot reflecting every committed write, or None while no such snapshot exists (first
build after open, or a rebuild after a write the index cannot follow); the caller then answers with
SQL, so no query ever waits for a build.

* Inserts of users and visits arrive from the change feed (``inserted``) and are queued with a
  sequence number. The next reader merges the queue into a copy of the snapshot (updates.py) and
  publishes the copy; readers of the old snapshot are not disturbed. Merges run outside the state lock,
  so writers never wait for one.
* Deleted visits, and more queued visits than merging is worth (``rebuild_after``), bump ``epoch``: the
  snapshot is dropped and the next reader starts a rebuild.
* A build pins a DuckDB snapshot under the store's write lock (BEGIN plus a first read: DuckDB takes
  the snapshot at the first read) and notes the queue's sequence number at that moment. Changes up to
  it are in the build, later ones are merged on top; a build that finishes after an epoch bump is
  discarded. Writers wait for the write lock only while the snapshot is pinned, not for the build.
* A reopened store (or a swapped-in file) builds a new index: the index lives and dies with its store.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date
from typing import Any

import numpy as np

from gateway.stores.collections import PAGE_VISITS, USERS
from gateway.stores.duckdb.changes import Columns
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.funnel_index.arrays import DAY_US, day_of_us
from gateway.stores.duckdb.funnel_index.build import build_from_duckdb
from gateway.stores.duckdb.funnel_index.layout import FunnelIndex
from gateway.stores.duckdb.funnel_index.updates import append_visits

log = logging.getLogger("funnelgate.funnel_index")

# Merging copies every touched page's arrays; past this many queued visits (or a quarter of the
# index) a rebuild is cheaper and gives back clustered ids.
MERGE_LIMIT = 200_000


class LiveIndex:
    def __init__(self, db: DuckDBConnection) -> None:
        self._db = db
        self._lock = threading.Condition()  # guards the state below; held for O(1) work only
        self._merging = threading.Lock()  # one merger at a time (the merge itself runs unlocked)
        self._snapshot: FunnelIndex | None = None
        self._snapshot_epoch = -1
        self._applied = 0  # sequence number of the last change inside the snapshot
        self._seq = 0
        self._queue: list[tuple[int, str, Columns]] = []  # (seq, table, rows) newer than a pin
        self._queued_visits = 0
        self._epoch = 0
        self._building: int | None = None  # epoch of the build in flight
        self._wanted = False  # a reader found no snapshot since the last build started
        self._closed = False
        self.builds = 0  # observability (tests, benches, logs)
        self.merges = 0
        self.last_build_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Build now, in the background (serve calls this right after opening the store)."""
        with self._lock:
            self._start_build()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._snapshot = None
            self._lock.notify_all()

    def wait_ready(self, timeout: float) -> bool:
        """Block until a current snapshot exists (starting a build if needed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._valid():
                if self._closed:
                    return False
                self._start_build()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    # -- readers -----------------------------------------------------------------------------------
    def current(self) -> FunnelIndex | None:
        """The index with every committed write, or None (answer with SQL; a build is under way)."""
        with self._lock:
            if not self._valid():
                self._wanted = True
                self._start_build()
                return None
            if self._applied == self._seq:
                return self._snapshot
        with self._merging:
            with self._lock:
                if not self._valid():
                    return None
                base, upto = self._snapshot, self._seq
                todo = [(table, rows) for seq, table, rows in self._queue if seq > self._applied]
            assert base is not None
            if not todo:
                return base
            grown = _merged(base, todo)
            with self._lock:
                if self._snapshot is not base or not self._valid():
                    return None  # invalidated while merging
                self._publish(grown, upto)
                self.merges += 1
                return grown

    def days_of_users(self, user_ids: np.ndarray) -> set[date] | None:
        """The days of these users' indexed visits; None when no current snapshot can say."""
        with self._lock:
            snapshot = self._snapshot if self._valid() else None
        if snapshot is None:
            return None
        dense = snapshot.dense(np.asarray(user_ids, np.int64), add=False)
        dense = dense[dense >= 0]
        days: set[int] = set()
        for page in snapshot.pages.values():
            lo, hi = page.off[dense], page.off[dense + 1]
            lengths = hi - lo
            total = int(lengths.sum())
            if total:  # every position of every segment, without a Python loop per user
                starts = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
                days.update(np.unique(page.ts[starts] // DAY_US).tolist())
        return {day_of_us(d * DAY_US) for d in days}

    # -- the change feed ---------------------------------------------------------------------------
    def inserted(self, table: str, rows: Columns) -> None:
        if table == PAGE_VISITS:
            keep = np.flatnonzero(~_nulls(rows["ts"]) & ~_nulls(rows["page_type"]))
            visits = {
                "user_id": np.asarray(rows["user_id"], np.int64)[keep],
                "page_type": np.asarray(rows["page_type"], object)[keep],
                "ts": np.asarray(rows["ts"], np.int64)[keep],
                "duration": np.ma.filled(np.ma.asarray(rows["duration"], np.float64), 0.0)[keep],
            }
            self._record(PAGE_VISITS, visits, len(keep))
        elif table == USERS:
            self._record(USERS, rows, 0)

    def deleted(self, table: str, rows: Columns | None) -> None:
        if table == PAGE_VISITS:
            self.invalidate()
        elif table == USERS and rows is not None:
            n = len(rows["user_id"])
            self._record(USERS, {"user_id": rows["user_id"], "device": [None] * n, "sex": [None] * n}, 0)

    def invalidate(self) -> None:
        """A change the index cannot follow: drop the snapshot; the next reader starts a rebuild."""
        with self._lock:
            self._epoch += 1
            self._snapshot = None
            self._queue.clear()
            self._queued_visits = 0

    def _record(self, table: str, rows: Columns, visits: int) -> None:
        with self._lock:
            following = self._valid() or self._building == self._epoch
            if not following:
                return  # the next build reads these rows from the table
            self._seq += 1
            self._queue.append((self._seq, table, rows))
            self._queued_visits += visits
            size = self._snapshot.visits if self._snapshot is not None else 0
            if self._valid() and self._queued_visits > max(MERGE_LIMIT, size // 4):
                self._epoch += 1  # a rebuild is cheaper than this merge
                self._snapshot = None
                self._queue.clear()
                self._queued_visits = 0

    # -- building (caller holds _lock) --------------------------------------------------------------
    def _valid(self) -> bool:
        return self._snapshot is not None and self._snapshot_epoch == self._epoch and not self._closed

    def _start_build(self) -> None:
        if self._closed or self._building is not None or self._valid():
            return
        self._building = self._epoch
        self._wanted = False
        self._queue.clear()
        self._queued_visits = 0
        if self._db.submit("build the funnel index", self._build) is None:
            self._building = None

    def _build(self, cur: Cursor) -> None:
        started = time.perf_counter()
        epoch = pin = -1
        index: FunnelIndex | None = None
        began = False
        try:
            with self._db.write_lock:  # no write commits between the pin and the noted sequence number
                cur.execute("BEGIN TRANSACTION").fetchall()
                began = True
                cur.execute("SELECT count(*) FROM page_visits").fetchall()  # DuckDB pins here
                with self._lock:
                    # the pinned data holds every change so far, invalidating ones included
                    epoch = self._building = self._epoch
                    pin = self._seq
            index = build_from_duckdb(cur)
        except Exception:
            log.exception("funnel index build failed; funnels are answered with SQL")
        finally:
            if began:
                cur.execute("ROLLBACK").fetchall()
        with self._lock:
            self._building = None
            if index is not None and epoch == self._epoch and not self._closed:
                self._snapshot_epoch = epoch
                self._publish(index, pin)
                self.builds += 1
                self.last_build_seconds = time.perf_counter() - started
                log.info(
                    "funnel index built: %d users, %d visits, %.0f MB in %.2f s",
                    index.n_users, index.visits, index.nbytes() / 1e6, self.last_build_seconds,
                )  # fmt: skip
            elif self._wanted and index is not None:
                self._start_build()  # outdated before it finished, and a reader is waiting for one
            self._lock.notify_all()

    def _publish(self, index: FunnelIndex, upto: int) -> None:
        self._snapshot = index
        self._applied = upto
        self._queue = [entry for entry in self._queue if entry[0] > upto]
        self._queued_visits = sum(len(rows["ts"]) for _, table, rows in self._queue if table == PAGE_VISITS)


def _merged(base: FunnelIndex, changes: list[tuple[str, Columns]]) -> FunnelIndex:
    """A copy of ``base`` with the queued changes applied in commit order (runs of one kind at once)."""
    grown = base.copy()
    i = 0
    while i < len(changes):
        j = i
        while j < len(changes) and changes[j][0] == changes[i][0]:
            j += 1
        run = [rows for _, rows in changes[i:j]]
        if changes[i][0] == PAGE_VISITS:
            append_visits(
                grown,
                np.concatenate([r["user_id"] for r in run]),
                list(np.concatenate([r["page_type"] for r in run])),
                np.concatenate([r["ts"] for r in run]),
                np.concatenate([r["duration"] for r in run]),
            )
        else:
            grown.set_users(
                np.concatenate([np.asarray(r["user_id"], np.int64) for r in run]),
                {a: [v for r in run for v in _values(r[a])] for a in ("device", "sex")},
            )
        i = j
    return grown


def _nulls(column: Any) -> np.ndarray:
    if isinstance(column, np.ma.MaskedArray):
        return np.ma.getmaskarray(column)
    arr = np.asarray(column)
    if arr.dtype != object:
        return np.zeros(len(arr), bool)
    return np.array([v is None for v in arr.tolist()], bool)


def _values(column: Any) -> list[Any]:
    if isinstance(column, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(column).tolist()
        return [None if m else v for v, m in zip(column.data.tolist(), mask, strict=True)]
    return list(column.tolist() if hasattr(column, "tolist") else column)
