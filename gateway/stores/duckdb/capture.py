"""Live capture's side of the DuckDB store: ``record_events``, and the folding of the session deltas it
leaves (``pending_sessions.py``) before anything else reads or writes sessions. A mixin of
:class:`DuckDBStore`, which owns the connection and calls ``_settle`` where sessions are read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from gateway.models import EventBatch
from gateway.stores.duckdb import events
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.pending_sessions import PendingSessions

log = logging.getLogger("funnelgate.duckdb")


class LiveCapture:
    _db: DuckDBConnection
    pending: PendingSessions
    last_visits: events.LastVisits
    _folding: asyncio.Task[None] | None = None

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
        if pending.due() and (self._folding is None or self._folding.done()):
            # In the background: this group's submitters are answered meanwhile; the next group's
            # commit waits for the fold (one write at a time), a fold per FOLD_AGE_S at most.
            self._folding = asyncio.create_task(self._fold_quietly(), name="funnelgate-session-fold")
        return new

    async def fold_sessions(self) -> None:
        """Fold the pending session deltas now (every call that reads sessions does, when it must)."""
        pending, last_visits = self.pending, self.last_visits

        def fold(cur: Cursor) -> None:
            with self._db.write_lock:
                last_visits.rebuilt(pending.fold(cur))

        await self._db.run("fold sessions", fold)

    async def _fold_quietly(self) -> None:
        try:
            await self.fold_sessions()
        except Exception as exc:  # the deltas stay pending: the next read or fold tries again
            log.warning("folding live sessions failed: %s", exc)

    async def _settle(
        self, users: Sequence[int] = (), sessions: Sequence[str] = (), *, every: bool = False
    ) -> None:
        """Before a call that reads (or writes) sessions: fold if a delta is pending for one of these
        users or sessions -- or, ``every``, at all."""
        if self.pending.any() if every else self.pending.touches(users, sessions):
            await self.fold_sessions()

    async def _stop_folding(self) -> None:
        """Before the file closes: a running background fold finishes, then whatever is left folds."""
        if self._folding is not None:
            await asyncio.gather(self._folding, return_exceptions=True)
        if not self._db.closed:
            await self.fold_sessions()
