"""Redis first: repeated queries skip the backends, keys carry every argument, TTLs follow the design."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.cache import keys
from tests.api.conftest import data_of
from tests.redis_fixtures import REDIS_MODES

# One suite, two implementations of the cache: the private Redis and a 3-master Redis Cluster.
pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)

FUNNEL = """query($f: FunnelFilter, $o: StepOrder!, $w: Int, $b: Breakdown, $s: [String!]) {
    funnel(steps: $s, filter: $f, order: $o, conversionWindowSeconds: $w, breakdown: $b) {
        overallConversionRate steps { name users } breakdowns { key } } }"""


def funnel_keys(cache) -> dict[str, int]:
    return {k: ttl for k, ttl in cache.written.items() if k.startswith("metrics:funnel:")}


async def test_second_identical_funnel_is_served_from_redis(counted):
    variables = {"o": "ORDERED", "f": {"device": "MOBILE"}}
    first = await data_of(counted, FUNNEL, variables)
    assert counted.store.calls["funnel"] == 1
    before = counted.store.total
    hits_before = counted.cache_stats.hits["metrics:funnel"]
    second = await data_of(counted, FUNNEL, variables)
    assert second == first
    assert counted.store.total == before  # not a single store call, not even for validation
    assert counted.cache_stats.hits["metrics:funnel"] == hits_before + 1


async def test_second_identical_entity_query_is_served_from_redis(counted):
    query = """{ user(id: 4) { device sessions { id visits { pageType } interactions { value } }
                 journey { furthestStep } similarUsers(limit: 3) { userId user { sex } }
                 conversionLikelihood }
               session(id: "s1") { id } journey(userId: 5) { converted } }"""
    first = await data_of(counted, query)
    store_calls, vector_calls = counted.store.total, counted.vectors.total
    assert store_calls > 0 and vector_calls > 0
    second = await data_of(counted, query)
    assert second == first
    assert counted.store.total == store_calls
    assert counted.vectors.total == vector_calls


async def test_dashboard_and_sentiment_are_cached(counted):
    query = """{ dashboard(range: {start: "2015-01-05", end: "2015-01-06"}) { sessions }
                 sentiment(pageType: "payment_page") { texts } }"""
    first = await data_of(counted, query)
    calls = counted.store.total
    assert counted.store.calls["dashboard"] == 1 and counted.store.calls["form_texts"] == 1
    assert await data_of(counted, query) == first
    assert counted.store.total == calls


async def test_ttls_follow_the_design(counted):
    cache = counted.cache
    await data_of(counted, FUNNEL, {"o": "ORDERED", "f": {"start": "2015-01-01", "end": "2015-01-06"}})
    await data_of(counted, FUNNEL, {"o": "ORDERED", "f": {"device": "TABLET", "start": "2015-01-05"}})
    written = funnel_keys(cache)
    closed = [k for k in written if k.startswith("metrics:funnel:all:2015-01-01..2015-01-06:")]
    open_ended = [k for k in written if k.startswith("metrics:funnel:tablet:2015-01-05..all:")]
    assert len(closed) == 1 and len(open_ended) == 1
    assert written[closed[0]] == keys.TTL_HISTORICAL  # a closed range in the past cannot change any more
    assert written[open_ended[0]] == keys.TTL_DAILY
    assert keys.TTL_HISTORICAL - 60 < await cache.ttl(closed[0]) <= keys.TTL_HISTORICAL
    assert keys.TTL_DAILY - 60 < await cache.ttl(open_ended[0]) <= keys.TTL_DAILY

    await data_of(
        counted,
        """{ past: dashboard(range: {start: "2015-01-01", end: "2015-01-31"}) { sessions }
             open: dashboard { sessions }
             sentiment(pageType: "payment_page", date: "2015-01-01") { texts }
             user(id: 1) { sessions { visits { pageType } interactions { value } }
                           journey { converted } similarUsers { userId } }
             session(id: "s2") { id } }""",
    )
    expected = {
        keys.dashboard(date(2015, 1, 1), date(2015, 1, 31)): keys.TTL_HISTORICAL,
        keys.dashboard(None, None): keys.TTL_DAILY,
        "query:sentiment:payment_page:2015-01-01": keys.TTL_QUERY_SHORT,
        "query:user:1": keys.TTL_QUERY_LONG,
        "query:user_sessions:1": keys.TTL_QUERY_LONG,
        "query:session_visits:s1": keys.TTL_QUERY_LONG,
        "query:session_interactions:s1": keys.TTL_QUERY_LONG,
        "query:user_journey:1": keys.TTL_QUERY_LONG,
        "query:similar_users:1": keys.TTL_QUERY_SHORT,
        "query:session:s2": keys.TTL_QUERY_LONG,
    }
    assert {k: cache.written.get(k) for k in expected} == expected
    for key, ttl in expected.items():
        assert ttl - 60 < await cache.ttl(key) <= ttl, key


async def test_a_day_range_uses_the_day_key(counted):
    await data_of(
        counted,
        FUNNEL,
        {"o": "ORDERED", "f": {"device": "MOBILE", "start": "2015-01-06", "end": "2015-01-06"}},
    )
    [key] = funnel_keys(counted.cache)
    assert key.startswith("metrics:funnel:mobile:2015-01-06:")


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"o": "ORDERED"},
    "unordered": {"o": "UNORDERED"},
    "strict": {"o": "STRICT"},
    "window": {"o": "ORDERED", "w": 3600},
    "other window": {"o": "ORDERED", "w": 7200},
    "breakdown": {"o": "ORDERED", "b": "DEVICE"},
    "sex": {"o": "ORDERED", "f": {"sex": "FEMALE"}},
    "steps": {"o": "ORDERED", "s": ["home_page", "search_page"]},
    "same steps reordered": {"o": "ORDERED", "s": ["search_page", "home_page"]},
    "device": {"o": "ORDERED", "f": {"device": "MOBILE"}},
    "start": {"o": "ORDERED", "f": {"start": "2015-01-02"}},
    "end": {"o": "ORDERED", "f": {"end": "2015-01-02"}},
}


async def test_different_arguments_never_share_a_key(counted):
    answers = {}
    for name, variables in VARIANTS.items():
        answers[name] = await data_of(counted, FUNNEL, variables)
    assert len(funnel_keys(counted.cache)) == len(VARIANTS)
    # And each cached answer is the right one: read them back (all hits) and compare with known values.
    calls = counted.store.total
    for name, variables in VARIANTS.items():
        assert await data_of(counted, FUNNEL, variables) == answers[name], name
    assert counted.store.total == calls

    def users(name: str) -> list[int]:
        return [s["users"] for s in answers[name]["funnel"]["steps"]]

    assert users("default") == [5, 4, 3, 2]
    assert users("unordered") == [5, 5, 4, 2]
    assert users("strict") == [5, 3, 3, 2]
    assert users("window") == [5, 3, 2, 1]
    assert users("sex") == [2, 2, 1, 0]
    assert users("steps") == [5, 4]
    assert users("same steps reordered") == [5, 1]  # only user 5 visited home after searching
    assert [b["key"] for b in answers["breakdown"]["funnel"]["breakdowns"]] == ["desktop", "mobile", "tablet"]


async def test_funnel_users_pages_have_their_own_keys(counted):
    query = "query($a: String) { converted(first: 1, after: $a) { edges { node { id } } } }"
    first = await data_of(counted, query)
    second = await data_of(counted, query, {"a": "MQ=="})
    dropped = await data_of(
        counted, '{ droppedOff(afterStep: "home_page", first: 1) { edges { node { id } } } }'
    )
    assert [e["node"]["id"] for e in first["converted"]["edges"]] == [1]
    assert [e["node"]["id"] for e in second["converted"]["edges"]] == [4]
    assert [e["node"]["id"] for e in dropped["droppedOff"]["edges"]] == [5]
    assert len(funnel_keys(counted.cache)) == 3


@pytest.mark.parametrize("family", ["metrics:funnel", "query:user"])
async def test_hits_and_misses_are_counted_per_family(counted, family):
    query = "{ funnel { overallConversionRate } user(id: 3) { device } }"
    await data_of(counted, query)
    await data_of(counted, query)
    assert counted.cache_stats.misses[family] == 1
    assert counted.cache_stats.hits[family] == 1


async def test_top_paths_are_cached_per_arguments(counted):
    query = "query($n: Int!) { topPaths(limit: $n) { path sessions } }"
    first = await data_of(counted, query, {"n": 2})
    assert counted.store.calls["top_paths"] == 1
    assert await data_of(counted, query, {"n": 2}) == first
    assert counted.store.calls["top_paths"] == 1
    await data_of(counted, query, {"n": 3})  # another limit is another key
    assert counted.store.calls["top_paths"] == 2
    written = [k for k in counted.cache.written if k.startswith("query:top_paths:")]
    assert len(written) == 2
    assert all(counted.cache.written[k] == keys.TTL_DAILY for k in written)  # an open range
