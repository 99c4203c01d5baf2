"""Differential: the MongoDB adapter (over the wire) and the DuckDB adapter give identical funnels,
trends and user lists on the same random data.

The data is test_duckdb_funnel_reference's generator (a 30-minute grid: same-second ties, repeated
steps, out-of-order visits, midnights, a Sunday->Monday and a month boundary; visitors without a user
document, users without device or sex, visits without duration), plus a user whose listed visits all
share one timestamp. Visits carry their user's device, as the contract's device invariant says, and are
inserted shuffled (a $push sees them in insertion order, which must not matter). DuckDB itself is
checked against the Python reference by that module, so agreeing with DuckDB is agreeing with it.

Two seeds of ~200 users keep this within CI's time budget on the slow test server; a deeper run (more
seeds, every window x filter x breakdown) is ``FUNNEL_DIFFERENTIAL_SEEDS=1,2,3,4,5 pytest -k differential``.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gateway.models import Breakdown, FunnelQuery, Interval, StepOrder, UserFilter
from gateway.stores.collections import carry_user_device
from gateway.stores.duckdb.store import DuckDBStore
from gateway.stores.mongo.store import MongoStore
from tests.stores.test_duckdb_funnel_reference import (
    STEPS,
    assert_results_equal,
    assert_trend_equal,
    make_dataset,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEEDS = [int(s) for s in os.environ.get("FUNNEL_DIFFERENTIAL_SEEDS", "11,12").split(",")]
DEEP = len(SEEDS) > 2
FILTERS = [
    UserFilter(device="mobile"),
    UserFilter(device="desktop", sex="male"),
    UserFilter(sex="female", start=date(2015, 3, 2)),
    UserFilter(start=date(2015, 3, 2), end=date(2015, 3, 4)),
    UserFilter(start=date(2015, 3, 3), end=date.max),
]


def dataset(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    users, visits = make_dataset(seed)
    stamp = datetime(2015, 3, 2, 12, 0, 0)  # every listed step at the same second, in reverse order
    for k, page in enumerate(("confirm", "payment", "search", "home", "home")):
        visits.append(
            {
                "event_id": f"tie-{k}",
                "user_id": 9_999,
                "session_id": "s-tie",
                "page_type": page,
                "timestamp": stamp,
                "duration": None,
                "device": None,
            }
        )
    users.append(
        {"user_id": 9_999, "device": "tablet", "sex": None, "date": date(2015, 3, 2), "attributes": {}}
    )
    carry_user_device(visits, {u["user_id"]: u["device"] for u in users})
    random.Random(seed).shuffle(visits)
    return users, visits


async def test_the_data_has_the_hard_cases() -> None:
    users, visits = dataset(SEEDS[0])
    assert any(v["duration"] is None for v in visits)
    assert any(u["device"] is None for u in users) and any(u["sex"] is None for u in users)
    assert {v["user_id"] for v in visits} - {u["user_id"] for u in users}  # visitors without a document
    stamps = [(v["user_id"], v["timestamp"]) for v in visits]
    assert len(stamps) > len(set(stamps))  # the same user twice in one second
    assert any(v["timestamp"].weekday() == 0 and v["timestamp"].hour == 0 for v in visits)  # Monday 00:00


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
async def stores(
    request: pytest.FixtureRequest, mongo_wire_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[MongoStore, DuckDBStore]]:
    users, visits = dataset(request.param)
    duck = await DuckDBStore.open(Path(tmp_path_factory.mktemp("diff")) / "d.duckdb")
    mongo = MongoStore.connect(mongo_wire_url, f"diff_{uuid.uuid4().hex[:10]}")
    try:
        for store in (duck, mongo):
            await store.ensure_indexes()
            await store.insert_many("users", [dict(u) for u in users])
            await store.insert_many("page_visits", [dict(v) for v in visits])
        yield mongo, duck
    finally:
        await duck.close()
        await mongo._db.client.drop_database(mongo._db.name)
        await mongo.close()


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
async def test_funnels(stores: Any, order: StepOrder) -> None:
    mongo, duck = stores
    windows = (None, 1, 1800, 5400) if DEEP else (None, 1800)
    for window in windows:
        for breakdown in (None, Breakdown.DEVICE, Breakdown.SEX):
            query = FunnelQuery(STEPS, order=order, window_seconds=window, breakdown=breakdown)
            assert_results_equal(await mongo.funnel(query), await duck.funnel(query), f"{query}")
    for user_filter in FILTERS:
        for breakdown in (None, Breakdown.DEVICE) if DEEP else (Breakdown.SEX,):
            query = FunnelQuery(STEPS, user_filter, order, 7200, breakdown)
            assert_results_equal(await mongo.funnel(query), await duck.funnel(query), f"{query}")


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
async def test_trends(stores: Any, order: StepOrder) -> None:
    mongo, duck = stores
    for window, user_filter in ((None, UserFilter()), (5400, UserFilter(sex="female", device="mobile"))):
        query = FunnelQuery(STEPS, user_filter, order, window)
        for interval in Interval:
            got, want = await mongo.funnel_trend(query, interval), await duck.funnel_trend(query, interval)
            assert_trend_equal(got, want, f"{query} {interval}")


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
async def test_user_lists(stores: Any, order: StepOrder) -> None:
    mongo, duck = stores
    query = FunnelQuery(STEPS, UserFilter(sex="male", start=date(2015, 3, 2)), order, 1800)
    for k in range(len(STEPS)):
        for first, after in ((10_000, None), (2, 40)):
            page = await mongo.funnel_users(query, k, False, first, after)
            assert page == await duck.funnel_users(query, k, False, first, after), (k, first, after)
    walked: list[int] = []  # converted users in pages of 3: each exactly once, the same as DuckDB's
    after = None
    while True:
        page = await mongo.funnel_users(FunnelQuery(STEPS, order=order), 0, True, 3, after)
        assert page == await duck.funnel_users(FunnelQuery(STEPS, order=order), 0, True, 3, after)
        walked += page.user_ids
        if not page.has_next:
            break
        after = page.user_ids[-1]
    assert walked == sorted(set(walked))


async def test_short_funnels_and_unknown_steps(stores: Any) -> None:
    mongo, duck = stores
    for steps in (("search",), ("payment", "home"), ("confirm", "help", "home"), ("nope", "home")):
        for order in StepOrder:
            query = FunnelQuery(steps, order=order, window_seconds=3600, breakdown=Breakdown.SEX)
            assert_results_equal(await mongo.funnel(query), await duck.funnel(query), f"{query}")
