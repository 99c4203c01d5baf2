"""Writes (insert/upsert/delete, pre-computed rows, default funnel) and the design's indexes."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.analytics import default_funnel
from gateway.analytics.default_funnel import DefaultFunnel
from gateway.errors import BadInput, StoreUnavailable
from gateway.models import WriteResult
from gateway.stores.collections import COLLECTIONS, DESIGN_INDEXES
from gateway.stores.contracts import DocumentStore
from tests.contract.fixture_data import (
    FA_0105_DESKTOP_HOME,
    FA_0105_DESKTOP_SEARCH,
    FA_0105_MOBILE_HOME,
    FA_0106_DESKTOP_HOME,
    FA_0107_DESKTOP_HOME,
    FA_SORTED,
    INTERACTION_BY_ID,
    SESSION_BY_ID,
    SESSIONS,
    USER_BY_ID,
    USERS,
    VISIT_BY_ID,
    VISITS,
    day,
    fresh,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store


def changed(document: dict, **fields: object) -> dict:
    return {**fresh([document])[0], **fields}


# -- ensure_indexes / indexes -----------------------------------------------------------------------


def _as_pairs(specs: list) -> list[tuple[tuple[str, ...], bool]]:
    return [(tuple(s.keys), bool(s.unique)) for s in specs]


async def test_every_key_index_exists(store: DocumentStore) -> None:
    # Every backend refuses duplicate keys with a unique index; which others exist is the backend's own
    # business (MongoDB: all of DESIGN_INDEXES, tests/stores/test_mongo_store.py; DuckDB: single-column lookup ones,
    # tests/stores/test_duckdb_store.py).
    existing = await store.indexes()
    for collection in COLLECTIONS:
        have = set(_as_pairs(existing.get(collection, [])))
        for spec in DESIGN_INDEXES[collection]:
            if spec.unique:
                assert (spec.keys, True) in have, (collection, spec, sorted(have))


async def test_ensure_indexes_is_idempotent(loaded_store: DocumentStore) -> None:
    before = await loaded_store.indexes()
    await loaded_store.ensure_indexes()  # the fixture ran it once already, before the data
    await loaded_store.ensure_indexes()
    after = await loaded_store.indexes()
    for collection in COLLECTIONS:
        pairs = _as_pairs(after.get(collection, []))
        assert len(pairs) == len(set(pairs)), (collection, pairs)  # nothing created twice
        assert set(pairs) == set(_as_pairs(before.get(collection, []))), collection
    assert await loaded_store.count("users") == 10  # data survives


async def test_unique_index_is_enforced_by_insert(store: DocumentStore) -> None:
    first = await store.insert_many("users", fresh(USERS[:2]))
    again = await store.insert_many("users", fresh(USERS[:2]))
    assert (first, again) == (WriteResult(2, 0), WriteResult(0, 2))
    assert await store.count("users") == 2


# -- insert_many ----------------------------------------------------------------------------------------


async def test_insert_empty_batch(store: DocumentStore) -> None:
    assert await store.insert_many("users", []) == WriteResult(0, 0)
    assert await store.count("users") == 0


async def test_insert_skips_existing_keys_and_writes_the_rest(loaded_store: DocumentStore) -> None:
    batch = [
        changed(USER_BY_ID[10], device="tablet"),
        {"user_id": 110, "device": "mobile", "sex": "male", "date": day("2015-03-01"), "attributes": {}},
        changed(USER_BY_ID[30], sex="male"),
    ]
    assert await loaded_store.insert_many("users", batch) == WriteResult(written=1, duplicates=2)
    got = await loaded_store.users_by_ids([10, 110, 30])
    assert got == [USER_BY_ID[10], batch[1], USER_BY_ID[30]]  # the existing ones are untouched
    assert await loaded_store.count("users") == 11


async def test_insert_duplicate_inside_one_batch(store: DocumentStore) -> None:
    visit = VISIT_BY_ID["v10-1"]
    batch = [fresh([visit])[0], changed(visit, duration=99.0), fresh([VISIT_BY_ID["v10-2"]])[0]]
    assert await store.insert_many("page_visits", batch) == WriteResult(written=2, duplicates=1)
    assert await store.count("page_visits") == 2


async def test_insert_duplicate_event_ids(loaded_store: DocumentStore) -> None:
    # v20-9 copies search v20-1 (09:00:00): it sorts between v20-2 (same second) and v20-3.
    batch = [changed(VISIT_BY_ID["v20-1"], duration=1.0), changed(VISIT_BY_ID["v20-1"], event_id="v20-9")]
    assert await loaded_store.insert_many("page_visits", batch) == WriteResult(written=1, duplicates=1)
    assert await loaded_store.count("page_visits") == 39
    [s20a] = await loaded_store.visits_by_session_ids(["s20a"])
    assert [v["event_id"] for v in s20a] == ["v20-1", "v20-2", "v20-9", "v20-3"]
    assert s20a[0]["duration"] == 8.0  # the original, not the skipped duplicate


async def test_insert_duplicate_composite_key(loaded_store: DocumentStore) -> None:
    # (date, device, funnel_step) is the key: same key with other numbers is a duplicate; another device
    # or another step on the same day is new.
    batch = [
        changed(FA_0105_DESKTOP_HOME, unique_users=99),
        changed(FA_0105_DESKTOP_HOME, device="tablet"),
        changed(FA_0105_DESKTOP_HOME, funnel_step="payment", step_index=2),
    ]
    assert await loaded_store.insert_many("funnel_analytics", batch) == WriteResult(written=2, duplicates=1)
    rows = await loaded_store.funnel_analytics(day("2015-01-05"), day("2015-01-05"), "desktop")
    assert rows == [FA_0105_DESKTOP_HOME, FA_0105_DESKTOP_SEARCH, batch[2]]


# -- upsert_many ------------------------------------------------------------------------------------------


async def test_upsert_twice_is_idempotent(store: DocumentStore) -> None:
    assert await store.upsert_many("users", fresh(USERS)) == WriteResult(written=10)
    assert await store.upsert_many("users", fresh(USERS)) == WriteResult(written=10)
    assert await store.count("users") == 10
    assert await store.users_by_ids([10, 100]) == [USER_BY_ID[10], USER_BY_ID[100]]
    assert await store.upsert_many("user_sessions", fresh(SESSIONS)) == WriteResult(written=14)
    assert await store.upsert_many("user_sessions", fresh(SESSIONS)) == WriteResult(written=14)
    assert await store.count("user_sessions") == 14


async def test_upsert_replaces_whole_documents(loaded_store: DocumentStore) -> None:
    # attributes {"source": "seo", "age": 31} become {"plan": "gold"}: replaced, not merged.
    new_user = changed(USER_BY_ID[10], device="tablet", attributes={"plan": "gold"}, date=None)
    brand_new: dict[str, object] = {
        "user_id": 120,
        "device": None,
        "sex": None,
        "date": None,
        "attributes": {},
    }
    assert await loaded_store.upsert_many("users", [new_user, brand_new]) == WriteResult(written=2)
    assert await loaded_store.users_by_ids([10, 120, 20]) == [new_user, brand_new, USER_BY_ID[20]]
    assert await loaded_store.count("users") == 11


async def test_upsert_session_and_visit(loaded_store: DocumentStore) -> None:
    session = changed(SESSION_BY_ID["s20a"], converted=True, conversion_value=9.99, pages_visited=["home"])
    visit = changed(VISIT_BY_ID["v20-3"], duration=50.0, page_type="payment")
    assert await loaded_store.upsert_many("user_sessions", [session]) == WriteResult(written=1)
    assert await loaded_store.upsert_many("page_visits", [visit]) == WriteResult(written=1)
    assert await loaded_store.sessions_by_ids(["s20a"]) == [session]
    [s20a] = await loaded_store.visits_by_session_ids(["s20a"])
    assert s20a[-1] == visit
    assert await loaded_store.count("page_visits") == 38


async def test_upsert_composite_key(loaded_store: DocumentStore) -> None:
    row = changed(FA_0105_MOBILE_HOME, unique_users=4, conversion_rate=1.0, avg_time_spent=3.5)
    assert await loaded_store.upsert_many("funnel_analytics", [row]) == WriteResult(written=1)
    assert await loaded_store.funnel_analytics(None, None, "mobile") == [row]
    assert await loaded_store.count("funnel_analytics") == 6


async def test_upsert_leaves_out_an_event_whose_id_the_other_type_holds(loaded_store: DocumentStore) -> None:
    # i20-1 is u20's stored search form: a page view sent under its id is another event (an id is one event
    # whatever its type), not written and counted as a duplicate; the rest of the batch is written.
    as_visit = changed(VISIT_BY_ID["v20-3"], event_id="i20-1", duration=1.0)
    new_visit = changed(VISIT_BY_ID["v20-3"], event_id="v20-8", duration=3.0)
    result = await loaded_store.upsert_many("page_visits", [as_visit, new_visit, as_visit])
    assert result == WriteResult(written=1, duplicates=2)  # the repeat counted too, as written counts repeats
    assert await loaded_store.count("page_visits") == 39
    [s20a] = await loaded_store.visits_by_session_ids(["s20a"])
    assert [v["event_id"] for v in s20a] == ["v20-1", "v20-2", "v20-3", "v20-8"]
    [interactions] = await loaded_store.interactions_by_session_ids(["s20a"])
    assert interactions[0] == INTERACTION_BY_ID["i20-1"]  # untouched
    # The other way: an interaction under v20-1, a stored page view's id, replaces nothing either.
    as_interaction = changed(INTERACTION_BY_ID["i20-2"], event_id="v20-1")
    assert await loaded_store.upsert_many("user_interactions", [as_interaction]) == WriteResult(0, 1)
    assert await loaded_store.count("user_interactions") == 19
    assert (await loaded_store.visits_by_session_ids(["s20a"]))[0][0] == VISIT_BY_ID["v20-1"]


# -- delete_users -----------------------------------------------------------------------------------------


async def test_delete_users_cascades(loaded_store: DocumentStore) -> None:
    # 999 does not exist; 70 exists without any history: 10 and 70 are deleted.
    assert await loaded_store.delete_users([10, 70, 999]) == 2
    assert await loaded_store.users_by_ids([10, 70, 20]) == [None, None, USER_BY_ID[20]]
    assert await loaded_store.sessions_by_user_ids([10]) == [[]]
    assert await loaded_store.sessions_by_ids(["s10a"]) == [None]
    assert await loaded_store.visits_by_user_ids([10]) == [[]]
    assert await loaded_store.visits_by_session_ids(["s10a"]) == [[]]
    assert await loaded_store.interactions_by_session_ids(["s10a"]) == [[]]
    # u10 owned 6 visits, 4 interactions, 1 session; everyone else keeps theirs.
    assert await loaded_store.count("users") == 8
    assert await loaded_store.count("page_visits") == 32
    assert await loaded_store.count("user_interactions") == 14
    assert await loaded_store.count("user_sessions") == 13
    assert [len(v) for v in await loaded_store.visits_by_user_ids([20, 100])] == [3, 6]


async def test_delete_users_then_reinsert(loaded_store: DocumentStore) -> None:
    assert await loaded_store.delete_users([90]) == 1
    user_visits = [v for v in VISITS if v["user_id"] == 90]
    assert await loaded_store.insert_many("users", fresh([USER_BY_ID[90]])) == WriteResult(1, 0)
    assert await loaded_store.insert_many("page_visits", fresh(user_visits)) == WriteResult(3, 0)
    assert await loaded_store.visits_by_user_ids([90]) == [user_visits]


async def test_delete_nobody(loaded_store: DocumentStore) -> None:
    assert await loaded_store.delete_users([]) == 0
    assert await loaded_store.delete_users([12345]) == 0
    assert await loaded_store.count("users") == 10


# -- funnel_analytics rows --------------------------------------------------------------------------------


async def test_funnel_analytics_sorted(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.funnel_analytics(None, None, None) == FA_SORTED


@pytest.mark.parametrize(
    ("start", "end", "device", "expected"),
    [
        ("2015-01-05", "2015-01-05", "desktop", [FA_0105_DESKTOP_HOME, FA_0105_DESKTOP_SEARCH]),
        (None, None, "mobile", [FA_0105_MOBILE_HOME]),
        ("2015-01-06", None, None, FA_SORTED[3:]),
        (None, "2015-01-05", None, FA_SORTED[:3]),
        ("2015-01-07", "2015-01-07", "mobile", []),
    ],
    ids=["day+device", "device", "from", "until", "nothing"],
)
async def test_funnel_analytics_filters(
    shared_loaded_store: DocumentStore, start: str | None, end: str | None, device: str | None, expected: list
) -> None:
    got = await shared_loaded_store.funnel_analytics(
        day(start) if start else None, day(end) if end else None, device
    )
    assert got == expected


async def test_replace_funnel_analytics_only_touches_the_range(loaded_store: DocumentStore) -> None:
    new_rows = [
        changed(FA_0106_DESKTOP_HOME, unique_users=7, avg_time_spent=None),
        changed(FA_0106_DESKTOP_HOME, device="mobile", unique_users=1),
    ]
    assert await loaded_store.replace_funnel_analytics(day("2015-01-06"), day("2015-01-06"), new_rows) == 2
    # 01-06 desktop search is gone, 01-05 and 01-07 untouched.
    assert await loaded_store.funnel_analytics(None, None, None) == [
        *FA_SORTED[:3],
        *new_rows,
        FA_0107_DESKTOP_HOME,
    ]


async def test_replace_funnel_analytics_with_nothing(loaded_store: DocumentStore) -> None:
    assert await loaded_store.replace_funnel_analytics(day("2015-01-05"), day("2015-01-06"), []) == 0
    assert await loaded_store.funnel_analytics(None, None, None) == [FA_0107_DESKTOP_HOME]


async def test_replace_funnel_analytics_twice_is_idempotent(store: DocumentStore) -> None:
    rows = [FA_0105_DESKTOP_HOME, FA_0105_DESKTOP_SEARCH]
    for _ in range(2):
        assert await store.replace_funnel_analytics(day("2015-01-01"), day("2015-01-31"), fresh(rows)) == 2
    assert await store.funnel_analytics(None, None, None) == rows


# -- default funnel ---------------------------------------------------------------------------------------


async def test_default_funnel_none_then_set_then_replaced(loaded_store: DocumentStore) -> None:
    assert await loaded_store.default_funnel() is None
    await loaded_store.set_default_funnel(["home", "search", "payment", "confirmation"])
    assert await loaded_store.default_funnel() == ["home", "search", "payment", "confirmation"]
    await loaded_store.set_default_funnel(("home", "payment"))
    assert await loaded_store.default_funnel() == ["home", "payment"]
    assert await loaded_store.count("funnel_definitions") == 1


async def test_without_a_stored_default_it_is_derived_from_the_visits(loaded_store: DocumentStore) -> None:
    # Reach (test_lookups.PAGE_REACH): home 8, search 8, payment 7, confirmation 5, product 3.
    derived = await default_funnel.resolve(loaded_store)
    assert derived == DefaultFunnel(("home", "search", "payment", "confirmation", "product"), derived=True)
    await loaded_store.set_default_funnel(["search", "payment"])
    stored = await default_funnel.resolve(loaded_store)
    assert stored == DefaultFunnel(("search", "payment"), derived=False)  # a stored default wins


async def test_a_derived_default_is_capped_at_the_most_reached_pages(loaded_store: DocumentStore) -> None:
    # Twelve typo'd pages, page "t00" reached by 1 user, "t01" by 2 users, ... "t11" by 12 visitors
    # (new user ids 1000+), next to the fixture's five pages (8, 8, 7, 5, 3 users).
    visits = [
        {
            "event_id": f"typo-{n}-{u}",
            "user_id": 1000 + u,
            "session_id": f"typo-{u}",
            "page_type": f"t{n:02d}",
            "timestamp": datetime(2015, 3, 1, 12, 0, n),
            "duration": 1.0,
            "device": None,
        }
        for n in range(12)
        for u in range(n + 1)
    ]
    await loaded_store.insert_many("page_visits", visits)
    derived = await default_funnel.resolve(loaded_store)
    assert derived is not None and derived.derived
    # By users: t11 12, t10 11, t09 10, t08 9, then home 8 and search 8 (by name), t07 8 after them
    # ("home" < "search" < "t07"), then payment 7, t06 7, confirmation 5 ... cut after ten.
    assert derived.steps == (
        "t11", "t10", "t09", "t08", "home", "search", "t07", "payment", "t06", "t05",
    )  # fmt: skip
    assert len(derived.steps) == default_funnel.DERIVED_MAX_STEPS


async def test_no_default_without_visits(store: DocumentStore) -> None:
    assert await default_funnel.resolve(store) is None


# -- malformed arguments -------------------------------------------------------------------------------------


async def test_unknown_collection_is_bad_input(store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await store.insert_many("not_a_collection", [{"x": 1}])
    with pytest.raises(BadInput):
        await store.upsert_many("not_a_collection", [{"x": 1}])


async def test_replace_funnel_analytics_inverted_range_is_bad_input(loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await loaded_store.replace_funnel_analytics(day("2015-01-06"), day("2015-01-05"), [])
    assert await loaded_store.count("funnel_analytics") == 6  # nothing deleted


async def test_close_is_idempotent(store: DocumentStore) -> None:
    await store.close()
    await store.close()  # and the fixture closes it a third time
    # Closed for real, not a no-op: reads are refused as unavailable.
    with pytest.raises(StoreUnavailable):
        await store.users_by_ids([1])
    with pytest.raises(StoreUnavailable):
        await store.ping()
