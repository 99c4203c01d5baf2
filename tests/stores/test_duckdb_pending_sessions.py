"""DuckDB's live sessions are folded behind their events (stores/duckdb/pending_sessions.py): whatever
groups pile up between two reads, a read sees the sessions an eager fold would have written, and
deltas never outlive the process that wrote them unfolded."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import StoreQueryFailed
from gateway.models import EventBatch
from gateway.stores.duckdb import capture, pending_sessions
from gateway.stores.duckdb.connection import DuckDBConnection
from gateway.stores.duckdb.store import DuckDBStore
from gateway.stores.event_fold import CONVERSION

T0 = datetime(2026, 3, 1, 10, 0, 0)
PAGES = ("home", "search", "payment", "confirmation")


def _visit(event_id: str, user: int, session: str, page: str, seconds: float, duration: float) -> dict:
    return {
        "event_id": event_id, "user_id": user, "session_id": session, "page_type": page,
        "timestamp": T0 + timedelta(seconds=seconds), "duration": duration, "device": "mobile",
    }  # fmt: skip


def _interaction(event_id: str, user: int, session: str, seconds: float, value: str | None) -> dict:
    kind = CONVERSION if value is not None else "click"
    return {
        "event_id": event_id, "user_id": user, "session_id": session, "page_type": "payment",
        "interaction_type": kind, "element": "pay", "timestamp": T0 + timedelta(seconds=seconds),
        "coordinates": None, "value": value, "free_text": False,
    }  # fmt: skip


def _expected(visits: list[dict], interactions: list[dict]) -> dict[str, dict]:
    """Each session as the fold of all its events, computed from the events alone."""
    out: dict[str, dict] = {}

    def session(doc: dict) -> dict:
        return out.setdefault(
            doc["session_id"],
            {"user_id": doc["user_id"], "starts": [], "ends": [], "visits": [], "n": 0, "conv": []},
        )

    for v in visits:
        s = session(v)
        s["starts"].append(v["timestamp"])
        s["ends"].append(v["timestamp"] + timedelta(seconds=v["duration"]))
        s["visits"].append((v["timestamp"], v["event_id"], v["page_type"]))
    for i in interactions:
        s = session(i)
        s["starts"].append(i["timestamp"])
        s["ends"].append(i["timestamp"])
        s["n"] += 1
        if i["interaction_type"] == CONVERSION:
            s["conv"].append(round(float(i["value"]) * 100))
    return {
        sid: {
            "user_id": s["user_id"],
            "start_time": min(s["starts"]),
            "end_time": max(s["ends"]),
            "pages_visited": [page for _, _, page in sorted(s["visits"])],
            "total_interactions": s["n"],
            "converted": bool(s["conv"]),
            "cents": sum(s["conv"]),
        }
        for sid, s in out.items()
    }


def _as_stored(doc: dict) -> dict:
    return {
        "user_id": doc["user_id"],
        "start_time": doc["start_time"],
        "end_time": doc["end_time"],
        "pages_visited": doc["pages_visited"],
        "total_interactions": doc["total_interactions"],
        "converted": doc["converted"],
        "cents": round(doc["conversion_value"] * 100),
    }


@pytest.mark.parametrize(("seed", "step"), [(seed, 1_000) for seed in range(4)] + [(4, 2), (5, 1)])
async def test_groups_piled_up_between_reads_fold_to_the_sessions_of_all_their_events(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch, seed: int, step: int
) -> None:
    """Random groups (late visits, visits inside a page view's duration, conversions, replays) for a
    few sessions, 1-6 groups between reads; after every read each session is the fold of its events
    (folded in one transaction, or ``step`` sessions per transaction)."""
    monkeypatch.setattr(capture, "FOLD_STEP", step)
    rng = random.Random(seed)
    sessions = {f"s{n}": 100 + n % 3 for n in range(5)}  # session -> its user (users own several)
    visits: list[dict] = []
    interactions: list[dict] = []
    n = 0
    for _ in range(12):
        for _ in range(rng.randint(1, 6)):
            group_visits, group_interactions, seeds = [], [], {}
            for _ in range(rng.randint(1, 6)):
                n += 1
                sid = rng.choice(list(sessions))
                user = sessions[sid]
                seeds[sid] = {"session_id": sid, "user_id": user, "device": "mobile"}
                seconds = rng.uniform(0, 3_000)
                if rng.random() < 0.5:
                    page, duration = rng.choice(PAGES), rng.choice((0.0, 5.0, 120.0))
                    group_visits.append(_visit(f"e{n}", user, sid, page, seconds, duration))
                else:
                    value = rng.choice((None, None, "12.50", "0.10"))
                    group_interactions.append(_interaction(f"e{n}", user, sid, seconds, value))
            if visits and rng.random() < 0.2:  # a replayed visit: changes nothing
                group_visits.append(dict(rng.choice(visits)))
            batch = EventBatch(
                visits=group_visits, interactions=group_interactions, sessions=list(seeds.values())
            )
            new = set(await store.record_events(batch))
            visits += [v for v in group_visits if v["event_id"] in new]
            interactions += [i for i in group_interactions if i["event_id"] in new]
        expected = _expected(visits, interactions)
        found = await store.sessions_by_ids(sorted(expected))
        assert {d["session_id"]: _as_stored(d) for d in found if d} == expected


async def test_a_lookup_folds_only_for_keys_with_pending_deltas(store: DuckDBStore) -> None:
    """Enrichment reads users it does not remember, which have nothing pending: no fold for them."""
    seed = {"session_id": "s1", "user_id": 1, "device": "mobile"}
    await store.record_events(EventBatch(visits=[_visit("a", 1, "s1", "home", 0, 5.0)], sessions=[seed]))
    assert store.pending.rows == 1
    assert await store.sessions_by_user_ids([2]) == [[]]
    assert await store.sessions_by_ids(["s2"]) == [None]
    assert store.pending.rows == 1  # still pending
    [[session]] = await store.sessions_by_user_ids([1])
    assert session["pages_visited"] == ["home"]
    assert store.pending.rows == 0


async def test_a_lookup_folds_the_sessions_of_its_keys_only(store: DuckDBStore) -> None:
    def batch(event_id: str, user: int, session: str) -> EventBatch:
        seed = {"session_id": session, "user_id": user, "device": "mobile"}
        return EventBatch(visits=[_visit(event_id, user, session, "home", 0, 5.0)], sessions=[seed])

    for event_id, user, session in (("a", 1, "s1"), ("b", 1, "s2"), ("c", 2, "s3"), ("d", 3, "s4")):
        await store.record_events(batch(event_id, user, session))
    assert [len(s) for s in await store.sessions_by_user_ids([1])] == [2]
    assert store.pending.oldest() == ["s3", "s4"]
    assert (await store.sessions_by_ids(["s4"]))[0]["user_id"] == 3
    assert store.pending.oldest() == ["s3"]


async def test_reports_and_counts_fold_first(store: DuckDBStore) -> None:
    seed = {"session_id": "s1", "user_id": 1, "device": "mobile"}
    conversion = _interaction("c", 1, "s1", 10, "20.00")
    await store.record_events(
        EventBatch(visits=[_visit("a", 1, "s1", "home", 0, 5.0)], interactions=[conversion], sessions=[seed])
    )
    assert await store.count("user_sessions") == 1
    await store.record_events(EventBatch(visits=[_visit("b", 1, "s1", "search", 60, 5.0)], sessions=[seed]))
    assert (await store.dashboard(None, None)).revenue == 20.0
    await store.record_events(EventBatch(visits=[_visit("d", 1, "s1", "payment", 90, 5.0)], sessions=[seed]))
    [path] = await store.top_paths(5, _no_filter())
    assert path.path == ["home", "search", "payment"]


def _no_filter():  # type: ignore[no-untyped-def]
    from gateway.models import UserFilter

    return UserFilter()


async def test_deltas_left_by_a_killed_process_are_folded_when_the_file_opens(tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    store = await DuckDBStore.open(path)
    seed = {"session_id": "s1", "user_id": 1, "device": "mobile"}
    await store.record_events(
        EventBatch(
            visits=[_visit("a", 1, "s1", "home", 0, 5.0), _visit("b", 1, "s1", "search", 30, 5.0)],
            sessions=[seed],
        )
    )
    await store.record_events(EventBatch(visits=[_visit("c", 1, "s1", "payment", 20, 0.0)], sessions=[seed]))
    assert store.pending.rows == 2
    # Killed: the file is closed without the store's own close (which folds).
    if store.funnel_index is not None:
        store.funnel_index.close()
    await DuckDBConnection.close(store.connection)

    reopened = await DuckDBStore.open(path)
    try:
        assert reopened.pending.rows == 0
        left = await reopened.connection.run(
            "count", lambda cur: cur.execute(f"SELECT count(*) FROM {pending_sessions.TABLE}").fetchall()
        )
        assert left == [(0,)]
        [session] = await reopened.sessions_by_ids(["s1"])
        assert session["pages_visited"] == ["home", "payment", "search"]
        assert session["end_time"] == T0 + timedelta(seconds=35)
    finally:
        await reopened.close()


async def test_closing_folds_and_a_file_without_capture_has_no_deltas_table(tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    store = await DuckDBStore.open(path)
    tables = "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    assert pending_sessions.TABLE not in [
        t for (t,) in await store.connection.run("tables", lambda cur: cur.execute(tables).fetchall())
    ]
    seed = {"session_id": "s1", "user_id": 1, "device": "mobile"}
    await store.record_events(EventBatch(visits=[_visit("a", 1, "s1", "home", 0, 5.0)], sessions=[seed]))
    await store.close()
    reopened = await DuckDBStore.open(path)
    try:
        rows = "SELECT count(*) FROM session_deltas"
        assert await reopened.connection.run("count", lambda cur: cur.execute(rows).fetchall()) == [(0,)]
    finally:
        await reopened.close()


async def test_old_deltas_fold_in_the_background(store: DuckDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending_sessions, "FOLD_AGE_S", 0.0)
    seed = {"session_id": "s1", "user_id": 1, "device": "mobile"}
    await store.record_events(EventBatch(visits=[_visit("a", 1, "s1", "home", 0, 5.0)], sessions=[seed]))
    assert store._background is not None
    await store._background
    assert store.pending.rows == 0


async def test_a_failed_fold_keeps_the_deltas_for_the_next_one(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seed = {"session_id": "s1", "user_id": 1, "device": "mobile"}
    await store.record_events(EventBatch(visits=[_visit("a", 1, "s1", "home", 0, 5.0)], sessions=[seed]))
    monkeypatch.setattr(pending_sessions, "_STORED_ENDS", "SELECT no_such_column FROM user_sessions")
    with pytest.raises(StoreQueryFailed, match="refused fold sessions") as refused:
        await store.sessions_by_ids(["s1"])
    assert "no_such_column" in str(refused.value.__cause__)
    assert store.pending.rows == 1
    monkeypatch.setattr(pending_sessions, "FOLD_AGE_S", 0.0)
    await capture.LiveCapture._fold_quietly(store)  # the background fold logs and goes on
    assert "folding live sessions failed" in caplog.text
    monkeypatch.undo()
    [session] = await store.sessions_by_ids(["s1"])
    assert session["pages_visited"] == ["home"]


def _one(event_id: str, user: int, session: str, page: str, seconds: float) -> EventBatch:
    seed = {"session_id": session, "user_id": user, "device": "mobile"}
    return EventBatch(visits=[_visit(event_id, user, session, page, seconds, 1.0)], sessions=[seed])


def _many(count: int) -> EventBatch:
    visits = [_visit(f"o{i}", 100 + i, f"o{i}", "home", 0, 1.0) for i in range(count)]
    seeds = [{"session_id": v["session_id"], "user_id": v["user_id"], "device": "mobile"} for v in visits]
    return EventBatch(visits=visits, sessions=seeds)


async def test_a_delete_racing_a_capture_leaves_no_session_without_its_visits(store: DuckDBStore) -> None:
    """The fold and the delete run in one call under the write lock: a group cannot commit a delta of
    the deleted user between them (it did when they were two calls: the session came back, its visit
    deleted)."""
    await store.record_events(_one("a", 1, "s1", "home", 0))
    await store.sessions_by_ids(["s1"])
    await store.record_events(_many(2_000))  # pending: the delete has a fold to do first
    await asyncio.gather(store.delete_users([1]), store.record_events(_one("b", 1, "s1", "search", 60)))
    visits = await store.visits_by_session_ids(["s1"])
    [session] = await store.sessions_by_ids(["s1"])
    if visits == [[]]:
        assert session is None
    else:
        assert [v["event_id"] for v in visits[0]] == ["b"]
        assert session is not None and session["pages_visited"] == ["search"]


async def test_an_export_racing_a_capture_holds_sessions_that_match_its_visits(store: DuckDBStore) -> None:
    await store.record_events(_one("a", 1, "s1", "home", 0))
    await store.record_events(_many(2_000))
    got: dict[str, list[dict]] = {"page_visits": [], "user_sessions": []}
    sinks = {name: got[name].extend for name in got}
    await asyncio.gather(store.export(sinks), store.record_events(_one("b", 1, "s1", "search", 60)))
    visits = sorted((v["timestamp"], v["page_type"]) for v in got["page_visits"] if v["session_id"] == "s1")
    [session] = [s for s in got["user_sessions"] if s["session_id"] == "s1"]
    assert session["pages_visited"] == [page for _, page in visits]


async def test_a_group_recorded_before_the_left_deltas_are_read_is_merged_once(tmp_path: Path) -> None:
    """A store used before its first fold (a reopened file, before ``_started``) reads what the killed
    process left first, in capture's own transaction: the group's delta is not read back a second time."""
    path = tmp_path / "live.duckdb"
    killed = await DuckDBStore.open(path)
    conversion = _interaction("c1", 1, "s1", 5, "10.00")
    await killed.record_events(
        EventBatch(visits=[_visit("a", 1, "s1", "home", 0, 1.0)], interactions=[conversion],
                   sessions=[{"session_id": "s1", "user_id": 1, "device": "mobile"}])
    )  # fmt: skip
    if killed.funnel_index is not None:
        killed.funnel_index.close()
    await DuckDBConnection.close(killed.connection)

    early = DuckDBStore(await DuckDBConnection.open(path), index=False)  # not started: nothing read yet
    try:
        await early.record_events(
            EventBatch(interactions=[_interaction("c2", 1, "s1", 9, "5.00")],
                       sessions=[{"session_id": "s1", "user_id": 1, "device": "mobile"}])
        )  # fmt: skip
        [session] = await early.sessions_by_ids(["s1"])
        assert (session["total_interactions"], round(session["conversion_value"] * 100)) == (2, 1500)
        assert session["pages_visited"] == ["home"]
    finally:
        await early.close()


async def test_a_fold_that_fails_at_close_still_closes_the_file(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await store.record_events(_one("a", 1, "s1", "home", 0))
    monkeypatch.setattr(pending_sessions, "_STORED_ENDS", "SELECT no_such_column FROM user_sessions")
    await store.close()
    assert store.connection.closed
    assert "folding live sessions before closing failed" in caplog.text


async def test_a_partial_fold_counts_down_what_is_pending(store: DuckDBStore) -> None:
    await store.record_events(_one("a", 1, "s1", "home", 0))
    await store.record_events(_one("b", 1, "s1", "search", 10))
    await store.record_events(_one("c", 2, "s2", "home", 0))
    assert store.pending.rows == 3
    await store.sessions_by_ids(["s1"])
    assert store.pending.rows == 1
    assert store.pending.count == 1


async def test_a_background_fold_gives_way_to_a_waiting_group_commit_after_one_chunk(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten pending sessions, steps of 10 in chunks of 3: alone, one step folds all ten (3 + 3 + 3 + 1,
    four transactions). With a group commit waiting for the write lock, each step ends after its
    first chunk, so the same fold takes four steps (4 store calls) and capture waits for one chunk."""
    monkeypatch.setattr(capture, "FOLD_STEP", 10)
    monkeypatch.setattr(capture, "FOLD_CHUNK", 3)
    calls: list[str] = []
    run = store._db.run

    async def counted(action: str, fn):  # type: ignore[no-untyped-def]
        calls.append(action)
        return await run(action, fn)

    monkeypatch.setattr(store._db, "run", counted)
    chunks: list[int] = []
    fold = store.pending.fold

    def sized(cur, sessions=None):  # type: ignore[no-untyped-def]
        chunks.append(len(sessions))
        return fold(cur, sessions)

    monkeypatch.setattr(store.pending, "fold", sized)
    for waiting, expected_steps in ((False, 1), (True, 4)):
        batch = EventBatch(
            visits=[_visit(f"gw-{waiting}-{n}", 300 + n, f"gw-{waiting}-s{n}", "home", 10.0, 0.0) for n in range(10)],
            sessions=[{"session_id": f"gw-{waiting}-s{n}", "user_id": 300 + n, "device": "mobile"} for n in range(10)],
        )  # fmt: skip
        await store.record_events(batch)
        assert store.pending.count == 10
        calls.clear()
        chunks.clear()
        if waiting:
            store.capture_waiting.set()  # as record() does while it waits for the lock
        try:
            await store.fold_sessions()
        finally:
            store.capture_waiting.clear()
        assert chunks == [3, 3, 3, 1]
        assert calls.count("fold sessions") == expected_steps
        assert store.pending.count == 0
