"""Live capture's side of the DuckDB store: ``record_events``, and the folding of the session deltas it
leaves (``pending_sessions.py``): in the background, and before anything else reads or writes their
sessions. A mixin of :class:`DuckDBStore`, which owns the connection and calls ``_settle`` where
sessions are read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

from gateway.models import EventBatch
from gateway.stores.duckdb import events
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.pending_sessions import PendingSessions

log = logging.getLogger("funnelgate.duckdb")

# Sessions folded per transaction, and the pause between a background fold's transactions. Each holds
# the write lock; a transaction costs ~20 ms however few it folds. Measured at 5,000 events/s (4 x 6 s,
# twice each): one transaction for all ~5,000 sessions, p99 122-147 ms after the first fold; 500 and
# 50 ms, 59-87 ms. Back to back, small steps made p50 worse: capture waited behind one after another.
# Behind (FOLD_ROWS pending, a closed loop at full speed), steps are larger and pauses shorter: the
# fixed cost per transaction then decides how much of the write lock folding takes (5,000 unpaused
# stalled the next phase's requests behind the backlog's drain: p99 0.5 s).
FOLD_STEP = 500
FOLD_STEP_BEHIND = 2_000
FOLD_PAUSE_S = 0.05
FOLD_PAUSE_BEHIND_S = 0.01
# A background step is folded FOLD_CHUNK sessions per transaction, and ends after the chunk during which
# a group commit started waiting for the write lock: capture then waits for one chunk, not a whole step.
# A step of 2,000 held the lock 170 ms, and every request of the next 5,000 events/s phase queued
# behind it (p99 218 ms against 66 ms for the same bench when the backlog was smaller).
FOLD_CHUNK = 250


class LiveCapture:
    _db: DuckDBConnection
    pending: PendingSessions
    last_visits: events.LastVisits
    _background: asyncio.Task[None] | None = None

    def _attach_capture(self) -> None:
        self.pending = PendingSessions()  # per file
        self.last_visits = events.LastVisits()  # per file: what live capture knows of its sessions
        self._db.changes.subscribe(self.last_visits)
        # Set while a group commit waits for the write lock (one at a time: the group-commit writer
        # records one group after the other); a background fold gives way after its current chunk.
        self.capture_waiting = threading.Event()

    async def record_events(
        self, batch: EventBatch, *, refuse_stored: bool = False, withheld: Sequence[str] = ()
    ) -> list[str]:
        pending, last_visits = self.pending, self.last_visits

        waiting = self.capture_waiting

        def record(cur: Cursor) -> list[str]:
            waiting.set()
            try:
                self._db.write_lock.acquire()
            finally:
                waiting.clear()
            try:
                return events.record(cur, batch, last_visits, pending, refuse_stored, withheld)
            finally:
                self._db.write_lock.release()

        new = await self._db.run("record_events", record)
        if pending.due() and (self._background is None or self._background.done()):
            # This group's submitters are answered meanwhile; the next group's commit waits for the
            # fold's step (one write at a time).
            self._background = asyncio.create_task(self._fold_quietly(), name="funnelgate-session-fold")
        return new

    def folded_first(self, cur: Cursor) -> None:
        """Fold every pending delta, in the caller's call and under the write lock it holds: a write
        or a snapshot that follows in the same call sees no delta (no group can commit in between)."""
        self.last_visits.rebuilt(self.pending.fold(cur, None))

    async def fold_sessions(
        self, users: Sequence[int] = (), sessions: Sequence[str] | None = None, pause_s: float = 0.0
    ) -> None:
        """Fold the pending deltas of ``users`` and ``sessions`` now, in one transaction; with
        ``sessions`` None, all that are pending when it starts, in steps of FOLD_STEP sessions
        (``pause_s`` apart), each FOLD_CHUNK per transaction and cut short when a group commit waits.
        The sessions are chosen under the write lock, on the store's thread, where capture changes
        what is pending."""
        pending, last_visits, waiting = self.pending, self.last_visits, self.capture_waiting

        def step(cur: Cursor) -> tuple[int, int]:
            with self._db.write_lock:
                pending.read_left(cur)
                if sessions is not None:  # a read needs exactly these folded: all at once
                    chosen = pending.sessions(users, sessions)
                    last_visits.rebuilt(pending.fold(cur, chosen))
                    return len(chosen), pending.count
                chosen = pending.oldest(FOLD_STEP_BEHIND if pending.behind() else FOLD_STEP)
                folded = 0
                for at in range(0, len(chosen), FOLD_CHUNK):
                    chunk = chosen[at : at + FOLD_CHUNK]
                    last_visits.rebuilt(pending.fold(cur, chunk))
                    folded += len(chunk)
                    if waiting.is_set():
                        break  # the rest of the step waits for the next one
                return folded, pending.count

        folded, left = await self._db.run("fold sessions", step)
        budget = folded + left  # what was pending at the start: a steady stream never holds it up
        while sessions is None and left and folded < budget:
            if pause_s:  # shorter when behind, or a steady stream outruns the fold
                await asyncio.sleep(FOLD_PAUSE_BEHIND_S if pending.behind() else pause_s)
            done, left = await self._db.run("fold sessions", step)
            if not done:
                break
            folded += done

    async def _fold_quietly(self) -> None:
        try:
            await self.fold_sessions(pause_s=FOLD_PAUSE_S)
        except Exception as exc:  # the deltas stay pending: the next read or fold tries again
            log.warning("folding live sessions failed: %s", exc)

    async def _settle(
        self, users: Sequence[int] = (), sessions: Sequence[str] = (), *, every: bool = False
    ) -> None:
        """Before a call that reads (or writes) sessions: fold the pending deltas of these users and
        sessions -- or, ``every``, all of them."""
        if self.pending.any() and (every or users or sessions):
            await self.fold_sessions(users, None if every else sessions)

    async def _stop_background(self) -> None:
        """Before the file closes: background work finishes, then whatever is left folds."""
        if self._background is not None:
            await asyncio.gather(self._background, return_exceptions=True)
        if not self._db.closed:
            try:
                await self.fold_sessions()
            except Exception as exc:  # the file still closes; the deltas fold when it opens again
                log.warning("folding live sessions before closing failed: %s", exc)
