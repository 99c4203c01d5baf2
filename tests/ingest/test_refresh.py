"""refresh_funnel_analytics over hand-written visits, against rows computed by hand."""

from __future__ import annotations

from datetime import date, datetime

from gateway.jobs.refresh import refresh_funnel_analytics
from gateway.stores.collections import FUNNEL_ANALYTICS, PAGE_VISITS, USERS
from gateway.stores.contracts import DocumentStore

STEPS = ("home", "search", "payment")

# user 1 desktop, user 2 mobile on Jan 1; user 3 desktop on Jan 2; user 4 (no device) on Jan 3.
USER_DOCS = [
    {"user_id": 1, "device": "desktop", "sex": "male", "date": date(2015, 1, 1), "attributes": {}},
    {"user_id": 2, "device": "mobile", "sex": "female", "date": date(2015, 1, 1), "attributes": {}},
    {"user_id": 3, "device": "desktop", "sex": "female", "date": date(2015, 1, 2), "attributes": {}},
    {"user_id": 4, "device": None, "sex": None, "date": date(2015, 1, 3), "attributes": {}},
]


def _visit(event: str, user: int, page: str, stamp: str, duration: float, device: str | None) -> dict:
    return {
        "event_id": event,
        "user_id": user,
        "session_id": f"s{user}",
        "page_type": page,
        "timestamp": datetime.fromisoformat(stamp),
        "duration": duration,
        "device": device,
    }


VISITS = [
    _visit("a", 1, "home", "2015-01-01 10:00:00", 10.0, "desktop"),
    _visit("b", 1, "search", "2015-01-01 10:01:00", 20.0, "desktop"),
    _visit("c", 2, "home", "2015-01-01 11:00:00", 30.0, "mobile"),
    _visit("d", 3, "home", "2015-01-02 09:00:00", 5.0, "desktop"),
    _visit("e", 3, "search", "2015-01-02 09:01:00", 7.0, "desktop"),
    _visit("f", 3, "payment", "2015-01-02 09:02:00", 9.0, "desktop"),
    _visit("g", 4, "home", "2015-01-03 08:00:00", 4.0, None),
]


def _row(
    day: int,
    device: str,
    step: str,
    index: int,
    users: int,
    rate: float,
    avg: float | None,
    median: float | None = None,
) -> dict:
    return {
        "date": date(2015, 1, day),
        "device": device,
        "funnel_step": step,
        "step_index": index,
        "unique_users": users,
        "conversion_rate": rate,
        "drop_off_rate": (1.0 - rate) if index else 0.0,
        "avg_time_spent": avg,
        # seconds from the first step; step 1 is the anchor itself
        "median_time_to_convert": median if index else (0.0 if users else None),
    }


# By hand, per day and device: users per step, users/previous step, mean seconds on the page, median
# seconds from home.
EXPECTED = [
    _row(1, "all", "home", 0, 2, 1.0, 20.0),  # users 1 and 2: (10 + 30) / 2
    _row(1, "all", "search", 1, 1, 0.5, 20.0, 60.0),
    _row(1, "all", "payment", 2, 0, 0.0, None),
    _row(1, "desktop", "home", 0, 1, 1.0, 10.0),
    _row(1, "desktop", "search", 1, 1, 1.0, 20.0, 60.0),
    _row(1, "desktop", "payment", 2, 0, 0.0, None),
    _row(1, "mobile", "home", 0, 1, 1.0, 30.0),
    _row(1, "mobile", "search", 1, 0, 0.0, None),
    _row(1, "mobile", "payment", 2, 0, 0.0, None),  # previous step has no users: 0.0
    _row(2, "all", "home", 0, 1, 1.0, 5.0),
    _row(2, "all", "search", 1, 1, 1.0, 7.0, 60.0),
    _row(2, "all", "payment", 2, 1, 1.0, 9.0, 120.0),
    _row(2, "desktop", "home", 0, 1, 1.0, 5.0),
    _row(2, "desktop", "search", 1, 1, 1.0, 7.0, 60.0),
    _row(2, "desktop", "payment", 2, 1, 1.0, 9.0, 120.0),
    _row(3, "all", "home", 0, 1, 1.0, 4.0),  # user 4 has no device: counted under "all" only
    _row(3, "all", "search", 1, 0, 0.0, None),
    _row(3, "all", "payment", 2, 0, 0.0, None),
]


async def test_rows_match_the_hand_computed_funnel(store: DocumentStore) -> None:
    await store.upsert_many(USERS, USER_DOCS)
    await store.upsert_many(PAGE_VISITS, VISITS)
    written = await refresh_funnel_analytics(store, STEPS, date(2015, 1, 1), date(2015, 1, 3))
    assert written == len(EXPECTED)
    assert await store.funnel_analytics(None, None, None) == EXPECTED


async def test_refresh_replaces_rows_in_range_and_keeps_the_others(store: DocumentStore) -> None:
    await store.upsert_many(USERS, USER_DOCS)
    await store.upsert_many(PAGE_VISITS, VISITS)
    outside = _row(20, "all", "home", 0, 99, 1.0, 1.0)
    stale = _row(2, "tablet", "home", 0, 7, 1.0, 1.0)
    await store.upsert_many(FUNNEL_ANALYTICS, [outside, stale])
    await refresh_funnel_analytics(store, STEPS, date(2015, 1, 1), date(2015, 1, 3))
    assert await store.funnel_analytics(None, None, None) == [*EXPECTED, outside]
    # A narrower range recomputes only its own days.
    assert await refresh_funnel_analytics(store, STEPS, date(2015, 1, 2), date(2015, 1, 2)) == 6
    assert await store.funnel_analytics(None, None, None) == [*EXPECTED, outside]
