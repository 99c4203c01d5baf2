"""A COMMIT that fails (the WAL cannot be written: a full disk) is reported as what it is.

DuckDB ends the transaction when its COMMIT fails, so the write paths' ROLLBACK raised "cannot rollback -
no transaction is active" inside their ``except`` and that error replaced the real one: on a full disk
``POST /events`` answered 503 "TransactionContext Error: cannot rollback - no transaction is active" and
the log said the same, with no word of the disk (seen on a 3 MB tmpfs, docs/operations.md). The cursor
here fails its COMMIT as DuckDB does: the transaction is gone, then the error is raised.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from gateway.errors import StoreUnavailable
from gateway.models import EventBatch
from gateway.stores.duckdb.store import DuckDBStore
from tests.stores.test_duckdb_store import interaction, user, visit

DISK_FULL = 'Failed to commit: Could not write file "store.duckdb.wal": No space left on device'


class FailingCommit:
    """A cursor whose COMMIT ends the transaction and raises, as DuckDB's does when the WAL write fails."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur

    def commit(self) -> None:
        self._cur.rollback()  # what DuckDB leaves behind: no transaction
        raise duckdb.TransactionException(f"TransactionContext Error: {DISK_FULL}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def fail_commits(store: DuckDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = store.connection
    real = connection._cursor
    monkeypatch.setattr(connection, "_cursor", lambda: FailingCommit(real()))


async def test_a_live_write_whose_commit_fails_reports_the_disk(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_commits(store, monkeypatch)
    batch = EventBatch(
        visits=[visit("e1", 7)],
        interactions=[interaction("e2", 7)],
        sessions=[{"session_id": "s7", "user_id": 7, "device": "desktop"}],
        users=[user(7)],
    )
    with pytest.raises(StoreUnavailable, match="No space left on device"):
        await store.record_events(batch)
    monkeypatch.undo()
    assert await store.count("page_visits") == 0  # nothing half-written
    assert await store.record_events(batch) == ["e1", "e2"]  # and the next write goes through


async def test_a_bulk_insert_whose_commit_fails_reports_the_disk(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_commits(store, monkeypatch)
    with pytest.raises(StoreUnavailable, match="No space left on device"):
        await store.insert_many("page_visits", [visit("a", 1)])
    monkeypatch.undo()
    assert await store.count("page_visits") == 0
