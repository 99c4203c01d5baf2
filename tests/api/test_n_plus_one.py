"""Backend calls do not grow with the page size: one store call per loader per level, one Milvus search."""

from __future__ import annotations

from collections import Counter

from tests.api.conftest import data_of

QUERY = """query($n: Int!) { users(first: $n) { edges { node {
    sessions { visits { pageType } }
    similarUsers(limit: 5) { user { device } } } } } }"""

# One call per level: the page of ids, sessions of those users, visits of those sessions, and the
# neighbours' user documents (the page's own users are never loaded: no field of theirs needs them).
EXPECTED_STORE_CALLS = Counter(
    {"list_users": 1, "sessions_by_user_ids": 1, "visits_by_session_ids": 1, "users_by_ids": 1}
)


async def test_backend_calls_are_constant_in_first(counted):
    seen = {}
    for n in (1, 2, 100):
        await counted.cache.forget()  # every run starts with a cold cache
        counted.store.calls.clear()
        counted.vectors.calls.clear()
        data = await data_of(counted, QUERY, {"n": n})
        edges = data["users"]["edges"]
        assert len(edges) == min(n, 6)
        assert all(len(e["node"]["similarUsers"]) == 5 for e in edges)  # 6 users: everyone else
        seen[n] = (
            Counter(counted.store.calls),
            counted.vectors.calls["search"],
            counted.vectors.calls["get_vectors"],
        )
    assert seen[1] == seen[2] == seen[100] == (EXPECTED_STORE_CALLS, 1, 1)


async def test_warm_cache_leaves_only_the_page_query(counted):
    await data_of(counted, QUERY, {"n": 100})
    counted.store.calls.clear()
    counted.vectors.calls.clear()
    await data_of(counted, QUERY, {"n": 100})
    assert counted.store.calls == Counter({"list_users": 1})
    assert counted.vectors.total == 0


async def test_cache_reads_and_writes_are_batched(counted):
    await counted.cache.forget()
    counted.cache.calls.clear()
    await data_of(counted, QUERY, {"n": 100})
    # One MGET and one pipelined SET per loader batch: sessions, visits, similar users, users.
    assert counted.cache.calls["get_many"] == 4
    assert counted.cache.calls["set_many"] == 4
