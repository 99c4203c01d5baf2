"""Deleting events on the embedded store (gateway/stores/duckdb/writes.py, event_ids.py): the register
of event ids loses exactly the deleted rows' ids -- but keeps one that an event table still holds, which
only a file written before the register can have --, its key is built again only when it loses many of
its ids, and a delete that fails changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from gateway.models import WriteResult
from gateway.stores.duckdb import event_ids
from gateway.stores.duckdb.store import DuckDBStore
from tests.stores.test_duckdb_event_ids import live, registered
from tests.stores.test_duckdb_store import interaction, visit


async def stored(store: DuckDBStore) -> set[str]:
    """The ids the event tables hold, read straight from them."""
    sql = "SELECT event_id FROM page_visits UNION ALL SELECT event_id FROM user_interactions"
    rows = await store.connection.run("read", lambda cur: cur.execute(sql).fetchall())
    return {event_id for (event_id,) in rows}


def raw_interaction(event_id: str, uid: int) -> str:
    return (
        "INSERT INTO user_interactions (event_id, user_id, session_id, page_type, interaction_type) "
        f"VALUES ('{event_id}', {uid}, 's{uid}', 'search', 'click')"
    )


async def older_file(
    path: Path, visits: list[dict[str, Any]], interactions: list[dict[str, Any]], shared: list[str]
) -> None:
    """A file as a version before the register left it: no register, and ``shared`` (each an
    ``INSERT`` of an interaction) giving an id to both tables."""
    store = await DuckDBStore.open(path)
    try:
        await store.insert_many("page_visits", visits)
        if interactions:
            await store.insert_many("user_interactions", interactions)
    finally:
        await store.close()
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE event_ids")
        for sql in shared:
            con.execute(sql)


async def test_a_deleted_visit_keeps_its_id_registered_while_an_interaction_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "older.duckdb"
    visits = [visit("a", 1), visit("both", 1, seconds=1), visit("x", 2)]
    await older_file(path, visits, [interaction("c", 1), interaction("d", 2)], [raw_interaction("both", 2)])
    store = await DuckDBStore.open(path)
    try:
        assert await registered(store) == {"a", "both", "x", "c", "d"}
        # User 1's visits a and both, and interaction c; user 2's interaction both stays.
        assert await store.delete_users([1]) == 0  # no user document, only history
        assert await stored(store) == {"both", "x", "d"}
        assert await registered(store) == {"both", "x", "d"}
        assert await store.record_events(live("both")) == []  # still stored: a duplicate
        await store.delete_users([2])
        assert await stored(store) == set()
        assert await registered(store) == set()
        assert await store.record_events(live("both")) == ["both"]  # free again
    finally:
        await store.close()


async def test_an_id_deleted_from_both_tables_at_once_is_unregistered(tmp_path: Path) -> None:
    path = tmp_path / "older.duckdb"
    visits = [visit("a", 1), visit("both", 1, seconds=1), visit("x", 2)]
    await older_file(path, visits, [interaction("d", 2)], [raw_interaction("both", 1)])
    store = await DuckDBStore.open(path)
    try:
        await store.delete_users([1])
        assert await registered(store) == {"x", "d"}
        assert await store.record_events(live(interactions=("both",))) == ["both"]
        assert await registered(store) == {"x", "d", "both"}
    finally:
        await store.close()


async def test_an_interaction_whose_id_a_visit_also_holds_is_left_as_it_is(tmp_path: Path) -> None:
    # An older file holds "both" in both tables. An upsert of the interaction (other values) is an event
    # under an id a visit holds: left out, counted as a duplicate, and it deletes nothing. (It used to
    # delete the stored interaction, then find the id registered and insert nothing: the row was lost
    # while the upsert said it was written.)
    path = tmp_path / "older.duckdb"
    await older_file(path, [visit("both", 1), visit("x", 1, seconds=1)], [], [raw_interaction("both", 2)])
    store = await DuckDBStore.open(path)
    try:
        before = await store.interactions_by_user_ids([2])
        result = await store.upsert_many("user_interactions", [interaction("both", 2)])
        assert result == WriteResult(written=0, duplicates=1)
        assert (await store.count("page_visits"), await store.count("user_interactions")) == (2, 1)
        assert await store.interactions_by_user_ids([2]) == before
        assert await registered(store) == {"both", "x"}
    finally:
        await store.close()


async def test_a_large_delete_in_an_older_file_keeps_an_id_the_other_table_holds(tmp_path: Path) -> None:
    path = tmp_path / "older.duckdb"
    visits = [visit(f"v{uid}-{n}", uid, seconds=n) for uid in range(1, 401) for n in range(10)]
    await older_file(path, visits, [], [raw_interaction("v1-3", 999)])
    store = await DuckDBStore.open(path)
    try:
        # 3,990 of 4,000 visits, and of 4,000 registered ids.
        assert await store.delete_users(list(range(1, 400))) == 0
        expected = {f"v400-{n}" for n in range(10)} | {"v1-3"}
        assert await stored(store) == expected
        assert await registered(store) == expected
        assert await store.record_events(live("v1-3", uid=9)) == []  # the register still refuses it
        assert await store.record_events(live("v2-3", uid=9)) == ["v2-3"]
    finally:
        await store.close()


async def test_more_than_fifty_ids_leave_the_register(store: DuckDBStore) -> None:
    # 120 ids from 60 users: past the 50 keys DuckDB reads through an index, far from the bulk path.
    await store.insert_many("page_visits", [visit(f"v{uid}", uid) for uid in range(1, 101)])
    await store.insert_many("user_interactions", [interaction(f"i{uid}", uid) for uid in range(1, 101)])
    await store.delete_users(list(range(1, 61)))
    expected = {f"v{uid}" for uid in range(61, 101)} | {f"i{uid}" for uid in range(61, 101)}
    assert await stored(store) == expected
    assert await registered(store) == expected


async def test_a_delete_that_fails_changes_neither_table_nor_the_register(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.insert_many("page_visits", [visit("a", 1), visit("b", 2)])
    await store.insert_many("user_interactions", [interaction("c", 1), interaction("d", 2)])

    def fail(*args: Any) -> None:
        raise RuntimeError("the register's delete failed")

    monkeypatch.setattr(event_ids, "unregister", fail)  # after both tables' rows are deleted
    with pytest.raises(RuntimeError, match="register's delete failed"):
        await store.delete_users([1])
    assert (await store.count("page_visits"), await store.count("user_interactions")) == (2, 2)
    assert await registered(store) == {"a", "b", "c", "d"}
    assert await store.record_events(live("a", uid=9)) == []


async def test_an_upsert_unregisters_only_the_rows_it_replaces(store: DuckDBStore) -> None:
    await store.insert_many("page_visits", [visit("a", 1), visit("b", 1, seconds=1), visit("c", 2)])
    # a changed (replaced), b unchanged (not written), n new.
    changed = [visit("a", 1, page="search"), visit("b", 1, seconds=1), visit("n", 3)]
    await store.upsert_many("page_visits", changed)
    assert await registered(store) == {"a", "b", "c", "n"}
    assert await store.record_events(live("b", "c", uid=9)) == []
