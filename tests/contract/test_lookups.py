"""Batch lookups, user listing, page types and counts: key order, missing/duplicate keys, sort rules."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.errors import BadInput, StoreUnavailable
from gateway.models import UserFilter, UserPage
from gateway.stores.contracts import DocumentStore
from gateway.stores.funnel_math import default_order
from tests.contract.fixture_data import (
    INTERACTION_BY_ID,
    PAGE_TYPES,
    SESSION_BY_ID,
    USER_BY_ID,
    VISIT_BY_ID,
    day,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store


def visits(*event_ids: str) -> list[dict]:
    return [VISIT_BY_ID[e] for e in event_ids]


def sessions(*session_ids: str) -> list[dict]:
    return [SESSION_BY_ID[s] for s in session_ids]


def interactions(*event_ids: str) -> list[dict]:
    return [INTERACTION_BY_ID[e] for e in event_ids]


# -- empty input ------------------------------------------------------------------------------------


async def test_empty_inputs_give_empty_lists(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.users_by_ids([]) == []
    assert await shared_loaded_store.sessions_by_user_ids([]) == []
    assert await shared_loaded_store.sessions_by_ids([]) == []
    assert await shared_loaded_store.visits_by_session_ids([]) == []
    assert await shared_loaded_store.visits_by_user_ids([]) == []
    assert await shared_loaded_store.interactions_by_session_ids([]) == []
    assert await shared_loaded_store.interactions_by_user_ids([]) == []


# -- single entities ------------------------------------------------------------------------------


async def test_users_by_ids_in_key_order_with_missing_and_duplicates(
    shared_loaded_store: DocumentStore,
) -> None:
    got = await shared_loaded_store.users_by_ids([30, 999, 10, 30, 100, 60])
    # Whole documents come back exactly as written: date as a date, None kept, attributes as a dict,
    # no adapter internals (_id, rowid).
    assert got == [USER_BY_ID[30], None, USER_BY_ID[10], USER_BY_ID[30], USER_BY_ID[100], USER_BY_ID[60]]
    assert got[0] is not None and type(got[0]["date"]) is date  # a date, not a midnight datetime


async def test_users_by_ids_only_unknown(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.users_by_ids([5, 6]) == [None, None]


async def test_sessions_by_ids_in_key_order(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.sessions_by_ids(["s90b", "nope", "s10a", "s90b"])
    assert got == [SESSION_BY_ID["s90b"], None, SESSION_BY_ID["s10a"], SESSION_BY_ID["s90b"]]


# -- lists per key ----------------------------------------------------------------------------------


async def test_sessions_by_user_ids_sorted_by_start_then_id(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.sessions_by_user_ids([100, 70, 999, 10, 100, 80])
    # u100: s100a (02-25), s100b (02-26), then s100c and s100d both 02-27 18:00:00 -> session id decides
    # (s100d was written first). u70 exists without sessions, 999 does not exist: both [].
    u100 = sessions("s100a", "s100b", "s100c", "s100d")
    assert got == [u100, [], [], sessions("s10a"), u100, sessions("s80a", "s80b")]


async def test_visits_by_session_ids_sorted_by_time_then_event_id(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.visits_by_session_ids(["s20a", "nope", "s100c", "s20a", "s10a"])
    # s20a: home v20-2 and search v20-1 share 09:00:00 -> v20-1 first although written second.
    s20a = visits("v20-1", "v20-2", "v20-3")
    s10a = visits("v10-1", "v10-2", "v10-3", "v10-4", "v10-5", "v10-6")
    assert got == [s20a, [], visits("v100-5"), s20a, s10a]


async def test_visits_by_user_ids_span_sessions(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.visits_by_user_ids([100, 70, 90, 12345])
    # u100's four sessions; v100-5/v100-6 share 2015-02-27 18:00:00 (v100-6 written first).
    u100 = visits("v100-1", "v100-2", "v100-3", "v100-4", "v100-5", "v100-6")
    assert got == [u100, [], visits("v90-1", "v90-2", "v90-3"), []]


async def test_interactions_by_session_ids_sorted(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.interactions_by_session_ids(["s60a", "s90a", "s40a", "s60a"])
    # s60a: i60-a and i60-b share 16:01:05; s40a: i40-2 and i40-3 share 08:10:05 (i40-3 written first);
    # s90a has no interactions.
    s60a = interactions("i60-a", "i60-b")
    assert got == [s60a, [], interactions("i40-1", "i40-2", "i40-3"), s60a]


async def test_interactions_by_user_ids_sorted_across_sessions(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.interactions_by_user_ids([40, 999, 10, 70, 40, 90])
    # u40: i40-2 and i40-3 share 08:10:05 -> event id decides (i40-3 was written first). u70 has sessions
    # but no interactions, 999 does not exist: both []. u90's interactions are all in its second session.
    u40 = interactions("i40-1", "i40-2", "i40-3")
    u10 = interactions("i10-1", "i10-2", "i10-3", "i10-4", "i10-5")
    assert got == [u40, [], u10, [], u40, interactions("i90-1", "i90-2")]


async def test_interactions_by_user_ids_rejects_non_integer_ids(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.interactions_by_user_ids(["40"])  # type: ignore[list-item]


# -- list_users ---------------------------------------------------------------------------------------


async def test_list_users_first_page(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.list_users(UserFilter(), 3, None) == UserPage(
        [10, 20, 30], total=10, has_next=True
    )


async def test_list_users_keyset_pages(shared_loaded_store: DocumentStore) -> None:
    # total counts every match of the filter, whatever the cursor.
    assert await shared_loaded_store.list_users(UserFilter(), 3, 30) == UserPage(
        [40, 50, 60], total=10, has_next=True
    )
    assert await shared_loaded_store.list_users(UserFilter(), 3, 90) == UserPage(
        [100], total=10, has_next=False
    )
    assert await shared_loaded_store.list_users(UserFilter(), 3, 100) == UserPage(
        [], total=10, has_next=False
    )


async def test_list_users_cursor_between_ids(shared_loaded_store: DocumentStore) -> None:
    # 25 is no user id: the page starts at the next id above it.
    assert await shared_loaded_store.list_users(UserFilter(), 2, 25) == UserPage(
        [30, 40], total=10, has_next=True
    )


async def test_list_users_exact_fit_has_no_next(shared_loaded_store: DocumentStore) -> None:
    all_ids = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert await shared_loaded_store.list_users(UserFilter(), 10, None) == UserPage(
        all_ids, total=10, has_next=False
    )
    assert await shared_loaded_store.list_users(UserFilter(), 9, None) == UserPage(
        all_ids[:9], total=10, has_next=True
    )


@pytest.mark.parametrize(
    ("filter", "first", "expected"),
    [
        # desktop: 10 30 50 80 100
        (UserFilter(device="desktop"), 10, UserPage([10, 30, 50, 80, 100], total=5, has_next=False)),
        # mobile and male: 40 90 (70 and 20 are female)
        (UserFilter(device="mobile", sex="male"), 10, UserPage([40, 90], total=2, has_next=False)),
        # female: 20 30 60 70 100 -> first two, more to come
        (UserFilter(sex="female"), 2, UserPage([20, 30], total=5, has_next=True)),
        # users.date >= 2015-02-01: 50 (02-02) 60 (02-03) 70 (02-14) 80 (02-19); 100 has no date
        (UserFilter(start=date(2015, 2, 1)), 10, UserPage([50, 60, 70, 80], total=4, has_next=False)),
        # inclusive on both ends: 20 (01-06) 30 (01-12) 40 (01-20) 90 (01-31); 10 (01-05) is out
        (
            UserFilter(start=day("2015-01-06"), end=day("2015-01-31")),
            10,
            UserPage([20, 30, 40, 90], total=4, has_next=False),
        ),
        # end only: up to 01-12 -> 10 20 30
        (UserFilter(end=day("2015-01-12")), 10, UserPage([10, 20, 30], total=3, has_next=False)),
        # device and date together: desktop with date in February -> 50 80
        (
            UserFilter(device="desktop", start=day("2015-02-01"), end=day("2015-02-28")),
            10,
            UserPage([50, 80], total=2, has_next=False),
        ),
        (UserFilter(device="tablet"), 10, UserPage([], total=0, has_next=False)),
    ],
    ids=["device", "device+sex", "sex-paged", "start", "start+end", "end", "device+range", "nobody"],
)
async def test_list_users_filters(
    shared_loaded_store: DocumentStore, filter: UserFilter, first: int, expected: UserPage
) -> None:
    assert await shared_loaded_store.list_users(filter, first, None) == expected


async def test_list_users_filtered_second_page(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.list_users(UserFilter(sex="female"), 2, 30)
    assert got == UserPage([60, 70], total=5, has_next=True)


async def test_list_users_page_of_zero(shared_loaded_store: DocumentStore) -> None:
    # At most 0 ids; there are matches beyond this empty page.
    got = await shared_loaded_store.list_users(UserFilter(), 0, None)
    assert got == UserPage([], total=10, has_next=True)


async def test_list_users_on_empty_store(store: DocumentStore) -> None:
    assert await store.list_users(UserFilter(), 5, None) == UserPage([], total=0, has_next=False)


# -- page types and counts ----------------------------------------------------------------------------


async def test_page_types_sorted_distinct(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.page_types() == PAGE_TYPES


async def test_page_types_empty_store(store: DocumentStore) -> None:
    assert await store.page_types() == []


# Distinct users per page, from the fixture's stories (module docstring of fixture_data):
#   home:         10 20 30 40 50 60 80 90      = 8  (100 never visits home; 70 visits nothing)
#   search:       10 20 40 50 60 80 90 100     = 8  (30 skips search)
#   payment:      10 30 40 50 60 80 90         = 7  (20 stops at search, 100 never pays)
#   confirmation: 10 30 50 60 80               = 5
#   product:      10 20 100                    = 3
# Repeated visits (10's homes, 40's two searches) count once.
PAGE_REACH = {"home": 8, "search": 8, "payment": 7, "confirmation": 5, "product": 3}


async def test_page_reach_counts_distinct_users(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.page_reach() == PAGE_REACH


async def test_page_reach_orders_the_default_funnel_like_ingest(shared_loaded_store: DocumentStore) -> None:
    # Ingest's rule on the store's counts: most users first; home and search tie at 8, so by name.
    order = default_order(await shared_loaded_store.page_reach())
    assert order == ["home", "search", "payment", "confirmation", "product"]


async def test_page_reach_empty_store(store: DocumentStore) -> None:
    assert await store.page_reach() == {}


async def test_counts(shared_loaded_store: DocumentStore) -> None:
    got = {
        c: await shared_loaded_store.count(c)
        for c in (
            "users",
            "page_visits",
            "user_interactions",
            "user_sessions",
            "funnel_analytics",
            "funnel_definitions",
        )
    }
    # 10 users; visits 6+3+3+4+4+5+4+3+6 = 38; interactions 5+2+1+3+3+2+1+2 = 19; 14 sessions; 6 rows.
    assert got == {
        "users": 10,
        "page_visits": 38,
        "user_interactions": 19,
        "user_sessions": 14,
        "funnel_analytics": 6,
        "funnel_definitions": 0,
    }


async def test_counts_empty_store(store: DocumentStore) -> None:
    for collection in ("users", "page_visits", "user_interactions", "user_sessions", "funnel_analytics"):
        assert await store.count(collection) == 0, collection


async def test_ping(store: DocumentStore) -> None:
    assert await store.ping() is None  # an open store answers...
    await store.close()
    with pytest.raises(StoreUnavailable):  # ...and a ping that reaches nothing says so: it is no stub
        await store.ping()


# -- malformed arguments ----------------------------------------------------------------------------


async def test_list_users_inverted_range_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.list_users(
            UserFilter(start=day("2015-02-01"), end=day("2015-01-01")), 5, None
        )


async def test_list_users_negative_page_size_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.list_users(UserFilter(), -1, None)


async def test_count_unknown_collection_is_bad_input(store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await store.count("not_a_collection")
