"""similarUsers (root and per user) and conversionLikelihood over the hand-made vectors in Milvus Lite."""

from __future__ import annotations

import numpy as np
from pytest import approx

from tests.api import fixture_data as fx
from tests.api.conftest import data_of


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
    # User 3 = (0,1,0,0): closest is 6 (0.5) before 2 (0.316). With the default 10 neighbours every other
    # user counts: user 3 sees converters 1 and 4 among 5 (0.4); user 1 sees only 4 (0.2).
    assert data["a"]["similarUsers"] == [{"userId": 6}]
    assert data["a"]["conversionLikelihood"] == approx(0.4)
    assert data["b"]["conversionLikelihood"] == approx(0.2)
