"""`funnelgate embed`: featurise every user from the store, fit the model, rebuild both Milvus collections.

Order matters: the model is fitted and saved before anything is dropped, so a failure while reading or
fitting leaves the previous collections serving. Numpy work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gateway.config import Settings
from gateway.embeddings.features import BehaviourData, PageRow, user_metadata
from gateway.embeddings.model import BehaviourModel, by_user, latest_version
from gateway.errors import BadInput
from gateway.models import UserFilter
from gateway.services import invalidate_shared_cache, open_services
from gateway.stores.collections import DIM, PAGE_COLLECTION, PAGE_ID_STRIDE, USER_COLLECTION, page_vector_id
from gateway.stores.contracts import DocumentStore, VectorIndex

Progress = Callable[[str, int, int], None]  # (stage, done, total)
READ_CHUNK = 5_000  # users per store call while reading
INSERT_CHUNK = 10_000  # rows per insert call, so progress moves

log = logging.getLogger(__name__)


def _quiet(stage: str, done: int, total: int) -> None:
    return None


async def collect(store: DocumentStore, progress: Progress = _quiet) -> BehaviourData:
    """Every user, their documents, activity per page and sessions, in a bounded number of store calls."""
    activity = by_user(await store.activity_by_user_page())
    steps = tuple(await store.default_funnel() or ())
    listed: list[int] = []
    after: int | None = None
    while True:
        page = await store.list_users(UserFilter(), READ_CHUNK, after)
        listed += page.user_ids
        if not page.has_next or not page.user_ids:
            break
        after = page.user_ids[-1]
    user_ids = sorted(set(listed) | set(activity))
    users: dict[int, Any] = {}
    sessions: dict[int, list[Any]] = {}
    for start in range(0, len(user_ids), READ_CHUNK):
        chunk = user_ids[start : start + READ_CHUNK]
        docs, per_user = await asyncio.gather(store.users_by_ids(chunk), store.sessions_by_user_ids(chunk))
        for uid, doc, user_sessions in zip(chunk, docs, per_user, strict=True):
            if doc is not None:
                users[uid] = doc
            sessions[uid] = user_sessions
        progress("read", min(start + READ_CHUNK, len(user_ids)), len(user_ids))
    return BehaviourData(user_ids=user_ids, users=users, activity=activity, sessions=sessions, steps=steps)


def _fit_and_rows(
    data: BehaviourData, seed: int, version: int, model_dir: Path
) -> tuple[BehaviourModel, list[dict[str, Any]], list[dict[str, Any]]]:
    """CPU part, for a worker thread: fit, save, and the rows to insert."""
    model, user_vectors, page_rows, page_vectors = BehaviourModel.fit_transform(data, seed, DIM, version)
    model.save(model_dir)
    users = [
        {"id": uid, "embedding": vector, "metadata": user_metadata(data, model.space, uid, version)}
        for uid, vector in zip(data.user_ids, user_vectors.tolist(), strict=True)
    ]
    return model, users, _page_rows(data, page_rows, page_vectors, version)


def _page_rows(
    data: BehaviourData, rows: Sequence[PageRow], vectors: np.ndarray, version: int
) -> list[dict[str, Any]]:
    out = []
    skipped = 0
    for row, vector in zip(rows, vectors.tolist(), strict=True):
        if row.page_index >= PAGE_ID_STRIDE:
            skipped += 1  # the id scheme has room for PAGE_ID_STRIDE page types per user
            continue
        out.append(
            {
                "id": page_vector_id(row.user_id, row.page_index),
                "embedding": vector,
                "metadata": {
                    "user_id": row.user_id,
                    "page_type": row.page_type,
                    "device": (data.users.get(row.user_id) or {}).get("device"),
                    "interaction_count": row.interaction_count,
                    "engagement_score": row.engagement_score,
                    "model_version": version,
                },
            }
        )
    if skipped:
        log.warning("%d (user, page) rows skipped: more than %d page types", skipped, PAGE_ID_STRIDE)
    return out


async def _insert(
    vectors: VectorIndex, collection: str, rows: list[dict[str, Any]], progress: Progress
) -> int:
    inserted = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        inserted += await vectors.insert(collection, rows[start : start + INSERT_CHUNK])
        progress(f"insert {collection}", min(start + INSERT_CHUNK, len(rows)), len(rows))
    return inserted


async def embed_all(
    store: DocumentStore,
    vectors: VectorIndex,
    model_dir: Path,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Rebuild both collections from the store. Returns counts: users, pages, model_version and the
    informative dimensions of each model (the rest of the 128 are zero padding)."""
    report = progress or _quiet
    data = await collect(store, report)
    if not data.user_ids:
        raise BadInput("the document store has no users yet: run `funnelgate ingest` first")
    version = (await asyncio.to_thread(latest_version, model_dir) or 0) + 1
    report("fit", 0, 1)
    model, user_rows, page_rows = await asyncio.to_thread(_fit_and_rows, data, seed, version, model_dir)
    report("fit", 1, 1)
    for collection in (USER_COLLECTION, PAGE_COLLECTION):
        await vectors.recreate(collection, DIM)
    users = await _insert(vectors, USER_COLLECTION, user_rows, report)
    pages = await _insert(vectors, PAGE_COLLECTION, page_rows, report)
    for done, collection in enumerate((USER_COLLECTION, PAGE_COLLECTION)):
        report("index", done, 2)
        await vectors.build_index(collection)
    report("index", 2, 2)
    log.info("embedded %d users and %d (user, page) rows with model v%d", users, pages, version)
    return {
        "users": users,
        "pages": pages,
        "model_version": version,
        "user_dims": model.users.informative,
        "page_dims": model.pages.informative,
    }


async def run_embed(settings: Settings, seed: int = 0, progress: Progress | None = None) -> dict[str, int]:
    """The command: embed from the configured store into the configured Milvus (Redis is not needed),
    then drop the derived keys of a shared Redis."""
    async with open_services(settings, need_cache=False) as services:
        counts = await embed_all(services.store, services.vectors, settings.model_dir, seed, progress)
    await invalidate_shared_cache(settings)
    return counts
