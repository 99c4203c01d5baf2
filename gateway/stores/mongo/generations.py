"""Generations on MongoDB: each dataset in collections suffixed ``__g{n}``, the served one named by a
single document (the contract: ``gateway/stores/datasets.py``; the ops research, Q3).

* ``funnelgate_meta`` holds ``{_id: "active", generation, dataset, switched_at}`` (and, once the served
  default funnel was changed, ``default_pins``, ``default_salt``: ``served.py``); a switch is ONE
  ``update_one`` of it, atomic on any deployment (no ``renameCollection``, which a transaction refuses and
  which takes a database lock per collection). Generation 0 is the unsuffixed collections: a database
  written before generations existed is served as it is until its first build.
* Every access of :class:`~gateway.stores.mongo.store.MongoStore` goes through
  :class:`GenerationDatabase`, which maps a design collection name to the served generation's (and
  rewrites the names inside pipelines: ``$lookup``, ``$unionWith``). A serving process re-reads the
  active document every ``FOLLOW_INTERVAL_S`` (:meth:`MongoStore.follow`); the generation only moves
  forward, and cache keys are scoped by it.
* A build writes generation ``n+1`` without secondary indexes, builds them at ``seal``, switches, then
  (``retire``) waits for the other gateways to notice, folds the live events they wrote into the old
  generation meanwhile into the new one (idempotent by ``event_id``) and drops the old collections.
* One build at a time: ``{_id: "build", pid, host, heartbeat_at}`` is a lease; a lease whose process is
  gone (same host) or whose heartbeat is older than ``LEASE_S`` is taken over. At the start of a build,
  collections of a generation above the active one (a killed build) are dropped, and those below it (a
  retire that was killed, or late writes after a drop recreated a collection) have their live events
  folded into the active generation, then are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError, OperationFailure

from gateway.errors import BadInput, StoreUnavailable
from gateway.models import Document
from gateway.stores.collections import (
    COLLECTIONS,
    INGEST_ID_PREFIXES,
    PAGE_VISITS,
    USER_INTERACTIONS,
    USER_SESSIONS,
    USERS,
)
from gateway.stores.datasets import CarriedOver, fold_live_events, new_dataset_id
from gateway.stores.mongo.driver import operation

if TYPE_CHECKING:
    from gateway.stores.mongo.store import MongoStore

log = logging.getLogger("funnelgate.ingest")

META = "funnelgate_meta"
ACTIVE = "active"
BUILD = "build"
# Of the active document: the served generation's default funnel pinned how many times, and a random
# salt (``datasets.next_revision``'s form, ``{pins}-{salt}``: a wiped database never reuses a revision).
PINS, SALT = "default_pins", "default_salt"
FOLLOW_INTERVAL_S = 1.0
LEASE_S = 120.0
HEARTBEAT_S = 5.0
READ_BATCH = 5_000
_SUFFIXED = re.compile(r"^(?P<name>[a-z_]+)__g(?P<generation>\d+)$")


def collection_name(collection: str, generation: int) -> str:
    return collection if generation == 0 else f"{collection}__g{generation}"


def _map_stages(stages: Any, names: dict[str, str]) -> Any:
    if isinstance(stages, list):
        return [_map_stages(stage, names) for stage in stages]
    if not isinstance(stages, dict):
        return stages
    out = {}
    for key, value in stages.items():
        if key == "$lookup" and isinstance(value, dict):
            value = {**value, "from": names.get(str(value.get("from")), value.get("from"))}
            if "pipeline" in value:
                value["pipeline"] = _map_stages(value["pipeline"], names)
        elif key == "$unionWith":
            if isinstance(value, str):
                value = names.get(value, value)
            else:
                value = {**value, "coll": names.get(str(value.get("coll")), value.get("coll"))}
                if "pipeline" in value:
                    value["pipeline"] = _map_stages(value["pipeline"], names)
        elif key == "$facet" and isinstance(value, dict):
            value = {facet: _map_stages(sub, names) for facet, sub in value.items()}
        out[key] = value
    return out


class GenerationDatabase:
    """An AsyncDatabase (or a stand-in) whose design collections are one generation's."""

    def __init__(self, database: Any, generation: int = 0, dataset: str = "") -> None:
        self.raw = database
        self.generation = generation
        self.dataset = dataset
        self.revision = ""  # of the default funnel pinned in this generation (stores/datasets.py)
        # False while the active generation has never been read (a gateway started with MongoDB down):
        # the design collections are refused rather than read as generation 0, which is not the data.
        self.known = True

    def __getitem__(self, name: str) -> Any:
        if name in COLLECTIONS and not self.known:
            raise StoreUnavailable(
                "MongoDB has not been reachable since the gateway started: the served generation is not "
                "known yet"
            )
        return self.raw[collection_name(name, self.generation) if name in COLLECTIONS else name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def pipeline(self, stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``stages`` with the design collections they name mapped to this generation's."""
        if self.generation == 0:
            return stages
        names = {c: collection_name(c, self.generation) for c in COLLECTIONS}
        return list(_map_stages(stages, names))


async def read_active(database: Any) -> tuple[int, str, str]:
    """The served generation, its dataset id and its default funnel's revision ("" never pinned)."""
    with operation("read the active generation"):
        doc = await database[META].find_one({"_id": ACTIVE})
    if not doc:
        return 0, "", ""
    return int(doc.get("generation", 0)), str(doc.get("dataset", "")), revision_of(doc)


def revision_of(active: dict[str, Any]) -> str:
    """The served default funnel's revision in the active document ("" never pinned)."""
    return f"{int(active[PINS])}-{active.get(SALT, '')}" if active.get(PINS) else ""


async def generations_present(database: Any) -> set[int]:
    """Every generation with at least one collection (0: the unsuffixed ones)."""
    with operation("list collections"):
        names = await database.list_collection_names()
    found = set()
    for name in names:
        match = _SUFFIXED.match(name)
        if match and match["name"] in COLLECTIONS:
            found.add(int(match["generation"]))
        elif name in COLLECTIONS:
            found.add(0)
    return found


async def drop_generation(database: Any, generation: int) -> None:
    with operation(f"drop generation {generation}", default_s=None):
        for collection in COLLECTIONS:
            await database[collection_name(collection, generation)].drop()


def _live_event_query(collection: str) -> dict[str, Any]:
    """Events whose id does not begin with ingest's prefix: two ranges of the unique event_id index."""
    prefix = INGEST_ID_PREFIXES[collection]
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return {"$or": [{"event_id": {"$lt": prefix}}, {"event_id": {"$gte": after}}]}


async def live_events(
    store: MongoStore, users: Collection[int] | None = None
) -> tuple[list[Document], list[Document]]:
    """The live visits and interactions of ``store``'s generation (of ``users`` only, when given)."""
    out = []
    for collection in (PAGE_VISITS, USER_INTERACTIONS):
        docs = await store.find_documents(collection, _live_event_query(collection))
        out.append(docs if users is None else [d for d in docs if d["user_id"] in users])
    return out[0], out[1]


class MongoBuild:
    def __init__(self, store: MongoStore, active: int, generation: int) -> None:
        self._store = store
        self._database = store.raw_database
        self.active = active
        self.generation = generation
        self.dataset = new_dataset_id(generation)
        self.new = store.pinned(generation, self.dataset)
        self._old = store.pinned(active, store.dataset)
        self._live_visits: list[Document] = []
        self._live_interactions: list[Document] = []
        self._beat = time.monotonic()
        self._activated = False
        self._done = False

    @classmethod
    async def begin(cls, store: MongoStore) -> MongoBuild:
        database = store.raw_database
        await store.refresh_generation()
        active = store.generation
        await _take_lease(database)
        try:
            present = await generations_present(database)
            for generation in sorted(present):
                if generation > active:
                    log.warning("dropping generation %d, left by a killed build", generation)
                    await drop_generation(database, generation)
                elif generation < active:
                    await _fold_and_drop(store, generation)
            generation = max(active, *present, 0) + 1
            with operation("record the build", default_s=None):
                await database[META].update_one({"_id": BUILD}, {"$set": {"generation": generation}})
        except BaseException:
            await _release_lease(database)
            raise
        return cls(store, active, generation)

    async def _heartbeat(self) -> None:
        if time.monotonic() - self._beat < HEARTBEAT_S:
            return
        self._beat = time.monotonic()
        with operation("renew the build lease", default_s=None):
            await self._database[META].update_one(
                {"_id": BUILD}, {"$set": {"heartbeat_at": datetime.now(UTC).replace(tzinfo=None)}}
            )

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        await self._heartbeat()
        return (await self.new.insert_many(collection, documents)).written

    async def carry_over(self, named: Collection[int]) -> CarriedOver:
        named = set(named)
        out = CarriedOver()
        after: int | None = None
        while True:
            page = await self._old.user_ids_after(after, READ_BATCH)
            if not page:
                break
            after = page[-1]
            absent = [uid for uid in page if uid not in named]
            if absent:
                await self._carry_users(absent, out)
            await self._heartbeat()
        self._live_visits, self._live_interactions = await live_events(self._old, named)
        out.live_events = len(self._live_visits) + len(self._live_interactions)
        out.days |= {v["timestamp"].date() for v in self._live_visits}
        return out

    async def _carry_users(self, user_ids: list[int], out: CarriedOver) -> None:
        old, new = self._old, self.new
        users = [d for d in await old.users_by_ids(user_ids) if d is not None]
        sessions = [s for per in await old.sessions_by_user_ids(user_ids) for s in per]
        visits = [v for per in await old.visits_by_user_ids(user_ids) for v in per]
        interactions = await old.find_documents(USER_INTERACTIONS, {"user_id": {"$in": user_ids}})
        for collection, docs in (
            (USERS, users),
            (USER_SESSIONS, sessions),
            (PAGE_VISITS, visits),
            (USER_INTERACTIONS, interactions),
        ):
            if docs:
                await new.insert_many(collection, docs)
        out.users += len(users)
        out.sessions += len(sessions)
        out.visits += len(visits)
        out.interactions += len(interactions)
        out.days |= {v["timestamp"].date() for v in visits if v.get("timestamp") is not None}

    async def seal(self) -> MongoStore:
        try:
            await self.new.ensure_indexes()
        except (BadInput, StoreUnavailable) as exc:
            raise BadInput(f"the new data could not be indexed (a repeated key?): {exc}") from exc
        visits, interactions = self._live_visits, self._live_interactions
        self._live_visits, self._live_interactions = [], []
        if visits or interactions:
            await fold_live_events(self.new, visits, interactions)
        return self.new

    async def activate(self) -> None:
        with operation("switch the active generation", default_s=None):
            await self._database[META].update_one(
                {"_id": ACTIVE},
                {
                    "$set": {
                        "generation": self.generation,
                        "dataset": self.dataset,
                        "switched_at": datetime.now(UTC).replace(tzinfo=None),
                    },
                    "$unset": {PINS: "", SALT: ""},  # the new generation has its own default
                },
                upsert=True,
            )
        self._activated = True
        self._store.set_generation(self.generation, self.dataset)
        log.info("dataset %s (generation %d) is now served", self.dataset, self.generation)

    async def retire(self, grace_s: float) -> int:
        """Fold the old generation's late live events into the new one, drop it, release the lease."""
        try:
            if grace_s > 0:
                await asyncio.sleep(grace_s)
            return await _fold_and_drop(self._store, self.active)
        finally:
            self._done = True
            await _release_lease(self._database)

    async def abandon(self) -> None:
        if self._activated or self._done:
            return
        self._done = True
        try:
            with contextlib.suppress(StoreUnavailable):
                await drop_generation(self._database, self.generation)
        finally:
            await _release_lease(self._database)


async def _fold_and_drop(store: MongoStore, generation: int) -> int:
    """Fold the live events (and the users capture created) of an older ``generation`` into the served
    one, then drop it."""
    old = store.pinned(generation, "")
    served = store.pinned(store.generation, store.dataset)
    visits, interactions = await live_events(old)
    folded = 0
    if visits or interactions:
        ids = sorted({int(e["user_id"]) for e in (*visits, *interactions)})
        users = [d for d in await old.users_by_ids(ids) if d is not None]
        folded = await fold_live_events(served, visits, interactions, users)
        if folded:
            log.info(
                "folded %d live events of generation %d into generation %d",
                folded,
                generation,
                store.generation,
            )
    await drop_generation(store.raw_database, generation)
    return folded


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _lease_is_stale(lease: dict[str, Any]) -> bool:
    beat = lease.get("heartbeat_at")
    if isinstance(beat, datetime):
        age = (datetime.now(UTC).replace(tzinfo=None) - beat.replace(tzinfo=None)).total_seconds()
        if age > LEASE_S:
            return True
    if lease.get("host") == socket.gethostname():
        try:
            os.kill(int(lease.get("pid", -1)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
    return False


async def _take_lease(database: Any) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    lease = {"_id": BUILD, **_this_process(), "started_at": now, "heartbeat_at": now}
    with operation("take the build lease", default_s=None):
        try:
            await database[META].insert_one(lease)
            return
        except DuplicateKeyError:
            held = await database[META].find_one({"_id": BUILD}) or {}
        if not _lease_is_stale(held):
            raise StoreUnavailable(
                f"another ingest or restore is building generation {held.get('generation', '?')} "
                f"(pid {held.get('pid')} on {held.get('host')}); try again when it has finished"
            )
        log.warning("taking over the build lease of pid %s on %s (gone)", held.get("pid"), held.get("host"))
        replaced = await database[META].replace_one(
            {"_id": BUILD, "heartbeat_at": held.get("heartbeat_at")}, lease
        )
        if replaced.matched_count != 1:
            raise StoreUnavailable("another build took the lease at the same moment; try again")


async def _release_lease(database: Any) -> None:
    with (
        contextlib.suppress(StoreUnavailable, OperationFailure),
        operation("release the build lease", default_s=None),
    ):
        await database[META].delete_one({"_id": BUILD, "pid": os.getpid()})
