"""Whole datasets: built aside and switched in one step (ingest, restore), and read whole (backup).

The contract beside ``contracts.py`` for the jobs that replace or copy everything. Both document stores
implement it; the docstrings are the contract.

A **generation** is one complete dataset: the six collections, the default funnel and the
``funnel_analytics`` rows computed from exactly that data. Readers see one generation at a time. A build
writes the next generation where no reader looks (DuckDB: a file beside the live one; MongoDB:
collections suffixed ``__g{n}``), and ``activate`` makes it the one served in a single step (DuckDB:
``os.replace`` of the file; MongoDB: one update of the active-generation document). A build killed at
any moment before that step leaves the previous generation served and untouched; its leftovers are
removed by the next build (and, on DuckDB, when the store opens under the data-dir lock).

Every generation has a ``dataset`` id (its number and a random suffix). Cached answers are stored under
keys scoped by it (``gateway/cache/scoped.py``), so no answer computed from one generation is ever read
while another is served, on any gateway process. The default funnel is the one part of a generation an
admin may change while it is served (``setDefaultFunnel``: ``pin_default_funnel``): each change gives the
generation a new ``default_revision``, carried with the served generation (DuckDB: ``funnelgate_meta`` of
its file; MongoDB: the active-generation document, which every gateway re-reads every second), and the
scope of cached answers is the dataset id and that revision (:func:`cache_scope`).

What a re-ingest keeps (``carry_over``): the CSVs are the source of truth for the users they name, whose
ingested history is replaced by the new one; everything else already stored survives it. That is
(1) every user the new CSVs do not name, with all of their history, copied as stored, and (2) every
*live* event (captured by ``POST /events``/``trackEvents``, i.e. an ``event_id`` that ingest did not
write: ``collections.INGEST_ID_PREFIXES``) of the users they do name, folded into their sessions of the
new generation exactly as ``record_events`` folds a new event. Live events recorded into the old
generation while the build runs (a MongoDB ingest may run beside serving gateways) are folded in again
after the switch (``retire``), idempotently by ``event_id``, before the old generation is dropped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable

from gateway.models import Document, EventBatch
from gateway.stores.contracts import DocumentStore

FOLD_BATCH = 5_000  # live events per record_events call while folding them into a new generation
Sink = Callable[[list[Document]], None]  # receives a collection's documents, a batch at a time, in key order


def new_dataset_id(generation: int) -> str:
    """``7.a1b2c3``: the generation's number and a random part (a data directory wiped and ingested again
    must not reuse the id of cached answers in a shared Redis)."""
    return f"{generation}.{secrets.token_hex(3)}"


def next_revision(previous: str) -> str:
    """The revision of a default funnel pinned after ``previous`` ("" when never pinned): ``{n}-{random}``,
    ``n`` one more than the previous one's (so a follower can tell newer from older), the random part so a
    store wiped and pinned again never reuses the id of cached answers in a shared Redis."""
    return f"{revision_number(previous) + 1}-{secrets.token_hex(3)}"


def revision_number(revision: str) -> int:
    head = revision.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def default_revision(store: object) -> str:
    """The revision of the served default funnel: "" until one was pinned (``pin_default_funnel``)."""
    return str(getattr(store, "default_revision", "") or "")


def cache_scope(store: object) -> str:
    """The id cached answers are scoped by (``gateway/cache/scoped.py``): the served generation's dataset
    id, and the revision of its default funnel once one was pinned (``pin_default_funnel``), so that
    every answer computed before a default changed sits under keys no reader asks for again."""
    dataset = str(getattr(store, "dataset", "") or "")
    revision = default_revision(store)
    return f"{dataset}~{revision}" if revision else dataset


def generation_of(dataset: str) -> int:
    head = dataset.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


@dataclass
class CarriedOver:
    """What ``carry_over`` copied from the served generation into the new one."""

    users: int = 0  # users the new data does not name, copied with their history
    sessions: int = 0
    visits: int = 0
    interactions: int = 0
    live_events: int = 0  # live events of named users, folded into the new generation at ``seal``
    days: set[date] = field(default_factory=set)  # days of the carried visits: their rows are recomputed

    def __str__(self) -> str:
        return (
            f"{self.users} users absent from the new data ({self.sessions} sessions, {self.visits} visits, "
            f"{self.interactions} interactions) and {self.live_events} live events"
        )


@runtime_checkable
class DatasetBuild(Protocol):
    """One generation being built. Call order: ``write``... [``carry_over``] ``seal`` ... ``activate``
    ``retire``; ``abandon`` on any failure before ``activate``."""

    generation: int
    dataset: str  # the id of the generation being built

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        """Append documents (bulk: no index is maintained until ``seal``). Keys must be unique within the
        build; a repeated key makes ``seal`` fail. Returns documents written."""

    async def carry_over(self, named: Collection[int]) -> CarriedOver:
        """Before ``seal``: copy what a re-ingest keeps (module docstring) from the served generation;
        ``named`` are the users of the new data."""

    async def seal(self) -> DocumentStore:
        """Build every index (a repeated key fails here: nothing is switched), fold the carried live
        events in, and return a DocumentStore over the new generation for the rest of the build
        (default funnel, funnel_analytics). No reader sees it yet."""

    async def activate(self) -> None:
        """Switch in one step: from now on the new generation is the one served."""

    async def retire(self, grace_s: float) -> int:
        """After ``activate``: wait ``grace_s`` (other processes notice the switch and finish what they
        started on the old generation), fold the live events written to the old generation meanwhile into
        the new one, then drop the old generation. Returns the live events folded."""

    async def abandon(self) -> None:
        """Drop everything built; the served generation is untouched. Idempotent."""


@runtime_checkable
class Generational(Protocol):
    """A document store that serves one generation at a time (both adapters)."""

    @property
    def dataset(self) -> str:
        """The id of the generation served now ("" before the first build)."""

    async def begin_build(self) -> DatasetBuild:
        """Start building the next generation (removing a killed build's leftovers first)."""

    async def export(self, sinks: dict[str, Sink], batch: int = 10_000) -> dict[str, int]:
        """Read every document of the given collections, in primary-key order, into their sinks, from one
        consistent view where the backend offers one (DuckDB: one transaction; MongoDB: one generation,
        with a snapshot session where the deployment supports it). Returns the count per collection."""


async def fold_live_events(
    store: DocumentStore,
    visits: list[Document],
    interactions: list[Document],
    users: Sequence[Document] = (),
) -> int:
    """Record carried live events into ``store`` (any DocumentStore) as ``record_events`` does: inserted
    by ``event_id`` (already stored: skipped) and folded into their sessions, which are created from a
    seed carrying the user's device in the new data (the device invariant). ``users``: documents to
    create first where absent (users that live capture created). Returns events inserted."""
    if users:
        await store.insert_many("users", list(users))
    user_ids = sorted({int(e["user_id"]) for e in (*visits, *interactions)})
    device_of: dict[int, Any] = {}
    for start in range(0, len(user_ids), FOLD_BATCH):
        chunk = user_ids[start : start + FOLD_BATCH]
        for uid, doc in zip(chunk, await store.users_by_ids(chunk), strict=True):
            device_of[uid] = None if doc is None else doc.get("device")
    events = sorted(
        [(v["timestamp"], v["event_id"], "v", v) for v in visits]
        + [(i["timestamp"], i["event_id"], "i", i) for i in interactions],
        key=lambda e: (e[0], e[1]),
    )
    inserted = 0
    for start in range(0, len(events), FOLD_BATCH):
        visits_in: list[Document] = []
        interactions_in: list[Document] = []
        seeds: dict[str, Document] = {}
        for _, _, kind, original in events[start : start + FOLD_BATCH]:
            doc = dict(original)
            device = device_of.get(int(doc["user_id"]))
            if kind == "v":
                doc["device"] = device
                visits_in.append(doc)
            else:
                interactions_in.append(doc)
            seeds.setdefault(
                doc["session_id"],
                {"session_id": doc["session_id"], "user_id": doc["user_id"], "device": device},
            )
        batch = EventBatch(visits=visits_in, interactions=interactions_in, sessions=list(seeds.values()))
        inserted += len(await store.record_events(batch))
    return inserted
