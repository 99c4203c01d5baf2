"""The MongoDB adapter's generic writes (``insert_many``, ``upsert_many``, ``delete_users``) and the
unordered insert they share with ``record_events`` (``events.py``): bounded batches, the driver's bulk
errors translated. No default time limit: a write is a bounded batch, cut by nothing half-way (see
``driver.py``).

A bulk error's ``writeErrors`` code 11000 (duplicate key on a unique index) means "already stored":
counted, not raised. Any other refused document is the caller's (``BadInput``, with MongoDB's message);
a failed write concern is the server's (``StoreUnavailable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ReadPreference, ReplaceOne
from pymongo.errors import BulkWriteError

from gateway.errors import BadInput, StoreUnavailable
from gateway.models import Document, WriteResult
from gateway.stores.batches import batches
from gateway.stores.collections import PAGE_VISITS, PRIMARY_KEYS, USER_INTERACTIONS, USER_SESSIONS, USERS
from gateway.stores.mongo.documents import to_mongo
from gateway.stores.mongo.driver import operation

WRITE_BATCH = 10_000
# Ids per delete: one $in of 50,000 int64 ids is ~0.75 MB of BSON, far below the 16 MB command limit
# that one $in of every id of a large ingest (~1.4M users) would exceed.
DELETE_BATCH = 50_000
DUPLICATE_KEY = 11000


async def insert_unordered(collection: Any, name: str, docs: list[Document]) -> set[int]:
    """``insert_many(ordered=False)`` of ``docs`` into ``collection`` (named ``name`` in messages): every
    document it can; the positions of those refused as already stored."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if others:
            raise BadInput(f"MongoDB rejected a {name} document: {others[0].get('errmsg')}") from exc
        if exc.details.get("writeConcernErrors"):
            raise StoreUnavailable(f"MongoDB write concern failed on {name}") from exc
        return {int(e["index"]) for e in errors}
    return set()


async def insert_many(db: Any, collection: str, documents: Sequence[Document]) -> WriteResult:
    docs = [to_mongo(collection, doc) for doc in documents]  # copies: PyMongo adds _id to them
    written = duplicates = 0
    with operation(f"insert into {collection}", default_s=None):
        for batch in batches(docs, WRITE_BATCH):
            refused = await insert_unordered(db[collection], collection, list(batch))
            written += len(batch) - len(refused)
            duplicates += len(refused)
    return WriteResult(written=written, duplicates=duplicates)


# The other event collection of each: an id is one event whatever its type.
_OTHER_EVENTS = {PAGE_VISITS: USER_INTERACTIONS, USER_INTERACTIONS: PAGE_VISITS}


async def _held_by_the_other_type(db: Any, collection: str, docs: list[Document]) -> set[Any]:
    """The event ids of ``docs`` that the other event collection holds (one read of its unique
    ``event_id`` index, on the primary); none for a collection that is not an event one."""
    other = _OTHER_EVENTS.get(collection)
    ids = list(dict.fromkeys(doc["event_id"] for doc in docs)) if other else []
    if not ids:
        return set()
    found = (
        db[other]
        .with_options(read_preference=ReadPreference.PRIMARY)
        .find({"event_id": {"$in": ids}}, {"_id": 0, "event_id": 1})
    )
    return {doc["event_id"] for doc in await found.to_list(None)}


async def upsert_many(db: Any, collection: str, documents: Sequence[Document]) -> WriteResult:
    """Replace by key; an event whose id the other event collection holds is another event, left out
    and counted in ``duplicates`` (as DuckDB's register leaves it out). Checked per batch before its
    write: two writers storing one id as two types at the same instant can both miss it, as in
    ``events.py``."""
    keys = PRIMARY_KEYS[collection]
    docs = [to_mongo(collection, doc) for doc in documents]
    held_back = 0
    with operation(f"upsert into {collection}", default_s=None):
        for chunk in batches(docs, WRITE_BATCH):
            held = await _held_by_the_other_type(db, collection, list(chunk))
            batch = [
                ReplaceOne({key: doc[key] for key in keys}, doc, upsert=True)
                for doc in chunk
                if not held or doc["event_id"] not in held
            ]
            held_back += len(chunk) - len(batch)
            if not batch:
                continue
            try:
                await db[collection].bulk_write(batch, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if errors:
                    raise BadInput(
                        f"MongoDB rejected a {collection} document: {errors[0].get('errmsg')}"
                    ) from exc
                raise StoreUnavailable(f"MongoDB write concern failed on {collection}") from exc
    return WriteResult(written=len(docs) - held_back, duplicates=held_back)


async def delete_users(db: Any, user_ids: Sequence[int]) -> int:
    deleted = 0
    with operation("delete_users", default_s=None):
        for batch in batches(list(dict.fromkeys(user_ids)), DELETE_BATCH):
            match = {"user_id": {"$in": list(batch)}}
            # Their history first: an interrupted call leaves the users, so a retry finds them again.
            for collection in (USER_INTERACTIONS, PAGE_VISITS, USER_SESSIONS):
                await db[collection].delete_many(match)
            deleted += (await db[USERS].delete_many(match)).deleted_count
    return deleted
