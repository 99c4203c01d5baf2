"""The MongoDB document store: PyMongo's AsyncMongoClient behind the DocumentStore Protocol.

Lookups are one ``$in`` find per batch call. Analytics are aggregation pipelines computed on the server
(``funnel_pipelines``, ``pipelines``): what comes back is O(answer) -- steps x breakdown values, one page
of ids, ``limit`` paths -- never a document per user. Every call runs through ``driver.operation``,
which gives it the request's time limit and translates the driver's errors.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pymongo
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import ConfigurationError

from gateway.config import env_name
from gateway.errors import BadInput, ConfigError
from gateway.models import (
    DashboardMetrics,
    Document,
    EventBatch,
    FunnelQuery,
    FunnelResult,
    IndexSpec,
    Interval,
    PathCount,
    TrendPoint,
    UserFilter,
    UserPage,
    WriteResult,
)
from gateway.stores.collections import (
    COLLECTIONS,
    DEFAULT_FUNNEL,
    DESIGN_INDEXES,
    FUNNEL_ANALYTICS,
    FUNNEL_DEFINITIONS,
    PAGE_VISITS,
    USER_INTERACTIONS,
    USER_SESSIONS,
    USERS,
)
from gateway.stores.mongo import events, generations, writes
from gateway.stores.mongo import funnel_pipelines as fp
from gateway.stores.mongo import pipelines as mp
from gateway.stores.mongo.documents import from_mongo, index_name
from gateway.stores.mongo.driver import SOCKET_TIMEOUT_S, max_time_option, operation
from gateway.stores.mongo.served import ServedGeneration
from gateway.validation import (
    check_after,
    check_count,
    check_dates,
    check_default_funnel,
    check_funnel_query,
    check_ids,
    check_interval,
    check_page_type,
    check_range,
    check_step_index,
)

# Visits per activity_by_user_page batch (whole users): bounds each aggregation's work and reply.
ACTIVITY_BATCH_VISITS = 20_000
NO_ID = {"_id": 0}
# At most this long for close() to reach MongoDB to end its sessions (a reachable server takes ms).
CLOSE_TIMEOUT_S = 1.0


class MongoStore(ServedGeneration):
    name = "mongodb"

    def __init__(self, database: Any, client: Any | None = None, *, generation: int | None = None) -> None:
        # Collection names resolve to the served generation's; a store pinned to one (a build) never moves.
        self._db = generations.GenerationDatabase(database, generation or 0)
        self._pinned = generation is not None
        self._client = client  # closed by close() when given (the store owns it)
        self._closed = False

    @classmethod
    def connect(cls, url: str, db_name: str, pool_size: int = 50, timeout_ms: int = 5000) -> MongoStore:
        """A store owning a new AsyncMongoClient (connections open lazily, on the first call)."""
        try:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                url,
                maxPoolSize=pool_size,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                # Reads carry their own server-side limit (driver.py); the socket waits a little longer,
                # so a silent server is noticed without cutting a query the server is still allowed.
                socketTimeoutMS=max(timeout_ms, int(SOCKET_TIMEOUT_S * 1000)),
                appname="funnelgate",
                tz_aware=False,  # the gateway's timestamps are naive UTC
            )
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise ConfigError(env_name("mongo_url"), f"cannot configure MongoDB client: {exc}") from exc
        return cls(client[db_name], client)

    @classmethod
    def from_database(cls, database: Any, client: Any | None = None) -> MongoStore:
        """A store over an existing AsyncDatabase (tests, benches: a client with listeners/options)."""
        return cls(database, client)

    # -- plumbing ----------------------------------------------------------------------------------
    @staticmethod
    def _check_collection(collection: str) -> None:
        if collection not in COLLECTIONS:
            raise BadInput(f"unknown collection {collection!r}")

    async def _find(
        self, collection: str, query: Mapping[str, Any], sort: Sequence[str] = (), projection: Any = None
    ) -> list[Document]:
        with operation(f"find in {collection}") as max_ms:
            cursor = self._db[collection].find(query, projection or NO_ID, max_time_ms=max_ms)
            if sort:
                cursor = cursor.sort([(field, ASCENDING) for field in sort])
            docs = await cursor.to_list(None)
        return [from_mongo(collection, doc) for doc in docs]

    async def _aggregate(self, collection: str, pipeline: mp.Pipeline) -> list[Document]:
        # allowDiskUse: the funnel's $group and $setWindowFields may spill past 100 MB instead of failing
        pipeline = self._db.pipeline(pipeline)  # the collections it names, in this generation
        with operation(f"aggregate on {collection}") as max_ms:
            cursor = await self._db[collection].aggregate(
                pipeline, allowDiskUse=True, **max_time_option(max_ms)
            )
            return list(await cursor.to_list(None))

    async def _one_per_key(self, collection: str, field: str, keys: Sequence[Any]) -> list[Document | None]:
        if not keys:
            return []
        docs = await self._find(collection, {field: {"$in": list(dict.fromkeys(keys))}})
        by_key = {doc[field]: doc for doc in docs}
        return [by_key.get(key) for key in keys]

    async def _many_per_key(
        self, collection: str, field: str, keys: Sequence[Any], sort: Sequence[str]
    ) -> list[list[Document]]:
        if not keys:
            return []
        docs = await self._find(collection, {field: {"$in": list(dict.fromkeys(keys))}}, sort=sort)
        by_key: dict[Any, list[Document]] = defaultdict(list)
        for doc in docs:  # already in sort order, so each key's list is too
            by_key[doc[field]].append(doc)
        return [list(by_key.get(key, ())) for key in keys]

    # -- lifecycle ---------------------------------------------------------------------------------
    async def ensure_indexes(self) -> None:
        # The served generation first (opening a store reads it here), then its indexes: create_index
        # with the same name and options is a no-op, and it creates the collection.
        await self.refresh_generation()
        with operation("ensure_indexes", default_s=None):
            for collection, specs in DESIGN_INDEXES.items():
                for spec in specs:
                    options: dict[str, Any] = {"name": index_name(spec)}
                    if spec.unique:
                        options["unique"] = True
                    await self._db[collection].create_index([(k, ASCENDING) for k in spec.keys], **options)

    async def indexes(self) -> dict[str, list[IndexSpec]]:
        out: dict[str, list[IndexSpec]] = {}
        with operation("indexes"):
            for collection in COLLECTIONS:
                info = await self._db[collection].index_information()
                specs = [
                    IndexSpec(tuple(key for key, _ in index["key"]), unique=bool(index.get("unique", False)))
                    for name, index in info.items()
                    if name != "_id_"
                ]
                if specs:
                    out[collection] = specs
        return out

    async def ping(self) -> None:
        if not self.generation_known:  # up only once it can serve: the probe reads the generation too
            await self.refresh_generation()
        with operation("ping"):
            await self._db.command("ping")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stop_following()
        if self._client is not None:
            # close() first ends the client's server sessions (endSessions), for which it selects a
            # server: with MongoDB down that waited the whole server-selection timeout
            # (FUNNEL_MONGO_TIMEOUT_MS), and SIGTERM took ~5.6 s instead of ~0.1 s. Ending sessions is
            # a courtesy (the server expires them; the driver ignores its failure): bound it.
            with operation("close", default_s=None), pymongo.timeout(CLOSE_TIMEOUT_S):
                await self._client.close()

    # -- lookups by many keys ----------------------------------------------------------------------
    async def users_by_ids(self, user_ids: Sequence[int]) -> list[Document | None]:
        check_ids(user_ids, int, "user ids")
        return await self._one_per_key(USERS, "user_id", user_ids)

    async def sessions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        check_ids(user_ids, int, "user ids")
        return await self._many_per_key(USER_SESSIONS, "user_id", user_ids, ("start_time", "session_id"))

    async def sessions_by_ids(self, session_ids: Sequence[str]) -> list[Document | None]:
        check_ids(session_ids, str, "session ids")
        return await self._one_per_key(USER_SESSIONS, "session_id", session_ids)

    async def visits_by_session_ids(self, session_ids: Sequence[str]) -> list[list[Document]]:
        check_ids(session_ids, str, "session ids")
        return await self._many_per_key(PAGE_VISITS, "session_id", session_ids, ("timestamp", "event_id"))

    async def visits_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        check_ids(user_ids, int, "user ids")
        return await self._many_per_key(PAGE_VISITS, "user_id", user_ids, ("timestamp", "event_id"))

    async def interactions_by_session_ids(self, session_ids: Sequence[str]) -> list[list[Document]]:
        check_ids(session_ids, str, "session ids")
        return await self._many_per_key(
            USER_INTERACTIONS, "session_id", session_ids, ("timestamp", "event_id")
        )

    async def interactions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        check_ids(user_ids, int, "user ids")
        # One $in query per batch of users, sorted on the server (the (user_id, session_id) index finds them).
        return await self._many_per_key(USER_INTERACTIONS, "user_id", user_ids, ("timestamp", "event_id"))

    async def list_users(self, filter: UserFilter, first: int, after: int | None) -> UserPage:
        check_range(filter.start, filter.end)
        check_count(first, "first")
        check_after(after)
        users = self._db[USERS]
        with operation("list_users") as max_ms:
            # limit(0) would mean "no limit" to MongoDB; first + 1 also tells whether a next page exists.
            cursor = users.find(mp.users_query(filter, after), {"_id": 0, "user_id": 1}, max_time_ms=max_ms)
            cursor = cursor.sort("user_id", ASCENDING).limit(first + 1)
            total, docs = await asyncio.gather(
                users.count_documents(mp.users_query(filter), **max_time_option(max_ms)), cursor.to_list(None)
            )
        ids = [doc["user_id"] for doc in docs]
        return UserPage(user_ids=ids[:first], total=total, has_next=len(ids) > first)

    async def page_types(self) -> list[str]:
        with operation("page_types") as max_ms:
            values = await self._db[PAGE_VISITS].distinct("page_type", **max_time_option(max_ms))
        return sorted(value for value in values if value is not None)

    async def page_reach(self) -> dict[str, int]:
        rows = await self._aggregate(PAGE_VISITS, mp.page_reach_pipeline())
        return {row["_id"]: int(row["users"]) for row in rows if row["_id"] is not None}

    async def count(self, collection: str) -> int:
        self._check_collection(collection)
        with operation(f"count {collection}") as max_ms:
            return int(await self._db[collection].count_documents({}, **max_time_option(max_ms)))

    # -- analytics: computed on the server ----------------------------------------------------------
    async def funnel(self, query: FunnelQuery) -> FunnelResult:
        check_funnel_query(query)
        rows = await self._aggregate(PAGE_VISITS, fp.summary_pipeline(query))
        return fp.summary_result(query, rows)

    async def funnel_trend(self, query: FunnelQuery, interval: Interval) -> list[TrendPoint]:
        check_funnel_query(query)
        check_interval(interval)
        rows = await self._aggregate(PAGE_VISITS, fp.trend_pipeline(query, interval))
        return fp.trend_result(query, rows)

    async def funnel_users(
        self, query: FunnelQuery, step_index: int, converted: bool, first: int, after: int | None
    ) -> UserPage:
        check_funnel_query(query)
        check_count(first, "first")
        check_after(after)
        check_step_index(query, step_index, converted)
        reached = len(query.steps) if converted else step_index + 1  # exactly this many steps reached
        [facets] = await self._aggregate(PAGE_VISITS, fp.users_pipeline(query, reached, first + 1, after))
        return fp.users_result(facets, first)

    async def dashboard(
        self, start: date | None, end: date | None, device: str | None = None, sex: str | None = None
    ) -> DashboardMetrics:
        check_range(start, end)
        [facets] = await self._aggregate(USER_SESSIONS, mp.dashboard_pipeline(start, end, device, sex))
        return mp.dashboard_metrics(facets)

    async def top_paths(self, limit: int, filter: UserFilter) -> list[PathCount]:
        check_count(limit, "limit")
        check_range(filter.start, filter.end)
        if limit == 0:
            return []  # $limit 0 is an error to MongoDB
        return mp.path_counts(await self._aggregate(USER_SESSIONS, mp.top_paths_pipeline(limit, filter)))

    async def form_texts(self, page_type: str, day: date | None) -> list[str]:
        check_page_type(page_type)
        docs = await self._find(
            USER_INTERACTIONS,
            mp.form_texts_query(page_type, day),
            sort=("timestamp", "event_id"),
            projection={"_id": 0, "value": 1},
        )
        return [doc["value"] for doc in docs]

    async def activity_by_user_page(self) -> list[Document]:
        """In batches of whole users (ACTIVITY_BATCH_VISITS visits each, plus the rest of the last
        user's): every aggregation is bounded, so each fits its own time limit at any data size."""
        rows: list[Document] = []
        after: int | None = None
        while True:
            bound = await self._aggregate(
                PAGE_VISITS, mp.activity_bound_pipeline(after, ACTIVITY_BATCH_VISITS)
            )
            upto = int(bound[0]["user_id"]) if bound else None
            rows += await self._aggregate(PAGE_VISITS, mp.activity_batch_pipeline(after, upto))
            if upto is None:
                return rows
            after = upto

    async def funnel_analytics(
        self, start: date | None, end: date | None, device: str | None
    ) -> list[Document]:
        check_range(start, end)
        query = mp.funnel_analytics_query(start, end, device)
        return await self._find(FUNNEL_ANALYTICS, query, sort=("date", "device", "step_index"))

    async def default_funnel(self) -> list[str] | None:
        with operation("default_funnel") as max_ms:
            doc = await self._db[FUNNEL_DEFINITIONS].find_one(
                {"name": DEFAULT_FUNNEL}, NO_ID, max_time_ms=max_ms
            )
        return list(doc["steps"]) if doc else None

    # -- writes: bounded batches, no default time limit (see driver.py, writes.py) ---------------------
    async def insert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        self._check_collection(collection)
        return await writes.insert_many(self._db, collection, documents)

    async def upsert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        self._check_collection(collection)
        return await writes.upsert_many(self._db, collection, documents)

    async def replace_funnel_analytics(self, start: date, end: date, rows: Sequence[Document]) -> int:
        check_dates(start, end)
        days = mp.day_range(start, end)
        assert days is not None  # check_dates: both days are given
        with operation("replace funnel_analytics", default_s=None):
            await self._db[FUNNEL_ANALYTICS].delete_many({"date": days})
        return (await writes.upsert_many(self._db, FUNNEL_ANALYTICS, rows)).written

    async def set_default_funnel(self, steps: Sequence[str]) -> None:
        check_default_funnel(steps)
        await writes.upsert_many(
            self._db, FUNNEL_DEFINITIONS, [{"name": DEFAULT_FUNNEL, "steps": list(steps)}]
        )

    async def delete_users(self, user_ids: Sequence[int]) -> int:
        check_ids(user_ids, int, "user ids")
        return await writes.delete_users(self._db, user_ids)

    async def record_events(
        self, batch: EventBatch, *, refuse_stored: bool = False, withheld: Sequence[str] = ()
    ) -> list[str]:
        # A bounded batch of writes, like ingest's: no request deadline cuts it half-way.
        with operation("record_events", default_s=None):
            return await events.record(self._db, batch, refuse_stored, withheld)
