"""The hand-computed funnel expectations checked against the reference Python semantics
(gateway/stores/funnel_math.py): the fixture pins the reference just as it pins the adapters.

UserMatch lists are built here straight from fixture_data (filter, per-step events, durations), then
match_steps/funnel_result/trend give the answer. No store is involved.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.models import Breakdown, FunnelQuery, Interval, StepOrder, UserFilter
from gateway.stores.funnel_math import UserMatch, funnel_result, match_steps, trend
from tests.contract import fixture_data as fx
from tests.contract.fixture_data import STEPS, USERS, VISITS, WINDOW, FunnelExpectation, assert_funnel, day


def _passes(user: dict, flt: UserFilter) -> bool:
    return (flt.device is None or user["device"] == flt.device) and (
        flt.sex is None or user["sex"] == flt.sex
    )


def user_matches(query: FunnelQuery) -> list[UserMatch]:
    """Every user with a step-1 match (or at least an anchor), as the adapters would feed summarise."""
    flt = query.filter
    out: list[UserMatch] = []
    for user in USERS:
        if not _passes(user, flt):
            continue
        visits = [
            v
            for v in VISITS
            if v["user_id"] == user["user_id"]
            and (flt.start is None or v["timestamp"].date() >= flt.start)
            and (flt.end is None or v["timestamp"].date() <= flt.end)
        ]
        events = [
            (query.steps.index(v["page_type"]), v["timestamp"])
            for v in visits
            if v["page_type"] in query.steps
        ]
        anchor, times = match_steps(events, len(query.steps), query.order, query.window_seconds)
        if anchor is None:
            continue
        time_on_step = [sum(v["duration"] for v in visits if v["page_type"] == s) for s in query.steps]
        group = user[query.breakdown.value] if query.breakdown else None
        out.append(UserMatch(user["user_id"], group, anchor, times, time_on_step))
    return out


def reach(query: FunnelQuery) -> dict[int, int]:
    return {m.user_id: len(m.times) for m in user_matches(query) if m.times}


CASES: Sequence[tuple[str, FunnelQuery, FunnelExpectation]] = [
    ("ordered", FunnelQuery(STEPS), fx.ORDERED),
    ("ordered-window", FunnelQuery(STEPS, window_seconds=WINDOW), fx.ORDERED_WINDOW),
    ("strict", FunnelQuery(STEPS, order=StepOrder.STRICT), fx.STRICT),
    ("strict-window", FunnelQuery(STEPS, order=StepOrder.STRICT, window_seconds=WINDOW), fx.STRICT_WINDOW),
    ("unordered", FunnelQuery(STEPS, order=StepOrder.UNORDERED), fx.UNORDERED),
    (
        "unordered-window",
        FunnelQuery(STEPS, order=StepOrder.UNORDERED, window_seconds=WINDOW),
        fx.UNORDERED_WINDOW,
    ),
    ("desktop", FunnelQuery(STEPS, filter=UserFilter(device="desktop")), fx.DEVICE_DESKTOP),
    ("mobile", FunnelQuery(STEPS, filter=UserFilter(device="mobile")), fx.DEVICE_MOBILE),
    ("female", FunnelQuery(STEPS, filter=UserFilter(sex="female")), fx.SEX_FEMALE),
    ("male", FunnelQuery(STEPS, filter=UserFilter(sex="male")), fx.SEX_MALE),
    (
        "february",
        FunnelQuery(STEPS, filter=UserFilter(start=day("2015-02-01"), end=day("2015-02-28"))),
        fx.FEBRUARY,
    ),
    (
        "january",
        FunnelQuery(STEPS, filter=UserFilter(start=day("2015-01-01"), end=day("2015-01-31"))),
        fx.JANUARY,
    ),
    ("nobody", FunnelQuery(STEPS, filter=UserFilter(device="tablet")), fx.NOBODY),
    ("wishlist", FunnelQuery(("home", "wishlist")), fx.HOME_WISHLIST),
    ("search-only", FunnelQuery(("search",)), fx.SEARCH_ONLY),
]


@pytest.mark.parametrize(("query", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reference_funnel(query: FunnelQuery, expected: FunnelExpectation) -> None:
    result = funnel_result(query.steps, user_matches(query), breakdown=False)
    assert_funnel(result.steps, result.overall_conversion_rate, expected)


@pytest.mark.parametrize(
    ("query", "expected"),
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
def test_reference_reach_per_user(query: FunnelQuery, expected: dict[int, int]) -> None:
    assert reach(query) == expected


def test_reference_window_boundary() -> None:
    got = funnel_result(STEPS, user_matches(FunnelQuery(STEPS, window_seconds=WINDOW - 1)), breakdown=False)
    assert [s.users for s in got.steps] == [8, 5, 3, 2]


@pytest.mark.parametrize(
    ("breakdown", "keys", "expected"),
    [
        (
            Breakdown.DEVICE,
            ["desktop", "mobile", None],
            [fx.DEVICE_DESKTOP, fx.DEVICE_MOBILE, fx.DEVICE_NONE],
        ),
        (Breakdown.SEX, ["female", "male", None], [fx.SEX_FEMALE, fx.SEX_MALE, fx.SEX_NONE]),
    ],
    ids=["device", "sex"],
)
def test_reference_breakdown(breakdown: Breakdown, keys: list, expected: list[FunnelExpectation]) -> None:
    query = FunnelQuery(STEPS, breakdown=breakdown)
    result = funnel_result(STEPS, user_matches(query), breakdown=True)
    assert_funnel(result.steps, result.overall_conversion_rate, fx.ORDERED)
    assert [b.key for b in result.breakdowns] == keys
    for got, exp in zip(result.breakdowns, expected, strict=True):
        assert_funnel(got.steps, got.overall_conversion_rate, exp)


def test_reference_desktop_by_sex() -> None:
    query = FunnelQuery(STEPS, filter=UserFilter(device="desktop"), breakdown=Breakdown.SEX)
    result = funnel_result(STEPS, user_matches(query), breakdown=True)
    assert [b.key for b in result.breakdowns] == ["female", "male", None]
    for got, exp in zip(result.breakdowns, [fx.DESKTOP_FEMALE, fx.DESKTOP_MALE, fx.SEX_NONE], strict=True):
        assert_funnel(got.steps, got.overall_conversion_rate, exp)


def test_reference_trend_month() -> None:
    points = trend(STEPS, user_matches(FunnelQuery(STEPS)), Interval.MONTH)
    assert [p.period for p in points] == [period for period, _ in fx.TREND_MONTH]
    for point, (_, expected) in zip(points, fx.TREND_MONTH, strict=True):
        assert_funnel(point.steps, point.conversion_rate, expected)


@pytest.mark.parametrize(
    ("order", "interval", "expected"),
    [
        (StepOrder.ORDERED, Interval.WEEK, fx.TREND_WEEK_ORDERED),
        (StepOrder.ORDERED, Interval.DAY, fx.TREND_DAY_ORDERED),
        (StepOrder.UNORDERED, Interval.DAY, fx.TREND_DAY_UNORDERED),
    ],
    ids=["week", "day", "unordered-day"],
)
def test_reference_trend_points(order: StepOrder, interval: Interval, expected: list) -> None:
    points = trend(STEPS, user_matches(FunnelQuery(STEPS, order=order)), interval)
    got = [(p.period, [s.users for s in p.steps]) for p in points]
    assert got == [(period, users) for period, users, _ in expected]
    assert [p.conversion_rate for p in points] == pytest.approx([rate for _, _, rate in expected])


def test_reference_unordered_cohort_of_t0() -> None:
    points = trend(STEPS, user_matches(FunnelQuery(STEPS, order=StepOrder.UNORDERED)), Interval.DAY)
    assert points[-1].period == day("2015-02-19")
    assert_funnel(points[-1].steps, points[-1].conversion_rate, fx.TREND_DAY_UNORDERED_0219)
