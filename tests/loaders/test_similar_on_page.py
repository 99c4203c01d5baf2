"""The similar-on-page loader: per tick one partition list, then one vector fetch and one search per page
type, on real Milvus Lite and redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from gateway.analytics.similar_on_page import SimilarOnPageQuery
from gateway.cache import keys
from gateway.cache.stats import CacheStats
from gateway.errors import BadInput
from gateway.jobs.embed import embed_all
from gateway.stores.collections import PAGE_COLLECTION
from gateway.stores.contracts import DocumentStore
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.redis.cache import RedisCache
from gateway.stores.vectors import page_partition
from loaders import SIMILAR_ON_PAGE
from loaders.cached import TableLoader
from tests.analytics.journeys import Journeys, MemoryStore, varied_journeys
from tests.loaders.test_similar_users import CountingIndex

USERS = 40  # ids 1..40 (varied_journeys): every user visited home, some search and payment


@pytest.fixture
async def journeys_and_index(tmp_path: Path) -> AsyncIterator[tuple[Journeys, CountingIndex]]:
    journeys = varied_journeys(USERS)
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        await embed_all(cast(DocumentStore, MemoryStore(journeys)), milvus, tmp_path / "models")
        yield journeys, CountingIndex(milvus)
    finally:
        await milvus.close()


def _visited(journeys: Journeys, page: str) -> set[int]:
    return {u for u, visits in journeys.visits.items() if any(v["page_type"] == page for v in visits)}


async def test_users_asking_one_page_make_one_fetch_and_one_search(
    journeys_and_index: tuple[Journeys, CountingIndex], redis_cache: RedisCache
):
    _, index = journeys_and_index
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_ON_PAGE, index)
    user_ids = list(range(1, 21))
    results = await asyncio.gather(*(loader.load(SimilarOnPageQuery(u, "home", 5)) for u in user_ids))
    assert index.calls == {"resolve": 1, "partitions": 1, "get_vectors": 1, "search": 1}
    assert index.searches == [(20, 6, None)] and index.search_kwargs[0]["partition"] == page_partition("home")
    for uid, got in zip(user_ids, results, strict=True):
        assert len(got) == 5 and uid not in [n["user_id"] for n in got]
        assert [n["score"] for n in got] == sorted((n["score"] for n in got), reverse=True)
        assert all(n["metadata"]["page_type"] == "home" for n in got)
    # The same as asking the index directly, the user's own row left out.
    [vector] = await index.inner.get_vectors(
        PAGE_COLLECTION, [3], partition=page_partition("home"), key_field="user_id"
    )
    [hits] = await index.inner.search(PAGE_COLLECTION, [vector or []], 6, partition=page_partition("home"))
    assert [n["user_id"] for n in results[2]] == [h[2]["user_id"] for h in hits if h[2]["user_id"] != 3][:5]


async def test_two_page_types_make_two_searches_and_only_visitors_come_back(
    journeys_and_index: tuple[Journeys, CountingIndex], redis_cache: RedisCache
):
    journeys, index = journeys_and_index
    searchers = sorted(_visited(journeys, "search"))[:6]
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_ON_PAGE, index)
    queries = [SimilarOnPageQuery(u, "search", 3) for u in searchers] + [
        SimilarOnPageQuery(u, "home", 3) for u in searchers
    ]
    results = await loader.load_many(queries)
    assert index.calls == {"resolve": 1, "partitions": 1, "get_vectors": 2, "search": 2}
    on_search = [n["user_id"] for got in results[: len(searchers)] for n in got]
    assert on_search and set(on_search) <= _visited(journeys, "search")


async def test_unknown_page_fails_only_its_own_field_and_never_visited_is_empty_and_not_cached(
    journeys_and_index: tuple[Journeys, CountingIndex], redis_cache: RedisCache
):
    journeys, index = journeys_and_index
    home_only = min(set(journeys.users) - _visited(journeys, "payment"))
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_ON_PAGE, index)
    began = int(time.time())
    unknown, outcome, never, fine = await asyncio.gather(
        loader.load(SimilarOnPageQuery(1, "checkout")),
        loader.load(SimilarOnPageQuery(1, "confirmation")),
        loader.load(SimilarOnPageQuery(home_only, "payment")),
        loader.load(SimilarOnPageQuery(2, "home")),
        return_exceptions=True,
    )
    ended = int(time.time()) + 1
    assert isinstance(unknown, BadInput) and "home, payment, search" in str(unknown)
    assert isinstance(outcome, BadInput)  # the outcome step is never embedded
    assert never == [] and isinstance(fine, list) and len(fine) == 10
    assert await redis_cache.ttl(keys.similar_on_page(home_only, "payment")) == -2
    assert await redis_cache.ttl(keys.similar_on_page(1, "checkout")) == -2
    # cached for an hour from the load (EXPIRETIME: an absolute moment, not a TTL left within 10 s)
    [expires] = await redis_cache.pipeline([("EXPIRETIME", keys.similar_on_page(2, "home"))])
    assert began + 3600 <= int(expires) <= ended + 3600


def test_questions_are_checked():
    with pytest.raises(BadInput, match="limit"):
        SimilarOnPageQuery(1, "home", 0)
    with pytest.raises(BadInput, match="minScore"):
        SimilarOnPageQuery(1, "home", 5, 2.0)
    with pytest.raises(BadInput, match="page_type"):
        SimilarOnPageQuery(1, 7)  # type: ignore[arg-type]
    assert keys.similar_on_page(1, "a:b") != keys.similar_on_page(1, "a_b")  # a colon never reaches a key
