"""The embedded store's funnel index follows every write, the way the gateway writes: bulk inserts,
single live events with duplicate event ids, users arriving late, changed user documents, upserted
visits, deleted users, writes through the low-level write functions, a reopened (or swapped) file.
Funnels from the index must stay equal to the reference throughout, without a rebuild for inserts.
"""

from __future__ import annotations

import random
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from gateway.models import Breakdown, FunnelQuery, Interval, StepOrder, UserFilter
from gateway.stores.duckdb import schema, writes
from gateway.stores.duckdb.store import DuckDBStore
from gateway.stores.funnel_math import funnel_result, trend
from tests.stores.test_duckdb_funnel_reference import (
    STEPS,
    assert_results_equal,
    assert_trend_equal,
    make_dataset,
    reference_matches,
)

QUERIES = [
    FunnelQuery(STEPS),
    FunnelQuery(STEPS, order=StepOrder.STRICT, window_seconds=5400, breakdown=Breakdown.DEVICE),
    FunnelQuery(STEPS, order=StepOrder.UNORDERED, breakdown=Breakdown.SEX),
    FunnelQuery(STEPS, filter=UserFilter(device="mobile", start=date(2015, 3, 2)), window_seconds=3600),
]
Docs = list[dict[str, Any]]


async def check(
    store: DuckDBStore, users: Docs, visits: Docs, label: str, source: str = "funnel_index"
) -> None:
    for query in QUERIES:
        want = funnel_result(STEPS, reference_matches(users, visits, query), query.breakdown is not None)
        got = await store.funnel(query)
        assert_results_equal(got, want, f"{label} {query.order} {query.filter}")
        assert got.source == source, label
    plain = FunnelQuery(STEPS, order=StepOrder.STRICT)
    got_trend = await store.funnel_trend(plain, Interval.DAY)
    assert_trend_equal(got_trend, trend(STEPS, reference_matches(users, visits, plain), Interval.DAY), label)
    reached = {m.user_id: len(m.times) for m in reference_matches(users, visits, plain)}
    page = await store.funnel_users(plain, 1, False, 10_000, None)
    assert page.user_ids == sorted(u for u, n in reached.items() if n == 2), label


async def test_index_follows_every_write(tmp_path: Path) -> None:
    rng = random.Random(7)
    users, visits = make_dataset(4)
    store = await DuckDBStore.open(tmp_path / "s.duckdb")
    live = store.funnel_index
    assert live is not None
    try:
        half = len(visits) // 2
        await store.insert_many("users", users[: len(users) // 2])
        await store.insert_many("page_visits", visits[:half])
        assert await store.wait_for_funnel_index(60)
        await check(store, users[: len(users) // 2], visits[:half], "bulk half")
        builds = live.builds

        # live events one by one, then in small batches; some repeated (a duplicate must not count
        # twice); users arrive late
        stored = visits[:half]
        rest = visits[half:]
        events = [rest[i : i + 1] for i in range(60)]
        events += [rest[i : i + 13] for i in range(60, len(rest), 13)]
        for batch in events:
            assert (await store.insert_many("page_visits", batch)).written == len(batch)
            stored += batch
            if rng.random() < 0.15:
                dup = await store.insert_many("page_visits", [rng.choice(stored)])
                assert (dup.written, dup.duplicates) == (0, 1)
            if rng.random() < 0.08:
                await check(store, users[: len(users) // 2], stored, "live")
        await store.insert_many("users", users[len(users) // 2 :])
        await check(store, users, visits, "all inserted")
        assert live.builds == builds and live.merges > 1  # merged, never rebuilt

        # changed user documents (upserts): attributes follow without a rebuild
        changed = [dict(u, device="tablet" if u["device"] != "tablet" else "mobile") for u in users[::3]]
        await store.upsert_many("users", changed)
        users2 = [changed[i // 3] if i % 3 == 0 else u for i, u in enumerate(users)]
        await check(store, users2, visits, "users upserted")
        assert live.builds == builds

        # a changed visit (upsert) and deleted users: rebuilt, SQL answers meanwhile
        moved = dict(visits[0], page_type="confirm")
        await store.upsert_many("page_visits", [moved])
        visits2 = [moved, *visits[1:]]
        assert live.current() is None  # stale: the next funnels use SQL while it rebuilds
        assert await store.wait_for_funnel_index(60)
        await check(store, users2, visits2, "visit upserted")
        assert live.builds == builds + 1
        gone = {u["user_id"] for u in users2[:20]}
        await store.delete_users(sorted(gone))
        assert await store.wait_for_funnel_index(60)
        await check(
            store,
            [u for u in users2 if u["user_id"] not in gone],
            [v for v in visits2 if v["user_id"] not in gone],
            "deleted",
        )
    finally:
        await store.close()


async def test_low_level_write_paths_are_followed(tmp_path: Path) -> None:
    """A write path added later (say, realtime capture's insert-and-return-keys) that calls the write
    functions directly is followed too: the feed sits in writes.py, not in the store's methods."""
    users, visits = make_dataset(2)
    store = await DuckDBStore.open(tmp_path / "w.duckdb")
    try:
        await store.insert_many("users", users)
        assert await store.wait_for_funnel_index(60)

        def insert(cur: Any) -> int:
            with store._db.write_lock:
                return writes.insert_batch(cur, schema.TABLES["page_visits"], visits)

        assert await store._db.run("insert directly", insert) == len(visits)
        await check(store, users, visits, "direct insert")
    finally:
        await store.close()


async def test_sql_answers_while_the_index_builds_and_after_a_reopen(tmp_path: Path) -> None:
    users, visits = make_dataset(3)
    path = tmp_path / "r.duckdb"
    store = await DuckDBStore.open(path, index=False)
    try:
        await store.insert_many("users", users)
        await store.insert_many("page_visits", visits[:100])
        await check(store, users, visits[:100], "no index", source="sql")
    finally:
        await store.close()
    # another file swapped in while closed (ops build a fresh file aside): a reopen indexes it
    other = tmp_path / "other.duckdb"
    writer = await DuckDBStore.open(other, index=False)
    try:
        await writer.insert_many("users", users)
        await writer.insert_many("page_visits", visits)
    finally:
        await writer.close()
    shutil.move(other, path)
    store = await DuckDBStore.open(path)
    try:
        first = await store.funnel(QUERIES[0])  # never waits for the build: SQL, or the index if ready
        assert first.source in ("sql", "funnel_index")
        assert await store.wait_for_funnel_index(60)
        await check(store, users, visits, "reopened")
    finally:
        await store.close()


async def test_date_filtered_funnels_after_merges(tmp_path: Path) -> None:
    # merged snapshots are copies: every page of a merged index must still answer date ranges
    users, visits = make_dataset(5)
    store = await DuckDBStore.open(tmp_path / "d.duckdb")
    try:
        await store.insert_many("users", users)
        await store.insert_many("page_visits", [v for v in visits if v["page_type"] != "confirm"])
        assert await store.wait_for_funnel_index(60)
        confirms = [v for v in visits if v["page_type"] == "confirm"]
        await store.insert_many("page_visits", confirms[:5])
        await store.funnel(FunnelQuery(STEPS))
        await store.insert_many("page_visits", confirms[5:])
        for f in (
            UserFilter(start=date(2015, 3, 2)),
            UserFilter(start=date(2015, 2, 1), end=date(2015, 3, 31)),
        ):
            for order in StepOrder:
                query = FunnelQuery(STEPS, filter=f, order=order, window_seconds=3600)
                want = funnel_result(STEPS, reference_matches(users, visits, query), False)
                got = await store.funnel(query)
                assert_results_equal(got, want, f"{f} {order}")
                assert got.source == "funnel_index"
    finally:
        await store.close()


async def test_live_capture_is_followed(tmp_path: Path) -> None:
    """record_events (realtime capture: its own transaction, not insert_many) reaches the index after
    it commits, and a replayed batch counts once."""
    from gateway.models import EventBatch

    users, visits = make_dataset(7)
    store = await DuckDBStore.open(tmp_path / "e.duckdb")
    try:
        await store.insert_many("users", users)
        await store.insert_many("page_visits", visits[:150])
        assert await store.wait_for_funnel_index(60)
        live = visits[150:]
        newcomer = {
            "user_id": 777,
            "device": "mobile",
            "sex": "female",
            "date": date(2015, 3, 1),
            "attributes": {},
        }
        late = [dict(v, user_id=777, event_id=f"e{i}") for i, v in enumerate(visits[:8])]
        seeds = [
            {"session_id": v["session_id"], "user_id": v["user_id"], "device": None} for v in live + late
        ]
        batch = EventBatch(
            visits=live + late, sessions=list({s["session_id"]: s for s in seeds}.values()), users=[newcomer]
        )
        for _ in range(2):
            await store.record_events(batch)
        await check(store, [*users, newcomer], visits + late, "live capture")
        assert store.funnel_index is not None and store.funnel_index.merges >= 1
    finally:
        await store.close()
