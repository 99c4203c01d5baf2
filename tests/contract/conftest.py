"""One store per DocumentStore adapter; every contract test runs against each of them.

* ``store``: a fresh, empty store per test (indexes ensured), closed afterwards.
* ``loaded_store``: ``store`` with the fixture documents inserted; for tests that write.
* ``shared_loaded_store``: one loaded store per test module and adapter, for tests that only read. Opening
  and loading an embedded store costs ~0.3 s, and most tests only read: sharing keeps the suite within
  seconds per adapter. A test that writes must never use it.

Adapters are imported inside the fixture so the suite collects while an adapter is still missing (its
tests then error with the ImportError rather than skip: a missing adapter must stay visible).

Every contract module runs its tests in one event loop per module (``pytestmark`` there), the loop the
module-scoped store was opened in: a real AsyncMongoClient must not hop between loops.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gateway.stores.contracts import DocumentStore
from tests.contract.fixture_data import DATASET, fresh

STORE_KINDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("mongomock", id="mongomock"),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.mongo),
]


async def _maybe_await(value: Any) -> Any:
    # The adapters' constructors may be sync or async classmethods; the contract does not say.
    return await value if inspect.isawaitable(value) else value


async def _drop_mongo_database(url: str, name: str) -> None:
    import pymongo

    client: Any = pymongo.AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@asynccontextmanager
async def opened_store(kind: str, directory: Path) -> AsyncIterator[DocumentStore]:
    """A new empty store of this kind with its indexes, closed (and a real database dropped) on exit."""
    cleanup_db: tuple[str, str] | None = None
    if kind == "duckdb":
        from gateway.stores.duckdb.store import DuckDBStore

        opened = await _maybe_await(DuckDBStore.open(directory / "c.duckdb"))
    elif kind == "mongomock":
        from gateway.stores.mongo.store import MongoStore
        from tests.contract.mongomock_async import AsyncMongomockClient

        # A new client is a new in-memory server: the store starts empty.
        opened = await _maybe_await(MongoStore.from_database(AsyncMongomockClient()["funnel_test"]))
    else:
        from gateway.config import load_settings

        url = load_settings().mongo_url
        if not url:
            pytest.skip("FUNNEL_MONGO_URL is not set")
        from gateway.stores.mongo.store import MongoStore

        name = f"funnelgate_contract_{uuid.uuid4().hex[:12]}"
        opened = await _maybe_await(MongoStore.connect(url, name))
        cleanup_db = (url, name)
    try:
        await opened.ensure_indexes()
        yield opened
    finally:
        await opened.close()
        if cleanup_db is not None:
            await _drop_mongo_database(*cleanup_db)


async def load_fixture(store: DocumentStore) -> None:
    for collection, documents in DATASET.items():
        result = await store.insert_many(collection, fresh(documents))
        assert (result.written, result.duplicates) == (len(documents), 0), collection


@pytest_asyncio.fixture(params=STORE_KINDS, loop_scope="module")
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    async with opened_store(request.param, tmp_path) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="module")
async def loaded_store(store: DocumentStore) -> DocumentStore:
    await load_fixture(store)
    return store


@pytest_asyncio.fixture(scope="module", params=STORE_KINDS, loop_scope="module")
async def shared_loaded_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DocumentStore]:
    async with opened_store(request.param, tmp_path_factory.mktemp(f"contract-{request.param}")) as opened:
        await load_fixture(opened)
        yield opened
