"""The generation a MongoStore serves (``generations.py``, the contract in ``stores/datasets.py``): which
one, following a switch made by an ingest elsewhere, stores pinned to one generation (a build, a backup),
and the whole-dataset reads a build and a backup need. A mixin of :class:`MongoStore`, which owns
``_db`` (a :class:`~gateway.stores.mongo.generations.GenerationDatabase`), ``_pinned`` and ``_follower``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gateway import background
from gateway.errors import BadInput, QueryTimeout, StoreUnavailable
from gateway.models import Document
from gateway.stores.collections import (
    COLLECTIONS,
    DEFAULT_FUNNEL,
    FUNNEL_ANALYTICS,
    FUNNEL_DEFINITIONS,
    PRIMARY_KEYS,
    USERS,
)
from gateway.stores.datasets import Sink, revision_number
from gateway.stores.mongo import generations, writes
from gateway.stores.mongo.documents import from_mongo
from gateway.stores.mongo.driver import operation
from gateway.validation import check_default_funnel

if TYPE_CHECKING:
    from gateway.stores.mongo.store import MongoStore

log = logging.getLogger("funnelgate.mongo")
NO_ID = {"_id": 0}


def _check(collection: str) -> None:
    if collection not in COLLECTIONS:
        raise BadInput(f"unknown collection {collection!r}")


class ServedGeneration:
    _db: generations.GenerationDatabase
    _pinned: bool
    _follower: asyncio.Task[None] | None = None  # set by follow()

    @classmethod
    def _new(cls, database: Any, client: Any, *, generation: int) -> MongoStore:
        return cls(database, client, generation=generation)  # type: ignore[call-arg,return-value]

    async def _stop_following(self) -> None:
        if self._follower is not None:
            # Bounded, and cancelled again while it waits: the driver can lose a cancellation
            # (gateway/background.py), and close -- and SIGTERM -- must not wait for the follower.
            await background.stop(self._follower, "the generation follower")

    # -- generations (stores/datasets.py; the steps are in generations.py) ---------------------------
    @property
    def raw_database(self) -> Any:
        return self._db.raw

    @property
    def generation(self) -> int:
        return int(self._db.generation)

    @property
    def dataset(self) -> str:
        return str(self._db.dataset)

    @property
    def default_revision(self) -> str:
        return str(self._db.revision)

    def pinned(self, generation: int, dataset: str) -> MongoStore:
        """A store over one generation, sharing this store's client (closing it closes nothing)."""
        store = self._new(self._db.raw, None, generation=generation)
        store._db.dataset = dataset
        return store

    def set_generation(self, generation: int, dataset: str, revision: str = "") -> None:
        if self._pinned:
            return  # a pinned store never moves
        if not self._db.known:
            self._db.known = True
            log.info("MongoDB is reachable: serving dataset %s (generation %d)", dataset or "-", generation)
        elif generation < self._db.generation:
            return  # the served generation only moves forward
        elif generation != self._db.generation:
            log.info("now serving dataset %s (generation %d)", dataset, generation)
        elif revision_number(revision) < revision_number(self._db.revision):
            return  # so does its default's revision (a read issued before a pin may end after it)
        elif revision != self._db.revision:
            log.info("the default funnel of dataset %s changed (revision %s)", dataset or "-", revision)
        self._db.generation, self._db.dataset, self._db.revision = generation, dataset, revision

    def generation_unknown(self) -> None:
        """The active generation could not be read (MongoDB down at start): refuse the design collections
        until a read succeeds (the follower's, or a health probe's: see ``ping``)."""
        if not self._pinned:
            self._db.known = False

    @property
    def generation_known(self) -> bool:
        return bool(self._db.known)

    async def refresh_generation(self) -> None:
        """Read the active-generation document now."""
        if not self._pinned:
            self.set_generation(*await generations.read_active(self._db.raw))

    def follow(self, interval_s: float = generations.FOLLOW_INTERVAL_S) -> None:
        """Re-read the active generation every ``interval_s`` in the background, until close (serving
        processes: an ingest elsewhere switches generations)."""
        if self._follower is None and not self._pinned:
            self._follower = asyncio.get_running_loop().create_task(
                self._follow(interval_s), name="funnelgate-generation-follower"
            )

    async def _follow(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh_generation()
            except (StoreUnavailable, QueryTimeout) as exc:
                log.debug("cannot read the active generation: %s", exc)
            if background.stop_requested():  # cancelled, though the read ended as if it were not
                return

    async def pin_default_funnel(self, steps: Sequence[str] | None) -> str:
        """The contract's (``contracts.py``): the steps and the rows in the served generation's
        collections, then its revision in the active document (one findAndModify, only while that
        generation is the active one: a counter that orders revisions, and a random salt), which every
        follower reads within a second -- the revision also when a write before it failed."""
        if steps is not None:
            check_default_funnel(steps)
        if self._pinned:
            raise BadInput("a store pinned to one generation does not change the served default")
        await self.refresh_generation()
        generation, dataset = self.generation, self.dataset
        served = self.pinned(generation, dataset)._db
        try:
            with operation("pin the default funnel", default_s=None):
                if steps is None:
                    await served[FUNNEL_DEFINITIONS].delete_many({"name": DEFAULT_FUNNEL})
                else:
                    await writes.upsert_many(
                        served, FUNNEL_DEFINITIONS, [{"name": DEFAULT_FUNNEL, "steps": list(steps)}]
                    )
                await served[FUNNEL_ANALYTICS].delete_many({})
        finally:
            # Three writes, not one transaction: whatever a failed or interrupted pin changed is served
            # under a new revision, never under the old one's cached answers. Its error is still the
            # caller's (a retry pins again).
            revision = await self._next_revision(generation)
            self.set_generation(generation, dataset, revision)
        return revision

    async def _next_revision(self, generation: int) -> str:
        """A new revision of ``generation``'s default in the active document, while it is the active one."""
        with operation("pin the default funnel", default_s=None):
            try:  # ONE findAndModify; absent: generation 0, never switched (upserted)
                doc = await self._db.raw[generations.META].find_one_and_update(
                    {"_id": generations.ACTIVE, "generation": generation},
                    {"$inc": {generations.PINS: 1}, "$set": {generations.SALT: secrets.token_hex(3)}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError as exc:  # another generation is active: an ingest switched
                raise StoreUnavailable(
                    "an ingest switched the served dataset while the default funnel was being changed: "
                    "the new dataset has the ingest's default; change it again if you need to"
                ) from exc
        return generations.revision_of(doc)

    async def begin_build(self) -> generations.MongoBuild:
        return await generations.MongoBuild.begin(self)  # type: ignore[arg-type]  # the mixin of MongoStore

    async def export(self, sinks: dict[str, Sink], batch: int = 10_000) -> dict[str, int]:
        """Each collection of the served generation in key order (one generation: an ingest cannot mix
        in; live events arriving meanwhile may be in one collection's read and not another's)."""
        counts: dict[str, int] = {}
        database = self.pinned(self.generation, self.dataset)._db
        for collection, sink in sinks.items():
            _check(collection)
            order = [(key, ASCENDING) for key in PRIMARY_KEYS[collection]]
            counts[collection] = 0
            with operation(f"export {collection}", default_s=None):
                cursor = database[collection].find({}, NO_ID, batch_size=batch).sort(order)
                chunk: list[Document] = []
                async for doc in cursor:
                    chunk.append(from_mongo(collection, doc))
                    if len(chunk) >= batch:
                        sink(chunk)
                        counts[collection] += len(chunk)
                        chunk = []
                if chunk:
                    sink(chunk)
                    counts[collection] += len(chunk)
        return counts

    async def user_ids_after(self, after: int | None, limit: int) -> list[int]:
        """Up to ``limit`` user ids above ``after``, ascending (a walk over every user)."""
        query = {} if after is None else {"user_id": {"$gt": after}}
        with operation("list user ids") as max_ms:
            cursor = self._db[USERS].find(query, {"_id": 0, "user_id": 1}, max_time_ms=max_ms)
            docs = await cursor.sort("user_id", ASCENDING).limit(limit).to_list(None)
        return [int(doc["user_id"]) for doc in docs]

    async def find_documents(self, collection: str, query: Mapping[str, Any]) -> list[Document]:
        """The documents of ``collection`` matching ``query`` (a filter the caller knows is indexed)."""
        _check(collection)
        order = [(key, ASCENDING) for key in PRIMARY_KEYS[collection]]
        with operation(f"find in {collection}") as max_ms:
            docs = await self._db[collection].find(query, NO_ID, max_time_ms=max_ms).sort(order).to_list(None)
        return [from_mongo(collection, doc) for doc in docs]
