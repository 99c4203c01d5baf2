"""Live capture's side of the DuckDB store: ``record_events``, and the folding of the session deltas it
leaves (``pending_sessions.py``): in the background, and before anything else reads or writes their
sessions. A mixin of :class:`DuckDBStore`, which owns the connection and calls ``_settle`` where
sessions are read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from gateway.models import EventBatch
from gateway.stores.duckdb import events
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.pending_sessions import PendingSessions

log = logging.getLogger("funnelgate.duckdb")

# Sessions folded per transaction, and the pause between a background fold's transactions. Each holds
# the write lock; a transaction costs ~20 ms however few it folds. Measured at 5,000 events/s (4 x 6 s,
# twice each): one transaction for all ~5,000 sessions, p99 122-147 ms after the first fold; 500 and
# 50 ms, 59-87 ms. Back to back, small steps made p50 worse: capture waited behind one after another.
FOLD_STEP = 500
FOLD_PAUSE_S = 0.05


class LiveCapture:
    _db: DuckDBConnection
    pending: PendingSessions
    last_visits: events.LastVisits
    _background: asyncio.Task[None] | None = None

    def _attach_capture(self) -> None:
        self.pending = PendingSessions()  # per file
        self.last_visits = events.LastVisits()  # per file: what live capture knows of its sessions
        self._db.changes.subscribe(self.last_visits)

    async def record_events(self, batch: EventBatch) -> list[str]:
        pending, last_visits = self.pending, self.last_visits

        def record(cur: Cursor) -> list[str]:
            with self._db.write_lock:
                return events.record(cur, batch, last_visits, pending)

        new = await self._db.run("record_events", record)
        if pending.due() and (self._background is None or self._background.done()):
            # This group's submitters are answered meanwhile; the next group's commit waits for the
            # fold's step (one write at a time).
            self._background = asyncio.create_task(self._fold_quietly(), name="funnelgate-session-fold")
        return new

    async def fold_sessions(self, sessions: Sequence[str] | None = None, pause_s: float = 0.0) -> None:
        """Fold the pending deltas of ``sessions`` now (None: all), FOLD_STEP sessions per transaction."""
        pending, last_visits = self.pending, self.last_visits

        def folder(chosen: Sequence[str] | None) -> Callable[[Cursor], None]:
            def fold(cur: Cursor) -> None:
                with self._db.write_lock:
                    last_visits.rebuilt(pending.fold(cur, chosen))

            return fold

        if pending.unknown:  # a previous process's deltas: the whole table
            await self._db.run("fold sessions", folder(None))
        todo = list(sessions) if sessions is not None else pending.oldest()
        for start in range(0, len(todo), FOLD_STEP):
            if start and pause_s:
                await asyncio.sleep(pause_s)
            await self._db.run("fold sessions", folder(todo[start : start + FOLD_STEP]))

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
        if self.pending.any():
            await self.fold_sessions(None if every else self.pending.sessions(users, sessions))

    async def _stop_background(self) -> None:
        """Before the file closes: background work finishes, then whatever is left folds."""
        if self._background is not None:
            await asyncio.gather(self._background, return_exceptions=True)
        if not self._db.closed:
            await self.fold_sessions()
