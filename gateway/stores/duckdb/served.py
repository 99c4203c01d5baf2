"""The generation a DuckDBStore serves: one file, replaced whole by a build (``generations.py``, the
contract in ``stores/datasets.py``), and read whole by a backup. A mixin of :class:`DuckDBStore`, which
owns the connection and what is attached to it (``_attach``, ``_started``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import BadInput
from gateway.stores.collections import DEFAULT_FUNNEL, FUNNEL_ANALYTICS, FUNNEL_DEFINITIONS
from gateway.stores.datasets import next_revision
from gateway.stores.duckdb import generations, rollback, schema, writes
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.funnel_index.live import LiveIndex
from gateway.stores.duckdb.preaggregates import DayRows
from gateway.validation import check_default_funnel

DEFAULT_REVISION = "default_revision"  # the key of funnelgate_meta holding it (stores/datasets.py)


class FileGenerations:
    _db: DuckDBConnection
    path: Path
    funnel_index: LiveIndex | None
    day_rows: DayRows | None
    default_revision = ""  # of the default funnel pinned in this file ("" never): read by _started

    def _attach(self, db: DuckDBConnection) -> None:
        raise NotImplementedError

    async def _started(self) -> None:
        raise NotImplementedError

    async def _settle(self, *, every: bool) -> None:
        raise NotImplementedError  # capture.py: pending session deltas folded

    def folded_first(self, cur: Cursor) -> None:
        raise NotImplementedError  # capture.py: the same, in the caller's call under the write lock

    @property
    def connection(self) -> DuckDBConnection:
        return self._db

    # -- generations (stores/datasets.py; the steps are in generations.py) ---------------------------
    async def begin_build(self) -> generations.FileBuild:
        return await generations.FileBuild.begin(self)  # type: ignore[arg-type]  # the mixin of DuckDBStore

    async def replace_file(self, building: Path) -> None:
        """Close this store, put ``building`` (closed, checkpointed) in place of its file, reopen: the
        switch of ``FileBuild.activate``. If the switch is refused, the old file is reopened."""
        await self._settle(every=True)
        if self.funnel_index is not None:
            self.funnel_index.close()
        await self._db.run("checkpoint", lambda cur: writes.run_sql(cur, "CHECKPOINT"))
        await self._db.close()
        try:
            await asyncio.to_thread(generations.switch_files, building, self.path)
        finally:
            self._attach(await DuckDBConnection.open(self.path))
            await self._started()

    async def pin_default_funnel(self, steps: Sequence[str] | None) -> str:
        """The contract's (``contracts.py``), in one call under the write lock and one transaction: the
        steps, the rows and the revision change together or not at all (a failed or interrupted pin
        must not leave new steps served under the old revision's cached answers). One process serves
        the file (the data-dir lock), so it is seen at once."""
        if steps is not None:
            check_default_funnel(steps)
        table = schema.TABLES[FUNNEL_DEFINITIONS]

        def pin(cur: Cursor) -> str:
            with self._db.write_lock:
                revision = next_revision(generations.read_meta(cur, DEFAULT_REVISION))
                cur.begin()
                try:
                    if steps is None:
                        writes.delete_rows(cur, FUNNEL_DEFINITIONS, "name = $name", {"name": DEFAULT_FUNNEL})
                    else:
                        writes.upsert_rows(cur, table, [{"name": DEFAULT_FUNNEL, "steps": list(steps)}])
                    writes.delete_rows(cur, FUNNEL_ANALYTICS, "true", {})
                    generations.write_meta(cur, DEFAULT_REVISION, revision)
                    cur.commit()
                except BaseException:
                    rollback.undo(cur)
                    raise
                if self.day_rows is not None:
                    self.day_rows.default_changed()
                self.default_revision = revision
            return revision

        return await self._db.run("pin the default funnel", pin)

    async def export(self, sinks: dict[str, generations.Sink], batch: int = 10_000) -> dict[str, int]:
        for collection in sinks:
            if collection not in schema.TABLES:
                raise BadInput(f"unknown collection {collection!r}")

        def export(cur: Cursor) -> dict[str, int]:
            return generations.export_all(self._db, sinks, batch, settle=lambda: self.folded_first(cur))

        return await self._db.run("export", export)
