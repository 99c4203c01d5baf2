"""An async facade over mongomock: the subset of PyMongo's async API that ``MongoStore`` uses.

mongomock is synchronous, so each call simply runs inline (fixtures are small). The facade mimics the
shapes the real ``AsyncMongoClient`` returns: ``await coll.aggregate(...)`` gives a cursor with
``async to_list``, ``find()`` is not awaited, unordered ``insert_many`` raises pymongo's
``BulkWriteError`` with code-11000 write errors and server-shaped details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mongomock
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, InvalidOperation
from pymongo.results import BulkWriteResult

_DUPLICATE_KEY = 11000


def _bulk_details(n_inserted: int = 0, write_errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``details`` dict of a real server's BulkWriteError / bulk_api_result."""
    return {
        "writeErrors": write_errors or [],
        "writeConcernErrors": [],
        "nInserted": n_inserted,
        "nUpserted": 0,
        "nMatched": 0,
        "nModified": 0,
        "nRemoved": 0,
        "upserted": [],
    }


class _ListCursor:
    """What ``await coll.aggregate(...)`` returns: results already computed, handed out by to_list."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self._docs = docs

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        docs, self._docs = self._docs, []
        return docs if length is None else docs[:length]


class _FindCursor:
    """What ``coll.find(...)`` returns (not awaited); sort/limit chain, ``await to_list`` runs it."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def sort(self, key_or_list: Any, direction: int | None = None) -> _FindCursor:
        if direction is None:
            self._cursor.sort(key_or_list)
        else:
            self._cursor.sort(key_or_list, direction)
        return self

    def limit(self, limit: int) -> _FindCursor:
        self._cursor.limit(limit)
        return self

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        docs = list(self._cursor)
        return docs if length is None else docs[:length]


class AsyncMongomockCollection:
    def __init__(self, collection: Any, closed: list[bool]) -> None:
        self._coll = collection
        self._closed = closed  # shared with the client: using a closed client fails like PyMongo

    def _check_open(self) -> None:
        if self._closed[0]:
            raise InvalidOperation("Cannot use AsyncMongoClient after close")

    @property
    def name(self) -> str:
        return str(self._coll.name)

    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]], **_options: Any) -> _ListCursor:
        # allowDiskUse and other options mean nothing to an in-memory fake.
        self._check_open()
        return _ListCursor(list(self._coll.aggregate(list(pipeline))))

    def find(self, filter: Mapping[str, Any] | None = None, projection: Any = None) -> _FindCursor:
        self._check_open()
        return _FindCursor(self._coll.find(filter or {}, projection))

    async def find_one(self, filter: Mapping[str, Any] | None = None, projection: Any = None) -> Any:
        self._check_open()
        return self._coll.find_one(filter or {}, projection)

    async def insert_many(self, documents: Sequence[dict[str, Any]], ordered: bool = True) -> Any:
        self._check_open()
        try:
            return self._coll.insert_many(list(documents), ordered=ordered)
        except BulkWriteError as exc:
            # Re-shape mongomock's partial details like the server's.
            raw = exc.details or {}
            details = _bulk_details(raw.get("nInserted", 0), list(raw.get("writeErrors", [])))
            raise BulkWriteError(details) from None

    async def bulk_write(self, requests: Sequence[Any], ordered: bool = True) -> BulkWriteResult:
        # mongomock's own bulk_write breaks on PyMongo 4.20's operations (they pass ``sort=`` to its
        # bulk builder), so each operation is replayed through the single-document methods.
        self._check_open()
        details = _bulk_details()
        for index, op in enumerate(requests):
            try:
                self._apply(op, details)
            except DuplicateKeyError as exc:
                details["writeErrors"].append(
                    {
                        "index": index,
                        "code": _DUPLICATE_KEY,
                        "errmsg": str(exc),
                        "op": getattr(op, "_doc", None),
                    }
                )
                if ordered:
                    break
        if details["writeErrors"]:
            raise BulkWriteError(details)
        return BulkWriteResult(details, True)

    def _apply(self, op: Any, details: dict[str, Any]) -> None:
        if isinstance(op, InsertOne):
            self._coll.insert_one(op._doc)
            details["nInserted"] += 1
            return
        if isinstance(op, ReplaceOne | UpdateOne | UpdateMany):
            if isinstance(op, ReplaceOne):
                result = self._coll.replace_one(op._filter, op._doc, upsert=op._upsert)
            elif isinstance(op, UpdateOne):
                result = self._coll.update_one(op._filter, op._doc, upsert=op._upsert)
            else:
                result = self._coll.update_many(op._filter, op._doc, upsert=op._upsert)
            details["nMatched"] += result.matched_count
            details["nModified"] += result.modified_count
            if result.upserted_id is not None:
                details["nUpserted"] += 1
                details["upserted"].append({"_id": result.upserted_id})
            return
        if isinstance(op, DeleteOne | DeleteMany):
            delete = self._coll.delete_one if isinstance(op, DeleteOne) else self._coll.delete_many
            details["nRemoved"] += delete(op._filter).deleted_count
            return
        raise TypeError(f"unsupported bulk operation {op!r}")

    async def replace_one(
        self, filter: Mapping[str, Any], replacement: Mapping[str, Any], upsert: bool = False
    ) -> Any:
        self._check_open()
        return self._coll.replace_one(filter, replacement, upsert=upsert)

    async def create_index(self, keys: Any, **options: Any) -> str:
        self._check_open()
        return str(self._coll.create_index(keys, **options))

    async def index_information(self) -> dict[str, Any]:
        self._check_open()
        return dict(self._coll.index_information())

    async def count_documents(self, filter: Mapping[str, Any], **_options: Any) -> int:
        self._check_open()
        return int(self._coll.count_documents(filter))

    async def estimated_document_count(self, **_options: Any) -> int:
        self._check_open()
        return int(self._coll.estimated_document_count())

    async def delete_many(self, filter: Mapping[str, Any]) -> Any:
        self._check_open()
        return self._coll.delete_many(filter)

    async def distinct(self, key: str, filter: Mapping[str, Any] | None = None) -> list[Any]:
        self._check_open()
        return list(self._coll.distinct(key, filter))

    async def drop(self) -> None:
        self._check_open()
        self._coll.drop()


class AsyncMongomockDatabase:
    def __init__(self, database: Any, client: AsyncMongomockClient) -> None:
        self._db = database
        self.client = client

    @property
    def name(self) -> str:
        return str(self._db.name)

    def __getitem__(self, name: str) -> AsyncMongomockCollection:
        return AsyncMongomockCollection(self._db[name], self.client._closed)

    def get_collection(self, name: str) -> AsyncMongomockCollection:
        return self[name]

    async def command(self, command: str, **_options: Any) -> dict[str, Any]:
        if self.client._closed[0]:
            raise InvalidOperation("Cannot use AsyncMongoClient after close")
        return dict(self._db.command(command))

    async def list_collection_names(self) -> list[str]:
        return list(self._db.list_collection_names())


class AsyncMongomockClient:
    """``client[db][coll]`` over one in-memory mongomock server; ``await close()`` like AsyncMongoClient."""

    def __init__(self) -> None:
        self._client: Any = mongomock.MongoClient()
        self._closed = [False]

    def __getitem__(self, name: str) -> AsyncMongomockDatabase:
        return AsyncMongomockDatabase(self._client[name], self)

    def get_database(self, name: str) -> AsyncMongomockDatabase:
        return self[name]

    @property
    def admin(self) -> AsyncMongomockDatabase:
        return self["admin"]

    async def close(self) -> None:
        self._closed[0] = True
