"""A fresh embedded store per test, closed after it (modules with a store of their own override it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.stores.duckdb.store import DuckDBStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DuckDBStore]:
    opened = await DuckDBStore.open(tmp_path / "store.duckdb")
    try:
        await opened.ensure_indexes()
        yield opened
    finally:
        await opened.close()
