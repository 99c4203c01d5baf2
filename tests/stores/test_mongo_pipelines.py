"""MongoStore specifics: the pipeline builders, the shaping of their output, and adapter behaviour the
shared contract suite does not pin down (driver error translation, duplicate counting, batching, one
query per batch call, index names). Expected values are hand-computed from the small fixtures below.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure

from gateway.config import load_settings
from gateway.errors import BadInput, ConfigError, StoreUnavailable
from gateway.models import (
    Breakdown,
    FunnelQuery,
    IndexSpec,
    Interval,
    PathCount,
    StepOrder,
    UserFilter,
    UserPage,
    WriteResult,
)
from gateway.stores.collections import DESIGN_INDEXES
from gateway.stores.contracts import DocumentStore
from gateway.stores.mongo import pipelines as mp
from gateway.stores.mongo import store as mongo_store
from gateway.stores.mongo.documents import index_name
from gateway.stores.mongo.store import MongoStore
from tests.contract.mongomock_async import AsyncMongomockClient

DAY1 = datetime(2015, 1, 1, 10, 0)
DAY2 = datetime(2015, 1, 2, 10, 0)
DAY6 = datetime(2015, 1, 6, 10, 0)
STEPS = ("home", "search", "payment")

# Operators mongomock 4.3 raises NotImplementedError on (measured); no pipeline may use them.
MONGOMOCK_MISSING = {
    "$reduce",
    "$indexOfArray",
    "$median",
    "$setWindowFields",
    "$dateTrunc",
    "$sortArray",
    "$isoDayOfWeek",
    "$unionWith",
    "$sortByCount",
    "$count",
}


def _visit(event: str, user: int, page: str, at: datetime, duration: float) -> dict[str, Any]:
    return {
        "event_id": event,
        "user_id": user,
        "session_id": f"s{user}",
        "page_type": page,
        "timestamp": at,
        "duration": duration,
        "device": None,
    }


def _session(
    sid: str, user: int, device: str | None, start: datetime, seconds: int, value: float | None, pages
):
    return {
        "session_id": sid,
        "user_id": user,
        "start_time": start,
        "end_time": start + timedelta(seconds=seconds),
        "device": device,
        "pages_visited": pages,
        "total_interactions": 0,
        "converted": value is not None,
        "conversion_value": value or 0.0,
    }


S = timedelta(seconds=1)
USERS = [
    {"user_id": 1, "device": "Desktop", "sex": "Male", "date": date(2015, 1, 1), "attributes": {}},
    {"user_id": 2, "device": "Mobile", "sex": "Female", "date": date(2015, 1, 2), "attributes": {}},
    {"user_id": 3, "device": "Desktop", "sex": None, "date": date(2015, 1, 6), "attributes": {}},
]  # user 4 has visits but no user document
VISITS = [
    _visit("v1", 1, "home", DAY1, 2.0),
    _visit("v2", 1, "home", DAY1 + 100 * S, 3.0),
    _visit("v3", 1, "search", DAY1 + 50 * S, 4.0),
    _visit("v4", 1, "payment", DAY1 + 200 * S, 1.0),
    _visit("v5", 1, "product", DAY1 + 60 * S, 9.0),  # not a step: ignored by funnels
    _visit("v6", 2, "search", DAY2 + 10 * S, 1.0),
    _visit("v7", 2, "home", DAY2 + 20 * S, 2.0),
    _visit("v8", 3, "home", DAY6, 1.0),
    _visit("v9", 3, "search", DAY6 + 30 * S, 2.0),
    _visit("v10", 4, "home", DAY1 + 5 * S, 7.0),
]
SESSIONS = [
    _session("s1", 1, "Desktop", DAY1, 60, 20.0, ["home", "search", "payment"]),
    _session("s2", 1, "Mobile", DAY2, 30, None, ["home"]),
    _session("s3", 2, "Mobile", DAY2 + S, 90, 5.5, ["search", "home"]),
    _session("s4", 3, None, DAY6, 0, None, ["home"]),
]


@pytest.fixture
async def store() -> AsyncIterator[MongoStore]:
    client = AsyncMongomockClient()
    opened = MongoStore.from_database(client["funnel_test"], client)
    await opened.ensure_indexes()
    yield opened
    await opened.close()


@pytest.fixture
async def loaded(store: MongoStore) -> MongoStore:
    await store.insert_many("users", USERS)
    await store.insert_many("page_visits", VISITS)
    await store.insert_many("user_sessions", SESSIONS)
    return store


def _operators(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {k for k in value if k.startswith("$")}
        for v in value.values():
            found |= _operators(v)
        return found
    if isinstance(value, list):
        return set().union(*(_operators(v) for v in value)) if value else set()
    return set()


# -- pipeline builders -----------------------------------------------------------------------------


def test_day_ranges_are_inclusive_calendar_days() -> None:
    assert mp.day_range(None, None) is None
    assert mp.day_range(date(2015, 1, 2), date(2015, 1, 3)) == {
        "$gte": datetime(2015, 1, 2),
        "$lt": datetime(2015, 1, 4),
    }
    # A stored day is its midnight: the same rule covers it, end day included.
    assert mp.day_range(None, date(2015, 1, 3)) == {"$lt": datetime(2015, 1, 4)}


def test_users_query_combines_attributes_days_and_keyset() -> None:
    query = mp.users_query(UserFilter(device="Mobile", start=date(2015, 1, 2)), after=7)
    assert query == {"device": "Mobile", "date": {"$gte": datetime(2015, 1, 2)}, "user_id": {"$gt": 7}}
    assert mp.users_query(UserFilter()) == {}


def test_funnel_pipeline_filters_on_indexed_fields_then_projects() -> None:
    pipeline = mp.funnel_events_pipeline(STEPS, UserFilter(start=date(2015, 1, 2), end=date(2015, 1, 2)))
    assert pipeline[0] == {
        "$match": {
            "page_type": {"$in": list(STEPS)},
            "timestamp": {"$gte": datetime(2015, 1, 2), "$lt": datetime(2015, 1, 3)},
        }
    }
    assert list(pipeline[1]) == ["$project"]
    assert not any("$lookup" in stage for stage in pipeline)  # no user filter, no breakdown: no join


def test_funnel_pipeline_joins_users_only_for_attributes_or_breakdown() -> None:
    filtered = mp.funnel_events_pipeline(STEPS, UserFilter(sex="Male"))
    assert {"$match": {"u.sex": "Male"}} in filtered
    grouped = mp.funnel_events_pipeline(STEPS, UserFilter(), group_field="device")
    assert grouped[-1]["$project"]["g"] == {"$arrayElemAt": ["$u.device", 0]}
    assert not any("$match" in stage for stage in grouped[1:])


def test_no_pipeline_uses_an_operator_mongomock_lacks() -> None:
    full = UserFilter(device="Desktop", sex="Male", start=date(2015, 1, 1), end=date(2015, 1, 31))
    pipelines = [
        mp.funnel_events_pipeline(STEPS, full, group_field="sex"),
        mp.dashboard_pipeline(date(2015, 1, 1), date(2015, 1, 2)),
        mp.top_paths_pipeline(10, full),
        mp.visit_activity_pipeline(),
        mp.interaction_activity_pipeline(),
    ]
    used = set().union(*(_operators(p) for p in pipelines))
    assert "$group" in used  # the walk does see operators
    assert used & MONGOMOCK_MISSING == set()


# -- shaping ---------------------------------------------------------------------------------------


def test_rank_paths_breaks_ties_by_the_joined_path_not_by_the_list() -> None:
    # As lists ["a", "b"] < ["a-"]; joined, "a-" < "a>b" ('-' sorts before '>'). The spec says joined.
    groups = [{"_id": 2, "paths": [["a", "b"], ["a-"]]}, {"_id": 5, "paths": [["z"]]}]
    assert mp.rank_paths(groups, 2) == [PathCount(["z"], 5), PathCount(["a-"], 2)]
    assert mp.rank_paths(groups, 10)[-1] == PathCount(["a", "b"], 2)


def test_dashboard_metrics_treats_mongomocks_zero_row_as_no_sessions() -> None:
    zero = {"_id": None, "users": 0, "sessions": 0, "conversions": 0, "revenue": 0, "duration_ms": 0}
    cases: list[dict[str, Any]] = [{"total": [zero], "by_device": []}, {"total": [], "by_device": []}]
    for facets in cases:
        metrics = mp.dashboard_metrics(facets)
        assert (metrics.sessions, metrics.avg_session_duration, metrics.by_device) == (0, None, [])


def test_merge_activity_keeps_visited_pairs_only() -> None:
    visits = [
        {"_id": {"user_id": 1, "page_type": "home"}, "visits": 2, "total_duration": 3, "first_visit": DAY1}
    ]
    interactions = [
        {"_id": {"user_id": 1, "page_type": "home"}, "clicks": 4, "scrolls": 0, "hovers": 1, "forms": 0},
        {"_id": {"user_id": 1, "page_type": "cart"}, "clicks": 9, "scrolls": 0, "hovers": 0, "forms": 0},
    ]
    assert mp.merge_activity(visits, interactions) == [
        {
            "user_id": 1,
            "page_type": "home",
            "visits": 2,
            "total_duration": 3.0,
            "first_visit": DAY1,
            "clicks": 4,
            "scrolls": 0,
            "hovers": 1,
            "forms": 0,
        }
    ]


def test_page_of_is_keyset_paginated() -> None:
    assert mp.page_of([2, 4, 9], 1, None) == UserPage([2], 3, True)
    assert mp.page_of([2, 4, 9], 5, 2) == UserPage([4, 9], 3, False)


# -- the adapter on mongomock ----------------------------------------------------------------------


def test_the_store_meets_the_protocol() -> None:
    client = AsyncMongomockClient()
    assert isinstance(MongoStore.from_database(client["x"]), DocumentStore)
    assert MongoStore.name == "mongodb"


async def test_ensure_indexes_is_idempotent_and_creates_exactly_the_design(store: MongoStore) -> None:
    await store.ensure_indexes()
    assert await store.indexes() == {name: list(specs) for name, specs in DESIGN_INDEXES.items()}
    info = await store._db["page_visits"].index_information()
    assert sorted(info) == ["_id_", "event_id_1", "page_type_1", "session_id_1", "user_id_1_timestamp_1"]
    assert index_name(IndexSpec(("date", "device", "funnel_step"))) == "date_1_device_1_funnel_step_1"


async def test_insert_many_counts_duplicates_across_batches(store: MongoStore, monkeypatch) -> None:
    monkeypatch.setattr(mongo_store, "WRITE_BATCH", 2)
    first = await store.insert_many("page_visits", VISITS[:3])
    assert first == WriteResult(written=3, duplicates=0)
    # v2 and v3 exist already; v11 appears twice in one call: 2 new, 3 skipped.
    again = [VISITS[1], _visit("v11", 9, "home", DAY1, 1.0), VISITS[2], _visit("v11", 9, "home", DAY1, 1.0)]
    again.append(_visit("v12", 9, "home", DAY1, 1.0))
    result = await store.insert_many("page_visits", again)
    assert (result.written, result.duplicates) == (2, 3)
    assert await store.count("page_visits") == 5
    assert "_id" not in again[1]  # the caller's dicts are not mutated by the driver


async def test_dates_round_trip_and_internal_ids_are_stripped(store: MongoStore) -> None:
    await store.insert_many("users", USERS[:1])
    raw = await store._db["users"].find_one({"user_id": 1})
    assert raw["date"] == datetime(2015, 1, 1)  # stored as midnight: BSON has no date
    assert await store.users_by_ids([1]) == [USERS[0]]


async def test_upsert_replaces_whole_documents_by_key(store: MongoStore) -> None:
    await store.upsert_many("users", USERS[:2])
    changed = {"user_id": 1, "device": "Tablet", "sex": None, "date": None, "attributes": {"k": 1}}
    result = await store.upsert_many("users", [changed, USERS[1]])
    assert result.written == 2
    assert await store.users_by_ids([1, 2]) == [changed, USERS[1]]
    assert await store.count("users") == 2


class _CountingDatabase:
    """Wraps the facade's database and counts the queries each collection receives."""

    def __init__(self, database: Any) -> None:
        self._db = database
        self.calls: list[str] = []

    def __getitem__(self, name: str) -> Any:
        inner = self._db[name]
        outer = self

        class Spy:
            def find(self, *args: Any, **kwargs: Any) -> Any:
                outer.calls.append(f"find {name}")
                return inner.find(*args, **kwargs)

            def __getattr__(self, attr: str) -> Any:
                return getattr(inner, attr)

        return Spy()


async def test_batch_lookups_issue_one_find_and_answer_in_key_order(loaded: MongoStore) -> None:
    spy = _CountingDatabase(loaded._db)
    store = MongoStore.from_database(spy)
    users = await store.users_by_ids([3, 99, 1, 3])
    assert [u["user_id"] if u else None for u in users] == [3, None, 1, 3]
    visits = await store.visits_by_user_ids([1, 5, 1])
    assert [v["event_id"] for v in visits[0]] == ["v1", "v3", "v5", "v2", "v4"]
    assert visits[1] == [] and visits[2] == visits[0]
    assert spy.calls == ["find users", "find page_visits"]


async def test_funnel_ordered_with_breakdown(loaded: MongoStore) -> None:
    result = await loaded.funnel(FunnelQuery(STEPS, breakdown=Breakdown.DEVICE))
    # home: users 1,2,3,4; search: 1 (t+50) and 3 (t+30); payment: 1 (t+200). User 2 saw search first.
    assert [s.users for s in result.steps] == [4, 2, 1]
    assert [s.avg_time_spent for s in result.steps] == [(5 + 2 + 1 + 7) / 4, (4 + 2) / 2, 1.0]
    assert [s.median_time_to_convert for s in result.steps] == [0.0, 40.0, 200.0]
    assert result.overall_conversion_rate == 0.25
    # User 4 has no user document: the None group, last.
    assert [(b.key, [s.users for s in b.steps]) for b in result.breakdowns] == [
        ("Desktop", [2, 2, 1]),
        ("Mobile", [1, 0, 0]),
        (None, [1, 0, 0]),
    ]


async def test_funnel_filters_by_user_attributes_and_visit_days(loaded: MongoStore) -> None:
    desktop = await loaded.funnel(FunnelQuery(STEPS, filter=UserFilter(device="Desktop")))
    assert [s.users for s in desktop.steps] == [2, 2, 1]
    later = await loaded.funnel(FunnelQuery(STEPS, filter=UserFilter(start=date(2015, 1, 2))))
    assert [s.users for s in later.steps] == [2, 1, 0]
    unordered = await loaded.funnel(
        FunnelQuery(STEPS, order=StepOrder.UNORDERED, filter=UserFilter(sex="Female"))
    )
    # user 2: search at +10 (anchor), home at +20 -> both steps reached at +20.
    assert [(s.users, s.median_time_to_convert) for s in unordered.steps] == [(1, 10.0), (1, 10.0), (0, None)]


async def test_funnel_trend_and_funnel_users(loaded: MongoStore) -> None:
    points = await loaded.funnel_trend(FunnelQuery(STEPS), Interval.DAY)
    assert [(p.period, p.steps[0].users) for p in points] == [
        (date(2015, 1, 1), 2),
        (date(2015, 1, 2), 1),
        (date(2015, 1, 6), 1),
    ]
    dropped = await loaded.funnel_users(FunnelQuery(STEPS), 0, False, 1, None)
    assert dropped == UserPage([2], total=2, has_next=True)
    assert await loaded.funnel_users(FunnelQuery(STEPS), 0, False, 1, 2) == UserPage([4], 2, False)
    assert (await loaded.funnel_users(FunnelQuery(STEPS), 99, True, 10, None)).user_ids == [1]


async def test_dashboard_counts_distinct_users_across_devices(loaded: MongoStore) -> None:
    metrics = await loaded.dashboard(None, None)
    # User 1 has a Desktop and a Mobile session: 3 users overall, 2 on Mobile.
    assert (metrics.users, metrics.sessions, metrics.conversions) == (3, 4, 2)
    assert metrics.revenue == pytest.approx(25.5)
    assert metrics.avg_session_duration == pytest.approx((60 + 30 + 90 + 0) / 4)
    assert [(d.device, d.users, d.sessions, d.avg_session_duration) for d in metrics.by_device] == [
        ("Desktop", 1, 1, 60.0),
        ("Mobile", 2, 2, 60.0),
        (None, 1, 1, 0.0),
    ]
    one_day = await loaded.dashboard(date(2015, 1, 2), date(2015, 1, 2))
    assert (one_day.users, one_day.sessions, one_day.conversions, one_day.revenue) == (2, 2, 1, 5.5)


async def test_top_paths(loaded: MongoStore) -> None:
    assert await loaded.top_paths(2, UserFilter()) == [
        PathCount(["home"], 2),
        PathCount(["home", "search", "payment"], 1),
    ]
    assert await loaded.top_paths(5, UserFilter(device="Mobile")) == [PathCount(["search", "home"], 1)]


async def test_delete_users_removes_their_history(loaded: MongoStore) -> None:
    assert await loaded.delete_users([1, 1, 42]) == 1
    assert await loaded.users_by_ids([1]) == [None]
    assert await loaded.visits_by_user_ids([1]) == [[]]
    assert await loaded.sessions_by_user_ids([1]) == [[]]
    assert await loaded.count("page_visits") == len(VISITS) - 5


# -- bad input -------------------------------------------------------------------------------------

LATER, EARLIER = date(2015, 1, 5), date(2015, 1, 1)
INVERTED = UserFilter(start=LATER, end=EARLIER)
BAD_CALLS = {
    "insert unknown collection": lambda s: s.insert_many("nope", [{"a": 1}]),
    "upsert unknown collection": lambda s: s.upsert_many("nope", [{"a": 1}]),
    "count unknown collection": lambda s: s.count("nope"),
    "document without key": lambda s: s.insert_many("users", [{"device": "Mobile"}]),
    "document not a mapping": lambda s: s.upsert_many("users", [[("user_id", 1)]]),
    "unencodable value": lambda s: s.insert_many("users", [{"user_id": 1, "attributes": {1, 2}}]),
    "string user id": lambda s: s.users_by_ids(["1"]),
    "bool user id": lambda s: s.visits_by_user_ids([True]),
    "int session id": lambda s: s.sessions_by_ids([1]),
    "delete with string id": lambda s: s.delete_users(["1"]),
    "list_users inverted": lambda s: s.list_users(INVERTED, 10, None),
    "list_users negative first": lambda s: s.list_users(UserFilter(), -1, None),
    "dashboard inverted": lambda s: s.dashboard(LATER, EARLIER),
    "top_paths inverted": lambda s: s.top_paths(3, INVERTED),
    "top_paths negative limit": lambda s: s.top_paths(-1, UserFilter()),
    "funnel_analytics inverted": lambda s: s.funnel_analytics(LATER, EARLIER, None),
    "replace inverted": lambda s: s.replace_funnel_analytics(LATER, EARLIER, []),
    "funnel no steps": lambda s: s.funnel(FunnelQuery(())),
    "funnel empty step": lambda s: s.funnel(FunnelQuery(("home", ""))),
    "funnel repeated step": lambda s: s.funnel(FunnelQuery(("home", "home"))),
    "funnel negative window": lambda s: s.funnel(FunnelQuery(STEPS, window_seconds=-1)),
    "funnel inverted days": lambda s: s.funnel(FunnelQuery(STEPS, filter=INVERTED)),
    "funnel bad order": lambda s: s.funnel(FunnelQuery(STEPS, order="sideways")),  # type: ignore[arg-type]
    "funnel bad breakdown": lambda s: s.funnel(FunnelQuery(STEPS, breakdown="age")),  # type: ignore[arg-type]
    "trend bad interval": lambda s: s.funnel_trend(FunnelQuery(STEPS), "fortnight"),
    "funnel_users step out of range": lambda s: s.funnel_users(FunnelQuery(STEPS), 3, False, 10, None),
    "funnel_users negative step": lambda s: s.funnel_users(FunnelQuery(STEPS), -1, False, 10, None),
    "funnel_users negative first": lambda s: s.funnel_users(FunnelQuery(STEPS), 0, False, -5, None),
    "default funnel empty": lambda s: s.set_default_funnel([]),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
async def test_bad_input_is_rejected(store: MongoStore, call) -> None:
    with pytest.raises(BadInput):
        await call(store)


# -- driver errors ---------------------------------------------------------------------------------


async def test_unreachable_server_is_store_unavailable() -> None:
    store = MongoStore.connect("mongodb://127.0.0.1:1", "funnel_test", timeout_ms=300)
    try:
        with pytest.raises(StoreUnavailable) as ping_error:
            await store.ping()
        assert isinstance(ping_error.value.__cause__, ConnectionFailure)
        with pytest.raises(StoreUnavailable):
            await store.users_by_ids([1])
    finally:
        await store.close()
        await store.close()  # idempotent


def test_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MongoStore.connect("mongodb://localhost:notaport", "funnel_test")


async def test_a_closed_store_is_unavailable(store: MongoStore) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


class _FailingCollection:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def insert_many(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    async def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


class _FailingDatabase:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getitem__(self, name: str) -> _FailingCollection:
        return _FailingCollection(self.error)


def _bulk_error(errors: list[dict[str, Any]], concern: list[dict[str, Any]] | None = None) -> BulkWriteError:
    return BulkWriteError({"writeErrors": errors, "writeConcernErrors": concern or [], "nInserted": 0})


async def test_write_errors_other_than_duplicates_are_bad_input() -> None:
    invalid = _bulk_error([{"index": 0, "code": 121, "errmsg": "Document failed validation"}])
    store = MongoStore.from_database(_FailingDatabase(invalid))
    with pytest.raises(BadInput, match="failed validation"):
        await store.insert_many("users", USERS[:1])
    with pytest.raises(BadInput):
        await store.upsert_many("users", USERS[:1])


async def test_write_concern_and_server_failures_are_store_unavailable() -> None:
    concern = _bulk_error([], [{"code": 64, "errmsg": "waiting for replication timed out"}])
    with pytest.raises(StoreUnavailable):
        await MongoStore.from_database(_FailingDatabase(concern)).insert_many("users", USERS[:1])
    with pytest.raises(StoreUnavailable):
        await MongoStore.from_database(_FailingDatabase(concern)).upsert_many("users", USERS[:1])
    failed = OperationFailure("exceeded memory limit", code=292)
    with pytest.raises(StoreUnavailable) as error:
        await MongoStore.from_database(_FailingDatabase(failed)).dashboard(None, None)
    assert error.value.__cause__ is failed


# -- the same answers from a real MongoDB, when one is configured ---------------------------------


@pytest.mark.mongo
async def test_real_mongodb_agrees_with_mongomock() -> None:
    url = load_settings().mongo_url
    if url is None:
        pytest.skip("FUNNEL_MONGO_URL is not set")
    real = MongoStore.connect(url, f"funnelgate_test_{uuid.uuid4().hex[:8]}", timeout_ms=3000)
    client = AsyncMongomockClient()
    fake = MongoStore.from_database(client["funnel_test"], client)
    try:
        answers = []
        desktop = UserFilter(device="Desktop")
        for store in (real, fake):
            await store.ensure_indexes()
            await store.insert_many("users", USERS)
            await store.insert_many("page_visits", VISITS)
            await store.insert_many("user_sessions", SESSIONS)
            answers.append(
                (
                    await store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.SEX)),
                    await store.funnel_trend(FunnelQuery(STEPS, filter=desktop), Interval.WEEK),
                    await store.dashboard(None, None),
                    await store.top_paths(3, UserFilter(device="Mobile")),
                    await store.activity_by_user_page(),
                    await store.indexes(),
                )
            )
        assert answers[0] == answers[1]
    finally:
        await real._db.client.drop_database(real._db.name)
        await real.close()
        await fake.close()
