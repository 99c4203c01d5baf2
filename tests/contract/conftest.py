"""One store per DocumentStore adapter; every contract test runs against each of them.

The kinds: ``duckdb`` (embedded), ``mongodb-wire`` (the MongoDB adapter through real PyMongo
``AsyncMongoClient`` against the session's wire-protocol test server, ``tests/mongo_server.py``) and,
when ``FUNNEL_MONGO_URL`` is set, ``mongodb`` (the same adapter against that real MongoDB). Each Mongo
store gets a database of its own, dropped afterwards.

* ``store``: a fresh, empty store per test (indexes ensured), closed afterwards.
* ``loaded_store``: ``store`` with the fixture documents inserted; for tests that write.
* ``shared_loaded_store``: one loaded store per test module and adapter, for tests that only read. Opening
  and loading a store costs 0.3-1 s, and most tests only read: sharing keeps the suite within seconds
  per adapter. A test that writes must never use it.

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

from gateway.config import load_settings
from gateway.stores.contracts import DocumentStore
from tests.contract.fixture_data import DATASET, fresh

REAL_MONGO_URL = load_settings().mongo_url
STORE_KINDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("mongodb-wire", id="mongodb-wire"),
    # Only when configured: an always-present, always-skipped copy of the suite drowns real skips.
    *([pytest.param("mongodb", id="mongodb", marks=pytest.mark.mongo)] if REAL_MONGO_URL else []),
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


def mongo_url_for(kind: str, request: pytest.FixtureRequest) -> str | None:
    """The server a Mongo kind runs on (None for other kinds)."""
    if kind == "mongodb-wire":
        return str(request.getfixturevalue("mongo_wire_url"))
    if kind == "mongodb":
        assert REAL_MONGO_URL is not None
        return REAL_MONGO_URL
    return None


@asynccontextmanager
async def opened_store(
    kind: str, directory: Path, mongo_url: str | None = None
) -> AsyncIterator[DocumentStore]:
    """A new empty store of this kind with its indexes, closed (and a Mongo database dropped) on exit."""
    if kind == "duckdb":
        from gateway.stores.duckdb.store import DuckDBStore

        opened = await _maybe_await(DuckDBStore.open(directory / "c.duckdb"))
    else:
        from gateway.stores.mongo.store import MongoStore

        assert mongo_url is not None, kind
        name = f"funnelgate_contract_{uuid.uuid4().hex[:12]}"
        opened = await _maybe_await(MongoStore.connect(mongo_url, name))
    try:
        await opened.ensure_indexes()
        yield opened
    finally:
        await opened.close()
        if mongo_url is not None:
            await _drop_mongo_database(mongo_url, name)


async def load_fixture(store: DocumentStore) -> None:
    for collection, documents in DATASET.items():
        result = await store.insert_many(collection, fresh(documents))
        assert (result.written, result.duplicates) == (len(documents), 0), collection


@pytest_asyncio.fixture(params=STORE_KINDS, loop_scope="module")
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    async with opened_store(request.param, tmp_path, mongo_url_for(request.param, request)) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="module")
async def loaded_store(store: DocumentStore) -> DocumentStore:
    await load_fixture(store)
    return store


@pytest_asyncio.fixture(scope="module", params=STORE_KINDS, loop_scope="module")
async def shared_loaded_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DocumentStore]:
    directory = tmp_path_factory.mktemp(f"contract-{request.param}")
    async with opened_store(request.param, directory, mongo_url_for(request.param, request)) as opened:
        await load_fixture(opened)
        yield opened
