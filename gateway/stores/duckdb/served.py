"""The generation a DuckDBStore serves: one file, replaced whole by a build (``generations.py``, the
contract in ``stores/datasets.py``), and read whole by a backup. A mixin of :class:`DuckDBStore`, which
owns the connection and what is attached to it (``_attach``, ``_started``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.errors import BadInput
from gateway.stores.duckdb import generations, schema, writes
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection
from gateway.stores.duckdb.funnel_index.live import LiveIndex


class FileGenerations:
    _db: DuckDBConnection
    path: Path
    funnel_index: LiveIndex | None

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

    async def export(self, sinks: dict[str, generations.Sink], batch: int = 10_000) -> dict[str, int]:
        for collection in sinks:
            if collection not in schema.TABLES:
                raise BadInput(f"unknown collection {collection!r}")

        def export(cur: Cursor) -> dict[str, int]:
            return generations.export_all(self._db, sinks, batch, settle=lambda: self.folded_first(cur))

        return await self._db.run("export", export)
