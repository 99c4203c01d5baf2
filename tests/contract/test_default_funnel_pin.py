"""``pin_default_funnel``: the served generation's default funnel changed in place (setDefaultFunnel), its
rows dropped, and a new revision that every store over the same data sees (stores/contracts.py)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from gateway.analytics import default_funnel
from gateway.analytics.default_funnel import DefaultFunnel
from gateway.errors import BadInput
from gateway.stores.contracts import DocumentStore
from gateway.stores.datasets import cache_scope

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store

NEW = ["payment", "confirmation"]


def revision(store: DocumentStore) -> str:
    return str(getattr(store, "default_revision", None))


async def test_a_pin_replaces_the_default_and_rescopes_the_cache(loaded_store: DocumentStore) -> None:
    dataset = str(getattr(loaded_store, "dataset", ""))
    assert revision(loaded_store) == ""  # never pinned
    assert cache_scope(loaded_store) == dataset

    first = await loaded_store.pin_default_funnel(NEW)
    assert await loaded_store.default_funnel() == NEW
    assert revision(loaded_store) == first and first.startswith("1-")
    assert cache_scope(loaded_store) == f"{dataset}~{first}"

    second = await loaded_store.pin_default_funnel(("home", "payment"))
    assert await loaded_store.default_funnel() == ["home", "payment"]
    assert second.startswith("2-") and second != first
    assert cache_scope(loaded_store) == f"{dataset}~{second}"


async def test_no_row_answers_for_the_old_steps(loaded_store: DocumentStore) -> None:
    # The fixture's rows are of home > search (tests/contract/fixture_data.py): six of them.
    assert len(await loaded_store.funnel_analytics(None, None, None)) == 6
    await loaded_store.pin_default_funnel(NEW)
    rows = await loaded_store.funnel_analytics(None, None, None)
    # Dropped; the embedded store may have computed rows of the new steps again at the read (it keeps
    # the default's rows current), never of home > search.
    assert all(NEW[row["step_index"]] == row["funnel_step"] for row in rows), rows


async def test_none_goes_back_to_the_derived_default(loaded_store: DocumentStore) -> None:
    await loaded_store.pin_default_funnel(NEW)
    assert await default_funnel.resolve(loaded_store) == DefaultFunnel(tuple(NEW), derived=False)
    cleared = await loaded_store.pin_default_funnel(None)
    assert cleared.startswith("2-")
    assert await loaded_store.default_funnel() is None
    derived = await default_funnel.resolve(loaded_store)
    assert derived is not None and derived.derived


@pytest.mark.parametrize("steps", [[], ["home", ""], ["home", 3]])
async def test_bad_steps_change_nothing(loaded_store: DocumentStore, steps: list[Any]) -> None:
    with pytest.raises(BadInput):
        await loaded_store.pin_default_funnel(steps)
    assert revision(loaded_store) == ""
    assert await loaded_store.default_funnel() is None


async def test_another_store_on_the_same_data_sees_the_revision(store: DocumentStore) -> None:
    pinned = await store.pin_default_funnel(NEW)
    if store.name == "duckdb":  # one process serves the file: the revision is in it for the next one
        from gateway.stores.duckdb.store import DuckDBStore

        path = store.path  # type: ignore[attr-defined]
        await store.close()
        other: Any = await DuckDBStore.open(path)
    else:  # another gateway: its follower reads the active document (here at once)
        from gateway.stores.mongo.store import MongoStore

        other = MongoStore.from_database(store.raw_database)  # type: ignore[attr-defined]
        await other.refresh_generation()
    try:
        assert other.default_revision == pinned
        assert await other.default_funnel() == NEW
        if store.name != "duckdb":
            # A read of the active document issued before the pin and answered after it: ignored.
            other.set_generation(other.generation, other.dataset, "")
            assert other.default_revision == pinned
    finally:
        await other.close()


async def test_a_new_generation_has_its_own_default_and_no_revision(loaded_store: DocumentStore) -> None:
    await loaded_store.pin_default_funnel(NEW)
    build = await loaded_store.begin_build()  # type: ignore[attr-defined]
    try:
        await build.carry_over(set())  # every user kept, as a re-ingest naming none would
        new = await build.seal()
        await new.set_default_funnel(["home", "search"])  # the ingest's own default
        await build.activate()
        await build.retire(0)
    except BaseException:
        await build.abandon()
        raise
    assert str(getattr(loaded_store, "dataset", "")) == build.dataset
    assert revision(loaded_store) == ""
    assert cache_scope(loaded_store) == build.dataset
    assert await loaded_store.default_funnel() == ["home", "search"]
    again = await loaded_store.pin_default_funnel(NEW)  # the new generation's first pin
    assert again.startswith("1-")


async def test_a_pin_that_fails_half_way_serves_no_new_steps_under_the_old_scope(
    loaded_store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The steps are written, then deleting the rows fails: the collection the adapter deletes them from
    # is renamed to one no store has (DuckDB: no such table; MongoDB: "$" is not allowed in a name).
    await loaded_store.pin_default_funnel(NEW)
    scope = cache_scope(loaded_store)
    package = {"duckdb": "duckdb", "mongodb": "mongo"}[loaded_store.name]
    served = importlib.import_module(f"gateway.stores.{package}.served")
    monkeypatch.setattr(served, "FUNNEL_ANALYTICS", "no$such_rows")
    with pytest.raises(Exception):  # noqa: B017 -- whatever the adapter says of it, it raises
        await loaded_store.pin_default_funnel(["home", "payment"])
    monkeypatch.undo()

    steps = await loaded_store.default_funnel()
    assert steps in (NEW, ["home", "payment"])
    assert steps == NEW or cache_scope(loaded_store) != scope, (steps, cache_scope(loaded_store))
    # A retry pins the steps it asked for.
    retried = await loaded_store.pin_default_funnel(["home", "payment"])
    assert await loaded_store.default_funnel() == ["home", "payment"]
    assert cache_scope(loaded_store).endswith(f"~{retried}") and cache_scope(loaded_store) != scope
