"""DuckDB's cheap path for ``pages_visited`` (stores/duckdb/events.py, ``LastVisits``): a visit after the
session's latest visit is appended without reading page_visits even when it starts before the stored end
(a page view's end includes its duration), and what the store remembers never outlives a write it did
not make. (The order itself is the contract's: tests/contract/test_record_events.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.models import EventBatch
from gateway.stores.duckdb import pending_sessions
from gateway.stores.duckdb.store import DuckDBStore

T0 = datetime(2026, 3, 1, 10, 0, 0)


def visit(event_id: str, page: str, seconds: float, duration: float) -> dict:
    return {
        "event_id": event_id, "user_id": 7, "session_id": "rt-7", "page_type": page,
        "timestamp": T0 + timedelta(seconds=seconds), "duration": duration, "device": "mobile",
    }  # fmt: skip


def group(*visits: dict) -> EventBatch:
    return EventBatch(
        visits=list(visits), sessions=[{"session_id": "rt-7", "user_id": 7, "device": "mobile"}]
    )


async def pages(store: DuckDBStore) -> list[str]:
    [session] = await store.sessions_by_ids(["rt-7"])
    return session["pages_visited"]


async def test_a_visit_after_the_latest_one_is_appended_without_a_rebuild(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.record_events(group(visit("a", "home", 0, 30.0)))  # ends at 10:00:30
    monkeypatch.setattr(
        pending_sessions, "_PAGES", "SELECT no_such_column FROM page_visits"
    )  # a rebuild would fail
    await store.record_events(group(visit("b", "search", 5, 30.0)))  # before the end, after "a"
    await store.record_events(group(visit("c", "payment", 10, 30.0)))
    assert await pages(store) == ["home", "search", "payment"]


async def test_a_visit_before_the_latest_one_is_placed_by_time(store: DuckDBStore) -> None:
    await store.record_events(group(visit("a", "home", 0, 30.0), visit("c", "payment", 20, 30.0)))
    await store.record_events(group(visit("b", "search", 10, 0.0)))  # between them
    assert await pages(store) == ["home", "search", "payment"]
    await store.record_events(group(visit("d", "cart", 25, 0.0)))  # after "c" (the rebuild's latest)
    assert await pages(store) == ["home", "search", "payment", "cart"]


async def test_a_visit_written_any_other_way_is_not_missed(store: DuckDBStore) -> None:
    """A visit inserted outside record_events (10:10) makes the remembered latest (10:00) wrong: the
    store forgets it, so a visit at 10:05 is placed among the stored visits, not appended after 10:00."""
    await store.record_events(group(visit("a", "home", 0, 900.0)))  # ends at 10:15
    await store.insert_many("page_visits", [visit("b", "payment", 600, 0.0)])
    await store.record_events(group(visit("c", "search", 300, 0.0)))
    assert await pages(store) == ["home", "search", "payment"]


async def test_a_session_id_with_a_quote_is_appended_too(store: DuckDBStore) -> None:
    """The remembered sessions are written into the upsert as a list literal: quotes are escaped."""
    sid = "o'neil-1"

    def quoted(event_id: str, page: str, seconds: float) -> EventBatch:
        doc = {**visit(event_id, page, seconds, 30.0), "session_id": sid}
        return EventBatch(visits=[doc], sessions=[{"session_id": sid, "user_id": 7, "device": "mobile"}])

    await store.record_events(quoted("q1", "home", 0))
    await store.record_events(quoted("q2", "search", 5))  # from memory: the literal holds o''neil-1
    [session] = await store.sessions_by_ids([sid])
    assert session["pages_visited"] == ["home", "search"]


async def test_visits_in_order_across_groups_folded_at_once_are_appended_without_a_rebuild(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groups pile up as deltas (no read between them): the fold appends their pages in group order."""
    await store.record_events(group(visit("a", "home", 0, 30.0)))
    await pages(store)  # folded: the session is stored
    monkeypatch.setattr(pending_sessions, "_PAGES", "SELECT no_such_column FROM page_visits")
    await store.record_events(group(visit("b", "search", 5, 30.0)))
    await store.record_events(group(visit("c", "payment", 10, 30.0)))
    await store.record_events(group(visit("d", "confirmation", 11, 0.0)))
    assert store.pending.rows == 3
    assert await pages(store) == ["home", "search", "payment", "confirmation"]
