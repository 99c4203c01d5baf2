"""MilvusIndex on a real Milvus Lite in tmp_path, fed by the embedding job: versions behind aliases,
partitions per page type, and the errors."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from pymilvus.exceptions import MilvusException

from gateway.analytics.similar_users import SimilarQuery, search_similar
from gateway.errors import BadInput, StoreUnavailable
from gateway.jobs.embed import embed_all
from gateway.stores.collections import PAGE_COLLECTION, USER_COLLECTION, page_vector_id
from gateway.stores.contracts import DocumentStore, VectorIndex
from gateway.stores.milvus import connection
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.vectors import USER_VECTORS, IndexPlan, page_partition, version_name
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


def _store(n: int = 40) -> DocumentStore:
    """``n`` varied users plus two pairs of twins (101/102 and 201/202)."""
    journeys = varied_journeys(n)
    journeys.add(101, TWIN_PAGES, start=datetime(2015, 1, 5, 10))
    journeys.add(102, TWIN_PAGES, start=datetime(2015, 1, 12, 10))
    journeys.add(201, OTHER_TWIN_PAGES, start=datetime(2015, 2, 3, 20), device="mobile")
    journeys.add(202, OTHER_TWIN_PAGES, start=datetime(2015, 2, 3, 20), device="mobile")
    return cast(DocumentStore, MemoryStore(journeys))


@pytest.fixture
async def embedded(milvus: MilvusIndex, tmp_path: Path) -> MilvusIndex:
    report = await embed_all(_store(), milvus, tmp_path / "models")
    assert report.users == 44 and report.model_version == 1
    return milvus


async def test_it_implements_the_protocol(milvus: MilvusIndex):
    assert isinstance(milvus, VectorIndex)
    assert milvus.name == "milvus"
    await milvus.ping()


async def test_the_design_names_are_aliases_of_the_built_version(embedded: MilvusIndex):
    assert await embedded.serving(USER_COLLECTION) == "user_behavior_embeddings_v0001"
    assert await embedded.serving(PAGE_COLLECTION) == "page_interaction_embeddings_v0001"
    assert await embedded.count(USER_COLLECTION) == 44
    assert await embedded.count(USER_COLLECTION, "converted == true") == 8  # every fifth of 1..40
    # 44 rows: far too few to train an IVF index, so an exact one.
    assert await embedded.describe_index(USER_COLLECTION) == IndexPlan("FLAT", None)
    # One partition per page type seen before the outcome; the outcome step has none.
    assert await embedded.partitions(PAGE_COLLECTION) == sorted(
        page_partition(p) for p in ("home", "search", "payment")
    )


async def test_page_rows_by_user_within_a_partition(embedded: MilvusIndex):
    home = page_partition("home")
    [vector, missing] = await embedded.get_vectors(
        PAGE_COLLECTION, [101, 999], partition=home, key_field="user_id"
    )
    assert vector is not None and missing is None
    [hits] = await embedded.search(PAGE_COLLECTION, [vector], 2, partition=home)
    assert {h[2]["user_id"] for h in hits} == {101, 102}  # the twins behaved alike on home
    assert hits[0][2]["page_type"] == "home" and hits[0][2]["interaction_count"] == 6
    assert hits[0][0] in {page_vector_id(101, 0), page_vector_id(102, 0)}  # home is the first page type
    with pytest.raises(BadInput, match="looked up by"):
        await embedded.get_vectors(PAGE_COLLECTION, [1], key_field="device")


async def test_identical_journeys_are_each_others_nearest_neighbours(embedded: MilvusIndex):
    first, second = await search_similar(embedded, [SimilarQuery(101, 3), SimilarQuery(201, 3)])
    assert first[0]["user_id"] == 102 and first[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert second[0]["user_id"] == 202 and second[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert second[0]["metadata"]["device"] == "mobile" and second[0]["metadata"]["converted"] is False
    assert [n["score"] for n in first] == sorted((n["score"] for n in first), reverse=True)


async def test_a_user_never_returns_itself(embedded: MilvusIndex):
    user_ids = [*range(1, 41), 101, 102, 201, 202]
    vectors = await embedded.get_vectors(USER_COLLECTION, user_ids)
    raw = await embedded.search(USER_COLLECTION, [v for v in vectors if v is not None], 5)
    # The raw index answers each user with itself first: the exclusion below is doing real work.
    assert sum(1 for uid, hits in zip(user_ids, raw, strict=True) if hits[0][0] == uid) >= 40
    for uid, neighbours in zip(
        user_ids, await search_similar(embedded, [SimilarQuery(u, 5) for u in user_ids]), strict=True
    ):
        assert len(neighbours) == 5 and uid not in [n["user_id"] for n in neighbours]


async def test_get_vectors_in_key_order_with_none_for_unknown_ids(embedded: MilvusIndex):
    assert await embedded.get_vectors(USER_COLLECTION, []) == []
    got = await embedded.get_vectors(USER_COLLECTION, [101, 999_999, 101, 3])
    assert got[1] is None and got[0] == got[2] and got[0] is not None
    assert got[3] is not None and float(np.linalg.norm(got[3])) == pytest.approx(1.0, abs=1e-5)


async def test_a_reopened_index_loads_the_collection_behind_the_alias_on_first_search(embedded: MilvusIndex):
    uri = embedded.uri
    await embedded.close()
    reopened = await MilvusIndex.open(uri)
    try:
        [hits] = await search_similar(reopened, [SimilarQuery(101, 1)])
        assert hits[0]["user_id"] == 102
    finally:
        await reopened.close()


async def test_search_before_any_embed_says_what_to_run(milvus: MilvusIndex):
    assert await milvus.count(USER_COLLECTION) == 0 and await milvus.serving(USER_COLLECTION) is None
    with pytest.raises(StoreUnavailable, match="funnelgate embed"):
        await milvus.search(USER_COLLECTION, [[1.0] * 8], 3)
    assert await milvus.search(USER_COLLECTION, [], 3) == []


async def test_a_missing_alias_is_not_logged_as_an_error(
    milvus: MilvusIndex, caplog: pytest.LogCaptureFixture
):
    # Every similarUsers request before the first embed resolves the alias: one WARNING of the gateway's
    # says so (gateway/web/errors.py), not a pymilvus ERROR with its traceback for each request.
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreUnavailable, match="funnelgate embed"):
        await milvus.resolve(USER_COLLECTION)
    assert [r.getMessage()[:80] for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_bad_arguments_are_bad_input(milvus: MilvusIndex):
    name = await milvus.create_version(USER_VECTORS, 1, 8)
    with pytest.raises(BadInput, match="dims"):
        await milvus.insert(name, [{"id": 1, "embedding": [0.1] * 3, "device": "x", "converted": False}])
    with pytest.raises(BadInput, match="missing"):
        await milvus.insert(name, [{"embedding": [0.1] * 8}])
    with pytest.raises(BadInput, match="integers"):
        await milvus.get_vectors(USER_COLLECTION, ["7"])  # type: ignore[list-item]
    with pytest.raises(BadInput, match="limit"):
        await milvus.search(USER_COLLECTION, [[1.0] * 8], 0)
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
            await lazy.search(USER_COLLECTION, [[1.0] * 8], 3)
    finally:
        await lazy.close()


async def test_embedding_again_switches_to_a_new_version_and_drops_the_old(
    embedded: MilvusIndex, tmp_path: Path
):
    report = await embed_all(
        cast(DocumentStore, MemoryStore(varied_journeys(10))), embedded, tmp_path / "models"
    )
    assert report.model_version == 2
    assert sorted(report.dropped) == ["page_interaction_embeddings_v0001", "user_behavior_embeddings_v0001"]
    assert await embedded.serving(USER_COLLECTION) == version_name(USER_COLLECTION, 2)
    assert await embedded.count(USER_COLLECTION) == 10  # the 44 users of version 1 are gone
    [vector] = await embedded.get_vectors(USER_COLLECTION, [3])
    [hits] = await embedded.search(USER_COLLECTION, [vector or []], 1)
    assert hits[0][0] == 3 and hits[0][2]["model_version"] == 2


async def test_a_plain_collection_from_before_the_aliases_is_replaced(milvus: MilvusIndex, tmp_path: Path):
    # What a gateway from before this change left: a real collection under the design name.
    legacy = await milvus.create_version(USER_VECTORS, 1, 8)
    await milvus.insert(
        legacy, [{"id": 1, "embedding": [1.0] + [0.0] * 7, "device": "x", "converted": False}]
    )
    await milvus.build_index(legacy)
    await milvus.switch("user_behavior_embeddings", legacy)  # move it under the plain name, as main had it
    conn = milvus._conn  # set the scene: the alias gone, a plain collection with the name
    await conn.client.drop_alias("user_behavior_embeddings")
    await conn.client.rename_collection(legacy, "user_behavior_embeddings")
    assert "user_behavior_embeddings" in await conn.collections()
    report = await embed_all(_store(), milvus, tmp_path / "models")
    assert await milvus.serving(USER_COLLECTION) == version_name(USER_COLLECTION, report.model_version)
    assert await milvus.count(USER_COLLECTION) == 44


async def test_an_empty_store_is_bad_input_and_keeps_the_collections(embedded: MilvusIndex, tmp_path: Path):
    with pytest.raises(BadInput, match="funnelgate ingest"):
        await embed_all(cast(DocumentStore, MemoryStore(varied_journeys(0))), embedded, tmp_path / "models")
    assert await embedded.count(USER_COLLECTION) == 44


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("/data/milvus.db", True),  # Milvus Lite on its directory
        ("unix:/data/run/milvus.sock", True),  # Milvus Lite on its private socket
        ("http://milvus:19530", False),  # a Milvus server keeps pymilvus' keepalive
    ],
)
def test_only_a_local_milvus_is_pinged_rarely(uri, local):
    # Measured: with pymilvus' 10 s keepalive an idle Milvus Lite answers GOAWAY too_many_pings within
    # a minute; with 10 min, none in 4 minutes.
    assert connection._is_local(uri) is local
