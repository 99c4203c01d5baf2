"""DocumentStore.funnel_trend (cohorts by anchor period) and funnel_users (who dropped off / converted)."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.analytics.trend_periods import fill_periods
from gateway.errors import BadInput
from gateway.models import Breakdown, FunnelQuery, Interval, StepOrder, TrendPoint, UserFilter, UserPage
from gateway.stores.collections import PAGE_VISITS, USERS
from gateway.stores.contracts import DocumentStore
from tests.contract import fixture_data as fx
from tests.contract.fixture_data import STEPS, WINDOW, assert_funnel, day

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store

FEBRUARY = UserFilter(start=day("2015-02-01"), end=day("2015-02-28"))


def users_per_point(points: list[TrendPoint]) -> list[tuple[date, list[int], float]]:
    return [(p.period, [s.users for s in p.steps], p.conversion_rate) for p in points]


def assert_points(points: list[TrendPoint], expected: list[tuple[date, list[int], float]]) -> None:
    got = users_per_point(points)
    assert [(p, u) for p, u, _ in got] == [(p, u) for p, u, _ in expected]
    assert [r for _, _, r in got] == pytest.approx([r for _, _, r in expected])


# -- funnel_trend -------------------------------------------------------------------------------------


async def test_trend_by_month(shared_loaded_store: DocumentStore) -> None:
    points = await shared_loaded_store.funnel_trend(FunnelQuery(STEPS), Interval.MONTH)
    assert [p.period for p in points] == [period for period, _ in fx.TREND_MONTH]
    for point, (_, expected) in zip(points, fx.TREND_MONTH, strict=True):
        assert_funnel(point.steps, point.conversion_rate, expected)


async def test_trend_by_week_starts_monday(shared_loaded_store: DocumentStore) -> None:
    points = await shared_loaded_store.funnel_trend(FunnelQuery(STEPS), Interval.WEEK)
    assert all(p.period.weekday() == 0 for p in points)
    assert_points(points, fx.TREND_WEEK_ORDERED)


async def test_trend_by_day(shared_loaded_store: DocumentStore) -> None:
    points = await shared_loaded_store.funnel_trend(FunnelQuery(STEPS), Interval.DAY)
    assert_points(points, fx.TREND_DAY_ORDERED)


async def test_unordered_trend_uses_t0_cohort(shared_loaded_store: DocumentStore) -> None:
    points = await shared_loaded_store.funnel_trend(
        FunnelQuery(STEPS, order=StepOrder.UNORDERED), Interval.DAY
    )
    assert_points(points, fx.TREND_DAY_UNORDERED)
    last = points[-1]
    assert last.period == date(2015, 2, 19)
    assert_funnel(last.steps, last.conversion_rate, fx.TREND_DAY_UNORDERED_0219)


async def test_trend_ignores_breakdown(shared_loaded_store: DocumentStore) -> None:
    points = await shared_loaded_store.funnel_trend(
        FunnelQuery(STEPS, breakdown=Breakdown.SEX), Interval.MONTH
    )
    assert [p.period for p in points] == [date(2015, 1, 1), date(2015, 2, 1)]
    for point, (_, expected) in zip(points, fx.TREND_MONTH, strict=True):
        assert_funnel(point.steps, point.conversion_rate, expected)


async def test_trend_with_filter(shared_loaded_store: DocumentStore) -> None:
    # February visits only: u50 u60 u80 (u90 lost its home) -> one monthly cohort, the FEBRUARY funnel.
    points = await shared_loaded_store.funnel_trend(FunnelQuery(STEPS, filter=FEBRUARY), Interval.MONTH)
    assert [p.period for p in points] == [date(2015, 2, 1)]
    assert_funnel(points[0].steps, points[0].conversion_rate, fx.FEBRUARY)


async def test_trend_with_window(shared_loaded_store: DocumentStore) -> None:
    # ORDERED_WINDOW reach per user, January cohort u10(4) u20(2) u30(1) u40(2) u90(3) -> [5,4,2,1];
    # February u50(2) u60(4) u80(1) -> [3,2,1,1].
    points = await shared_loaded_store.funnel_trend(FunnelQuery(STEPS, window_seconds=WINDOW), Interval.MONTH)
    assert_points(points, [(date(2015, 1, 1), [5, 4, 2, 1], 1 / 5), (date(2015, 2, 1), [3, 2, 1, 1], 1 / 3)])


async def test_trend_nobody(shared_loaded_store: DocumentStore) -> None:
    query = FunnelQuery(STEPS, filter=UserFilter(device="tablet"))
    assert await shared_loaded_store.funnel_trend(query, Interval.WEEK) == []


async def test_trend_empty_store(store: DocumentStore) -> None:
    assert await store.funnel_trend(FunnelQuery(STEPS), Interval.DAY) == []


# -- the trend's grid on each adapter's periods (gateway/analytics/trend_periods.py) -------------------
# Two users: u1 home+search on Monday 2015-01-05 (week 1), u2 home only on Wednesday 2015-01-28 (in the
# week of Monday 01-26, week 4). Nobody started in the weeks of 01-12 and 01-19.
GAP_STEPS = ("home", "search")
GAP_USERS = [
    {"user_id": 1, "device": "desktop", "sex": "male", "date": day("2015-01-05"), "attributes": {}},
    {"user_id": 2, "device": "mobile", "sex": "female", "date": day("2015-01-28"), "attributes": {}},
]
GAP_VISITS = [
    {"event_id": "g1-1", "user_id": 1, "session_id": "g1", "page_type": "home",
     "timestamp": fx.at("2015-01-05 10:00:00"), "duration": 5.0, "device": "desktop"},
    {"event_id": "g1-2", "user_id": 1, "session_id": "g1", "page_type": "search",
     "timestamp": fx.at("2015-01-05 10:01:00"), "duration": 7.0, "device": "desktop"},
    {"event_id": "g2-1", "user_id": 2, "session_id": "g2", "page_type": "home",
     "timestamp": fx.at("2015-01-28 09:00:00"), "duration": 3.0, "device": "mobile"},
]  # fmt: skip


async def test_weeks_without_entrants_are_filled_between_the_stores_weeks(store: DocumentStore) -> None:
    await store.insert_many(USERS, fx.fresh(GAP_USERS))
    await store.insert_many(PAGE_VISITS, fx.fresh(GAP_VISITS))
    query = FunnelQuery(GAP_STEPS)
    counted = await store.funnel_trend(query, Interval.WEEK)
    assert [p.period for p in counted] == [day("2015-01-05"), day("2015-01-26")]  # the store: no gaps filled
    filled = fill_periods(counted, GAP_STEPS, Interval.WEEK)
    assert_points(
        filled,
        [
            (day("2015-01-05"), [1, 1], 1.0),
            (day("2015-01-12"), [0, 0], 0.0),
            (day("2015-01-19"), [0, 0], 0.0),
            (day("2015-01-26"), [1, 0], 0.0),
        ],
    )
    # A range wider than the data: Wednesday 2014-12-31 is in the week of Monday 12-29, Tuesday
    # 2015-02-03 in that of 02-02; the two cohorts stay where they were.
    wide = UserFilter(start=day("2014-12-31"), end=day("2015-02-03"))
    in_range = await store.funnel_trend(FunnelQuery(GAP_STEPS, filter=wide), Interval.WEEK)
    filled = fill_periods(in_range, GAP_STEPS, Interval.WEEK, wide.start, wide.end)
    assert [(p.period.isoformat(), [s.users for s in p.steps]) for p in filled] == [
        ("2014-12-29", [0, 0]), ("2015-01-05", [1, 1]), ("2015-01-12", [0, 0]),
        ("2015-01-19", [0, 0]), ("2015-01-26", [1, 0]), ("2015-02-02", [0, 0]),
    ]  # fmt: skip
    # By day the store's keys are the calendar days (UTC) the fill generates: 01-05 .. 01-28 is 24 days.
    days = fill_periods(await store.funnel_trend(query, Interval.DAY), GAP_STEPS, Interval.DAY)
    assert len(days) == 24 and sum(p.steps[0].users for p in days) == 2
    assert (days[0].period, days[-1].period) == (day("2015-01-05"), day("2015-01-28"))


# -- funnel_users ------------------------------------------------------------------------------------------

ORDERED = FunnelQuery(STEPS)


@pytest.mark.parametrize(
    ("query", "reach"),
    [
        (FunnelQuery(STEPS), fx.REACH_ORDERED),
        (FunnelQuery(STEPS, window_seconds=WINDOW), fx.REACH_ORDERED_WINDOW),
        (FunnelQuery(STEPS, order=StepOrder.STRICT), fx.REACH_STRICT),
        (FunnelQuery(STEPS, order=StepOrder.STRICT, window_seconds=WINDOW), fx.REACH_STRICT_WINDOW),
        (FunnelQuery(STEPS, order=StepOrder.UNORDERED), fx.REACH_UNORDERED),
        (FunnelQuery(STEPS, order=StepOrder.UNORDERED, window_seconds=WINDOW), fx.REACH_UNORDERED_WINDOW),
    ],
    ids=["ordered", "ordered-window", "strict", "strict-window", "unordered", "unordered-window"],
)
async def test_users_per_step_match_hand_reach(
    shared_loaded_store: DocumentStore, query: FunnelQuery, reach: dict[int, int]
) -> None:
    # "Dropped off after step k" = reached exactly k+1 steps; converted = reached all 4.
    for k in range(len(STEPS) - 1):
        expected = sorted(u for u, n in reach.items() if n == k + 1)
        got = await shared_loaded_store.funnel_users(query, k, False, 100, None)
        assert got == UserPage(expected, total=len(expected), has_next=False), k
    converted = sorted(u for u, n in reach.items() if n == len(STEPS))
    got = await shared_loaded_store.funnel_users(query, 0, True, 100, None)
    assert got == UserPage(converted, total=len(converted), has_next=False)


async def test_dropped_off_ordered_literal(shared_loaded_store: DocumentStore) -> None:
    # Spelled out: home only u30 u80; home+search u20; up to payment u40 u90.
    assert (await shared_loaded_store.funnel_users(ORDERED, 0, False, 10, None)).user_ids == [30, 80]
    assert (await shared_loaded_store.funnel_users(ORDERED, 1, False, 10, None)).user_ids == [20]
    assert (await shared_loaded_store.funnel_users(ORDERED, 2, False, 10, None)).user_ids == [40, 90]


async def test_converted_ignores_step_index(shared_loaded_store: DocumentStore) -> None:
    for k in (0, 2, 3):
        got = await shared_loaded_store.funnel_users(ORDERED, k, True, 10, None)
        assert got == UserPage([10, 50, 60], total=3, has_next=False)


async def test_converted_paginated(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.funnel_users(ORDERED, 0, True, 2, None) == UserPage(
        [10, 50], total=3, has_next=True
    )
    assert await shared_loaded_store.funnel_users(ORDERED, 0, True, 2, 50) == UserPage(
        [60], total=3, has_next=False
    )
    assert await shared_loaded_store.funnel_users(ORDERED, 0, True, 2, 60) == UserPage(
        [], total=3, has_next=False
    )


async def test_dropped_off_paginated_with_cursor_between_ids(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.funnel_users(ORDERED, 0, False, 1, None) == UserPage(
        [30], total=2, has_next=True
    )
    assert await shared_loaded_store.funnel_users(ORDERED, 0, False, 1, 31) == UserPage(
        [80], total=2, has_next=False
    )


async def test_funnel_users_with_filters(shared_loaded_store: DocumentStore) -> None:
    mobile = FunnelQuery(STEPS, filter=UserFilter(device="mobile"))
    assert await shared_loaded_store.funnel_users(mobile, 2, False, 10, None) == UserPage([40, 90], 2, False)
    assert await shared_loaded_store.funnel_users(mobile, 0, True, 10, None) == UserPage([], 0, False)
    # February visits: u50(4) u60(4) u80(1); u90 has no home in February.
    february = FunnelQuery(STEPS, filter=FEBRUARY)
    assert await shared_loaded_store.funnel_users(february, 0, False, 10, None) == UserPage([80], 1, False)
    assert await shared_loaded_store.funnel_users(february, 0, True, 10, None) == UserPage([50, 60], 2, False)


async def test_funnel_users_nobody(shared_loaded_store: DocumentStore) -> None:
    query = FunnelQuery(STEPS, filter=UserFilter(sex="other"))
    assert await shared_loaded_store.funnel_users(query, 1, False, 10, None) == UserPage([], 0, False)


@pytest.mark.parametrize("step_index", [-1, 4])
async def test_funnel_users_step_out_of_range_is_bad_input(
    shared_loaded_store: DocumentStore, step_index: int
) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.funnel_users(ORDERED, step_index, False, 10, None)
