"""Day ranges that reach the ends of the calendar: ``end = date.max`` means "open" (there is no day after
it to bound by), ``start = date.max`` means "nothing yet", ``start = date.min`` means "everything".
Each answer must equal the same question with that side left open (None), which the other modules pin
by hand, and no adapter may overflow building its bounds.
"""

from __future__ import annotations

from datetime import date

import pytest

from gateway.models import FunnelQuery, Interval, UserFilter, UserPage
from gateway.stores.contracts import DocumentStore
from tests.contract import fixture_data as fx
from tests.contract.fixture_data import STEPS, day

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store

FEB = day("2015-02-01")
OPEN_END = [UserFilter(start=FEB, end=date.max), UserFilter(start=date.min, end=date.max)]
SAME_AS = [UserFilter(start=FEB), UserFilter()]


# The hand-worked answers (fixture_data.py) of the open side: the fixture's visits end on 2015-02-20, so
# from February on is fx.FEBRUARY, and everything is fx.ORDERED. Pinned here too, so that two equally
# wrong (or equally empty) answers cannot pass as equal.
HAND = [fx.FEBRUARY, fx.ORDERED]


@pytest.mark.parametrize(
    ("far", "near", "expected"), list(zip(OPEN_END, SAME_AS, HAND, strict=True)), ids=["feb-max", "min-max"]
)
async def test_funnel_family_with_open_end(
    shared_loaded_store: DocumentStore, far: UserFilter, near: UserFilter, expected: fx.FunnelExpectation
) -> None:
    store = shared_loaded_store
    result = await store.funnel(FunnelQuery(STEPS, far))
    fx.assert_funnel(result.steps, result.overall_conversion_rate, expected)
    assert result == await store.funnel(FunnelQuery(STEPS, near))
    assert await store.funnel_trend(FunnelQuery(STEPS, far), Interval.WEEK) == await store.funnel_trend(
        FunnelQuery(STEPS, near), Interval.WEEK
    )
    for converted in (False, True):
        assert await store.funnel_users(
            FunnelQuery(STEPS, far), 0, converted, 50, None
        ) == await store.funnel_users(FunnelQuery(STEPS, near), 0, converted, 50, None)
    assert await store.top_paths(5, far) == await store.top_paths(5, near)


async def test_list_users_with_open_end(shared_loaded_store: DocumentStore) -> None:
    # On users the range reads users.date, and a user without a date is outside every range.
    far, near = UserFilter(start=FEB, end=date.max), UserFilter(start=FEB)
    got = await shared_loaded_store.list_users(far, 50, None)
    # users.date >= 2015-02-01: 50 (02-02) 60 (02-03) 70 (02-14) 80 (02-19); 90 is 01-31, 100 has none
    assert got == UserPage([50, 60, 70, 80], total=4, has_next=False)
    assert got == await shared_loaded_store.list_users(near, 50, None)


async def test_reports_with_open_end(shared_loaded_store: DocumentStore) -> None:
    store = shared_loaded_store
    assert await store.dashboard(FEB, date.max) == await store.dashboard(FEB, None)
    assert await store.funnel_analytics(FEB, date.max, None) == await store.funnel_analytics(FEB, None, None)
    assert await store.form_texts("search", date.max) == []


async def test_starting_on_the_last_day_finds_nothing(shared_loaded_store: DocumentStore) -> None:
    store = shared_loaded_store
    last = UserFilter(start=date.max, end=date.max)
    assert [s.users for s in (await store.funnel(FunnelQuery(STEPS, last))).steps] == [0, 0, 0, 0]
    assert await store.funnel_trend(FunnelQuery(STEPS, last), Interval.DAY) == []
    assert (await store.dashboard(date.max, None)).sessions == 0
    assert await store.top_paths(5, last) == []
    assert (await store.list_users(last, 10, None)).total == 0
