"""MilvusIndex on a real Milvus Lite in tmp_path, fed by the embedding job."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from pymilvus.exceptions import MilvusException

from gateway.analytics.similar_users import SimilarQuery, search_similar
from gateway.embeddings.model import BehaviourModel
from gateway.errors import BadInput, StoreUnavailable
from gateway.jobs.embed import embed_all
from gateway.stores.collections import DIM, PAGE_COLLECTION, USER_COLLECTION, page_vector_id
from gateway.stores.contracts import DocumentStore, VectorIndex
from gateway.stores.milvus.index import MilvusIndex
from tests.analytics.journeys import MemoryStore, Page, varied_journeys

TWIN_PAGES = [Page("home", 2, 40.0, 3, 2, 1), Page("search", 1, 90.0, 4, 1, 0, 1)]
OTHER_TWIN_PAGES = [
    Page("home", 1, 12.0, 0, 1, 0),
    Page("search", 2, 200.0, 1, 5, 2, 0),
    Page("payment", 1, 60.0),
]


@pytest.fixture
async def milvus(tmp_path: Path) -> AsyncIterator[MilvusIndex]:
    index = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        yield index
    finally:
        await index.close()


@pytest.fixture
async def embedded(milvus: MilvusIndex, tmp_path: Path) -> MilvusIndex:
    """40 varied users plus two pairs of twins (101/102 and 201/202), embedded."""
    journeys = varied_journeys(40)
    journeys.add(101, TWIN_PAGES, start=datetime(2015, 1, 5, 10))
    journeys.add(102, TWIN_PAGES, start=datetime(2015, 1, 12, 10))
    journeys.add(201, OTHER_TWIN_PAGES, start=datetime(2015, 2, 3, 20), device="Mobile")
    journeys.add(202, OTHER_TWIN_PAGES, start=datetime(2015, 2, 3, 20), device="Mobile")
    counts = await embed_all(cast(DocumentStore, MemoryStore(journeys)), milvus, tmp_path / "models", seed=0)
    page_rows = len(journeys.activity)
    assert counts["users"] == 44 and counts["pages"] == page_rows and counts["model_version"] == 1
    return milvus


async def test_it_implements_the_protocol(milvus: MilvusIndex):
    assert isinstance(milvus, VectorIndex)
    assert milvus.name == "milvus"
    await milvus.ping()


async def test_collections_are_filled_indexed_and_counted(embedded: MilvusIndex, tmp_path: Path):
    assert await embedded.count(USER_COLLECTION) == 44
    journeys_pages = await embedded.count(PAGE_COLLECTION)
    assert journeys_pages > 44  # every user visited at least one page, most several
    model = BehaviourModel.load(tmp_path / "models")
    home = model.space.page_index("home")
    assert home is not None
    [vector] = await embedded.get_vectors(PAGE_COLLECTION, [page_vector_id(101, home)])
    assert vector is not None
    [row] = await embedded.search(PAGE_COLLECTION, [vector], 1)
    assert row[0][0] == 101 * 64 + home
    assert row[0][2]["user_id"] == 101 and row[0][2]["page_type"] == "home"
    assert row[0][2]["interaction_count"] == 6


async def test_identical_journeys_are_each_others_nearest_neighbours(embedded: MilvusIndex):
    first, second = await search_similar(embedded, [SimilarQuery(101, 3), SimilarQuery(201, 3)])
    assert first[0]["user_id"] == 102 and first[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert second[0]["user_id"] == 202 and second[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert second[0]["metadata"]["device"] == "Mobile"
    assert [n["score"] for n in first] == sorted((n["score"] for n in first), reverse=True)


async def test_a_user_never_returns_itself(embedded: MilvusIndex):
    user_ids = [*range(1, 41), 101, 102, 201, 202]
    vectors = await embedded.get_vectors(USER_COLLECTION, user_ids)
    assert all(v is not None for v in vectors)
    raw = await embedded.search(USER_COLLECTION, [v for v in vectors if v is not None], 5)
    # The raw index answers each user with itself first: the exclusion below is doing real work.
    assert sum(1 for uid, hits in zip(user_ids, raw, strict=True) if hits[0][0] == uid) >= 40
    results = await search_similar(embedded, [SimilarQuery(uid, 5) for uid in user_ids])
    for uid, neighbours in zip(user_ids, results, strict=True):
        assert len(neighbours) == 5
        assert uid not in [n["user_id"] for n in neighbours]


async def test_get_vectors_in_key_order_with_none_for_unknown_ids(embedded: MilvusIndex):
    assert await embedded.get_vectors(USER_COLLECTION, []) == []
    got = await embedded.get_vectors(USER_COLLECTION, [101, 999_999, 101, 3])
    assert got[1] is None
    assert got[0] == got[2] and got[0] is not None and len(got[0]) == DIM
    assert got[3] is not None and float(np.linalg.norm(got[3])) == pytest.approx(1.0, abs=1e-5)


async def test_a_reopened_index_loads_the_collection_on_first_search(embedded: MilvusIndex, tmp_path: Path):
    uri = embedded.uri
    await embedded.close()
    reopened = await MilvusIndex.open(uri)
    try:
        [hits] = await search_similar(reopened, [SimilarQuery(101, 1)])
        assert hits[0]["user_id"] == 102
    finally:
        await reopened.close()


async def test_search_before_any_embed_says_what_to_run(milvus: MilvusIndex):
    assert await milvus.count(USER_COLLECTION) == 0
    with pytest.raises(StoreUnavailable, match="funnelgate embed"):
        await milvus.search(USER_COLLECTION, [[1.0] * DIM], 3)
    assert await milvus.search(USER_COLLECTION, [], 3) == []


async def test_bad_arguments_are_bad_input(milvus: MilvusIndex):
    await milvus.recreate(USER_COLLECTION, DIM)
    with pytest.raises(BadInput, match="dims"):
        await milvus.insert(USER_COLLECTION, [{"id": 1, "embedding": [0.1] * 3, "metadata": {}}])
    with pytest.raises(BadInput, match="missing"):
        await milvus.insert(USER_COLLECTION, [{"embedding": [0.1] * DIM}])
    with pytest.raises(BadInput, match="integers"):
        await milvus.get_vectors(USER_COLLECTION, ["7"])  # type: ignore[list-item]
    with pytest.raises(BadInput, match="limit"):
        await milvus.search(USER_COLLECTION, [[1.0] * DIM], 0)
    with pytest.raises(BadInput):
        page_vector_id(1, 64)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_server_is_store_unavailable():
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(StoreUnavailable) as caught:
        await MilvusIndex.open(uri, timeout_s=2.0)
    assert isinstance(caught.value.__cause__, MilvusException)

    lazy = await MilvusIndex.open(uri, timeout_s=2.0, verify=False)  # a gateway may start while it is down
    try:
        with pytest.raises(StoreUnavailable):
            await lazy.get_vectors(USER_COLLECTION, [1])
        with pytest.raises(StoreUnavailable):
            await lazy.search(USER_COLLECTION, [[1.0] * DIM], 3)
    finally:
        await lazy.close()


async def test_embedding_again_replaces_the_collections_with_a_new_model_version(
    embedded: MilvusIndex, tmp_path: Path
):
    journeys = varied_journeys(10)
    counts = await embed_all(cast(DocumentStore, MemoryStore(journeys)), embedded, tmp_path / "models")
    assert counts["model_version"] == 2
    assert await embedded.count(USER_COLLECTION) == 10  # the 44 users of version 1 are gone
    assert await embedded.count(PAGE_COLLECTION) == len(journeys.activity)
    [vector] = await embedded.get_vectors(USER_COLLECTION, [3])
    assert vector is not None
    [hits] = await embedded.search(USER_COLLECTION, [vector], 1)
    assert hits[0][0] == 3 and hits[0][2]["model_version"] == 2


async def test_embedding_an_empty_store_is_bad_input_and_keeps_the_collections(
    embedded: MilvusIndex, tmp_path: Path
):
    empty = MemoryStore(varied_journeys(0))
    with pytest.raises(BadInput, match="funnelgate ingest"):
        await embed_all(cast(DocumentStore, empty), embedded, tmp_path / "models")
    assert await embedded.count(USER_COLLECTION) == 44
