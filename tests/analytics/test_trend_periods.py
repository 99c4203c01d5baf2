"""The trend's grid (gateway/analytics/trend_periods.py): every period of the range, empty ones as zeros,
capped. Every expected date below is worked out by hand from a calendar (2015-01-01 was a Thursday)."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.analytics.trend_periods import MAX_TREND_PERIODS, fill_periods, period_count
from gateway.errors import BadInput
from gateway.models import FunnelStepResult, Interval, TrendPoint

STEPS = ("home", "search", "payment")


def point(period: str, users: list[int]) -> TrendPoint:
    """A counted cohort; only users and the period matter to the grid."""
    steps = [
        FunnelStepResult(
            name=name, users=n, conversion_rate=1.0, drop_off_rate=0.0, conversion_from_start=1.0,
            avg_time_spent=1.0, median_time_to_convert=1.0,
        )
        for name, n in zip(STEPS, users, strict=True)
    ]  # fmt: skip
    return TrendPoint(period=date.fromisoformat(period), steps=steps, conversion_rate=users[-1] / users[0])


def periods(points: list[TrendPoint]) -> list[str]:
    return [p.period.isoformat() for p in points]


def users(points: list[TrendPoint]) -> list[list[int]]:
    return [[s.users for s in p.steps] for p in points]


def test_entrants_in_week_1_and_week_4_give_4_weeks_with_2_and_3_empty() -> None:
    week1, week4 = point("2015-01-05", [2, 1, 1]), point("2015-01-26", [1, 1, 0])
    filled = fill_periods([week4, week1], STEPS, Interval.WEEK)  # any order in, ascending out
    assert periods(filled) == ["2015-01-05", "2015-01-12", "2015-01-19", "2015-01-26"]
    assert users(filled) == [[2, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 0]]
    assert filled[0] is week1 and filled[3] is week4  # counted points pass through untouched
    assert [p.conversion_rate for p in filled] == [0.5, 0.0, 0.0, 0.0]


def test_an_empty_period_is_the_arithmetic_of_a_cohort_of_nobody() -> None:
    empty = fill_periods(
        [point("2015-01-01", [1, 1, 1]), point("2015-01-03", [1, 0, 0])], STEPS, Interval.DAY
    )[1]
    assert empty.period == date(2015, 1, 2)
    assert empty.conversion_rate == 0.0
    assert [
        (s.name, s.users, s.conversion_rate, s.drop_off_rate, s.conversion_from_start) for s in empty.steps
    ] == [("home", 0, 0.0, 0.0, 0.0), ("search", 0, 0.0, 1.0, 0.0), ("payment", 0, 0.0, 1.0, 0.0)]
    assert all(s.avg_time_spent is None and s.median_time_to_convert is None for s in empty.steps)


def test_a_range_wider_than_the_data_is_covered_from_the_period_of_start_to_that_of_end() -> None:
    data = [point("2015-01-12", [1, 1, 1])]  # the week of Monday 01-12, as a store keys it
    # Thursday 2015-01-01 is in the week of Monday 2014-12-29; Tuesday 2015-02-10 in that of 02-09.
    filled = fill_periods(data, STEPS, Interval.WEEK, date(2015, 1, 1), date(2015, 2, 10))
    assert periods(filled) == [
        "2014-12-29", "2015-01-05", "2015-01-12", "2015-01-19", "2015-01-26", "2015-02-02", "2015-02-09",
    ]  # fmt: skip
    assert users(filled)[2] == [1, 1, 1]
    assert sum(p.steps[0].users for p in filled) == 1


def test_months_cross_the_year_and_days_cross_month_ends() -> None:
    months = fill_periods(
        [point("2015-01-01", [3, 2, 1])], STEPS, Interval.MONTH, date(2014, 11, 15), date(2015, 2, 1)
    )
    assert periods(months) == ["2014-11-01", "2014-12-01", "2015-01-01", "2015-02-01"]
    # 2015 is not a leap year: February has 28 days.
    days = fill_periods([point("2015-03-02", [1, 0, 0])], STEPS, Interval.DAY, date(2015, 2, 27), None)
    assert periods(days) == ["2015-02-27", "2015-02-28", "2015-03-01", "2015-03-02"]
    leap = fill_periods([point("2016-02-28", [1, 0, 0]), point("2016-03-01", [1, 0, 0])], STEPS, Interval.DAY)
    assert periods(leap) == ["2016-02-28", "2016-02-29", "2016-03-01"]


def test_an_open_side_is_taken_from_the_data() -> None:
    data = [point("2015-01-05", [1, 0, 0])]
    assert periods(fill_periods(data, STEPS, Interval.DAY, None, date(2015, 1, 7))) == [
        "2015-01-05", "2015-01-06", "2015-01-07",
    ]  # fmt: skip
    assert periods(fill_periods(data, STEPS, Interval.DAY, date(2015, 1, 3), None)) == [
        "2015-01-03", "2015-01-04", "2015-01-05",
    ]  # fmt: skip


def test_nobody_gives_zeros_over_a_closed_range_and_nothing_without_one() -> None:
    filled = fill_periods([], STEPS, Interval.MONTH, date(2015, 1, 31), date(2015, 3, 1))
    assert periods(filled) == ["2015-01-01", "2015-02-01", "2015-03-01"]
    assert users(filled) == [[0, 0, 0]] * 3
    assert fill_periods([], STEPS, Interval.MONTH, date(2015, 1, 31), None) == []
    assert fill_periods([], STEPS, Interval.MONTH) == []


def test_the_last_representable_periods_do_not_step_past_9999_12_31() -> None:
    assert len(fill_periods([], STEPS, Interval.DAY, date(9999, 12, 1), date(9999, 12, 31))) == 31
    assert periods(fill_periods([], STEPS, Interval.MONTH, date(9999, 11, 5), date(9999, 12, 31))) == [
        "9999-11-01", "9999-12-01",
    ]  # fmt: skip
    # 9999-12-31 is a Friday: its week starts Monday 9999-12-27, the week before on 12-20.
    assert periods(fill_periods([], STEPS, Interval.WEEK, date(9999, 12, 20), date(9999, 12, 31))) == [
        "9999-12-20", "9999-12-27",
    ]  # fmt: skip


def test_period_count() -> None:
    assert period_count(date(2015, 1, 1), date(2015, 1, 1), Interval.DAY) == 1
    assert period_count(date(2015, 1, 1), date(2015, 12, 31), Interval.DAY) == 365
    # Thu 2015-01-01 (week of 2014-12-29) to Sun 2015-01-11 (week of 01-05): 2 weeks.
    assert period_count(date(2015, 1, 1), date(2015, 1, 11), Interval.WEEK) == 2
    assert period_count(date(2014, 12, 31), date(2015, 1, 1), Interval.MONTH) == 2
    assert period_count(date(2015, 2, 1), date(2015, 1, 1), Interval.DAY) == 0  # inverted: no grid


def test_the_cap_allows_exactly_max_periods_and_refuses_one_more() -> None:
    assert MAX_TREND_PERIODS == 1000
    # 1970-01 .. 2053-04 is 83 years and 4 months = 83 * 12 + 4 = 1000 months; 2053-05 is the 1001st.
    assert len(fill_periods([], STEPS, Interval.MONTH, date(1970, 1, 1), date(2053, 4, 30))) == 1000
    with pytest.raises(BadInput) as refused:
        fill_periods([], STEPS, Interval.MONTH, date(1970, 1, 1), date(2053, 5, 1))
    message = str(refused.value)
    assert "1001 periods" in message and "limit of 1000" in message and "narrower" in message
    assert "coarser" not in message  # nothing is coarser than a month


def test_the_cap_applies_to_a_span_the_data_gives() -> None:
    # No range: events from 1970 and from 2015 by day is 45 years of days, far over 1000.
    data = [point("1970-01-01", [1, 0, 0]), point("2015-01-01", [1, 0, 0])]
    with pytest.raises(BadInput, match="limit of 1000: use a coarser interval \\(WEEK or MONTH\\)"):
        fill_periods(data, STEPS, Interval.DAY)
    # By month the same span is 45 * 12 + 1 = 541 periods.
    assert len(fill_periods(data, STEPS, Interval.MONTH)) == 541
