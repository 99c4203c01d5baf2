"""MongoStore behaviour the shared contract suite does not pin down, over the wire (real PyMongo against
the session's wire-protocol test server): what crosses the wire, batching, time limits, and how each
kind of driver error reaches the gateway. Server-side failures are produced with ``configureFailPoint``
scoped to this test's client (``appName``), since the test server cannot really run out of time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError, ConnectionFailure, ExecutionTimeout
from pymongo.monitoring import CommandListener, CommandStartedEvent, CommandSucceededEvent

from gateway import deadlines
from gateway.errors import BadInput, ConfigError, QueryTimeout, StoreQueryFailed, StoreUnavailable
from gateway.models import Breakdown, FunnelQuery, IndexSpec, Interval, StepOrder, UserFilter, WriteResult
from gateway.stores.collections import DESIGN_INDEXES
from gateway.stores.contracts import DocumentStore
from gateway.stores.mongo import funnel_pipelines
from gateway.stores.mongo import store as mongo_store
from gateway.stores.mongo import writes as mongo_writes
from gateway.stores.mongo.documents import index_name
from gateway.stores.mongo.driver import DEFAULT_TIME_LIMIT_S
from gateway.stores.mongo.store import MongoStore

STEPS = ("home", "search", "payment")
DAY1 = datetime(2015, 1, 1, 10, 0)


class Commands(CommandListener):
    """Every command this test's client sends, and the documents each reply carries."""

    def __init__(self) -> None:
        self.sent: list[CommandStartedEvent] = []
        self.replies: list[tuple[str, int]] = []  # (command, documents in the reply's batch)

    def clear(self) -> None:
        self.sent, self.replies = [], []

    def names(self) -> list[str]:
        return [e.command_name for e in self.sent if e.command_name not in {"endSessions"}]

    def started_event(self, name: str) -> CommandStartedEvent:
        return next(e for e in self.sent if e.command_name == name)

    def started(self, event: CommandStartedEvent) -> None:
        self.sent.append(event)

    def succeeded(self, event: CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor") or {}
        batch = cursor.get("firstBatch", cursor.get("nextBatch"))
        self.replies.append((event.command_name, len(batch) if batch is not None else 0))

    def failed(self, event: Any) -> None:
        pass


class Wire:
    """A fresh database, a store over it, and the client's command log; ``fail`` arms a fail point
    that only this client's commands hit."""

    def __init__(self, url: str, **options: Any) -> None:
        self.app = f"funnelgate-test-{uuid.uuid4().hex[:8]}"
        self.commands = Commands()
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, appname=self.app, tz_aware=False, event_listeners=[self.commands], **options
        )
        self.db = self.client[f"t_{uuid.uuid4().hex[:10]}"]
        self.store = MongoStore.from_database(self.db)

    async def fail(self, commands: list[str], times: int = 1, **data: Any) -> None:
        await self.client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"times": times},
            data={"failCommands": commands, "appName": self.app, **data},
        )

    async def close(self) -> None:
        await self.client.admin.command("configureFailPoint", "failCommand", mode="off")
        await self.client.drop_database(self.db.name)
        await self.client.close()


@pytest.fixture
async def wire(mongo_wire_url: str) -> AsyncIterator[Wire]:
    opened = Wire(mongo_wire_url)
    await opened.store.ensure_indexes()
    yield opened
    await opened.close()


def visit(event: str, user: int, page: str, at: datetime, device: str | None = "mobile") -> dict[str, Any]:
    return {
        "event_id": event,
        "user_id": user,
        "session_id": f"s{user}",
        "page_type": page,
        "timestamp": at,
        "duration": 1.0,
        "device": device,
    }


def user(user_id: int, device: str | None = "mobile", sex: str | None = "female") -> dict[str, Any]:
    return {"user_id": user_id, "device": device, "sex": sex, "date": date(2015, 1, 1), "attributes": {}}


async def load_users(store: MongoStore, n: int) -> None:
    """n users on two devices, each reaching 1..3 steps a minute apart."""
    devices = ("mobile", "desktop")
    await store.insert_many("users", [user(u, devices[u % 2]) for u in range(n)])
    await store.insert_many(
        "page_visits",
        [
            visit(f"v{u}-{k}", u, STEPS[k], DAY1 + timedelta(days=u % 9, minutes=k), devices[u % 2])
            for u in range(n)
            for k in range(1 + u % 3)
        ],
    )


# -- the adapter and its indexes ------------------------------------------------------------------------


async def test_the_store_meets_the_protocol(wire: Wire) -> None:
    assert isinstance(wire.store, DocumentStore) and MongoStore.name == "mongodb"


async def test_ensure_indexes_creates_exactly_the_design_with_mongodb_names(wire: Wire) -> None:
    await wire.store.ensure_indexes()  # twice: a no-op
    found = {name: set(specs) for name, specs in (await wire.store.indexes()).items()}
    assert found == {name: set(specs) for name, specs in DESIGN_INDEXES.items()}
    info = await wire.db["page_visits"].index_information()
    assert sorted(info) == [
        "_id_",
        "event_id_1",
        "page_type_1_device_1_timestamp_1",
        "page_type_1_timestamp_1",
        "session_id_1",
        "user_id_1_timestamp_1",
    ]
    assert index_name(IndexSpec(("date", "device", "funnel_step"))) == "date_1_device_1_funnel_step_1"


# -- what crosses the wire -------------------------------------------------------------------------------


async def test_analytics_replies_do_not_grow_with_users(wire: Wire) -> None:
    await load_users(wire.store, 90)
    wire.commands.clear()
    result = await wire.store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.DEVICE))
    assert [s.users for s in result.steps] == [90, 60, 30]
    # one aggregate, one reply document per (scope, step): total + 2 devices, 3 steps
    assert wire.commands.replies == [("aggregate", 9)]
    wire.commands.clear()
    points = await wire.store.funnel_trend(FunnelQuery(STEPS), Interval.DAY)
    reached = sum(1 for p in points for step in p.steps if step.users)  # (period, step) pairs
    assert len(points) == 9 and wire.commands.replies == [("aggregate", reached)]
    wire.commands.clear()
    page = await wire.store.funnel_users(FunnelQuery(STEPS), 0, False, 5, None)
    assert (page.user_ids, page.total, page.has_next) == ([0, 3, 6, 9, 12], 30, True)
    assert wire.commands.replies == [("aggregate", 1)]  # the count and one page, in one document


async def test_batch_lookups_issue_one_find_and_answer_in_key_order(wire: Wire) -> None:
    await load_users(wire.store, 6)
    wire.commands.clear()
    users = await wire.store.users_by_ids([3, 99, 1, 3])
    assert [u["user_id"] if u else None for u in users] == [3, None, 1, 3]
    visits = await wire.store.visits_by_user_ids([2, 5, 2])
    assert [v["event_id"] for v in visits[0]] == ["v2-0", "v2-1", "v2-2"] and visits[2] == visits[0]
    assert wire.commands.names() == ["find", "find"]


async def test_insert_many_counts_duplicates_across_batches(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mongo_writes, "WRITE_BATCH", 2)
    first = [visit(f"v{i}", 1, "home", DAY1) for i in range(3)]
    assert await wire.store.insert_many("page_visits", first) == WriteResult(written=3, duplicates=0)
    again = [first[1], visit("v11", 9, "home", DAY1), first[2], visit("v11", 9, "home", DAY1)]
    again.append(visit("v12", 9, "home", DAY1))
    assert await wire.store.insert_many("page_visits", again) == WriteResult(written=2, duplicates=3)
    assert await wire.store.count("page_visits") == 5
    assert "_id" not in again[1]  # the caller's dicts are not mutated by the driver


async def test_dates_are_stored_as_midnight_and_internal_ids_stripped(wire: Wire) -> None:
    await wire.store.insert_many("users", [user(1)])
    raw = await wire.db["users"].find_one({"user_id": 1})
    assert raw is not None and raw["date"] == datetime(2015, 1, 1)
    assert await wire.store.users_by_ids([1]) == [user(1)]


async def test_delete_users_sends_bounded_batches(wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongo_writes, "DELETE_BATCH", 2)
    await load_users(wire.store, 6)
    wire.commands.clear()
    assert await wire.store.delete_users([0, 1, 1, 2, 4, 77]) == 4
    deletes = [
        e.command["deletes"][0]["q"]["user_id"]["$in"]
        for e in wire.commands.sent
        if e.command_name == "delete"
    ]
    assert max(len(ids) for ids in deletes) == 2 and len(deletes) == 3 * 4  # 3 batches x 4 collections
    assert (await wire.store.list_users(UserFilter(), 10, None)).user_ids == [3, 5]
    assert await wire.store.count("page_visits") == 1 + 3  # users 3 and 5 keep theirs (1 + u % 3 each)


async def test_activity_in_small_batches_equals_one_batch(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_users(wire.store, 12)
    whole = await wire.store.activity_by_user_page()
    monkeypatch.setattr(mongo_store, "ACTIVITY_BATCH_VISITS", 4)
    wire.commands.clear()
    assert await wire.store.activity_by_user_page() == whole
    assert wire.commands.names().count("aggregate") > 4  # the batching is exercised
    assert len(whole) == 12 + 8 + 4 and whole[0]["user_id"] == 0


# -- time limits ------------------------------------------------------------------------------------------


async def test_reads_carry_the_deadline_or_the_default_as_max_time(wire: Wire) -> None:
    query = FunnelQuery(STEPS)
    wire.commands.clear()
    await wire.store.funnel(query)
    assert 0 < wire.commands.started_event("aggregate").command["maxTimeMS"] <= DEFAULT_TIME_LIMIT_S * 1000
    wire.commands.clear()
    with deadlines.deadline_in(30):
        await wire.store.funnel(query)
    assert 0 < wire.commands.started_event("aggregate").command["maxTimeMS"] <= 30_000
    wire.commands.clear()
    await wire.store.insert_many("users", [user(1)])
    assert "maxTimeMS" not in wire.commands.started_event("insert").command  # jobs' writes: no default


async def test_a_passed_deadline_sends_nothing(wire: Wire) -> None:
    wire.commands.clear()
    with deadlines.deadline_in(0), pytest.raises(QueryTimeout):
        await wire.store.funnel(FunnelQuery(STEPS))
    assert wire.commands.names() == []


async def test_server_time_limit_is_a_timeout(wire: Wire) -> None:
    await wire.fail(["aggregate"], errorCode=50)  # MaxTimeMSExpired, as MongoDB answers at maxTimeMS
    with pytest.raises(QueryTimeout) as error:
        await wire.store.funnel(FunnelQuery(STEPS))
    assert isinstance(error.value.__cause__, ExecutionTimeout) and error.value.code == "TIMEOUT"


async def test_a_reply_that_never_comes_is_a_timeout(mongo_wire_url: str) -> None:
    # The server sits on the command (as a real server ignoring maxTimeMS, or a stalled network would);
    # the socket timeout ends the wait. The real client's is SOCKET_TIMEOUT_S; this one is short.
    wire = Wire(mongo_wire_url, socketTimeoutMS=300)
    try:
        # twice: PyMongo retries a read once after a network error
        await wire.fail(["aggregate"], times=2, blockConnection=True, blockTimeMS=3000)
        with pytest.raises(QueryTimeout) as error:
            await wire.store.funnel(FunnelQuery(STEPS))
        assert getattr(error.value.__cause__, "timeout", False)
    finally:
        await wire.close()


# -- errors by meaning ----------------------------------------------------------------------------------


async def test_a_refused_pipeline_is_internal_and_logged(
    wire: Wire, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(funnel_pipelines, "summary_pipeline", lambda query: [{"$noSuchStage": {}}])
    with caplog.at_level(logging.ERROR, "funnelgate.mongo"), pytest.raises(StoreQueryFailed) as error:
        await wire.store.funnel(FunnelQuery(STEPS))
    assert error.value.code == "INTERNAL_SERVER_ERROR"
    assert "40324" in caplog.text and "$noSuchStage" in caplog.text  # the details go to the log


async def test_a_memory_limit_is_internal(wire: Wire) -> None:
    await wire.fail(["aggregate"], errorCode=292)  # QueryExceededMemoryLimitNoDiskUseAllowed
    with pytest.raises(StoreQueryFailed):
        await wire.store.dashboard(None, None)


@pytest.mark.parametrize(
    "failure",
    [{"errorCode": 10107}, {"errorCode": 91}, {"closeConnection": True}],
    ids=["not-primary", "shutting-down", "connection-closed"],
)
async def test_node_and_network_failures_are_unavailable(
    mongo_wire_url: str, failure: dict[str, Any]
) -> None:
    # A frequent heartbeat: after "not primary" PyMongo waits for its monitor to see the server again.
    wire = Wire(mongo_wire_url, heartbeatFrequencyMS=500)
    try:
        await wire.fail(["find"], times=2, **failure)  # twice: PyMongo retries a read once
        with pytest.raises(StoreUnavailable):
            await wire.store.users_by_ids([1])
    finally:
        await wire.close()


async def test_unreachable_server_is_unavailable() -> None:
    store = MongoStore.connect("mongodb://127.0.0.1:1", "funnel_test", timeout_ms=300)
    try:
        with pytest.raises(StoreUnavailable) as error:
            await store.ping()
        assert isinstance(error.value.__cause__, ConnectionFailure)
        with pytest.raises(StoreUnavailable):
            await store.funnel(FunnelQuery(STEPS))
    finally:
        await store.close()
        await store.close()  # idempotent


def test_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MongoStore.connect("mongodb://localhost:notaport", "funnel_test")


async def test_a_closed_store_is_unavailable(mongo_wire_url: str) -> None:
    store = MongoStore.connect(mongo_wire_url, "funnel_closed")
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


class _FailingDatabase:
    """Every collection's writes raise ``error`` (no server: the shapes of BulkWriteError details)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getitem__(self, name: str) -> _FailingDatabase:
        return self

    async def insert_many(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def _bulk_error(errors: list[dict[str, Any]], concern: list[dict[str, Any]] | None = None) -> BulkWriteError:
    return BulkWriteError({"writeErrors": errors, "writeConcernErrors": concern or [], "nInserted": 0})


async def test_rejected_documents_are_bad_input_and_write_concern_is_unavailable() -> None:
    invalid = _bulk_error([{"index": 0, "code": 121, "errmsg": "Document failed validation"}])
    with pytest.raises(BadInput, match="failed validation"):
        await MongoStore.from_database(_FailingDatabase(invalid)).insert_many("users", [user(1)])
    with pytest.raises(BadInput):
        await MongoStore.from_database(_FailingDatabase(invalid)).upsert_many("users", [user(1)])
    concern = _bulk_error([], [{"code": 64, "errmsg": "waiting for replication timed out"}])
    for write in ("insert_many", "upsert_many"):
        with pytest.raises(StoreUnavailable):
            await getattr(MongoStore.from_database(_FailingDatabase(concern)), write)("users", [user(1)])


# -- bad input never reaches the server --------------------------------------------------------------------

LATER, EARLIER = date(2015, 1, 5), date(2015, 1, 1)
INVERTED = UserFilter(start=LATER, end=EARLIER)
BAD_CALLS = {
    "insert unknown collection": lambda s: s.insert_many("nope", [{"a": 1}]),
    "document without key": lambda s: s.insert_many("users", [{"device": "Mobile"}]),
    "document not a mapping": lambda s: s.upsert_many("users", [[("user_id", 1)]]),
    "unencodable value": lambda s: s.insert_many("users", [{"user_id": 1, "attributes": {1, 2}}]),
    "string user id": lambda s: s.users_by_ids(["1"]),
    "delete with string id": lambda s: s.delete_users(["1"]),
    "funnel inverted days": lambda s: s.funnel(FunnelQuery(STEPS, filter=INVERTED)),
    "funnel bad order": lambda s: s.funnel(FunnelQuery(STEPS, order="sideways")),
    "trend bad interval": lambda s: s.funnel_trend(FunnelQuery(STEPS), "fortnight"),
    "funnel_users step out of range": lambda s: s.funnel_users(FunnelQuery(STEPS), 3, False, 10, None),
    "strict negative window": lambda s: s.funnel(
        FunnelQuery(STEPS, order=StepOrder.STRICT, window_seconds=-1)
    ),
    "top_paths negative limit": lambda s: s.top_paths(-1, UserFilter()),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
async def test_bad_input_is_rejected(wire: Wire, call: Any) -> None:
    with pytest.raises(BadInput):
        await call(wire.store)
