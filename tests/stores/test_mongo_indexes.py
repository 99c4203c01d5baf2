"""Every query the MongoDB adapter sends is served by an index of ``collections.DESIGN_INDEXES``.

Not a list of query shapes kept by hand: the test calls every DocumentStore method (with each kind of
filter) on the contract fixture over the wire, records the commands PyMongo sends, and checks each one:

* statically, that an index serves its filter (the index's first key is constrained by it), its sort
  (an index starts with the sort keys) or its distinct key; ``$lookup``/``$unionWith`` targets too;
* on the server, with ``explain``, that the plan is an index scan. The test server's planner does not
  choose an index by itself for ``$in`` plus a range, or for ``distinct``/``delete`` at all (MongoDB's
  planner does); there the test asks again with the serving index as a hint, which proves the index can
  serve the query, and prints which queries needed it.

A few reads cover a whole collection by design (a dashboard or top paths over all time, a count, all
pre-computed rows); they are listed in WHOLE_COLLECTION and nowhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener, CommandStartedEvent

from gateway.models import Breakdown, FunnelQuery, IndexSpec, Interval, StepOrder, UserFilter
from gateway.stores.collections import DESIGN_INDEXES
from gateway.stores.mongo import store as mongo_store
from gateway.stores.mongo.documents import index_name
from gateway.stores.mongo.store import MongoStore
from tests.contract.fixture_data import DATASET, STEPS, fresh

pytestmark = pytest.mark.asyncio(loop_scope="module")

Shape = tuple[str, str, tuple[tuple[str, str], ...]]  # (command, collection, (field, condition kind))
WHOLE_COLLECTION = {
    ("aggregate", "user_sessions", ()),  # dashboard / top paths over all time
    # the last activity batch before any bound (a one-batch store); page_reach (the default funnel
    # derived from every visit, read while none is stored)
    ("aggregate", "page_visits", ()),
    ("find", "funnel_analytics", ()),  # every pre-computed row
    ("count", "page_visits", ()),  # count() of a collection: the collection's metadata on MongoDB
    ("count", "user_interactions", ()),
    ("count", "users", ()),
}


class Recorder(CommandListener):
    def __init__(self) -> None:
        self.sent: list[CommandStartedEvent] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.sent.append(event)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


async def exercise(store: MongoStore) -> None:
    """Every read and write of the Protocol, with each kind of filter its queries can take."""
    feb = UserFilter(start=date(2015, 2, 1), end=date(2015, 2, 28))
    filters = [UserFilter(), UserFilter(device="desktop"), UserFilter(sex="female"), feb]
    for order in StepOrder:
        for flt in filters:
            await store.funnel(FunnelQuery(STEPS, flt, order, 600, Breakdown.SEX))
    await store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.DEVICE))
    await store.funnel_trend(FunnelQuery(STEPS, UserFilter(device="mobile")), Interval.WEEK)
    await store.funnel_users(FunnelQuery(STEPS, feb), 1, False, 10, 20)
    for flt in filters:
        await store.top_paths(5, flt)
        await store.list_users(flt, 5, 10)
    await store.dashboard(None, None)
    await store.dashboard(date(2015, 1, 1), date(2015, 1, 31))
    await store.form_texts("search", None)
    await store.form_texts("search", date(2015, 1, 5))
    await store.activity_by_user_page()
    await store.funnel_analytics(None, None, None)
    await store.funnel_analytics(date(2015, 1, 5), None, "desktop")
    await store.default_funnel()
    await store.users_by_ids([10, 20])
    await store.sessions_by_ids(["s10a"])
    await store.sessions_by_user_ids([10])
    await store.visits_by_session_ids(["s10a"])
    await store.visits_by_user_ids([10])
    await store.interactions_by_session_ids(["s10a"])
    await store.page_types()
    await store.page_reach()
    for collection in ("users", "page_visits", "user_interactions"):
        await store.count(collection)
    await store.upsert_many("users", fresh(DATASET["users"][:2]))
    await store.replace_funnel_analytics(date(2015, 1, 5), date(2015, 1, 5), [])
    await store.delete_users([90])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(mongo_wire_url: str) -> AsyncIterator[tuple[Any, list[CommandStartedEvent]]]:
    recorder = Recorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_wire_url, tz_aware=False, event_listeners=[recorder]
    )
    db = client[f"idx_{uuid.uuid4().hex[:10]}"]
    store = MongoStore.from_database(db)
    await store.ensure_indexes()
    for collection, documents in DATASET.items():
        await store.insert_many(collection, fresh(documents))
    saved = mongo_store.ACTIVITY_BATCH_VISITS
    mongo_store.ACTIVITY_BATCH_VISITS = 10  # several batches: the bounded form of the activity reads
    try:
        recorder.sent.clear()
        await exercise(store)
        yield db, list(recorder.sent)
    finally:
        mongo_store.ACTIVITY_BATCH_VISITS = saved
        await client.drop_database(db.name)
        await client.close()


# -- reading queries out of commands ---------------------------------------------------------------------


def _kind(condition: Any) -> str:
    if not isinstance(condition, dict):
        return "eq"
    if "$in" in condition:
        return "in"
    if set(condition) & {"$gt", "$gte", "$lt", "$lte"}:
        return "range"
    return "other"  # $nin, $exists: residual conditions, no index bounds


def _shape(command: str, collection: str, query: dict[str, Any]) -> Shape:
    return command, collection, tuple(sorted((field, _kind(cond)) for field, cond in query.items()))


def queries(event: CommandStartedEvent) -> list[tuple[Shape, dict[str, Any], dict[str, Any]]]:
    """(shape, filter, sort) of every query in one command, sub-pipelines of $lookup/$unionWith too."""
    cmd, name = event.command, event.command_name
    if name == "find":
        return [
            (_shape("find", cmd["find"], cmd.get("filter", {})), cmd.get("filter", {}), cmd.get("sort", {}))
        ]
    if name == "distinct":
        return [(_shape("distinct", cmd["distinct"], {cmd["key"]: "key"}), {cmd["key"]: "key"}, {})]
    if name in {"delete", "update"}:
        items = cmd["deletes" if name == "delete" else "updates"]
        return [(_shape(name, cmd[name], item["q"]), item["q"], {}) for item in items]
    if name == "aggregate":
        return _pipeline_queries(cmd["aggregate"], cmd["pipeline"])
    return []  # insert, createIndexes, listIndexes, ping: no query


def _pipeline_queries(collection: str, pipeline: list[dict[str, Any]]) -> list[Any]:
    first = pipeline[0] if pipeline else {}
    match = first.get("$match", {})
    sort = first.get("$sort", {})
    command = "count" if any("$group" in s and s["$group"].get("_id") == 1 for s in pipeline) else "aggregate"
    found = [(_shape(command, collection, match), match, sort)]
    for stage in pipeline:
        if "$lookup" in stage:
            lookup = stage["$lookup"]
            target = {lookup["foreignField"]: "joined"}
            found.append((_shape("lookup", lookup["from"], target), target, {}))
        if "$unionWith" in stage:
            found += _pipeline_queries(stage["$unionWith"]["coll"], stage["$unionWith"]["pipeline"])
        if "$facet" in stage:
            continue  # facets work on the stage's input, not on a collection
    return found


def serving_index(collection: str, query: dict[str, Any], sort: dict[str, Any]) -> IndexSpec | None:
    """An index whose first key the query constrains, or whose keys start with the sort's."""
    for spec in DESIGN_INDEXES[collection]:
        if query and spec.keys[0] in query:
            return spec
        if not query and sort and tuple(spec.keys[: len(sort)]) == tuple(sort):
            return spec
    return None


async def test_the_exercise_reaches_every_collection_and_kind(recorded: Any) -> None:
    _, sent = recorded
    shapes = {shape for event in sent for shape, _, _ in queries(event)}
    assert {shape[1] for shape in shapes} == set(DESIGN_INDEXES) - {"funnel_definitions"} | {
        "funnel_definitions"
    }
    assert {"find", "aggregate", "count", "distinct", "delete", "update", "lookup"} <= {s[0] for s in shapes}


async def test_every_query_is_served_by_a_design_index(recorded: Any) -> None:
    _, sent = recorded
    unserved = set()
    for event in sent:
        for shape, query, sort in queries(event):
            if shape in WHOLE_COLLECTION:
                continue
            if serving_index(shape[1], query, sort) is None:
                unserved.add(shape)
    assert unserved == set(), "add an index to collections.DESIGN_INDEXES for these queries"


def _plan(explained: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(stage, index name) down the winning plan, for find and aggregate explains alike."""
    planner = explained.get("queryPlanner") or explained["stages"][0]["$cursor"]["queryPlanner"]
    chain, node = [], planner["winningPlan"]
    while node:
        chain.append((node["stage"], node.get("indexName")))
        node = node.get("inputStage") or (node.get("inputStages") or [None])[0]
    return chain


async def test_the_server_plans_each_query_on_its_index(recorded: Any) -> None:
    db, sent = recorded
    hinted: set[Shape] = set()
    explained: set[Shape] = set()
    for event in sent:
        if event.command_name not in {"find", "aggregate"}:
            continue  # the server's explain of distinct/delete shows no plan choice; covered statically
        for shape, query, sort in queries(event):
            if shape in WHOLE_COLLECTION or shape in explained or shape[0] == "lookup":
                continue
            explained.add(shape)
            spec = serving_index(shape[1], query, sort)
            assert spec is not None, shape
            base: dict[str, Any] = {"find": shape[1], "filter": query}
            if sort:
                base["sort"] = sort
            plan = _plan(await db.command("explain", base, verbosity="queryPlanner"))
            if not any(stage in {"IXSCAN", "DISTINCT_SCAN", "COUNT_SCAN"} for stage, _ in plan):
                hinted.add(shape)
                plan = _plan(
                    await db.command("explain", {**base, "hint": index_name(spec)}, verbosity="queryPlanner")
                )
            assert ("IXSCAN", index_name(spec)) in plan or any(stage == "IXSCAN" for stage, _ in plan), (
                shape,
                plan,
            )
    assert len(explained) >= 15  # the exercise produced the variety it is meant to
    print(f"explained {len(explained)} query shapes; the test server needed a hint for {sorted(hinted)}")
