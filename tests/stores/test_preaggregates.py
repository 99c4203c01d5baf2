"""funnel_analytics rows that answer: single-day funnels read from the rows equal the computed ones, are
used when they apply (the heavy engine calls are counted), and stay exact under live writes.

The data are test_duckdb_funnel_reference's random visits: users come back on other days and some
have no device, which is exactly what makes sums of rows wrong for ranges (see the last test).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.models import Breakdown, FunnelQuery, StepOrder, UserFilter
from gateway.stores import preaggregates as rule
from gateway.stores.duckdb.store import DuckDBStore
from gateway.stores.funnel_math import funnel_result
from tests.stores.test_duckdb_funnel_reference import (
    STEPS,
    assert_results_equal,
    make_dataset,
    reference_matches,
)

DAYS = [date(2015, 3, 1) + timedelta(days=i) for i in range(7)]  # the data's 6 days and an empty one
Docs = list[dict[str, Any]]


def variants(day: date) -> list[FunnelQuery]:
    """Every shape a day's rows may answer: all users, each device (and an unknown one), breakdowns."""
    one_day = UserFilter(start=day, end=day)
    shapes = [FunnelQuery(STEPS, one_day), FunnelQuery(STEPS, one_day, breakdown=Breakdown.DEVICE)]
    for device in ("desktop", "mobile", "tablet", "no-such-device"):
        f = replace(one_day, device=device)
        shapes += [FunnelQuery(STEPS, f), FunnelQuery(STEPS, f, breakdown=Breakdown.DEVICE)]
    return shapes


def expected(users: Docs, visits: Docs, query: FunnelQuery) -> Any:
    return funnel_result(query.steps, reference_matches(users, visits, query), query.breakdown is not None)


def heavy(store: DuckDBStore) -> int:
    return sum(store.funnels.calls.values())


@pytest.fixture
async def loaded(tmp_path: Path) -> AsyncIterator[tuple[DuckDBStore, Docs, Docs]]:
    users, visits = make_dataset(6)
    store = await DuckDBStore.open(tmp_path / "p.duckdb")
    try:
        await store.insert_many("users", users)
        await store.insert_many("page_visits", visits)
        await store.set_default_funnel(STEPS)
        assert await store.wait_for_funnel_index(60)
        yield store, users, visits
    finally:
        await store.close()


async def test_rows_answer_exactly_what_is_computed(loaded: Any) -> None:
    store, users, visits = loaded
    from_rows = 0
    for day in DAYS:
        for query in variants(day):
            got = await store.funnel(query)
            assert_results_equal(
                got, expected(users, visits, query), f"{day} {query.filter} {query.breakdown}"
            )
            from_rows += got.source == rule.SOURCE
    # the first question of each day computes the whole day; nearly all later ones read its rows
    # (a device breakdown of a day with device-less users computes: their group is not in the rows)
    assert from_rows >= len(DAYS) * (len(variants(DAYS[0])) - 2)
    assert store.day_rows is not None and store.day_rows.answered == from_rows


async def test_rows_are_used_when_they_apply(loaded: Any) -> None:
    store, users, visits = loaded
    day = date(2015, 3, 3)
    one_day = FunnelQuery(STEPS, UserFilter(start=day, end=day))
    calls = heavy(store)
    assert (await store.funnel(one_day)).source == "funnel_index"  # the day is computed once...
    assert heavy(store) == calls + 1
    mobile = FunnelQuery(STEPS, UserFilter(device="mobile", start=day, end=day))
    for query in (one_day, mobile, replace(mobile, breakdown=Breakdown.DEVICE)):
        assert (await store.funnel(query)).source == rule.SOURCE  # ... then read from its rows
    assert heavy(store) == calls + 1
    # what the rows cannot answer is computed, one engine call each
    for query in (
        FunnelQuery(STEPS, UserFilter(start=day, end=day + timedelta(days=1))),
        FunnelQuery(STEPS, UserFilter(start=day, end=day), window_seconds=3600),
        FunnelQuery(STEPS, UserFilter(start=day, end=day), order=StepOrder.STRICT),
        FunnelQuery(STEPS, UserFilter(sex="female", start=day, end=day)),
        FunnelQuery(STEPS[:3], UserFilter(start=day, end=day)),
        FunnelQuery(STEPS),
    ):
        calls = heavy(store)
        got = await store.funnel(query)
        assert got.source == "funnel_index" and heavy(store) == calls + 1, query
        assert_results_equal(got, expected(users, visits, query), str(query))


async def test_live_writes_make_the_day_computed_again(loaded: Any) -> None:
    store, users, visits = loaded
    day = date(2015, 3, 3)
    one_day = FunnelQuery(STEPS, UserFilter(start=day, end=day))
    await store.funnel(one_day)
    assert (await store.funnel(one_day)).source == rule.SOURCE

    # a visit on another day leaves this day's rows answering
    late = {**visits[0], "event_id": "late-1", "timestamp": datetime(2015, 3, 5, 12, 0)}
    await store.insert_many("page_visits", [late])
    assert (await store.funnel(one_day)).source == rule.SOURCE

    # a visit on the day: computed again (rows rewritten), then read again
    live = {"event_id": "live-1", "user_id": 9999, "session_id": "s", "page_type": "home",
            "timestamp": datetime(2015, 3, 3, 23, 59, 59), "duration": 4.0, "device": None}  # fmt: skip
    await store.insert_many("page_visits", [live])
    visits = [*visits, late, live]
    calls = heavy(store)
    got = await store.funnel(one_day)
    assert got.source == "funnel_index" and heavy(store) == calls + 1
    assert_results_equal(got, expected(users, visits, one_day), "after a live visit")
    got = await store.funnel(one_day)
    assert got.source == rule.SOURCE and heavy(store) == calls + 1
    assert_results_equal(got, expected(users, visits, one_day), "rows after a live visit")

    # a new user document for that visitor moves them into a device group: that day again
    newcomer = {"user_id": 9999, "device": "mobile", "sex": None, "date": day, "attributes": {}}
    await store.insert_many("users", [newcomer])
    users = [*users, newcomer]
    mobile = FunnelQuery(STEPS, UserFilter(device="mobile", start=day, end=day))
    assert (await store.funnel(mobile)).source == "funnel_index"
    assert_results_equal(await store.funnel(mobile), expected(users, visits, mobile), "new user")

    # deleted users (and their visits): every day computed again
    await store.delete_users([users[0]["user_id"]])
    users, visits = users[1:], [v for v in visits if v["user_id"] != users[0]["user_id"]]
    assert await store.wait_for_funnel_index(60)
    got = await store.funnel(one_day)
    assert got.source == "funnel_index"
    assert_results_equal(got, expected(users, visits, one_day), "after a delete")


async def test_the_table_is_current_for_its_readers(loaded: Any) -> None:
    store, users, visits = loaded
    day = date(2015, 3, 2)
    await store.funnel(FunnelQuery(STEPS, UserFilter(start=day, end=day)))  # rows written for the day
    live = {"event_id": "live-2", "user_id": users[0]["user_id"], "session_id": "s", "page_type": "home",
            "timestamp": datetime(2015, 3, 2, 6, 0), "duration": 1.0, "device": None}  # fmt: skip
    await store.insert_many("page_visits", [live])
    rows = await store.funnel_analytics(day, day, None)  # a stale day is recomputed before the read
    want = rule.rows_for_day(day, expected(users, [*visits, live], rule.day_query(STEPS, day)))
    want.sort(key=lambda r: (r["device"], r["step_index"]))
    assert [r.keys() for r in rows] == [r.keys() for r in want]
    for got_row, want_row in zip(rows, want, strict=True):
        for field, value in want_row.items():
            same = value == got_row[field] or math.isclose(value, got_row[field], rel_tol=1e-12)
            assert same, (field, got_row, want_row)
    # Independently of rows_for_day (which also wrote the rows): step 1's users that day are the users
    # with a home visit on it, the live one included.
    homes = {
        v["user_id"] for v in [*visits, live] if v["page_type"] == "home" and v["timestamp"].date() == day
    }
    [first_step] = [r for r in rows if r["device"] == "all" and r["step_index"] == 0]
    assert (first_step["funnel_step"], first_step["unique_users"]) == ("home", len(homes))


async def test_rows_written_elsewhere_are_checked_before_use(loaded: Any) -> None:
    store, users, visits = loaded
    day = date(2015, 3, 4)
    one_day = FunnelQuery(STEPS, UserFilter(start=day, end=day))
    await store.funnel(one_day)
    # rows from an older release (no medians) or anyone else's writes: the day is computed again
    row = {"date": day, "device": "all", "funnel_step": "home", "step_index": 0, "unique_users": 1,
           "conversion_rate": 1.0, "drop_off_rate": 0.0, "avg_time_spent": 1.0}  # fmt: skip
    await store.upsert_many("funnel_analytics", [row])
    got = await store.funnel(one_day)
    assert got.source == "funnel_index"
    assert_results_equal(got, expected(users, visits, one_day), "after a foreign write")
    assert (await store.funnel(one_day)).source == rule.SOURCE
    # a reopened store trusts no rows it has not computed itself
    path = store.path
    await store.close()
    store = await DuckDBStore.open(path)
    try:
        assert await store.wait_for_funnel_index(60)
        assert (await store.funnel(one_day)).source == "funnel_index"
        assert (await store.funnel(one_day)).source == rule.SOURCE
    finally:
        await store.close()


async def test_summed_rows_would_be_wrong_for_ranges(loaded: Any) -> None:
    """Why a range is always computed: users active on both days are counted twice by the rows, and
    conversions that span midnight are in neither day's rows."""
    store, users, visits = loaded
    days = (date(2015, 3, 2), date(2015, 3, 3))
    summed = [0] * len(STEPS)
    for day in days:
        for k, step in enumerate(
            (await store.funnel(FunnelQuery(STEPS, UserFilter(start=day, end=day)))).steps
        ):
            summed[k] += step.users
    both = FunnelQuery(STEPS, UserFilter(start=days[0], end=days[1]))
    got = await store.funnel(both)
    assert got.source != rule.SOURCE
    assert [s.users for s in got.steps] == [s.users for s in expected(users, visits, both).steps]
    assert [s.users for s in got.steps] != summed


def test_a_breakdown_with_users_without_a_device_is_not_answered() -> None:
    day = date(2015, 3, 1)
    query = FunnelQuery(("home",), UserFilter(start=day, end=day), breakdown=Breakdown.DEVICE)
    zero = rule.answer_from_rows(replace(query, breakdown=None), [])  # nobody that day
    assert zero is not None and zero.steps[0].users == 0
    rows = [
        {"date": day, "device": "all", "funnel_step": "home", "step_index": 0, "unique_users": 3,
         "conversion_rate": 1.0, "drop_off_rate": 0.0, "avg_time_spent": 2.0, "median_time_to_convert": 0.0},
        {"date": day, "device": "mobile", "funnel_step": "home", "step_index": 0, "unique_users": 2,
         "conversion_rate": 1.0, "drop_off_rate": 0.0, "avg_time_spent": 1.0, "median_time_to_convert": 0.0},
    ]  # fmt: skip
    assert rule.answer_from_rows(query, rows) is None  # one user has no device: not in the rows
    all_users = rule.answer_from_rows(replace(query, breakdown=None), rows)  # the "all" row: 3 users
    assert all_users is not None and [s.users for s in all_users.steps] == [3] and all_users.breakdowns == []
    mobile = rule.answer_from_rows(
        replace(query, breakdown=None, filter=replace(query.filter, device="mobile")), rows
    )
    assert mobile is not None and [s.users for s in mobile.steps] == [2]
    assert rule.answer_from_rows(replace(query, steps=("search",)), rows) is None
