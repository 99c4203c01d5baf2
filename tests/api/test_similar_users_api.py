"""similarUsers (root and per user) and conversionLikelihood over the hand-made vectors in Milvus Lite."""

from __future__ import annotations

import numpy as np
from pytest import approx

from tests.api import fixture_data as fx
from tests.api.conftest import data_of, error_codes, run


def cosine(a: int, b: int) -> float:
    va, vb = np.array(fx.VECTORS[a]), np.array(fx.VECTORS[b])
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


async def test_similar_users_best_first_without_self(services):
    data = await data_of(
        services, "{ similarUsers(userId: 1, limit: 2) { userId score user { id device } } }"
    )
    # cos(1,4) = 0.95/sqrt(0.9125) ~ 0.994, cos(1,2) = 0.9/sqrt(0.9) ~ 0.949, then 6 (0.5), 3 and 5 (0).
    assert [s["userId"] for s in data["similarUsers"]] == [4, 2]
    assert [s["score"] for s in data["similarUsers"]] == approx([cosine(1, 4), cosine(1, 2)], abs=1e-4)
    assert [s["user"] for s in data["similarUsers"]] == [
        {"id": 4, "device": "MOBILE"},
        {"id": 2, "device": "MOBILE"},
    ]


async def test_similar_users_filters(services):
    query = "query($f: SimilarUserFilter) { similarUsers(userId: 1, limit: 2, filter: $f) { userId } }"
    desktop = await data_of(services, query, {"f": {"device": "DESKTOP"}})
    assert [s["userId"] for s in desktop["similarUsers"]] == [6, 3]
    converted = await data_of(services, query, {"f": {"converted": True}})
    assert [s["userId"] for s in converted["similarUsers"]] == [4]


async def test_user_similar_users_and_likelihood(services):
    data = await data_of(
        services,
        """{ a: user(id: 3) { similarUsers(limit: 1) { userId } conversionLikelihood }
             b: user(id: 1) { conversionLikelihood } }""",
    )
    # User 3 = (0,1,0,0): closest is 6 (0.5) before 2 (0.316).
    assert data["a"]["similarUsers"] == [{"userId": 6}]
    # Its likelihood: the 50 nearest are everyone else. Similarities clipped at 0 weigh the converters'
    # outcomes (users 1 and 4, both at 0 from user 3), plus one pseudo-neighbour at the base rate 2/6.
    weights = {u: max(0.0, cosine(3, u)) for u in (1, 2, 4, 5, 6)}
    converted = sum(w for u, w in weights.items() if u in fx.CONVERTED_USERS)
    expected = (converted + 2 / 6) / (sum(weights.values()) + 1)
    assert data["a"]["conversionLikelihood"] == approx(expected, abs=1e-5)
    # User 1 converted (its sessions say so): 1.0, whatever its neighbours did.
    assert data["b"]["conversionLikelihood"] == 1.0


async def test_min_score_returns_every_user_at_or_above_it_and_no_other(services):
    query = "query($m: Float) { user(id: 1) { similarUsers(limit: 10, minScore: $m) { userId score } } }"
    # cos(1, .): 4 ~0.994, 2 ~0.949, 6 0.5, 3 and 5 0.
    high = await data_of(services, query, {"m": 0.9})
    assert [s["userId"] for s in high["user"]["similarUsers"]] == [4, 2]
    half = await data_of(services, query, {"m": 0.5})
    assert [s["userId"] for s in half["user"]["similarUsers"]] == [4, 2, 6]
    assert all(s["score"] >= 0.5 - 1e-6 for s in half["user"]["similarUsers"])
    root = await data_of(services, "{ similarUsers(userId: 1, limit: 1, minScore: 0.5) { userId } }")
    assert root["similarUsers"] == [{"userId": 4}]  # up to the limit


async def test_similar_on_page(services):
    data = await data_of(
        services,
        """{ a: user(id: 2) { similarOnPage(pageType: "home", limit: 2) { userId score } }
             b: user(id: 4) { similarOnPage(pageType: "search") { userId } }
             c: user(id: 1) { similarOnPage(pageType: "search", minScore: 0.7) { userId } } }""",
    )
    # On home user 2 = (1,0,0,0) and user 5 = (0.9,0.1,0,0) behaved alike; then 6 (0.5).
    assert [s["userId"] for s in data["a"]["similarOnPage"]] == [5, 6]
    assert data["a"]["similarOnPage"][0]["score"] == approx(0.9 / np.sqrt(0.82), abs=1e-4)
    assert data["b"]["similarOnPage"] == []  # user 4 has no search vector
    assert data["c"]["similarOnPage"] == [{"userId": 3}]  # cos 0.8; user 2 is at 0


async def test_similar_on_page_of_a_page_without_vectors_is_bad_input(services):
    # Refused before execution (the page vectors' partitions are read first): no user was looked up.
    result = await run(services, '{ user(id: 1) { id similarOnPage(pageType: "nowhere") { userId } } }')
    assert result["data"] is None
    assert error_codes(result) == ["BAD_USER_INPUT"] and "home, search" in result["errors"][0]["message"]


async def test_no_embedding_yet_is_null_and_nobody_alike_is_an_empty_list(services):
    from gateway.stores.collections import USERS

    # A user stored after the last embed (as live capture creates them) has no behaviour vector.
    await services.store.insert_many(
        USERS,
        [{"user_id": 7, "device": "mobile", "sex": None, "date": fx.USERS[0]["date"], "attributes": {}}],
    )
    result = await run(
        services,
        """{ fresh: similarUsers(userId: 7) { userId } user(id: 7) { similarUsers { userId } conversionLikelihood }
             none: similarUsers(userId: 1, filter: {converted: true}, minScore: 0.999) { userId } }""",
    )
    assert "errors" not in result, result["errors"]
    assert result["data"] == {
        "fresh": None,
        "user": {"similarUsers": None, "conversionLikelihood": None},
        "none": [],  # user 4, the only other converter, is ~0.994 alike: below the threshold
    }
