"""The MongoDB document store: PyMongo's AsyncMongoClient behind the DocumentStore Protocol.

Lookups are one ``$in`` find per batch call; analytics are aggregation pipelines built in
``pipelines``. Funnel step matching runs on per-user groups the server builds, through the shared
reference math in ``gateway.stores.funnel_math`` (run in a thread: it is CPU work on many users).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

from bson.errors import BSONError
from pymongo import ASCENDING, AsyncMongoClient, ReplaceOne
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
)

from gateway.config import env_name
from gateway.errors import BadInput, ConfigError, StoreUnavailable
from gateway.models import (
    DashboardMetrics,
    Document,
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
    PRIMARY_KEYS,
    USER_INTERACTIONS,
    USER_SESSIONS,
    USERS,
)
from gateway.stores.funnel_math import UserMatch, funnel_result, trend
from gateway.stores.mongo import pipelines as mp
from gateway.stores.mongo.documents import from_mongo, index_name, to_mongo
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

WRITE_BATCH = 10_000
DUPLICATE_KEY = 11000
NO_ID = {"_id": 0}


@contextmanager
def _driver_errors(action: str) -> Iterator[None]:
    """Translate PyMongo/BSON errors into the gateway's (the driver error stays chained)."""
    try:
        yield
    except ConnectionFailure as exc:  # includes ServerSelectionTimeoutError, NetworkTimeout, AutoReconnect
        raise StoreUnavailable(f"MongoDB unreachable or timed out during {action}: {exc}") from exc
    except OperationFailure as exc:  # includes ExecutionTimeout and write-concern timeouts
        raise StoreUnavailable(f"MongoDB failed {action}: {exc}") from exc
    except PyMongoError as exc:  # e.g. InvalidOperation on a closed client
        raise StoreUnavailable(f"MongoDB client error during {action}: {exc}") from exc
    except (BSONError, OverflowError) as exc:
        raise BadInput(f"cannot encode a document for {action}: {exc}") from exc


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _unique(keys: Sequence[Hashable]) -> list[Any]:
    return list(dict.fromkeys(keys))


class MongoStore:
    name = "mongodb"

    def __init__(self, database: Any, client: Any | None = None) -> None:
        self._db = database
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
                # Analytics aggregations legitimately run for seconds; the socket may wait longer than
                # it takes to find a server or open a connection.
                socketTimeoutMS=max(timeout_ms, 60_000),
                appname="funnelgate",
                tz_aware=False,  # the gateway's timestamps are naive UTC
            )
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise ConfigError(env_name("mongo_url"), f"cannot configure MongoDB client: {exc}") from exc
        return cls(client[db_name], client)

    @classmethod
    def from_database(cls, database: Any, client: Any | None = None) -> MongoStore:
        """A store over an existing (async) database handle, e.g. the mongomock facade in tests."""
        return cls(database, client)

    # -- documents in and out ----------------------------------------------------------------------
    @staticmethod
    def _check_collection(collection: str) -> None:
        if collection not in COLLECTIONS:
            raise BadInput(f"unknown collection {collection!r}")

    async def _find(
        self, collection: str, query: Mapping[str, Any], sort: Sequence[str] = (), projection: Any = None
    ) -> list[Document]:
        with _driver_errors(f"find in {collection}"):
            cursor = self._db[collection].find(query, projection or NO_ID)
            if sort:
                cursor = cursor.sort([(field, ASCENDING) for field in sort])
            docs = await cursor.to_list(None)
        return [from_mongo(collection, doc) for doc in docs]

    async def _aggregate(self, collection: str, pipeline: mp.Pipeline) -> list[Document]:
        with _driver_errors(f"aggregate on {collection}"):
            cursor = await self._db[collection].aggregate(pipeline, allowDiskUse=True)
            return list(await cursor.to_list(None))

    async def _one_per_key(self, collection: str, field: str, keys: Sequence[Any]) -> list[Document | None]:
        if not keys:
            return []
        docs = await self._find(collection, {field: {"$in": _unique(keys)}})
        by_key = {doc[field]: doc for doc in docs}
        return [by_key.get(key) for key in keys]

    async def _many_per_key(
        self, collection: str, field: str, keys: Sequence[Any], sort: Sequence[str]
    ) -> list[list[Document]]:
        if not keys:
            return []
        docs = await self._find(collection, {field: {"$in": _unique(keys)}}, sort=sort)
        by_key: dict[Any, list[Document]] = defaultdict(list)
        for doc in docs:  # already in sort order, so each key's list is too
            by_key[doc[field]].append(doc)
        return [list(by_key.get(key, ())) for key in keys]

    # -- lifecycle ---------------------------------------------------------------------------------
    async def ensure_indexes(self) -> None:
        # create_index with the same name and options is a no-op, and it creates the collection.
        with _driver_errors("ensure_indexes"):
            for collection, specs in DESIGN_INDEXES.items():
                for spec in specs:
                    options: dict[str, Any] = {"name": index_name(spec)}
                    if spec.unique:
                        options["unique"] = True
                    await self._db[collection].create_index([(k, ASCENDING) for k in spec.keys], **options)

    async def indexes(self) -> dict[str, list[IndexSpec]]:
        out: dict[str, list[IndexSpec]] = {}
        with _driver_errors("indexes"):
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
        with _driver_errors("ping"):
            await self._db.command("ping")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            with _driver_errors("close"):
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

    async def list_users(self, filter: UserFilter, first: int, after: int | None) -> UserPage:
        check_range(filter.start, filter.end)
        check_count(first, "first")
        check_after(after)
        users = self._db[USERS]
        with _driver_errors("list_users"):
            # limit(0) would mean "no limit" to MongoDB; first + 1 also tells whether a next page exists.
            cursor = users.find(mp.users_query(filter, after), {"_id": 0, "user_id": 1})
            cursor = cursor.sort("user_id", ASCENDING).limit(first + 1)
            total, docs = await asyncio.gather(
                users.count_documents(mp.users_query(filter)), cursor.to_list(None)
            )
        ids = [doc["user_id"] for doc in docs]
        return UserPage(user_ids=ids[:first], total=total, has_next=len(ids) > first)

    async def page_types(self) -> list[str]:
        with _driver_errors("page_types"):
            values = await self._db[PAGE_VISITS].distinct("page_type")
        return sorted(value for value in values if value is not None)

    async def count(self, collection: str) -> int:
        self._check_collection(collection)
        with _driver_errors(f"count {collection}"):
            return int(await self._db[collection].count_documents({}))

    # -- analytics ---------------------------------------------------------------------------------
    async def _funnel_matches(self, query: FunnelQuery, group_field: str | None) -> list[UserMatch]:
        pipeline = mp.funnel_events_pipeline(query.steps, query.filter, group_field)
        docs = await self._aggregate(PAGE_VISITS, pipeline)
        return await asyncio.to_thread(mp.user_matches, docs, query)

    async def funnel(self, query: FunnelQuery) -> FunnelResult:
        check_funnel_query(query)
        group_field = query.breakdown.value if query.breakdown is not None else None
        matches = await self._funnel_matches(query, group_field)
        return await asyncio.to_thread(funnel_result, query.steps, matches, group_field is not None)

    async def funnel_trend(self, query: FunnelQuery, interval: Interval) -> list[TrendPoint]:
        check_funnel_query(query)
        check_interval(interval)
        matches = await self._funnel_matches(query, None)
        return await asyncio.to_thread(trend, query.steps, matches, interval)

    async def funnel_users(
        self, query: FunnelQuery, step_index: int, converted: bool, first: int, after: int | None
    ) -> UserPage:
        check_funnel_query(query)
        check_count(first, "first")
        check_after(after)
        check_step_index(query, step_index, converted)
        n = len(query.steps)
        reached = n if converted else step_index + 1  # exactly this many steps reached
        matches = await self._funnel_matches(query, None)
        ids = await asyncio.to_thread(lambda: sorted(m.user_id for m in matches if len(m.times) == reached))
        return mp.page_of(ids, first, after)

    async def dashboard(self, start: date | None, end: date | None) -> DashboardMetrics:
        check_range(start, end)
        [facets] = await self._aggregate(USER_SESSIONS, mp.dashboard_pipeline(start, end))
        return mp.dashboard_metrics(facets)

    async def top_paths(self, limit: int, filter: UserFilter) -> list[PathCount]:
        check_count(limit, "limit")
        check_range(filter.start, filter.end)
        if limit == 0:
            return []
        groups = await self._aggregate(USER_SESSIONS, mp.top_paths_pipeline(limit, filter))
        return mp.rank_paths(groups, limit)

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
        visits, interactions = await asyncio.gather(
            self._aggregate(PAGE_VISITS, mp.visit_activity_pipeline()),
            self._aggregate(USER_INTERACTIONS, mp.interaction_activity_pipeline()),
        )
        return await asyncio.to_thread(mp.merge_activity, visits, interactions)

    async def funnel_analytics(
        self, start: date | None, end: date | None, device: str | None
    ) -> list[Document]:
        check_range(start, end)
        query = mp.funnel_analytics_query(start, end, device)
        return await self._find(FUNNEL_ANALYTICS, query, sort=("date", "device", "step_index"))

    async def default_funnel(self) -> list[str] | None:
        with _driver_errors("default_funnel"):
            doc = await self._db[FUNNEL_DEFINITIONS].find_one({"name": DEFAULT_FUNNEL}, NO_ID)
        return list(doc["steps"]) if doc else None

    # -- writes ------------------------------------------------------------------------------------
    async def insert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        self._check_collection(collection)
        docs = [to_mongo(collection, doc) for doc in documents]  # copies: PyMongo adds _id to them
        written = duplicates = 0
        with _driver_errors(f"insert into {collection}"):
            for batch in _batches(docs, WRITE_BATCH):
                try:
                    result = await self._db[collection].insert_many(batch, ordered=False)
                    written += len(result.inserted_ids)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
                    if others:
                        raise BadInput(
                            f"MongoDB rejected a {collection} document: {others[0].get('errmsg')}"
                        ) from exc
                    if exc.details.get("writeConcernErrors"):
                        raise StoreUnavailable(f"MongoDB write concern failed on {collection}") from exc
                    written += int(exc.details.get("nInserted", 0))
                    duplicates += len(errors)
        return WriteResult(written=written, duplicates=duplicates)

    async def upsert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        self._check_collection(collection)
        keys = PRIMARY_KEYS[collection]
        docs = [to_mongo(collection, doc) for doc in documents]
        ops = [ReplaceOne({key: doc[key] for key in keys}, doc, upsert=True) for doc in docs]
        with _driver_errors(f"upsert into {collection}"):
            for batch in _batches(ops, WRITE_BATCH):
                try:
                    await self._db[collection].bulk_write(list(batch), ordered=False)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    if errors:
                        raise BadInput(
                            f"MongoDB rejected a {collection} document: {errors[0].get('errmsg')}"
                        ) from exc
                    raise StoreUnavailable(f"MongoDB write concern failed on {collection}") from exc
        return WriteResult(written=len(docs))

    async def replace_funnel_analytics(self, start: date, end: date, rows: Sequence[Document]) -> int:
        check_dates(start, end)
        with _driver_errors("replace funnel_analytics"):
            await self._db[FUNNEL_ANALYTICS].delete_many({"date": mp.day_range(start, end)})
        return (await self.upsert_many(FUNNEL_ANALYTICS, rows)).written

    async def set_default_funnel(self, steps: Sequence[str]) -> None:
        check_default_funnel(steps)
        await self.upsert_many(FUNNEL_DEFINITIONS, [{"name": DEFAULT_FUNNEL, "steps": list(steps)}])

    async def delete_users(self, user_ids: Sequence[int]) -> int:
        check_ids(user_ids, int, "user ids")
        if not user_ids:
            return 0
        match = {"user_id": {"$in": _unique(user_ids)}}
        with _driver_errors("delete_users"):
            # Their history first: an interrupted call leaves the users, so a retry finds them again.
            for collection in (USER_INTERACTIONS, PAGE_VISITS, USER_SESSIONS):
                await self._db[collection].delete_many(match)
            result = await self._db[USERS].delete_many(match)
        return int(result.deleted_count)
