"""The embedded store's register of event ids (gateway/stores/duckdb/event_ids.py): equal to the ids
of page_visits and user_interactions after every write path, and built for files made without it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from gateway.models import EventBatch, WriteResult
from gateway.stores.duckdb import event_ids
from gateway.stores.duckdb.store import DuckDBStore
from tests.stores.test_duckdb_store import interaction, user, visit


async def registered(store: DuckDBStore) -> set[str]:
    rows = await store.connection.run(
        "read", lambda cur: cur.execute("SELECT event_id FROM event_ids").fetchall()
    )
    return {event_id for (event_id,) in rows}


def live(*visits: str, interactions: tuple[str, ...] = (), uid: int = 7) -> EventBatch:
    return EventBatch(
        visits=[visit(e, uid, seconds=n) for n, e in enumerate(visits)],
        interactions=[interaction(e, uid) for e in interactions],
        sessions=[{"session_id": f"s{uid}", "user_id": uid, "device": "desktop"}],
        users=[user(uid)],
    )


async def test_every_write_path_keeps_the_register_equal_to_the_stored_ids(store: DuckDBStore) -> None:
    await store.insert_many("page_visits", [visit("a", 1), visit("b", 1, seconds=1)])
    await store.insert_many("user_interactions", [interaction("c", 1), interaction("d", 2)])
    assert await store.record_events(live("e", interactions=("f",))) == ["e", "f"]
    assert await registered(store) == {"a", "b", "c", "d", "e", "f"}
    # Stored through insert_many as an interaction: a live visit with its id is a duplicate.
    assert await store.record_events(live("d")) == []
    await store.upsert_many("page_visits", [visit("b", 1, page="search", seconds=1)])  # changed: replaced
    assert await registered(store) == {"a", "b", "c", "d", "e", "f"}
    assert await store.delete_users([1]) == 0  # no user document, only history
    assert await registered(store) == {"d", "e", "f"}
    # Deleted, the id is free again: the same event sent anew is stored.
    assert await store.record_events(live("a", uid=8)) == ["a"]
    assert await registered(store) == {"a", "d", "e", "f"}


async def test_a_bulk_delete_unregisters_the_ids(store: DuckDBStore) -> None:
    visits = [visit(f"v{uid}-{n}", uid, seconds=n) for uid in range(1, 401) for n in range(10)]
    await store.insert_many("page_visits", visits)
    await store.delete_users(list(range(1, 400)))  # 3,990 rows: the bulk path, indexes dropped and built
    assert await registered(store) == {f"v400-{n}" for n in range(10)}
    assert await store.record_events(live("v400-3", uid=9)) == []
    assert await store.record_events(live("v1-3", uid=9)) == ["v1-3"]


async def test_a_file_made_before_the_register_gets_it_filled(tmp_path: Path) -> None:
    path = tmp_path / "older.duckdb"
    store = await DuckDBStore.open(path)
    try:
        await store.insert_many("page_visits", [visit("a", 1), visit("both", 1, seconds=1)])
        await store.insert_many("user_interactions", [interaction("c", 1)])
    finally:
        await store.close()
    with duckdb.connect(str(path)) as con:  # as an older version left it: no register, an id twice
        con.execute("DROP TABLE event_ids")
        con.execute(
            "INSERT INTO user_interactions (event_id, user_id, session_id, page_type, interaction_type) "
            "VALUES ('both', 1, 's1', 'search', 'click')"
        )
    store = await DuckDBStore.open(path)
    try:
        assert await registered(store) == {"a", "both", "c"}
        assert await store.record_events(live("c", interactions=("a",))) == []
        assert await store.count("page_visits") == 2
    finally:
        await store.close()


async def test_an_ingested_generation_registers_its_ids(tmp_path: Path) -> None:
    from gateway.jobs.ingest import ingest_directory
    from tests.ingest.conftest import fixture_dir

    store = await DuckDBStore.open(tmp_path / "ingested.duckdb")
    try:
        await ingest_directory(store, fixture_dir("clean"))

        def ids(cur: duckdb.DuckDBPyConnection) -> list[tuple[str]]:
            return cur.execute(
                "SELECT event_id FROM page_visits UNION ALL SELECT event_id FROM user_interactions"
            ).fetchall()

        stored = [event_id for (event_id,) in await store.connection.run("ids", ids)]
        assert stored and len(stored) == len(set(stored))
        assert await registered(store) == set(stored)
        assert await store.record_events(live(interactions=(stored[0],))) == []
    finally:
        await store.close()


async def test_a_generic_insert_skips_an_id_the_other_table_holds(store: DuckDBStore) -> None:
    # The register is the event tables' key: insert_many counts an interaction with a stored visit's
    # id as a duplicate, as it counts a stored interaction's.
    await store.insert_many("page_visits", [visit("a", 1)])
    assert await store.insert_many(
        "user_interactions", [interaction("a", 1), interaction("b", 1)]
    ) == WriteResult(written=1, duplicates=1)
    assert (await store.count("page_visits"), await store.count("user_interactions")) == (1, 1)
    assert await registered(store) == {"a", "b"}


async def test_a_register_out_of_step_or_without_its_key_is_mended_on_open(tmp_path: Path) -> None:
    path = tmp_path / "mended.duckdb"
    store = await DuckDBStore.open(path)
    try:
        await store.record_events(live("a", "b", interactions=("c",)))
    finally:
        await store.close()
    with duckdb.connect(str(path)) as con:  # a version before the register deleted "b" and added "d"
        con.execute("DELETE FROM page_visits WHERE event_id = 'b'")
        con.execute(
            "INSERT INTO user_interactions (event_id, user_id, session_id, page_type, interaction_type) "
            "VALUES ('d', 7, 's7', 'search', 'click'), ('e', 7, 's7', 'search', 'click')"
        )
        con.execute("DROP INDEX event_ids__event_id")
    store = await DuckDBStore.open(path)
    try:
        assert await registered(store) == {"a", "c", "d", "e"}
        assert await store.record_events(live("e", "b")) == ["b"]  # e is stored; b is free again
        assert (await store.count("page_visits"), await store.count("user_interactions")) == (2, 3)
    finally:
        await store.close()


def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """Spy on the register's build: the list grows by one per build."""
    builds: list[None] = []
    real = event_ids.build

    def spy(cur: duckdb.DuckDBPyConnection) -> None:
        builds.append(None)
        real(cur)

    monkeypatch.setattr(event_ids, "build", spy)
    return builds


async def file_with_an_id_in_both_tables(path: Path) -> Path:
    """A file as a version before the register left it: "both" is a visit of user 2 and an interaction
    of user 2; "a" a visit and "c" an interaction of user 1. Its register is built at its next open."""
    store = await DuckDBStore.open(path)
    try:
        await store.insert_many("page_visits", [visit("a", 1), visit("both", 2, seconds=1)])
        await store.insert_many("user_interactions", [interaction("c", 1)])
    finally:
        await store.close()
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE event_ids")
        con.execute(
            "INSERT INTO user_interactions (event_id, user_id, session_id, page_type, interaction_type) "
            "VALUES ('both', 2, 's2', 'search', 'click')"
        )
    return path


async def test_a_file_holding_an_id_in_both_tables_builds_its_register_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await file_with_an_id_in_both_tables(tmp_path / "shared.duckdb")
    builds = count_builds(monkeypatch)
    for opening in range(2):
        store = await DuckDBStore.open(path)
        try:
            assert await registered(store) == {"a", "both", "c"}
            assert len(builds) == 1, f"opening {opening}"
        finally:
            await store.close()
    store = await DuckDBStore.open(path)
    try:
        # Replays of either type of every stored id are refused; a new id is stored.
        assert await store.record_events(live("both", "c", interactions=("a", "both"))) == []
        assert await store.record_events(live("d")) == ["d"]
    finally:
        await store.close()
    # Its counts changed: the register is compared with the tables' ids, found right, not built.
    for _ in range(2):
        store = await DuckDBStore.open(path)
        try:
            assert len(builds) == 1
            assert await registered(store) == {"a", "both", "c", "d"}
            assert await store.record_events(live(interactions=("d",), uid=9)) == []
            assert (await store.count("page_visits"), await store.count("user_interactions")) == (3, 2)
        finally:
            await store.close()


async def test_a_file_that_no_longer_holds_an_id_in_both_tables_opens_without_a_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await file_with_an_id_in_both_tables(tmp_path / "shared.duckdb")
    store = await DuckDBStore.open(path)
    try:
        assert await store.delete_users([2]) == 0  # "both", from both tables
        assert await registered(store) == {"a", "c"}
    finally:
        await store.close()
    builds = count_builds(monkeypatch)
    for _ in range(2):
        store = await DuckDBStore.open(path)
        try:
            assert await registered(store) == {"a", "c"}
            assert await store.record_events(live(interactions=("both",))) == ["both"]  # free again
            await store.delete_users([7])
        finally:
            await store.close()
    assert builds == []


@pytest.mark.parametrize(
    ("written", "expected", "stored_again", "free_again"),
    [
        # The register lost "c" (its count changed: 2 ids for 4 rows).
        ("DELETE FROM event_ids WHERE event_id = 'c'", {"a", "both", "c"}, "c", None),
        # A version before the register stored "x" without registering it.
        (
            "INSERT INTO user_interactions (event_id, user_id, session_id, page_type, interaction_type) "
            "VALUES ('x', 1, 's1', 'search', 'click')",
            {"a", "both", "c", "x"},
            "x",
            None,
        ),
        # The register holds "zzz", which no table holds (4 ids for 4 rows: equal counts).
        ("INSERT INTO event_ids VALUES ('zzz')", {"a", "both", "c"}, "a", "zzz"),
        # A version before the register deleted "a" and left it registered (3 ids for 3 rows).
        ("DELETE FROM page_visits WHERE event_id = 'a'", {"both", "c"}, "c", "a"),
        # The register lost its key (a file from before it had one): an id could be held twice, not compared.
        ("DROP INDEX event_ids__event_id", {"a", "both", "c"}, "both", None),
    ],
)
async def test_a_checked_register_gone_wrong_is_built_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    written: str,
    expected: set[str],
    stored_again: str,
    free_again: str | None,
) -> None:
    path = await file_with_an_id_in_both_tables(tmp_path / "shared.duckdb")
    await (await DuckDBStore.open(path)).close()  # built, its counts recorded
    with duckdb.connect(str(path)) as con:
        con.execute(written)
    builds = count_builds(monkeypatch)
    store = await DuckDBStore.open(path)
    try:
        assert await registered(store) == expected
        assert len(builds) == 1
        assert await store.record_events(live(stored_again, uid=9)) == []
        if free_again is not None:
            assert await store.record_events(live(free_again, uid=9)) == [free_again]
    finally:
        await store.close()
