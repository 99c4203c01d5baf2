"""The conversion-likelihood loader over a synthesised population embedded in real Milvus Lite: one vector
fetch and one search per tick, the score by hand, and a score that varies among users who dropped off."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import pytest_asyncio

from gateway.analytics.lookalike import DEFAULT_K
from gateway.cache import keys
from gateway.cache.stats import CacheStats
from gateway.embedded.redis_server import RedisServer
from gateway.jobs.embed import embed_all
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.contracts import DocumentStore
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.redis.cache import RedisCache
from loaders import CONVERSION_LIKELIHOOD
from loaders.cached import TableLoader
from tests.analytics.journeys import Journeys, MemoryStore, synthesised
from tests.loaders.test_similar_users import CountingIndex

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def population(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Journeys, MilvusIndex]]:
    journeys = synthesised(1500, seed=9)
    work = Path(tmp_path_factory.mktemp("lookalike"))
    milvus = await MilvusIndex.open(str(work / "milvus.db"), timeout_s=60.0)  # searches of 200+ users
    await embed_all(cast(DocumentStore, MemoryStore(journeys)), milvus, work / "models")
    yield journeys, milvus
    await milvus.close()


@pytest_asyncio.fixture(loop_scope="module")
async def redis_cache(tmp_path: Path) -> AsyncIterator[RedisCache]:
    """A private redis-server on the module's loop (the shared Milvus client lives on it)."""
    server = RedisServer(tmp_path / "redis")
    cache = RedisCache.connect(await server.start())
    try:
        yield cache
    finally:
        await cache.close()
        await server.stop()


def _deepest(journeys: Journeys, uid: int) -> str:
    pages = {v["page_type"] for v in journeys.visits[uid]}
    return next(p for p in reversed(journeys.steps) if p in pages)


@MODULE_LOOP
async def test_one_fetch_and_one_search_per_tick_and_the_score_by_hand(
    population: tuple[Journeys, MilvusIndex], redis_cache: RedisCache
):
    journeys, milvus = population
    index = CountingIndex(milvus)
    loader = TableLoader(redis_cache, CacheStats(), CONVERSION_LIKELIHOOD, index)
    user_ids = [u for u in sorted(journeys.users) if u not in journeys.converted()][:30]
    began = int(time.time())
    scores = await asyncio.gather(*(loader.load(u) for u in user_ids))
    ended = int(time.time()) + 1
    assert index.calls == {"resolve": 1, "get_vectors": 1, "search": 1, "count": 2}  # counts: the base rate
    assert index.searches == [(30, DEFAULT_K + 1, None)]
    base = len(journeys.converted()) / len(journeys.users)
    [vector] = await milvus.get_vectors(USER_COLLECTION, [user_ids[0]])
    [hits] = await milvus.search(USER_COLLECTION, [vector or []], DEFAULT_K + 1)
    # By hand, not through gateway.analytics: the 50 nearest others, similarities clipped at 0, the
    # converters (reached the last step, from the journeys themselves) weighed against the whole, plus
    # one pseudo-neighbour at the base rate.
    weights = {uid: max(0.0, score) for uid, score, _ in hits if uid != user_ids[0]}
    weights = dict(list(weights.items())[:50])
    converters = sum(w for uid, w in weights.items() if uid in journeys.converted())
    assert len(weights) == 50 and scores[0] == pytest.approx(
        (converters + base) / (sum(weights.values()) + 1)
    )
    assert all(0.0 < s < 1.0 for s in scores)
    # Cached for an hour from the load: its expiry as an absolute moment, not a TTL left within 10 s
    [expires] = await redis_cache.pipeline([("EXPIRETIME", keys.conversion_likelihood(user_ids[0]))])
    assert began + 3600 <= int(expires) <= ended + 3600
    assert await TableLoader(redis_cache, CacheStats(), CONVERSION_LIKELIHOOD, index).load(10**6) is None
    assert await redis_cache.ttl(keys.conversion_likelihood(10**6)) == -2  # no vector: not cached


@MODULE_LOOP
async def test_the_likelihood_of_users_who_dropped_off_is_not_constant(
    population: tuple[Journeys, MilvusIndex], redis_cache: RedisCache
):
    journeys, milvus = population
    loader = TableLoader(redis_cache, CacheStats(), CONVERSION_LIKELIHOOD, milvus)
    dropped = [u for u in sorted(journeys.users) if u not in journeys.converted()]
    dropped = dropped[::6]  # a sixth of them (~240) is plenty and keeps the test quick
    scores = dict(zip(dropped, await loader.load_many(dropped), strict=True))
    assert len({round(s, 6) for s in scores.values() if s is not None}) > len(dropped) // 2
    by_depth = {
        page: statistics.fmean(
            s for u, s in scores.items() if s is not None and _deepest(journeys, u) == page
        )
        for page in ("home", "search", "payment")
    }
    # Users who got further look more like converters (their neighbours converted more often later).
    assert by_depth["home"] < by_depth["search"] < by_depth["payment"]
    payment = [s for u, s in scores.items() if s is not None and _deepest(journeys, u) == "payment"]
    assert statistics.pstdev(payment) > 0.01  # and among payment drop-outs it still tells users apart
