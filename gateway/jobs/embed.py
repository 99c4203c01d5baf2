"""`funnelgate embed`: stream the users from the store, fit the pre-outcome model, build the vector
collections aside and switch to them.

0. The outcome, which the vectors never see (its first visit and all after it are cut), is the last step
   of the default funnel the API answers with (:func:`default_outcome`): the stored one, else the one
   derived from the page views, so a store fed only by live events is embedded too.
1. Read the store a bounded batch of users at a time (keyset over ``list_users``, then each batch's
   documents, visits and interactions: three queries per batch, never one per user); tokenise each batch
   in a worker thread while the next one is read. Memory holds the sparse token rows, not the documents.
2. Fit the model (vocabulary, standardisation, principal directions) in a worker thread; save it as the
   next version.
3. Create ``{name}_v{version}`` for users and pages, insert their vectors (projected a chunk at a time),
   index and load them, then point the aliases at them and drop the older versions. Until the switch,
   search answers from the previous version; an embed killed at any point leaves it serving.
4. Once switched, delete the model files no vector needs (``model.prune_models``): every older model but
   the one(s) the replaced vectors were made by. Nothing is deleted before the switch, so an embed that
   fails or is killed leaves the serving model's files (and its own leftover, which the next one removes).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.analytics import default_funnel
from gateway.config import Settings
from gateway.embedded.datadir_lock import DataDirLock
from gateway.embeddings.events import Outcome, UserEvents
from gateway.embeddings.featurise import Featurised
from gateway.embeddings.model import BehaviourModel, latest_version, prune_models
from gateway.embeddings.pca import MAX_DIM
from gateway.errors import BadInput
from gateway.models import UserFilter
from gateway.services import invalidate_shared_cache, open_services, open_store
from gateway.stores.collections import PAGE_ID_STRIDE, USERS, page_vector_id
from gateway.stores.contracts import DocumentStore, VectorIndex
from gateway.stores.vectors import PAGE_VECTORS, USER_VECTORS, IndexPlan, page_partition, version_of

Progress = Callable[[str, int, int], None]  # (stage, done, total)
READ_CHUNK = 5_000  # users per store call while reading
INSERT_CHUNK = 10_000  # vectors projected and inserted at a time, so memory stays bounded
LIVE_CAPTURE = "POST /events or trackEvents"

log = logging.getLogger(__name__)


def _quiet(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class EmbedReport:
    users: int
    pages: int
    model_version: int
    outcome_step: str
    converted: int
    model: dict[str, Any]  # per kind: dim, features, explained variance (BehaviourModel.summary)
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)  # per kind: name, index, nlist
    dropped: list[str] = field(default_factory=list)
    models_removed: list[int] = field(default_factory=list)  # versions whose files were deleted

    def render(self) -> str:
        lines = [
            f"users: {self.users}",
            f"pages: {self.pages}",
            f"model_version: {self.model_version}",
            f"outcome: {self.outcome_step} (masked, with every later step: vectors describe what came "
            f"before it; {self.converted} user{'' if self.converted == 1 else 's'} reached it)",
        ]
        for kind, built in self.collections.items():
            m = self.model[kind]
            index = built["index_type"] + (f" nlist {built['nlist']}" if built["nlist"] else "")
            lines.append(
                f"{kind}: {m['dim']}-d from {m['features']} features, explained variance "
                f"{m['explained_variance']:.3f} -> {built['name']} ({index})"
            )
        if self.dropped:
            lines.append(f"dropped: {', '.join(self.dropped)}")
        if self.models_removed:
            lines.append(f"models removed: {', '.join(f'v{v:04d}' for v in self.models_removed)}")
        return "\n".join(lines)


async def read_batches(
    store: DocumentStore, size: int = READ_CHUNK
) -> AsyncIterator[tuple[list[UserEvents], int]]:
    """Every user with a document, ``size`` at a time, ids ascending, with their visits and interactions;
    each batch comes with the number of users in all (for progress)."""
    after: int | None = None
    while True:
        page = await store.list_users(UserFilter(), size, after)
        if not page.user_ids:
            return
        ids = page.user_ids
        docs, visits, interactions = await asyncio.gather(
            store.users_by_ids(ids), store.visits_by_user_ids(ids), store.interactions_by_user_ids(ids)
        )
        yield (
            [
                UserEvents(uid, doc or {}, v, i)
                for uid, doc, v, i in zip(ids, docs, visits, interactions, strict=True)
            ],
            page.total,
        )
        if not page.has_next:
            return
        after = ids[-1]


async def featurise(
    store: DocumentStore, outcome: Outcome, progress: Progress = _quiet, size: int = READ_CHUNK
) -> Featurised:
    data = Featurised(outcome)
    pending: asyncio.Future[None] | None = None
    read = 0
    async for batch, total in read_batches(store, size):
        if pending is not None:
            await pending
        # Tokenising runs in a thread while the loop reads the next batch; one batch at a time touches
        # ``data``.
        pending = asyncio.ensure_future(asyncio.to_thread(data.add, batch))
        read += len(batch)
        progress("read", read, total)
    if pending is not None:
        await pending
    return data


async def next_version(vectors: VectorIndex, model_dir: Path) -> int:
    """Past every saved model and every serving collection, so a number is never reused."""
    seen = [await asyncio.to_thread(latest_version, model_dir) or 0]
    for spec in (USER_VECTORS, PAGE_VECTORS):
        serving = await vectors.serving(spec.name)
        seen.append((version_of(spec.name, serving) or 0) if serving else 0)
    return max(seen) + 1


async def served_models(vectors: VectorIndex) -> set[int]:
    """The models the serving vectors were made by: a row's ``metadata.model_version`` (a restore names its
    collections after the next free number, not after the backed-up model whose file it restores), else
    the version in the collection's name. Empty before the first embed."""
    made_by: set[int] = set()
    for spec in (USER_VECTORS, PAGE_VECTORS):
        serving = await vectors.serving(spec.name)
        if serving is None:
            continue
        rows = await vectors.rows_between(serving, -(2**62), 2**62, 1)
        version = (rows[0].get("metadata") or {}).get("model_version") if rows else None
        version = version if version is not None else version_of(spec.name, serving)
        if version is not None:
            made_by.add(int(version))
    return made_by


def _prune(model_dir: Path, keep: set[int], version: int) -> list[int]:
    """:func:`prune_models`, a failure logged, not raised: the embed itself succeeded."""
    try:
        return prune_models(model_dir, keep, version)
    except OSError as exc:
        log.warning("old behaviour models in %s were not all removed: %s", model_dir, exc)
        return []


async def embed_all(
    store: DocumentStore,
    vectors: VectorIndex,
    model_dir: Path,
    progress: Progress | None = None,
) -> EmbedReport:
    report = progress or _quiet
    if not (await store.list_users(UserFilter(), 1, None)).user_ids:
        raise BadInput(_no_users("the document store"))  # before the outcome: the first thing missing
    outcome = await default_outcome(store)
    data = await featurise(store, outcome, report)
    version = await next_version(vectors, model_dir)
    report("fit", 0, 1)
    model = await asyncio.to_thread(BehaviourModel.fit, data, version)
    await asyncio.to_thread(model.save, model_dir)
    report("fit", 1, 1)
    for kind, embedder in (("users", model.users), ("pages", model.pages)):
        if embedder.dim < MAX_DIM:
            log.warning(
                "%s: %d dimensions, not %d: the data has no more directions", kind, embedder.dim, MAX_DIM
            )
    names, plans = await _build(vectors, model, data, report, str(getattr(store, "dataset", "") or ""))
    replaced = await served_models(vectors)  # read before the switch drops their collections
    dropped = []
    for spec in (USER_VECTORS, PAGE_VECTORS):  # the switch: from here on search reads the new vectors
        dropped += await vectors.switch(spec.name, names[spec.name])
    built = {
        kind: {
            "name": names[spec.name],
            "index_type": plans[spec.name].index_type,
            "nlist": plans[spec.name].nlist,
        }
        for kind, spec in (("users", USER_VECTORS), ("pages", PAGE_VECTORS))
    }
    await asyncio.to_thread(replace(model, collections=built).save, model_dir)
    # Kept: the new model, and the replaced one (what a gateway answered from until the switch, and what
    # an operator compares the new one with). Older ones made no vector that is still served.
    removed = await asyncio.to_thread(_prune, model_dir, {version, *replaced}, version)
    log.info(
        "embedded %d users, %d (user, page) rows, model v%d", len(data.user_ids), len(data.page_rows), version
    )
    return EmbedReport(
        users=len(data.user_ids),
        pages=len(data.page_rows),
        model_version=version,
        outcome_step=outcome.step,
        converted=sum(data.converted),
        model=model.summary(),
        collections=built,
        dropped=dropped,
        models_removed=removed,
    )


def _no_users(where: str) -> str:
    return (
        f"nothing to embed: {where} holds no users yet: run `funnelgate ingest`, or send events to the "
        f"gateway ({LIVE_CAPTURE}), first"
    )


def _no_page_views(where: str) -> str:
    return (
        f"nothing to embed: {where} holds no page views yet, so no default funnel (none stored, none to "
        f"derive) gives the outcome step: send page views to the gateway ({LIVE_CAPTURE}), or run "
        "`funnelgate ingest`, first"
    )


async def default_outcome(store: DocumentStore, where: str = "the document store") -> Outcome:
    """The outcome: the last step of the default funnel the API answers with
    (``analytics/default_funnel.resolve``): the stored one (ingest's), else the one derived from the
    stored page views, as a gateway fed only by live events has. Neither (no page view at all), or a
    funnel of one page: a BadInput naming what is missing."""
    default = await default_funnel.resolve(store)
    if default is None:
        raise BadInput(_no_page_views(where))
    if len(default.steps) < 2:
        # One page: visiting it is the outcome, so every user "converted", the vectors would learn
        # nothing from before it, and every look-alike would score 1.0.
        raise BadInput(
            f"nothing to embed: the default funnel of {where} is one page ({default.steps[0]!r}), and its "
            "last step is the outcome: a funnel needs a page before it (send page views of other pages, "
            "or ingest a funnel)"
        )
    return Outcome.of_funnel(default.steps)


async def _build(
    vectors: VectorIndex, model: BehaviourModel, data: Featurised, report: Progress, dataset: str = ""
) -> tuple[dict[str, str], dict[str, IndexPlan]]:
    """Both versions created, filled, indexed and loaded; nothing switched yet. Every row's metadata
    holds the model version and the dataset (the document store's generation) it was embedded from, so
    health can say when a re-ingest has replaced that data since (``services._embeddings``)."""
    users = await vectors.create_version(USER_VECTORS, model.version, model.users.dim)
    pages = await vectors.create_version(PAGE_VECTORS, model.version, model.pages.dim)
    meta: dict[str, Any] = {"model_version": model.version, **({"dataset": dataset} if dataset else {})}
    for start in range(0, len(data.user_ids), INSERT_CHUNK):
        stop = min(start + INSERT_CHUNK, len(data.user_ids))
        chunk = await asyncio.to_thread(model.users.apply, data.users, start, stop)
        rows = [
            {"id": uid, "embedding": vec, "device": dev, "converted": conv, "metadata": meta}
            for uid, dev, conv, vec in zip(
                data.user_ids[start:stop],
                data.devices[start:stop],
                data.converted[start:stop],
                chunk.tolist(),
                strict=True,
            )
        ]
        await vectors.insert(users, rows)
        report("insert users", stop, len(data.user_ids))
    page_index = {p: k for k, p in enumerate(sorted({r.page_type for r in data.page_rows}))}
    for start in range(0, len(data.page_rows), INSERT_CHUNK):
        stop = min(start + INSERT_CHUNK, len(data.page_rows))
        chunk = await asyncio.to_thread(model.pages.apply, data.pages, start, stop)
        per_page: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row, vec in zip(data.page_rows[start:stop], chunk.tolist(), strict=True):
            if page_index[row.page_type] >= PAGE_ID_STRIDE:
                continue  # the id scheme has room for PAGE_ID_STRIDE page types (warned below)
            per_page[row.page_type].append(
                {
                    "id": page_vector_id(row.user_id, page_index[row.page_type]),
                    "embedding": vec,
                    "user_id": row.user_id,
                    "page_type": row.page_type,
                    "device": row.device,
                    "metadata": {
                        **meta,
                        "visits": row.visits,
                        "interaction_count": row.interactions,
                        "seconds": round(row.seconds, 3),
                        # log1p(interactions) + log1p(minutes): grows with both, sub-linearly.
                        "engagement_score": round(
                            math.log1p(row.interactions) + math.log1p(row.seconds / 60), 4
                        ),
                    },
                }
            )
        for page_type, rows in per_page.items():
            await vectors.insert(pages, rows, partition=page_partition(page_type))
        report("insert pages", stop, len(data.page_rows))
    if len(page_index) > PAGE_ID_STRIDE:
        log.warning("page types past the first %d have no page vectors", PAGE_ID_STRIDE)
    plans = {}
    for done, (spec, name) in enumerate(((USER_VECTORS, users), (PAGE_VECTORS, pages))):
        report("index", done, 2)
        plans[spec.name] = await vectors.build_index(name)
    report("index", 2, 2)
    return {USER_VECTORS.name: users, PAGE_VECTORS.name: pages}, plans


async def run_embed(settings: Settings, progress: Progress | None = None) -> EmbedReport:
    """The command: embed from the configured store into the configured Milvus (Redis is not needed),
    then drop the derived keys of a shared Redis."""
    await _check_something_to_embed(settings)
    async with open_services(settings, need_cache=False) as services:
        result = await embed_all(services.store, services.vectors, settings.model_dir, progress)
    await invalidate_shared_cache(settings)
    return result


async def _check_something_to_embed(settings: Settings) -> None:
    """Said before Milvus Lite is opened, which would leave a new milvus.db behind (and, with no store
    file yet, before the document store is opened, which would leave an empty one): no users, or users
    but no page views (and no stored default funnel), so no outcome step."""
    where = (
        f"the document store in {settings.data_dir}"
        if settings.embedded_document_store
        else f"the MongoDB database {settings.mongo_db}"
    )
    if settings.embedded_document_store and not settings.duckdb_path.exists():
        raise BadInput(_no_users(where))
    if not settings.embedded_vectors:
        return  # a Milvus server: nothing is created here
    async with AsyncExitStack() as stack:
        if settings.uses_data_dir_exclusively:
            stack.enter_context(DataDirLock(settings.data_dir))
        store = await open_store(settings, index=False)
        stack.push_async_callback(store.close)
        refresh = getattr(store, "refresh_generation", None)
        if refresh is not None:
            # MongoDB: a store opens on no generation; the served one is read from funnelgate_meta
            # (open_services does it in ensure_indexes), else this counts an ingest's data as none.
            await refresh()
        if not await store.count(USERS):
            raise BadInput(_no_users(where))
        await default_outcome(store, where)
