"""DocumentStore.funnel against the hand-computed expectations of fixture_data."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from gateway.errors import BadInput
from gateway.models import Breakdown, FunnelQuery, Interval, StepOrder, UserFilter
from gateway.stores.collections import PAGE_VISITS, USERS
from gateway.stores.contracts import DocumentStore
from tests.contract import fixture_data as fx
from tests.contract.fixture_data import STEPS, WINDOW, FunnelExpectation, assert_funnel, day

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store

FEBRUARY = UserFilter(start=day("2015-02-01"), end=day("2015-02-28"))
JANUARY = UserFilter(start=day("2015-01-01"), end=day("2015-01-31"))


@pytest.mark.parametrize(
    ("order", "window", "expected"),
    [
        (StepOrder.ORDERED, None, fx.ORDERED),
        (StepOrder.ORDERED, WINDOW, fx.ORDERED_WINDOW),
        (StepOrder.STRICT, None, fx.STRICT),
        (StepOrder.STRICT, WINDOW, fx.STRICT_WINDOW),
        (StepOrder.UNORDERED, None, fx.UNORDERED),
        (StepOrder.UNORDERED, WINDOW, fx.UNORDERED_WINDOW),
    ],
    ids=["ordered", "ordered-window", "strict", "strict-window", "unordered", "unordered-window"],
)
async def test_funnel_orders_and_windows(
    shared_loaded_store: DocumentStore, order: StepOrder, window: int | None, expected: FunnelExpectation
) -> None:
    result = await shared_loaded_store.funnel(FunnelQuery(STEPS, order=order, window_seconds=window))
    assert_funnel(result.steps, result.overall_conversion_rate, expected)
    assert result.breakdowns == []


async def test_window_boundary_is_inclusive(shared_loaded_store: DocumentStore) -> None:
    # One second less than WINDOW: u50's search at anchor+600 no longer counts (u50 stops at home), so
    # search loses u50 compared with ORDERED_WINDOW: [8, 6-1, 3, 2].
    result = await shared_loaded_store.funnel(FunnelQuery(STEPS, window_seconds=WINDOW - 1))
    assert [s.users for s in result.steps] == [8, 5, 3, 2]


async def test_funnel_by_device(shared_loaded_store: DocumentStore) -> None:
    result = await shared_loaded_store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.DEVICE))
    assert_funnel(result.steps, result.overall_conversion_rate, fx.ORDERED)
    assert [b.key for b in result.breakdowns] == ["desktop", "mobile", None]
    for got, expected in zip(
        result.breakdowns, [fx.DEVICE_DESKTOP, fx.DEVICE_MOBILE, fx.DEVICE_NONE], strict=True
    ):
        assert_funnel(got.steps, got.overall_conversion_rate, expected)


async def test_funnel_by_sex(shared_loaded_store: DocumentStore) -> None:
    result = await shared_loaded_store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.SEX))
    assert_funnel(result.steps, result.overall_conversion_rate, fx.ORDERED)
    assert [b.key for b in result.breakdowns] == ["female", "male", None]
    for got, expected in zip(result.breakdowns, [fx.SEX_FEMALE, fx.SEX_MALE, fx.SEX_NONE], strict=True):
        assert_funnel(got.steps, got.overall_conversion_rate, expected)


async def test_unordered_breakdown_users(shared_loaded_store: DocumentStore) -> None:
    # UNORDERED reach: desktop u10(4) u30(1) u50(4) u80(4) -> [4,3,3,3]; mobile u20(2) u40(3) u90(3)
    # -> [3,3,2,0]; no device u60(4) -> [1,1,1,1].
    result = await shared_loaded_store.funnel(
        FunnelQuery(STEPS, order=StepOrder.UNORDERED, breakdown=Breakdown.DEVICE)
    )
    got = [(b.key, [s.users for s in b.steps]) for b in result.breakdowns]
    assert got == [("desktop", [4, 3, 3, 3]), ("mobile", [3, 3, 2, 0]), (None, [1, 1, 1, 1])]


async def test_unordered_window_breakdown_leaves_out_users_without_step_one(
    shared_loaded_store: DocumentStore,
) -> None:
    # With WINDOW, u80 reaches nothing (home 47160 s after t0): desktop keeps u10(4) u30(1) u50(2)
    # -> [3,2,1,1]; mobile u20(2) u40(2) u90(3) -> [3,3,1,0]; u60(4).
    query = FunnelQuery(STEPS, order=StepOrder.UNORDERED, window_seconds=WINDOW, breakdown=Breakdown.DEVICE)
    result = await shared_loaded_store.funnel(query)
    got = [(b.key, [s.users for s in b.steps]) for b in result.breakdowns]
    assert got == [("desktop", [3, 2, 1, 1]), ("mobile", [3, 3, 1, 0]), (None, [1, 1, 1, 1])]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (UserFilter(device="desktop"), fx.DEVICE_DESKTOP),
        (UserFilter(device="mobile"), fx.DEVICE_MOBILE),
        (UserFilter(sex="female"), fx.SEX_FEMALE),
        (UserFilter(sex="male"), fx.SEX_MALE),
        (FEBRUARY, fx.FEBRUARY),
        (JANUARY, fx.JANUARY),
        (UserFilter(device="tablet"), fx.NOBODY),
        (UserFilter(start=day("2016-01-01")), fx.NOBODY),
    ],
    ids=["desktop", "mobile", "female", "male", "february", "january", "no-device-match", "no-date-match"],
)
async def test_funnel_filters(
    shared_loaded_store: DocumentStore, filter: UserFilter, expected: FunnelExpectation
) -> None:
    result = await shared_loaded_store.funnel(FunnelQuery(STEPS, filter=filter))
    assert_funnel(result.steps, result.overall_conversion_rate, expected)


async def test_filter_and_breakdown_together(shared_loaded_store: DocumentStore) -> None:
    query = FunnelQuery(STEPS, filter=UserFilter(device="desktop"), breakdown=Breakdown.SEX)
    result = await shared_loaded_store.funnel(query)
    assert_funnel(result.steps, result.overall_conversion_rate, fx.DEVICE_DESKTOP)
    assert [b.key for b in result.breakdowns] == ["female", "male", None]
    for got, expected in zip(
        result.breakdowns, [fx.DESKTOP_FEMALE, fx.DESKTOP_MALE, fx.SEX_NONE], strict=True
    ):
        assert_funnel(got.steps, got.overall_conversion_rate, expected)


async def test_nobody_with_breakdown_has_no_groups(shared_loaded_store: DocumentStore) -> None:
    query = FunnelQuery(STEPS, filter=UserFilter(device="tablet"), breakdown=Breakdown.SEX)
    result = await shared_loaded_store.funnel(query)
    assert_funnel(result.steps, result.overall_conversion_rate, fx.NOBODY)
    assert result.breakdowns == []


async def test_step_nobody_visits(shared_loaded_store: DocumentStore) -> None:
    result = await shared_loaded_store.funnel(FunnelQuery(("home", "wishlist")))
    assert_funnel(result.steps, result.overall_conversion_rate, fx.HOME_WISHLIST)


async def test_first_step_nobody_visits(shared_loaded_store: DocumentStore) -> None:
    result = await shared_loaded_store.funnel(FunnelQuery(("wishlist", "home")))
    assert_funnel(
        result.steps,
        result.overall_conversion_rate,
        FunnelExpectation(fx.zero_steps(("wishlist", "home")), 0.0),
    )


async def test_single_step_funnel(shared_loaded_store: DocumentStore) -> None:
    result = await shared_loaded_store.funnel(FunnelQuery(("search",)))
    assert_funnel(result.steps, result.overall_conversion_rate, fx.SEARCH_ONLY)


async def test_funnel_on_empty_store(store: DocumentStore) -> None:
    result = await store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.DEVICE))
    assert_funnel(result.steps, result.overall_conversion_rate, fx.NOBODY)
    assert result.breakdowns == []


async def test_funnel_without_steps_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.funnel(FunnelQuery(()))


async def test_funnel_with_repeated_step_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    # FunnelQuery is "a funnel over distinct steps".
    with pytest.raises(BadInput):
        await shared_loaded_store.funnel(FunnelQuery(("home", "search", "home")))


async def test_funnel_negative_window_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.funnel(FunnelQuery(STEPS, window_seconds=-1))


async def test_funnel_window_past_graphqls_int_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    # 10**13 s overflowed the funnel index's arithmetic (OverflowError) where SQL answered.
    store = shared_loaded_store
    assert (await store.funnel(FunnelQuery(STEPS, window_seconds=2**31 - 1))).steps[0].users == 8
    for window in (2**31, 10**13):
        with pytest.raises(BadInput, match=r"1\.\.2147483647"):
            await store.funnel(FunnelQuery(STEPS, window_seconds=window))


async def test_funnel_date_that_is_not_a_date_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput, match="must be dates"):
        await shared_loaded_store.funnel(FunnelQuery(STEPS, UserFilter(start="2015-01-01")))  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="must be dates"):
        await shared_loaded_store.dashboard(None, "2015-01-31")  # type: ignore[arg-type]


async def test_a_device_named_all_is_nobodys_even_on_a_day_with_rows(store: DocumentStore) -> None:
    # "all" is the stored day rows' name for everyone; as a filter it is a device nobody has.
    day_ = date(2015, 3, 2)
    await store.insert_many(
        USERS, [{"user_id": 1, "device": "desktop", "sex": None, "date": day_, "attributes": {}}]
    )
    await store.insert_many(PAGE_VISITS, [{"event_id": "a1", "user_id": 1, "session_id": "s1", "page_type": STEPS[0],
                                           "timestamp": datetime(2015, 3, 2, 9), "duration": 1.0, "device": "desktop"}])  # fmt: skip
    await store.set_default_funnel(list(STEPS))  # DuckDB keeps day rows of the default funnel
    for _ in range(2):  # the first ask computes the day's rows, the second reads them
        on_day = UserFilter(start=day_, end=day_)
        assert (await store.funnel(FunnelQuery(STEPS, on_day))).steps[0].users == 1
        named_all = UserFilter(start=day_, end=day_, device="all")
        assert (await store.funnel(FunnelQuery(STEPS, named_all))).steps[0].users == 0


async def test_funnel_inverted_range_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.funnel(
            FunnelQuery(STEPS, filter=UserFilter(start=day("2015-02-01"), end=day("2015-01-31")))
        )


async def test_median_is_the_decimal_it_is(store: DocumentStore) -> None:
    # Two users reach search 34.632 s and 34.634 s after home: the median is 34.633 exactly. The float
    # mean of the two is 34.632999999999996; an analyst reading the answer should see 34.633.
    start = datetime(2015, 3, 2, 12, 0, 0)
    users = [
        {"user_id": u, "device": "desktop", "sex": None, "date": start.date(), "attributes": {}}
        for u in (1, 2)
    ]
    visits = []
    for user, offset_ms in ((1, 34_632), (2, 34_634)):
        for i, (page, at) in enumerate(
            ((STEPS[0], start), (STEPS[1], start + timedelta(milliseconds=offset_ms)))
        ):
            visits.append({"event_id": f"m{user}-{i}", "user_id": user, "session_id": f"s{user}", "page_type": page,
                           "timestamp": at, "duration": 1.0, "device": "desktop"})  # fmt: skip
    await store.insert_many(USERS, users)
    await store.insert_many(PAGE_VISITS, visits)
    result = await store.funnel(FunnelQuery(STEPS[:2]))
    assert [s.users for s in result.steps] == [2, 2]
    assert [s.median_time_to_convert for s in result.steps] == [0.0, 34.633]
    assert repr(result.steps[1].median_time_to_convert) == "34.633"
    trend = await store.funnel_trend(FunnelQuery(STEPS[:2]), Interval.DAY)
    assert [p.steps[1].median_time_to_convert for p in trend] == [34.633]


async def test_mean_time_on_page_is_the_same_float_in_every_engine(store: DocumentStore) -> None:
    # 0.1, 0.2 and 0.3 s on home average to 0.20000000000000004 summed left to right and to
    # 0.19999999999999998 by fsum. In whole microseconds the sum is exact in any order: 0.2.
    # Over 32 users (a power of two: a mean of milliseconds often ends in ...5 there), 31 at 15.614 s
    # and one at 15.616 s make 499.65 s: 15.6140625, the same float whoever adds them.
    start = datetime(2015, 3, 2, 12, 0, 0)
    seconds = [0.1, 0.2, 0.3] + [15.614] * 31 + [15.616]
    users = [
        {"user_id": u, "device": None, "sex": None, "date": start.date(), "attributes": {}}
        for u in range(len(seconds))
    ]
    visits = [
        {"event_id": f"t{u}", "user_id": u, "session_id": f"s{u}", "page_type": STEPS[0],
         "timestamp": start + timedelta(seconds=u), "duration": spent, "device": None}
        for u, spent in enumerate(seconds)
    ]  # fmt: skip
    await store.insert_many(USERS, users[:3])
    await store.insert_many(PAGE_VISITS, visits[:3])
    result = await store.funnel(FunnelQuery(STEPS[:2]))
    assert [s.users for s in result.steps] == [3, 0]
    assert repr(result.steps[0].avg_time_spent) == "0.2"
    assert result.steps[1].avg_time_spent is None
    await store.delete_users([0, 1, 2])
    await store.insert_many(USERS, users[3:])
    await store.insert_many(PAGE_VISITS, visits[3:])
    result = await store.funnel(FunnelQuery(STEPS[:2]))
    assert result.steps[0].users == 32
    assert repr(result.steps[0].avg_time_spent) == "15.6140625"  # 499,650,000 us / 32,000,000, exactly
