"""``record_events`` on MongoDB: unordered bulk inserts whose duplicate-key errors say which events
are new, then the sessions of the new events, every write journaled (``j: true``).

Which events are new: an unordered ``insert_many`` writes every document it can and reports each
refused one (its ``index`` in the batch) in ``writeErrors``; code 11000 (duplicate key on the unique
``event_id`` index) means "already stored". Every other inserted document is new.

An id is one event whatever its type: a visit whose id ``user_interactions`` holds (or an interaction
whose id ``page_visits`` or a visit of the batch holds) is a duplicate, found by one indexed read of
each collection before the inserts. Two gateways inserting one id as two types at the same instant can
both find it absent (there is no cross-collection unique index); a replay is caught by the keys. With
``refuse_stored`` the two reads look for every id in both collections, and any found stops the write
before it starts (``StoredEvents``).

Users: only those of ``batch.users`` with a newly inserted event (a duplicate creates no one).

Sessions: one read of the stored ends of the sessions that get visits, then the ``$min``/``$max``/
``$push``/``$inc`` upserts; a session a late visit reorders (``SessionDelta.appends_after``) gets no
``$push`` but its ``pages_visited`` rebuilt from its stored visits afterwards (an indexed read of them).
The stored end is the only bound at hand (a process-local memory of latest visits, as DuckDB keeps, is
wrong with several gateways): a page view whose duration reaches past the next view's start makes
that next view "late" and costs its session a rebuild.

Order and crashes: events, then users, then sessions. A standalone MongoDB has no multi-document
transactions, so a crash after the events and before the sessions leaves those events stored (durable,
counted as duplicates on retry) with their sessions not yet extended -- and, since a duplicate creates
no one, an unknown user of theirs not yet created until their next new event; the events themselves
are never lost. A replica set could wrap the three in a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReadPreference, UpdateOne
from pymongo.errors import BulkWriteError
from pymongo.write_concern import WriteConcern

from gateway.errors import StoredEvents, StoreUnavailable
from gateway.models import Document, EventBatch
from gateway.stores.collections import PAGE_VISITS, PRIMARY_KEYS, USER_INTERACTIONS, USER_SESSIONS, USERS
from gateway.stores.event_fold import (
    SessionDelta,
    new_event_ids,
    pages_in_order,
    session_deltas,
    users_with_new_events,
)
from gateway.stores.mongo.documents import to_mongo
from gateway.stores.mongo.writes import insert_unordered

JOURNALED = WriteConcern(j=True)


def _journaled(collection: Any) -> Any:
    return collection.with_options(write_concern=JOURNALED)


def _primary(collection: Any) -> Any:
    """Reads the write depends on go to the primary, whatever the URL's read preference (docs/scaling.md
    suggests secondaryPreferred for the API's reads): a secondary behind by a group would miss an id or a
    session end this gateway has just written."""
    return collection.with_options(read_preference=ReadPreference.PRIMARY)


def _first_per_key(collection: str, docs: Sequence[Mapping[str, Any]]) -> list[Document]:
    [key] = PRIMARY_KEYS[collection]
    chosen: dict[Any, Document] = {}
    for doc in docs:
        chosen.setdefault(doc[key], to_mongo(collection, doc))
    return list(chosen.values())


async def _insert_new(db: Any, collection: str, docs: Sequence[Mapping[str, Any]]) -> set[Any]:
    """Insert what is not stored yet; the keys that were inserted."""
    batch = _first_per_key(collection, docs)
    if not batch:
        return set()
    [key] = PRIMARY_KEYS[collection]
    refused = await insert_unordered(_journaled(db[collection]), collection, batch)
    return {doc[key] for i, doc in enumerate(batch) if i not in refused}


async def _stored_ends(db: Any, deltas: list[SessionDelta]) -> dict[str, Any]:
    """The stored end of the sessions that get new visits (one indexed read; absent: not stored)."""
    ids = [d.session_id for d in deltas if d.pages]
    if not ids:
        return {}
    found = _primary(db[USER_SESSIONS]).find(
        {"session_id": {"$in": ids}}, {"_id": 0, "session_id": 1, "end_time": 1}
    )
    return {doc["session_id"]: doc.get("end_time") for doc in await found.to_list(None)}


async def _rebuild_pages(db: Any, session_ids: list[str]) -> list[UpdateOne]:
    """``pages_visited`` of sessions a late visit reordered, from their stored visits (new ones included)."""
    found = _primary(db[PAGE_VISITS]).find(
        {"session_id": {"$in": session_ids}},
        {"_id": 0, "session_id": 1, "page_type": 1, "timestamp": 1, "event_id": 1},
    )
    visits: dict[str, list[Document]] = {sid: [] for sid in session_ids}
    for doc in await found.to_list(None):
        visits[doc["session_id"]].append(doc)
    return [
        UpdateOne({"session_id": sid}, {"$set": {"pages_visited": pages_in_order(docs)}})
        for sid, docs in visits.items()
    ]


def _last_microsecond(end: datetime | None) -> datetime | None:
    return None if end is None else end + timedelta(microseconds=999)


def _extend(delta: SessionDelta, append: bool) -> UpdateOne:
    update: dict[str, Any] = {
        "$setOnInsert": {"user_id": delta.user_id, "device": delta.device},
        "$min": {"start_time": delta.start_time},
        "$max": {"end_time": delta.end_time},
        "$push": {"pages_visited": {"$each": delta.pages if append else []}},
        "$inc": {"total_interactions": delta.interactions, "conversion_value": delta.conversion_value},
    }
    if delta.converted:
        update["$set"] = {"converted": True}
    else:
        update["$setOnInsert"]["converted"] = False
    return UpdateOne({"session_id": delta.session_id}, update, upsert=True)


async def _stored_in(db: Any, collection: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` ``collection`` holds (one read of its unique ``event_id`` index)."""
    if not ids:
        return set()
    found = _primary(db[collection]).find({"event_id": {"$in": ids}}, {"_id": 0, "event_id": 1})
    return {doc["event_id"] for doc in await found.to_list(None)}


async def _one_per_id(db: Any, batch: EventBatch) -> tuple[list[Document], list[Document]]:
    """The visits and interactions whose id the *other* collection does not hold, nor (for an
    interaction) a visit of the batch: an id is one event whatever its type. Each collection's own
    unique index catches the rest."""
    visit_ids = list(dict.fromkeys(d["event_id"] for d in batch.visits))
    interaction_ids = list(dict.fromkeys(d["event_id"] for d in batch.interactions))
    as_interactions, as_visits = await asyncio.gather(
        _stored_in(db, USER_INTERACTIONS, visit_ids), _stored_in(db, PAGE_VISITS, interaction_ids)
    )
    taken = as_visits | set(visit_ids)
    visits = [d for d in batch.visits if d["event_id"] not in as_interactions]
    return visits, [d for d in batch.interactions if d["event_id"] not in taken]


async def _none_stored(
    db: Any, batch: EventBatch, withheld: Sequence[str] = ()
) -> tuple[list[Document], list[Document]]:
    """For ``refuse_stored``: raise StoredEvents if either collection holds an id of the batch or of
    ``withheld`` (the same two indexed reads as :func:`_one_per_id`, each of every id); else the visits,
    and the interactions whose id no visit of the batch has."""
    ids = list(dict.fromkeys([*[d["event_id"] for d in (*batch.visits, *batch.interactions)], *withheld]))
    as_visits, as_interactions = await asyncio.gather(
        _stored_in(db, PAGE_VISITS, ids), _stored_in(db, USER_INTERACTIONS, ids)
    )
    if as_visits or as_interactions:
        raise StoredEvents(as_visits | as_interactions)
    visited = {d["event_id"] for d in batch.visits}
    return list(batch.visits), [d for d in batch.interactions if d["event_id"] not in visited]


async def record(
    db: Any, batch: EventBatch, refuse_stored: bool = False, withheld: Sequence[str] = ()
) -> list[str]:
    new: set[str] = set()
    if refuse_stored:
        visits, interactions = await _none_stored(db, batch, withheld)
    else:
        visits, interactions = await _one_per_id(db, batch)
    for collection, docs in ((PAGE_VISITS, visits), (USER_INTERACTIONS, interactions)):
        new |= await _insert_new(db, collection, docs)
    await _insert_new(db, USERS, users_with_new_events(batch, new))
    deltas = session_deltas(batch, new)
    ends = await _stored_ends(db, deltas)
    # MongoDB keeps milliseconds: a new visit within the stored end's millisecond would be stored at
    # the same time as a stored visit, and equal times order by eventId -- so only later ones append.
    late = [
        d.session_id
        for d in deltas
        if d.session_id in ends and not d.appends_after(_last_microsecond(ends[d.session_id]))
    ]
    ops = [_extend(delta, delta.session_id not in late) for delta in deltas]
    for step in (ops, await _rebuild_pages(db, late) if late else []):
        if not step:
            continue
        try:
            await _journaled(db[USER_SESSIONS]).bulk_write(step, ordered=False)
        except BulkWriteError as exc:
            raise StoreUnavailable(f"MongoDB failed to extend sessions: {exc.details}") from exc
    return new_event_ids(batch, new)
