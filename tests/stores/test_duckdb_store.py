"""DuckDB-specific behaviour of DuckDBStore: file lifecycle, threads and cursors, bulk writes and deletes,
value round trips, and the translation of every bad input or driver failure into the gateway's errors.
(The behaviour every adapter shares is in tests/contract/.)"""

from __future__ import annotations

import asyncio
import sys
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from gateway.errors import BadInput, DataDirLocked, StoreQueryFailed, StoreUnavailable
from gateway.models import (
    Breakdown,
    FunnelQuery,
    IndexSpec,
    StepOrder,
    UserFilter,
    UserPage,
    WriteResult,
)
from gateway.stores.collections import COLLECTIONS
from gateway.stores.contracts import DocumentStore
from gateway.stores.duckdb import connection as duckdb_connection
from gateway.stores.duckdb import schema as duckdb_schema
from gateway.stores.duckdb import writes as duckdb_writes
from gateway.stores.duckdb.store import DuckDBStore

T0 = datetime(2015, 3, 2, 9, 0, 0)


def user(uid: int, device: str | None = "desktop", **attributes: Any) -> dict[str, Any]:
    return {
        "user_id": uid,
        "device": device,
        "sex": "female",
        "date": date(2015, 3, 2),
        "attributes": attributes,
    }


def visit(event_id: str, uid: int, page: str = "home", seconds: int = 0, **extra: Any) -> dict[str, Any]:
    doc = {
        "event_id": event_id,
        "user_id": uid,
        "session_id": f"s{uid}",
        "page_type": page,
        "timestamp": T0 + timedelta(seconds=seconds),
        "duration": 2.5,
        "device": "desktop",
    }
    return doc | extra


def session(session_id: str, uid: int) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "user_id": uid,
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=90),
        "device": "mobile",
        "pages_visited": ["home", "search"],
        "total_interactions": 3,
        "converted": True,
        "conversion_value": 19.99,
    }


def interaction(event_id: str, uid: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": uid,
        "session_id": f"s{uid}",
        "page_type": "search",
        "interaction_type": "form",
        "element": "search-box",
        "timestamp": T0 + timedelta(seconds=5),
        "coordinates": {"x": 10, "y": 20},
        "value": "blue shoes",
        "free_text": True,
    }


def duckdb_pairs() -> dict[str, set[tuple[tuple[str, ...], bool]]]:
    """DuckDB's indexes: the keys, and the columns rows are looked up by (schema.LOOKUP_COLUMNS)."""
    return {
        "users": {(("user_id",), True)},
        "page_visits": {(("event_id",), True), (("user_id",), False), (("session_id",), False)},
        "user_interactions": {(("event_id",), True), (("user_id",), False), (("session_id",), False)},
        "user_sessions": {(("session_id",), True), (("user_id",), False)},
        "funnel_analytics": {(("date", "device", "funnel_step"), True)},
        "funnel_definitions": {(("name",), True)},
    }


# The names too: a kept index under an unexpected name would be dropped and built again at every start.
# The event tables' key is the register's index over both (event_ids__event_id).
DUCKDB_INDEX_NAMES = {
    "users__user_id", "page_visits__user_id", "page_visits__session_id",
    "user_interactions__user_id", "user_interactions__session_id",
    "user_sessions__session_id", "user_sessions__user_id", "funnel_analytics__date__device__funnel_step",
    "funnel_definitions__name", "event_ids__event_id",
}  # fmt: skip

# What versions before 2026-12-03 made besides the keys (the design's indexes, named table__columns),
# and the event tables' own keys, which the register replaced.
OLDER_INDEXES = {
    "page_visits__event_id": ("page_visits", "event_id"),
    "user_interactions__event_id": ("user_interactions", "event_id"),
    "users__device": ("users", "device"),
    "users__sex": ("users", "sex"),
    "users__date": ("users", '"date"'),
    "page_visits__user_id__timestamp": ("page_visits", 'user_id, "timestamp"'),
    "page_visits__session_id": ("page_visits", "session_id"),
    "page_visits__page_type__timestamp": ("page_visits", 'page_type, "timestamp"'),
    "page_visits__page_type__device__timestamp": ("page_visits", 'page_type, device, "timestamp"'),
    "user_interactions__user_id__session_id": ("user_interactions", "user_id, session_id"),
    "user_interactions__session_id__timestamp": ("user_interactions", 'session_id, "timestamp"'),
    "user_interactions__page_type__interaction_type__timestamp": (
        "user_interactions", 'page_type, interaction_type, "timestamp"'
    ),
    "user_sessions__user_id__start_time": ("user_sessions", "user_id, start_time"),
    "user_sessions__start_time": ("user_sessions", "start_time"),
    "user_sessions__device__start_time": ("user_sessions", "device, start_time"),
}  # fmt: skip


def index_names(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {row[0] for row in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    finally:
        con.close()


def existing_pairs(found: dict[str, list[IndexSpec]]) -> dict[str, set[tuple[tuple[str, ...], bool]]]:
    return {c: {(s.keys, s.unique) for s in found.get(c, [])} for c in COLLECTIONS}


# -- lifecycle ----------------------------------------------------------------------------------------


async def test_open_creates_the_file_and_satisfies_the_protocol(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "f.duckdb"
    opened = await DuckDBStore.open(path)
    try:
        assert path.exists()
        assert isinstance(opened, DocumentStore)
        assert opened.name == "duckdb"
    finally:
        await opened.close()


async def test_reads_before_ensure_indexes_see_an_empty_store(tmp_path: Path) -> None:
    opened = await DuckDBStore.open(tmp_path / "fresh.duckdb")
    try:
        assert await opened.count("page_visits") == 0
        assert await opened.users_by_ids([1]) == [None]
        assert await opened.default_funnel() is None
        # writes work too: the unique key exists from the first call on, duplicates are still caught
        assert await opened.insert_many("users", [user(1), user(1)]) == WriteResult(written=1, duplicates=1)
    finally:
        await opened.close()


async def test_ensure_indexes_twice_gives_exactly_duckdbs_indexes(store: DuckDBStore) -> None:
    await store.ensure_indexes()
    assert existing_pairs(await store.indexes()) == duckdb_pairs()


async def test_ensure_indexes_drops_the_indexes_an_older_version_made(tmp_path: Path) -> None:
    # A file made before DuckDB kept its own indexes holds the design's: those DuckDB never reads go,
    # the one it does (page_visits__session_id) stays, the data stays, the keys still refuse duplicates,
    # and an index on a table that is no collection's is none of ensure_indexes' business.
    path = tmp_path / "older.duckdb"
    first = await DuckDBStore.open(path)
    await first.insert_many("page_visits", [visit("v1", 1), visit("v2", 2)])
    await first.close()
    con = duckdb.connect(str(path))
    for name, (table, columns) in OLDER_INDEXES.items():
        con.execute(f'CREATE INDEX "{name}" ON "{table}" ({columns})')
    con.execute("CREATE TABLE notes (id INTEGER, body VARCHAR)")
    con.execute("CREATE INDEX notes__body ON notes (body)")
    con.close()
    assert index_names(path) >= set(OLDER_INDEXES)

    second = await DuckDBStore.open(path)
    try:
        await second.ensure_indexes()
        assert existing_pairs(await second.indexes()) == duckdb_pairs()
        assert await second.visits_by_user_ids([1, 2]) == [[visit("v1", 1)], [visit("v2", 2)]]
        assert await second.insert_many("page_visits", [visit("v1", 1)]) == WriteResult(0, 1)
    finally:
        await second.close()
    assert index_names(path) == DUCKDB_INDEX_NAMES | {"notes__body"}


async def test_an_ingested_generation_has_the_keys_and_lookup_indexes(tmp_path: Path) -> None:
    from gateway.jobs.ingest import ingest_directory
    from tests.ingest.conftest import fixture_dir

    path = tmp_path / "ingested.duckdb"
    opened = await DuckDBStore.open(path)
    try:
        await ingest_directory(opened, fixture_dir("clean"))  # a new generation: indexes built at the end
        assert existing_pairs(await opened.indexes()) == duckdb_pairs()
        assert await opened.count("page_visits") > 0
    finally:
        await opened.close()
    assert index_names(path) == DUCKDB_INDEX_NAMES


async def test_a_few_sessions_visits_are_read_through_the_session_index(store: DuckDBStore) -> None:
    # DuckDB reads a single-column index for IN (SELECT unnest(...)) of up to 50 keys: the lookups'
    # form (lookups.py), here written out by hand. Without the index the plan is a sequential scan.
    await store.insert_many("page_visits", [visit(f"v{n}", n % 40, seconds=n) for n in range(3000)])
    sql = (
        "EXPLAIN ANALYZE SELECT * FROM page_visits "
        "WHERE session_id IN (SELECT unnest(CAST($keys AS VARCHAR[])))"
    )

    def plan(cur: Any) -> str:
        return "".join(str(row[1]) for row in cur.execute(sql, {"keys": ["s1", "s2"]}).fetchall())

    assert "Index Scan" in await store._db.run("explain", plan)


async def test_reopening_the_file_keeps_data_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "keep.duckdb"
    docs = {
        "users": [user(1, source="seo", tags=["a", "b"], nested={"k": 1.5})],
        "page_visits": [visit("v1", 1)],
        "user_sessions": [session("s1", 1)],
        "user_interactions": [interaction("i1", 1)],
    }
    first = await DuckDBStore.open(path)
    await first.ensure_indexes()
    for collection, documents in docs.items():
        await first.insert_many(collection, documents)
    await first.set_default_funnel(["home", "search"])
    await first.close()

    second = await DuckDBStore.open(path)
    try:
        assert await second.users_by_ids([1]) == docs["users"]
        assert await second.visits_by_user_ids([1]) == [docs["page_visits"]]
        assert await second.sessions_by_ids(["s1"]) == docs["user_sessions"]
        assert await second.interactions_by_session_ids(["s1"]) == [docs["user_interactions"]]
        assert await second.default_funnel() == ["home", "search"]
        assert existing_pairs(await second.indexes()) == duckdb_pairs()
    finally:
        await second.close()


async def test_close_is_idempotent_and_later_calls_are_unavailable(tmp_path: Path) -> None:
    opened = await DuckDBStore.open(tmp_path / "c.duckdb")
    await opened.ping()
    await opened.close()
    await opened.close()
    with pytest.raises(StoreUnavailable):
        await opened.ping()
    with pytest.raises(StoreUnavailable):
        await opened.users_by_ids([1])


async def test_a_statement_duckdb_refuses_is_a_query_failure_logged_with_its_details(
    store: DuckDBStore, caplog: pytest.LogCaptureFixture
) -> None:
    # SQL the adapter built wrongly (a binder error) is neither the caller's fault nor an outage:
    # StoreQueryFailed, as MongoDB's refusals, the details in the log only. Memory runs out for the whole
    # process, shared by every request, so a retry may pass: StoreUnavailable (503 "retry" on /events).
    def unknown_column(cur: duckdb.DuckDBPyConnection) -> Any:
        return cur.execute("SELECT no_such_column FROM users").fetchall()

    with caplog.at_level("ERROR", logger="funnelgate.duckdb"), pytest.raises(StoreQueryFailed) as refused:
        await store.connection.run("read users", unknown_column)
    assert isinstance(refused.value.__cause__, duckdb.BinderException)
    assert "no_such_column" not in str(refused.value)
    assert "read users" in str(refused.value)
    assert any("no_such_column" in r.getMessage() for r in caplog.records)

    def distinct_millions(cur: duckdb.DuckDBPyConnection) -> Any:
        cur.execute("SET memory_limit = '1MB'").fetchall()
        try:
            return cur.execute("SELECT count(DISTINCT i) FROM range(5000000) t(i)").fetchall()
        finally:
            cur.execute("RESET memory_limit").fetchall()

    with pytest.raises(StoreUnavailable) as limited:
        await store.connection.run("count", distinct_millions)
    assert isinstance(limited.value.__cause__, duckdb.OutOfMemoryException)


async def test_calls_run_in_worker_threads_with_one_cursor_each(store: DuckDBStore) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    db = store._db
    original = db._cursor

    def spying_cursor() -> duckdb.DuckDBPyConnection:
        seen.append(threading.get_ident())
        return original()

    db._cursor = spying_cursor  # type: ignore[method-assign]
    await asyncio.gather(*(store.count("users") for _ in range(20)))
    assert len(seen) == 20 and loop_thread not in seen
    assert len(db._cursors) == len(set(map(id, db._cursors))) <= duckdb_connection.WORKERS


# -- concurrency ----------------------------------------------------------------------------------------


async def test_many_concurrent_reads_and_writes(store: DuckDBStore) -> None:
    await store.insert_many("users", [user(uid) for uid in range(1, 41)])
    await store.insert_many("page_visits", [visit(f"base{uid}", uid) for uid in range(1, 41)])

    async def write_visits(uid: int) -> WriteResult:
        return await store.insert_many(
            "page_visits", [visit(f"w{uid}-{n}", uid, "search", 10 + n) for n in range(5)]
        )

    async def upsert_user(uid: int) -> WriteResult:
        return await store.upsert_many("users", [user(uid, device="mobile")])

    query = FunnelQuery(steps=("home", "search"))
    calls = (
        [write_visits(uid) for uid in range(1, 31)]
        + [upsert_user(uid) for uid in range(1, 21)]
        + [store.delete_users([uid]) for uid in range(31, 41)]
        + [store.users_by_ids(list(range(1, 41))) for _ in range(30)]
        + [store.funnel(query) for _ in range(20)]
        + [store.count("page_visits") for _ in range(20)]
    )
    results = await asyncio.gather(*calls)
    assert results[:30] == [WriteResult(written=5)] * 30
    assert results[50:60] == [1] * 10  # each delete removed its user
    # the end state whatever the interleaving: users 31..40 deleted with all their visits; 1..20 upserted;
    # 1..30 have their base visit and five more
    assert await store.count("users") == 30
    assert await store.count("page_visits") == 30 * 6
    devices = [u and u["device"] for u in await store.users_by_ids(list(range(1, 31)))]
    assert devices == ["mobile"] * 20 + ["desktop"] * 10
    funnel = await store.funnel(query)
    assert [s.users for s in funnel.steps] == [30, 30]


# -- bulk writes and deletes --------------------------------------------------------------------------------


async def test_insert_counts_duplicates_within_and_across_batches(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duckdb_writes, "WRITE_BATCH", 3)
    await store.insert_many("page_visits", [visit("old", 1, duration=1.0)])
    docs = [
        visit("a", 1, duration=1.0),
        visit("a", 1, duration=2.0),  # repeat inside the first batch: the first one wins
        visit("b", 1),
        visit("old", 1, duration=9.0),  # already stored
        visit("c", 1),
        visit("b", 1, duration=7.0),  # repeat of a key written by an earlier batch
        visit("d", 1),
    ]
    assert await store.insert_many("page_visits", docs) == WriteResult(written=4, duplicates=3)
    stored = {v["event_id"]: v["duration"] for v in (await store.visits_by_user_ids([1]))[0]}
    assert stored == {"old": 1.0, "a": 1.0, "b": 2.5, "c": 2.5, "d": 2.5}


async def test_upsert_replaces_whole_documents_including_indexed_fields(store: DuckDBStore) -> None:
    await store.insert_many("page_visits", [visit("v1", 1), visit("v2", 1), visit("v3", 1)])
    moved = visit("v1", 2, "search", 60)  # new user, session, page and time: every index changes
    same = visit("v2", 1)
    result = await store.upsert_many(
        "page_visits", [moved, same, visit("v3", 1, duration=1.0), visit("v3", 1, duration=3.0)]
    )
    assert result == WriteResult(written=4)
    by_user = await store.visits_by_user_ids([1, 2])
    assert by_user == [[same, visit("v3", 1, duration=3.0)], [moved]]  # repeats: the last one wins
    assert await store.visits_by_session_ids(["s2"]) == [[moved]]
    assert await store.count("page_visits") == 3


async def test_a_delete_keeps_the_indexes_and_the_unique_key(store: DuckDBStore) -> None:
    visits = [visit(f"v{uid}-{n}", uid, seconds=n) for uid in range(1, 41) for n in range(10)]
    await store.insert_many("users", [user(uid) for uid in range(1, 41)])
    await store.insert_many("page_visits", visits)
    assert await store.delete_users(list(range(1, 40))) == 39
    assert await store.count("page_visits") == 10
    assert await store.count("users") == 1
    assert existing_pairs(await store.indexes()) == duckdb_pairs()
    assert await store.insert_many("page_visits", visits[-10:]) == WriteResult(written=0, duplicates=10)
    assert await store.insert_many("page_visits", visits[:1]) == WriteResult(written=1)  # its id left too
    assert await store.delete_users([40, 40, 12345]) == 1
    assert await store.count("page_visits") == 1


async def test_a_large_delete_beside_an_open_read_leaves_every_key_usable(store: DuckDBStore) -> None:
    # refreshAnalytics over 3,200 rows while another cursor's transaction is open (a dashboard's read,
    # the funnel index's build). With indexes dropped and built again around the delete, DuckDB 2.0.1
    # built the key over the deleted rows the reader could still see: the re-insert of the same keys was
    # refused ("Duplicate key"), every row was gone, and every later refresh failed the same way.
    day0 = date(2015, 1, 1)
    rows = [
        {"date": day0 + timedelta(days=d), "device": device, "funnel_step": f"s{s}", "step_index": s,
         "unique_users": 10, "conversion_rate": 0.5, "drop_off_rate": 0.5, "avg_time_spent": None,
         "median_time_to_convert": None}
        for d in range(400) for device in ("mobile", "desktop") for s in range(4)
    ]  # fmt: skip
    last = day0 + timedelta(days=399)
    assert await store.replace_funnel_analytics(day0, last, rows) == 3_200
    reader = store._db.dedicated_cursor()
    try:
        reader.begin()
        assert reader.execute("SELECT count(*) FROM funnel_analytics").fetchall() == [(3_200,)]
        assert await store.replace_funnel_analytics(day0, last, rows) == 3_200
        reader.commit()
    finally:
        reader.close()
    assert await store.count("funnel_analytics") == 3_200
    assert await store.replace_funnel_analytics(day0, last, rows[:8]) == 8  # keys still free to reuse
    assert await store.count("funnel_analytics") == 8


async def test_upsert_with_many_changed_rows(store: DuckDBStore) -> None:
    visits = [visit(f"v{n}", n % 50, seconds=n) for n in range(3000)]
    await store.insert_many("page_visits", visits)
    changed = [dict(v, duration=9.0) for v in visits]
    assert await store.upsert_many("page_visits", changed) == WriteResult(written=3000)
    assert await store.count("page_visits") == 3000
    got = await store.visits_by_user_ids([7])
    assert [v["duration"] for v in got[0]] == [9.0] * 60
    assert existing_pairs(await store.indexes()) == duckdb_pairs()


async def test_replace_funnel_analytics_deletes_the_range_only(store: DuckDBStore) -> None:
    def row(day: int, device: str, step: str) -> dict[str, Any]:
        return {
            "date": date(2015, 3, day),
            "device": device,
            "funnel_step": step,
            "step_index": 0,
            "unique_users": day,
            "conversion_rate": 1.0,
            "drop_off_rate": 0.0,
            "avg_time_spent": None,
        }

    await store.insert_many("funnel_analytics", [row(d, "desktop", "home") for d in range(1, 6)])
    assert (
        await store.replace_funnel_analytics(date(2015, 3, 2), date(2015, 3, 3), [row(2, "mobile", "home")])
        == 1
    )
    days = [(r["date"].day, r["device"]) for r in await store.funnel_analytics(None, None, None)]
    assert days == [(1, "desktop"), (2, "mobile"), (4, "desktop"), (5, "desktop")]


# -- values ---------------------------------------------------------------------------------------------


async def test_aware_datetimes_are_stored_as_naive_utc(store: DuckDBStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    await store.insert_many(
        "page_visits", [visit("tz", 1, timestamp=datetime(2015, 3, 2, 11, 0, tzinfo=plus_two))]
    )
    [[got]] = await store.visits_by_user_ids([1])
    assert got["timestamp"] == datetime(2015, 3, 2, 9, 0)
    assert got["timestamp"].tzinfo is None
    assert datetime(2015, 3, 2, 9, 0, tzinfo=UTC) == datetime(2015, 3, 2, 11, 0, tzinfo=plus_two)


async def test_missing_optional_fields_come_back_empty(store: DuckDBStore) -> None:
    await store.insert_many("users", [{"user_id": 5}])
    await store.insert_many("user_interactions", [{"event_id": "i", "user_id": 5, "session_id": "s5"}])
    await store.insert_many("user_sessions", [{"session_id": "s", "user_id": 5}])
    assert await store.users_by_ids([5]) == [
        {"user_id": 5, "device": None, "sex": None, "date": None, "attributes": {}}
    ]
    [[stored_interaction]] = await store.interactions_by_session_ids(["s5"])
    assert stored_interaction["coordinates"] is None and stored_interaction["value"] is None
    [stored_session] = await store.sessions_by_ids(["s"])
    assert stored_session is not None and stored_session["pages_visited"] == []


async def test_repeated_keys_get_independent_copies(store: DuckDBStore) -> None:
    await store.insert_many("users", [user(1, tags=["x"])])
    first, second = await store.users_by_ids([1, 1])
    assert first is not None and second is not None and first == second
    first["attributes"]["tags"].append("mutated")
    assert second["attributes"]["tags"] == ["x"]


# -- errors -------------------------------------------------------------------------------------------


BAD_CALLS: list[tuple[str, Any]] = [
    ("unknown collection insert", lambda s: s.insert_many("nope", [{}])),
    ("unknown collection upsert", lambda s: s.upsert_many("nope", [{}])),
    ("unknown collection count", lambda s: s.count("nope")),
    ("document not a mapping", lambda s: s.insert_many("users", [[1, 2]])),
    ("document without its key", lambda s: s.insert_many("users", [{"device": "x"}])),
    ("composite key incomplete", lambda s: s.upsert_many("funnel_analytics", [{"date": date(2015, 1, 1)}])),
    ("unhashable key", lambda s: s.insert_many("page_visits", [visit("x", 1) | {"event_id": ["a"]}])),
    ("attributes not a mapping", lambda s: s.insert_many("users", [user(1) | {"attributes": [1]}])),
    ("attributes not JSON", lambda s: s.insert_many("users", [user(1, when={1, 2})])),
    (
        "coordinates not a mapping",
        lambda s: s.insert_many("user_interactions", [interaction("i", 1) | {"coordinates": 3}]),
    ),
    ("user id not a number", lambda s: s.insert_many("users", [user(1), {"user_id": "abc"}])),
    ("timestamp not a time", lambda s: s.insert_many("page_visits", [visit("v", 1, timestamp="soon")])),
    ("user ids as strings", lambda s: s.users_by_ids(["1"])),
    ("user ids as bools", lambda s: s.visits_by_user_ids([True])),
    ("session ids as ints", lambda s: s.sessions_by_ids([1])),
    ("session ids as ints (visits)", lambda s: s.visits_by_session_ids([1])),
    ("session ids as ints (interactions)", lambda s: s.interactions_by_session_ids([1])),
    ("user ids as strings (sessions)", lambda s: s.sessions_by_user_ids(["1"])),
    ("user id beyond int64", lambda s: s.users_by_ids([2**70])),
    ("negative first", lambda s: s.list_users(UserFilter(), -1, None)),
    ("bool first", lambda s: s.list_users(UserFilter(), True, None)),
    ("cursor not an int", lambda s: s.list_users(UserFilter(), 5, "10")),
    (
        "inverted user range",
        lambda s: s.list_users(UserFilter(start=date(2015, 2, 1), end=date(2015, 1, 1)), 5, None),
    ),
    ("negative limit", lambda s: s.top_paths(-1, UserFilter())),
    (
        "inverted path range",
        lambda s: s.top_paths(5, UserFilter(start=date(2015, 2, 1), end=date(2015, 1, 1))),
    ),
    ("inverted dashboard range", lambda s: s.dashboard(date(2015, 2, 1), date(2015, 1, 1))),
    ("inverted analytics range", lambda s: s.funnel_analytics(date(2015, 2, 1), date(2015, 1, 1), None)),
    ("no steps", lambda s: s.funnel(FunnelQuery(steps=()))),
    ("empty step name", lambda s: s.funnel(FunnelQuery(steps=("home", "")))),
    ("step not a string", lambda s: s.funnel(FunnelQuery(steps=("home", 3)))),  # type: ignore[arg-type]
    ("repeated step", lambda s: s.funnel(FunnelQuery(steps=("home", "home")))),
    ("unknown order", lambda s: s.funnel(FunnelQuery(steps=("home",), order="sideways"))),  # type: ignore[arg-type]
    ("unknown breakdown", lambda s: s.funnel(FunnelQuery(steps=("home",), breakdown="age"))),  # type: ignore[arg-type]
    ("negative window", lambda s: s.funnel(FunnelQuery(steps=("home",), window_seconds=-1))),
    ("bool window", lambda s: s.funnel(FunnelQuery(steps=("home",), window_seconds=True))),
    (
        "inverted funnel range",
        lambda s: s.funnel(
            FunnelQuery(steps=("home",), filter=UserFilter(start=date(2015, 2, 1), end=date(2015, 1, 1)))
        ),
    ),
    ("unknown interval", lambda s: s.funnel_trend(FunnelQuery(steps=("home",)), "year")),
    ("step index too large", lambda s: s.funnel_users(FunnelQuery(steps=("home",)), 1, False, 5, None)),
    ("step index negative", lambda s: s.funnel_users(FunnelQuery(steps=("home",)), -1, False, 5, None)),
    ("step index a bool", lambda s: s.funnel_users(FunnelQuery(steps=("home", "x")), True, False, 5, None)),
    (
        "funnel users negative first",
        lambda s: s.funnel_users(FunnelQuery(steps=("home",)), 0, True, -3, None),
    ),
    ("funnel users bad cursor", lambda s: s.funnel_users(FunnelQuery(steps=("home",)), 0, True, 3, 1.5)),
    ("page type not a string", lambda s: s.form_texts(7, None)),
    ("replace with non-dates", lambda s: s.replace_funnel_analytics("2015-01-01", date(2015, 1, 2), [])),
    ("replace inverted", lambda s: s.replace_funnel_analytics(date(2015, 1, 2), date(2015, 1, 1), [])),
    ("default funnel empty", lambda s: s.set_default_funnel([])),
    ("default funnel non-string", lambda s: s.set_default_funnel(["home", 4])),
    ("delete ids as strings", lambda s: s.delete_users(["1"])),
]


@pytest.mark.parametrize("call", [c for _, c in BAD_CALLS], ids=[name for name, _ in BAD_CALLS])
async def test_bad_input_is_rejected(store: DuckDBStore, call: Any) -> None:
    with pytest.raises(BadInput):
        await call(store)


async def test_driver_conversion_errors_are_chained(store: DuckDBStore) -> None:
    with pytest.raises(BadInput) as caught:
        await store.insert_many("users", [{"user_id": "abc"}])
    assert isinstance(caught.value.__cause__, duckdb.Error)
    assert await store.count("users") == 0  # the failed batch wrote nothing


async def test_frame_building_errors_become_bad_input(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise ValueError("mixed columns")

    monkeypatch.setattr(duckdb_schema.pd, "DataFrame", refuse)
    with pytest.raises(BadInput, match="mixed columns"):
        await store.insert_many("users", [user(1)])


async def test_a_lost_connection_is_unavailable(tmp_path: Path) -> None:
    opened = await DuckDBStore.open(tmp_path / "lost.duckdb")
    try:
        await opened.ping()
        await opened.wait_for_funnel_index()  # its background build uses the connection too
        opened._db._con.close()  # the database goes away under the store's cursors
        with pytest.raises(StoreUnavailable) as caught:
            await opened.count("users")
        assert isinstance(caught.value.__cause__, duckdb.Error)
    finally:
        await opened.close()


async def test_opening_a_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        await DuckDBStore.open(tmp_path)
    assert isinstance(caught.value.__cause__, duckdb.Error)


async def test_opening_a_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.duckdb"
    path.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(StoreUnavailable):
        await DuckDBStore.open(path)


HOLD_FILE = (
    "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
)


async def test_a_file_held_by_another_process_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_FILE,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 60)).strip() == b"ready"
        with pytest.raises(DataDirLocked):
            await DuckDBStore.open(path)
    finally:
        holder.terminate()
        await holder.wait()


async def test_breakdown_and_strict_queries_run(store: DuckDBStore) -> None:
    # A smoke check of the less common SQL shapes on an empty store: every step empty, no groups.
    for order in StepOrder:
        result = await store.funnel(FunnelQuery(steps=("a", "b"), order=order, breakdown=Breakdown.SEX))
        assert [s.users for s in result.steps] == [0, 0] and result.breakdowns == []
    page = await store.funnel_users(FunnelQuery(steps=("a",)), 0, False, 0, None)
    assert page == UserPage([], total=0, has_next=False)


async def test_a_file_from_before_free_text_gains_the_column(tmp_path: Path) -> None:
    # user_interactions without the free_text column, as the previous version made it.
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        """CREATE TABLE user_interactions (event_id VARCHAR NOT NULL, user_id BIGINT, session_id VARCHAR,
           page_type VARCHAR, interaction_type VARCHAR, element VARCHAR, "timestamp" TIMESTAMP,
           coord_x INTEGER, coord_y INTEGER, value VARCHAR)"""
    )
    con.execute(
        "INSERT INTO user_interactions VALUES ('old', 1, 's1', 'search', 'form', 'search-box', "
        "TIMESTAMP '2015-03-02 08:00:00', 1, 2, 'typed long ago')"
    )
    con.close()
    store = await DuckDBStore.open(path)
    try:
        await store.ensure_indexes()
        await store.upsert_many("user_interactions", [interaction("new", 1)])
        [[old, new]] = await store.interactions_by_session_ids(["s1"])
        assert (old["event_id"], old["free_text"]) == ("old", None)  # unknown until ingested again
        assert (new["event_id"], new["free_text"]) == ("new", True)
        assert await store.form_texts("search", None) == ["blue shoes"]
    finally:
        await store.close()
