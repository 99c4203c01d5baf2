"""The DuckDB connection behind the embedded store: a thread pool, one cursor per thread, one writer.

Every call runs off the event loop in the pool on that thread's own cursor (``con.cursor()``), so reads
run side by side; writers take ``write_lock``, since DuckDB would abort one of two concurrent writers
with a transaction conflict. Driver errors leave here translated (``translate``: BadInput,
StoreQueryFailed, QueryTimeout or StoreUnavailable).

A call whose awaiting task is cancelled (the request timed out, or its client left) stops: if it has
not started it never runs; if it runs, its statement is interrupted (``cursor.interrupt()``, within
milliseconds). The interrupt is aimed under a lock at the cursor only while that very call runs on it,
so it can never hit the next call the thread picks up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import duckdb

from gateway.errors import BadInput, DataDirLocked, QueryTimeout, StoreQueryFailed, StoreUnavailable
from gateway.ops.metrics import POOL_CAPACITY, POOL_IN_USE, POOL_OPEN
from gateway.stores.duckdb import changes, event_ids, schema, writes

log = logging.getLogger("funnelgate.duckdb")
T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection
WORKERS = 4
# Errors that mean the caller's data could not be stored as asked.
_BAD_INPUT_ERRORS = (
    duckdb.DataError,
    duckdb.InvalidInputException,
    duckdb.ConstraintException,
    duckdb.InvalidTypeException,
)
# The database is up but refused the statement: SQL the adapter built wrongly (binder, parser, catalog),
# a feature it lacks, an internal error. Not the caller's fault and not an outage; as MongoDB's
# refusals, the details go to the log, the client's message names the operation. Every other driver
# error means the database failed us, for now: I/O, a closed connection, a fatal error, and memory --
# in this process, shared with every other request, so a retry may well pass (POST /events answers
# 503 "retry", a live funnel goes on): StoreUnavailable.
_REFUSED_ERRORS = (
    duckdb.ProgrammingError,
    duckdb.NotSupportedError,
    duckdb.InternalError,
)


def translate(exc: duckdb.Error, action: str) -> Exception:
    if isinstance(exc, duckdb.InterruptException):
        return QueryTimeout(f"DuckDB stopped {action}: the request was cancelled")
    if isinstance(exc, _BAD_INPUT_ERRORS):
        return BadInput(f"DuckDB rejected {action}: {exc}")
    if isinstance(exc, _REFUSED_ERRORS):
        log.error("DuckDB refused %s (%s): %s", action, type(exc).__name__, exc)
        return StoreQueryFailed(
            f"DuckDB refused {action} ({type(exc).__name__}); the gateway log has the details"
        )
    return StoreUnavailable(f"DuckDB failed {action}: {exc}")


def _connect(path: Path) -> Cursor:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DataDirLocked(f"another process holds the DuckDB file {str(path)!r}: {exc}") from exc
        raise StoreUnavailable(f"cannot open DuckDB file {str(path)!r}: {exc}") from exc
    except duckdb.Error as exc:
        raise StoreUnavailable(f"cannot open DuckDB file {str(path)!r}: {exc}") from exc
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the directory of {str(path)!r}: {exc}") from exc


class _Call:
    """One call's claim on its thread's cursor, so a cancel interrupts exactly this call."""

    __slots__ = ("cursor", "lock", "stopped")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cursor: Cursor | None = None
        self.stopped = False

    def attach(self, cursor: Cursor) -> None:
        with self.lock:
            if self.stopped:
                raise duckdb.InterruptException("cancelled before it started")
            self.cursor = cursor

    def detach(self) -> None:
        with self.lock:
            self.cursor = None

    def interrupt(self) -> None:
        with self.lock:
            self.stopped = True
            if self.cursor is not None:
                self.cursor.interrupt()


class DuckDBConnection:
    def __init__(self, con: Cursor, path: Path) -> None:
        self._con = con
        self.path = path
        self._local = threading.local()
        self._cursors: list[Cursor] = []
        self._cursors_lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.changes = changes.ChangeFeed()  # what each committed write did (see changes.py)
        self._tables_ready = False
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="duckdb")
        # The pool's utilisation: jobs submitted and not yet finished (running, or queued behind WORKERS).
        self._busy = POOL_IN_USE.labels("duckdb")
        POOL_OPEN.labels("duckdb").set(WORKERS)
        POOL_CAPACITY.labels("duckdb").set(WORKERS)

    @classmethod
    async def open(cls, path: Path) -> DuckDBConnection:
        return cls(await asyncio.to_thread(_connect, path), path)

    def _cursor(self) -> Cursor:
        cur: Cursor | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            writes.run_sql(cur, "SET TimeZone = 'UTC'")  # aware datetimes are stored as naive UTC
            changes.attach(cur, self.changes)
            self._local.cursor = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        if not self._tables_ready:
            with self.write_lock:
                if not self._tables_ready:
                    for table in schema.TABLES.values():
                        for ddl in schema.table_ddl(table):
                            writes.run_sql(cur, ddl)
                    event_ids.ensure(cur)
                    self._tables_ready = True
        return cur

    def _call(self, fn: Callable[[Cursor], T], action: str, call: _Call | None = None) -> T:
        try:
            cursor = self._cursor()
            if call is None:
                return fn(cursor)
            call.attach(cursor)
            try:
                return fn(cursor)
            finally:
                call.detach()
        except duckdb.Error as exc:
            raise translate(exc, action) from exc
        finally:
            self._busy.dec()

    async def run(self, action: str, fn: Callable[[Cursor], T]) -> T:
        if self._closed:
            raise StoreUnavailable(f"the DuckDB store is closed ({action})")
        call = _Call()
        self._busy.inc()
        try:
            future = self._executor.submit(self._call, fn, action, call)
        except RuntimeError as exc:  # shut down between the check and the submit
            self._busy.dec()
            raise StoreUnavailable(f"the DuckDB store is closed ({action})") from exc
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel():  # already running: stop its statement
                call.interrupt()
            raise

    def submit(self, action: str, fn: Callable[[Cursor], T]) -> Future[T] | None:
        """Run ``fn`` in the pool without waiting for it (background work such as an index build);
        None once the connection is closing."""
        if self._closed:
            return None
        self._busy.inc()
        try:
            return self._executor.submit(self._call, fn, action)
        except RuntimeError:  # shut down between the check and the submit
            self._busy.dec()
            return None

    def dedicated_cursor(self) -> Cursor:
        """A cursor of its own, outside the pool and the change feed, for work that must stay on one
        cursor from start to end (a build on an attached file, an export inside one transaction). The
        caller uses it from one thread at a time and closes it."""
        if self._closed:
            raise StoreUnavailable("the DuckDB store is closed")
        cur = self._con.cursor()
        writes.run_sql(cur, "SET TimeZone = 'UTC'")
        return cur

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        try:
            for cur in self._cursors:
                cur.close()
            self._con.close()
        except duckdb.Error as exc:
            raise StoreUnavailable(f"DuckDB failed to close {str(self.path)!r}: {exc}") from exc
