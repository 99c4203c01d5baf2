"""The funnel index engine against the Python reference (gateway.stores.funnel_math) on random visits.

The data and the reference inputs are test_duckdb_funnel_reference's: a 30-minute grid so same-second
visits to the same or different steps are common, repeat visits, unlisted pages, users without a user
document or without device/sex, missing durations. Each case runs on four indexes that must all agree
with the reference: built in one go; built from a DuckDB file; grown by live appends (visits in random
batches out of time order, users arriving before or after their visits, attributes written wrong then
corrected: unclustered); clustered with an appended tail of late users.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from gateway.models import Breakdown, FunnelQuery, Interval, StepOrder, UserFilter
from gateway.stores.duckdb import schema
from gateway.stores.duckdb.funnel_index import engine
from gateway.stores.duckdb.funnel_index.arrays import to_us
from gateway.stores.duckdb.funnel_index.build import build_from_duckdb
from gateway.stores.duckdb.funnel_index.layout import FunnelIndex
from gateway.stores.duckdb.funnel_index.updates import append_visits
from gateway.stores.funnel_math import funnel_result, trend
from tests.stores.test_duckdb_funnel_reference import (
    STEPS,
    assert_results_equal,
    assert_trend_equal,
    make_dataset,
    reference_matches,
)

SEEDS = range(1, 6)
WINDOWS = (None, 1, 1800, 5400)
FILTERS = (
    UserFilter(),
    UserFilter(device="mobile"),
    UserFilter(device="tablet", sex="male"),
    UserFilter(sex="female", start=date(2015, 3, 2)),
    UserFilter(start=date(2015, 3, 2), end=date(2015, 3, 4)),
    UserFilter(end=date(2015, 3, 1)),
    UserFilter(device="desktop", start=date(2015, 3, 3), end=date(2015, 3, 3)),
    UserFilter(device="no-such-device"),
    UserFilter(start=date(2016, 1, 1)),
)
STEP_SETS = (
    ("search",),
    ("payment", "home"),
    ("confirm", "search", "home"),
    ("home", "product", "search", "confirm"),
    ("home", "nowhere", "search"),
    ("help", "home", "payment", "search"),
    ("home", "confirm", "search"),  # a rare second page: the engine probes from its users
    ("search", "help", "home", "confirm"),
)
Docs = list[dict[str, Any]]


def visit_columns(visits: Docs) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    kept = [v for v in visits if v["timestamp"] is not None]
    return (
        np.array([v["user_id"] for v in kept], np.int64),
        [v["page_type"] for v in kept],
        np.array([to_us(v["timestamp"]) for v in kept], np.int64),
        np.array([v["duration"] or 0.0 for v in kept], np.float64),
    )


def user_columns(users: Docs) -> dict[str, Any]:
    return {
        "user_id": np.array([u["user_id"] for u in users], np.int64),
        "device": [u["device"] for u in users],
        "sex": [u["sex"] for u in users],
    }


def set_users(index: FunnelIndex, users: Docs) -> None:
    cols = user_columns(users)
    index.set_users(cols["user_id"], {"device": cols["device"], "sex": cols["sex"]})


def index_in_one_go(users: Docs, visits: Docs) -> FunnelIndex:
    uid, pages, ts, dur = visit_columns(visits)
    return FunnelIndex.from_arrays(uid, pages, ts, dur, user_columns(users))


def index_by_appends(users: Docs, visits: Docs, seed: int) -> FunnelIndex:
    """A third of the visits and half the users first, then the rest in shuffled batches; some users'
    attributes first written wrong and then corrected (a replaced user document)."""
    rng = random.Random(seed)
    visits = visits[:]
    rng.shuffle(visits)
    cut = len(visits) // 3
    early_users = [u for u in users if rng.random() < 0.5]
    index = index_in_one_go(early_users, visits[:cut])
    wrong = [dict(u, device="wrong", sex=None) for u in users if rng.random() < 0.2]
    rest, pos = visits[cut:], 0
    pending = [u for u in users if u not in early_users]
    while pos < len(rest) or pending or wrong:
        size = rng.choice([1, 2, 5, 17, 60])
        if rest[pos : pos + size]:
            append_visits(index, *visit_columns(rest[pos : pos + size]))
        pos += size
        if wrong and rng.random() < 0.5:
            set_users(index, wrong[:10])
            wrong = wrong[10:]
        if pending and rng.random() < 0.5:
            set_users(index, pending[:15])
            pending = pending[15:]
    set_users(index, users)  # the corrections (and every document once more)
    assert not index.clustered  # corrected users left their blocks: the engine uses masks
    return index


def index_with_tail(users: Docs, visits: Docs, seed: int) -> FunnelIndex:
    """Half the users (and their visits) in one go, then the others arrive in batches: still clustered,
    with an unclustered tail."""
    rng = random.Random(seed)
    early = {u["user_id"] for u in users if rng.random() < 0.5}
    index = index_in_one_go(
        [u for u in users if u["user_id"] in early], [v for v in visits if v["user_id"] in early]
    )
    late_users = [u for u in users if u["user_id"] not in early]
    late_visits = [v for v in visits if v["user_id"] not in early]
    rng.shuffle(late_visits)
    for i in range(0, max(len(late_visits), len(late_users)), 25):
        if late_visits[i : i + 25]:
            append_visits(index, *visit_columns(late_visits[i : i + 25]))
        if late_users[i : i + 25]:
            set_users(index, late_users[i : i + 25])
    set_users(index, users)  # the same documents again: still clustered
    assert index.clustered and index.n_clustered < index.n_users
    return index


def index_from_duckdb(path: Path, users: Docs, visits: Docs) -> FunnelIndex:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, docs in (("users", users), ("page_visits", visits)):
            table = schema.TABLES[name]
            for ddl in schema.table_ddl(table):
                con.execute(ddl)
            con.register("incoming", schema.frame(table, docs))
            con.execute(f"INSERT INTO {name} SELECT {schema.cast_select(table, 'incoming')} FROM incoming")
            con.unregister("incoming")
        return build_from_duckdb(con)
    finally:
        con.close()


@pytest.fixture(scope="module", params=list(SEEDS), ids=lambda s: f"seed{s}")
def data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    users, visits = make_dataset(request.param)
    path = tmp_path_factory.mktemp("index") / "i.duckdb"
    return {
        "users": users,
        "visits": visits,
        "indexes": {
            "one_go": index_in_one_go(users, visits),
            "duckdb": index_from_duckdb(path, users, visits),
            "appends": index_by_appends(users, visits, request.param),
            "tail": index_with_tail(users, visits, request.param),
        },
    }


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
def test_funnel_matches_reference(data: dict[str, Any], order: StepOrder) -> None:
    users, visits = data["users"], data["visits"]
    for window, breakdown in itertools.product(WINDOWS, (None, Breakdown.DEVICE, Breakdown.SEX)):
        query = FunnelQuery(steps=STEPS, order=order, window_seconds=window, breakdown=breakdown)
        want = funnel_result(STEPS, reference_matches(users, visits, query), breakdown is not None)
        for how, index in data["indexes"].items():
            assert_results_equal(
                engine.funnel(index, query), want, f"{how} {order.value} {window} {breakdown}"
            )


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
def test_filtered_funnel_matches_reference(data: dict[str, Any], order: StepOrder) -> None:
    users, visits = data["users"], data["visits"]
    for user_filter, window, breakdown in itertools.product(FILTERS, (None, 3600), (None, Breakdown.SEX)):
        query = FunnelQuery(
            STEPS, filter=user_filter, order=order, window_seconds=window, breakdown=breakdown
        )
        want = funnel_result(STEPS, reference_matches(users, visits, query), breakdown is not None)
        for how, index in data["indexes"].items():
            assert_results_equal(
                engine.funnel(index, query), want, f"{how} {order.value} {user_filter} {window}"
            )


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
def test_other_step_lists_match_reference(data: dict[str, Any], order: StepOrder) -> None:
    users, visits = data["users"], data["visits"]
    for steps, window in itertools.product(STEP_SETS, (None, 1800)):
        query = FunnelQuery(steps=steps, order=order, window_seconds=window, breakdown=Breakdown.DEVICE)
        want = funnel_result(steps, reference_matches(users, visits, query), True)
        for how, index in data["indexes"].items():
            assert_results_equal(engine.funnel(index, query), want, f"{how} {steps} {order.value} {window}")


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
def test_trend_matches_reference(data: dict[str, Any], order: StepOrder) -> None:
    users, visits = data["users"], data["visits"]
    for window, user_filter in itertools.product((None, 5400), (UserFilter(), FILTERS[3], FILTERS[4])):
        query = FunnelQuery(steps=STEPS, filter=user_filter, order=order, window_seconds=window)
        matches = reference_matches(users, visits, query)
        for interval in Interval:
            want = trend(STEPS, matches, interval)
            for how, index in data["indexes"].items():
                got = engine.trend(index, query, interval)
                assert_trend_equal(got, want, f"{how} {order.value} {window} {user_filter} {interval.value}")


@pytest.mark.parametrize("order", list(StepOrder), ids=lambda o: o.value)
def test_funnel_users_match_reference(data: dict[str, Any], order: StepOrder) -> None:
    users, visits = data["users"], data["visits"]
    for window, user_filter in itertools.product((None, 1800), (UserFilter(), FILTERS[1], FILTERS[4])):
        query = FunnelQuery(steps=STEPS, filter=user_filter, order=order, window_seconds=window)
        reached = {m.user_id: len(m.times) for m in reference_matches(users, visits, query)}
        converted = sorted(uid for uid, n in reached.items() if n == len(STEPS))
        for how, index in data["indexes"].items():
            for k in range(len(STEPS)):
                want = sorted(uid for uid, n in reached.items() if n == k + 1)
                page = engine.funnel_users(index, query, k, False, 10_000, None)
                assert (page.user_ids, page.total, page.has_next) == (want, len(want), False), (how, order, k)
            walked: list[int] = []
            after = None
            while True:  # keyset pages of 3 return each converted user exactly once
                page = engine.funnel_users(index, query, 0, True, 3, after)
                assert page.total == len(converted)
                walked += page.user_ids
                if not page.has_next:
                    break
                after = page.user_ids[-1]
            assert walked == converted, (how, order)


def test_appends_reach_the_same_arrays(data: dict[str, Any]) -> None:
    """Beyond equal answers: the appended index holds exactly the one-go index's visits per user/page."""
    one, grown = data["indexes"]["one_go"], data["indexes"]["appends"]
    assert sorted(one.uids.tolist()) == sorted(grown.uids.tolist())
    for name, page in one.pages.items():
        other = grown.pages[name]
        for uid in one.uids.tolist()[::7]:
            a = int(np.flatnonzero(one.uids == uid)[0])
            b = int(np.flatnonzero(grown.uids == uid)[0])
            mine, theirs = slice(page.off[a], page.off[a + 1]), slice(other.off[b], other.off[b + 1])
            assert page.ts[mine].tolist() == other.ts[theirs].tolist()
            assert sorted(page.dur[mine].tolist()) == sorted(other.dur[theirs].tolist())


def test_breakdown_keys_cover_users_without_a_document(data: dict[str, Any]) -> None:
    query = FunnelQuery(steps=STEPS, breakdown=Breakdown.DEVICE)
    keys = [b.key for b in engine.funnel(data["indexes"]["one_go"], query).breakdowns]
    assert keys[-1] is None and keys[:-1] == sorted(keys[:-1])


def _contents(value: Any) -> Any:
    """Everything an index holds, copied (arrays as bytes and dtype), to compare before and after."""
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return {k: _contents(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_contents(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: _contents(v) for k, v in vars(value).items() if k != "_group_cache"}  # a cache may fill
    return value


def test_queries_leave_the_index_unchanged(data: dict[str, Any]) -> None:
    # Snapshots are shared by concurrent queries: a query must not write into the arrays. Every array
    # and field is compared before and after, and each answer (asked twice) with the reference's.
    users, visits = data["users"], data["visits"]
    index = data["indexes"]["tail"]
    before = _contents(index)
    for order in StepOrder:
        query = FunnelQuery(steps=STEPS, order=order, window_seconds=1800, breakdown=Breakdown.DEVICE)
        want = funnel_result(STEPS, reference_matches(users, visits, query), True)
        assert_results_equal(engine.funnel(index, query), want, f"first {order.value}")
        assert_results_equal(engine.funnel(index, replace(query)), want, f"again {order.value}")
    assert _contents(index) == before


@pytest.mark.parametrize("seed", [1, 2])
def test_unordered_when_step_one_always_comes_first(seed: int) -> None:
    """Data where nobody visits a later step before their first step-1 visit (like the Kaggle set):
    the UNORDERED fast path that skips anchor arrays must still agree with the reference."""
    users, visits = make_dataset(seed)
    first_home: dict[int, datetime] = {}
    for v in visits:
        if v["page_type"] == STEPS[0]:
            first_home[v["user_id"]] = min(first_home.get(v["user_id"], v["timestamp"]), v["timestamp"])
    kept = [
        v
        for v in visits
        if v["page_type"] not in STEPS
        or v["page_type"] == STEPS[0]
        or (v["user_id"] in first_home and v["timestamp"] >= first_home[v["user_id"]])
    ]
    index = index_in_one_go(users, kept)
    for window, breakdown in itertools.product(WINDOWS, (None, Breakdown.DEVICE)):
        query = FunnelQuery(STEPS, order=StepOrder.UNORDERED, window_seconds=window, breakdown=breakdown)
        matches = reference_matches(users, kept, query)
        assert all(m.times[0] == m.anchor for m in matches if m.times)
        want = funnel_result(STEPS, matches, breakdown is not None)
        assert_results_equal(engine.funnel(index, query), want, f"w={window} {breakdown}")
        got = engine.trend(index, query, Interval.WEEK)
        assert_trend_equal(got, trend(STEPS, matches, Interval.WEEK), "trend")
