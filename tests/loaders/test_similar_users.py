"""The similar-users loader: one Milvus search per tick, Redis in front, on real Milvus Lite and redis-server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from gateway.analytics.similar_users import SimilarQuery
from gateway.cache import keys
from gateway.cache.stats import CacheStats
from gateway.errors import BadInput
from gateway.jobs.embed import embed_all
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.contracts import DocumentStore
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.redis.cache import RedisCache
from loaders import SIMILAR_USERS
from loaders.cached import TableLoader
from tests.analytics.journeys import MemoryStore, varied_journeys

USERS = 40  # ids 1..40; odd ids are on mobile, every fifth user converts (see varied_journeys)


class CountingIndex:
    """The real MilvusIndex, with every call counted and every search's arguments kept."""

    def __init__(self, inner: MilvusIndex) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.searches: list[tuple[int, int, str | None]] = []  # (query vectors, limit, filter)
        self.search_kwargs: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "search":
                self.searches.append((len(args[1]), args[2], kwargs.get("filter")))
                self.search_kwargs.append(kwargs)
            return await attr(*args, **kwargs)

        return counted


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[CountingIndex]:
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        await embed_all(cast(DocumentStore, MemoryStore(varied_journeys(USERS))), milvus, tmp_path / "models")
        yield CountingIndex(milvus)
    finally:
        await milvus.close()


def _ids(neighbours: list[dict[str, Any]]) -> list[int]:
    return [n["user_id"] for n in neighbours]


async def test_n_loads_in_one_tick_make_one_vector_fetch_and_one_search(
    index: CountingIndex, redis_cache: RedisCache
):
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_USERS, index)
    user_ids = list(range(1, 21))
    results = await asyncio.gather(*(loader.load(SimilarQuery(uid, 5)) for uid in user_ids))
    assert index.calls == {"resolve": 1, "get_vectors": 1, "search": 1}
    assert index.searches == [(20, 6, None)]  # 20 query vectors, limit 5 + 1 for the user itself

    # Independently: one plain search per user straight on the index, the user itself dropped.
    vectors = await index.inner.get_vectors(USER_COLLECTION, user_ids)
    for uid, vector, got in zip(user_ids, vectors, results, strict=True):
        [hits] = await index.inner.search(USER_COLLECTION, [vector or []], 6)
        assert _ids(got) == [h[0] for h in hits if h[0] != uid][:5]
        assert uid not in _ids(got)
        assert all(set(n) == {"user_id", "score", "metadata"} for n in got)


async def test_a_repeated_question_is_served_from_redis_without_milvus(
    index: CountingIndex, redis_cache: RedisCache
):
    stats = CacheStats()
    first = await TableLoader(redis_cache, stats, SIMILAR_USERS, index).load_many(
        [SimilarQuery(3), SimilarQuery(4)]
    )
    index.calls.clear()
    again = await TableLoader(redis_cache, stats, SIMILAR_USERS, index).load_many(
        [SimilarQuery(4), SimilarQuery(3)]
    )
    assert index.calls == {}
    assert again == [first[1], first[0]]
    assert stats.snapshot()["query:similar_users"] == {"hits": 2, "misses": 2, "errors": 0}


async def test_cache_keys_and_ttls(index: CountingIndex, redis_cache: RedisCache):
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_USERS, index)
    await loader.load_many(
        [SimilarQuery(7), SimilarQuery(7, 3, device="mobile"), SimilarQuery(7, 3, min_score=0.5)]
    )
    plain = "query:similar_users:7"  # the design's key for the default question
    assert 3590 <= await redis_cache.ttl(plain) <= 3600
    floor = keys.similar_users(7, {"limit": 3, "device": None, "converted": None, "min_score": 0.5})
    assert 3590 <= await redis_cache.ttl(floor) <= 3600
    filtered = keys.similar_users(7, {"limit": 3, "device": "mobile", "converted": None})
    assert filtered.startswith("query:similar_users:7:") and filtered != plain
    assert 3590 <= await redis_cache.ttl(filtered) <= 3600


async def test_filters_on_device_and_conversion_one_search_per_distinct_filter(
    index: CountingIndex, redis_cache: RedisCache
):
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_USERS, index)
    queries = [
        SimilarQuery(1, 4),
        SimilarQuery(2, 4),
        SimilarQuery(1, 4, device="desktop"),
        SimilarQuery(2, 6, device="desktop"),
        SimilarQuery(3, 4, converted=True),
    ]
    plain_1, plain_2, desktop_1, desktop_2, converters = await loader.load_many(queries)
    assert index.calls == {"resolve": 1, "get_vectors": 1, "search": 3}
    assert sorted(index.searches, key=str) == sorted(
        [(2, 5, None), (2, 7, 'device == "desktop"'), (1, 5, "converted == true")], key=str
    )
    assert len(plain_1) == 4 and len(plain_2) == 4
    # A filtered search is exhaustive: it fills the limit whenever the filtered users exist. Desktop
    # users are the even ids, converters the multiples of 5 (ground truth of the fixture): 8 of them.
    assert len(desktop_1) == 4 and len(desktop_2) == 6 and len(converters) == 4
    assert all(n["user_id"] % 2 == 0 and n["metadata"]["device"] == "desktop" for n in desktop_1 + desktop_2)
    assert 2 not in _ids(desktop_2)
    assert all(n["user_id"] % 5 == 0 and n["metadata"]["converted"] for n in converters)


async def test_min_score_keeps_every_neighbour_at_or_above_it_up_to_the_limit(
    index: CountingIndex, redis_cache: RedisCache
):
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_USERS, index)
    everyone = await index.inner.get_vectors(USER_COLLECTION, list(range(1, USERS + 1)))
    x = np.array(everyone)
    sims = x @ x[0]  # user 1 against everyone (unit vectors: cosine = dot)
    floor = float(np.sort(sims)[-6])  # user 1 itself and then five others reach it
    wide, narrow = await loader.load_many(
        [SimilarQuery(1, 50, min_score=floor), SimilarQuery(1, 3, min_score=floor)]
    )
    assert index.calls["search"] == 1 and index.search_kwargs[0]["min_score"] == floor
    exact = [u for u in np.argsort(-sims) + 1 if u != 1 and sims[u - 1] >= floor]
    assert _ids(wide) == [int(u) for u in exact] and len(wide) == 5  # all of them, and only them
    assert _ids(narrow) == _ids(wide)[:3]  # up to the limit, the best first
    assert all(n["score"] >= floor for n in wide)


async def test_a_user_without_a_vector_gets_none_which_is_not_cached(
    index: CountingIndex, redis_cache: RedisCache
):
    loader = TableLoader(redis_cache, CacheStats(), SIMILAR_USERS, index)
    assert await loader.load_many([SimilarQuery(999), SimilarQuery(998, 2)]) == [None, None]
    assert index.calls == {"resolve": 1, "get_vectors": 1}  # nothing to search for
    assert await redis_cache.ttl("query:similar_users:999") == -2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": True}, "limit"),
        ({"device": 'Mobile" or id > 0 or "'}, "device"),
        ({"device": ""}, "device"),
        ({"converted": "yes"}, "converted"),
        ({"min_score": 1.5}, "minScore"),
        ({"min_score": float("nan")}, "minScore"),
        ({"min_score": True}, "minScore"),
    ],
)
def test_malformed_questions_are_bad_input(kwargs: dict[str, Any], message: str):
    with pytest.raises(BadInput, match=message):
        SimilarQuery(1, **kwargs)


def test_user_id_must_be_an_integer():
    with pytest.raises(BadInput, match="user_id"):
        SimilarQuery("1")  # type: ignore[arg-type]
